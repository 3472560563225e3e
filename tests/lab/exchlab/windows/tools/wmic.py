# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""wmic.exe: `ALIAS [where CLAUSE] get PROPS [/value | /format:csv | /format:list]`.

Aliases: datafile (CIM_DataFile: file versions, docs/windows-output.md section 4), ntevent
(Win32_NTLogEvent, section 5.3), service (Win32_Service), os (Win32_OperatingSystem); or
`path CLASS`. The where clause is WQL: = <> != < > <= >= LIKE, AND OR NOT, parentheses; strings
in ' or " with backslash escapes (so paths double their backslashes, `name="C:\\\\EXCHSRVR\\\\..."`;
a lone backslash before another character is an invalid query). String comparison ignores case.

Output rules: lines end "\\r\\r\\n" (section 0); `/value` prints each instance's properties in
alphabetical order as Name=Value, a NULL property (a file without a version resource) prints no
line at all (Selenium issue #11884, section 4); nothing found prints "No Instance(s) Available."
on stderr and exits 0. Event records come newest first [lab]. The error texts ("Node - X",
"ERROR:", "Description = Invalid query" ...), "Alias not found." with exit code 44210, and the
values of the classes' other properties (Manufacturer, EventType, StartMode "Auto" / "Manual" /
"Disabled" ...) have no source cited [lab].

`/node:NAME` on a jump host reads NAME through the remote-call layer (WMI over DCOM:
exchlab.windows.remote), as the jump host's wmic prints it; `/user:` and `/password:` are the
credentials DCOM then logs on with (else the delegated ones). A refusal is printed on stderr as
`Node - NAME`, `ERROR:`, `Description = <text>` (the shape of published captures): "The RPC
server is unavailable." for a name not found or a server without WMI (which text NT 4.0 without
WMI core gives is [lab]), "Access is denied." for DCOM's refusal (no credentials, or a wrong
password [lab]) and "Access denied" for the WMI namespace's (not an administrator); exit code
1 [lab]. Win32_OperatingSystem describes the computer read (its own era), not the one running
wmic; its CSDVersion and ServicePackMajorVersion come from the CSDVersion registry value
(KB Q222507); which classes WMI core 1.5 serves on NT 4.0 is [lab]: the same as Windows 2000's.

