# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts assembled from recorded probe answers (plugins/plugin_utils/_facts.py).

The answers in tests/unit/fixtures/probe/ were recorded from the lab answering the real probe
line; variants below edit one reading to create the disagreements real hosts can show."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._facts import (
    FactsError,
    assemble,
    read_facts,
    store_version_of,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._probe import split_sections

FIXTURES = Path(__file__).resolve().parents[3] / "unit" / "fixtures" / "probe"


def answer(name: str) -> str:
    return (FIXTURES / f"{name}.bin").read_bytes().decode("utf-8")


def facts(text: str, events: int = 10):
    return assemble(split_sections(text), events)


def test_the_kb_target_is_sp3_with_rtm_km_binaries_that_do_not_match() -> None:
    readings = facts(answer("kb_target"))
    exchange = readings.facts
    assert exchange["release"] == "Exchange Server 5.5 SP3"
    assert (exchange["build"], exchange["build_number"], exchange["service_pack"]) == (
        "5.5.2650.0",
        2650,
        3,
    )
    assert exchange["kms"]["binary_build"] == "5.5.1960.8"
    assert exchange["kms"]["matches_server"] is False
    assert exchange["kms"]["service"]["state"] == "stopped"
    assert [event["id"] for event in exchange["kms"]["events"]] == [5389]
    assert readings.warnings == []
    assert readings.needs_files_of is None


def test_the_kb_source_matches_its_own_service_pack() -> None:
    exchange = facts(answer("kb_source")).facts
    assert exchange["kms"]["matches_server"] is True


def test_an_sp4_server_whose_kmserver_carries_the_sp3_build_still_matches_it() -> None:
    # No source lists Kmserver.exe per SP (5.5 SP4 was a collection of fixes): only the CD's
    # build under a service pack is the sourced mismatch (KB Q259906, Q192044).
    text = (
        answer("kb_source")
        .replace("\tREG_DWORD\t0xa5a", "\tREG_DWORD\t0xa5d")
        .replace("ServicePackNumber\tREG_DWORD\t0x3", "ServicePackNumber\tREG_DWORD\t0x4")
    )
    exchange = facts(text).facts
    assert (exchange["build"], exchange["kms"]["binary_build"]) == ("5.5.2653.0", "5.5.2650.12")
    assert exchange["kms"]["matches_server"] is True
    assert exchange["kms"]["binary_release"] == "Exchange Server 5.5 SP3"


def test_a_host_without_exchange_is_an_answer_not_an_error() -> None:
    exchange = facts(answer("no_exchange")).facts
    assert exchange["installed"] is False
    assert exchange["kms"] == {
        "installed": False,
        "service": {"name": "MSExchangeKMS", "state": "absent", "start_mode": None},
        "events": [],
    }


def test_exchange_2016_is_named_from_the_v15_setup_key() -> None:
    exchange = facts(answer("exchange2016")).facts
    assert (exchange["release"], exchange["build"]) == ("Exchange Server 2016 CU23", "15.1.2507.6")
    assert "v15" in exchange["sources"]["build"]


def test_without_wmic_the_facts_rest_on_the_registry_and_say_so() -> None:
    readings = facts(answer("windows2000"))
    assert readings.facts["release"] == "Exchange Server 5.5 SP3"
    assert "binary_build" not in readings.facts["kms"]
    assert readings.facts["sources"]["file_versions"] == "unavailable (wmic missing)"
    assert any("'wmic' is not available" in warning for warning in readings.warnings)


def test_an_sp_build_that_disagrees_with_newestbuild_is_reported_with_both_readings() -> None:
    text = answer("kb_source").replace(
        "ServicePackBuild\tREG_DWORD\t0xa5a", "ServicePackBuild\tREG_DWORD\t0x990", 1
    )
    readings = facts(text)
    (inconsistency,) = readings.facts["inconsistent"]
    assert inconsistency["what"] == "server build"
    assert inconsistency["readings"]["NewestBuild"] == 2650
    assert inconsistency["readings"]["ServicePackBuild"] == 2448
    assert inconsistency["disagree"] == ["ServicePackBuild"]
    assert readings.facts["build"] == "5.5.2650.0"
    assert any("disagree" in warning for warning in readings.warnings)


