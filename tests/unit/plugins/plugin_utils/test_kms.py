# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What KM Server is (plugins/plugin_utils/_kms.py): the startup password's command-line rule,
the one quoting of `sc start`, the events' meanings and the exit codes' meanings."""

from __future__ import annotations

import re
import typing as t
from datetime import datetime, timezone

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._builds import Build
from ansible_collections.exchops.kms.plugins.plugin_utils._kms import (
    EVENTS,
    PasswordSource,
    check_startup_password_for_command_line,
    event_dict,
    exit_code_meaning,
    explain_events,
    failure_events,
    from_the_cd,
    is_hotfix_build,
    kms_database_folder,
    kms_hotfix,
    older_than_database,
    password_source,
    q259906_for,
    start_parameter,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._service import sc_start
from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    EventRecord,
    ServiceStatus,
    parse_reg_query,
)

PASSWORD = "HZGYYHACWLQACTI"  # the example KM Server startup password of KB Q184420
WHEN = datetime(2024, 1, 31, 22, 15, tzinfo=timezone.utc)


def event(event_id: int, record: int, source: str = "MSExchangeKMS") -> EventRecord:
    return EventRecord(record, event_id, source, WHEN, "Information", f"text of {event_id}")


@pytest.mark.parametrize(
    "password",
    [PASSWORD, "Ab1&|<>^()", "a,b;c=d", "back\\slash", "caf\u00e9"],
    ids=["letters", "cmd operators", "cmd separators", "inner backslash", "accented"],
)
def test_a_password_the_quoted_sc_start_line_passes_intact_is_accepted(password: str) -> None:
    check_startup_password_for_command_line(password)


@pytest.mark.parametrize(
    "password",
    ["HZGY YHAC", "HZGY\tYHAC", 'HZGY"YHAC', "HZGY%PATH%", "HZGY!X!", "HZGY\nYHAC", "HZGY\\"],
    ids=["space", "tab", "quote", "percent", "exclamation", "line end", "trailing backslash"],
)
def test_a_password_cmd_or_sc_would_change_is_refused_without_repeating_it(password: str) -> None:
    with pytest.raises(ValueError, match="cannot pass it unchanged on the sc start") as caught:
        check_startup_password_for_command_line(password)
    assert password not in str(caught.value)


def test_the_one_sc_start_line_quotes_the_password_and_only_for_a_password() -> None:
    assert start_parameter("Ab&c") == '"Ab&c"'
    assert sc_start("MSExchangeKMS", "Ab&c") == 'sc start MSExchangeKMS "Ab&c"'
    assert sc_start("MSExchangeKMS", "Ab&c", remote="KMS01") == (
        'sc \\\\KMS01 start MSExchangeKMS "Ab&c"'
    )
    assert sc_start("MSExchangeDS") == "sc start MSExchangeDS"


def test_failure_events_are_the_kms_ones_oldest_first_whatever_the_source_case() -> None:
    events = [
        event(5057, 9),
        event(5389, 3, "MSexchangekms"),
        event(1004, 5),
        event(5389, 4, "ESE97"),
    ]
    assert [(e.event_id, e.record) for e in failure_events(events)] == [(5389, 3), (5057, 9)]


def test_each_failure_event_is_explained_with_its_meaning_and_the_first_ones_fix() -> None:
    text = explain_events([event(5058, 2), event(5057, 3)])
    assert text.startswith(
        'logged event 5058 (record 2, 2024-01-31T22:15:00+00:00, "text of 5058")'
    )
    assert EVENTS[5058].meaning in text and EVENTS[5057].meaning in text
    assert text.endswith(f"{EVENTS[5058].fix}.")


def test_5389_with_5015_points_to_the_service_accounts_rights() -> None:
    text = explain_events([event(5389, 1), event(5015, 2)])
    assert "together point to the service account's rights (KB Q274321)" in text
    assert text.endswith(f"{EVENTS[5015].fix}.")


def test_an_event_is_returned_in_the_modules_shape() -> None:
    assert event_dict(event(5389, 7)) == {
        "id": 5389,
        "source": "MSExchangeKMS",
        "time": "2024-01-31T22:15:00+00:00",
        "type": "Information",
        "record": 7,
        "message": "text of 5389",
    }


@pytest.mark.parametrize(
    ("win32", "service", "meaning"),
    [
        (2140, 0, r"wrong or missing startup password \(event 5057, KB Q184420\)\. Check kms_"),
        (1066, 7, r"KMS's own code 7, whose meaning no source gives\. Read its events .*5058"),
        (
            0,
            0,
            r"without an error code\. Event 5389, .* \(KB Q259906; written for Exchange 5\.5, "
            r"so on Exchange 2000 the link is inferred\); that the exit code is then 0 is inferred",
        ),
    ],
)
def test_kms_exit_codes_say_why_it_stopped(win32: int, service: int, meaning: str) -> None:
    status = ServiceStatus("MSExchangeKMS", 0x10, "stopped", 1, (), win32, service, 0, 0)
    assert re.search(meaning, exit_code_meaning(status) or "")


def test_an_exit_code_without_a_known_meaning_says_nothing() -> None:
    status = ServiceStatus("MSExchangeKMS", 0x10, "stopped", 1, (), 1068, 0, 0, 0)
    assert exit_code_meaning(status) is None


@pytest.mark.parametrize(
    ("install_path", "family", "folder"),
    [
        (r"C:\EXCHSRVR", (5, 5), r"C:\EXCHSRVR\KMSDATA"),  # KB Q201271
        ("C:\\Program Files\\Exchsrvr\\", (6, 0), r"C:\Program Files\Exchsrvr\KMSDATA"),
        (r"C:\EXCHSRVR", (4, 0), r"C:\SECURITY"),  # beside EXCHSRVR (KB Q143380, Q155216)
        (r"E:\EXCHSRVR", (5, 0), r"E:\SECURITY"),
        (r"C:\EXCHSRVR", (6, 5), None),
        (r"C:\Program Files\Microsoft\Exchange Server\V15", (15, 1), None),
    ],
)
def test_the_km_database_folder_depends_on_the_version(
    install_path: str, family: tuple[int, int], folder: str | None
) -> None:
    assert kms_database_folder(install_path, family) == folder


@pytest.mark.parametrize(
    ("version", "cited"),
    [
        ("5.5", "KB Q259906"),
        ("2000", "KB Q259906, written for Exchange 5.5; for Exchange 2000 the link is inferred"),
        ("5.0", "KB Q259906, written for Exchange 5.5; for Exchange 5.0 the link is inferred"),
    ],
)
def test_q259906_is_cited_as_inferred_outside_exchange_5_5(version: str, cited: str) -> None:
    # KB Q259906 applies to Exchange Server 5.5 only.
    assert q259906_for(version) == cited


def test_the_5389_meaning_says_the_kb_is_for_exchange_5_5() -> None:
    assert "written for Exchange 5.5, so on Exchange 2000 the link is inferred" in (
        EVENTS[5389].meaning
    )


# ---------------------------------------------------------------------------------------------
# Whose startup password, and from where (KB Q154531, Q198814, Q155216, Q196129)


def test_no_fix_text_sends_the_operator_to_the_password_of_the_new_servers_install() -> None:
    fix = EVENTS[5057].fix
    assert "written down when KM Server was installed" not in fix
    assert "ORIGINAL KM Server's password or disk" in fix
    assert "not the one shown when KM Server was installed on this server" in fix
    assert "KB Q154531, Q198814, Q155216" in fix


@pytest.mark.parametrize(
    ("master_password_path", "disk"),
    [
        ("A:\\", True),  # what KB Q196129 sets
        ("a:\\", True),
        ("B:\\KMS", True),
        ("A:", True),
        (" A:\\", True),
        ("", False),  # typed at every start
        ("\\", False),  # "If you remove the drive letter ..." (KB Q196129)
        ("KMS", False),
        (None, False),  # no such value
    ],
)
def test_disk_mode_is_a_drive_letter_at_the_start_of_master_password_path(
    master_password_path: str | None, disk: bool
) -> None:
    source = PasswordSource(master_password_path)
    assert source.disk is disk
    assert source.mode == ("disk" if disk else "start_parameter")


def test_the_password_source_is_read_from_the_kmserver_key(
    recorded: t.Callable[[str], t.Any],
) -> None:
    def read(name: str) -> PasswordSource:
        answer = recorded(f"reg_query/{name}")
        return password_source(
            parse_reg_query(*answer, key=r"HKLM\SOFTWARE\Microsoft\Exchange\KMServer")
        )

    assert read("kms_server_key_disk_vista") == PasswordSource("A:\\")
    assert read("kms_server_key_typed_vista") == PasswordSource("")
    assert read("e4_missing_key") == PasswordSource(None)


def test_event_5057_of_a_disk_mode_kms_points_to_the_original_servers_disk() -> None:
    text = explain_events([event(5057, 4)], PasswordSource("A:\\"))
    assert "MasterPasswordPath is 'A:\\' (HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer)" in text
    assert "the ORIGINAL KM Server's disk (KB Q154531, Q198814)" in text
    assert "Check kms_startup_password" not in text
    assert "Check kms_startup_password" in explain_events([event(5057, 4)], PasswordSource(""))
    stopped = ServiceStatus("MSExchangeKMS", 0x10, "stopped", 1, (), 2140, 0, 0, 0)
    assert "startup disk" in (exit_code_meaning(stopped, PasswordSource("A:\\")) or "")


# ---------------------------------------------------------------------------------------------
# Kmserver.exe against the build that last ran the KM database (KB Q259906)


@pytest.mark.parametrize(
    ("binary", "database", "older"),
    [
        ("5.5.1960.8", "5.5.2650.12", True),  # the KB case: the CD's build, the database SP3's
        ("5.5.2650.12", "5.5.2650.12", False),
        ("5.5.2650.10", "5.5.2650.12", False),  # the fourth part differs per file (Q243604)
        ("5.5.2650.12", "5.5.2653.0", True),
        ("5.5.2653.12", "5.5.2650.12", False),
        ("5.5.2448.0", "5.5.2606.0", True),  # below a KM Server hotfix (Q231307)
        ("6.0.6249.0", "5.5.2650.12", True),  # another Exchange version is never "not older"
        ("5.5.999.0", "5.5.2650.0", True),  # integers, not text
    ],
)
def test_kmserver_is_older_than_the_database_build_on_major_minor_build(
    binary: str, database: str, older: bool
) -> None:
    assert older_than_database(Build.parse(binary), Build.parse(database)) is older


@pytest.mark.parametrize(
    ("binary", "server", "cd"),
    [
        ("5.5.1960.8", "5.5.2650.0", True),  # KB Q259906 MORE INFORMATION, Q192044
        ("5.5.1960.8", "5.5.1960.8", False),  # an RTM server: nothing to reapply
        (
            "5.5.2650.12",
            "5.5.2653.0",
            False,
        ),  # an earlier SP's build proves nothing (docs/unsourced.md, U3)
        ("5.5.2232.0", "5.5.2650.0", False),
        ("6.0.4417.0", "6.0.6249.0", True),
        ("6.0.6249.0", "5.5.2650.0", True),  # another version's binary
    ],
)
def test_only_the_cds_build_under_a_service_pack_is_kmserver_from_the_cd(
    binary: str, server: str, cd: bool
) -> None:
    assert from_the_cd(Build.parse(binary), Build.parse(server)) is cd


@pytest.mark.parametrize(
    ("build", "kb", "hotfix_build"),
    [
        ("5.5.2602.0", "Q231751", True),
        ("5.5.2606.0", "Q231307", True),
        ("5.5.2608.0", "Q230780", True),
        ("5.5.2610.0", None, True),  # between SP2 and SP3: a hotfix no table here names
        ("5.5.2650.12", None, False),
        ("5.5.2448.0", None, False),
    ],
)
def test_kms_hotfix_builds_are_named_by_their_kb(
    build: str, kb: str | None, hotfix_build: bool
) -> None:
    hotfix = kms_hotfix(Build.parse(build))
    assert (hotfix.kb if hotfix else None, is_hotfix_build(Build.parse(build))) == (
        kb,
        hotfix_build,
    )
