# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`parse_ping` (plugins/plugin_utils/_winout/ping.py): whether ping resolved the name, decided
by its first line and never by the exit code (docs/windows-output.md#ping).
"""

from __future__ import annotations

import pytest
from conftest import load

from ansible_collections.exchops.kms.plugins.plugin_utils._probe import Section
from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    CommandFailed,
    ParseError,
    PingResult,
    ToolMissing,
    parse_ping,
)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("e18_reply", PingResult(True, "KMSNEW", "10.0.0.21", 1, 1)),
        # A timeout after the name resolved: resolved, whatever the server answered.
        ("timed_out", PingResult(True, "KMSNEW", "10.0.0.21", 1, 0)),
        ("recorded_reply_lab", PingResult(True, "KMS-OK", "127.0.10.5", 1, 1)),
        (
            "microsoft_learn_example",
            PingResult(True, "example.microsoft.com", "192.168.239.132", None, None),
        ),
        ("address_target", PingResult(True, "10.0.0.21", None, 1, 1)),
        ("e19_could_not_find_host", PingResult(False, "KMSNEW")),
        ("recorded_not_found_lab", PingResult(False, "NOSUCH")),
    ],
)
def test_the_first_line_says_whether_the_name_resolved(case: str, expected: PingResult) -> None:
    assert parse_ping(*load("ping", case)) == expected


@pytest.mark.parametrize("exit_code", [0, 1])
def test_the_exit_code_decides_nothing_about_the_name(exit_code: int) -> None:
    stdout, stderr, _exit_code = load("ping", "e19_could_not_find_host")
    assert parse_ping(stdout, stderr, exit_code).resolved is False
    stdout, stderr, _exit_code = load("ping", "timed_out")
    assert parse_ping(stdout, stderr, exit_code).resolved is True


def test_the_line_without_its_advice_still_says_the_name_did_not_resolve() -> None:
    result = parse_ping("Ping request could not find host www.example.com.\r\n", "", 1)
    assert result == PingResult(False, "www.example.com")


def test_the_answer_through_the_probe_reads_the_same() -> None:
    # The doctor's probe merges ping's streams (2>&1) into one section.
    stdout, _stderr, _exit_code = load("ping", "e18_reply")
    assert parse_ping(*Section("hop_name", stdout, True).streams()).address == "10.0.0.21"


def test_pings_refusal_of_its_arguments_is_a_command_failure() -> None:
    with pytest.raises(CommandFailed, match="IP address must be specified."):
        parse_ping(*load("ping", "no_target"))


@pytest.mark.parametrize(
    ("stdout", "exit_code", "message"),
    [
        (load("ping", "garbage_unix_ping")[0], 0, "expected 'Pinging NAME"),
        ("\r\n\r\n", 0, "ping printed nothing"),
    ],
)
def test_an_answer_that_says_nothing_of_the_name_is_refused(
    stdout: str, exit_code: int, message: str
) -> None:
    with pytest.raises(ParseError, match=message):
        parse_ping(stdout, "", exit_code)


def test_a_missing_ping_is_a_missing_tool() -> None:
    missing = Section(
        "hop_name",
        "'ping' is not recognized as an internal or external command,\r\n"
        "operable program or batch file.\r\n",
        False,
    )
    with pytest.raises(ToolMissing, match="'ping' is missing"):
        parse_ping(*missing.streams(), section="hop_name")