def test_a_km_server_without_its_service_is_partly_installed() -> None:
    text = answer("kb_target")
    start = text.index("==exchops:begin:kms_qc==")
    end = text.index("==exchops:begin:kmserver_0==")
    missing = (
        "==exchops:begin:kms_qc== \r\n[SC] OpenService FAILED 1060:\r\n\r\n"
        "The specified service does not exist as an installed service.\r\n\r\n"
        "==exchops:end:failed== \r\n==exchops:begin:kms_query== \r\n"
        "[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\n"
        "The specified service does not exist as an installed service.\r\n\r\n"
        "==exchops:end:failed== \r\n"
    )
    readings = facts(text[:start] + missing + text[end:])
    assert readings.facts["kms"]["installed"] is False
    assert readings.facts["kms"]["service"]["state"] == "absent"
    assert any("only partly installed" in warning for warning in readings.warnings)


def test_an_exchange_installed_elsewhere_asks_for_its_binaries() -> None:
    text = answer("kb_source").replace(
        "Services\tREG_SZ\tC:\\EXCHSRVR", "Services\tREG_SZ\tE:\\EXCHSRVR", 1
    )
    readings = facts(text)
    assert readings.needs_files_of == "E:\\EXCHSRVR"


def test_zero_events_skips_the_event_section() -> None:
    assert facts(answer("kb_target"), events=0).facts["kms"]["events"] == []
    assert "events" not in facts(answer("kb_target"), events=0).sources


def test_events_read_say_where_they_came_from_even_when_there_are_none() -> None:
    # So a reader (and a rehearsal twin) can tell "WMI answered, no event" from "not read".
    for name in ("kb_target", "no_exchange"):
        readings = facts(answer(name))
        assert readings.sources["events"] == "Application log, source MSExchangeKMS (wmic ntevent)"
    assert facts(answer("no_exchange")).facts["kms"]["events"] == []


def test_a_garbled_section_names_itself() -> None:
    text = answer("kb_target").replace(
        "        STATE              : 1  STOPPED", "        STATE : sideways", 1
    )
    with pytest.raises(FactsError, match="kms_query"):
        facts(text)


VISTA_MISSING = "ERROR: The system was unable to find the specified registry key or value.\r\n"
# reg.exe 3.0's words (docs/windows-output.md#e16), and with one space as a report quoted them.
REG3_MISSING = "Error:  The system was unable to find the specified registry key or value\r\n"
REG3_MISSING_ONE_SPACE = (
    "Error: The system was unable to find the specified registry key or value\r\n"
)


def answered(text: str, section: str, answer: str) -> str:
    """`text` with the section's answer replaced by `answer` (its end marker kept)."""
    begin = f"==exchops:begin:{section}== \r\n"
    start = text.index(begin) + len(begin)
    end = text.index("==exchops:end:", start)
    return text[:start] + answer + text[end:]


@pytest.mark.parametrize("missing", [REG3_MISSING, REG3_MISSING_ONE_SPACE])
def test_a_2003_host_whose_reg_says_missing_in_its_own_words_gets_its_facts(missing: str) -> None:
    text = answer("kb_target")
    for section in ("setup_2007", "setup_2010", "setup_2013"):
        text = answered(text, section, missing)
    assert text.count(missing) == 3 and VISTA_MISSING not in text
    readings = facts(text)
    assert readings.facts["release"] == "Exchange Server 5.5 SP3"
    assert readings.facts["kms"]["binary_build"] == "5.5.1960.8"
    assert readings.warnings == []


@pytest.mark.parametrize("section", ["setup_2013", "setup_2010", "setup_2007"])
def test_another_generations_unreadable_answer_is_a_warning_that_quotes_it(section: str) -> None:
    text = answered(answer("kb_target"), section, "Fehler: Der Registrierungsschluessel fehlt\r\n")
    readings = facts(text)
    assert readings.facts["release"] == "Exchange Server 5.5 SP3"
    assert readings.facts["kms"]["matches_server"] is False
    (warning,) = readings.warnings
    assert warning.startswith(f"{section}: the answer to HKLM\\SOFTWARE\\Microsoft\\")
    assert "'Fehler: Der Registrierungsschluessel fehlt'" in warning
    assert "This host shows Exchange Server 5.5, so its facts stand" in warning


