# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`parse_setup_log` and `setup_log_appended` (plugins/plugin_utils/_winout/setup_log.py): the
"++++ Microsoft Exchange Setup initialized ++++" and "ID no: 0x..." / "NT ID: 0x..." lines of the Exchange
setup log (KB Q290226, Q248445), written inline.
"""

from __future__ import annotations

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    SETUP_LOG_INITIALIZED,
    parse_setup_log,
    setup_log_appended,
)

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
    assert [(run.started, len(run.lines)) for run in runs] == [(True, 4), (True, 4), (True, 3)]
    assert runs[2].error_ids == (0xC0020002,)
    assert (
        runs[2].last_line
        == "[10:42:01] Setup failed. The system cannot find the file specified. ID no: 0xc0020002"
    )


@pytest.mark.parametrize(
    ("line", "ids"),
    [
        (
            "The System cannot find the file specified: Microsoft Windows NT ID no: 0xc0020002",
            (0xC0020002,),
        ),
        ("Access is denied NT ID: 0xC0020005", (0xC0020005,)),
        ("Bound to appropriate DSA", ()),
    ],
)
def test_both_forms_of_setup_error_ids_are_kept_as_a_supporting_reading(
    line: str, ids: tuple[int, ...]
) -> None:
    # Q290226 "ID no:", Q248445 "NT ID:"; both are shown in dialogs, Q202258's log ends plainly.
    (run,) = parse_setup_log(RUN_OK + line + "\r\n")
    assert run.error_ids == ids


def test_a_log_without_any_completion_wording_is_read_as_it_is() -> None:
    # Q202258: a run whose log simply ends; nothing in it says how the run ended.
    text = f"{SETUP_LOG_INITIALIZED}\r\n[10:42:01] Bound to local DSA\r\n[10:42:02] Bound to appropriate DSA\r\n"
    (run,) = parse_setup_log(text)
    assert (
        run.started and run.error_ids == () and run.last_line.endswith("Bound to appropriate DSA")
    )


def test_lines_before_the_first_initialized_line_are_a_run_begun_earlier() -> None:
    runs = parse_setup_log("[10:42:04] Installed C:\\EXCHSRVR\\BIN\\STORE.EXE\r\n")
    assert len(runs) == 1 and not runs[0].started


@pytest.mark.parametrize("text", ["", "\r\n\r\n"])
def test_an_empty_log_has_no_runs(text: str) -> None:
    assert parse_setup_log(text) == ()


def test_only_what_was_appended_after_the_recorded_size_is_read() -> None:
    whole = LOG_INSTALL + RUN_FAILED
    appended = setup_log_appended(whole, len(LOG_INSTALL))
    assert appended == RUN_FAILED
    (run,) = parse_setup_log(appended)
    assert run.error_ids == (0xC0020002,)


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
