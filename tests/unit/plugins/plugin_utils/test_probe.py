# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The batched probe command line and the splitting of its answer (plugins/plugin_utils/_probe.py)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._probe import (
    ProbeError,
    batch,
    facts_probe,
    files_sections,
    kms_binary_paths,
    reg_query,
    run_commands,
    sc,
    section,
    shell_path,
    split_sections,
    wmic_file_version,
)


def test_each_section_merges_stderr_and_records_success_without_errorlevel() -> None:
    line = section("kms_query", "sc query MSExchangeKMS")
    assert line == (
        "echo ==exchops:begin:kms_query== & (sc query MSExchangeKMS) 2>&1 "
        "&& echo ==exchops:end:ok== || echo ==exchops:end:failed=="
    )
    assert "%ERRORLEVEL%" not in facts_probe(10)


def test_the_probe_reads_every_setup_key_the_kms_service_and_events_in_one_line() -> None:
    probe = facts_probe(10)
    for expected in (
        r'reg query "HKLM\SOFTWARE\Microsoft\Exchange\Setup"',
        r'reg query "HKLM\SOFTWARE\Microsoft\Exchange\v8.0\Setup"',
        r'reg query "HKLM\SOFTWARE\Microsoft\ExchangeServer\v14\Setup"',
        r'reg query "HKLM\SOFTWARE\Microsoft\ExchangeServer\v15\Setup"',
        r'reg query "HKLM\SYSTEM\CurrentControlSet\Services\MSExchangeKMS"',
        "sc qc MSExchangeKMS",
        "sc query MSExchangeKMS",
        r'wmic datafile where name="C:\\EXCHSRVR\\BIN\\KMSERVER.EXE" get Version /value < NUL',
        "wmic ntevent where \"LogFile='Application' and SourceName='MSExchangeKMS'\"",
    ):
        assert expected in probe
    assert "\n" not in probe


def test_an_event_count_of_zero_skips_the_event_log() -> None:
    assert "ntevent" not in facts_probe(0)


def test_builders_read_a_remote_server_through_a_jump_host() -> None:
    assert reg_query(r"HKLM\SOFTWARE", "KMS01") == r'reg query "\\KMS01\HKLM\SOFTWARE"'
    assert sc("query", "MSExchangeKMS", "KMS01") == r"sc \\KMS01 query MSExchangeKMS"
    assert wmic_file_version(r"C:\A.EXE", "KMS01").startswith("wmic /node:KMS01 datafile")
    assert "/node:KMS01" in facts_probe(5, remote="KMS01")


@pytest.mark.parametrize(
    ("path", "remote", "expected"),
    [
        # On the server itself a path stays as it is, byte for byte.
        (r"C:\Exchange Server Setup.log", None, r"C:\Exchange Server Setup.log"),
        # From the jump host: the server's administrative share of that drive.
        (r"C:\Exchange Server Setup.log", "KMSNEW", r"\\KMSNEW\C$\Exchange Server Setup.log"),
        (r"e:\exchsrvr\BIN", "KMSNEW", r"\\KMSNEW\E$\exchsrvr\BIN"),
        ("D:", "KMSNEW", "\\\\KMSNEW\\D$\\"),
    ],
)
def test_a_server_path_is_named_through_its_admin_share_from_a_jump_host(
    path: str, remote: str | None, expected: str
) -> None:
    assert shell_path(path, remote) == expected


@pytest.mark.parametrize(
    ("install_path", "family", "kmserver"),
    [
        # 5.5 and 2000: <Services>\BIN (KB Q235418); also when the version is not known yet.
        (r"C:\EXCHSRVR", (5, 5), r"C:\EXCHSRVR\BIN\KMSERVER.EXE"),
        ("C:\\Program Files\\Exchsrvr\\", (6, 0), r"C:\Program Files\Exchsrvr\BIN\KMSERVER.EXE"),
        (r"C:\EXCHSRVR", None, r"C:\EXCHSRVR\BIN\KMSERVER.EXE"),
        # 4.0 and 5.0: SECURITY\BIN beside the Exchange folder (KB Q143380).
        (r"C:\EXCHSRVR", (4, 0), r"C:\SECURITY\BIN\KMSERVER.EXE"),
        ("C:\\EXCHSRVR\\", (5, 0), r"C:\SECURITY\BIN\KMSERVER.EXE"),
        (r"D:\Apps\Exchsrvr", (5, 0), r"D:\Apps\SECURITY\BIN\KMSERVER.EXE"),
    ],
)
def test_km_binaries_are_read_where_each_version_installs_them(
    install_path: str, family: tuple[int, int] | None, kmserver: str
) -> None:
    found, kmsmsg = kms_binary_paths(install_path, family)
    assert found == kmserver
    assert kmsmsg == kmserver.replace("KMSERVER.EXE", "KMSMSG.DLL")


