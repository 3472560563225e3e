# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`parse_tasklist_csv` (plugins/plugin_utils/_winout/tasklist.py): tasklist's CSV rows and
its INFO lines in the XP / 2003 and Vista+ wordings, written inline.
"""

from __future__ import annotations

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    CommandFailed,
    ParseError,
    TaskEntry,
    ToolMissing,
    parse_tasklist_csv,
    split_merged_streams,
)

NOT_RECOGNIZED = (
    "'tasklist' is not recognized as an internal or external command,\r\n"
    "operable program or batch file.\r\n"
)


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


@pytest.mark.parametrize(
    "info",
    [
        "INFO: No tasks are running which match the specified criteria.",  # Vista and later
        "INFO: No tasks running with the specified criteria.",  # XP / Server 2003
    ],
)
def test_both_eras_words_for_no_match_are_no_processes(info: str) -> None:
    assert parse_tasklist_csv(f"\r\n{info}\r\n", "", 0) == ()


def test_an_info_line_in_unknown_words_is_refused_as_such() -> None:
    with pytest.raises(
        ParseError, match=r"line 2: cannot read 'INFO: No processes found\.': an INFO"
    ):
        parse_tasklist_csv("\r\nINFO: No processes found.\r\n", "", 0)
