# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""reg.exe query / add / delete, in the format of the host's Windows era (docs/windows-output.md
section 1).

`reg query KEY [/v NAME | /ve] [/s]`: Vista+ prints an empty line, the key in its full root
spelling, `    name    TYPE    data` lines, one empty line after a key's values (none for a key
without values), then the subkeys' paths (E1, E2). reg.exe 3.0 (XP/2003) starts with
`! REG.EXE VERSION 3.0` and separates name, type and data with TABs (E3). A missing key or value
prints reg's error line on stderr and exits 1: "ERROR: ... value." on Vista+ (E4), "Error:  ...
value" from reg.exe 3.0 (E16). reg.exe 3.0's other messages (invalid syntax, a network path not
found) have no source: the lab prints Vista+'s words for them on every era [lab]. Keys and value
names are case-insensitive. `\\\\HOST\\HKLM\\...` is accepted for the host itself; on a jump host
another HOST is read through the remote-call layer (MS-RRP's winreg pipe over SMB:
exchlab.windows.remote): its key lines carry no `\\\\HOST\\` prefix, as published captures of
remote queries show and as scripts that cut `HKEY_LOCAL_MACHINE\\...` at fixed offsets rely on,
and a refusal prints `ERROR: <the system message>` on stderr with exit code 1 (53 "The network
path was not found." and 5 "Access is denied." are quoted from scripts; the empty line after
every remote error is [lab]).