`process call create "COMMAND"` calls Win32_Process.Create
(https://learn.microsoft.com/en-us/windows/win32/cimwin32prov/create-method-in-class-win32-process):
"Executing (\\\\NAME\\ROOT\\CIMV2:Win32_Process)->Create()" (without the path for the local
computer), "Method execution successful.", then the out parameters ProcessId and ReturnValue (0
success, 9 "Path Not Found" without a ProcessId, the method's documented return values). The
process starts on the target and wmic does not wait for it; it is not interactive ("cannot be
used to start an interactive process remotely", same page), so an update.exe it starts on a
legacy server waits on the console forever (exchlab.console). [lab]: the out parameters' block
layout with CRLF line ends, and that the process runs before wmic's answer is printed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...console import WMIC, run_started
from ...reach import CURRENT_VERSION_KEY, service_pack_number
from ...state import (
    RUNNING,
    START_PENDING,
    STOP_PENDING,
    STOPPED,
    FileSystemError,
    HostState,
    normalize_path,
    parse_time,
)
from ..cmdline import split_program
from ..formats import (
    CRLF,
    WMIC_NO_INSTANCES,
    cim_datetime,
    era_of,
    wmic_csv,
    wmic_table,
    wmic_values,
)
from ..remote import WMI, Credentials, Refusal
from . import Invocation, Output, Tool

Instance = dict[str, Any]  # property name (canonical case) -> value (None = NULL)


class InvalidQuery(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Classes


def _datafiles(host: HostState) -> list[Instance]:
    instances = []
    for entry in sorted(host.fs.all_files(), key=lambda e: e.path.upper()):
        path = entry.path.lower()
        stem, dot, extension = entry.name.lower().rpartition(".")
        if not dot:
            stem, extension = entry.name.lower(), ""
        modified = cim_datetime(parse_time(entry.mtime))
        instances.append(
            {
                "Caption": path,
                "CreationDate": modified,
                "Drive": path[:2],
                "Extension": extension,
                "FileName": stem,
                "FileSize": entry.size,
                "FileType": "Application" if extension == "exe" else f"{extension} File",
                "LastModified": modified,
                "Manufacturer": "Microsoft Corporation" if entry.version else None,
                "Name": path,
                "Path": path[2:].rsplit("\\", 1)[0] + "\\",
                "Version": entry.version,
            }
        )
    return instances


_EVENT_TYPE_NUMBERS = {
    "Error": 1,
    "Warning": 2,
    "Information": 3,
    "Audit Success": 4,
    "Audit Failure": 5,
}
_SEVERITY = {"Error": 0xC0000000, "Warning": 0x80000000, "Information": 0x40000000}


def _events(host: HostState) -> list[Instance]:
    instances = []
    for log, events in host.event_logs.items():
        for event in reversed(events):
            moment = cim_datetime(parse_time(event.time))
            instances.append(
                {
                    "Category": event.category,
                    "CategoryString": None,
                    "ComputerName": event.computer,
                    "EventCode": event.event_id,
                    "EventIdentifier": event.event_id | _SEVERITY.get(event.type, 0),
                    "EventType": _EVENT_TYPE_NUMBERS.get(event.type, 3),
                    "Logfile": log,
                    "Message": event.message,
                    "RecordNumber": event.record,
                    "SourceName": event.source,
                    "TimeGenerated": moment,
                    "TimeWritten": moment,
                    "Type": event.type,
                    "User": None,
                }
            )
    return instances


_SERVICE_STATES = {
    RUNNING: "Running",
    STOPPED: "Stopped",
    START_PENDING: "Start Pending",
    STOP_PENDING: "Stop Pending",
}


def _services(host: HostState) -> list[Instance]:
    instances = []
    for name in sorted(host.services, key=str.upper):
        status = host.services[name]
        config = host.service_config(name)
        assert config is not None
        instances.append(
            {
                "DisplayName": config.display_name,
                "ExitCode": status.win32_exit_code,
                "Name": name,
                "PathName": config.image_path,
                "ProcessId": status.pid,
                "ServiceSpecificExitCode": status.service_exit_code,
                "Started": status.state == RUNNING,
                "StartMode": {2: "Auto", 3: "Manual", 4: "Disabled"}.get(config.start, "Unknown"),
                "StartName": config.account,
                "State": _SERVICE_STATES[status.state],
                "Status": "OK",
            }
        )
    return instances


def _operating_system(host: HostState, _invocation: Invocation) -> list[Instance]:
    era = era_of(host.os)
    service_pack = host.registry.data(CURRENT_VERSION_KEY, "CSDVersion")
    return [
        {
            "BuildNumber": era.windows_version.split(".")[2],
            "Caption": (
                "Microsoft " + era.product_name
                if not era.product_name.startswith("Microsoft")
                else era.product_name
            ),
            "CSDVersion": service_pack,
            "CSName": host.computer_name,
            "OSArchitecture": "64-bit" if era.x64 else "32-bit",
            "ServicePackMajorVersion": service_pack_number(host),
            "SystemDrive": host.system_drive,
            "Version": era.windows_version,
            "WindowsDirectory": era.system_root,
        }
    ]


_CLASSES: dict[str, Callable[[HostState, Invocation], list[Instance]]] = {
    "cim_datafile": lambda host, _: _datafiles(host),
    "win32_ntlogevent": lambda host, _: _events(host),
    "win32_service": lambda host, _: _services(host),
    "win32_operatingsystem": _operating_system,
}
_ALIASES = {
    "datafile": "cim_datafile",
    "ntevent": "win32_ntlogevent",
    "service": "win32_service",
    "os": "win32_operatingsystem",
}


# ---------------------------------------------------------------------------------------------
# WQL where clauses

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><>|!=|<=|>=|=|<|>)
      | (?P<paren>[()])
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokenize(clause: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    clause = clause.strip()
    while position < len(clause):
        match = _TOKEN.match(clause, position)
        if not match or match.end() == position:
            raise InvalidQuery(clause[position:])
        kind = match.lastgroup
        assert kind is not None
        tokens.append(_Token(kind, match.group(kind)))
        position = match.end()
        while position < len(clause) and clause[position].isspace():
            position += 1
    return tokens


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            if index + 1 >= len(body) or body[index + 1] not in "\\'\"":
                raise InvalidQuery(literal)
            out.append(body[index + 1])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


Predicate = Callable[[Instance], bool]


def _either(left: Predicate, right: Predicate) -> Predicate:
    return lambda item: left(item) or right(item)


def _both(left: Predicate, right: Predicate) -> Predicate:
    return lambda item: left(item) and right(item)


class _WhereParser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise InvalidQuery("unexpected end")
        self.index += 1
        return token

    def is_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.upper() == word

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            raise InvalidQuery(self.peek().text)  # type: ignore[union-attr]
        return predicate

    def disjunction(self) -> Predicate:
        left = self.conjunction()
        while self.is_word("OR"):
            self.take()
            right = self.conjunction()
            left = _either(left, right)
        return left

    def conjunction(self) -> Predicate:
        left = self.negation()
        while self.is_word("AND"):
            self.take()
            right = self.negation()
            left = _both(left, right)
        return left

    def negation(self) -> Predicate:
        if self.is_word("NOT"):
            self.take()
            inner = self.negation()
            return lambda item: not inner(item)
        token = self.peek()
        if token is not None and token.text == "(":
            self.take()
            inner = self.disjunction()
            if self.take().text != ")":
                raise InvalidQuery(")")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        name = self.take()
        if name.kind != "word":
            raise InvalidQuery(name.text)
        if self.is_word("LIKE"):
            self.take()
            literal = self.take()
            if literal.kind != "string":
                raise InvalidQuery(literal.text)
            pattern = _like(_unquote(literal.text))
            return lambda item: _string(_get(item, name.text)) is not None and bool(
                pattern.match(_string(_get(item, name.text)) or "")
            )
        operator = self.take()
        if operator.kind != "op":
            raise InvalidQuery(operator.text)
        literal = self.take()
        if literal.kind == "string":
            value: Any = _unquote(literal.text)
        elif literal.kind == "number":
            value = float(literal.text) if "." in literal.text else int(literal.text)
        elif literal.kind == "word" and literal.text.upper() in ("TRUE", "FALSE", "NULL"):
            value = {"TRUE": True, "FALSE": False, "NULL": None}[literal.text.upper()]
        else:
            raise InvalidQuery(literal.text)
        return lambda item: _compare(_get(item, name.text), operator.text, value)


def _get(item: Instance, name: str) -> Any:
    for key, value in item.items():
        if key.upper() == name.upper():
            return value
    raise InvalidQuery(name)


def _string(value: Any) -> str | None:
    return None if value is None else str(value)


def _like(pattern: str) -> re.Pattern[str]:
    regex = "".join(
        ".*" if char == "%" else "." if char == "_" else re.escape(char) for char in pattern
    )
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL)


def _compare(actual: Any, operator: str, expected: Any) -> bool:
    if actual is None or expected is None:
        return False
    if isinstance(actual, bool) or isinstance(expected, bool):
        left, right = bool(actual), bool(expected)
    elif isinstance(actual, int) and not isinstance(expected, str):
        left, right = actual, expected
    elif isinstance(actual, int):
        try:
            left, right = actual, int(expected)
        except ValueError:
            return False
    else:
        left, right = str(actual).upper(), str(expected).upper()
    return {
        "=": left == right,
        "<>": left != right,
        "!=": left != right,
        "<": left < right,
        ">": left > right,
        "<=": left <= right,
        ">=": left >= right,
    }[operator]


def parse_where(clause: str) -> Predicate:
    return _WhereParser(_tokenize(clause)).parse()


# ---------------------------------------------------------------------------------------------
# Command line


def _words(text: str) -> list[str]:
    """wmic reads its own command line: words split on spaces outside double quotes; a word
    that is entirely quoted loses its quotes, one with quotes inside keeps them (name="x")."""
    words: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
            current.append(char)
        elif char.isspace() and not quoted:
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    return [
        w[1:-1] if len(w) >= 2 and w[0] == w[-1] == '"' and w.count('"') == 2 else w for w in words
    ]


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def _node_error(node: str, description: str) -> str:
    return f"Node - {node}{CRLF}ERROR:{CRLF}Description = {description}{CRLF}{CRLF}"


def _refusal_text(refusal: Refusal) -> str:
    if refusal.code == 1722:
        return "The RPC server is unavailable."
    if refusal.code == 5 and not refusal.anonymous:
        return "Access denied"
    return "Access is denied."


def wmic(invocation: Invocation, output: Output) -> int:
    host = invocation.host
    words = _words(invocation.args)
    node: str | None = None
    user = password = None
    while words and words[0].startswith("/") and ":" in words[0]:
        switch, _colon, value = words.pop(0).partition(":")
        value = value.strip("'\"")
        if switch.lower() == "/node":
            node = value
        elif switch.lower() == "/user":
            user = value
        elif switch.lower() == "/password":
            password = value
    remote = invocation.remote
    if node is None or node.upper() in (host.computer_name, ".", "LOCALHOST"):
        if _is_create(words):
            return _create(invocation, output, words[3:], None)
        return _run(invocation, output, words, host.computer_name)
    if remote is None:
        output.err(_node_error(node.upper(), "The RPC server is unavailable."))
        return 1
    explicit = Credentials(user, password or "") if user is not None else None
    label = node.upper()
    if _is_create(words):

        def operation(target: HostState) -> int:
            return _create(invocation.on(target), output, words[3:], label)

    else:

        def operation(target: HostState) -> int:
            return _run(invocation.on(target), output, words, label)

    outcome = remote.call(node, WMI, operation, explicit=explicit)
    if isinstance(outcome, Refusal):
        output.err(_node_error(label, _refusal_text(outcome)))
        return 1
    return outcome


def _is_create(words: list[str]) -> bool:
    return [word.lower() for word in words[:3]] == ["process", "call", "create"]


# Win32_Process.Create's return values used here.
_CREATE_OK = 0
_CREATE_PATH_NOT_FOUND = 9


def _create(invocation: Invocation, output: Output, words: list[str], node: str | None) -> int:
    """`process call create "COMMAND"` on the invocation's host (`node`: the name given, None
    for the local computer)."""
    host = invocation.host
    command = " ".join(words).strip().strip('"')
    where = f"\\\\{node}\\ROOT\\CIMV2:Win32_Process" if node else "Win32_Process"
    output.out(f"Executing ({where})->Create(){CRLF}Method execution successful.{CRLF}")
    program = split_program(command)[0].strip('"')
    found = _program_path(host, program)
    parameters = [f"\tReturnValue = {_CREATE_PATH_NOT_FOUND};{CRLF}"]
    if found is not None:
        pid = host.allocate_pid()
        parameters = [f"\tProcessId = {pid};{CRLF}", f"\tReturnValue = {_CREATE_OK};{CRLF}"]
        run_started(host, command, WMIC)
    output.out(
        f"Out Parameters:{CRLF}instance of __PARAMETERS{CRLF}{{{CRLF}"
        + "".join(parameters)
        + f"}};{CRLF}{CRLF}"
    )
    return 0


def _program_path(host: HostState, program: str) -> str | None:
    """The file CreateProcess would start: the path given, else one in System32 [lab: the
    search path is reduced to System32, .exe added when no extension is given]."""
    era = era_of(host.os)
    candidates = [program]
    if "\\" not in program and ":" not in program:
        candidates.append(f"{era.system_root}\\system32\\{program}")
    for candidate in candidates:
        for name in (candidate, candidate + ".exe"):
            try:
                path = normalize_path(name)
            except FileSystemError:
                return None
            if host.fs.is_file(path):
                return path
    return None


def _run(invocation: Invocation, output: Output, words: list[str], node: str) -> int:
    """One wmic command (global switches taken off) against the invocation's host; `node` is
    the name its errors and CSV lines carry."""
    host = invocation.host
    if not words:
        output.err(f"wmic:root\\cli>{CRLF}")
        return 0
    if words[0].lower() == "path" and len(words) > 1:
        class_name = words[1].lower()
        words = words[2:]
    else:
        alias = words.pop(0).lower()
        if alias not in _ALIASES:
            output.err(f"{alias} - Alias not found.{CRLF}")
            return 44210
        class_name = _ALIASES[alias]
    if class_name not in _CLASSES:
        output.err(f"Node - {node}{CRLF}ERROR:{CRLF}Description = Invalid class {CRLF}{CRLF}")
        return 1
    where: str | None = None
    if words and words[0].lower().startswith("where"):
        first = words.pop(0)
        clause = first[5:]
        if not clause and words:
            clause = words.pop(0)
        clause = clause.strip()
        if clause.startswith("(") and clause.endswith(")"):
            clause = clause[1:-1]
        where = clause
    if not words or words[0].lower() not in ("get", "list"):
        output.err(
            f"Node - {node}{CRLF}ERROR:{CRLF}Description = Invalid GET Expression.{CRLF}{CRLF}"
        )
        return 1
    verb = words.pop(0).lower()
    properties_text = " ".join(word for word in words if not word.startswith("/"))
    switches = [word.lower() for word in words if word.startswith("/")]
    every = _CLASSES[class_name](host, invocation)
    known = every[:1]
    try:
        instances = every
        if where is not None:
            predicate = parse_where(where)
            instances = [item for item in every if predicate(item)]
    except InvalidQuery:
        output.err(f"Node - {node}{CRLF}ERROR:{CRLF}Description = Invalid query{CRLF}{CRLF}")
        return 1
    if verb == "list" or not properties_text.strip() or properties_text.strip() == "*":
        wanted = sorted((known[0] if known else {}).keys(), key=str.upper)
    else:
        wanted = [name.strip() for name in properties_text.split(",") if name.strip()]
    canonical: list[str] = []
    for name in wanted:
        match = next(
            (key for key in (known[0] if known else {}) if key.upper() == name.upper()), None
        )
        if match is None and known:
            output.err(f"Node - {node}{CRLF}ERROR:{CRLF}Description = Invalid query{CRLF}{CRLF}")
            return 1
        canonical.append(match or name)
    canonical = sorted(dict.fromkeys(canonical), key=str.upper)
    if not instances:
        output.err(WMIC_NO_INSTANCES)
        return 0
    rows = [[(name, item.get(name)) for name in canonical] for item in instances]
    if "/value" in switches or "/format:list" in switches:
        output.out(
            wmic_values(
                [
                    [(name, _value_text(value)) for name, value in row if value is not None]
                    for row in rows
                ]
            )
        )
    elif any(switch.startswith("/format:csv") or switch.endswith("\\csv") for switch in switches):
        output.out(
            wmic_csv(
                node, canonical, [[_value_text(value) for _name, value in row] for row in rows]
            )
        )
    else:
        output.out(
            wmic_table(canonical, [[_value_text(value) for _name, value in row] for row in rows])
        )
    return 0


TOOLS = (Tool(("wmic",), wmic, file_name="wmic.exe"),)
