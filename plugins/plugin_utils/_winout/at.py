# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse what `at \\\\NAME HH:MM /interactive "COMMAND"` prints when it adds a job to NAME's
Schedule service: `parse_at_added` -> the job's ID (docs/windows-output.md#at).

at.exe on Windows 8 / 2012 and later first prints "The AT command has been deprecated. Please use
schtasks.exe instead.", then "Added a new job with job ID = N" for a job the target accepted
(docs/windows-output.md#at). Any other output, or a non-zero exit code (a target that refuses
the job, a Schedule service that is not started, a name that does not resolve), raises
CommandFailed quoting at.exe's lines.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re

from ._base import (
    CommandFailed,
    _command_failed,
    _lines,
    _nonblank,
    _raise_if_silent_failure,
    _stderr_answers,
)

_ADDED = re.compile(r"^Added a new job with job ID = (?P<id>\d+)\s*$")


def parse_at_added(stdout: str, stderr: str, exit_code: int, section: str = "at") -> int:
    """The ID of the job at.exe added; CommandFailed when it added none."""
    _stderr_answers(section, stderr, exit_code)
    _raise_if_silent_failure(section, stdout, stderr, exit_code)
    if exit_code == 0:
        for line in _lines(stdout):
            added = _ADDED.match(line.text.strip())
            if added:
                return int(added.group("id"))
    said = _nonblank(stdout, "stdout")
    if not said:
        raise CommandFailed(section, "at.exe printed no job ID", exit_code)
    raise _command_failed(section, exit_code, said)
