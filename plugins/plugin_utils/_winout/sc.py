# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse `sc` output (docs/windows-output.md#sc): the status block of `sc query`, `sc queryex`,
`sc start` and `sc stop` (`parse_sc_query` -> `ServiceStatus`), `sc qc` (`parse_sc_qc` ->
`ServiceConfig`), `sc enumdepend` (`parse_sc_enumdepend` -> a `ServiceStatus` per dependent) and
`sc config` (`parse_sc_config` -> None); split or mask a service's image path.

`[SC] <operation> FAILED <n>:` is an answer, `ScFailure` (1060 no such service, 1062 not started,
...; #sc-failures), its number read from the text, never only from the exit code
(#every-command). cmd's "is not recognized" raises `ToolMissing`; anything else sc does not print
`ParseError`. An image path may carry a KM Server password (KB Q235418): `ServiceConfig` keeps it
out of repr(), and `mask_image_path` hides it.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ._base import (
    _DECIMAL,
    _HEX_INT,
    _MASK,
    _Line,
    _lines,
    _nonblank,
    _parse_error,
    _raise_if_missing,
    _record_field,
)

# Win32 error numbers that `sc` prints in "[SC] ... FAILED <n>:"
# (docs/windows-output.md#sc-failures).
ERROR_ACCESS_DENIED = 5
ERROR_DEPENDENT_SERVICES_RUNNING = 1051
ERROR_SERVICE_REQUEST_TIMEOUT = 1053
ERROR_SERVICE_ALREADY_RUNNING = 1056
ERROR_SERVICE_DOES_NOT_EXIST = 1060
ERROR_SERVICE_NOT_ACTIVE = 1062
# What `sc enumdepend` reports as "more data, need <n> bytes" (the Win32 error behind it).
ERROR_MORE_DATA = 234

SERVICE_STATES = {
    1: "stopped",
    2: "start_pending",
    3: "stop_pending",
    4: "running",
    5: "continue_pending",
    6: "pause_pending",
    7: "paused",
}
START_TYPES = {0: "boot", 1: "system", 2: "auto", 3: "manual", 4: "disabled"}
_START_NAMES = {
    0: "BOOT_START",
    1: "SYSTEM_START",
    2: "AUTO_START",
    3: "DEMAND_START",
    4: "DISABLED",
}

_SC_FAILED = re.compile(r"^\[SC\] (?P<operation>.+?) FAILED (?P<error>[0-9]+):\s*$")
_SC_SUCCESS = re.compile(r"^\[SC\] \S+ SUCCESS\s*$")
_SC_NAME = re.compile(r"^SERVICE_NAME:[ \t]*(?P<value>\S.*?)[ \t]*$")
_SC_DISPLAY = re.compile(r"^DISPLAY_NAME:[ \t]*(?P<value>.*?)[ \t]*$")
# Indent (spaces, or a TAB in ReactOS's clone), label padded with spaces, ':', value
# (docs/windows-output.md#sc-parser-rules).
_SC_FIELD = re.compile(r"^[ \t]+(?P<label>[A-Z][A-Z0-9_]*)[ \t]*:(?:[ \t](?P<value>.*))?$")
_SC_CONTROLS = re.compile(r"^[ \t]+\((?P<value>[^()]*)\)[ \t]*$")
_SC_MORE = re.compile(r"^[ \t]+:(?:[ \t](?P<value>.*))?$")
_SC_CODED = re.compile(r"^(?P<code>[0-9A-Fa-f]+)[ \t]+(?P<name>[A-Z][A-Z0-9_]*)(?P<rest>.*)$")
_SC_EXIT = re.compile(r"^(?P<decimal>-?[0-9]+)[ \t]+\(0x(?P<hex>[0-9A-Fa-f]+)\)$")
_STATUS_LABELS = (
    "TYPE",
    "STATE",
    "WIN32_EXIT_CODE",
    "SERVICE_EXIT_CODE",
    "CHECKPOINT",
    "WAIT_HINT",
)
_STATUS_OPTIONAL = ("PID", "FLAGS")
_CONFIG_LABELS = (
    "TYPE",
    "START_TYPE",
    "ERROR_CONTROL",
    "BINARY_PATH_NAME",
    "LOAD_ORDER_GROUP",
    "TAG",
    "DISPLAY_NAME",
    "DEPENDENCIES",
    "SERVICE_START_NAME",
)


@dataclass(frozen=True)
class ScFailure:
    """`[SC] <operation> FAILED <error>:` and its message (docs/windows-output.md#sc-failures): an
    answer, not an exception.
    `error` is the Win32 error number from the text (1060 = no such service)."""

    operation: str
    error: int
    message: str

    @property
    def service_missing(self) -> bool:
        return self.error == ERROR_SERVICE_DOES_NOT_EXIST


@dataclass(frozen=True)
class ServiceStatus:
    """The status block of `sc query` / `sc queryex` / `sc start` / `sc stop`
    (docs/windows-output.md#sc-status, #e5, #e6).

    `state` is one of SERVICE_STATES' names ("running", "stopped", "start_pending", ...);
    `controls` the words in parentheses (empty when sc printed no controls line); exit codes are
    unsigned 32-bit; `pid` and `flags` are None unless printed (`sc queryex`, `sc start`).
    """

    name: str
    service_type: int
    state: str
    state_code: int
    controls: tuple[str, ...]
    win32_exit_code: int
    service_exit_code: int
    checkpoint: int
    wait_hint: int
    pid: int | None = None
    flags: str | None = None
    display_name: str | None = None


@dataclass(frozen=True)
class ServiceConfig:
    """The block of `sc qc` (docs/windows-output.md#sc-qc, #e7). `start_type` is "boot", "system",
    "auto", "manual" or "disabled" (`start_code` the number sc printed); `delayed` marks
    "AUTO_START (DELAYED)".

    `binary_path` is the ImagePath as stored, so it may carry a KM Server password after the
    executable (KB Q235418): it is left out of repr(); show it only through `mask_image_path`.
    """

    name: str
    service_type: int
    start_type: str
    start_code: int
    delayed: bool
    error_control: int
    binary_path: str = field(repr=False)
    load_order_group: str
    tag: int
    display_name: str
    dependencies: tuple[str, ...]
    account: str

    @property
    def masked_binary_path(self) -> str:
        return mask_image_path(self.binary_path)


class _ScBlock(NamedTuple):
    name: str | None
    display_name: str | None
    fields: dict[str, tuple[_Line, str]]
    controls: tuple[str, ...] | None
    dependencies: list[str]
    failure: ScFailure | None
    first: _Line | None


def _sc_block(section: str, stdout: str, stderr: str, labels: Sequence[str]) -> _ScBlock:
    """Read one sc block or one failure, from stdout then stderr (the failure stream is not
    established, docs/windows-output.md#every-command)."""
    name = display = None
    fields: dict[str, tuple[_Line, str]] = {}
    controls: tuple[str, ...] | None = None
    dependencies: list[str] = []
    failure: tuple[_Line, str, int] | None = None
    message: list[str] = []
    first: _Line | None = None
    last_label = None
    for line in _lines(stdout) + _lines(stderr, "stderr"):
        text = line.text
        if not text.strip():
            continue
        first = first or line
        failed = _SC_FAILED.match(text)
        if failure is not None and not failed and not text.startswith(("[SC]", "SERVICE_NAME")):
            message.append(text.strip())
        elif failed:
            if failure is not None:
                raise _parse_error(section, "a second [SC] FAILED line", line)
            failure = (line, failed.group("operation"), int(failed.group("error")))
        elif _SC_SUCCESS.match(text):
            continue
        elif service := _SC_NAME.match(text):
            if name is not None:
                raise _parse_error(
                    section, "a second SERVICE_NAME: only one service is expected", line
                )
            name, last_label = service.group("value"), None
        elif name is None:
            raise _parse_error(section, "expected SERVICE_NAME: or '[SC] ... FAILED n:'", line)
        elif (shown := _SC_DISPLAY.match(text)) and display is None and not fields:
            display = shown.group("value")
        elif labelled := _SC_FIELD.match(text):
            label, value = _record_field(section, fields, labels, line, labelled)
            last_label = label
            if label == "DEPENDENCIES" and value:
                dependencies.append(value)
        elif (words := _SC_CONTROLS.match(text)) and last_label == "STATE":
            controls = tuple(
                word.strip() for word in words.group("value").split(",") if word.strip()
            )
            last_label = "STATE controls"
        elif (more := _SC_MORE.match(text)) and last_label == "DEPENDENCIES":
            if (more.group("value") or "").strip():
                dependencies.append(more.group("value").rstrip())
        else:
            raise _parse_error(section, "expected an indented 'LABEL : value' line", line)
    sc_failure = None
    if failure is not None:
        if name is not None:
            raise _parse_error(section, "both a service block and a failure", failure[0])
        sc_failure = ScFailure(failure[1], failure[2], " ".join(message))
    return _ScBlock(name, display, fields, controls, dependencies, sc_failure, first)


def _require(section: str, block: _ScBlock, labels: Sequence[str], exit_code: int) -> str:
    """The service name, once the block is known to be complete."""
    if block.name is None:
        if block.first is None:
            raise _parse_error(section, f"no output (exit code {exit_code})")
        raise _parse_error(section, "no SERVICE_NAME: line and no [SC] FAILED line", block.first)
    missing = [label for label in labels if label not in block.fields]
    if missing:
        raise _parse_error(section, f"service {block.name}: missing field(s) {', '.join(missing)}")
    return block.name


def _sc_coded(section: str, block: _ScBlock, label: str) -> tuple[int, str, str]:
    line, value = block.fields[label]
    match = _SC_CODED.match(value)
    if not match:
        raise _parse_error(section, f"{label} is not a number and a NAME", line)
    return int(match.group("code"), 16), match.group("name"), match.group("rest")


def _sc_exit(section: str, block: _ScBlock, label: str) -> int:
    line, value = block.fields[label]
    match = _SC_EXIT.match(value)
    if not match:
        raise _parse_error(section, f"{label} is not 'decimal  (0xhex)'", line)
    # A DWORD may be printed as a negative decimal; both forms must name the same number.
    number = int(match.group("decimal")) & 0xFFFFFFFF
    if number != int(match.group("hex"), 16):
        raise _parse_error(section, f"{label}: the decimal and hexadecimal numbers differ", line)
    return number


def _sc_hex(section: str, block: _ScBlock, label: str) -> int:
    line, value = block.fields[label]
    match = _HEX_INT.match(value)
    if not match:
        raise _parse_error(section, f"{label} is not 0x and a hexadecimal number", line)
    return int(match.group(1), 16)


def _sc_decimal(section: str, block: _ScBlock, label: str) -> int:
    line, value = block.fields[label]
    if not _DECIMAL.match(value):
        raise _parse_error(section, f"{label} is not a decimal number", line)
    return int(value)


def parse_sc_query(
    stdout: str, stderr: str, exit_code: int, section: str = "sc query"
) -> ServiceStatus | ScFailure:
    """Parse the output of `sc query NAME`, `sc queryex NAME`, `sc start NAME ...` or `sc stop NAME`
    (docs/windows-output.md#sc-status, #sc-failures, #e5, #e6, #e9): one service's status block, or
    the `[SC] ... FAILED <n>:` answer (1060 no such service, 1056 already running, 1062 not started,
    ...). The error number comes from the text; the exit code is not trusted (#every-command)."""
    _raise_if_missing(section, stderr, exit_code)
    block = _sc_block(section, stdout, stderr, _STATUS_LABELS + _STATUS_OPTIONAL)
    if block.failure is not None:
        return block.failure
    name = _require(section, block, _STATUS_LABELS, exit_code)
    service_type = _sc_coded(section, block, "TYPE")[0]
    state_code, state_name, state_rest = _sc_coded(section, block, "STATE")
    state_line = block.fields["STATE"][0]
    if state_code not in SERVICE_STATES or state_name.lower() != SERVICE_STATES[state_code]:
        raise _parse_error(section, "STATE: unknown state number or name", state_line)
    if state_rest.strip():
        raise _parse_error(section, "STATE: unexpected text after the state name", state_line)
    pid = _sc_decimal(section, block, "PID") if "PID" in block.fields else None
    flags = block.fields["FLAGS"][1] if "FLAGS" in block.fields else None
    return ServiceStatus(
        name=name,
        service_type=service_type,
        state=SERVICE_STATES[state_code],
        state_code=state_code,
        controls=block.controls or (),
        win32_exit_code=_sc_exit(section, block, "WIN32_EXIT_CODE"),
        service_exit_code=_sc_exit(section, block, "SERVICE_EXIT_CODE"),
        checkpoint=_sc_hex(section, block, "CHECKPOINT"),
        wait_hint=_sc_hex(section, block, "WAIT_HINT"),
        pid=pid,
        flags=flags,
        display_name=block.display_name,
    )


def parse_sc_qc(
    stdout: str, stderr: str, exit_code: int, section: str = "sc qc"
) -> ServiceConfig | ScFailure:
    """Parse `sc qc NAME` (docs/windows-output.md#sc-qc, #e7, #e8): the service's configuration, or
    the `[SC] OpenService FAILED 1060:` answer when the service does not exist."""
    _raise_if_missing(section, stderr, exit_code)
    block = _sc_block(section, stdout, stderr, _CONFIG_LABELS)
    if block.failure is not None:
        return block.failure
    name = _require(section, block, _CONFIG_LABELS, exit_code)
    start_code, start_name, start_rest = _sc_coded(section, block, "START_TYPE")
    if _START_NAMES.get(start_code) != start_name:
        raise _parse_error(
            section, "START_TYPE: unknown start number or name", block.fields["START_TYPE"][0]
        )
    return ServiceConfig(
        name=name,
        service_type=_sc_coded(section, block, "TYPE")[0],
        start_type=START_TYPES[start_code],
        start_code=start_code,
        delayed="(DELAYED)" in start_rest.upper(),
        error_control=_sc_coded(section, block, "ERROR_CONTROL")[0],
        binary_path=block.fields["BINARY_PATH_NAME"][1],
        load_order_group=block.fields["LOAD_ORDER_GROUP"][1],
        tag=_sc_decimal(section, block, "TAG"),
        display_name=block.fields["DISPLAY_NAME"][1],
        dependencies=tuple(block.dependencies),
        account=block.fields["SERVICE_START_NAME"][1],
    )


_SC_ENUM_COUNT = re.compile(r"^Enum: entriesRead = (?P<count>[0-9]+)\s*$")
_SC_MORE_DATA = re.compile(
    r"^\[SC\] EnumDependentServices: more data, need (?P<bytes>[0-9]+) bytes"
)


def parse_sc_enumdepend(
    stdout: str, stderr: str, exit_code: int, section: str = "sc enumdepend"
) -> tuple[ServiceStatus, ...] | ScFailure:
    """Parse `sc enumdepend NAME [buffer]` (docs/windows-output.md#sc-enumdepend): the status of
    every service that depends on NAME, directly or not, in the order to stop them (dependents
    first), or the `[SC] ... FAILED <n>:` answer; a buffer too small is ScFailure 234
    (ERROR_MORE_DATA) with the bytes it needs."""
    _raise_if_missing(section, stderr, exit_code)
    lines = _nonblank(stdout, "stdout")
    if not lines:
        raise _parse_error(section, f"no output (exit code {exit_code})")
    if more := _SC_MORE_DATA.match(lines[0].text):
        return ScFailure(
            "EnumDependentServices", ERROR_MORE_DATA, f"more data, need {more['bytes']} bytes"
        )
    counted = _SC_ENUM_COUNT.match(lines[0].text)
    if counted is None:
        failure = (
            _sc_block(section, stdout, stderr, ()).failure
            if _SC_FAILED.match(lines[0].text)
            else None
        )
        if failure is None:
            raise _parse_error(
                section, "expected 'Enum: entriesRead = n' or '[SC] ... FAILED n:'", lines[0]
            )
        return failure
    entries: list[list[str]] = []
    for line in lines[1:]:
        if _SC_NAME.match(line.text):
            entries.append([])
        elif not entries:
            raise _parse_error(section, "expected SERVICE_NAME: after the count", line)
        entries[-1].append(line.text)
    if len(entries) != int(counted["count"]):
        raise _parse_error(
            section, f"{counted['count']} entries announced, {len(entries)} printed", lines[0]
        )
    statuses = []
    for entry in entries:
        status = parse_sc_query("\n".join(entry), "", 0, section)
        if isinstance(status, ScFailure):
            raise _parse_error(section, f"[SC] FAILED inside the list: {status.message}")
        statuses.append(status)
    return tuple(statuses)


# An unquoted image path ends at the first ".exe" / ".sys" followed by whitespace or the end: the
# executable may contain spaces ("C:\Program Files\...\x.exe"), the arguments follow it.
_UNQUOTED_EXECUTABLE = re.compile(r"(?i)^(.*?\.(?:exe|sys))(?=\s|$)")
_EXECUTABLE_SUFFIX = re.compile(r"(?i)\.(?:exe|sys)$")


def split_image_path(binary_path: str) -> tuple[str, str]:
    """Split a service ImagePath / BINARY_PATH_NAME into (executable, arguments).

    Quoted: the executable is inside the quotes. Unquoted: it ends at the first ".exe" or ".sys"
    followed by a space or the end, else at the first space. Arguments are returned with leading
    spaces removed, "" when there are none. For KMS, any argument may be the startup password
    (KB Q235418): never show them; use `mask_image_path`.
    """
    text = binary_path.strip()
    if not text:
        return "", ""
    if text.startswith('"'):
        closing = text.find('"', 1)
        if closing != -1:
            return text[1:closing], text[closing + 1 :].lstrip()
        # An unterminated quote: read the rest as unquoted, so arguments are still split off.
        text = text[1:]
    match = _UNQUOTED_EXECUTABLE.match(text)
    if match:
        return match.group(1), text[match.end() :].lstrip()
    pieces = text.split(None, 1)
    return pieces[0], (pieces[1] if len(pieces) > 1 else "")


def mask_image_path(binary_path: str) -> str:
    """The ImagePath with its arguments replaced by "********" (KB Q235418: a KM Server password
    put into ImagePath breaks SP Update.exe, and must never be echoed). An executable that does
    not end in .exe or .sys may have the password glued to it, so it is masked whole."""
    executable, arguments = split_image_path(binary_path)
    if not binary_path.strip():
        return ""
    if not _EXECUTABLE_SUFFIX.search(executable):
        return _MASK
    if not arguments:
        return binary_path.strip()
    shown = f'"{executable}"' if binary_path.strip().startswith('"') else executable
    return f"{shown} {_MASK}"


# ---------------------------------------------------------------------------------------------
# sc config

_SC_CONFIG_SUCCESS = re.compile(r"^\[SC\] ChangeServiceConfig2? SUCCESS\s*$")


def parse_sc_config(
    stdout: str, stderr: str, exit_code: int, section: str = "sc config"
) -> ScFailure | None:
    """Parse `sc config NAME start= TYPE` (docs/windows-output.md#sc-failures): None for
    "[SC] ChangeServiceConfig SUCCESS", the `ScFailure` of "[SC] OpenService FAILED 1060:" (or any
    other "[SC] ... FAILED n:") with its message. sc's usage text or any other line raises
    ParseError."""
    _raise_if_missing(section, stderr, exit_code)
    failure: tuple[str, int] | None = None
    message: list[str] = []
    succeeded = False
    for line in _nonblank(stdout, "stdout") + _nonblank(stderr, "stderr"):
        if failure is not None:
            message.append(line.text.strip())
        elif failed := _SC_FAILED.match(line.text):
            failure = (failed.group("operation"), int(failed.group("error")))
        elif _SC_CONFIG_SUCCESS.match(line.text) and not succeeded:
            succeeded = True
        else:
            raise _parse_error(
                section, "expected '[SC] ChangeServiceConfig SUCCESS' or '[SC] ... FAILED n:'", line
            )
    if failure is not None:
        if succeeded:
            raise _parse_error(section, "both SUCCESS and FAILED")
        return ScFailure(failure[0], failure[1], " ".join(message))
    if not succeeded:
        raise _parse_error(section, f"no [SC] line (exit code {exit_code})")
    return None
