# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""powershell.exe on a jump host: only the statements the collection runs there [lab: a subset].

`powershell [-NoProfile] [-NonInteractive] [-NoLogo] [-ExecutionPolicy X] [-InputFormat X]
-Command SCRIPT`; `-Command -` reads the script from standard input (WinRS Send), a statement a
line. Two jobs need it, both to keep a secret off every command line (a process-creation audit,
event 4688, records command lines, https://learn.microsoft.com/windows/client-management/mdm/
policy-csp-admx-auditsettings) or to read what no cmd tool reads without WMI:

- Start a service on another computer with start parameters read from standard input: .NET's
  `ServiceController(name, machineName)` and `Start(String[])` "passing the specified arguments"
  (https://learn.microsoft.com/en-us/dotnet/api/system.serviceprocess.servicecontroller.start),
  the way MSExchangeKMS gets its startup password (KB Q184420):
      $p = [Console]::In.ReadLine()
      $s = New-Object System.ServiceProcess.ServiceController('MSExchangeKMS','KMSNEW')
      $s.Start(@($p)); $s.WaitForStatus('Running', [TimeSpan]::FromSeconds(60)); $s.Status
- A file's version resource through an admin share, where wmic cannot reach (NT 4.0 without WMI
  core):
      (Get-Item -LiteralPath '\\\\KMSNEW\\C$\\EXCHSRVR\\BIN\\STORE.EXE').VersionInfo.FileVersion

Statements (separated by `;` or line ends): `$name = EXPR`, `[void]EXPR`, `$null = EXPR`,
`EXPR` (its value printed, one line), `exit N`. Expressions: quoted strings ('' doubles a quote;
"..." without `$` only), numbers, `$name`, `[Console]::In.ReadLine()`, the two forms above,
`$s.Status`, `$s.Start([@(]ARGS[)])`, `$s.Stop()`, `$s.Refresh()`,
`$s.WaitForStatus('Running'|'Stopped'[, [TimeSpan]::FromSeconds(N) | 'hh:mm:ss'])`, and as no-ops
`Add-Type -AssemblyName System.ServiceProcess` and
`[Reflection.Assembly]::LoadWithPartialName('System.ServiceProcess')` (PowerShell 2.0 needs it).
Anything else prints "exchlab: powershell statement not emulated: ..." and fails.

