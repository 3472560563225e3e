# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`parse_xcopy` (plugins/plugin_utils/_winout/xcopy.py): the `<n> File(s) copied` count,
xcopy's messages and its exit codes (KB Q120829).
"""

from __future__ import annotations

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    ParseError,
    ToolMissing,
    parse_xcopy,
)


def test_xcopy_that_copied_everything_is_ok() -> None:
    result = parse_xcopy("3 File(s) copied\r\n", "", 0)
    assert (result.copied, result.messages, result.ok) == (3, (), True)
    assert result.meaning == "files were copied without error"


def test_xcopy_that_ran_out_of_disk_says_how_far_it_got() -> None:
    # The lab's answer to a copy that did not fit: message on stderr, count on stdout, exit 4.
    result = parse_xcopy("2 File(s) copied\r\n", "Insufficient disk space\r\n", 4)
    assert result.ok is False
    assert (result.copied, result.messages) == (2, ("Insufficient disk space",))
    assert "not enough memory or disk space" in result.meaning


@pytest.mark.parametrize(
    ("stdout", "stderr", "exit_code", "copied", "messages"),
    [
        (
            "0 File(s) copied\r\n",
            "File not found - KMSDATA\r\n",
            4,
            0,
            ("File not found - KMSDATA",),
        ),
        ("", "Invalid number of parameters\r\n", 4, None, ("Invalid number of parameters",)),
        ("1 File(s) copied\r\n", "", 5, 1, ()),
        ("3 File(s) copied\r\nSharing violation\r\n", "", 0, 3, ("Sharing violation",)),
    ],
)
def test_any_xcopy_message_or_non_zero_exit_is_not_ok(
    stdout: str, stderr: str, exit_code: int, copied: int | None, messages: tuple[str, ...]
) -> None:
    result = parse_xcopy(stdout, stderr, exit_code)
    assert (result.copied, result.messages, result.ok) == (copied, messages, False)


def test_xcopy_exit_0_without_a_count_is_refused() -> None:
    with pytest.raises(ParseError, match="no '<n> File\\(s\\) copied' line"):
        parse_xcopy("\r\n", "", 0)


def test_a_missing_xcopy_is_a_missing_tool() -> None:
    stderr = "'xcopy' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
    with pytest.raises(ToolMissing, match="'xcopy' is missing"):
        parse_xcopy("", stderr, 9009)