def test_a_reg_failure_in_another_generations_section_is_quoted_as_reg_said_it() -> None:
    text = answered(answer("kb_target"), "setup_2013", "Error:  Access is denied\r\n")
    (warning,) = facts(text).warnings
    assert "could not be read ('Error:  Access is denied')" in warning


def test_the_quoted_answer_is_short_and_masked() -> None:
    password = "HZGYYHACWLQACTI"  # the example KM Server startup password of KB Q184420
    long_line = "x" * 300
    text = answered(answer("kb_target"), "setup_2013", f"{long_line}\r\n")
    text = answered(
        text,
        "setup_2010",
        f"    ImagePath\tREG_EXPAND_SZ\tC:\\Exchsrvr\\Bin\\Kmserver.exe {password}\r\n",
    )
    readings = facts(text)
    assert readings.facts["release"] == "Exchange Server 5.5 SP3"
    first, second = readings.warnings
    assert first.startswith("setup_2013:") and f"'{'x' * 117}...'" in first
    assert second.startswith("setup_2010:") and "ImagePath ********" in second
    assert password not in " ".join(readings.warnings)


def test_a_2010_server_stands_when_the_2013_section_cannot_be_read() -> None:
    text = answer("exchange2016")
    v15 = text[text.index("\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\ExchangeServer\\v15") :]
    v14 = (
        v15[: v15.index("==exchops:end:")]
        .replace("\\v15\\Setup", "\\v14\\Setup")
        .replace("0xf\r\n", "0xe\r\n")
        .replace("MsiProductMinor    REG_DWORD    0x1", "MsiProductMinor    REG_DWORD    0x3")
        .replace("0x9cb", "0x7b")
        .replace("MsiBuildMinor    REG_DWORD    0x6", "MsiBuildMinor    REG_DWORD    0x4")
    )
    text = answered(answered(text, "setup_2010", v14), "setup_2013", "garbled\r\n")
    readings = facts(text)
    assert (readings.facts["release"], readings.facts["build"]) == (
        "Exchange Server 2010 SP3",
        "14.3.123.4",
    )
    (warning,) = readings.warnings
    assert warning.startswith("setup_2013:") and "shows Exchange Server 2010" in warning


def test_the_generation_that_is_there_still_refuses_when_it_cannot_be_read() -> None:
    text = answered(answer("kb_target"), "setup_legacy", "    Services\tREG_SZ\tC:\\EXCHSRVR\r\n")
    with pytest.raises(FactsError, match=r"^setup_legacy: line 1: cannot read .*before any key"):
        facts(text)


def test_an_unreadable_section_refuses_when_no_installed_exchange_is_found() -> None:
    text = answered(answer("no_exchange"), "setup_2013", "garbled\r\n")
    with pytest.raises(FactsError, match=r"^setup_2013: line 1: cannot read 'garbled'"):
        facts(text)
    # Store.exe missing: the Setup key alone is a leftover (KB Q178975), not an installed
    # generation, so an unreadable section beside it still refuses.
    leftover = answered(answer("kb_target"), "setup_2013", "garbled\r\n")
    leftover = answered(leftover, "store_0", "No Instance(s) Available.\r\n")
    with pytest.raises(FactsError, match="setup_2013"):
        facts(leftover)