The service calls take the remote-call layer (svcctl over SMB), so they need what `sc \\\\NAME`
needs. Failures are .NET's exceptions as PowerShell shows them, on stderr: "Exception calling
"Start" with "1" argument(s): "Cannot open Service Control Manager on computer 'KMSNEW'. This
operation might require other privileges."" (the message quoted from published transcripts),
then CategoryInfo and FullyQualifiedErrorId lines; the "At line:" lines are left out, and the
other messages ("Cannot open X service on computer 'M'.", "Cannot start service X on computer
'M'.", the wait's time-out) are [I]. WaitForStatus does not wait: the lab's services settle
between calls [lab]. The exit code is 1 when the last statement failed, else 0 (or `exit N`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...exchange import start_service, stop_service
from ...state import RUNNING, START_PENDING, STOP_PENDING, STOPPED, HostState
from ..cmdline import split_arguments
from ..formats import CRLF, SYSTEM_MESSAGES
from ..remote import SHARE, SVCCTL, Refusal, path_error_code, share_path, split_unc
from . import Invocation, Output, Tool

_SWITCHES = ("-noprofile", "-noninteractive", "-nologo")
_WITH_VALUE = ("-executionpolicy", "-inputformat", "-outputformat", "-windowstyle")
_STATUS_NAMES = {
    RUNNING: "Running",
    STOPPED: "Stopped",
    START_PENDING: "StartPending",
    STOP_PENDING: "StopPending",
}
_READ_LINE = re.compile(r"^\[(?:System\.)?Console\]::In\.ReadLine\(\)$", re.IGNORECASE)
_LOAD_ASSEMBLY = re.compile(
    r"^(?:\[(?:System\.)?Reflection\.Assembly\]::LoadWithPartialName\(.*\)"
    r"|Add-Type\s+-AssemblyName\s+\S+)$",
    re.IGNORECASE,
)
_NEW_CONTROLLER = re.compile(
    r"^New-Object\s+(?:-TypeName\s+)?(?:System\.)?ServiceProcess\.ServiceController"
    r"\s*(?:\((?P<paren>.*)\)|-ArgumentList\s+(?P<list>.+))$",
    re.IGNORECASE,
)
_FILE_VERSION = re.compile(
    r"^\(Get-Item\s+-(?:Literal)?Path\s+(?P<path>'[^']*'|\"[^\"$]*\")\)"
    r"\.VersionInfo\.FileVersion$",
    re.IGNORECASE,
)
_MEMBER = re.compile(r"^\$(?P<var>\w+)\.(?P<member>\w+)(?:\((?P<args>.*)\))?$", re.DOTALL)
_ASSIGN = re.compile(r"^\$(?P<var>\w+)\s*=\s*(?P<expr>.+)$", re.DOTALL)
_TIMESPAN = re.compile(r"^\[TimeSpan\]::FromSeconds\(\s*\d+\s*\)$", re.IGNORECASE)


class _Failed(Exception):
    """A statement's error record, as PowerShell prints it (the lines after the message)."""

    def __init__(self, message: str, category: str, error_id: str) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.error_id = error_id


class _NotEmulated(Exception):
    pass


@dataclass(frozen=True)
class _ServiceController:
    name: str
    machine: str


class _Script:
    """One powershell.exe run: its variables and its standard input."""

    def __init__(self, invocation: Invocation, output: Output, stdin_lines: list[str] | None):
        self.invocation = invocation
        self.output = output
        self.variables: dict[str, Any] = {}
        # With `-Command -` the script came from stdin: ReadLine takes the lines after it.
        self.stdin_lines = stdin_lines

    def read_line(self) -> str:
        if self.stdin_lines is not None:
            return self.stdin_lines.pop(0) if self.stdin_lines else ""
        return self.invocation.read_line()

    # -- statements ---------------------------------------------------------------------

    def run(self, statement: str) -> int | None:
        """Run one statement; an exit code when it is `exit`."""
        text = statement.strip()
        exit_match = re.fullmatch(r"exit(?:\s+(-?\d+))?", text, re.IGNORECASE)
        if exit_match:
            return int(exit_match.group(1) or 0)
        if text.lower().startswith("[void]"):
            self.evaluate(text[6:].strip())
            return None
        assignment = _ASSIGN.match(text)
        if assignment and not text.startswith("$null"):
            self.variables[assignment.group("var").lower()] = self.evaluate(
                assignment.group("expr").strip()
            )
            return None
        if assignment:
            self.evaluate(assignment.group("expr").strip())
            return None
        value = self.evaluate(text)
        if value is not None and not isinstance(value, _ServiceController):
            self.output.out(f"{value}{CRLF}")
        return None

    # -- expressions --------------------------------------------------------------------

    def evaluate(self, text: str) -> Any:
        text = text.strip()
        if _READ_LINE.match(text):
            return self.read_line()
        if _LOAD_ASSEMBLY.match(text):
            return None
        literal = _literal(text)
        if literal is not _NOTHING:
            return literal
        if re.fullmatch(r"\$\w+", text):
            return self.variables.get(text[1:].lower())
        created = _NEW_CONTROLLER.match(text)
        if created:
            arguments = self.arguments(created.group("paren") or created.group("list") or "")
            if len(arguments) != 2:
                raise _NotEmulated(text)
            return _ServiceController(str(arguments[0]), str(arguments[1]))
        version = _FILE_VERSION.match(text)
        if version:
            return self.file_version(_literal(version.group("path")))
        member = _MEMBER.match(text)
        if member:
            target = self.variables.get(member.group("var").lower())
            if isinstance(target, _ServiceController):
                return self.service_member(target, member.group("member"), member.group("args"))
        raise _NotEmulated(text)

    def arguments(self, text: str) -> list[Any]:
        """`'a','b'`, `@($p)`, `@('x', $y)`: the values of a comma-separated list."""
        inner = text.strip()
        if inner.startswith("@(") and inner.endswith(")"):
            inner = inner[2:-1]
        if not inner.strip():
            return []
        return [self.evaluate(part) for part in _split(inner, ",")]

    # -- the jobs -----------------------------------------------------------------------

    def on_machine(
        self, machine: str, channel: str, work: Callable[[HostState], Any], **options: Any
    ) -> Any:
        """Run `work` on MACHINE's state: the host itself, or through the remote-call layer."""
        remote = self.invocation.remote
        host = self.invocation.host
        if machine.upper() in (".", "LOCALHOST", host.computer_name):
            host.begin_command()
            return work(host)
        if remote is None:
            return Refusal(1722)
        return remote.call(machine, channel, work, **options)

    def service_member(self, controller: _ServiceController, member: str, args: str | None) -> Any:
        name, machine = controller.name, controller.machine
        arguments = self.arguments(args) if args is not None else []
        method = member.lower()
        if method == "status" and args is None:
            outcome = self.on_machine(machine, SVCCTL, lambda host: _status(host, name, machine))
            return _raise_refusal(outcome, f'Exception getting "{member}"', machine)
        if method in ("start", "stop", "refresh", "waitforstatus") and args is not None:
            call = f'Exception calling "{member}" with "{len(arguments)}" argument(s)'

            def work(host: HostState) -> Any:
                return _control(host, method, name, machine, arguments, call)

            return _raise_refusal(self.on_machine(machine, SVCCTL, work), call, machine)
        raise _NotEmulated(f"${member}")

    def file_version(self, path: str) -> Any:
        unc = split_unc(path)
        if unc is None:
            return _version_here(self.invocation.host, path, path)
        server, share, inner = unc

        def work(host: HostState) -> Any:
            return _version_here(host, share_path(host, share, inner) or "", path)

        outcome = self.on_machine(server, SHARE, work, share=share)
        if isinstance(outcome, Refusal):
            message = SYSTEM_MESSAGES[path_error_code(outcome)]
            raise _Failed(
                f"Get-Item : {message}",
                f"ReadError: ({path}:String) [Get-Item], IOException",
                "ItemExistsIOError,Microsoft.PowerShell.Commands.GetItemCommand",
            )
        return outcome


def _status(host: HostState, name: str, machine: str) -> str:
    canonical = host.service_name(name)
    if canonical is None:
        raise _Failed(
            f'Exception getting "Status": "Service {name} was not found on computer '
            f"'{machine}'.\"",
            "NotSpecified: (:) [], GetValueInvocationException",
            "ExceptionWhenGetting",
        )
    return _STATUS_NAMES[host.services[canonical].state]


def _control(
    host: HostState, method: str, name: str, machine: str, arguments: list[Any], call: str
) -> None:
    canonical = host.service_name(name)
    if canonical is None:
        _method_failed(call, f"Cannot open {name} service on computer '{machine}'.")
    assert canonical is not None
    if method == "start":
        result = start_service(host, canonical, [str(argument) for argument in arguments])
        if result.error:
            _method_failed(call, f"Cannot start service {name} on computer '{machine}'.")
    elif method == "stop":
        result = stop_service(host, canonical)
        if result.error:
            _method_failed(call, f"Cannot stop {name} service on computer '{machine}'.")
    elif method == "waitforstatus":
        wanted = str(arguments[0]).lower() if arguments else ""
        host.settle(canonical)
        if _STATUS_NAMES[host.services[canonical].state].lower() != wanted:
            _method_failed(call, "Time out has expired and the operation has not been completed.")
    return None


def _method_failed(call: str, message: str) -> None:
    raise _Failed(
        f'{call}: "{message}"',
        "NotSpecified: (:) [], MethodInvocationException",
        "InvalidOperationException",
    )


def _raise_refusal(outcome: Any, call: str, machine: str) -> Any:
    if isinstance(outcome, Refusal):
        _method_failed(
            call,
            f"Cannot open Service Control Manager on computer '{machine}'. This operation "
            "might require other privileges.",
        )
    return outcome


def _version_here(host: HostState, local: str, shown: str) -> str | None:
    entry = host.fs.file_entry(local) if local else None
    if entry is None:
        raise _Failed(
            f"Get-Item : Cannot find path '{shown}' because it does not exist.",
            f"ObjectNotFound: ({shown}:String) [Get-Item], ItemNotFoundException",
            "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand",
        )
    return entry.version


_NOTHING = object()


def _literal(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"' and "$" not in text:
        return text[1:-1]
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if _TIMESPAN.match(text):
        return text
    return _NOTHING


def _split(text: str, separators: str) -> list[str]:
    """Split at separators outside quotes and brackets."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    depth = 0
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char in separators and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def powershell(invocation: Invocation, output: Output) -> int:
    argv = split_arguments(invocation.args)
    index = 0
    script: str | None = None
    while index < len(argv):
        word = argv[index].lower()
        if word in _SWITCHES:
            index += 1
        elif word in _WITH_VALUE and index + 1 < len(argv):
            index += 2
        elif word in ("-command", "-c") and index + 1 < len(argv):
            script = " ".join(argv[index + 1 :])
            break
        else:
            break
    if script is None:
        output.err(f"exchlab: powershell {invocation.args.strip()} is not emulated{CRLF}")
        return 1
    stdin_lines = None
    if script.strip() == "-":
        stdin_lines = invocation.read_all().replace("\r", "").split("\n")
        script_lines = stdin_lines
    else:
        script_lines = [script]
    runner = _Script(invocation, output, stdin_lines)
    failed = False
    while script_lines:
        line = script_lines.pop(0)
        statements = _split(line, ";")
        for statement in statements:
            try:
                code = runner.run(statement)
            except _Failed as failure:
                output.err(
                    f"{failure.message}{CRLF}"
                    f"    + CategoryInfo          : {failure.category}{CRLF}"
                    f"    + FullyQualifiedErrorId : {failure.error_id}{CRLF}{CRLF}"
                )
                failed = True
                continue
            except _NotEmulated:
                output.err(f"exchlab: powershell statement not emulated: {statement.strip()}{CRLF}")
                return 1
            failed = False
            if code is not None:
                return code
    return 1 if failed else 0


TOOLS = (Tool(("powershell",), powershell, file_name="powershell.exe"),)
