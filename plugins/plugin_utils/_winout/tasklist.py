# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse `tasklist [/fi "imagename eq NAME"] /fo csv [/nh]`: `parse_tasklist_csv` -> the
processes as `TaskEntry`, `()` when the filter matched nothing.

tasklist's "ERROR: ..." lines raise `CommandFailed`; cmd's "is not recognized" `ToolMissing`; a
row that is not tasklist's CSV `ParseError`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from typing import NamedTuple

from ._base import (
    _DECIMAL,
    CommandFailed,
    _command_failed,
    _nonblank,
    _parse_error,
    _raise_if_missing,
)

# tasklist.exe (Windows XP / Server 2003 and later): `/fo csv /nh` prints one quoted line per
# process: "Image Name","PID","Session Name","Session#","Mem Usage" (the memory with the locale's
# digit grouping and " K"). A filter that matches nothing prints an INFO line instead: "No tasks
# are running which match the specified criteria." (Vista and later), "No tasks running with the
# specified criteria." (XP / 2003); sources and eras: docs/windows-output.md#tool-messages. An INFO
# line in other words is refused as such, not guessed to mean "none".
_TASKLIST_NONE = re.compile(
    r"^INFO: No tasks (?:are )?running (?:which match|with) the specified criteria\.\s*$"
)
_TASKLIST_ROW = re.compile(r'^"(?P<fields>[^"]*(?:","[^"]*)*)"\s*$')
_TASKLIST_HEADER = ("Image Name", "PID", "Session Name", "Session#", "Mem Usage")


class TaskEntry(NamedTuple):
    """One process of `tasklist /fo csv`: the memory usage is the locale's text, uninterpreted."""

    image: str
    pid: int
    session_name: str
    session: int
    memory: str


def parse_tasklist_csv(
    stdout: str, stderr: str, exit_code: int, section: str = "tasklist"
) -> tuple[TaskEntry, ...]:
    """Parse `tasklist [/fi "imagename eq NAME"] /fo csv [/nh]`: the processes in output order,
    `()` for the INFO line of a filter that matched nothing (on either stream). tasklist's
    "ERROR: ..." lines raise CommandFailed; cmd's "is not recognized" raises ToolMissing."""
    _raise_if_missing(section, stderr, exit_code)
    errors = [line for line in _nonblank(stderr, "stderr") if not _TASKLIST_NONE.match(line.text)]
    errors += [line for line in _nonblank(stdout, "stdout") if line.text.startswith("ERROR:")]
    if errors:
        raise _command_failed(section, exit_code, errors)
    entries: list[TaskEntry] = []
    nothing = False
    for line in _nonblank(stdout, "stdout"):
        if _TASKLIST_NONE.match(line.text):
            nothing = True
            continue
        if line.text.startswith("INFO:"):
            raise _parse_error(
                section,
                "an INFO line in words this collection does not know for any Windows era "
                "(docs/windows-output.md#tool-messages)",
                line,
            )
        row = _TASKLIST_ROW.match(line.text)
        fields = tuple(row.group("fields").split('","')) if row else ()
        if fields == _TASKLIST_HEADER:
            continue
        if len(fields) != 5 or not _DECIMAL.match(fields[1]) or not _DECIMAL.match(fields[3]):
            raise _parse_error(
                section, 'expected "image","PID","session name","session#","memory"', line
            )
        entries.append(TaskEntry(fields[0], int(fields[1]), fields[2], int(fields[3]), fields[4]))
    if nothing and entries:
        raise _parse_error(section, "processes and 'No tasks are running' together")
    if not nothing and not entries and exit_code != 0:
        raise CommandFailed(section, "the command printed nothing", exit_code)
    return tuple(entries)
