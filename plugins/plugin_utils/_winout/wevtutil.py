# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse `wevtutil qe LOG /q:"..." /f:text` (docs/windows-output.md#wevtutil, Vista and later):
`parse_wevtutil_text` -> a list of `EventRecord`, `[]` when there are none.

stderr text raises `CommandFailed`; cmd's "is not recognized" (no wevtutil before Vista)
`ToolMissing`; a line that is not an event's, or a Date without a UTC offset, `ParseError`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from datetime import datetime

from ._base import (
    _DECIMAL,
    _Line,
    _lines,
    _parse_error,
    _raise_if_silent_failure,
    _record_field,
    _stderr_answers,
)
from ._events import EventRecord

_WEVT_HEADER = re.compile(r"^Event\[[0-9]+\]:?\s*$")
_WEVT_FIELD = re.compile(r"^[ \t]+(?P<label>[A-Za-z][A-Za-z ]*?):(?:[ \t](?P<value>.*))?$")
_WEVT_LABELS = (
    "Log Name",
    "Source",
    "Date",
    "Event ID",
    "Task",
    "Level",
    "Opcode",
    "Keyword",
    "User",
    "User Name",
    "Computer",
    "Description",
)
_WEVT_REQUIRED = ("Source", "Date", "Event ID", "Level", "Description")
_ISO_DATE = re.compile(
    r"^(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]{1,9}))?(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?$"
)


def _iso_time(section: str, line: _Line, text: str) -> datetime:
    match = _ISO_DATE.match(text.strip())
    if not match:
        raise _parse_error(section, "Date is not ISO 8601", line)
    if match.group("zone") is None:
        # Local time of an unknown zone: refusing beats guessing when callers compare times.
        raise _parse_error(section, "Date has no UTC offset", line)
    zone = "+00:00" if match.group("zone") == "Z" else match.group("zone")
    micro = (match.group("fraction") or "0")[:6].ljust(6, "0")
    try:
        return datetime.fromisoformat(f"{match.group('date')}T{match.group('time')}.{micro}{zone}")
    except ValueError as exc:
        raise _parse_error(section, "Date is not a valid date and time", line) from exc


def _wevt_event(
    section: str, header: _Line, fields: dict[str, tuple[_Line, str]], description: list[str]
) -> EventRecord:
    missing = [label for label in _WEVT_REQUIRED if label not in fields]
    if missing:
        raise _parse_error(section, f"event without {', '.join(missing)}", header)
    id_line, id_text = fields["Event ID"]
    if not _DECIMAL.match(id_text.strip()):
        raise _parse_error(section, "Event ID is not a decimal number", id_line)
    return EventRecord(
        record=None,
        event_id=int(id_text.strip()),
        source=fields["Source"][1],
        time=_iso_time(section, *fields["Date"]),
        type=fields["Level"][1],
        message="\n".join(description).rstrip(),
    )


def parse_wevtutil_text(
    stdout: str, stderr: str, exit_code: int, section: str = "wevtutil"
) -> list[EventRecord]:
    """Parse `wevtutil qe LOG /q:"..." /f:text` (docs/windows-output.md#e13), Vista and later:
    events in output order (`/rd:true` = newest first). Each starts with `Event[N]:`; indented
    `Label: value` fields follow; the message follows `Description:` unindented, up to the next
    `Event[N]:` (trailing empty lines dropped). A Date without a UTC offset is refused. No events:
    empty stdout, `[]`. stderr text raises `CommandFailed`."""
    _stderr_answers(section, stderr, exit_code)
    _raise_if_silent_failure(section, stdout, stderr, exit_code)
    events: list[EventRecord] = []
    header: _Line | None = None
    fields: dict[str, tuple[_Line, str]] = {}
    description: list[str] | None = None
    for line in _lines(stdout):
        text = line.text
        if _WEVT_HEADER.match(text):
            if header is not None:
                events.append(_wevt_event(section, header, fields, description or []))
            header, fields, description = line, {}, None
        elif description is not None:
            description.append(text)
        elif not text.strip():
            continue
        elif header is None or not (match := _WEVT_FIELD.match(text)):
            raise _parse_error(
                section, "expected Event[N]: or an indented 'Label: value' line", line
            )
        else:
            label, value = _record_field(section, fields, _WEVT_LABELS, line, match)
            if label == "Description":
                description = [value] if value else []
    if header is not None:
        events.append(_wevt_event(section, header, fields, description or []))
    return events
