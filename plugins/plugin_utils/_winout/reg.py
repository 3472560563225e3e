# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse `reg query` output (docs/windows-output.md#reg-query): `parse_reg_query(stdout, stderr,
exit_code, section, key)` -> `RegQuery`.

Reads the Vista+ layout (4-space separators, `(Default)`) and the XP/2003 reg.exe 3.0 layout
(`! REG.EXE VERSION 3.0` header, TAB separators, `<NO NAME>`); any `! REG.EXE VERSION n.n` header is
accepted (Windows 2000's reg.exe 2.0 output is undocumented, #reg-windows-2000). A missing key or
value is the answer `RegQuery.found` False, in Vista+'s words ("ERROR: ... value.") or reg.exe
3.0's ("Error:  ... value"), on either stream (#reg-errors). Any other error line or stderr text
raises `CommandFailed`; cmd's "is not recognized" `ToolMissing`; a line that is not reg's
`ParseError`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

from ._base import (
    _HEX_INT,
    _by_name,
    _command_failed,
    _Line,
    _lines,
    _nonblank,
    _parse_error,
    _raise_if_missing,
)

RegData = Union[str, int, bytes, tuple[str, ...]]

# reg's own error lines (docs/windows-output.md#reg-errors): Vista and later print "ERROR: <text>"
# on stderr; reg.exe 3.0 (XP / Server 2003) prints "Error:  <text>" (two spaces, and no period
# after "...key or value"). One rule for both eras: "error:" in any case, then spaces and the
# text; the missing key or value is that text, compared case-insensitively, its period optional.
# Through the probe's `2>&1` a reg.exe 3.0 line stays among the stdout lines, so both streams
# are read for it.
_REG_ERROR = re.compile(r"^error:[ \t]+(?P<text>\S.*?)[ \t]*$", re.IGNORECASE)
_REG_NOT_FOUND = re.compile(
    r"^the system was unable to find the specified registry key or value\.?$", re.IGNORECASE
)
_REG_HEADER = re.compile(r"^! REG\.EXE VERSION [0-9]+\.[0-9]+\s*$")
# A key line: the full root name (docs/windows-output.md#reg-vista), optionally behind \\HOST\ for a
# remote query.
_REG_KEY = re.compile(r"^(?:\\\\[^\\]+\\)?HKEY_[A-Z_]+(?:\\.*)?$")
# Vista+: 4 spaces, name, 4 spaces, type, 4 spaces, data. Data may be missing when a layer has
# trimmed the trailing spaces of an empty value (docs/windows-output.md#reg-parser-rules).
_REG_VALUE_SPACES = re.compile(
    r"^    (?P<name>.+?)    (?P<type>REG_[A-Z_]+)(?:    (?P<data>.*)|[ \t]*)$"
)
# XP/2003 reg.exe 3.0: 4 spaces, name, TAB, type, TAB, data (docs/windows-output.md#reg-xp).
_REG_VALUE_TABS = re.compile(r"^    (?P<name>[^\t]+)\t(?P<type>REG_[A-Z_]+)(?:\t(?P<data>.*))?$")
_DEFAULT_NAMES = ("(default)", "<no name>")
# Printed as the data of a default value that does not exist (docs/windows-output.md#reg-vista): not
# a value.
_VALUE_NOT_SET = "(value not set)"
_HEX_BYTES = re.compile(r"^(?:[0-9A-Fa-f]{2})*$")
_REG_ROOTS = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKU": "HKEY_USERS",
    "HKCC": "HKEY_CURRENT_CONFIG",
}
_REG_STRINGS = ("REG_SZ", "REG_EXPAND_SZ")
# `0x%x` (docs/windows-output.md#reg-vista, Wine's reg_data_to_wchar). REG_QWORD: the same form,
# 64 bits [I].
_REG_INTS = {
    "REG_DWORD": 0xFFFFFFFF,
    "REG_DWORD_BIG_ENDIAN": 0xFFFFFFFF,
    "REG_QWORD": 0xFFFFFFFFFFFFFFFF,
}
# Contiguous `%02X` pairs (docs/windows-output.md#reg-vista, Wine's reg_data_to_wchar). No source
# shows how reg prints REG_LINK or the REG_RESOURCE_* types, so they are refused as unknown rather
# than guessed.
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
        return _by_name(self.values, name)


@dataclass(frozen=True)
class RegQuery:
    """The answer of one `reg query`. `found` is False when reg said the key or value does not
    exist (docs/windows-output.md#reg-errors); `keys` are the key lines in output order (with `/s`,
    every key below)."""

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
            raise _parse_error(
                section, f"{reg_type} data is not 0x and a hexadecimal number in range", line
            )
        return int(match.group(1), 16)
    if reg_type == "REG_MULTI_SZ":
        # Items are joined by the two characters \0 (docs/windows-output.md#reg-vista); an empty
        # item cannot occur inside a REG_MULTI_SZ (it would end the list), so empty trailing pieces
        # are dropped.
        items = text.split("\\0") if text else []
        while items and items[-1] == "":
            items.pop()
        return tuple(items)
    if reg_type in _REG_HEX:
        digits = text.strip()
        if not _HEX_BYTES.match(digits):
            raise _parse_error(section, f"{reg_type} data is not pairs of hexadecimal digits", line)
        return bytes.fromhex(digits)
    raise _parse_error(section, f"unknown registry type {reg_type}", line)


def _reg_value(section: str, line: _Line, tabs_first: bool) -> RegValue | None:
    layouts = (_REG_VALUE_TABS, _REG_VALUE_SPACES)
    if not tabs_first:
        layouts = (_REG_VALUE_SPACES, _REG_VALUE_TABS)
    match = layouts[0].match(line.text) or layouts[1].match(line.text)
    if match is None:
        raise _parse_error(section, "expected NAME, a REG_ type and data", line)
    name, reg_type, text = match.group("name"), match.group("type"), match.group("data") or ""
    if name.casefold() in _DEFAULT_NAMES:
        if text == _VALUE_NOT_SET:
            return None
        name = ""
    return RegValue(name, reg_type, _reg_data(section, line, reg_type, text))


def _is_reg_error(text: str) -> bool:
    """`text` is one of reg's own "ERROR: ..." / "Error:  ..." lines (either era)."""
    return _REG_ERROR.match(text) is not None


def _is_not_found(text: str) -> bool:
    """`text` is reg's missing key or value line, in Vista+'s or reg.exe 3.0's words."""
    match = _REG_ERROR.match(text)
    return match is not None and _REG_NOT_FOUND.match(match.group("text")) is not None


def _reg_errors(section: str, stdout: str, stderr: str, exit_code: int) -> bool:
    """Whether reg said the key or value is missing. Every stderr line and every error line of
    stdout must be that answer; any other raises CommandFailed with reg's text (cmd's "is not
    recognized" ToolMissing)."""
    _raise_if_missing(section, stderr, exit_code)
    said = _nonblank(stderr, "stderr")
    said += [line for line in _lines(stdout) if _is_reg_error(line.text)]
    other = [line for line in said if not _is_not_found(line.text)]
    if other:
        raise _command_failed(section, exit_code, other)
    return bool(said)


def _reg_keys(section: str, stdout: str) -> tuple[RegKey, ...]:
    tabs_first = False
    keys: list[tuple[str, list[RegValue]]] = []
    seen: set[str] = set()
    for line in _lines(stdout):
        text = line.text
        if not text.strip() or _is_reg_error(text):
            # reg's error lines were read by _reg_errors.
            continue
        if _REG_MATCHES.match(text):
            continue
        if text.startswith("! REG.EXE VERSION"):
            if not _REG_HEADER.match(text):
                raise _parse_error(section, "expected '! REG.EXE VERSION n.n'", line)
            tabs_first = True
        elif _REG_KEY.match(text):
            normal = _normal_key(text)
            if normal in seen:
                raise _parse_error(section, "the same key is printed twice", line)
            seen.add(normal)
            keys.append((text.rstrip(), []))
        elif text[0] in " \t":
            if not keys:
                raise _parse_error(section, "a value line before any key line", line)
            value = _reg_value(section, line, tabs_first)
            if value is None:
                continue
            values = keys[-1][1]
            if any(other.name.casefold() == value.name.casefold() for other in values):
                raise _parse_error(section, "the same value is printed twice under one key", line)
            values.append(value)
        else:
            raise _parse_error(
                section, "expected a key line (HKEY_...), a value line or an empty line", line
            )
    return tuple(RegKey(path, tuple(values)) for path, values in keys)


def parse_reg_query(
    stdout: str, stderr: str, exit_code: int, section: str = "reg", key: str | None = None
) -> RegQuery:
    """Parse `reg query KEY [/v NAME | /ve] [/s]` output of any era
    (docs/windows-output.md#reg-query, #e1 to #e4, #e16).

    A missing key or value is the answer `found=False`, with whatever keys stdout printed before
    it: Vista+'s "ERROR: The system was unable to find the specified registry key or value." or
    reg.exe 3.0's "Error:  The system was unable to find the specified registry key or value", on
    either stream (#reg-errors). Any other error line or stderr text ("ERROR: Access is denied.",
    "ERROR: Invalid syntax.") raises `CommandFailed`. The exit code is not trusted (XP exits 1 for
    some successful queries, #reg-xp), except when nothing at all was printed.

    Without /s, reg prints no key line for a key that has no values, only its subkeys' paths, and
    nothing but the leading empty line for a key with neither (#reg-vista, Wine's query_all). Pass
    the queried `key` so that the answer still lists it (first, with no values).
    """
    not_found = _reg_errors(section, stdout, stderr, exit_code)
    keys = _reg_keys(section, stdout)
    if not_found:
        return RegQuery(found=False, keys=keys)
    if not keys and (exit_code != 0 or not stdout):
        # reg prints at least the leading empty line when it succeeds.
        raise _parse_error(section, f"no key line in the output (exit code {exit_code})")
    query = RegQuery(found=True, keys=keys)
    if key is not None and query.key(key) is None:
        query = RegQuery(found=True, keys=(RegKey(key),) + keys)
    return query