def exchange_5_0(text: str) -> str:
    """kb_source turned into an Exchange 5.0 SP2 server (build 1460) whose KM Server runs from
    C:\\SECURITY\\BIN; the first round trip finds no Kmserver.exe under C:\\EXCHSRVR\\BIN."""
    for old, new in (
        ("Services Version\tREG_DWORD\t0x37", "Services Version\tREG_DWORD\t0x32"),
        ("ServicePackNumber\tREG_DWORD\t0x3", "ServicePackNumber\tREG_DWORD\t0x2"),
        ("ServicePackBuild\tREG_DWORD\t0xa5a", "ServicePackBuild\tREG_DWORD\t0x5b4"),
        ("NewestBuild\tREG_DWORD\t0xa5a", "NewestBuild\tREG_DWORD\t0x5b4"),
        ("C:\\Exchsrvr\\Bin\\Kmserver.exe", "C:\\SECURITY\\BIN\\KMSERVER.EXE"),
        ("Version=5.5.2650.23", "Version=5.0.1460.8"),
    ):
        assert old in text
        text = text.replace(old, new)
    for name in ("kmserver_0", "kmsmsg_0"):
        start = text.index(f"==exchops:begin:{name}==")
        end = text.index("==exchops:end:ok== \r\n", start) + len("==exchops:end:ok== \r\n")
        text = (
            text[:start]
            + f"==exchops:begin:{name}== \r\nNo Instance(s) Available.\r\n==exchops:end:ok== \r\n"
            + text[end:]
        )
    return text


def wmic_version(name: str, version: str) -> str:
    return (
        f"==exchops:begin:{name}== \r\n\r\r\n\r\r\nVersion={version}\r\r\n\r\r\n\r\r\n\r\r\n"
        "==exchops:end:ok== \r\n"
    )


def test_exchange_4_0_and_5_0_km_server_is_read_from_the_security_folder_beside_exchsrvr() -> None:
    # KB Q143380: the KMS file of 4.0 / 5.0 is SECURITY\\BIN\\KMSERVER.EXE, beside EXCHSRVR.
    first = exchange_5_0(answer("kb_source"))
    lines: list[str] = []

    def run(line: str) -> SimpleNamespace:
        lines.append(line)
        if len(lines) == 1:
            return SimpleNamespace(stdout=first)
        return SimpleNamespace(
            stdout=wmic_version("kmserver_0", "5.0.1460.8")
            + wmic_version("kmsmsg_0", "5.0.1460.8")
            + wmic_version("store_0", "5.0.1460.8")
        )

    _sections, readings = read_facts(run, "facts probe", 10)
    assert len(lines) == 2
    assert r'name="C:\\SECURITY\\BIN\\KMSERVER.EXE"' in lines[1]
    assert r'name="C:\\EXCHSRVR\\BIN\\STORE.EXE"' in lines[1]
    exchange = readings.facts
    assert exchange["release"] == "Exchange Server 5.0 SP2"
    kms = exchange["kms"]
    assert kms["installed"] is True
    assert kms["database_path"] == "C:\\SECURITY"
    assert kms["binary_build"] == "5.0.1460.8"
    assert kms["matches_server"] is True
    assert exchange["sources"]["kmserver_version"] == (
        "file version of C:\\SECURITY\\BIN\\KMSERVER.EXE (wmic datafile)"
    )
    assert readings.warnings == []


def test_a_5_0_answer_asks_for_the_km_binaries_of_its_own_layout() -> None:
    readings = facts(exchange_5_0(answer("kb_source")))
    assert (readings.needs_files_of, readings.files_family) == ("C:\\EXCHSRVR", (5, 0))


def test_exchange_5_5_keeps_its_km_database_in_kmsdata_under_exchsrvr() -> None:
    readings = facts(answer("kb_source"))
    assert readings.facts["kms"]["database_path"] == "C:\\EXCHSRVR\\KMSDATA"
    assert readings.needs_files_of is None


def without(text: str, *values: str) -> str:
    """The answer with the named values of the Setup key removed."""
    lines = text.split("\n")
    kept = [line for line in lines if not any(line.startswith(f"    {v}\t") for v in values)]
    assert len(kept) == len(lines) - len(values)
    return "\n".join(kept)


