# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every unit test may share: the recorded Windows output in `fixtures/`, a scripted
Windows host that answers command lines the way a WinRS shell's `run` does, and a fake clock.

`ScriptedHost` plays one or more hosts. A command line is answered by the first line rule whose
pattern it matches (`re.search`), with the whole stdout, stderr and exit code; a line made of
`_probe` sections that no line rule answers is answered section by section, each section's
command by the first command rule that matches it, framed the way cmd.exe prints the section
markers. An answer may also be an exception, raised as the shell would raise it. Nothing is
answered by default: an unscripted command fails the test and names the command.

`FakeClock` (fixture `fake_clock`) is time that passes only when the code under test waits: its
`clock` is the `_poll.Clock` to hand to a runner, and no wait sleeps for real.
"""

from __future__ import annotations

import json
import re
import threading
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._poll import Clock
from ansible_collections.exchops.kms.plugins.plugin_utils._winrs import CommandOutput

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The JSON schemas of the reports (docs/schemas).
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
# A `_probe.section` as it reaches cmd.exe.
_SECTION = re.compile(
    r"echo ==exchops:begin:([a-z0-9_]+)== & \((.*?)\) 2>&1 "
    r"&& echo ==exchops:end:ok== \|\| echo ==exchops:end:failed=="
)


class Recording(t.NamedTuple):
    """One recorded answer: both streams as the shell decodes them, and the exit code."""

    stdout: str
    stderr: str
    exit_code: int

    @property
    def merged(self) -> str:
        """The text of a `_probe` section, whose command runs with 2>&1."""
        return self.stdout + self.stderr


def load_recording(name: str) -> Recording:
    """`fixtures/<command>/<case>.bin` ("sc_query/e5_kms_running"), decoded with the code page
    its .meta.json names."""
    folder, case = (FIXTURES / name).parent, (FIXTURES / name).name
    meta = json.loads((folder / f"{case}.meta.json").read_text(encoding="utf-8"))
    text = (folder / f"{case}.bin").read_bytes().decode(meta["encoding"])
    stdout, stderr = (text, "") if meta["stream"] == "stdout" else ("", text)
    if "stderr_file" in meta:
        stderr = (folder / meta["stderr_file"]).read_bytes().decode(meta["encoding"])
    return Recording(stdout, stderr, meta["exit_code"])


Answer = t.Union[str, Recording, CommandOutput, BaseException]


@dataclass
class _Rule:
    pattern: re.Pattern[str]
    answer: Answer
    host: str | None
    once: bool

    def matches(self, text: str, host: str | None) -> bool:
        return (self.host is None or self.host == host) and bool(self.pattern.search(text))


@dataclass
class ScriptedShell:
    """One shell on the scripted host, used as `with host.open(...) as shell: shell.run(line)`.
    `details` keeps what the shell was opened with (a WinRS target, its secrets ...)."""

    scripted: ScriptedHost
    name: str | None
    details: dict[str, t.Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    # The standard input sent with each line (None: none), by the line's index in `lines`.
    inputs: list[str | None] = field(default_factory=list)
    entered: bool = False
    closed: bool = False

    def __enter__(self) -> ScriptedShell:
        refusal = self.scripted.refusal_for(self.name)
        if refusal is not None:
            raise refusal
        self.entered = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.closed = True

    def run(self, command_line: str, stdin: str | None = None) -> CommandOutput:
        if not self.entered or self.closed:
            raise AssertionError("run() outside the shell's `with` block")
        self.lines.append(command_line)
        self.inputs.append(stdin)
        return self.scripted.run(command_line, host=self.name)


class ScriptedHost:
    """Windows hosts as a script (see the module docstring)."""

    def __init__(self) -> None:
        self._line_rules: list[_Rule] = []
        self._command_rules: list[_Rule] = []
        self._refusals: dict[str | None, BaseException] = {}
        self._lock = threading.Lock()
        self.shells: list[ScriptedShell] = []
        self.lines: list[str] = []
        self.commands: list[str] = []  # each section's command, or the whole line

    # -- scripting ---------------------------------------------------------------------------

    def on_line(
        self, pattern: str, answer: Answer, *, host: str | None = None, once: bool = False
    ) -> None:
        """Answer a whole command line: text is stdout (exit code 0)."""
        self._line_rules.append(_Rule(re.compile(pattern), answer, host, once))

    def on_command(
        self, pattern: str, answer: Answer, *, host: str | None = None, once: bool = False
    ) -> None:
        """Answer one section's command: text is the section's output (its command succeeded);
        a Recording's streams are merged and its exit code decides the end marker."""
        self._command_rules.append(_Rule(re.compile(pattern), answer, host, once))

    def refuse_shell(self, error: BaseException, *, host: str | None = None) -> None:
        """Raise `error` when a shell opens (on `host`, or on any)."""
        self._refusals[host] = error

    def refusal_for(self, host: str | None) -> BaseException | None:
        return self._refusals.get(host, self._refusals.get(None))

    def open(self, name: str | None = None, **details: t.Any) -> ScriptedShell:
        shell = ScriptedShell(self, name, details)
        self.shells.append(shell)
        return shell

    # -- answering ---------------------------------------------------------------------------

    def _take(self, rules: list[_Rule], text: str, host: str | None) -> _Rule | None:
        with self._lock:
            for rule in rules:
                if rule.matches(text, host):
                    if rule.once:
                        rules.remove(rule)
                    return rule
        return None

    def run(self, command_line: str, host: str | None = None) -> CommandOutput:
        self.lines.append(command_line)
        sections = _SECTION.findall(command_line)
        self.commands += [command for _name, command in sections] or [command_line]
        rule = self._take(self._line_rules, command_line, host)
        if rule is not None:
            return _output(rule.answer)
        if not sections:
            raise AssertionError(f"no answer scripted for {command_line!r}")
        framed = []
        for name, command in sections:
            rule = self._take(self._command_rules, command, host)
            if rule is None:
                raise AssertionError(f"no answer scripted for section {name}: {command!r}")
            if isinstance(rule.answer, BaseException):
                raise rule.answer
            text, succeeded = _section_text(rule.answer)
            framed.append(framed_section(name, text, succeeded))
        return CommandOutput("".join(framed), "", 0, 0.01)


