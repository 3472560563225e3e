# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`parse_type` (plugins/plugin_utils/_winout/type.py): a file's text, a missing file, and
the failures that are neither.
"""

from __future__ import annotations

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    SETUP_LOG_INITIALIZED,
    CommandFailed,
    parse_type,
)


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