@pytest.mark.parametrize(
    ("missing", "build_from", "source"),
    [
        ((), "NewestBuild", "NewestBuild 2650"),
        (("NewestBuild",), "ServicePackBuild", "ServicePackBuild 2650"),
        (("NewestBuild", "ServicePackBuild"), "ServicePackNumber", "ServicePackNumber 3"),
    ],
)
def test_without_newestbuild_the_build_comes_from_the_service_pack_values(
    missing: tuple[str, ...], build_from: str, source: str
) -> None:
    # NewestBuild is documented for 4.0 only (KB Q158956); Services Version and
    # ServicePackNumber are what scanners read (docs/registry.md#setup-key).
    readings = facts(without(answer("kb_source"), *missing))
    exchange = readings.facts
    assert exchange["installed"] is True
    assert (exchange["build"], exchange["release"]) == ("5.5.2650.0", "Exchange Server 5.5 SP3")
    assert exchange["build_from"] == build_from
    assert exchange["sources"]["build"].endswith(f"Services Version 55, {source}")
    assert exchange["inconsistent"] == []
    hotfix_warnings = [warning for warning in readings.warnings if "does not show" in warning]
    assert len(hotfix_warnings) == (build_from == "ServicePackNumber")


def test_a_build_from_servicepacknumber_is_checked_against_store_exe() -> None:
    text = without(answer("kb_source"), "NewestBuild", "ServicePackBuild").replace(
        "ServicePackNumber\tREG_DWORD\t0x3", "ServicePackNumber\tREG_DWORD\t0x2", 1
    )
    readings = facts(text)
    assert readings.facts["build"] == "5.5.2448.0"
    (inconsistency,) = readings.facts["inconsistent"]
    assert inconsistency["readings"] == {"ServicePackNumber": 2, "Store.exe": "5.5.2650.23"}
    assert inconsistency["disagree"] == ["Store.exe"]
    assert any("taken from ServicePackNumber." in warning for warning in readings.warnings)


def test_a_store_exe_on_an_earlier_service_pack_is_the_one_store_version_the_facts_carry() -> None:
    # The registry says 5.5 SP3 but Store.exe is SP2's (KB Q243604: 5.5.2448.8): the service
    # pack did not complete (KB Q278518); _parity reads the version back with store_version_of.
    half = facts(answer("kb_source").replace("Version=5.5.2650.23", "Version=5.5.2448.8", 1)).facts
    (inconsistency,) = half["inconsistent"]
    assert inconsistency["disagree"] == ["Store.exe"]
    assert store_version_of(half) == "5.5.2448.8"
    assert store_version_of(facts(answer("kb_source")).facts) is None
    assert store_version_of({"inconsistent": [{"what": "KM Server binaries"}]}) is None


@pytest.mark.parametrize(
    ("text_change", "shown"),
    [
        (("NewestBuild", "ServicePackBuild", "ServicePackNumber"), "ServicePackNumber (None)"),
        (("Services Version",), "Services Version (None)"),
    ],
)
def test_a_setup_key_that_names_no_build_is_not_an_install(
    text_change: tuple[str, ...], shown: str
) -> None:
    readings = facts(without(answer("kb_source"), *text_change))
    assert readings.facts["installed"] is False
    assert "build_from" not in readings.facts
    assert any(shown in warning and "Q178975" in warning for warning in readings.warnings)


def test_a_service_pack_number_the_table_does_not_know_names_no_build() -> None:
    text = without(answer("kb_source"), "NewestBuild", "ServicePackBuild").replace(
        "ServicePackNumber\tREG_DWORD\t0x3", "ServicePackNumber\tREG_DWORD\t0x9", 1
    )
    readings = facts(text)
    assert readings.facts["installed"] is False
    assert any("ServicePackNumber (9)" in warning for warning in readings.warnings)


def test_exchange_2007_and_later_take_the_build_from_the_msi_values() -> None:
    assert facts(answer("exchange2016")).facts["build_from"] == "MsiBuildMajor"


# Where KMS takes its startup password from: MasterPasswordPath (KB Q196129).
KMS_SERVER_DISK = (
    "\r\n! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\KMServer\r\n"
    "    MasterPasswordPath\tREG_SZ\tA:\\\r\n    BackupPasswordPath\tREG_SZ\tA:\\\r\n\r\n"
)