def test_a_4_0_or_5_0_install_reads_store_under_exchsrvr_and_km_under_security() -> None:
    line = " & ".join(files_sections((r"C:\EXCHSRVR",), family=(5, 0)))
    assert r'name="C:\\SECURITY\\BIN\\KMSERVER.EXE"' in line
    assert r'name="C:\\SECURITY\\BIN\\KMSMSG.DLL"' in line
    assert r'name="C:\\EXCHSRVR\\BIN\\STORE.EXE"' in line


def test_section_names_are_checked() -> None:
    with pytest.raises(ValueError, match="lower-case letters"):
        section("Bad Name", "ver")


def test_the_answer_splits_into_sections_with_crlf_intact() -> None:
    stdout = (
        "==exchops:begin:one== \r\n"
        "\r\nSERVICE_NAME: MSExchangeKMS\r\n"
        "==exchops:end:ok== \r\n"
        "==exchops:begin:two== \r\n"
        "ERROR: The system was unable to find the specified registry key or value.\r\n"
        "==exchops:end:failed==\r\n"
        "==exchops:begin:three==\r\n"
        "==exchops:end:ok==\r\n"
    )
    sections = split_sections(stdout)
    assert sections["one"].text == "\r\nSERVICE_NAME: MSExchangeKMS\r\n"
    assert sections["one"].succeeded
    assert not sections["two"].succeeded
    assert sections["two"].text.startswith("ERROR: The system was unable")
    assert sections["three"].text == ""


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("==exchops:begin:one==\r\nhalf an answer\r\n", "'one' was cut short"),
        ("==exchops:begin:one==\r\n==exchops:begin:two==\r\n", "'one' has no end marker"),
        ("==exchops:end:ok==\r\n", "an end marker without a section"),
    ],
)
def test_a_mangled_answer_is_a_probe_error(stdout: str, message: str) -> None:
    with pytest.raises(ProbeError, match=message):
        split_sections(stdout)


def test_batches_stay_under_the_budget_and_keep_every_part_in_order() -> None:
    parts = [f"echo part{index:03d}" + "x" * 80 for index in range(100)]
    lines = batch(parts, budget=1000)
    assert all(len(line) <= 1000 for line in lines)
    assert " & ".join(lines) == " & ".join(parts)
    assert len(lines) > 1
    assert batch(["y" * 2000, "z"], budget=1000) == ["y" * 2000, "z"]
    assert batch([]) == []


class Answers:
    """Answers each command line with the sections it asks for, each saying its command."""

    def __init__(self, drop: str = "") -> None:
        self.lines: list[str] = []
        self.drop = drop

    def __call__(self, line: str) -> SimpleNamespace:
        self.lines.append(line)
        out = ""
        for part in line.split(" & echo =="):
            name = part.split("begin:", 1)[1].split("==", 1)[0]
            if name != self.drop:
                out += f"==exchops:begin:{name}==\r\nsaid {name}\r\n==exchops:end:ok== \r\n"
        return SimpleNamespace(stdout=out)


def test_named_commands_come_back_as_sections_with_their_streams() -> None:
    answers = Answers()
    sections = run_commands(answers, {"query": "sc query X", "qc": "sc qc X"})
    assert len(answers.lines) == 1
    assert sections.need("qc").streams() == ("said qc\r\n", "", 0)
    assert sections.need("query").name == "query"


def test_a_section_that_did_not_come_back_is_a_probe_error() -> None:
    with pytest.raises(
        ProbeError, match="lacks the section\\(s\\) qc: the command line was cut short"
    ):
        run_commands(Answers(drop="qc"), {"query": "sc query X", "qc": "sc qc X"})
    with pytest.raises(ProbeError, match="the answer has no section 'other'"):
        run_commands(Answers(), {"query": "sc query X"}).need("other")


def test_the_probe_reads_windows_version_build_and_service_pack_in_the_same_line() -> None:
    key = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
    for remote, unc in ((None, ""), ("KMS01", "\\\\KMS01\\")):
        probe = facts_probe(10, remote=remote)
        for value in ("CurrentVersion", "CurrentBuildNumber", "CSDVersion"):
            assert f'reg query "{unc}{key}" /v {value}' in probe
        assert "\n" not in probe
    asked = re.findall(r"echo ==exchops:begin:([a-z0-9_]+)==", facts_probe(0))
    assert asked[4:7] == ["windows_version", "windows_build", "windows_sp"]
