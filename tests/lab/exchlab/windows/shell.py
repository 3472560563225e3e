# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cmd.exe for one host: run one command line against its state, as `cmd /c` under WinRS would.

`run_command` is the entry point the WS-Management layer calls. It expands %VAR% (the shell's
environment, then the host's variables), parses the line (`cmdline`), runs each command with its
redirections, and returns what reached the console with the final ERRORLEVEL as the exit code.
It changes the host (the caller holds the host's lock and saves it afterwards) and may sleep
(update.exe takes `update_duration_s`).

On a jump host a redirection (`> file`, `>>`, `< file`) and `IF EXIST` may name
`\\\\NAME\\C$\\path` on a legacy server: the file is reached through the admin share
(exchlab.windows.remote) when it is opened and again when the command's output is written to it.
A refusal is the system message of its Win32 error on stderr and the command does not run, as
for a path the file system refuses; to IF EXIST a refused file is not there [lab: both].

ERRORLEVEL rules (cmd.exe): a program sets it to its exit code; internal commands follow the
`Tool.clears_errorlevel` table; `&&` / `||` look at the command's own success, so
`echo a || echo b` prints only "a". The command line's exit code is the final ERRORLEVEL.

[lab], no source cited: the internal commands' texts here ("ECHO is on.", "Environment variable
X not defined", "Active code page: N", the path and syntax errors), the variables a WinRS shell
starts with (`default_environment`), and the `exchlab: ... is not emulated` lines (the lab's own).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..console import WINRS, WaitsOnConsole
from ..state import FileSystemError, HostState, leaf_name, normalize_path, parent_path
from .cmdline import (
    AndThen,
    Block,
    CmdSyntaxError,
    For,
    If,
    Node,
    OrElse,
    Pipe,
    Redirection,
    Sequence,
    Simple,
    expand_variables,
    parse,
    split_program,
)
from .formats import CRLF, SYSTEM_MESSAGES, Era, era_of, not_recognized
from .remote import Network, Refusal, RemoteCalls, path_error_code, split_unc
from .tools import ConsoleInput, Environment, Invocation, Output, Tool, registry, wildcard_match

if TYPE_CHECKING:
    from ..wsman.backend import LogonSession, Stdin

# The exit code cmd.exe gives a command it cannot find (Sphinx make.bat tests errorlevel 9009).
NOT_RECOGNIZED_EXIT = 9009
PATHEXT = ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC"
_BATCH_EXTENSIONS = (".cmd", ".bat")
# Characters that end an internal command's name: `echo.`, `dir/b`, `cd\` (cmd.exe parsing).
_INTERNAL_DELIMITED = re.compile(r"^([A-Za-z]+)([./\\(:+\[\]=,;].*)$")


@dataclass(frozen=True)
class CommandResult:
    """What a command line printed and how it ended (same fields as exchlab.wsman's)."""

    stdout: str
    stderr: str
    exit_code: int


def run_command(
    host: HostState,
    command_line: str,
    environment: dict[str, str] | None = None,
    codepage: int = 437,
    *,
    session: LogonSession | None = None,
    stdin: Stdin | None = None,
    network: Network | None = None,
    launch: str = WINRS,
) -> CommandResult:
    """Run one command line on `host` (mutating it) in a console of `codepage` and return its
    output and exit code.

    `session` is the WinRS shell's logon (whose delegated credentials and `net use` connections
    the remote calls use), `stdin` what the client sends with WinRS Send, `network` the servers
    this host reaches by name (a jump host's; None: it reaches none). A host that audits process
    creation records the line, and every program it starts (`HostState.command_lines`).
    `launch`: who started it (exchlab.console); an installer it starts that waits on the
    console raises exchlab.console.WaitsOnConsole."""
    host.record_command_line(command_line)
    remote = RemoteCalls(host, network, session) if network is not None else None
    shell = Shell(host, environment, codepage, remote=remote, stdin=stdin, launch=launch)
    return shell.run(command_line)


def default_environment(host: HostState, era: Era, user: str = "Administrator") -> Environment:
    """The variables a WinRS shell starts with on this host (before rsp:Environment)."""
    root = era.system_root
    drive = host.system_drive
    profile = f"{era.profiles_root}\\{user}"
    temp = (
        f"{profile}\\AppData\\Local\\Temp"
        if era.vista_or_later
        else f"{profile}\\Local Settings\\Temp"
    )
    values = {
        "ALLUSERSPROFILE": (
            f"{drive}\\ProgramData" if era.vista_or_later else f"{era.profiles_root}\\All Users"
        ),
        "COMPUTERNAME": host.computer_name,
        "ComSpec": f"{root}\\system32\\cmd.exe",
        "HOMEDRIVE": drive,
        "HOMEPATH": profile[2:],
        "NUMBER_OF_PROCESSORS": "2",
        "OS": "Windows_NT",
        "Path": f"{root}\\system32;{root};{root}\\System32\\Wbem"
        + (
            f";{root}\\System32\\WindowsPowerShell\\v1.0\\" if "powershell.exe" in era.tools else ""
        ),
        "PATHEXT": PATHEXT,
        "PROCESSOR_ARCHITECTURE": "AMD64" if era.x64 else "x86",
        "ProgramFiles": f"{drive}\\Program Files",
        "PROMPT": "$P$G",
        "SystemDrive": drive,
        "SystemRoot": root,
        "TEMP": temp,
        "TMP": temp,
        "USERDOMAIN": host.domain,
        "USERNAME": user,
        "USERPROFILE": profile,
        "windir": root,
    }
    return Environment(values)


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


# ---------------------------------------------------------------------------------------------
# Where output goes


class _Sink:
    def write(self, text: str) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Called when the command that opened the sink ends."""


class _Console(_Sink):
    def __init__(self, output: Output, handle: int) -> None:
        self.output = output
        self.handle = handle

    def write(self, text: str) -> None:
        self.output.chunks.append((self.handle, text))


class _Nul(_Sink):
    def write(self, text: str) -> None:
        pass


class _Buffer(_Sink):
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)


# Where a redirection's file is, found again each time it is opened: (host, local path), holding
# the server whose admin share has it until the ExitStack closes.
_Place = Callable[[contextlib.ExitStack], tuple[HostState, str]]


class _File(_Sink):
    """`> file` / `>> file`: the file is created (or emptied) when the redirection is opened,
    and written when the command ends. A file behind a server's admin share is reached each of
    those two times: no server is held while the command runs, so a program that lets its host's
    lock go while it waits (update.exe) never does so while holding a server's."""

    def __init__(self, place: _Place, append: bool) -> None:
        self.place = place
        self.parts: list[str] = []
        with contextlib.ExitStack() as held:
            host, path = place(held)
            existing = host.fs.file_entry(path)
            self.prefix = existing.content() if append and existing else b""
            host.write_file(path, data=self.prefix)

    def write(self, text: str) -> None:
        self.parts.append(text)

    def flush(self) -> None:
        if self.parts:
            data = self.prefix + "".join(self.parts).encode("latin-1", errors="replace")
            with contextlib.ExitStack() as held:
                host, path = self.place(held)
                host.write_file(path, data=data)


_Handles = dict[int, _Sink]


# ---------------------------------------------------------------------------------------------
# The shell


class Shell:
    """One `cmd /c` process on a host."""

    def __init__(
        self,
        host: HostState,
        environment: dict[str, str] | None = None,
        codepage: int = 437,
        *,
        remote: RemoteCalls | None = None,
        stdin: Stdin | None = None,
        launch: str = WINRS,
    ) -> None:
        self.host = host
        self.remote = remote
        self.launch = launch
        self.console_input = stdin
        # The console's active code page (WinRS sets it from WINRS_CODEPAGE); chcp shows it.
        self.codepage = codepage
        self.era = era_of(host.os)
        user = (environment or {}).get("USERNAME", "Administrator")
        self.env = default_environment(host, self.era, user)
        for name, value in (environment or {}).items():
            self.env.set(name, value)
        profile = self.env.get("USERPROFILE") or host.system_drive + "\\"
        self.cwd = profile if host.fs.is_dir(normalize_path(profile)) else host.system_drive + "\\"
        self.cwd = normalize_path(self.cwd)
        self.errorlevel = 0
        self.console = Output()
        self.directory_stack: list[str] = []

    def run(self, command_line: str) -> CommandResult:
        handles: _Handles = {1: _Console(self.console, 1), 2: _Console(self.console, 2)}
        try:
            self.run_line(command_line, handles, ConsoleInput(self.console_input, self.codepage))
        except _Exit as exc:
            self.errorlevel = exc.code
        return CommandResult(self.console.stdout, self.console.stderr, self.errorlevel)

    def run_line(self, line: str, handles: _Handles, stdin: str) -> bool:
        expanded = expand_variables(line, self.lookup)
        try:
            node = parse(expanded)
        except CmdSyntaxError as exc:
            handles[2].write(exc.message + CRLF)
            self.errorlevel = exc.exit_code
            return False
        if node is None:
            return True
        return self.execute(node, handles, stdin)

    def lookup(self, name: str) -> str | None:
        """%NAME%: the environment first, then cmd's dynamic variables."""
        value = self.env.get(name)
        if value is not None:
            return value
        upper = name.upper()
        if upper == "ERRORLEVEL":
            return str(self.errorlevel)
        if upper == "CD":
            return self.cwd
        now = self.host.now()
        if upper == "DATE":
            return now.strftime("%d/%m/%Y")
        if upper == "TIME":
            return now.strftime("%H:%M:%S.00")
        if upper == "RANDOM":
            return str(self.host.command_seq * 7919 % 32768)
        return None

    # -- the tree -------------------------------------------------------------------------

    def execute(self, node: Node, handles: _Handles, stdin: str) -> bool:
        if isinstance(node, Simple):
            return self.run_simple(node, handles, stdin)
        if isinstance(node, Sequence):
            self.execute(node.left, handles, stdin)
            return self.execute(node.right, handles, stdin)
        if isinstance(node, AndThen):
            if not self.execute(node.left, handles, stdin):
                return False
            return self.execute(node.right, handles, stdin)
        if isinstance(node, OrElse):
            if self.execute(node.left, handles, stdin):
                return True
            return self.execute(node.right, handles, stdin)
        if isinstance(node, Pipe):
            buffer = _Buffer()
            self.execute(node.left, {**handles, 1: buffer}, stdin)
            return self.execute(node.right, handles, buffer.text)
        if isinstance(node, Block):
            opened = self.open_redirections(node.redirections, handles, stdin)
            if opened is None:
                return False
            inner, inner_stdin, sinks = opened
            try:
                return self.execute(node.body, inner, inner_stdin)
            finally:
                self.flush(sinks, handles)
        if isinstance(node, If):
            return self.run_if(node, handles, stdin)
        if isinstance(node, For):
            return self.run_for(node, handles, stdin)
        raise TypeError(f"unknown command node {node!r}")

    def open_redirections(
        self, redirections: tuple[Redirection, ...], handles: _Handles, stdin: str
    ) -> tuple[_Handles, str, list[_Sink]] | None:
        current = dict(handles)
        opened: list[_Sink] = []
        for redirection in redirections:
            target = redirection.target
            is_nul = target.upper().rstrip(":") == "NUL"
            try:
                if redirection.kind == "<":
                    if is_nul:
                        stdin = ""
                    else:
                        with contextlib.ExitStack() as held:
                            host, path = self.file_place(target)(held)
                            entry = host.fs.file_entry(path)
                            if entry is None:
                                raise FileSystemError(
                                    2, "The system cannot find the file specified."
                                )
                            stdin = entry.content().decode("latin-1")
                elif redirection.kind == ">&":
                    current[redirection.handle] = current.get(int(target), _Nul())
                elif is_nul:
                    current[redirection.handle] = _Nul()
                else:
                    sink = _File(self.file_place(target), redirection.kind == ">>")
                    opened.append(sink)
                    current[redirection.handle] = sink
            except FileSystemError as exc:
                handles[2].write(exc.message + CRLF)
                self.errorlevel = 1
                return None
        return current, stdin, opened

    def file_place(self, target: str) -> _Place:
        """Where a redirection's file is: on this host (its path fixed now, from the current
        folder), or, for `\\\\NAME\\C$\\path` on a jump host, behind NAME's admin share
        (`RemoteCalls.shared_path`). A refusal is a FileSystemError in the system message the
        file tools print [lab]."""
        remote = self.remote
        if split_unc(target) is None or remote is None:
            path = normalize_path(target, self.cwd)
            return lambda _held: (self.host, path)

        def reach(held: contextlib.ExitStack) -> tuple[HostState, str]:
            reached = held.enter_context(remote.shared_path(target))
            if isinstance(reached, Refusal):
                code = path_error_code(reached)
                raise FileSystemError(code, SYSTEM_MESSAGES[code], target)
            return reached.host, reached.local

        return reach

    def flush(self, sinks: list[_Sink], handles: _Handles) -> None:
        for sink in sinks:
            try:
                sink.flush()
            except FileSystemError as exc:
                handles[2].write(exc.message + CRLF)

    def run_simple(self, node: Simple, handles: _Handles, stdin: str) -> bool:
        self.host.begin_command()
        opened = self.open_redirections(node.redirections, handles, stdin)
        if opened is None:
            return False
        current, stdin, sinks = opened
        output = Output()
        try:
            return self.dispatch(node.text, output, stdin)
        finally:
            for handle, text in output.chunks:
                current.get(handle, _Nul()).write(text)
            self.flush(sinks, handles)

    # -- commands -------------------------------------------------------------------------

    def dispatch(self, text: str, output: Output, stdin: str) -> bool:
        name, rest = split_program(text)
        if not name:
            return True
        quoted = text.lstrip().startswith('"')
        internal, programs = registry()
        command = name.lower()
        arguments = rest
        if not quoted and command not in SHELL_BUILTINS and command not in internal:
            match = _INTERNAL_DELIMITED.match(name)
            if match and (
                match.group(1).lower() in SHELL_BUILTINS or match.group(1).lower() in internal
            ):
                command, arguments = match.group(1).lower(), match.group(2) + rest
        if not quoted and command in SHELL_BUILTINS:
            code = SHELL_BUILTINS[command](self, arguments, output, stdin)
            if code != 0:
                self.errorlevel = code
            return code == 0
        if not quoted and command in internal:
            if internal[command].windows_program:
                self.host.record_command_line(text.strip(" \t"))
            return self.finish(
                internal[command], self.invocation(name, None, arguments, stdin), output
            )
        program = self.find_program(name, output)
        if program is None:
            return False
        # The process starts here: what a 4688 audit with command lines records [lab: the
        # line as cmd passes it, redirections removed, variables expanded].
        self.host.record_command_line(text.strip(" \t"))
        if leaf_name(program).lower().endswith(_BATCH_EXTENSIONS):
            return self.run_batch(program, output)
        tool = programs.get(leaf_name(program).lower())
        if tool is None:
            output.err(f"exchlab: {leaf_name(program)} is not emulated{CRLF}")
            self.errorlevel = 1
            return False
        return self.finish(tool, self.invocation(name, program, rest, stdin), output)

    def invocation(self, name: str, program: str | None, args: str, stdin: str) -> Invocation:
        return Invocation(
            self.host,
            self.era,
            name,
            program,
            args,
            self.cwd,
            self.env,
            stdin,
            self.remote,
            self.launch,
        )

    def run_batch(self, program: str, output: Output) -> bool:
        """A .cmd / .bat file: its lines run in this shell, in order [lab: no labels, GOTO,
        CALL or SHIFT; `@` and ECHO OFF are taken as given, REM and :: skipped]."""
        entry = self.host.fs.file_entry(normalize_path(program))
        text = entry.content().decode("latin-1") if entry is not None else ""
        return self.run_batch_lines(text.splitlines(), output)

    def run_batch_lines(self, lines: list[str], output: Output | None = None) -> bool:
        """Run batch lines; an installer that waits on the console keeps the lines after its
        own in the wait (exchlab.console) and stops this shell."""
        sink = output if output is not None else self.console
        handles: _Handles = {1: _Console(sink, 1), 2: _Console(sink, 2)}
        succeeded = True
        for index, line in enumerate(lines):
            text = line.strip().lstrip("@").strip()
            lowered = text.lower()
            if not text or lowered in ("echo off", "echo on") or lowered.startswith("::"):
                continue
            if lowered == "rem" or lowered.startswith("rem "):
                continue
            try:
                succeeded = self.run_line(text, handles, "")
            except WaitsOnConsole as waiting:
                waiting.wait["then"].extend(lines[index + 1 :])
                raise
        return succeeded

    def finish(self, tool: Tool, invocation: Invocation, output: Output) -> bool:
        code = tool.run(invocation, output)
        if code != 0 or tool.clears_errorlevel:
            self.errorlevel = code
        return code == 0

    def find_program(self, name: str, output: Output) -> str | None:
        """Find a program as cmd.exe does: the typed path, else the current folder, then PATH,
        trying PATHEXT extensions when the name has none."""
        extensions = [ext.lower() for ext in (self.env.get("PATHEXT") or PATHEXT).split(";") if ext]
        has_extension = (
            "." in leaf_name(name) and "." + name.rsplit(".", 1)[1].lower() in extensions
        )
        candidates = [""] if has_extension else [*extensions, ""]
        fs = self.host.fs
        typed = name
        if "\\" in name or "/" in name or ":" in name:
            try:
                path = normalize_path(name, self.cwd)
            except FileSystemError as exc:
                output.err(exc.message + CRLF)
                self.errorlevel = 3
                return None
            if not fs.is_dir(parent_path(path)):
                output.err(f"The system cannot find the path specified.{CRLF}")
                self.errorlevel = 3
                return None
            folders = [parent_path(path)]
            name = leaf_name(path)
        else:
            folders = [self.cwd] + [
                normalize_path(folder, self.cwd)
                for folder in (self.env.get("PATH") or "").split(";")
                if folder.strip()
            ]
        for folder in folders:
            for extension in candidates:
                candidate = normalize_path(folder + "\\" + name + extension)
                if fs.is_file(candidate):
                    return fs.display(candidate)
        output.err(not_recognized(typed))
        self.errorlevel = NOT_RECOGNIZED_EXIT
        return None

    # -- IF and FOR -----------------------------------------------------------------------

    def run_if(self, node: If, handles: _Handles, stdin: str) -> bool:
        try:
            condition = self.condition(node)
        except ValueError:
            handles[2].write(f"The syntax of the command is incorrect.{CRLF}")
            self.errorlevel = 1
            return False
        if condition != node.negate:
            return self.execute(node.then, handles, stdin)
        if node.otherwise is not None:
            return self.execute(node.otherwise, handles, stdin)
        return True

    def condition(self, node: If) -> bool:
        if node.kind == "exist":
            target = node.operands[0].strip('"')
            # A server's file through its admin share too; one refused is not there [lab].
            with contextlib.ExitStack() as held:
                try:
                    host, path = self.file_place(target)(held)
                except FileSystemError:
                    return False
                if "*" in leaf_name(path) or "?" in leaf_name(path):
                    folder = parent_path(path)
                    dirs, files = host.fs.children(folder)
                    return any(wildcard_match(leaf_name(path), e.name) for e in [*dirs, *files])
                return host.fs.exists(path)
        if node.kind == "errorlevel":
            return self.errorlevel >= int(node.operands[0])
        if node.kind == "defined":
            return self.lookup(node.operands[0]) is not None
        left, operator, right = node.operands
        if node.ignore_case:
            left, right = left.lower(), right.lower()
        if operator == "==":
            return left == right
        try:
            numbers: tuple[int | str, int | str] = (int(left, 0), int(right, 0))
        except ValueError:
            numbers = (left, right)
        a, b = numbers
        return {
            "EQU": a == b,
            "NEQ": a != b,
            "LSS": a < b,  # type: ignore[operator]
            "LEQ": a <= b,  # type: ignore[operator]
            "GTR": a > b,  # type: ignore[operator]
            "GEQ": a >= b,  # type: ignore[operator]
        }[operator]

    def run_for(self, node: For, handles: _Handles, stdin: str) -> bool:
        result = True
        for item in self.for_items(node):
            body = _substitute_for_variable(node.body_text, node.variable, item, self)
            result = self.run_line(body, handles, stdin)
        return result

    def for_items(self, node: For) -> list[str]:
        tokens = re.findall(r'"[^"]*"|[^\s,;=]+', node.items)
        if node.recursive_root is None:
            found: list[str] = []
            for token in tokens:
                if "*" in token or "?" in token:
                    folder_text, _separator, mask = token.strip('"').rpartition("\\")
                    folder = normalize_path(folder_text or ".", self.cwd)
                    _dirs, files = self.host.fs.children(folder)
                    prefix = folder_text + "\\" if folder_text else ""
                    found.extend(prefix + e.name for e in files if wildcard_match(mask, e.name))
                else:
                    found.append(token)
            return found
        root = normalize_path(node.recursive_root or ".", self.cwd)
        folders = [root, *self._all_subfolders(root)]
        found = []
        for folder in folders:
            _dirs, files = self.host.fs.children(folder)
            for token in tokens:
                mask = token.strip('"')
                if "*" in mask or "?" in mask:
                    found.extend(e.path for e in files if wildcard_match(mask, e.name))
                else:
                    found.append(self.host.fs.display(folder).rstrip("\\") + "\\" + mask)
        return found

    def _all_subfolders(self, folder: str) -> list[str]:
        dirs, _files = self.host.fs.children(folder)
        found: list[str] = []
        for sub in dirs:
            found.append(sub.path)
            found.extend(self._all_subfolders(sub.path))
        return found


def _substitute_for_variable(text: str, variable: str, item: str, shell: Shell) -> str:
    """Replace %X and %~[fdpnxz]X in a FOR body with the current item."""

    def modified(match: re.Match[str]) -> str:
        modifiers = match.group(1)
        bare = item.strip('"')
        if modifiers is None:
            return item
        if not modifiers:
            return bare
        path = normalize_path(bare, shell.cwd)
        entry = shell.host.fs.file_entry(path)
        if "z" in modifiers:
            return str(entry.size) if entry else ""
        shown = shell.host.fs.display(path)
        name = leaf_name(shown)
        stem, dot, extension = name.rpartition(".")
        if not dot:
            stem, extension = name, ""
        parts = {
            "f": shown,
            "d": shown[:2],
            "p": parent_path(shown)[2:].rstrip("\\") + "\\",
            "n": stem,
            "x": "." + extension if extension else "",
        }
        if "f" in modifiers:
            return parts["f"]
        return "".join(parts[m] for m in "dpnx" if m in modifiers)

    def on_path(_match: re.Match[str]) -> str:
        # %~$PATH:X: the full name of the first file X along PATH, or nothing (cmd.exe since
        # NT 4; how to look for a program where where.exe does not exist).
        for folder in (shell.env.get("PATH") or "").split(";"):
            if not folder.strip():
                continue
            candidate = normalize_path(folder.strip() + "\\" + item.strip('"'), shell.cwd)
            if shell.host.fs.is_file(candidate):
                return shell.host.fs.display(candidate)
        return ""

    text = re.sub(r"%~\$PATH:" + re.escape(variable), on_path, text, flags=re.IGNORECASE)
    pattern = re.compile(r"%(?:~([fdpnxz]*))?" + re.escape(variable))
    return pattern.sub(modified, text)


# ---------------------------------------------------------------------------------------------
# Internal commands that change the shell itself (the others are in tools/)


def _echo(shell: Shell, args: str, output: Output, stdin: str) -> int:
    """ECHO prints its text verbatim, trailing spaces included (`echo a & echo b` prints "a ").

    `echo.` prints an empty line; `echo` alone prints the echo state; ECHO never changes
    ERRORLEVEL."""
    if not args or (args[0] in " \t" and not args.strip(" \t")):
        output.out(f"ECHO is on.{CRLF}")
        return 0
    text = args[1:]
    if args[0] in " \t" and text.strip().lower() in ("on", "off"):
        return 0
    output.out(text + CRLF)
    return 0


def _set(shell: Shell, args: str, output: Output, stdin: str) -> int:
    # The value keeps trailing spaces: `set A=b & ...` sets "b " (cmd.exe).
    text = (args[1:] if args[:1] in (" ", "\t") else args).lstrip(" \t")
    if text.lower().startswith("/p"):
        name, _equals, prompt = text[2:].strip().strip('"').partition("=")
        output.out(prompt)
        line = stdin.splitlines()[0] if stdin else ""
        if not line:
            return 1
        shell.env.set(name.strip(), line)
        return 0
    if text.startswith('"') and text.endswith('"') and "=" in text:
        text = text[1:-1]
    if "=" in text:
        name, _equals, value = text.partition("=")
        shell.env.set(name, value)
        return 0
    text = text.rstrip(" \t")
    matches = [(n, v) for n, v in shell.env.items() if n.upper().startswith(text.upper())]
    if not matches:
        output.err(f"Environment variable {text} not defined{CRLF}")
        return 1
    output.out("".join(f"{n}={v}{CRLF}" for n, v in matches))
    return 0


def _cd(shell: Shell, args: str, output: Output, stdin: str) -> int:
    text = args.strip(" \t")
    change_drive = False
    if text.lower().startswith("/d"):
        change_drive, text = True, text[2:].strip(" \t")
    text = text.strip('"')
    if not text:
        output.out(shell.cwd + CRLF)
        return 0
    try:
        path = normalize_path(text, shell.cwd)
    except FileSystemError as exc:
        output.err(exc.message + CRLF)
        return 1
    if not shell.host.fs.is_dir(path):
        output.err(f"The system cannot find the path specified.{CRLF}")
        return 1
    if change_drive or path[:2] == shell.cwd[:2]:
        shell.cwd = path
    shell.errorlevel = 0  # CD clears ERRORLEVEL on success
    return 0


def _pushd(shell: Shell, args: str, output: Output, stdin: str) -> int:
    previous = shell.cwd
    code = _cd(shell, " /d " + args.strip(), output, stdin)
    if code == 0:
        shell.directory_stack.append(previous)
    return code


def _popd(shell: Shell, args: str, output: Output, stdin: str) -> int:
    if shell.directory_stack:
        shell.cwd = shell.directory_stack.pop()
    return 0


def _exit(shell: Shell, args: str, output: Output, stdin: str) -> int:
    words = args.split()
    if words and words[0].lower() == "/b":
        words = words[1:]
    try:
        code = int(words[0]) if words else shell.errorlevel
    except ValueError:
        code = 0
    raise _Exit(code)


def _chcp(shell: Shell, args: str, output: Output, stdin: str) -> int:
    # chcp.com is a program on Windows; it lives here because it reports the console's state.
    # Only the query form is modelled: the plugins never change the code page.
    if args.strip():
        output.err(f"exchlab: chcp {args.strip()} is not emulated{CRLF}")
        return 1
    output.out(f"Active code page: {shell.codepage}{CRLF}")
    return 0


def _nothing(shell: Shell, args: str, output: Output, stdin: str) -> int:
    return 0


ShellBuiltin = Callable[[Shell, str, Output, str], int]
SHELL_BUILTINS: dict[str, ShellBuiltin] = {
    "echo": _echo,
    "set": _set,
    "cd": _cd,
    "chdir": _cd,
    "pushd": _pushd,
    "popd": _popd,
    "exit": _exit,
    "chcp": _chcp,
    "rem": _nothing,
    "cls": _nothing,
    "title": _nothing,
    "setlocal": _nothing,
    "endlocal": _nothing,
}