def test_a_typed_startup_password_is_reported_from_an_empty_master_password_path() -> None:
    readings = facts(answer("kb_target"))
    kms = readings.facts["kms"]
    assert (kms["password_source"], kms["master_password_path"]) == ("start_parameter", "")
    assert readings.sources["password_source"] == (
        "MasterPasswordPath under HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer"
    )


def test_a_startup_disk_is_reported_from_a_drive_in_master_password_path() -> None:
    readings = facts(answered(answer("kb_target"), "kms_server_key", KMS_SERVER_DISK))
    kms = readings.facts["kms"]
    assert (kms["password_source"], kms["master_password_path"]) == ("disk", "A:\\")
    assert readings.warnings == []


def test_no_kmserver_key_reports_no_password_source() -> None:
    exchange = facts(answer("no_exchange")).facts
    assert "password_source" not in exchange["kms"]
    text = answered(answer("kb_target"), "kms_server_key", VISTA_MISSING)
    assert "password_source" not in facts(text).facts["kms"]


def test_an_unreadable_kmserver_key_is_a_warning_and_sinks_no_fact() -> None:
    text = answered(answer("kb_target"), "kms_server_key", "ERROR: Access is denied.\r\n")
    readings = facts(text)
    assert readings.facts["release"] == "Exchange Server 5.5 SP3"
    assert "password_source" not in readings.facts["kms"]
    assert len(readings.warnings) == 1
    assert readings.warnings[0].startswith(
        "kms_server_key: the answer to HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer could not "
        "be read"
    )
    assert "(MasterPasswordPath, KB Q196129) is unknown." in readings.warnings[0]


# ---------------------------------------------------------------------------------------------
# Windows' own version (docs/registry.md#windows-version)

WINDOWS_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"


def test_a_server_read_through_a_jump_host_reports_its_windows_as_the_registry_gives_it() -> None:
    readings = facts(answer("jump_nt4_target"))
    exchange = readings.facts
    # NT 4.0 SP6a keeps SP6's CSDVersion (docs/registry.md#windows-version): reported as read.
    assert exchange["windows"] == {
        "version": "4.0",
        "build": "1381",
        "service_pack": "Service Pack 6",
    }
    assert readings.sources["windows"] == (
        f"{WINDOWS_KEY}: CurrentVersion, CurrentBuildNumber, CSDVersion"
    )
    assert (exchange["release"], exchange["kms"]["binary_build"]) == (
        "Exchange Server 5.5 SP3",
        "5.5.1960.8",
    )
    assert readings.warnings == []


def test_a_windows_without_a_service_pack_has_a_null_service_pack_and_says_why() -> None:
    readings = facts(answered(answer("jump_nt4_target"), "windows_sp", VISTA_MISSING))
    assert readings.facts["windows"] == {"version": "4.0", "build": "1381", "service_pack": None}
    assert readings.sources["windows"].endswith(
        ": CurrentVersion, CurrentBuildNumber, CSDVersion (not there)"
    )
    assert readings.warnings == []


def test_an_unreadable_windows_value_is_a_warning_and_sinks_no_fact() -> None:
    text = answered(answer("jump_nt4_target"), "windows_version", "ERROR: Access is denied.\r\n")
    readings = facts(text)
    assert readings.facts["windows"] == {
        "version": None,
        "build": "1381",
        "service_pack": "Service Pack 6",
    }
    assert readings.facts["release"] == "Exchange Server 5.5 SP3"
    assert readings.sources["windows"].endswith(
        ": CurrentVersion (unreadable), CurrentBuildNumber, CSDVersion"
    )
    (warning,) = readings.warnings
    assert warning.startswith(
        f"windows_version: the answer to {WINDOWS_KEY} /v CurrentVersion could not be read ("
    )
    assert warning.endswith("so windows.version is unknown.")


def test_an_answer_recorded_before_the_windows_reading_has_null_members_and_no_source() -> None:
    readings = facts(answer("kb_target"))
    assert readings.facts["windows"] == {"version": None, "build": None, "service_pack": None}
    assert "windows" not in readings.sources
