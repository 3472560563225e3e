# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulated programs and cmd.exe internal commands, one module per tool.

Every tool is a function `run(invocation, output) -> exit code`: it reads the host state from the
`Invocation`, writes text to `Output` (stdout and stderr chunks kept in order, so `2>&1` merges
them as Windows would) and returns its exit code. External programs are found like cmd.exe finds
them: a file on PATH (or at the typed path) whose name has a tool here, so a program missing from
a host's System32 (wmic on Windows 2000) is "not recognized" with no special case.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ...state import FileSystemError, HostState, normalize_path
from ..cmdline import split_arguments
from ..formats import CRLF, SYSTEM_MESSAGES, Era
from ..remote import Refusal, SharedPath, path_error_code, split_unc

if TYPE_CHECKING:
    from ...wsman.backend import Stdin
    from ..remote import RemoteCalls

# How long a tool that reads the command line's own standard input (what the client sends with
# WinRS Send) waits for the client to end it [lab].
STDIN_WAIT_S = 30.0


class Environment:
    """Environment variables: names are case-insensitive and keep their first spelling."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values: dict[str, tuple[str, str]] = {}
        for name, value in (values or {}).items():
            self.set(name, value)

    def get(self, name: str) -> str | None:
        found = self._values.get(name.upper())
        return found[1] if found else None

    def set(self, name: str, value: str | None) -> None:
        if value is None or value == "":
            self._values.pop(name.upper(), None)
            return
        existing = self._values.get(name.upper())
        self._values[name.upper()] = (existing[0] if existing else name, value)

    def items(self) -> list[tuple[str, str]]:
        """Sorted as `set` prints them (case-insensitive by name)."""
        return [self._values[key] for key in sorted(self._values)]

    def copy(self) -> Environment:
        clone = Environment()
        clone._values = dict(self._values)
        return clone


@dataclass
class Output:
    """What a command printed: (1 stdout | 2 stderr, text) chunks in the order printed."""

    chunks: list[tuple[int, str]] = field(default_factory=list)

    def out(self, text: str) -> None:
        if text:
            self.chunks.append((1, text))

    def err(self, text: str) -> None:
        if text:
            self.chunks.append((2, text))

    @property
    def stdout(self) -> str:
        return "".join(text for handle, text in self.chunks if handle == 1)

    @property
    def stderr(self) -> str:
        return "".join(text for handle, text in self.chunks if handle == 2)


class ConsoleInput(str):
    """The standard input of the command line itself: empty text to every tool that only looks
    at `Invocation.stdin` (they never waited for input before the lab had stdin), and the
    client's WinRS Send data, decoded in the shell's code page, to a tool that reads it
    (`Invocation.read_line`, `read_all`). It is read when first asked for, so a command line
    that never reads it never waits for it; what one tool reads, the next does not get."""

    source: Stdin | None
    codec: str
    pending: str | None

    def __new__(cls, source: Stdin | None, codepage: int) -> ConsoleInput:
        text = super().__new__(cls, "")
        text.source = source
        text.codec = "utf-8" if codepage == 65001 else f"cp{codepage}"
        text.pending = None
        return text

    def _filled(self) -> str:
        if self.pending is None:
            data = self.source.read(STDIN_WAIT_S) if self.source is not None else b""
            self.pending = data.decode(self.codec, errors="replace")
        return self.pending

    def take_line(self) -> str:
        line, _newline, self.pending = self._filled().partition("\n")
        return line.rstrip("\r")

    def take_all(self) -> str:
        text, self.pending = self._filled(), ""
        return text


@dataclass
class Invocation:
    """One command as a tool sees it."""

    host: HostState
    era: Era
    name: str  # as typed: "sc", "xcopy.exe", "D:\\SP3\\ENG\\SERVER\\SETUP\\I386\\update.exe"
    program: str | None  # the program file that ran (None for a cmd.exe internal command)
    args: str  # raw text after the name, quotes kept
    cwd: str
    env: Environment
    stdin: str = ""
    # The jump host's remote calls (exchlab.windows.remote); None on a host that reaches no
    # other computer, where `\\\\OTHER` forms fail as they always did.
    remote: RemoteCalls | None = None
    # Who started the command line (exchlab.console): "winrs", "console", "at" or "wmic".
    launch: str = "winrs"

    @property
    def argv(self) -> list[str]:
        return split_arguments(self.args)

    def on(self, target: HostState) -> Invocation:
        """This command run against another computer's state (a remote call): the era, and so
        every format, stays the running host's."""
        return replace(self, host=target, cwd=target.system_drive + "\\")

    def read_line(self) -> str:
        """The next line of standard input, without its line end ("" at its end)."""
        if isinstance(self.stdin, ConsoleInput):
            return self.stdin.take_line()
        line, _newline, self.stdin = self.stdin.partition("\n")
        return line.rstrip("\r")

    def read_all(self) -> str:
        """The rest of standard input."""
        if isinstance(self.stdin, ConsoleInput):
            return self.stdin.take_all()
        text, self.stdin = self.stdin, ""
        return text

    def path(self, text: str) -> str:
        """An absolute path for a path argument (relative to the current folder)."""
        return normalize_path(text.strip('"'), self.cwd)

    def path_or_error(self, text: str, output: Output) -> str | None:
        """`path(text)`, or None after printing why it is no path (the file system's message)."""
        try:
            return self.path(text)
        except FileSystemError as exc:
            output.err(exc.message + CRLF)
            return None

    @contextlib.contextmanager
    def located(self, text: str) -> Iterator[Located | Refusal]:
        """Where a path argument is: on this host, or, for `\\\\NAME\\C$\\path` on a jump host,
        on NAME through its admin share (`RemoteCalls.shared_path`), held while the block runs;
        or the Refusal of the remote-call layer. On a host that reaches nobody a UNC path stays
        here, where the file system refuses it (53) as it always did."""
        if split_unc(text) is None or self.remote is None:
            yield Located(self, text)
            return
        with self.remote.shared_path(text) as reached:
            if isinstance(reached, Refusal):
                yield reached
            else:
                yield Located(self.on(reached.host), reached.local, reached)

    def expand_wildcards(self, pattern: str) -> list[str]:
        """Files matching a path whose last part may hold * and ?; [] when nothing matches."""
        path = self.path(pattern)
        folder, _separator, mask = path.rpartition("\\")
        folder = folder + "\\" if len(folder) == 2 else folder
        if "*" not in mask and "?" not in mask:
            return [path] if self.host.fs.is_file(path) else []
        _dirs, files = self.host.fs.children(folder)
        return [entry.path for entry in files if wildcard_match(mask, entry.name)]


