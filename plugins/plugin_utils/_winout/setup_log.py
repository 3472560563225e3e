# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read an Exchange setup log: `parse_setup_log(text)` -> one `SetupRun` per run of Setup or of
an SP's update.exe; `setup_log_appended(text, size_before)` -> what was appended since a known
size. A log is free text: neither raises.

The log is a supporting reading only: no outcome of a service pack run depends on a line of it
(docs/windows-output.md#exchange-setup-log).
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from dataclasses import dataclass

from ._base import _lines

# "Exchange Server Setup.log" (4.0, 5.0 and 5.5: KB Q182518, Q202258) and "Exchange Server Setup
# Progress.log" (2000 / 2003, Q178975). Setup appends to it on every run (Q158545). A run opens
# with the "initialized" line (Q290226, whose failed run logged only that line). No source shows
# a completion or a failure line of a 5.5 run: Q202258's failed run simply ends with ordinary
# lines ("Bound to appropriate DSA"), and Setup's errors ("ID no: 0xc0020002", Q290226; "NT ID:
# 0xC0020005", Q248445) are shown in dialogs. The error IDs are kept in case a log holds one;
# nothing is decided from them.
SETUP_LOG_INITIALIZED = "++++ Microsoft Exchange Setup initialized ++++"
_SETUP_ERROR_ID = re.compile(r"(?i)\b(?:ID no|NT ID)\.?:?\s*0x(?P<id>[0-9a-f]{8})\b")


@dataclass(frozen=True)
class SetupRun:
    """One run in an Exchange setup log: its lines (CR dropped, blank lines dropped), whether
    it opened with the "initialized" line, and any Setup error IDs its lines quote."""

    lines: tuple[str, ...]
    started: bool
    error_ids: tuple[int, ...]

    @property
    def last_line(self) -> str | None:
        return self.lines[-1] if self.lines else None


def _setup_run(lines: list[str], started: bool) -> SetupRun:
    error_ids = [
        int(match.group("id"), 16) for line in lines for match in _SETUP_ERROR_ID.finditer(line)
    ]
    return SetupRun(tuple(lines), started, tuple(error_ids))


def parse_setup_log(text: str) -> tuple[SetupRun, ...]:
    """Cut an Exchange setup log (or the part of it appended since a known size) into runs at
    each "++++ Microsoft Exchange Setup initialized ++++" line. Lines before the first one form
    a run with `started` False (the end of a run that began earlier). Never raises: a log is
    free text."""
    runs: list[SetupRun] = []
    current: list[str] = []
    started = False
    for line in _lines(text):
        bare = line.text.strip()
        if bare == SETUP_LOG_INITIALIZED:
            if current or started:
                runs.append(_setup_run(current, started))
            current, started = [bare], True
        elif bare:
            current.append(line.text.rstrip())
    if current or started:
        runs.append(_setup_run(current, started))
    return tuple(runs)


def setup_log_appended(text: str, size_before: int) -> str:
    """What was appended to a setup log that was `size_before` bytes long when last measured
    (`dir`), given its whole text now (`type`). Setup logs are plain text read in Notepad with
    the Fixedsys font (Q182518), taken here as one byte per character, so a byte offset is a
    character offset [I]. A log now shorter than before was replaced: all of it is new."""
    if size_before <= 0 or len(text) < size_before:
        return text
    return text[size_before:]