def _output(answer: Answer) -> CommandOutput:
    if isinstance(answer, BaseException):
        raise answer
    if isinstance(answer, CommandOutput):
        return answer
    if isinstance(answer, Recording):
        return CommandOutput(answer.stdout, answer.stderr, answer.exit_code, 0.01)
    return CommandOutput(answer, "", 0, 0.01)


def _section_text(answer: Answer) -> tuple[str, bool]:
    if isinstance(answer, Recording):
        return answer.merged, answer.exit_code == 0
    if isinstance(answer, CommandOutput):
        return answer.stdout + answer.stderr, answer.exit_code == 0
    return str(answer), True


def framed_section(name: str, text: str, succeeded: bool = True) -> str:
    """What cmd.exe prints for one `_probe` section: echo keeps the space before `&` / `||`."""
    end = "ok" if succeeded else "failed"
    return f"==exchops:begin:{name}== \r\n{text}==exchops:end:{end}== \r\n"


@pytest.fixture
def scripted_host() -> ScriptedHost:
    return ScriptedHost()


@pytest.fixture(scope="session")
def recorded() -> t.Callable[[str], Recording]:
    """`recorded("sc_query/e5_kms_running")`: a fixture file as the shell would decode it."""
    return load_recording


@pytest.fixture
def report_schema() -> t.Callable[[str], dict[str, t.Any]]:
    """report_schema(name): the JSON schema docs/schemas/NAME, which that report must follow."""

    def load(name: str) -> dict[str, t.Any]:
        return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))

    return load


class FakeClock:
    """Time that moves only by the waits of the code under test: `sleep` adds its seconds (kept in
    `pauses`), and so does `wait_for(thread, seconds)` while the thread runs. `wait_for` joins the
    thread for at most `thread_grace` real seconds: a thread that ends by then ended at once (no
    time passes), one that does not runs through the whole wait (set `thread_grace` to 0 for a
    thread the test keeps hanging)."""

    def __init__(self, start: float = 0.0, thread_grace: float = 5.0) -> None:
        self.time = start
        self.thread_grace = thread_grace
        self.pauses: list[float] = []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.time += seconds

    def wait_for(self, thread: threading.Thread, seconds: float) -> None:
        thread.join(self.thread_grace)
        if thread.is_alive():
            self.sleep(seconds)

    @property
    def clock(self) -> Clock:
        return Clock(self.now, self.sleep, self.wait_for)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()
