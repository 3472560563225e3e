# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The parsers exchops.kms.exchange_service_pack adds to _winout.py: `sc config`, wmic's service
StartMode, `tasklist /fo csv`, `type FILE`, and the Exchange setup log.

Inputs are the tools' output as Windows prints it (CRLF; wmic's CR CR LF), written inline: sc's
"[SC] ChangeServiceConfig SUCCESS" and "[SC] OpenService FAILED 1060:" (windows-output.md §2.3),
wmic /value records (§4), tasklist's CSV and INFO lines (XP / 2003 and Vista+ wordings), and the
setup log's "++++ Microsoft Exchange Setup initialized ++++" / "ID no: 0x..." lines (KB Q158545,
Q290226).
"""

from __future__ import annotations

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    SETUP_LOG_INITIALIZED,
    CommandFailed,
    ParseError,
    ScFailure,
    TaskEntry,
    ToolMissing,
    parse_sc_config,
    parse_setup_log,
    parse_tasklist_csv,
    parse_type,
    parse_wmic_service_start_modes,
    setup_log_appended,
    split_merged_streams,
)

NOT_RECOGNIZED = (
    "'tasklist' is not recognized as an internal or external command,\r\n"
    "operable program or batch file.\r\n"
)

# ---------------------------------------------------------------------------------------------
# sc config


def test_sc_config_success_is_none() -> None:
    assert parse_sc_config("[SC] ChangeServiceConfig SUCCESS\r\n", "", 0) is None


def test_sc_config_of_a_missing_service_is_the_1060_failure_with_its_message() -> None:
    stdout = (
        "[SC] OpenService FAILED 1060:\r\n\r\n"
        "The specified service does not exist as an installed service.\r\n\r\n"
    )
    failure = parse_sc_config(stdout, "", 1060)
    assert failure == ScFailure(
        "OpenService", 1060, "The specified service does not exist as an installed service."
    )
    assert failure.service_missing


def test_sc_config_access_denied_is_the_failure_5() -> None:
    stdout = "[SC] OpenService FAILED 5:\r\n\r\nAccess is denied.\r\n\r\n"
    assert parse_sc_config(stdout, "", 5) == ScFailure("OpenService", 5, "Access is denied.")


@pytest.mark.parametrize(
    ("stdout", "stderr", "code", "match"),
    [
        ("", "", 1, "no \\[SC\\] line"),
        ("DESCRIPTION:\r\n        Modifies a service entry\r\n", "", 1639, "expected '\\[SC\\]"),
        (
            "[SC] ChangeServiceConfig SUCCESS\r\n[SC] ChangeServiceConfig SUCCESS\r\n",
            "",
            0,
            "expected",
        ),
    ],
)
def test_sc_config_refuses_output_it_does_not_know(
    stdout: str, stderr: str, code: int, match: str
) -> None:
    with pytest.raises(ParseError, match=match):
        parse_sc_config(stdout, stderr, code)


# ---------------------------------------------------------------------------------------------
# wmic service get Name,StartMode /value


def test_wmic_service_start_modes_are_named_as_sc_names_them() -> None:
    stdout = (
        "\r\r\n\r\r\nName=MSExchangeDS\r\r\nStartMode=Auto\r\r\n\r\r\n"
        "\r\r\nName=MSExchangeKMS\r\r\nStartMode=Manual\r\r\n\r\r\n"
        "\r\r\nName=Tlntsvr\r\r\nStartMode=Disabled\r\r\n\r\r\n\r\r\n\r\r\n"
    )
    assert parse_wmic_service_start_modes(stdout, "", 0) == {
        "MSExchangeDS": "auto",
        "MSExchangeKMS": "manual",
        "Tlntsvr": "disabled",
    }


def test_wmic_service_without_instances_is_empty() -> None:
    assert parse_wmic_service_start_modes("", "No Instance(s) Available.\r\n", 0) == {}


def test_wmic_service_with_an_unknown_start_mode_names_the_line() -> None:
    stdout = "\r\r\nName=Odd\r\r\nStartMode=Unknown\r\r\n\r\r\n"
    with pytest.raises(ParseError, match="line 3: cannot read 'StartMode=Unknown'"):
        parse_wmic_service_start_modes(stdout, "", 0)


def test_wmic_service_missing_on_the_host_raises_tool_missing() -> None:
    stderr = NOT_RECOGNIZED.replace("tasklist", "wmic")
    with pytest.raises(ToolMissing, match="'wmic' is missing"):
        parse_wmic_service_start_modes("", stderr, 9009)


# ---------------------------------------------------------------------------------------------
# tasklist /fi "imagename eq update.exe" /fo csv /nh


def test_tasklist_csv_gives_each_process_with_its_pid() -> None:
    stdout = (
        '"update.exe","2468","Services","0","12,345 K"\r\n'
        '"UPDATE.EXE","2472","RDP-Tcp#0","2","1.024 K"\r\n'
    )
    assert parse_tasklist_csv(stdout, "", 0) == (
        TaskEntry("update.exe", 2468, "Services", 0, "12,345 K"),
        TaskEntry("UPDATE.EXE", 2472, "RDP-Tcp#0", 2, "1.024 K"),
    )


def test_tasklist_csv_skips_the_header_line() -> None:
    stdout = (
        '"Image Name","PID","Session Name","Session#","Mem Usage"\r\n'
        '"update.exe","2468","Services","0","12,345 K"\r\n'
    )
    assert [entry.pid for entry in parse_tasklist_csv(stdout, "", 0)] == [2468]


@pytest.mark.parametrize(
    ("stdout", "stderr"),
    [
        (
            "INFO: No tasks are running which match the specified criteria.\r\n",
            "",
        ),  # Vista and later
        ("INFO: No tasks running with the specified criteria.\r\n", ""),  # XP / 2003
        ("", "INFO: No tasks are running which match the specified criteria.\r\n"),
    ],
)
def test_tasklist_that_matched_nothing_is_empty(stdout: str, stderr: str) -> None:
    assert parse_tasklist_csv(stdout, stderr, 0) == ()


def test_tasklist_errors_are_command_failures() -> None:
    with pytest.raises(CommandFailed, match="Invalid argument/option"):
        parse_tasklist_csv("", "ERROR: Invalid argument/option - '/x'.\r\n", 1)


def test_tasklist_merged_with_its_errors_still_tells_errors_apart() -> None:
    merged = "ERROR: The search filter cannot be recognized.\r\n"
    with pytest.raises(CommandFailed, match="search filter"):
        parse_tasklist_csv(*split_merged_streams(merged), 1)


def test_tasklist_missing_on_the_host_raises_tool_missing() -> None:
    with pytest.raises(ToolMissing, match="'tasklist' is missing"):
        parse_tasklist_csv(*split_merged_streams(NOT_RECOGNIZED), 9009)


@pytest.mark.parametrize(
    "line",
    [
        '"update.exe","PID?","Services","0","1 K"',
        '"update.exe","2468","Services"',
        "update.exe 2468 Services 0 1 K",
    ],
)
def test_tasklist_refuses_rows_that_are_not_its_csv(line: str) -> None:
    with pytest.raises(ParseError, match='expected "image"'):
        parse_tasklist_csv(line + "\r\n", "", 0)


# ---------------------------------------------------------------------------------------------
# type FILE


def test_type_returns_the_file_verbatim() -> None:
    text = f"{SETUP_LOG_INITIALIZED}\r\n[05:50:00] Setup completed successfully.\r\n"
    assert parse_type(text, "", 0) == text


@pytest.mark.parametrize(
    ("stdout", "stderr"),
    [
        ("", "The system cannot find the file specified.\r\n"),
        ("", "The system cannot find the path specified.\r\n"),
        ("The system cannot find the file specified.\r\n", ""),  # with 2>&1
    ],
)
def test_type_of_a_missing_file_is_none(stdout: str, stderr: str) -> None:
    assert parse_type(stdout, stderr, 1) is None


@pytest.mark.parametrize(
    ("stdout", "stderr", "code"),
    [
        ("", "Access is denied.\r\n", 1),
        (
            "",
            "The process cannot access the file because it is being used by another process.\r\n",
            1,
        ),
        ("", "", 1),
    ],
)
def test_type_failures_that_are_not_a_missing_file_raise(
    stdout: str, stderr: str, code: int
) -> None:
    with pytest.raises(CommandFailed):
        parse_type(stdout, stderr, code)


# ---------------------------------------------------------------------------------------------
# The Exchange setup log

LOG_INSTALL = (
    f"{SETUP_LOG_INITIALIZED}\r\n"
    "[05:50:00] Setup mode: complete installation of Microsoft Exchange Server, Key Management Server\r\n"
    "[05:50:00] Installing into C:\\EXCHSRVR\r\n"
    "[05:50:00] Setup completed successfully.\r\n"
)
RUN_OK = (
    f"{SETUP_LOG_INITIALIZED}\r\n"
    "[10:42:01] Microsoft Exchange Server 5.5 Service Pack 3 (build 5.5.2650); command line: update.exe\r\n"
    "[10:42:03] Service MSExchangeKMS was not restarted: it needs its startup password (start it with its password).\r\n"
    "[10:42:04] Setup completed successfully.\r\n"
)
RUN_FAILED = (
    f"{SETUP_LOG_INITIALIZED}\r\n"
    "[10:42:01] Checking the installed version of C:\\Exchsrvr\\Bin\\Kmserver.exe\r\n"
    "[10:42:01] Setup failed. The system cannot find the file specified. ID no: 0xc0020002\r\n"
)


def test_the_setup_log_is_cut_into_runs_at_each_initialized_line() -> None:
    runs = parse_setup_log(LOG_INSTALL + RUN_OK + RUN_FAILED)
    assert [(run.started, run.completed, run.failed) for run in runs] == [
        (True, True, False),
        (True, True, False),
        (True, False, True),
    ]
    assert runs[2].error_ids == (0xC0020002,)
    assert (
        runs[2].last_line
        == "[10:42:01] Setup failed. The system cannot find the file specified. ID no: 0xc0020002"
    )


def test_not_restarting_a_service_is_not_a_request_to_restart_the_computer() -> None:
    (run,) = parse_setup_log(RUN_OK)
    assert run.completed and not run.restart_required


@pytest.mark.parametrize(
    "line",
    [
        "You must restart your computer for the changes to take effect.",
        "[10:42:05] Setup requires that you reboot the server.",
    ],
)
def test_a_request_to_restart_the_computer_is_recognised(line: str) -> None:
    (run,) = parse_setup_log(RUN_OK + line + "\r\n")
    assert run.restart_required


def test_an_error_id_fails_a_run_even_after_a_completion_line() -> None:
    (run,) = parse_setup_log(RUN_OK + "Error: ID no: 0xc002041d\r\n")
    assert run.failed and not run.completed and run.error_ids == (0xC002041D,)


def test_lines_before_the_first_initialized_line_are_a_run_begun_earlier() -> None:
    runs = parse_setup_log("[10:42:04] Setup completed successfully.\r\n")
    assert len(runs) == 1 and not runs[0].started and runs[0].completed


@pytest.mark.parametrize("text", ["", "\r\n\r\n"])
def test_an_empty_log_has_no_runs(text: str) -> None:
    assert parse_setup_log(text) == ()


def test_only_what_was_appended_after_the_recorded_size_is_read() -> None:
    whole = LOG_INSTALL + RUN_FAILED
    appended = setup_log_appended(whole, len(LOG_INSTALL))
    assert appended == RUN_FAILED
    (run,) = parse_setup_log(appended)
    assert run.failed


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, LOG_INSTALL),
        (-1, LOG_INSTALL),
        (len(LOG_INSTALL) + 100, LOG_INSTALL),
        (len(LOG_INSTALL), ""),
    ],
)
def test_a_new_missing_or_replaced_log_is_read_whole(size: int, expected: str) -> None:
    assert setup_log_appended(LOG_INSTALL, size) == expected