@dataclass(frozen=True)
class Located:
    """A path argument where it is: the command run on the host that holds it, the text to give
    that host's `path()` (the typed text here, the local path behind a share), and the share
    when it was reached through one, so a tool prints the server's paths as typed."""

    invocation: Invocation
    text: str
    shared: SharedPath | None = None

    @property
    def host(self) -> HostState:
        return self.invocation.host

    def path(self) -> str:
        """The absolute local path (FileSystemError when the text is no path)."""
        return self.invocation.path(self.text)

    def shown(self, path: str) -> str:
        """A local path of the host as the tool prints it (through the share when reached so)."""
        if self.shared is not None:
            return self.shared.shown(path)
        return self.host.fs.display(path)


@contextlib.contextmanager
def located_pair(
    invocation: Invocation, source: str, destination: str | None
) -> Iterator[tuple[Located | Refusal, Located | Refusal | None]]:
    """Where a source and a destination argument are (`Invocation.located`), both held while
    the block runs; the destination is None, never reached, when the source is refused. No
    destination argument is the current folder."""
    with invocation.located(source) as source_at:
        if isinstance(source_at, Refusal):
            yield source_at, None
            return
        if destination is None:
            yield source_at, Located(invocation, invocation.cwd)
            return
        with invocation.located(destination) as destination_at:
            yield source_at, destination_at


def refusal_message(refusal: Refusal) -> str:
    """The system message a file tool prints for a refusal of the remote-call layer (53, 67, 5,
    1326; no SMB1 client is 53: `path_error_code`)."""
    return SYSTEM_MESSAGES[path_error_code(refusal)]


def wildcard_match(mask: str, name: str) -> bool:
    """cmd.exe wildcards, case-insensitive; `*.*` matches names without a dot too."""
    if mask in ("*", "*.*"):
        return True
    return fnmatch.fnmatchcase(name.upper(), mask.upper())


def syntax_error(output: Output) -> int:
    """What cmd.exe's internal commands print for arguments they cannot take; exit code 1
    [lab: wording and code, no source cited]."""
    output.err(f"The syntax of the command is incorrect.{CRLF}")
    return 1


def print_error(output: Output, winerror: int | FileSystemError) -> None:
    if isinstance(winerror, FileSystemError):
        output.err(winerror.message + CRLF)
    else:
        output.err(SYSTEM_MESSAGES[winerror] + CRLF)


ToolFunction = Callable[[Invocation, Output], int]


# eq=False: no generated __hash__, which would look up `hash` in this package's namespace, where
# the tool module `hash` (certutil) shadows the built-in once `registry()` has imported it.
@dataclass(frozen=True, eq=False)
class Tool:
    """A program (`file_name` set: it needs that file on PATH) or a cmd.exe internal command.

    `clears_errorlevel`: whether success sets ERRORLEVEL to 0. Programs always set it; among
    internal commands DIR, TYPE, COPY, MD, VER ... clear it on success while ECHO, SET, IF, FOR,
    REM never do (the table in dbenham's "Which cmd.exe internal commands clear the ERRORLEVEL
    to 0 upon success?", Stack Overflow 34936240).
    """

    names: tuple[str, ...]
    run: ToolFunction
    file_name: str | None = None
    clears_errorlevel: bool = True
    # An internal command here that is a program on Windows (tasklist): its start is audited
    # like a program's.
    windows_program: bool = False


# One module per tool, each with its TOOLS.
_TOOL_MODULES = (
    "builtins",
    "copy",
    "dir",
    "hash",
    "mkdir",
    "net",
    "ping",
    "powershell",
    "reg",
    "sc",
    "tasklist",
    "type",
    "update",
    "at",
    "wevtutil",
    "wmic",
)


@functools.cache
def registry() -> tuple[dict[str, Tool], dict[str, Tool]]:
    """(internal commands by lower-case name, programs by lower-case file name)."""
    # Imported here: every tool module imports this package for Invocation and Output.
    tools: list[Tool] = []
    for name in _TOOL_MODULES:
        tools.extend(importlib.import_module(f"{__name__}.{name}").TOOLS)
    internal = {name: tool for tool in tools if tool.file_name is None for name in tool.names}
    programs = {tool.file_name: tool for tool in tools if tool.file_name is not None}
    return internal, programs


def iter_program_files() -> Iterator[str]:
    """File names of every emulated program (what a builder puts into System32)."""
    yield from registry()[1]
