# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`parse_net_time` (plugins/plugin_utils/_winout/net.py) and `parse_at_added` (at.py): the time of
day on a server's clock and the ID of the `at` job added there, and the answers that are neither
(docs/windows-output.md#net-time, #at).
"""

from __future__ import annotations

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    CommandFailed,
    ParseError,
    ServerClock,
    parse_at_added,
    parse_net_time,
)

DONE = "\r\nThe command completed successfully.\r\n\r\n"
DEPRECATED = "The AT command has been deprecated. Please use schtasks.exe instead.\r\n\r\n"


@pytest.mark.parametrize(
    ("when", "clock"),
    [
        ("12/3/2026 10:15:02 PM", (22, 15, 2)),
        ("12/3/2026 12:05:00 AM", (0, 5, 0)),
        ("12/3/2026 12:05:00 PM", (12, 5, 0)),
        ("03.12.2026 22:15:02", (22, 15, 2)),  # a 24-hour locale: no designator
        ("2026-12-03 7:01", (7, 1, 0)),
        ("12/3/2026 9:30:00 a.m.", (9, 30, 0)),
    ],
)
def test_the_time_of_day_is_read_from_the_end_of_the_line(
    when: str, clock: tuple[int, int, int]
) -> None:
    line = f"Current time at \\\\KMS-NEW is {when}"
    read = parse_net_time(f"{line}\r\n{DONE}", "", 0)
    assert read == ServerClock(*clock, line=line)
    assert read.seconds == clock[0] * 3600 + clock[1] * 60 + clock[2]


@pytest.mark.parametrize(
    "when", ["03.12.2026 10:15:02 nachm.", "12/3/2026 13:15:02 PM", "12/3/2026 25:00", "soon"]
)
def test_a_time_that_cannot_be_read_unambiguously_is_refused_never_guessed(when: str) -> None:
    with pytest.raises(ParseError, match="net time"):
        parse_net_time(f"Current time at \\\\KMS-NEW is {when}\r\n{DONE}", "", 0)


def test_net_times_failure_is_its_own_text() -> None:
    with pytest.raises(CommandFailed, match="System error 53 has occurred."):
        parse_net_time(
            "System error 53 has occurred.\r\n\r\nThe network path was not found.\r\n", "", 2
        )


def test_output_without_the_current_time_line_is_not_net_time() -> None:
    with pytest.raises(ParseError, match="no 'Current time at' line"):
        parse_net_time(DONE, "", 0)


@pytest.mark.parametrize("before", ["", DEPRECATED])
def test_the_added_jobs_id_is_read_after_the_deprecation_line_or_without_it(before: str) -> None:
    assert parse_at_added(f"{before}Added a new job with job ID = 7\r\n", "", 0) == 7


@pytest.mark.parametrize(
    ("stdout", "exit_code", "says"),
    [
        (f"{DEPRECATED}The request is not supported.\r\n", 1, "The request is not supported."),
        (f"{DEPRECATED}The service has not been started.\r\n", 1, "has not been started"),
        ("", 1, "the command printed nothing"),
        ("", 0, "at.exe printed no job ID"),
    ],
)
def test_a_job_that_was_not_added_fails_with_at_exes_text(
    stdout: str, exit_code: int, says: str
) -> None:
    with pytest.raises(CommandFailed, match=says):
        parse_at_added(stdout, "", exit_code)
