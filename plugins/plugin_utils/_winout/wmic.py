# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse `wmic ... /value` output (docs/windows-output.md#wmic-value, #wmic-ntevent): records
(`parse_wmic_values`), a file's presence and version (`parse_wmic_datafile`,
`parse_wmic_file_version`), event-log records
(`parse_wmic_events`), the services' start modes (`parse_wmic_service_start_modes`); and CIM
datetimes (`parse_cim_datetime`).

"No Instance(s) Available." (on either stream) is an answer: no records, no version. Any other
stderr text (a WMI error), or a non-zero exit code with no text at all, raises `CommandFailed`;
cmd's "is not recognized" (no wmic before XP) `ToolMissing`; a line that is not a record
`ParseError`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from ._base import (
    _DECIMAL,
    WmiFailed,
    _Line,
    _lines,
    _parse_error,
    _raise_if_silent_failure,
    _shown,
    _stderr_answers,
)
from ._events import EventRecord

_WMIC_NO_INSTANCE = "No Instance(s) Available."
_WMIC_PROPERTY = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")
_VERSION_TEXT = re.compile(r"^[0-9]+(?:\.[0-9]+){1,3}$")


_WMIC_DESCRIPTION = re.compile(r"^Description = (?P<text>.*)$")


def _raise_if_wmi_failed(section: str, stderr: str, exit_code: int) -> None:
    """wmic's error block on stderr ("ERROR:", "Description = ...") raises WmiFailed."""
    lines = _lines(stderr, "stderr")
    if not any(line.text.strip() == "ERROR:" for line in lines):
        return
    text = " ".join(line.text.strip() for line in lines if line.text.strip())
    for line in lines:
        match = _WMIC_DESCRIPTION.match(line.text.strip())
        if match:
            raise WmiFailed(section, match.group("text"), text, exit_code, line.number)


def _wmic_lines(section: str, stdout: str, stderr: str, exit_code: int) -> list[_Line] | None:
    """The stdout lines to read, or None for "No Instance(s) Available." on either stream."""
    _raise_if_wmi_failed(section, stderr, exit_code)
    no_instance = _stderr_answers(section, stderr, exit_code, (_WMIC_NO_INSTANCE,))
    _raise_if_silent_failure(section, stdout, stderr, exit_code)
    out = _lines(stdout)
    if no_instance:
        extra = [line for line in out if line.text.strip()]
        if extra:
            raise _parse_error(section, "output besides 'No Instance(s) Available.'", extra[0])
        return None
    filled = [line for line in out if line.text.strip()]
    if filled and filled[0].text.strip() == _WMIC_NO_INSTANCE:
        if len(filled) > 1:
            raise _parse_error(section, "output besides 'No Instance(s) Available.'", filled[1])
        return None
    return out


class _Property(NamedTuple):
    line: _Line  # where the property starts
    value: str


_Record = dict[str, _Property]


def _wmic_records_by_blank_lines(section: str, lines: list[_Line]) -> list[_Record]:
    records: list[_Record] = []
    current: _Record = {}
    last: str | None = None
    for line in lines:
        text = line.text
        if not text.strip():
            if current:
                records.append(current)
            current, last = {}, None
            continue
        match = _WMIC_PROPERTY.match(text)
        if match:
            name = match.group("name")
            if name in current:
                raise _parse_error(section, f"property {name} printed twice in one record", line)
            current[name], last = _Property(line, match.group("value")), name
        elif last is None:
            raise _parse_error(section, "expected Name=Value", line)
        else:
            current[last] = current[last]._replace(value=current[last].value + "\n" + text)
    if current:
        records.append(current)
    return records


