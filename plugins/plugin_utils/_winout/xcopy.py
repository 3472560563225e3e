# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse `xcopy SRC DST /E /I /H /K /Y /Q`: `parse_xcopy` -> `XcopyResult`, the files copied,
xcopy's messages and its exit code with what KB Q120829 says it means.

cmd's "is not recognized" raises `ToolMissing`; exit code 0 without a count line `ParseError`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from dataclasses import dataclass

from ._base import _nonblank, _parse_error, _raise_if_missing, _shown

# xcopy.exe: with /Q it prints no file names, only "<n> File(s) copied" (stdout) and its own
# messages ("Insufficient disk space", "File creation error - ...", "Access denied", "Sharing
# violation", "File not found - X", "Unable to create directory - X", "Invalid switch - X",
# "Cannot perform a cyclic copy"). Exit codes, KB Q120829: 0 copied without error, 1 no files
# found to copy, 2 stopped with CTRL+C, 4 initialization error (not enough memory or disk
# space, invalid drive or syntax), 5 disk write error.
_XCOPY_COUNT = re.compile(r"^\s*(?P<count>[0-9]+) File\(s\) copied\s*$")
XCOPY_EXIT_MEANINGS = {
    0: "files were copied without error",
    1: "no files were found to copy",
    2: "the copy was stopped with CTRL+C",
    4: "initialization error: not enough memory or disk space, an invalid drive or bad syntax",
    5: "disk write error",
}


@dataclass(frozen=True)
class XcopyResult:
    """What `xcopy SRC DST ... /Q` said: the files it copied (None when it printed no count
    line), its messages in output order (stdout and stderr), and its exit code. `ok` only
    when it exited 0, printed a count and nothing else."""

    copied: int | None
    messages: tuple[str, ...]
    exit_code: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.copied is not None and not self.messages

    @property
    def meaning(self) -> str:
        return XCOPY_EXIT_MEANINGS.get(self.exit_code, "not an exit code xcopy documents")


def parse_xcopy(stdout: str, stderr: str, exit_code: int, section: str = "xcopy") -> XcopyResult:
    """Parse `xcopy SRC DST /E /I /H /K /Y /Q` (run as its own command, streams apart): the
    `<n> File(s) copied` count and every other line as xcopy's message. cmd's "is not
    recognized" raises `ToolMissing`; exit code 0 without a count line raises `ParseError`."""
    _raise_if_missing(section, stderr, exit_code)
    copied: int | None = None
    messages: list[str] = []
    for line in _nonblank(stdout, "stdout") + _nonblank(stderr, "stderr"):
        count = _XCOPY_COUNT.match(line.text)
        if count and copied is None:
            copied = int(count.group("count"))
        else:
            messages.append(_shown(line.text.strip()))
    if exit_code == 0 and copied is None:
        raise _parse_error(section, "exit code 0 but no '<n> File(s) copied' line")
    return XcopyResult(copied, tuple(messages), exit_code)
