# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read an Exchange setup log: `parse_setup_log(text)` -> one `SetupRun` per run of Setup or of
an SP's update.exe; `setup_log_appended(text, size_before)` -> what was appended since a known
size. A log is free text: neither raises.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from dataclasses import dataclass

from ._base import _lines

# "Exchange Server Setup.log" (5.5: at the root of the Exchange drive, Q158545 / Q182518) and
# "Exchange Server Setup Progress.log" (2000 / 2003, Q178975). Every run of Setup or of an SP's
# update.exe is appended and opens with the "initialized" line (Q158545, Q290226); errors carry
# Setup's "ID no: 0xc0020002" (Q290226, Q182814, Q248487). No source shows the other lines of a
# 5.5 run: "Setup completed successfully." and "Setup failed." are the lab's wording, and the
# restart request is a guess; the versions, not the log, prove that a service pack is in place
# [I]: no source documents how a 5.5 SP's update.exe reports its outcome.
SETUP_LOG_INITIALIZED = "++++ Microsoft Exchange Setup initialized ++++"
_SETUP_TIME = re.compile(r"^\[[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?\]\s*")
_SETUP_ERROR_ID = re.compile(r"(?i)\bID no\.?:?\s*0x(?P<id>[0-9a-f]{8})\b")
_SETUP_FAILED = re.compile(r"(?i)^setup (?:failed|was not completed|did not complete)\b")
_SETUP_COMPLETED = re.compile(r"(?i)^setup completed successfully\.?$")
# "restart"/"reboot" then, in the same sentence, the computer: "Restart your computer ...".
# ("was not restarted" does not match: \b after "restart".)
_SETUP_RESTART = re.compile(
    r"(?i)\b(?:restart|reboot)\b[^.]*\b(?:computer|server|system|machine)\b"
)


@dataclass(frozen=True)
class SetupRun:
    """One run in an Exchange setup log: its lines (CR dropped, blank lines dropped), whether
    it opened with the "initialized" line, and what its lines say. `failed` is set by a "Setup
    failed" line or an "ID no: 0x..." error; `completed` by "Setup completed successfully."."""

    lines: tuple[str, ...]
    started: bool
    completed: bool
    failed: bool
    error_ids: tuple[int, ...]
    restart_required: bool

    @property
    def last_line(self) -> str | None:
        return self.lines[-1] if self.lines else None


def _setup_run(lines: list[str], started: bool) -> SetupRun:
    completed = failed = restart = False
    error_ids: list[int] = []
    for line in lines:
        text = _SETUP_TIME.sub("", line).strip()
        completed = completed or bool(_SETUP_COMPLETED.match(text))
        failed = failed or bool(_SETUP_FAILED.match(text))
        restart = restart or bool(_SETUP_RESTART.search(text))
        for match in _SETUP_ERROR_ID.finditer(text):
            error_ids.append(int(match.group("id"), 16))
    failed = failed or bool(error_ids)
    return SetupRun(
        tuple(lines), started, completed and not failed, failed, tuple(error_ids), restart
    )


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
    (`dir`), given its whole text now (`type`). Setup logs are ASCII (Q158545: read them with
    Notepad / Fixedsys), so a byte offset is a character offset. A log now shorter than before was
    replaced: all of it is new."""
    if size_before <= 0 or len(text) < size_before:
        return text
    return text[size_before:]