def _wmic_records_by_properties(
    section: str, lines: list[_Line], properties: Sequence[str]
) -> list[_Record]:
    wanted = {name.casefold(): name for name in properties}
    records: list[_Record] = []
    current: _Record = {}
    last: str | None = None
    blanks = 0
    for line in lines:
        text = line.text
        if not text.strip():
            if last is not None:
                blanks += 1
            continue
        match = _WMIC_PROPERTY.match(text)
        name = wanted.get(match.group("name").casefold()) if match else None
        if match and name is not None and (name not in current or len(current) == len(wanted)):
            if name in current:
                records.append(current)
                current = {}
            current[name], last, blanks = _Property(line, match.group("value")), name, 0
            continue
        if last is None:
            raise _parse_error(
                section, f"expected one of {', '.join(properties)} as Name=Value", line
            )
        # A line that starts no new property continues the last value (a multi-line Message);
        # empty lines inside it are kept, empty lines at its end are dropped.
        joined = current[last].value + "\n" * (blanks + 1) + text
        current[last], blanks = current[last]._replace(value=joined), 0
    if current:
        records.append(current)
    for record in records:
        missing = [name for name in properties if name not in record]
        if missing:
            first = min(record.values(), key=lambda item: item.line.number).line
            raise _parse_error(
                section, f"the record starting here has no {', '.join(missing)}", first
            )
    return records


def _wmic_records(
    section: str,
    stdout: str,
    stderr: str,
    exit_code: int,
    properties: Sequence[str] | None,
) -> list[_Record]:
    lines = _wmic_lines(section, stdout, stderr, exit_code)
    if lines is None:
        return []
    if properties is None:
        return _wmic_records_by_blank_lines(section, lines)
    return _wmic_records_by_properties(section, lines, properties)


def parse_wmic_values(
    stdout: str,
    stderr: str,
    exit_code: int,
    section: str = "wmic",
    properties: Sequence[str] | None = None,
) -> list[dict[str, str]]:
    """Parse `wmic ... get A,B /value` (docs/windows-output.md#wmic-value): one dict per instance,
    `Name=Value` split on the first "=", values verbatim. "No Instance(s) Available." (on either
    stream) is `[]`.

    A line without "=" continues the previous value (joined with "\\n"). Without `properties`,
    records are separated by empty lines and a name printed twice in one record is an error. With
    `properties` (the names given to `get`), a record ends when it has all of them and one starts
    again, so empty lines inside a multi-line value are kept; a line "Name=..." whose name is not
    requested, or was already read in an incomplete record, is value text. Keys then use the
    spelling of `properties`. Any other stderr text raises `CommandFailed`.
    """
    records = _wmic_records(section, stdout, stderr, exit_code, properties)
    return [{name: item.value for name, item in record.items()} for record in records]


class DataFile(NamedTuple):
    """What `wmic datafile` showed of one file."""

    found: bool  # False: "No Instance(s) Available."
    version: str | None  # None: missing, or no version resource


def parse_wmic_datafile(
    stdout: str, stderr: str, exit_code: int, section: str = "wmic datafile"
) -> DataFile:
    """Parse `wmic datafile where name="..." get Version /value` (docs/windows-output.md#e11,
    #e12): whether the file exists ("No Instance(s) Available." when it does not) and its file
    version ("5.5.2650.23"), None when it has no version resource (no `Version=` line, or an
    empty value)."""
    records = _wmic_records(section, stdout, stderr, exit_code, None)
    if not records:
        return DataFile(False, None)
    if len(records) > 1:
        second = min(item.line.number for item in records[1].values())
        raise _parse_error(
            section, f"{len(records)} files matched; expected one (second at line {second})"
        )
    record = {name.casefold(): item for name, item in records[0].items()}
    if set(record) != {"version"}:
        first = min((item.line for item in record.values()), key=lambda line: line.number)
        raise _parse_error(
            section, f"expected only Version=, got {', '.join(sorted(records[0]))}", first
        )
    version = record["version"].value.strip()
    if not version:
        return DataFile(True, None)
    if not _VERSION_TEXT.match(version):
        raise _parse_error(
            section, "Version is not a dotted version number", record["version"].line
        )
    return DataFile(True, version)


def parse_wmic_file_version(
    stdout: str, stderr: str, exit_code: int, section: str = "wmic datafile"
) -> str | None:
    """`parse_wmic_datafile`'s version: None when the file is missing or has no version
    resource."""
    return parse_wmic_datafile(stdout, stderr, exit_code, section).version


_CIM_DATETIME = re.compile(
    r"^(?P<year>[0-9]{4})(?P<month>[0-9]{2})(?P<day>[0-9]{2})"
    r"(?P<hour>[0-9]{2})(?P<minute>[0-9]{2})(?P<second>[0-9]{2})\.(?P<micro>[0-9]{6})"
    r"(?P<sign>[+-])(?P<offset>[0-9]{3})$"
)