`reg add` / `reg delete` ("The operation completed successfully.", the overwrite and delete
prompts, "The operation was canceled by the user.") have no source cited [lab]; the collection
only runs `reg query`.
"""

from __future__ import annotations

from ...state import HostState, RegData, Registry, RegKey, RegValue, StateError, canonical_key
from ..formats import (
    CRLF,
    SYSTEM_MESSAGES,
    Era,
    reg_data_text,
    reg_default_name,
    reg_header,
    reg_not_found,
    reg_value_line,
)
from ..remote import WINREG, Refusal, path_error_code
from . import Invocation, Output, Tool

_SUCCESS = f"The operation completed successfully.{CRLF}"


def _usage_error(output: Output, operation: str, what: str = "Invalid syntax.") -> int:
    output.err(f'ERROR: {what}{CRLF}Type "REG {operation} /?" for usage.{CRLF}')
    return 1


def _resolve_key(host: HostState, text: str, output: Output, operation: str) -> str | None:
    """The canonical key path, or None after printing the error reg.exe prints."""
    if text.startswith("\\\\"):
        machine, _separator, rest = text[2:].partition("\\")
        if machine.upper() not in (host.computer_name, ".", "LOCALHOST"):
            output.err(f"ERROR: The network path was not found.{CRLF}{CRLF}")
            return None
        text = rest
    try:
        return canonical_key(text)
    except StateError:
        _usage_error(output, operation, "Invalid key name.")
        return None


def _key_and_switches(
    host: HostState,
    output: Output,
    argv: list[str],
    operation: str,
    with_parameter: tuple[str, ...],
    flags: tuple[str, ...],
) -> tuple[str, list[tuple[str, str]]] | None:
    """The canonical key of `reg OPERATION KEY [switches]` and its switches in the order typed,
    lower-case: (`/v`, NAME) for those in with_parameter, (flag, "") for the others; None after
    printing the error reg.exe prints for a missing or bad key or an unknown switch."""
    if not argv:
        _usage_error(output, operation)
        return None
    key_path = _resolve_key(host, argv[0], output, operation)
    if key_path is None:
        return None
    switches: list[tuple[str, str]] = []
    index = 1
    while index < len(argv):
        switch = argv[index].lower()
        if switch in with_parameter and index + 1 < len(argv):
            switches.append((switch, argv[index + 1]))
            index += 2
        elif switch in flags:
            switches.append((switch, ""))
            index += 1
        else:
            _usage_error(output, operation)
            return None
    return key_path, switches


def _value_line(era: Era, value: RegValue) -> str:
    name = value.name or reg_default_name(era)
    return reg_value_line(era, name, value.type, reg_data_text(era, value.type, value.data))


def _default_line(era: Era, key: RegKey) -> str:
    value = key.values.get("")
    if value is not None:
        return _value_line(era, value)
    # A default value that was never set shows "(value not set)" (Wine strings).
    return reg_value_line(era, reg_default_name(era), "REG_SZ", "(value not set)")


def query(invocation: Invocation, output: Output, argv: list[str]) -> int:
    host, era = invocation.host, invocation.era
    ignored = ("/reg:32", "/reg:64", "/z", "/se", "/c", "/e", "/k", "/d")
    parsed = _key_and_switches(host, output, argv, "QUERY", ("/v",), ("/ve", "/s", *ignored))
    if parsed is None:
        return 1
    key_path, switches = parsed
    value_name: str | None = None
    default_value = recurse = False
    for switch, parameter in switches:
        if switch == "/v":
            value_name = parameter
        elif switch == "/ve":
            default_value = True
        elif switch == "/s":
            recurse = True
    if value_name is not None and default_value:
        return _usage_error(output, "QUERY")
    registry = host.registry
    key = registry.key(key_path)
    if key is None:
        output.err(reg_not_found(era))
        return 1
    header = reg_header(era)
    if value_name is not None or default_value:
        wanted = "" if default_value else value_name
        assert wanted is not None
        keys = _tree(registry, key) if recurse else [key]
        blocks = []
        for each in keys:
            found = each.values.get(wanted.upper())
            if default_value and not recurse:
                line = _default_line(era, each)
            elif found is not None:
                line = _value_line(era, found)
            else:
                continue
            blocks.append(f"{each.path}{CRLF}{line}{CRLF}")
        if not blocks:
            # Wine prints the leading empty line first; whether reg.exe 3.0 prints anything
            # (its header?) before the error is unknown: the lab prints nothing [lab].
            if era.vista_or_later:
                output.out(CRLF)
            output.err(reg_not_found(era))
            return 1
        text = header + "".join(blocks)
        if recurse:
            text += f"End of search: {len(blocks)} match(es) found.{CRLF}"
        output.out(text)
        return 0
    if recurse:
        parts = [header]
        for each in _tree(registry, key):
            values = "".join(_value_line(era, value) for value in each.values.values())
            parts.append(f"{each.path}{CRLF}{values}{CRLF}")
        output.out("".join(parts))
        return 0
    values = "".join(_value_line(era, value) for value in key.values.values())
    subkeys = "".join(f"{sub.path}{CRLF}" for sub in registry.subkeys(key.path))
    output.out(header + f"{key.path}{CRLF}" + values + (CRLF if values else "") + subkeys)
    return 0


def _tree(registry: Registry, key: RegKey) -> list[RegKey]:
    """A key and all its subkeys, depth-first in enumeration order."""
    found = [key]
    for sub in registry.subkeys(key.path):
        found.extend(_tree(registry, sub))
    return found


def _parse_data(kind: str, text: str) -> RegData:
    if kind in ("REG_DWORD", "REG_QWORD", "REG_DWORD_BIG_ENDIAN"):
        return int(text, 16) if text.lower().startswith("0x") else int(text or "0")
    if kind == "REG_MULTI_SZ":
        return tuple(part for part in text.split("\\0") if part)
    if kind in ("REG_BINARY", "REG_NONE"):
        return bytes.fromhex(text)
    return text


def add(invocation: Invocation, output: Output, argv: list[str]) -> int:
    host = invocation.host
    parsed = _key_and_switches(
        host, output, argv, "ADD", ("/v", "/t", "/d", "/s"), ("/ve", "/f", "/reg:32", "/reg:64")
    )
    if parsed is None:
        return 1
    key_path, switches = parsed
    name: str | None = None
    kind, data, force = "REG_SZ", "", False
    for switch, parameter in switches:
        if switch == "/v":
            name = parameter
        elif switch == "/t":
            kind = parameter.upper()
        elif switch == "/d":
            data = parameter
        elif switch == "/ve":
            name = ""
        elif switch == "/f":
            force = True
    try:
        parsed = _parse_data(kind, data)
        RegValue(name or "", kind, parsed)
    except (ValueError, StateError):
        return _usage_error(
            output, "ADD", "Invalid syntax." if kind.startswith("REG_") else "Invalid type."
        )
    registry = host.registry
    if name is None:
        registry.ensure_key(key_path)
        output.out(_SUCCESS)
        return 0
    if registry.value(key_path, name) is not None and not force:
        output.out(f"Value {name or '(Default)'} exists, overwrite(Yes/No)? ")
        if invocation.stdin.strip()[:1].lower() != "y":
            output.out(f"The operation was canceled by the user.{CRLF}")
            return 0
    registry.set_value(key_path, name, kind, parsed)
    output.out(_SUCCESS)
    return 0


def delete(invocation: Invocation, output: Output, argv: list[str]) -> int:
    host, era = invocation.host, invocation.era
    parsed = _key_and_switches(host, output, argv, "DELETE", ("/v",), ("/ve", "/f"))
    if parsed is None:
        return 1
    key_path, switches = parsed
    name: str | None = None
    force = False
    for switch, parameter in switches:
        if switch == "/v":
            name = parameter
        elif switch == "/ve":
            name = ""
        elif switch == "/f":
            force = True
    registry = host.registry
    key = registry.key(key_path)
    if key is None or (name is not None and registry.value(key_path, name) is None):
        output.err(reg_not_found(era))
        return 1
    if not force:
        question = (
            f"Delete the registry value {name or '(Default)'} (Yes/No)? "
            if name is not None
            else f"Permanently delete the registry key {key.path} (Yes/No)? "
        )
        output.out(question)
        if invocation.stdin.strip()[:1].lower() != "y":
            return 0
    if name is not None:
        registry.delete_value(key_path, name)
    else:
        registry.delete_key(key_path)
    output.out(_SUCCESS)
    return 0


def reg(invocation: Invocation, output: Output) -> int:
    argv = invocation.argv
    operations = {"query": query, "add": add, "delete": delete}
    if not argv or argv[0].lower() not in operations:
        output.err(f'ERROR: Invalid syntax.{CRLF}Type "REG /?" for usage.{CRLF}')
        return 1
    operation, rest = operations[argv[0].lower()], argv[1:]
    remote = invocation.remote
    if remote is not None and rest and rest[0].startswith("\\\\"):
        machine, _separator, key = rest[0][2:].partition("\\")
        if not remote.is_self(machine):
            outcome = remote.call(
                machine,
                WINREG,
                lambda target: operation(invocation.on(target), output, [key, *rest[1:]]),
            )
            if isinstance(outcome, Refusal):
                output.err(f"ERROR: {SYSTEM_MESSAGES[path_error_code(outcome)]}{CRLF}{CRLF}")
                return 1
            return outcome
    return operation(invocation, output, rest)


TOOLS = (Tool(("reg",), reg, file_name="reg.exe"),)
