# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parsers of the Windows command output that the collection reads over WinRS.

One function per command form: decoded `str` in (CRLF intact, as `_winrs.py` decoded it with the
shell's code page), a value out, no I/O. The formats and the rules come from
`domain/windows-output.md` (cited below by section, e.g. "§1.5"; examples as E1..E15):

- §0    every command: split on LF, strip every CR (wmic ends lines with CR CR LF); read both
        streams; take error numbers from the text, never only from the exit code, because some
        layers cut exit codes to 8 bits (1062 arrives as 38).
- §1    `reg query`: Vista+ layout (4-space separators, `(Default)`), XP/2003 reg.exe 3.0 layout
        (`! REG.EXE VERSION 3.0` header, TAB separators, `<NO NAME>`); any `! REG.EXE VERSION n.n`
        header is accepted (Windows 2000's reg.exe 2.0 output is undocumented, §1.3).
- §2    `sc query` / `sc queryex` / the status block of `sc start` and `sc stop`; `sc qc`; the
        `[SC] <operation> FAILED <n>:` failures (§2.3).
- §4    `wmic ... /value` (`Name=Value` records), `wmic datafile ... get Version /value`.
- §5.2  `wevtutil qe ... /f:text`; §5.3 `wmic ntevent ... /value` and the CIM datetime.
- §6    `dir /-c`; §7 cmd's "is not recognized" (exit 9009).
- `certutil -hashfile FILE SHA256` (no example in windows-output.md; the layout is Windows'
  "<ALG> hash of <file>:", the digest, "CertUtil: -hashfile command completed successfully.";
  Windows 7 / 2008 R2 say "hash of file <file>:" and space the byte pairs).

What is an answer and what is an error:
- An answer the tool gives about the host is a value, even when the tool exits non-zero: a missing
  registry key (`RegQuery.found` False, §1.4), `[SC] ... FAILED n:` (`ScFailure`: 1060 no such
  service, 1062 not started..., §2.3), no WMI instance (`[]` / None, §4), dir's "File Not Found"
  (`DirListing.found` False).
- Output this module cannot read raises `ParseError`, naming the section, the line and the reason.
  A failure the tool reports that is not an answer ("ERROR: Access is denied.", a WMI error,
  certutil's "FAILED") raises `CommandFailed`, a `ParseError`; cmd's "is not recognized" raises
  `ToolMissing`, a `CommandFailed`. Callers that catch `ParseError` catch all three.
- Error text never quotes more than 200 characters of a line, and masks everything after
  `ImagePath` / `BINARY_PATH_NAME`, where a KM Server password may sit (KB Q235418).
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import NamedTuple, Union

# How much of an offending line an error may quote.
_SHOWN_MAX = 200
_MASK = "********"

# Win32 error numbers that `sc` prints in "[SC] ... FAILED <n>:" (§2.3).
ERROR_ACCESS_DENIED = 5
ERROR_DEPENDENT_SERVICES_RUNNING = 1051
ERROR_SERVICE_REQUEST_TIMEOUT = 1053
ERROR_SERVICE_ALREADY_RUNNING = 1056
ERROR_SERVICE_DOES_NOT_EXIST = 1060
ERROR_SERVICE_NOT_ACTIVE = 1062

# ---------------------------------------------------------------------------------------------
# Errors


# Lines that may carry a KM Server password after the executable (KB Q235418): everything after
# the marker is masked before a line reaches an error message.
_SECRET_MARKER = re.compile(r"(?i)(imagepath|binary_path_name)")


def _shown(line: str) -> str:
    """The part of a line an error message may quote: secrets masked, control characters escaped,
    at most 200 characters."""
    marker = _SECRET_MARKER.search(line)
    if marker:
        line = line[: marker.end()] + " " + _MASK
    escaped = "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in line
    )
    if len(escaped) > _SHOWN_MAX:
        escaped = escaped[: _SHOWN_MAX - 3] + "..."
    return escaped


def _restore_error(cls: type[ParseError], state: dict[str, object], message: str) -> ParseError:
    """Rebuild a pickled error (Ansible's worker processes pickle what they pass on)."""
    error = cls.__new__(cls)
    ValueError.__init__(error, message)
    error.__dict__.update(state)
    return error


class ParseError(ValueError):
    """Output that is not in any format this module knows (or is inconsistent in itself).

    `section` names the command ("reg", "sc query", ...); `line_number` (1-based, in `stream`) and
    `line` (at most 200 characters, secrets masked) point at the offending line when there is one.
    """

    def __init__(
        self,
        section: str,
        reason: str,
        line_number: int | None = None,
        line: str | None = None,
        stream: str = "stdout",
    ) -> None:
        self.section = section
        self.reason = reason
        self.line_number = line_number
        self.line = None if line is None else _shown(line)
        self.stream = stream
        super().__init__(self._compose())

    def __reduce__(self) -> tuple[object, tuple[type[ParseError], dict[str, object], str]]:
        return (_restore_error, (type(self), dict(self.__dict__), str(self)))

    def _where(self) -> str:
        if self.line_number is None:
            return ""
        prefix = "line" if self.stream == "stdout" else f"{self.stream} line"
        return f"{prefix} {self.line_number}: "

    def _compose(self) -> str:
        if self.line is None:
            return f"{self.section}: {self._where()}{self.reason}"
        return f"{self.section}: {self._where()}cannot read '{self.line}': {self.reason}"


class CommandFailed(ParseError):
    """The tool reported a failure that is not an answer about the host ("ERROR: Access is
    denied.", a WMI error, certutil's FAILED line). `reason` is the tool's own text."""

    def __init__(
        self,
        section: str,
        reason: str,
        exit_code: int,
        line_number: int | None = None,
        line: str | None = None,
        stream: str = "stderr",
    ) -> None:
        self.exit_code = exit_code
        super().__init__(section, _shown(reason), line_number, line, stream)

    def _compose(self) -> str:
        return f"{self.section}: the command failed (exit code {self.exit_code}): {self.reason}"


class ToolMissing(CommandFailed):
    """cmd.exe does not know the tool (§7, exit 9009): e.g. no wmic on Windows 2000, no wevtutil
    on Server 2003. `tool` is the name cmd printed."""

    def __init__(self, section: str, tool: str, exit_code: int, line_number: int) -> None:
        self.tool = tool
        reason = f"'{tool}' is not recognized as an internal or external command"
        super().__init__(section, reason, exit_code, line_number, None, "stderr")

    def _compose(self) -> str:
        return (
            f"{self.section}: '{self.tool}' is missing on this host: cmd.exe does not recognize "
            f"it (exit code {self.exit_code})"
        )


# ---------------------------------------------------------------------------------------------
# Lines (§0)


class _Line(NamedTuple):
    stream: str
    number: int
    text: str


def _lines(text: str, stream: str = "stdout") -> list[_Line]:
    """Split on LF, then drop every CR (CRLF for cmd tools, CR CR LF for wmic, §0)."""
    return [
        _Line(stream, number, raw.replace("\r", ""))
        for number, raw in enumerate(text.split("\n"), start=1)
    ]


def _nonblank(text: str, stream: str) -> list[_Line]:
    return [line for line in _lines(text, stream) if line.text.strip()]


def _fail(section: str, reason: str, line: _Line | None = None) -> ParseError:
    if line is None:
        return ParseError(section, reason)
    return ParseError(section, reason, line.number, line.text, line.stream)


def _failed(section: str, exit_code: int, lines: Sequence[_Line]) -> CommandFailed:
    first = lines[0]
    text = " ".join(line.text.strip() for line in lines)
    return CommandFailed(section, text, exit_code, first.number, None, first.stream)


_NOT_RECOGNIZED = re.compile(r"^'(.*)' is not recognized as an internal or external command,?\s*$")


def parse_not_recognized(stderr: str) -> str | None:
    """The tool name in cmd's "'X' is not recognized as an internal or external command," (§7,
    E15), or None when stderr does not say that."""
    for line in _lines(stderr, "stderr"):
        match = _NOT_RECOGNIZED.match(line.text)
        if match:
            return match.group(1)
    return None


def _raise_if_missing(section: str, stderr: str, exit_code: int) -> None:
    for line in _lines(stderr, "stderr"):
        match = _NOT_RECOGNIZED.match(line.text)
        if match:
            raise ToolMissing(section, match.group(1), exit_code, line.number)


def _raise_if_silent_failure(section: str, stdout: str, stderr: str, exit_code: int) -> None:
    """For tools whose empty output is an answer (wmic, wevtutil): a non-zero exit code with no
    text at all is not one."""
    if exit_code != 0 and not stdout.strip() and not stderr.strip():
        raise CommandFailed(section, "the command printed nothing", exit_code)


# ---------------------------------------------------------------------------------------------
# reg query (§1)

RegData = Union[str, int, bytes, tuple[str, ...]]

_REG_NOT_FOUND = "ERROR: The system was unable to find the specified registry key or value."
_REG_HEADER = re.compile(r"^! REG\.EXE VERSION [0-9]+\.[0-9]+\s*$")
# A key line: the full root name (§1.1), optionally behind \\HOST\ for a remote query.
_REG_KEY = re.compile(r"^(?:\\\\[^\\]+\\)?HKEY_[A-Z_]+(?:\\.*)?$")
# Vista+: 4 spaces, name, 4 spaces, type, 4 spaces, data. Data may be missing when a layer has
# trimmed the trailing spaces of an empty value (§1.5).
_REG_VALUE_SPACES = re.compile(
    r"^    (?P<name>.+?)    (?P<type>REG_[A-Z_]+)(?:    (?P<data>.*)|[ \t]*)$"
)
# XP/2003 reg.exe 3.0: 4 spaces, name, TAB, type, TAB, data (§1.2).
_REG_VALUE_TABS = re.compile(r"^    (?P<name>[^\t]+)\t(?P<type>REG_[A-Z_]+)(?:\t(?P<data>.*))?$")
_DEFAULT_NAMES = ("(default)", "<no name>")
# Printed as the data of a default value that does not exist (§1.1): not a value.
_VALUE_NOT_SET = "(value not set)"
_HEX_INT = re.compile(r"^0x([0-9A-Fa-f]+)$")
_HEX_BYTES = re.compile(r"^(?:[0-9A-Fa-f]{2})*$")
_REG_ROOTS = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKU": "HKEY_USERS",
    "HKCC": "HKEY_CURRENT_CONFIG",
}
_REG_STRINGS = ("REG_SZ", "REG_EXPAND_SZ")
# `0x%x` (§1.1, Wine's reg_data_to_wchar). REG_QWORD: the same form, 64 bits [I].
_REG_INTS = {
    "REG_DWORD": 0xFFFFFFFF,
    "REG_DWORD_BIG_ENDIAN": 0xFFFFFFFF,
    "REG_QWORD": 0xFFFFFFFFFFFFFFFF,
}
# Contiguous `%02X` pairs (§1.1, Wine's reg_data_to_wchar). No source shows how reg prints
# REG_LINK or the REG_RESOURCE_* types, so they are refused as unknown rather than guessed.
_REG_HEX = ("REG_NONE", "REG_BINARY")
# Printed after `reg query KEY /v NAME /s` (Wine's STRING_MATCHES_FOUND).
_REG_MATCHES = re.compile(r"^End of search: [0-9]+ match\(es\) found\.\s*$")


def _normal_key(path: str) -> str:
    """A key path for comparison: case-folded, HKLM spelt out, no trailing backslash."""
    path = path.strip().rstrip("\\")
    root, sep, rest = path.partition("\\")
    root = _REG_ROOTS.get(root.upper(), root)
    return (root + sep + rest).casefold()


@dataclass(frozen=True)
class RegValue:
    """One registry value. `name` is "" for the default value (`(Default)` / `<NO NAME>`).

    `data` by type: REG_SZ / REG_EXPAND_SZ -> str verbatim (nothing expanded); REG_DWORD,
    REG_DWORD_BIG_ENDIAN, REG_QWORD -> int; REG_MULTI_SZ -> tuple of str (split on the printed
    `\\0`, so an item that itself contains the two characters `\\0` cannot be told apart);
    REG_BINARY, REG_NONE -> bytes. Other types raise ParseError (no source shows their layout).
    """

    name: str
    type: str
    data: RegData

    @property
    def is_default(self) -> bool:
        return self.name == ""


@dataclass(frozen=True)
class RegKey:
    """A key line of the output and the values printed under it (none for a listed subkey, or
    for a key that has none)."""

    path: str
    values: tuple[RegValue, ...] = ()

    def value(self, name: str) -> RegValue | None:
        wanted = name.casefold()
        for value in self.values:
            if value.name.casefold() == wanted:
                return value
        return None


@dataclass(frozen=True)
class RegQuery:
    """The answer of one `reg query`. `found` is False when reg said the key or value does not
    exist (§1.4); `keys` are the key lines in output order (with `/s`, every key below)."""

    found: bool
    keys: tuple[RegKey, ...] = ()

    def key(self, path: str) -> RegKey | None:
        """The key printed under `path`, compared case-insensitively (HKLM = HKEY_LOCAL_MACHINE)."""
        wanted = _normal_key(path)
        for key in self.keys:
            if _normal_key(key.path) == wanted:
                return key
        return None

    def value(self, key: str, name: str) -> RegValue | None:
        """The value `name` ("" for the default) under `key`; both compared case-insensitively."""
        found = self.key(key)
        return None if found is None else found.value(name)

    def subkeys(self, key: str) -> tuple[str, ...]:
        """Names of the keys printed directly below `key` (a subkey list, or `/s` output)."""
        parent = _normal_key(key) + "\\"
        names = []
        for candidate in self.keys:
            normal = _normal_key(candidate.path)
            if normal.startswith(parent) and "\\" not in normal[len(parent) :]:
                names.append(candidate.path.rstrip("\\").rsplit("\\", 1)[-1])
        return tuple(names)


def _reg_data(section: str, line: _Line, reg_type: str, text: str) -> RegData:
    if reg_type in _REG_STRINGS:
        return text
    if reg_type in _REG_INTS:
        match = _HEX_INT.match(text.strip())
        if not match or int(match.group(1), 16) > _REG_INTS[reg_type]:
            raise _fail(
                section, f"{reg_type} data is not 0x and a hexadecimal number in range", line
            )
        return int(match.group(1), 16)
    if reg_type == "REG_MULTI_SZ":
        # Items are joined by the two characters \0 (§1.1); an empty item cannot occur inside a
        # REG_MULTI_SZ (it would end the list), so empty trailing pieces are dropped.
        items = text.split("\\0") if text else []
        while items and items[-1] == "":
            items.pop()
        return tuple(items)
    if reg_type in _REG_HEX:
        digits = text.strip()
        if not _HEX_BYTES.match(digits):
            raise _fail(section, f"{reg_type} data is not pairs of hexadecimal digits", line)
        return bytes.fromhex(digits)
    raise _fail(section, f"unknown registry type {reg_type}", line)


def _reg_value(section: str, line: _Line, tabs_first: bool) -> RegValue | None:
    layouts = (_REG_VALUE_TABS, _REG_VALUE_SPACES)
    if not tabs_first:
        layouts = (_REG_VALUE_SPACES, _REG_VALUE_TABS)
    match = layouts[0].match(line.text) or layouts[1].match(line.text)
    if match is None:
        raise _fail(section, "expected NAME, a REG_ type and data", line)
    name, reg_type, text = match.group("name"), match.group("type"), match.group("data") or ""
    if name.casefold() in _DEFAULT_NAMES:
        if text == _VALUE_NOT_SET:
            return None
        name = ""
    return RegValue(name, reg_type, _reg_data(section, line, reg_type, text))


def _reg_keys(section: str, stdout: str) -> tuple[RegKey, ...]:
    tabs_first = False
    keys: list[tuple[str, list[RegValue]]] = []
    seen: set[str] = set()
    for line in _lines(stdout):
        text = line.text
        if not text.strip():
            continue
        if _REG_MATCHES.match(text):
            continue
        if text.startswith("! REG.EXE VERSION"):
            if not _REG_HEADER.match(text):
                raise _fail(section, "expected '! REG.EXE VERSION n.n'", line)
            tabs_first = True
        elif _REG_KEY.match(text):
            normal = _normal_key(text)
            if normal in seen:
                raise _fail(section, "the same key is printed twice", line)
            seen.add(normal)
            keys.append((text.rstrip(), []))
        elif text[0] in " \t":
            if not keys:
                raise _fail(section, "a value line before any key line", line)
            value = _reg_value(section, line, tabs_first)
            if value is None:
                continue
            values = keys[-1][1]
            if any(other.name.casefold() == value.name.casefold() for other in values):
                raise _fail(section, "the same value is printed twice under one key", line)
            values.append(value)
        else:
            raise _fail(
                section, "expected a key line (HKEY_...), a value line or an empty line", line
            )
    return tuple(RegKey(path, tuple(values)) for path, values in keys)


def parse_reg_query(
    stdout: str, stderr: str, exit_code: int, section: str = "reg", key: str | None = None
) -> RegQuery:
    """Parse `reg query KEY [/v NAME | /ve] [/s]` output of any era (§1, E1-E4).

    A missing key or value (stderr "ERROR: The system was unable to find the specified registry
    key or value.") is the answer `found=False`, with whatever keys stdout printed before it. Any
    other stderr text ("ERROR: Access is denied.", "ERROR: Invalid syntax.") raises
    `CommandFailed`. The exit code is not trusted (XP exits 1 for some successful queries, §1.2),
    except when nothing at all was printed.

    Without /s, reg prints no key line for a key that has no values, only its subkeys' paths, and
    nothing but the leading empty line for a key with neither (§1.1, Wine's query_all). Pass the
    queried `key` so that the answer still lists it (first, with no values).
    """
    _raise_if_missing(section, stderr, exit_code)
    errors = _nonblank(stderr, "stderr")
    not_found = [line for line in errors if line.text.strip() == _REG_NOT_FOUND]
    other = [line for line in errors if line.text.strip() != _REG_NOT_FOUND]
    if other:
        raise _failed(section, exit_code, other)
    keys = _reg_keys(section, stdout)
    if not_found:
        return RegQuery(found=False, keys=keys)
    if not keys and (exit_code != 0 or not stdout):
        # reg prints at least the leading empty line when it succeeds.
        raise _fail(section, f"no key line in the output (exit code {exit_code})")
    query = RegQuery(found=True, keys=keys)
    if key is not None and query.key(key) is None:
        query = RegQuery(found=True, keys=(RegKey(key),) + keys)
    return query


# ---------------------------------------------------------------------------------------------
# sc (§2)

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
# Indent (spaces, or a TAB in ReactOS's clone), label padded with spaces, ':', value (§2.5).
_SC_FIELD = re.compile(r"^[ \t]+(?P<label>[A-Z][A-Z0-9_]*)[ \t]*:(?:[ \t](?P<value>.*))?$")
_SC_CONTROLS = re.compile(r"^[ \t]+\((?P<value>[^()]*)\)[ \t]*$")
_SC_MORE = re.compile(r"^[ \t]+:(?:[ \t](?P<value>.*))?$")
_SC_CODED = re.compile(r"^(?P<code>[0-9A-Fa-f]+)[ \t]+(?P<name>[A-Z][A-Z0-9_]*)(?P<rest>.*)$")
_SC_EXIT = re.compile(r"^(?P<decimal>-?[0-9]+)[ \t]+\(0x(?P<hex>[0-9A-Fa-f]+)\)$")
_DECIMAL = re.compile(r"^[0-9]+$")
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
    """`[SC] <operation> FAILED <error>:` and its message (§2.3): an answer, not an exception.
    `error` is the Win32 error number from the text (1060 = no such service)."""

    operation: str
    error: int
    message: str

    @property
    def service_missing(self) -> bool:
        return self.error == ERROR_SERVICE_DOES_NOT_EXIST


@dataclass(frozen=True)
class ServiceStatus:
    """The status block of `sc query` / `sc queryex` / `sc start` / `sc stop` (§2.1, E5, E6).

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
    """The block of `sc qc` (§2.2, E7). `start_type` is "boot", "system", "auto", "manual" or
    "disabled" (`start_code` the number sc printed); `delayed` marks "AUTO_START (DELAYED)".

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
    established, §0)."""
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
                raise _fail(section, "a second [SC] FAILED line", line)
            failure = (line, failed.group("operation"), int(failed.group("error")))
        elif _SC_SUCCESS.match(text):
            continue
        elif service := _SC_NAME.match(text):
            if name is not None:
                raise _fail(section, "a second SERVICE_NAME: only one service is expected", line)
            name, last_label = service.group("value"), None
        elif name is None:
            raise _fail(section, "expected SERVICE_NAME: or '[SC] ... FAILED n:'", line)
        elif (shown := _SC_DISPLAY.match(text)) and display is None and not fields:
            display = shown.group("value")
        elif labelled := _SC_FIELD.match(text):
            label, value = labelled.group("label"), (labelled.group("value") or "").rstrip()
            if label not in labels:
                raise _fail(section, f"unknown field {label}", line)
            if label in fields:
                raise _fail(section, f"field {label} printed twice", line)
            fields[label], last_label = (line, value), label
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
            raise _fail(section, "expected an indented 'LABEL : value' line", line)
    sc_failure = None
    if failure is not None:
        if name is not None:
            raise _fail(section, "both a service block and a failure", failure[0])
        sc_failure = ScFailure(failure[1], failure[2], " ".join(message))
    return _ScBlock(name, display, fields, controls, dependencies, sc_failure, first)


def _require(section: str, block: _ScBlock, labels: Sequence[str], exit_code: int) -> str:
    """The service name, once the block is known to be complete."""
    if block.name is None:
        if block.first is None:
            raise _fail(section, f"no output (exit code {exit_code})")
        raise _fail(section, "no SERVICE_NAME: line and no [SC] FAILED line", block.first)
    missing = [label for label in labels if label not in block.fields]
    if missing:
        raise _fail(section, f"service {block.name}: missing field(s) {', '.join(missing)}")
    return block.name


def _sc_coded(section: str, block: _ScBlock, label: str) -> tuple[int, str, str]:
    line, value = block.fields[label]
    match = _SC_CODED.match(value)
    if not match:
        raise _fail(section, f"{label} is not a number and a NAME", line)
    return int(match.group("code"), 16), match.group("name"), match.group("rest")


def _sc_exit(section: str, block: _ScBlock, label: str) -> int:
    line, value = block.fields[label]
    match = _SC_EXIT.match(value)
    if not match:
        raise _fail(section, f"{label} is not 'decimal  (0xhex)'", line)
    # A DWORD may be printed as a negative decimal; both forms must name the same number.
    number = int(match.group("decimal")) & 0xFFFFFFFF
    if number != int(match.group("hex"), 16):
        raise _fail(section, f"{label}: the decimal and hexadecimal numbers differ", line)
    return number


def _sc_hex(section: str, block: _ScBlock, label: str) -> int:
    line, value = block.fields[label]
    match = _HEX_INT.match(value)
    if not match:
        raise _fail(section, f"{label} is not 0x and a hexadecimal number", line)
    return int(match.group(1), 16)


def _sc_decimal(section: str, block: _ScBlock, label: str) -> int:
    line, value = block.fields[label]
    if not _DECIMAL.match(value):
        raise _fail(section, f"{label} is not a decimal number", line)
    return int(value)


def parse_sc_query(
    stdout: str, stderr: str, exit_code: int, section: str = "sc query"
) -> ServiceStatus | ScFailure:
    """Parse the output of `sc query NAME`, `sc queryex NAME`, `sc start NAME ...` or
    `sc stop NAME` (§2.1, §2.3, E5, E6, E9): one service's status block, or the `[SC] ... FAILED
    <n>:` answer (1060 no such service, 1056 already running, 1062 not started, ...). The error
    number comes from the text; the exit code is not trusted (§0)."""
    _raise_if_missing(section, stderr, exit_code)
    block = _sc_block(section, stdout, stderr, _STATUS_LABELS + _STATUS_OPTIONAL)
    if block.failure is not None:
        return block.failure
    name = _require(section, block, _STATUS_LABELS, exit_code)
    service_type = _sc_coded(section, block, "TYPE")[0]
    state_code, state_name, state_rest = _sc_coded(section, block, "STATE")
    state_line = block.fields["STATE"][0]
    if state_code not in SERVICE_STATES or state_name.lower() != SERVICE_STATES[state_code]:
        raise _fail(section, "STATE: unknown state number or name", state_line)
    if state_rest.strip():
        raise _fail(section, "STATE: unexpected text after the state name", state_line)
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
    """Parse `sc qc NAME` (§2.2, E7, E8): the service's configuration, or the `[SC] OpenService
    FAILED 1060:` answer when the service does not exist."""
    _raise_if_missing(section, stderr, exit_code)
    block = _sc_block(section, stdout, stderr, _CONFIG_LABELS)
    if block.failure is not None:
        return block.failure
    name = _require(section, block, _CONFIG_LABELS, exit_code)
    start_code, start_name, start_rest = _sc_coded(section, block, "START_TYPE")
    if _START_NAMES.get(start_code) != start_name:
        raise _fail(
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
# wmic /value (§4, §5.3)

_WMIC_NO_INSTANCE = "No Instance(s) Available."
_WMIC_PROPERTY = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")
_VERSION_TEXT = re.compile(r"^[0-9]+(?:\.[0-9]+){1,3}$")


def _wmic_lines(section: str, stdout: str, stderr: str, exit_code: int) -> list[_Line] | None:
    """The stdout lines to read, or None for "No Instance(s) Available." on either stream."""
    _raise_if_missing(section, stderr, exit_code)
    _raise_if_silent_failure(section, stdout, stderr, exit_code)
    errors = _nonblank(stderr, "stderr")
    out = _lines(stdout)
    if any(line.text.strip() == _WMIC_NO_INSTANCE for line in errors):
        rest = [line for line in errors if line.text.strip() != _WMIC_NO_INSTANCE]
        if rest:
            raise _failed(section, exit_code, rest)
        extra = [line for line in out if line.text.strip()]
        if extra:
            raise _fail(section, "output besides 'No Instance(s) Available.'", extra[0])
        return None
    if errors:
        raise _failed(section, exit_code, errors)
    filled = [line for line in out if line.text.strip()]
    if filled and filled[0].text.strip() == _WMIC_NO_INSTANCE:
        if len(filled) > 1:
            raise _fail(section, "output besides 'No Instance(s) Available.'", filled[1])
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
                raise _fail(section, f"property {name} printed twice in one record", line)
            current[name], last = _Property(line, match.group("value")), name
        elif last is None:
            raise _fail(section, "expected Name=Value", line)
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
            raise _fail(section, f"expected one of {', '.join(properties)} as Name=Value", line)
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
            raise _fail(section, f"the record starting here has no {', '.join(missing)}", first)
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
    """Parse `wmic ... get A,B /value` (§4): one dict per instance, `Name=Value` split on the
    first "=", values verbatim. "No Instance(s) Available." (on either stream) is `[]`.

    A line without "=" continues the previous value (joined with "\\n"). Without `properties`,
    records are separated by empty lines and a name printed twice in one record is an error. With
    `properties` (the names given to `get`), a record ends when it has all of them and one starts
    again, so empty lines inside a multi-line value are kept; a line "Name=..." whose name is not
    requested, or was already read in an incomplete record, is value text. Keys then use the
    spelling of `properties`. Any other stderr text raises `CommandFailed`.
    """
    records = _wmic_records(section, stdout, stderr, exit_code, properties)
    return [{name: item.value for name, item in record.items()} for record in records]


def parse_wmic_file_version(
    stdout: str, stderr: str, exit_code: int, section: str = "wmic datafile"
) -> str | None:
    """Parse `wmic datafile where name="..." get Version /value` (§4, E11, E12): the file
    version ("5.5.2650.23"), or None when the file is missing ("No Instance(s) Available.") or
    has no version resource (no `Version=` line, or an empty value)."""
    records = _wmic_records(section, stdout, stderr, exit_code, None)
    if not records:
        return None
    if len(records) > 1:
        second = min(item.line.number for item in records[1].values())
        raise _fail(
            section, f"{len(records)} files matched; expected one (second at line {second})"
        )
    record = {name.casefold(): item for name, item in records[0].items()}
    if set(record) != {"version"}:
        first = min((item.line for item in record.values()), key=lambda line: line.number)
        raise _fail(section, f"expected only Version=, got {', '.join(sorted(records[0]))}", first)
    version = record["version"].value.strip()
    if not version:
        return None
    if not _VERSION_TEXT.match(version):
        raise _fail(section, "Version is not a dotted version number", record["version"].line)
    return version


_CIM_DATETIME = re.compile(
    r"^(?P<year>[0-9]{4})(?P<month>[0-9]{2})(?P<day>[0-9]{2})"
    r"(?P<hour>[0-9]{2})(?P<minute>[0-9]{2})(?P<second>[0-9]{2})\.(?P<micro>[0-9]{6})"
    r"(?P<sign>[+-])(?P<offset>[0-9]{3})$"
)


def parse_cim_datetime(text: str) -> datetime:
    """A CIM datetime `yyyymmddHHMMSS.ffffff+UUU` (UUU = UTC offset in minutes, §5.3) as an aware
    datetime. Raises ValueError for anything else (wildcards such as `*****` included)."""
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


@dataclass(frozen=True)
class EventRecord:
    """One event-log record. `record` is the log's record number (None from wevtutil's text
    format, which does not print it); `time` is aware; `source` is verbatim (compare it
    case-insensitively); `type` is wmic's Type or wevtutil's Level ("Information", "Error")."""

    record: int | None
    event_id: int
    source: str
    time: datetime
    type: str
    message: str


_EVENT_PROPERTIES = ("EventCode", "Message", "RecordNumber", "SourceName", "TimeGenerated", "Type")


def _event_number(section: str, item: _Property) -> int:
    if not _DECIMAL.match(item.value.strip()):
        raise _fail(section, "not a decimal number", item.line)
    return int(item.value.strip())


def parse_wmic_events(
    stdout: str, stderr: str, exit_code: int, section: str = "wmic ntevent"
) -> list[EventRecord]:
    """Parse `wmic ntevent where "..." get EventCode,Message,RecordNumber,SourceName,
    TimeGenerated,Type /value < NUL` (§5.3): records in output order. "No Instance(s)
    Available." is `[]`. A multi-line Message is joined with "\\n", trailing empty lines dropped."""
    events = []
    for record in _wmic_records(section, stdout, stderr, exit_code, _EVENT_PROPERTIES):
        try:
            time = parse_cim_datetime(record["TimeGenerated"].value)
        except ValueError as exc:
            raise _fail(section, str(exc), record["TimeGenerated"].line) from exc
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
# wevtutil qe /f:text (§5.2)

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
        raise _fail(section, "Date is not ISO 8601", line)
    if match.group("zone") is None:
        # Local time of an unknown zone: refusing beats guessing when callers compare times.
        raise _fail(section, "Date has no UTC offset", line)
    zone = "+00:00" if match.group("zone") == "Z" else match.group("zone")
    micro = (match.group("fraction") or "0")[:6].ljust(6, "0")
    try:
        return datetime.fromisoformat(f"{match.group('date')}T{match.group('time')}.{micro}{zone}")
    except ValueError as exc:
        raise _fail(section, "Date is not a valid date and time", line) from exc


def _wevt_event(
    section: str, header: _Line, fields: dict[str, tuple[_Line, str]], description: list[str]
) -> EventRecord:
    missing = [label for label in _WEVT_REQUIRED if label not in fields]
    if missing:
        raise _fail(section, f"event without {', '.join(missing)}", header)
    id_line, id_text = fields["Event ID"]
    if not _DECIMAL.match(id_text.strip()):
        raise _fail(section, "Event ID is not a decimal number", id_line)
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
    """Parse `wevtutil qe LOG /q:"..." /f:text` (§5.2, E13), Vista and later: events in output
    order (`/rd:true` = newest first). Each starts with `Event[N]:`; indented `Label: value` fields
    follow; the message follows `Description:` unindented, up to the next `Event[N]:` (trailing
    empty lines dropped). A Date without a UTC offset is refused. No events: empty stdout, `[]`.
    stderr text raises `CommandFailed`."""
    _raise_if_missing(section, stderr, exit_code)
    _raise_if_silent_failure(section, stdout, stderr, exit_code)
    errors = _nonblank(stderr, "stderr")
    if errors:
        raise _failed(section, exit_code, errors)
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
            raise _fail(section, "expected Event[N]: or an indented 'Label: value' line", line)
        else:
            label, value = match.group("label"), (match.group("value") or "").rstrip()
            if label not in _WEVT_LABELS:
                raise _fail(section, f"unknown field {label}", line)
            if label in fields:
                raise _fail(section, f"field {label} printed twice", line)
            fields[label] = (line, value)
            if label == "Description":
                description = [value] if value else []
    if header is not None:
        events.append(_wevt_event(section, header, fields, description or []))
    return events


# ---------------------------------------------------------------------------------------------
# dir /-c (§6)

_DIR_NOT_FOUND = (
    "File Not Found",
    "The system cannot find the file specified.",
    "The system cannot find the path specified.",
)
_DIR_VOLUME = re.compile(r"^ Volume in drive (?P<drive>.+?) (?:is (?P<label>.*)|has no label\.)$")
_DIR_SERIAL = re.compile(r"^ Volume Serial Number is (?P<serial>[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4})\s*$")
_DIR_OF = re.compile(r"^ Directory of (?P<path>.+?)\s*$")
# Dates and times follow the locale (dd/mm/yyyy, mm/dd/yyyy, dd.mm.yyyy, yyyy-mm-dd; 24-hour,
# "09:12 AM"); they are kept as text, never interpreted.
_DIR_DATE = r"[0-9]{1,4}[/.-][0-9]{1,2}[/.-][0-9]{1,4}"
_DIR_TIME = r"[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?(?: ?[AaPp][Mm])?"
_DIR_ENTRY = re.compile(
    rf"^(?P<date>{_DIR_DATE}) +(?P<time>{_DIR_TIME}) +"
    r"(?:<DIR> +(?P<dirname>\S.*)|(?P<size>[0-9]+) (?P<filename>.+))$"
)
_DIR_GROUPED = re.compile(rf"^{_DIR_DATE} +{_DIR_TIME} +[0-9]{{1,3}}[,.' \u00a0][0-9]{{3}}")
_DIR_FILES = re.compile(r"^\s+(?P<count>[0-9]+) File\(s\)\s+(?P<bytes>[0-9]+) bytes\s*$")
_DIR_DIRS = re.compile(r"^\s+(?P<count>[0-9]+) Dir\(s\)\s+(?P<free>[0-9]+) bytes free\s*$")


class DirEntry(NamedTuple):
    """One line of a listing: `size` is None for a directory; date and time are the locale's
    text, never interpreted."""

    name: str
    size: int | None
    is_dir: bool
    date: str
    time: str


@dataclass(frozen=True)
class DirListing:
    """`dir /-c PATH` (§6, E14). `found` is False for "File Not Found" / "The system cannot find
    the path specified." (then there are no entries and no totals)."""

    found: bool
    directory: str | None
    entries: tuple[DirEntry, ...] = ()
    file_count: int = 0
    total_bytes: int = 0
    dir_count: int = 0
    free_bytes: int | None = None
    volume_label: str | None = None
    serial_number: str | None = None

    @property
    def files(self) -> tuple[DirEntry, ...]:
        return tuple(entry for entry in self.entries if not entry.is_dir)

    def entry(self, name: str) -> DirEntry | None:
        """The entry called `name`, compared case-insensitively (as NTFS and FAT do)."""
        wanted = name.casefold()
        for entry in self.entries:
            if entry.name.casefold() == wanted:
                return entry
        return None


class _DirHead(NamedTuple):
    label: str | None
    serial: str | None
    directory: str | None


def parse_dir(stdout: str, stderr: str, exit_code: int, section: str = "dir") -> DirListing:
    """Parse `dir /-c PATH` (§6, E14): entries, the File(s) and Dir(s) totals (checked against
    the entries) and the free bytes. Sizes with digit grouping are refused (use /-c). A missing
    file or path is the answer `found=False`; other stderr text raises `CommandFailed`."""
    _raise_if_missing(section, stderr, exit_code)
    errors = _nonblank(stderr, "stderr")
    missing = [line for line in errors if line.text.strip() in _DIR_NOT_FOUND]
    other = [line for line in errors if line.text.strip() not in _DIR_NOT_FOUND]
    if other:
        raise _failed(section, exit_code, other)
    head = _DirHead(None, None, None)
    entries: list[DirEntry] = []
    files = dirs = None
    files_line: _Line | None = None
    for line in _lines(stdout):
        text = line.text
        if not text.strip():
            continue
        volume, serial = _DIR_VOLUME.match(text), _DIR_SERIAL.match(text)
        directory, entry = _DIR_OF.match(text), _DIR_ENTRY.match(text)
        if volume and head.label is None:
            head = head._replace(label=volume.group("label") or "")
        elif serial and head.serial is None:
            head = head._replace(serial=serial.group("serial"))
        elif directory and head.directory is None and not entries:
            head = head._replace(directory=directory.group("path"))
        elif entry and head.directory is not None and files is None:
            dirname = entry.group("dirname")
            size = entry.group("size")
            entries.append(
                DirEntry(
                    name=dirname if dirname is not None else entry.group("filename"),
                    size=None if size is None else int(size),
                    is_dir=dirname is not None,
                    date=entry.group("date"),
                    time=entry.group("time"),
                )
            )
        elif _DIR_FILES.match(text) and files is None and head.directory is not None:
            files, files_line = _DIR_FILES.match(text), line
        elif _DIR_DIRS.match(text) and files is not None and dirs is None:
            dirs = _DIR_DIRS.match(text)
        elif _DIR_GROUPED.match(text):
            raise _fail(section, "sizes carry digit grouping: run dir with /-c", line)
        else:
            raise _fail(section, "not a line of a single-directory dir listing", line)
    if missing:
        if entries or files is not None:
            raise _fail(section, "a listing and 'File Not Found' together")
        return DirListing(False, head.directory, volume_label=head.label, serial_number=head.serial)
    if head.directory is None or files is None or dirs is None:
        raise _fail(section, f"no ' Directory of', File(s) or Dir(s) line (exit code {exit_code})")
    listing = DirListing(
        found=True,
        directory=head.directory,
        entries=tuple(entries),
        file_count=int(files.group("count")),
        total_bytes=int(files.group("bytes")),
        dir_count=int(dirs.group("count")),
        free_bytes=int(dirs.group("free")),
        volume_label=head.label,
        serial_number=head.serial,
    )
    _check_dir_totals(section, listing, files_line)
    return listing


def _check_dir_totals(section: str, listing: DirListing, files_line: _Line | None) -> None:
    listed_files = listing.files
    listed = (
        len(listed_files),
        sum(entry.size or 0 for entry in listed_files),
        len(listing.entries) - len(listed_files),
    )
    printed = (listing.file_count, listing.total_bytes, listing.dir_count)
    if listed != printed:
        raise _fail(
            section,
            f"the totals ({printed[0]} files, {printed[1]} bytes, {printed[2]} dirs) do not match "
            f"the entries ({listed[0]} files, {listed[1]} bytes, {listed[2]} dirs)",
            files_line,
        )


# ---------------------------------------------------------------------------------------------
# certutil -hashfile

_HASH_LENGTHS = {
    "MD2": 32,
    "MD4": 32,
    "MD5": 32,
    "SHA1": 40,
    "SHA256": 64,
    "SHA384": 96,
    "SHA512": 128,
}
_CERTUTIL_HEADER = re.compile(r"^(?P<algorithm>[A-Z0-9]+) hash of (?:file )?(?P<path>.+):\s*$")
_CERTUTIL_DIGEST = re.compile(r"^[0-9A-Fa-f]{2}(?: ?[0-9A-Fa-f]{2})*$")
_CERTUTIL_DONE = "CertUtil: -hashfile command completed successfully."
_CERTUTIL_FAILED = re.compile(r"^CertUtil: -hashfile command FAILED")


def parse_certutil_hash(
    stdout: str, stderr: str, exit_code: int, section: str = "certutil", algorithm: str = "SHA256"
) -> str:
    """Parse `certutil -hashfile FILE SHA256`: the digest in lower-case hex. Older Windows print
    the byte pairs separated by spaces and "hash of file FILE:". certutil's "FAILED" text (file
    missing, in use) raises `CommandFailed` with that text."""
    expected = algorithm.upper()
    if expected not in _HASH_LENGTHS:
        raise ValueError(f"certutil: unknown hash algorithm {algorithm!r}")
    _raise_if_missing(section, stderr, exit_code)
    lines = _nonblank(stdout, "stdout") + _nonblank(stderr, "stderr")
    if any(_CERTUTIL_FAILED.match(line.text.strip()) for line in lines):
        raise _failed(section, exit_code, lines)
    if len(lines) != 3:
        extra = lines[3] if len(lines) > 3 else None
        raise _fail(
            section,
            f"expected 3 lines (header, digest, completion), got {len(lines)} "
            f"(exit code {exit_code})",
            extra,
        )
    header, digest, done = lines
    match = _CERTUTIL_HEADER.match(header.text.strip())
    if not match or match.group("algorithm").upper() != expected:
        raise _fail(section, f"expected '{expected} hash of FILE:'", header)
    if not _CERTUTIL_DIGEST.match(digest.text.strip()):
        raise _fail(section, "the digest is not hexadecimal byte pairs", digest)
    hex_digest = digest.text.strip().replace(" ", "").lower()
    if len(hex_digest) != _HASH_LENGTHS[expected]:
        raise _fail(
            section, f"a {expected} digest has {_HASH_LENGTHS[expected]} hex digits", digest
        )
    if done.text.strip() != _CERTUTIL_DONE:
        raise _fail(section, f"expected '{_CERTUTIL_DONE}'", done)
    return hex_digest


__all__ = [
    "ERROR_ACCESS_DENIED",
    "ERROR_DEPENDENT_SERVICES_RUNNING",
    "ERROR_SERVICE_ALREADY_RUNNING",
    "ERROR_SERVICE_DOES_NOT_EXIST",
    "ERROR_SERVICE_NOT_ACTIVE",
    "ERROR_SERVICE_REQUEST_TIMEOUT",
    "SERVICE_STATES",
    "START_TYPES",
    "CommandFailed",
    "DirEntry",
    "DirListing",
    "EventRecord",
    "ParseError",
    "RegKey",
    "RegQuery",
    "RegValue",
    "ScFailure",
    "ServiceConfig",
    "ServiceStatus",
    "ToolMissing",
    "mask_image_path",
    "parse_certutil_hash",
    "parse_cim_datetime",
    "parse_dir",
    "parse_not_recognized",
    "parse_reg_query",
    "parse_sc_qc",
    "parse_sc_query",
    "parse_wevtutil_text",
    "parse_wmic_events",
    "parse_wmic_file_version",
    "parse_wmic_values",
    "split_image_path",
]


# ---------------------------------------------------------------------------------------------
# Output of a command run with `2>&1` (the batched probe merges each section's streams)

_STDERR_LINES = (
    re.compile(r"^ERROR: .*$"),  # reg.exe (§1.4) and wmic's one-line errors
    _NOT_RECOGNIZED,  # cmd (§7, E15), and its second line below
    re.compile(r"^operable program or batch file\.\s*$"),
)


def split_merged_streams(text: str) -> tuple[str, str]:
    """Separate what reg and cmd write to stderr from a `2>&1`-merged answer, so each parser
    sees the streams as the tool wrote them. Lines keep their line ends."""
    stdout, stderr = [], []
    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        (stderr if any(pattern.match(bare) for pattern in _STDERR_LINES) else stdout).append(line)
    return "".join(stdout), "".join(stderr)


# ---------------------------------------------------------------------------------------------
# Backing up the KM database (exchops.kms.kms_backup): `dir /-c /s /a` (§6), xcopy, and dir's
# own messages inside a `2>&1`-merged answer

# dir's answers that are not a listing (§6 "File Not Found"; the system messages of
# ERROR_FILE_NOT_FOUND / ERROR_PATH_NOT_FOUND / ERROR_ACCESS_DENIED), written to stderr.
_DIR_STDERR_LINES = (
    *_STDERR_LINES,
    re.compile(r"^File Not Found\s*$"),
    re.compile(r"^The system cannot find the (?:file|path) specified\.\s*$"),
    re.compile(r"^Access is denied\.\s*$"),
)


def split_merged_dir_streams(text: str) -> tuple[str, str]:
    """`split_merged_streams` for `dir`: also moves dir's "File Not Found", "The system cannot
    find the path specified." and "Access is denied." lines to stderr, where dir writes them, so
    `parse_dir` / `parse_dir_tree` see the streams as the tool wrote them. A listing line never
    looks like these: it starts with a date, a space or a digit."""
    stdout, stderr = [], []
    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        (stderr if any(pattern.match(bare) for pattern in _DIR_STDERR_LINES) else stdout).append(
            line
        )
    return "".join(stdout), "".join(stderr)


_DIR_TOTAL_LISTED = re.compile(r"^\s+Total Files Listed:\s*$")


@dataclass(frozen=True)
class DirTree:
    """`dir /-c /s [/a] PATH` (§6 layout, one block per folder): `folders` are the per-folder
    listings in output order (each with its own File(s) total; `free_bytes` None), then the
    "Total Files Listed:" totals and the free bytes of the drive. `found` is False for
    "File Not Found" / "The system cannot find the path specified." (no folders then)."""

    found: bool
    folders: tuple[DirListing, ...] = ()
    file_count: int = 0
    total_bytes: int = 0
    dir_count: int = 0
    free_bytes: int | None = None
    volume_label: str | None = None
    serial_number: str | None = None

    @property
    def root(self) -> str | None:
        """The first folder listed: PATH itself when PATH is a folder (its parent when PATH is a
        file, since `dir /s FILE` lists the folders holding files of that name)."""
        return self.folders[0].directory if self.folders else None

    def files(self) -> tuple[tuple[str, DirEntry], ...]:
        """(full path, entry) of every file, folder by folder in output order."""
        return tuple(
            (_join_path(folder.directory or "", entry.name), entry)
            for folder in self.folders
            for entry in folder.files
        )


def _join_path(folder: str, name: str) -> str:
    return folder + name if folder.endswith("\\") else f"{folder}\\{name}"


class _TreeBlock(NamedTuple):
    directory: str
    line: _Line
    entries: list[DirEntry]


def _tree_block(section: str, block: _TreeBlock, total: re.Match[str], line: _Line) -> DirListing:
    listing = DirListing(
        found=True,
        directory=block.directory,
        entries=tuple(block.entries),
        file_count=int(total.group("count")),
        total_bytes=int(total.group("bytes")),
        dir_count=sum(1 for entry in block.entries if entry.is_dir),
    )
    listed = (len(listing.files), sum(entry.size or 0 for entry in listing.files))
    if listed != (listing.file_count, listing.total_bytes):
        raise _fail(
            section,
            f"the File(s) line of {block.directory} ({listing.file_count} files, "
            f"{listing.total_bytes} bytes) does not match its entries ({listed[0]} files, "
            f"{listed[1]} bytes)",
            line,
        )
    return listing


def parse_dir_tree(stdout: str, stderr: str, exit_code: int, section: str = "dir /s") -> DirTree:
    """Parse `dir /-c /s [/a] PATH`: per folder ` Directory of X`, its entries and its File(s)
    line; then `Total Files Listed:`, the grand File(s) line and the Dir(s) line with the free
    bytes. Every File(s) line is checked against the entries it sums up, and the grand totals
    against the folders. A missing path is the answer `found=False`; other stderr text
    ("Access is denied." for an unreadable subfolder) raises `CommandFailed`: a listing with a
    folder left out must never pass for the whole tree."""
    _raise_if_missing(section, stderr, exit_code)
    errors = _nonblank(stderr, "stderr")
    missing = [line for line in errors if line.text.strip() in _DIR_NOT_FOUND]
    other = [line for line in errors if line.text.strip() not in _DIR_NOT_FOUND]
    if other:
        raise _failed(section, exit_code, other)
    label = serial = None
    folders: list[DirListing] = []
    block: _TreeBlock | None = None
    listed_line: _Line | None = None
    grand: re.Match[str] | None = None
    dirs: re.Match[str] | None = None
    for line in _lines(stdout):
        text = line.text
        if not text.strip():
            continue
        volume, serial_match = _DIR_VOLUME.match(text), _DIR_SERIAL.match(text)
        directory, entry = _DIR_OF.match(text), _DIR_ENTRY.match(text)
        files_total = _DIR_FILES.match(text)
        if volume and label is None and not folders and block is None:
            label = volume.group("label") or ""
        elif serial_match and serial is None and not folders and block is None:
            serial = serial_match.group("serial")
        elif directory and block is None and listed_line is None:
            block = _TreeBlock(directory.group("path"), line, [])
        elif entry and block is not None:
            dirname, size = entry.group("dirname"), entry.group("size")
            block.entries.append(
                DirEntry(
                    name=dirname if dirname is not None else entry.group("filename"),
                    size=None if size is None else int(size),
                    is_dir=dirname is not None,
                    date=entry.group("date"),
                    time=entry.group("time"),
                )
            )
        elif files_total and block is not None:
            folders.append(_tree_block(section, block, files_total, line))
            block = None
        elif _DIR_TOTAL_LISTED.match(text) and block is None and folders and listed_line is None:
            listed_line = line
        elif files_total and listed_line is not None and grand is None:
            grand = files_total
        elif _DIR_DIRS.match(text) and grand is not None and dirs is None:
            dirs = _DIR_DIRS.match(text)
        elif _DIR_GROUPED.match(text):
            raise _fail(section, "sizes carry digit grouping: run dir with /-c", line)
        elif directory and block is not None:
            raise _fail(section, "a folder's listing ends without its File(s) line", line)
        else:
            raise _fail(section, "not a line of a dir /s listing", line)
    if missing:
        if folders or block is not None:
            raise _fail(section, "a listing and 'File Not Found' together")
        return DirTree(False, volume_label=label, serial_number=serial)
    if block is not None:
        raise _fail(section, f"the listing of {block.directory} was cut short", block.line)
    if not folders or grand is None or dirs is None:
        raise _fail(
            section,
            f"no ' Directory of', 'Total Files Listed:' or Dir(s) line (exit code {exit_code})",
        )
    tree = DirTree(
        found=True,
        folders=tuple(folders),
        file_count=int(grand.group("count")),
        total_bytes=int(grand.group("bytes")),
        dir_count=int(dirs.group("count")),
        free_bytes=int(dirs.group("free")),
        volume_label=label,
        serial_number=serial,
    )
    summed = (
        sum(folder.file_count for folder in folders),
        sum(folder.total_bytes for folder in folders),
        sum(folder.dir_count for folder in folders),
    )
    if summed != (tree.file_count, tree.total_bytes, tree.dir_count):
        raise _fail(
            section,
            f"the totals ({tree.file_count} files, {tree.total_bytes} bytes, {tree.dir_count} "
            f"dirs) do not match the folders ({summed[0]} files, {summed[1]} bytes, "
            f"{summed[2]} dirs)",
            listed_line,
        )
    return tree


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
        raise _fail(section, "exit code 0 but no '<n> File(s) copied' line")
    return XcopyResult(copied, tuple(messages), exit_code)


__all__ += [
    "XCOPY_EXIT_MEANINGS",
    "DirTree",
    "XcopyResult",
    "parse_dir_tree",
    "parse_xcopy",
    "split_merged_dir_streams",
]


# ---------------------------------------------------------------------------------------------
# net stop (§3, E10)

_NET_DEPENDENTS = re.compile(
    r"^The following services are dependent on the (?P<name>.+) service\.\s*$"
)
_NET_ALSO_STOP = re.compile(r"^Stopping the .+ service will also stop these services\.\s*$")
_NET_LISTED = re.compile(r"^ {2,}(?P<name>\S.*?)\s*$")
_NET_CONFIRM = re.compile(
    r"^Do you want to continue this operation\? \(Y/N\) \[N\]:\s*(?P<answer>\S*)\s*$"
)
# net prints progress dots after "is stopping" while it waits (§3 "…").
_NET_STOPPING = re.compile(r"^The (?P<name>.+) service is stopping\.*\s*$")
_NET_STOPPED = re.compile(r"^\.*The (?P<name>.+) service was stopped successfully\.\s*$")
_NET_NOT_STOPPED = re.compile(r"^\.*The (?P<name>.+) service could not be stopped\.\s*$")
_NET_NOT_STARTED = re.compile(r"^The (?P<name>.+) service is not started\.\s*$")
_NET_HELPMSG = re.compile(r"^More help is available by typing NET HELPMSG (?P<number>[0-9]+)\.\s*$")
_NET_SYSTEM_ERROR = re.compile(r"^System error (?P<number>[0-9]+) has occurred\.\s*$")
_NET_SYNTAX = "The syntax of this command is:"
# NERR_ numbers of the fixed texts (LAN Manager apperr.h; `net helpmsg N` prints them).
_NET_FIXED = {
    "The service name is invalid.": 2185,
    "The service is starting or stopping.  Please try again later.": 3533,
}
NERR_SERVICE_NOT_STARTED = 3521
NERR_SERVICE_PENDING = 3533
NERR_BAD_SERVICE_NAME = 2185


@dataclass(frozen=True)
class NetStop:
    """What `net stop NAME /y` reported (§3, E10). Services are named by their display names,
    as net prints them.

    `dependents`: the services net listed as depending on NAME (it stops them first, `/y`
    confirming); `stopped` / `not_stopped`: each "was stopped successfully" / "could not be
    stopped", in order; `not_started`: "The ... service is not started." (NERR 3521, an answer:
    there was nothing to stop); `declined`: net asked "(Y/N)" and got no "y" (`/y` missing);
    `error`: the NET HELPMSG or "System error" number of a failure (5 = access denied, 2185 = no
    such service, 3533 = starting or stopping), None when net reported none; `message`: net's
    failure text, joined with spaces ("" when there is none).
    """

    dependents: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()
    not_stopped: tuple[str, ...] = ()
    not_started: bool = False
    declined: bool = False
    error: int | None = None
    message: str = ""


def parse_net_stop(stdout: str, stderr: str, exit_code: int, section: str = "net stop") -> NetStop:
    """Parse `net stop NAME /y` (§3, E10; both streams, merged or not). Lines this parser does not
    know are kept as failure text when net reported an error number, and raise ParseError
    otherwise. net's usage text raises CommandFailed; cmd's "is not recognized" ToolMissing."""
    _raise_if_missing(section, stderr, exit_code)
    dependents: list[str] = []
    stopped: list[str] = []
    not_stopped: list[str] = []
    failure: list[str] = []
    unknown: list[_Line] = []
    not_started = declined = listing = False
    error: int | None = None
    lines = _nonblank(stdout, "stdout") + _nonblank(stderr, "stderr")
    for line in lines:
        text = line.text.rstrip()
        if text.strip() == _NET_SYNTAX:
            raise _failed(section, exit_code, [line])
        if listing and (listed := _NET_LISTED.match(text)):
            dependents.append(listed.group("name"))
            continue
        if listing and _NET_ALSO_STOP.match(text):
            continue
        listing = False
        if match := _NET_DEPENDENTS.match(text):
            listing = True
        elif _NET_STOPPING.match(text):
            continue
        elif match := _NET_CONFIRM.match(text):
            declined = not match.group("answer").lower().startswith("y")
        elif match := _NET_STOPPED.match(text):
            stopped.append(match.group("name"))
        elif match := _NET_NOT_STOPPED.match(text):
            not_stopped.append(match.group("name"))
            failure.append(text.strip())
        elif match := _NET_NOT_STARTED.match(text):
            not_started = True
            failure.append(text.strip())
        elif match := _NET_HELPMSG.match(text):
            error = error if error is not None else int(match.group("number"))
        elif match := _NET_SYSTEM_ERROR.match(text):
            error = int(match.group("number"))
            failure.append(text.strip())
        elif text.strip() in _NET_FIXED:
            error = error if error is not None else _NET_FIXED[text.strip()]
            failure.append(text.strip())
        else:
            unknown.append(line)
            failure.append(text.strip())
    if unknown and error is None:
        raise _fail(section, "not a line net stop prints", unknown[0])
    if not lines and exit_code != 0:
        raise CommandFailed(section, "the command printed nothing", exit_code)
    return NetStop(
        dependents=tuple(dependents),
        stopped=tuple(stopped),
        not_stopped=tuple(not_stopped),
        not_started=not_started,
        declined=declined,
        error=error,
        message=" ".join(failure),
    )


__all__ += [
    "NERR_BAD_SERVICE_NAME",
    "NERR_SERVICE_NOT_STARTED",
    "NERR_SERVICE_PENDING",
    "NetStop",
    "parse_net_stop",
]


# ---------------------------------------------------------------------------------------------
# Reapplying a service pack (exchops.kms.exchange_service_pack): `sc config`, wmic's service
# StartMode, `tasklist /fo csv`, `type FILE`, and the Exchange setup log

_SC_CONFIG_SUCCESS = re.compile(r"^\[SC\] ChangeServiceConfig2? SUCCESS\s*$")


def parse_sc_config(
    stdout: str, stderr: str, exit_code: int, section: str = "sc config"
) -> ScFailure | None:
    """Parse `sc config NAME start= TYPE` (§2.3): None for "[SC] ChangeServiceConfig SUCCESS",
    the `ScFailure` of "[SC] OpenService FAILED 1060:" (or any other "[SC] ... FAILED n:") with
    its message. sc's usage text or any other line raises ParseError."""
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
            raise _fail(
                section, "expected '[SC] ChangeServiceConfig SUCCESS' or '[SC] ... FAILED n:'", line
            )
    if failure is not None:
        if succeeded:
            raise _fail(section, "both SUCCESS and FAILED")
        return ScFailure(failure[0], failure[1], " ".join(message))
    if not succeeded:
        raise _fail(section, f"no [SC] line (exit code {exit_code})")
    return None


# Win32_Service.StartMode (§4) as `sc qc` names the start type (START_TYPES).
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
    """Parse `wmic service get Name,StartMode /value < NUL` (§4): {service name: start type},
    the start type named as `sc qc` names it (auto, manual, disabled, boot, system; a delayed
    auto start is "Auto" to wmic). A StartMode outside these ("Unknown") raises ParseError."""
    lines = _wmic_lines(section, stdout, stderr, exit_code)
    if lines is None:
        return {}
    modes: dict[str, str] = {}
    for record in _wmic_records_by_properties(section, lines, ("Name", "StartMode")):
        name, mode = record["Name"], record["StartMode"]
        start_type = _WMIC_START_MODES.get(mode.value.strip().lower())
        if start_type is None:
            raise _fail(
                section, "StartMode is not Auto, Manual, Disabled, Boot or System", mode.line
            )
        if name.value.strip() in modes:
            raise _fail(section, "the same service is listed twice", name.line)
        modes[name.value.strip()] = start_type
    return modes


# tasklist.exe (Windows XP / Server 2003 and later): `/fo csv /nh` prints one quoted line per
# process: "Image Name","PID","Session Name","Session#","Mem Usage" (the memory with the locale's
# digit grouping and " K"). A filter that matches nothing prints an INFO line instead: "No tasks
# are running which match the specified criteria." (Vista and later), "No tasks running with the
# specified criteria." (XP / 2003).
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
        raise _failed(section, exit_code, errors)
    entries: list[TaskEntry] = []
    nothing = False
    for line in _nonblank(stdout, "stdout"):
        if _TASKLIST_NONE.match(line.text):
            nothing = True
            continue
        row = _TASKLIST_ROW.match(line.text)
        fields = tuple(row.group("fields").split('","')) if row else ()
        if fields == _TASKLIST_HEADER:
            continue
        if len(fields) != 5 or not _DECIMAL.match(fields[1]) or not _DECIMAL.match(fields[3]):
            raise _fail(section, 'expected "image","PID","session name","session#","memory"', line)
        entries.append(TaskEntry(fields[0], int(fields[1]), fields[2], int(fields[3]), fields[4]))
    if nothing and entries:
        raise _fail(section, "processes and 'No tasks are running' together")
    if not nothing and not entries and exit_code != 0:
        raise CommandFailed(section, "the command printed nothing", exit_code)
    return tuple(entries)


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
    if not lines:
        raise CommandFailed(section, "the command printed nothing", exit_code)
    errors = [line for line in lines if line.stream == "stderr"]
    raise _failed(section, exit_code, errors or lines)


# "Exchange Server Setup.log" (5.5: at the root of the Exchange drive, Q158545 / Q182518) and
# "Exchange Server Setup Progress.log" (2000 / 2003, Q178975). Every run of Setup or of an SP's
# update.exe is appended and opens with the "initialized" line (Q158545, Q290226); errors carry
# Setup's "ID no: 0xc0020002" (Q290226, Q182814, Q248487). No source shows the other lines of a
# 5.5 run: "Setup completed successfully." and "Setup failed." are the lab's wording, and the
# restart request is a guess; the versions, not the log, prove that a service pack is in place
# (service-packs.md).
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


__all__ += [
    "SETUP_LOG_INITIALIZED",
    "SetupRun",
    "TaskEntry",
    "parse_sc_config",
    "parse_setup_log",
    "parse_tasklist_csv",
    "parse_type",
    "parse_wmic_service_start_modes",
    "setup_log_appended",
]
