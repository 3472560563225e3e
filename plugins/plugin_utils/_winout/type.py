# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse `type FILE`: `parse_type` -> the file's text verbatim, or None when the file or its
folder does not exist.

Any other failure ("Access is denied.", a file in use) raises `CommandFailed`; cmd's "is not
recognized" `ToolMissing`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

from ._base import _command_failed, _nonblank, _raise_if_missing, _raise_if_silent_failure

# `type FILE` writes the file's bytes unchanged; a missing file or folder is one of these lines
# on stderr (the system messages of ERROR_FILE_NOT_FOUND / ERROR_PATH_NOT_FOUND) and exit code 1.
_TYPE_MISSING = (
    "The system cannot find the file specified.",
    "The system cannot find the path specified.",
)


def parse_type(stdout: str, stderr: str, exit_code: int, section: str = "type") -> str | None:
    """Parse `type FILE`: the file's text verbatim (CRLF kept), or None when the file or its
    folder does not exist. Run with `2>&1`, the "cannot find" line arrives in stdout: a failed
    command whose only lines are that message is None too. Any other failure ("Access is
    denied.", a file in use) raises CommandFailed."""
    _raise_if_missing(section, stderr, exit_code)
    if exit_code == 0 and not stderr.strip():
        return stdout
    lines = _nonblank(stdout, "stdout") + _nonblank(stderr, "stderr")
    if lines and all(line.text.strip() in _TYPE_MISSING for line in lines):
        return None
    _raise_if_silent_failure(section, stdout, stderr, exit_code)
    errors = [line for line in lines if line.stream == "stderr"]
    raise _command_failed(section, exit_code, errors or lines)