def parse_cim_datetime(text: str) -> datetime:
    """A CIM datetime `yyyymmddHHMMSS.ffffff+UUU` (UUU = UTC offset in minutes,
    docs/windows-output.md#wmic-ntevent) as an aware datetime. Raises ValueError for anything else
    (wildcards such as `*****` included)."""
    match = _CIM_DATETIME.match(text.strip())
    if not match:
        raise ValueError(f"not a CIM datetime (yyyymmddHHMMSS.ffffff+UUU): {_shown(text)!r}")
    offset = int(match.group("offset")) * (-1 if match.group("sign") == "-" else 1)
    if abs(offset) >= 24 * 60:
        raise ValueError(f"CIM datetime offset out of range: {_shown(text)!r}")
    parts = [
        int(match.group(name))
        for name in ("year", "month", "day", "hour", "minute", "second", "micro")
    ]
    try:
        return datetime(*parts, tzinfo=timezone(timedelta(minutes=offset)))
    except ValueError as exc:
        raise ValueError(f"not a valid CIM datetime: {_shown(text)!r} ({exc})") from exc


_EVENT_PROPERTIES = ("EventCode", "Message", "RecordNumber", "SourceName", "TimeGenerated", "Type")


def _event_number(section: str, item: _Property) -> int:
    if not _DECIMAL.match(item.value.strip()):
        raise _parse_error(section, "not a decimal number", item.line)
    return int(item.value.strip())


def parse_wmic_events(
    stdout: str, stderr: str, exit_code: int, section: str = "wmic ntevent"
) -> list[EventRecord]:
    """Parse `wmic ntevent where "..." get EventCode,Message,RecordNumber,SourceName,
    TimeGenerated,Type /value < NUL` (docs/windows-output.md#wmic-ntevent): records in output order.
    "No Instance(s) Available." is `[]`. A multi-line Message is joined with "\\n", trailing empty
    lines dropped."""
    events = []
    for record in _wmic_records(section, stdout, stderr, exit_code, _EVENT_PROPERTIES):
        try:
            time = parse_cim_datetime(record["TimeGenerated"].value)
        except ValueError as exc:
            raise _parse_error(section, str(exc), record["TimeGenerated"].line) from exc
        events.append(
            EventRecord(
                record=_event_number(section, record["RecordNumber"]),
                event_id=_event_number(section, record["EventCode"]),
                source=record["SourceName"].value,
                time=time,
                type=record["Type"].value,
                message=record["Message"].value.rstrip("\n"),
            )
        )
    return events


# ---------------------------------------------------------------------------------------------
# wmic service get Name,StartMode /value

# Win32_Service.StartMode, one of Boot, System, Auto, Manual, Disabled (Microsoft's class page,
# docs/windows-output.md#wmi-classes), as `sc qc` names the start type (START_TYPES).
_WMIC_START_MODES = {
    "auto": "auto",
    "manual": "manual",
    "disabled": "disabled",
    "boot": "boot",
    "system": "system",
}


def parse_wmic_service_start_modes(
    stdout: str, stderr: str, exit_code: int, section: str = "wmic service"
) -> dict[str, str]:
    """Parse `wmic service get Name,StartMode /value < NUL` (docs/windows-output.md#wmic-value):
    {service name: start type}, the start type named as `sc qc` names it (auto, manual, disabled,
    boot, system; a delayed auto start is "Auto" to wmic). A StartMode outside these ("Unknown")
    raises ParseError."""
    lines = _wmic_lines(section, stdout, stderr, exit_code)
    if lines is None:
        return {}
    modes: dict[str, str] = {}
    for record in _wmic_records_by_properties(section, lines, ("Name", "StartMode")):
        name, mode = record["Name"], record["StartMode"]
        start_type = _WMIC_START_MODES.get(mode.value.strip().lower())
        if start_type is None:
            raise _parse_error(
                section, "StartMode is not Auto, Manual, Disabled, Boot or System", mode.line
            )
        if name.value.strip() in modes:
            raise _parse_error(section, "the same service is listed twice", name.line)
        modes[name.value.strip()] = start_type
    return modes
