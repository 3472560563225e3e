# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start, stop and restart a Windows service with plain cmd.exe tools, and prove that a started
service stays up (KB Q184420, Q259906, Q190713; docs/windows-output.md#sc for sc).

- Start: `sc start NAME [startup password]`. For MSExchangeKMS the password is the service's start
  parameter, exactly what the Services "Start parameters" box passes (KB Q184420; Microsoft Learn, "Sc start"): never `net start`
  (whether KMS takes a `/`-prefixed word is unknown), never into ImagePath (KB Q235418 breaks SP
  Update). Where KMS takes its password from is read first, with the service
  (`reg query HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer`, KB Q196129; the rule is
  `_kms.PasswordSource`): a MasterPasswordPath with a drive letter means a startup disk, and KMS
  is then started with no start parameter (a startup_password given is not passed, with a
  warning); otherwise a start without startup_password is refused before anything that
  changes the host is sent.
  The service manager starts the dependencies (MSExchangeDS, which needs MSExchangeSA).
  `sc start` returns at START_PENDING; `sc query` is polled until RUNNING or STOPPED.
- Proof (an inference from KB Q259906, which names event 5389 as the symptom): the service must stay RUNNING for the watch period, and no new MSExchangeKMS
  event 5389 / 5057 / 5058 / 5015 / 5085 may appear. "New" means a RecordNumber above the newest
  one of the service's event source noted before the start, never "anything in the log": the
  log of a Q259906 server already holds old 5389s.
- Stop: `sc enumdepend NAME` lists the services that depend on it, dependents first; each running
  one is stopped with `sc stop` and `sc query` polled until STOPPED, then the service itself, as
  Microsoft's "Stopping a Service" sample does (docs/windows-output.md#sc-enumdepend). `sc` takes
  `\\\\HOST`, `net stop` does not. A stop whose CHECKPOINT does not move for STOP_STALL_S (or
  a longer WAIT_HINT) is hung and fails early, by name; any other fails after the timeout.

`ServiceControl` does the work through a `run(command_line)` callable (a `WinrsShell.run`), so it
never touches WinRM; every read is a batch of `_probe.section`s, one round trip each. It raises
`ServiceError` (message complete but for the host prefix, which the action adds) and lets
`ParseError` / `ProbeError` through; `acted` says whether a command that changes the host ran.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
import time
import typing as t
from dataclasses import dataclass, field

from ._errors import StepError
from ._kms import (
    KMS_SERVER_KEY,
    KMS_SERVICE,
    PasswordSource,
    check_startup_password_for_command_line,
    event_dict,
    exit_code_meaning,
    explain_events,
    failure_events,
    is_kms,
    password_needed,
    password_not_passed,
    password_source,
    start_parameter,
)
from ._poll import Clock, PollStalled, PollTimeout, poll_until, ramp
from ._probe import Runs, Section, Sections, reg_query, run_commands, sc, wmic_events
from ._reach import Reach, remote_of, remote_refusal
from ._winout import (
    ERROR_ACCESS_DENIED,
    ERROR_DEPENDENT_SERVICES_RUNNING,
    ERROR_SERVICE_ALREADY_RUNNING,
    ERROR_SERVICE_NOT_ACTIVE,
    EventRecord,
    ScFailure,
    ServiceConfig,
    ServiceStatus,
    ToolMissing,
    WmiFailed,
    parse_reg_query,
    parse_sc_enumdepend,
    parse_sc_qc,
    parse_sc_query,
    parse_wmic_events,
    parse_wmic_values,
)

STATES = ("started", "stopped", "restarted")
RUNNING, STOPPED = "running", "stopped"
START_PENDING, STOP_PENDING = "start_pending", "stop_pending"
# How often sc query is asked while waiting and watching (no source gives a cadence: a few seconds, like the Services console).
POLL_SECONDS = 3.0
# A stop that makes no progress is hung: Microsoft's "Stopping a Service" sample
# (https://learn.microsoft.com/windows/win32/services/stopping-a-service) gives up after 30 s, and
# a service whose sc query CHECKPOINT has not moved for that long (or for its WAIT_HINT, when
# longer) is not going to stop, whatever `timeout` allows.
STOP_STALL_S = 30.0
# sc enumdepend's buffer: EnumDependentServices' array is at most 64,000 bytes, and the default
# 1,024 may not hold every Exchange service (docs/windows-output.md#sc-enumdepend).
ENUMDEPEND_BUFFER = 64000
# How deep the dependency walk goes (MSExchangeKMS -> MSExchangeDS -> MSExchangeSA is 2).
MAX_DEPENDENCY_DEPTH = 8
# A service key name: letters, digits and a few safe marks. Anything else would be read by cmd.exe
# (& | < > ^ % ...) or split into more words.
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.$-]{0,255}$")


class ServiceError(StepError):
    """A service operation failed (_errors.StepError); `result` carries what is known (state,
    events, ...) and `changed` whether a command that changes the host had been sent."""


def check_service_arguments(name: str, state: str, startup_password: str | None) -> list[str]:
    """Refuse arguments that cannot work, before anything is sent (raises ValueError with the
    whole message); return warnings about arguments that will be ignored."""
    if not _SERVICE_NAME.match(name):
        raise ValueError(
            f"name {name!r} is not a service key name (letters, digits, '_', '.', '-', '$'). "
            "Use the key name that sc query prints after SERVICE_NAME, e.g. MSExchangeKMS, "
            "not the display name."
        )
    if state not in STATES:
        raise ValueError(f"state is {state!r}; use one of {', '.join(STATES)}.")
    warnings = []
    # Whether KMS needs the password at all is read from the host (a startup disk needs none,
    # KB Q196129): ServiceControl refuses a start without it there, after that read and before
    # anything that changes the host is sent.
    if is_kms(name) and state != "stopped":
        if startup_password:
            try:
                check_startup_password_for_command_line(startup_password)
            except ValueError as exc:
                raise ValueError(f"{exc}.") from None
    elif startup_password and not is_kms(name):
        warnings.append(
            f"startup_password is used only for {KMS_SERVICE}; it was not passed to {name}."
        )
    return warnings


def steps_for(wanted: str, state: str) -> tuple[str, ...]:
    """What to do to a service in a settled `state` ("running" or "stopped") for `wanted`."""
    if wanted == "started":
        return () if state == RUNNING else ("start",)
    if wanted == "stopped":
        return ("stop",) if state == RUNNING else ()
    return ("stop", "start") if state == RUNNING else ("start",)


def settles_to(state: str) -> str | None:
    """The state a pending service is on its way to; None for states this module does not
    drive (paused and its transitions)."""
    return {
        RUNNING: RUNNING,
        STOPPED: STOPPED,
        START_PENDING: RUNNING,
        STOP_PENDING: STOPPED,
    }.get(state)


def sc_start(name: str, startup_password: str | None = None, remote: str | None = None) -> str:
    """`sc start NAME ["password"]`: the password is KMS's start parameter (_kms)."""
    command = sc("start", name, remote)
    return f"{command} {start_parameter(startup_password)}" if startup_password else command


def service_controller_start(name: str, remote: str) -> str:
    """powershell on a jump host: start NAME on REMOTE with one start parameter read from its
    standard input, through .NET's `ServiceController(name, machineName).Start(String[])`,
    "passing the specified arguments" as `sc start` does
    (https://learn.microsoft.com/dotnet/api/system.serviceprocess.servicecontroller.start). The
    password then appears on no command line, which the jump host's process-creation audit
    (event 4688) records. That this reaches KMS exactly as `sc \\\\HOST start` does is [I]: the
    start is judged only by `sc query` and the service's new events. PowerShell runs on the jump
    host, never on the Exchange server. PowerShell 2.0 may need System.ServiceProcess loaded first [I].
    """
    script = (
        "[void][Reflection.Assembly]::LoadWithPartialName('System.ServiceProcess'); "
        "$p = [Console]::In.ReadLine(); "
        f"$s = New-Object System.ServiceProcess.ServiceController('{name}', '{remote}'); "
        "$s.Start(@($p))"
    )
    return f'powershell -NoProfile -NonInteractive -Command "{script}"'


def start_line(
    name: str, startup_password: str | None, reach: Reach | None = None
) -> tuple[str, str | None]:
    """The command line that starts NAME, with its start parameter, and the standard input it
    reads (None: none). On the host itself and without a password: `sc [\\\\HOST] start NAME
    ["password"]`. Through a jump host with a password: `service_controller_start`, the password
    on standard input, unless the operator allowed it on the command line
    (exchange_jump_allow_password_in_argv)."""
    remote = remote_of(reach)
    if remote and startup_password and not reach.password_in_argv:
        return service_controller_start(name, remote), f"{startup_password}\r\n"
    return sc_start(name, startup_password, remote), None


def sc_enumdepend(name: str, remote: str | None = None) -> str:
    """`sc enumdepend NAME 64000`: every service that depends on NAME, dependents first."""
    return f"{sc('enumdepend', name, remote)} {ENUMDEPEND_BUFFER}"


def stop_progress(status: ServiceStatus) -> tuple[str, int]:
    """What moves while a service stops: its state, then its CHECKPOINT within STOP_PENDING."""
    return status.state, status.checkpoint


def stall_limit(status: ServiceStatus) -> float:
    """Seconds without progress after which a stop is hung: STOP_STALL_S, or a longer WAIT_HINT."""
    return max(STOP_STALL_S, status.wait_hint / 1000)


_STOP_FIXES = {
    ERROR_ACCESS_DENIED: "The account may not stop services: use a local administrator",
    ERROR_DEPENDENT_SERVICES_RUNNING: "A service that depends on it was started meanwhile: find "
    "which (sc enumdepend {name}) and what starts it",
    1052: "It does not accept a stop (NOT_STOPPABLE in sc query {name})",
    1061: "It cannot take a stop now (it is starting or stopping): wait until sc query {name} "
    "shows it settled",
}


def wmic_event_records(source: str, after: int | None = None, remote: str | None = None) -> str:
    """The service's Application-log events: their RecordNumbers only, or every field of those
    after record `after`."""
    if after is None:
        return wmic_events(source, fields="RecordNumber", remote=remote)
    return wmic_events(source, after=after, remote=remote)


def exit_code_hint(name: str, status: ServiceStatus, source: PasswordSource | None = None) -> str:
    """Why a service that stopped without a known event may have stopped; `source` is where KMS
    takes its startup password from, when it was read."""
    codes = (
        f"WIN32_EXIT_CODE {status.win32_exit_code}, SERVICE_EXIT_CODE {status.service_exit_code}"
    )
    meaning = exit_code_meaning(status, source) if is_kms(name) else None
    if meaning:
        return f"({codes}): {meaning}."
    return f"({codes}). Read the Application and System logs on the host for the reason."


_START_FIXES = {
    5: "The account may not start services on this host: use a local administrator.",
    2: "Its program is missing: compare BINARY_PATH_NAME (sc qc {name}) with the files on disk.",
    1053: "It did not answer the service manager in time: read the Application log, then start "
    "it again.",
    1058: "It is disabled: set a start type first (sc config {name} start= demand).",
    1068: "A service it depends on did not start ({deps}): start that one and read its events.",
    1069: "Its account could not log on: check the account and its password (sc qc {name}).",
}


@dataclass
class Progress:
    """What the run has done so far; the action turns it into the task result."""

    name: str
    previous_state: str | None = None
    state: str | None = None
    display_name: str | None = None
    dependencies_started: list[str] | None = None
    dependents_stopped: list[str] | None = None
    # KMS only, when read for a start: "disk" or "start_parameter" (_kms.PasswordSource.mode).
    password_source: str | None = None
    events: list[dict[str, t.Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def result(self) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {
            "name": self.name,
            "state": self.state,
            "previous_state": self.previous_state,
            "events": self.events,
        }
        if self.dependencies_started is not None:
            result["dependencies_started"] = self.dependencies_started
        if self.dependents_stopped is not None:
            result["dependents_stopped"] = self.dependents_stopped
        if self.password_source is not None:
            result["password_source"] = self.password_source
        return result


class ServiceControl:
    """Drive one service on one host to a wanted state through `run` (see the module doc)."""

    def __init__(
        self,
        run: Runs,
        name: str,
        *,
        startup_password: str | None = None,
        watch: int = 15,
        timeout: int = 300,
        clock: Clock | t.Callable[[], float] = time.monotonic,
        sleep: t.Callable[[float], None] = time.sleep,
        log: t.Callable[[str], None] = lambda message: None,
        reach: Reach | None = None,
    ) -> None:
        """`clock` is a `_poll.Clock` (its own sleep; `sleep` is then not used) or a function
        that tells the time, with `sleep` to wait. `reach` says where `run` runs when that is
        not the service's host: on its jump host, whose commands then name the server
        (`sc \\\\HOST`, `reg query \\\\HOST\\...`, `wmic /node:HOST`)."""
        self._run = run
        self.name = name
        self._reach = reach
        self._remote = remote_of(reach)
        self._password = startup_password if is_kms(name) else None
        self.watch = watch
        self.timeout = timeout
        self._clock = clock if isinstance(clock, Clock) else Clock(clock, sleep)
        self._log = log
        self.acted = False  # a command that changes the host was sent
        self.progress = Progress(name)
        self._config: ServiceConfig | None = None
        self._events_readable = True
        # What ServiceController printed on the jump host when its start failed (its text).
        self._start_refused: str | None = None
        # Where KMS takes its startup password from; read with the service before a start.
        self.password_source: PasswordSource | None = None

    # -- reading -----------------------------------------------------------------------------

    def _batch(self, commands: dict[str, str]) -> Sections:
        return run_commands(self._run, commands)

    def _sc(self, verb: str, name: str | None = None) -> str:
        """`sc [\\\\HOST] VERB NAME`, of the service's host wherever the shell runs."""
        return sc(verb, name or self.name, self._remote)

    def _refuse_unreachable(self, part: Section) -> None:
        """Through a jump host: a ServiceError naming the jump host, the server and every cause,
        when PART failed in reaching the server (its name, the transport, the account)."""
        refusal = remote_refusal(self._reach, part.text, part.succeeded)
        if refusal is not None:
            raise ServiceError(refusal, self.progress.result())

    def _status(self, part: Section, name: str | None = None) -> ServiceStatus | ScFailure:
        self._refuse_unreachable(part)
        try:
            return parse_sc_query(*part.streams(), section=part.name)
        except ToolMissing as exc:
            raise ServiceError(
                f"'{exc.tool}' is not available on this host, so {name or self.name} cannot be "
                "queried or controlled. Install sc.exe (Windows Resource Kit on Windows 2000 / NT "
                f"4.0) into the system folder.",
                self.progress.result(),
            ) from None

    def _own_status(self, part: Section, name: str | None = None) -> ServiceStatus:
        """The status of the service (or of `name`), or the ServiceError that says why not."""
        name = name or self.name
        status = self._status(part, name)
        if isinstance(status, ScFailure):
            if status.service_missing:
                raise ServiceError(
                    f"there is no service named {name} (sc query: error {status.error}, "
                    f"{status.message}). Use the service's key name, e.g. {KMS_SERVICE}, not its "
                    f"display name.",
                    self.progress.result(),
                )
            raise ServiceError(
                f"sc query {name} failed with error {status.error} ({status.message}). "
                "The account may lack the right to query services: use a local administrator."
                f"",
                self.progress.result(),
            )
        return status

    def read(self, for_start: bool = False) -> tuple[ServiceStatus, ServiceConfig]:
        """The service's status and configuration (one round trip); `for_start`, for KMS, also
        where it takes its startup password from (KB Q196129)."""
        commands = {"query": self._sc("query"), "qc": self._sc("qc")}
        if for_start and is_kms(self.name):
            commands["kms_server"] = reg_query(KMS_SERVER_KEY, self._remote)
        sections = self._batch(commands)
        status = self._own_status(sections["query"])
        self._refuse_unreachable(sections["qc"])
        config = parse_sc_qc(*sections["qc"].streams(), section="qc")
        if isinstance(config, ScFailure):
            raise ServiceError(
                f"sc qc {self.name} failed with error {config.error} ({config.message}) though "
                "sc query found the service. Run again; the account may lack the right to read "
                "service configuration."
            )
        self._config = config
        if "kms_server" in commands:
            part = sections["kms_server"]
            self.password_source = password_source(
                parse_reg_query(*part.streams(), section=part.name, key=KMS_SERVER_KEY)
            )
            self.progress.password_source = self.password_source.mode
        self.progress.display_name = config.display_name
        self.progress.previous_state = self.progress.state = status.state
        if is_kms(self.name) and config.binary_path != config.masked_binary_path:
            self.progress.warnings.append(
                f"{self.name}'s ImagePath holds arguments after the program "
                f"({config.masked_binary_path}); a startup password there makes the service "
                f"pack's update.exe fail (KB Q235418). Remove them with: sc config {self.name} "
                "binPath= <the program alone>."
            )
        return status, config

    def _query(self, name: str | None = None) -> ServiceStatus:
        name = name or self.name
        return self._own_status(self._batch({"query": self._sc("query", name)})["query"], name)

    def _baseline_records(self, part: Section) -> int | None:
        """The newest RecordNumber of the service's events; None when events cannot be read."""
        try:
            rows = parse_wmic_values(
                *part.streams(), section=part.name, properties=("RecordNumber",)
            )
        except (ToolMissing, WmiFailed) as exc:
            self._no_events(exc)
            return None
        numbers = [row["RecordNumber"].strip() for row in rows]
        if not all(number.isdigit() for number in numbers):
            # Guessing 0 would make every old event (a Q259906 server's 5389s) look new.
            raise ServiceError(
                f"wmic gave a RecordNumber that is not a number ({', '.join(numbers)[:80]}), so "
                f"new {self.name} events could not be told from old ones. Report it with -vvvv "
                "output."
            )
        return max((int(number) for number in numbers), default=0)

    def _no_events(self, exc: ToolMissing | WmiFailed) -> None:
        """The events cannot be read: wmic is missing (Windows 2000 and NT 4.0 have none), or
        WMI did not answer (NT 4.0 has WMI only with WMI core, KB Q219378)."""
        self._events_readable = False
        if isinstance(exc, ToolMissing):
            why = f"'{exc.tool}' is not available on this host"
        else:
            why = f"WMI did not answer ({exc.description})"
        self.progress.warnings.append(
            f"{why}, so the Application log cannot be read: only the state of {self.name} was "
            f"watched. Look for new {self.name} events in Event Viewer."
        )

    def _new_events(self, part: Section | None, baseline: int | None) -> list[EventRecord]:
        if part is None or baseline is None:
            return []
        try:
            records = parse_wmic_events(*part.streams(), section=part.name)
        except (ToolMissing, WmiFailed) as exc:
            self._no_events(exc)
            return []
        fresh = [record for record in records if (record.record or 0) > baseline]
        fresh.sort(key=lambda record: record.record or 0, reverse=True)
        # Newest first, as exchange_facts returns events.
        self.progress.events = [event_dict(record) for record in fresh]
        return fresh

    def _dependencies(
        self, roots: t.Sequence[str], extra: dict[str, str]
    ) -> tuple[dict[str, str], dict[str, Section]]:
        """States of the dependencies (walking on through those not running), with the
        sections of `extra` run in the first round trip."""
        states: dict[str, str] = {}
        pending = [name for name in dict.fromkeys(roots) if not name.startswith("+")]
        first: dict[str, Section] = {}
        for depth in range(MAX_DEPENDENCY_DEPTH):
            if not pending and depth > 0:
                break
            commands = dict(extra) if depth == 0 else {}
            for index, dependency in enumerate(pending):
                commands[f"dep{index}_query"] = self._sc("query", dependency)
                commands[f"dep{index}_qc"] = self._sc("qc", dependency)
            if not commands:
                break
            sections = self._batch(commands)
            if depth == 0:
                first = {key: sections[key] for key in extra}
            following: list[str] = []
            for index, dependency in enumerate(pending):
                status = self._status(sections[f"dep{index}_query"], dependency)
                if isinstance(status, ScFailure):
                    states[dependency] = "absent" if status.service_missing else "unknown"
                    continue
                states[dependency] = status.state
                if status.state == RUNNING:
                    continue  # a running service's own dependencies run too
                config = parse_sc_qc(
                    *sections[f"dep{index}_qc"].streams(), section=f"dep{index}_qc"
                )
                if isinstance(config, ServiceConfig):
                    following += [
                        name
                        for name in config.dependencies
                        if not name.startswith("+") and name not in states and name not in following
                    ]
            pending = following
        return states, first

    # -- waiting -----------------------------------------------------------------------------

    def _wait(
        self,
        status: ServiceStatus,
        goals: tuple[str, ...],
        after: str,
        name: str | None = None,
        stopping: bool = False,
    ) -> ServiceStatus:
        """Poll sc query of the service (or of `name`) until its state is one of `goals`, within
        the timeout; `stopping` adds the stall rule (PollStalled passes through)."""
        name = name or self.name

        def waiting(current: ServiceStatus, waited: float) -> None:
            self._log(f"{name} is {current.state} {int(waited)} s after {after}; waiting")

        try:
            status = poll_until(
                lambda: self._query(name),
                lambda current: current.state in goals,
                first=status,
                timeout=self.timeout,
                interval=ramp(1.0, POLL_SECONDS),
                clock=self._clock,
                on_wait=waiting,
                progress=stop_progress if stopping else None,
                stall_limit=stall_limit if stopping else None,
            )
        except PollStalled as stalled:
            self._note_state(name, stalled.last)
            raise
        except PollTimeout as timeout:
            self._note_state(name, timeout.last)
            raise _StillPending(timeout.last, int(timeout.waited)) from None
        self._note_state(name, status)
        return status

    def settle(self, status: ServiceStatus) -> ServiceStatus:
        """Wait out a START_PENDING / STOP_PENDING found before anything was done."""
        if status.state in (RUNNING, STOPPED):
            return status
        if settles_to(status.state) is None:
            raise ServiceError(
                f"{self.name} is {status.state.upper()}: this module starts and stops services "
                f"but does not resume a paused one. Resume it with sc continue {self.name}, or "
                f"stop it, then run again.",
                self.progress.result(),
            )
        try:
            return self._wait(status, (RUNNING, STOPPED), f"finding it {status.state.upper()}")
        except _StillPending as pending:
            raise ServiceError(
                f"{self.name} was already {status.state.upper()} when the task began and is still "
                f"{pending.status.state.upper()} {pending.waited} s later (timeout "
                f"{self.timeout} s): a start or stop sent earlier does not finish, and its process "
                f"may be hung. {self._hung_advice()}",
                self.progress.result(),
            ) from None

    def _hung_advice(self, name: str | None = None, stalled: bool = False) -> str:
        name = name or self.name
        # A stall is judged from the CHECKPOINT, not the timeout: more time would not help.
        wait = "" if stalled else ", then run again with a larger timeout"
        advice = (
            f"Read the Application log{wait}; ending the process (sc queryex {name} shows the "
            "PID) is the last resort."
        )
        if is_kms(name):
            # Q190713: only an offline copy of Kmsdata is a backup; a process ended mid-write
            # may leave the KM database damaged (then event 5058, Q190698).
            advice += (
                " Before ending MSExchangeKMS, make sure an offline backup of the KM database "
                "exists (KB Q190713): a process ended mid-write can damage it."
            )
        return advice

    # -- stopping ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the running services that depend on this one (dependents first), then it."""
        sections = self._batch(
            {"dependents": sc_enumdepend(self.name, self._remote), "query": self._sc("query")}
        )
        status = self._own_status(sections["query"])
        # Known from here on, whatever fails next (a dependent that will not stop, a lost line).
        self._note_state(self.name, status)
        if self.progress.previous_state is None:
            self.progress.previous_state = status.state
        running = self._running_dependents(sections["dependents"])
        self.progress.dependents_stopped = []
        if running:
            self._log(f"stopping {', '.join(running)} first: they depend on {self.name}")
        for dependent in running:
            self._stop_one(dependent)
            self.progress.dependents_stopped.append(dependent)
        self._stop_one(self.name, status)

    def _running_dependents(self, part: Section) -> list[str]:
        self._refuse_unreachable(part)
        answer = parse_sc_enumdepend(*part.streams(), section=part.name)
        if isinstance(answer, ScFailure):
            raise ServiceError(
                f"sc enumdepend {self.name} failed with error {answer.error} ({answer.message}), "
                f"so the services that depend on {self.name} are unknown and it was not stopped. "
                "Run again with an administrator account; report it if it persists.",
                self.progress.result(),
            )
        return [item.name for item in answer if item.state != STOPPED]

    def _stopped_first(self) -> str:
        stopped = self.progress.dependents_stopped
        if not stopped:
            return ""
        return f" It stopped {', '.join(stopped)}, which depend on {self.name}, first."

    def _stop_one(self, name: str, status: ServiceStatus | None = None) -> None:
        """`sc stop NAME` and its state on the same line, then wait until STOPPED."""
        self._log(f"stopping {name} with sc stop")
        self.acted = True  # until the answer shows otherwise: a lost connection may hide a stop
        sections = self._batch({"stop": self._sc("stop", name), "query": self._sc("query", name)})
        status = self._own_status(sections["query"], name)
        answer = self._answer(sections["stop"], name, status, RUNNING)
        if isinstance(answer, ScFailure) and answer.error != ERROR_SERVICE_NOT_ACTIVE:
            if status.state == RUNNING:
                # Refused: only the dependents stopped before it changed anything.
                self.acted = bool(self.progress.dependents_stopped)
                self._note_state(name, status)
                fix = _STOP_FIXES.get(answer.error, "Read the System log for why it was refused")
                raise ServiceError(
                    f"{name} is still RUNNING: sc stop {name} failed with error {answer.error} "
                    f"({answer.message}).{self._stopped_first()} {fix.format(name=name)}, then "
                    "run again.",
                    self.progress.result(),
                )
        self._wait_stopped(name, status)

    def _answer(
        self, part: Section, name: str, status: ServiceStatus, unchanged: str
    ) -> ServiceStatus | ScFailure:
        """What `sc stop` / `sc start` answered; when the jump host could not reach the server
        with it while the service is still `unchanged`, the ServiceError says that only what
        ran before it changed anything (a stopped dependent)."""
        try:
            return self._status(part, name)
        except ServiceError:
            if status.state == unchanged:
                self.acted = bool(self.progress.dependents_stopped)
                self._note_state(name, status)
            raise

    def _wait_stopped(self, name: str, status: ServiceStatus) -> None:
        try:
            self._wait(status, (STOPPED,), "sc stop", name, stopping=True)
        except PollStalled as stalled:
            last = stalled.last
            raise ServiceError(
                f"{name} has been {last.state.upper()} for {stalled.limit:.0f} s after sc stop "
                f"without progress (CHECKPOINT {last.checkpoint:#x}, WAIT_HINT {last.wait_hint} "
                f"ms): its process hangs while stopping.{self._stopped_first()} "
                + self._hung_advice(name, stalled=True),
                self.progress.result(),
            ) from None
        except _StillPending as pending:
            raise ServiceError(
                f"{name} is still {pending.status.state.upper()} {pending.waited} s after sc "
                f"stop (timeout {self.timeout} s): it accepted the stop but did not finish, and "
                f"its process may be hung.{self._stopped_first()} {self._hung_advice(name)}",
                self.progress.result(),
            ) from None

    def _note_state(self, name: str, status: ServiceStatus) -> None:
        if name == self.name:
            self.progress.state = status.state

    # -- starting ----------------------------------------------------------------------------

    def start(self) -> None:
        config = self._config
        if config is None:
            raise RuntimeError("ServiceControl.read() must run before start()")
        self._refuse_disabled(config)
        self._refuse_without_password()
        password = self._start_password()
        before, first = self._dependencies(
            config.dependencies,
            {"records": wmic_event_records(self.name, remote=self._remote)},
        )
        baseline = self._baseline_records(first["records"])
        # Deepest first: the order the service manager starts them in (MSExchangeSA, then DS).
        waiting = [name for name, state in reversed(before.items()) if state != RUNNING]
        command, stdin = start_line(self.name, password, self._reach)
        starter = "sc start" if stdin is None else f"ServiceController on {self._via()}"
        self._log(
            f"starting {self.name} with {starter}"
            + (" and the startup password" if password else "")
            + (" on its standard input" if stdin is not None else "")
            + (" and no start parameter (startup disk)" if self._reads_disk() else "")
            + (f"; the service manager starts {', '.join(waiting)} first" if waiting else "")
        )
        self.acted = True
        sections = run_commands(
            self._run, {"start": command, "query": self._sc("query")}, stdin=stdin
        )
        status = self._own_status(sections["query"])
        if stdin is not None:
            # Judged by sc query and the new events alone; what PowerShell printed is only told.
            self._start_refused = None
            if not sections["start"].succeeded:
                self._start_refused = " ".join(sections["start"].text.split())[:300]
            answer: ServiceStatus | ScFailure | None = None
        else:
            answer = self._answer(sections["start"], self.name, status, STOPPED)
        if isinstance(answer, ScFailure) and answer.error != ERROR_SERVICE_ALREADY_RUNNING:
            self.progress.state = status.state
            self._started_dependencies(waiting)
            fix = _START_FIXES.get(answer.error, "Read the System log on the host for the reason.")
            not_running = [
                name for name in waiting if name not in (self.progress.dependencies_started or [])
            ]
            raise ServiceError(
                f"sc start {self.name} failed with error {answer.error} ({answer.message}). "
                + fix.format(name=self.name, deps=", ".join(not_running) or "see sc qc")
                + self._dependencies_note(),
                self.progress.result(),
            )
        try:
            status = self._wait(status, (RUNNING, STOPPED), f"{starter} {self.name}")
        except _StillPending as pending:
            failures = self._failures(self._final_read(baseline, waiting)[1])
            raise ServiceError(
                f"{self.name} is still {pending.status.state.upper()} {pending.waited} s after "
                f"{starter} (timeout {self.timeout} s): it did not finish starting. "
                + (explain_events(failures, self.password_source) + " " if failures else "")
                + "Read the Application log, then run again with a larger timeout."
                + self._dependencies_note(),
                self.progress.result(),
            ) from None
        if status.state == STOPPED:
            self._fail_stopped(status, baseline, waiting, f"right after {starter}")
        self._watch(baseline, waiting)

    def _via(self) -> str:
        return (self._reach.via if self._reach else None) or "the jump host"

    def _watch(self, baseline: int | None, waiting: list[str]) -> None:
        """RUNNING for `watch` seconds, and no new failure event (KB Q259906: KMS exits with event 5389)."""
        running_since = self._clock.now()
        while True:
            remaining = self.watch - (self._clock.now() - running_since)
            if remaining <= 0:
                break
            self._clock.sleep(min(POLL_SECONDS, remaining))
            if self.watch - (self._clock.now() - running_since) <= 0:
                break
            status = self._query()
            if status.state != RUNNING:
                self._fail_stopped(
                    status,
                    baseline,
                    waiting,
                    f"{int(self._clock.now() - running_since)} s after " "reaching RUNNING",
                )
        status, events = self._final_read(baseline, waiting)
        if status.state != RUNNING:
            self._fail_stopped(
                status, baseline, waiting, f"within the {self.watch} s watch", events
            )
        failures = self._failures(events)
        if failures:
            raise ServiceError(
                f"{self.name} is running but {explain_events(failures, self.password_source)}"
                + self._dependencies_note(),
                self.progress.result(),
            )

    def _final_read(
        self, baseline: int | None, waiting: list[str]
    ) -> tuple[ServiceStatus, list[EventRecord]]:
        """The service's state, its new events and its dependencies' states, in one round trip."""
        commands = {"query": self._sc("query")}
        if baseline is not None and self._events_readable:
            commands["events"] = wmic_event_records(self.name, baseline, self._remote)
        for index, dependency in enumerate(waiting):
            commands[f"dep{index}_query"] = self._sc("query", dependency)
        sections = self._batch(commands)
        status = self._own_status(sections["query"])
        self.progress.state = status.state
        events = self._new_events(sections.get("events"), baseline)
        self._record_dependencies(waiting, sections)
        return status, events

    def _failures(self, events: t.Sequence[EventRecord]) -> list[EventRecord]:
        """The KMS failure events among the service's new events; none for other services."""
        return failure_events(events) if is_kms(self.name) else []

    def _started_dependencies(self, waiting: list[str]) -> None:
        if not waiting:
            self.progress.dependencies_started = []
            return
        commands = {
            f"dep{index}_query": self._sc("query", name) for index, name in enumerate(waiting)
        }
        self._record_dependencies(waiting, self._batch(commands))

    def _record_dependencies(self, waiting: list[str], sections: Sections) -> None:
        started = []
        for index, dependency in enumerate(waiting):
            status = self._status(sections[f"dep{index}_query"], dependency)
            if isinstance(status, ServiceStatus) and status.state == RUNNING:
                started.append(dependency)
        self.progress.dependencies_started = started

    def _dependencies_note(self) -> str:
        started = self.progress.dependencies_started
        if not started:
            return ""
        return f" The service manager started {', '.join(started)} for it; they keep running."

    def _fail_stopped(
        self,
        status: ServiceStatus,
        baseline: int | None,
        waiting: list[str],
        when: str,
        events: list[EventRecord] | None = None,
    ) -> t.NoReturn:
        if events is None:
            status, events = self._final_read(baseline, waiting)
        failures = self._failures(events)
        state = status.state.upper()
        if self._start_refused is not None and not failures:
            raise ServiceError(
                f"{self.name} was not started: ServiceController on {self._via()} failed "
                f"({self._start_refused}), and sc query shows it {state}"
                + ("" if events or not self._events_readable else " with no new event")
                + f". The account {self._via()} passes on may lack the right to start services "
                f"on {self._remote} (a local administrator is needed, KB 288129), or PowerShell on "
                f"{self._via()} cannot use .NET's System.ServiceProcess. Fix that, then run "
                "again." + self._dependencies_note(),
                self.progress.result(),
            )
        if failures:
            cause = explain_events(failures, self.password_source)
        elif events:
            logged = ", ".join(f"{event.event_id} (record {event.record})" for event in events)
            cause = f"logged event(s) {logged} {exit_code_hint(self.name, status, self.password_source)}"
        elif self._events_readable:
            cause = f"logged no new {self.name} event {exit_code_hint(self.name, status, self.password_source)}"
        else:
            cause = exit_code_hint(self.name, status, self.password_source)
        raise ServiceError(
            f"{self.name} started but was {state} again {when}: it {cause}"
            + self._dependencies_note(),
            self.progress.result(),
        )

    # -- the whole run -----------------------------------------------------------------------

    def _reads_disk(self) -> bool:
        """KMS reads its startup password from a disk (MasterPasswordPath, KB Q196129)."""
        return self.password_source is not None and self.password_source.disk

    def _start_password(self) -> str | None:
        """The start parameter: the password, unless KMS reads a startup disk (then None, and a
        password given is not passed, with a warning naming the reading)."""
        if not self._reads_disk():
            return self._password
        if self._password and self.password_source is not None:
            warning = password_not_passed(self.password_source)
            if warning not in self.progress.warnings:
                self.progress.warnings.append(warning)
        return None

    def _refuse_without_password(self, wanted: str = "started") -> None:
        """KMS that takes its password as a start parameter is not started without one."""
        if not is_kms(self.name) or self._password or self._reads_disk():
            return
        raise ServiceError(
            password_needed(self.password_source or PasswordSource(None), wanted),
            self.progress.result(),
        )

    def _refuse_disabled(self, config: ServiceConfig) -> None:
        if config.start_type == "disabled":
            raise ServiceError(
                f"{self.name} is disabled (START_TYPE 4 DISABLED), so it cannot be started. Set a "
                f"start type first: sc config {self.name} start= demand.",
                self.progress.result(),
            )

    def ensure(self, wanted: str, check_mode: bool = False) -> bool:
        """Bring the service to `wanted` (started / stopped / restarted); return `changed`.
        In check mode only read (one round trip), and predict."""
        try:
            return self._ensure(wanted, check_mode)
        except ServiceError as exc:
            exc.changed = self.acted
            raise

    def _ensure(self, wanted: str, check_mode: bool) -> bool:
        status, config = self.read(for_start=wanted != "stopped")
        settled = settles_to(status.state)
        if settled is None:
            self.settle(status)  # raises: this module does not resume a paused service
        steps = steps_for(wanted, settled or status.state)
        if "start" in steps:
            self._refuse_disabled(config)
            self._refuse_without_password(wanted)
        if check_mode:
            if steps:
                self.progress.state = RUNNING if "start" in steps else STOPPED
            return bool(steps)
        status = self.settle(status)
        steps = steps_for(wanted, status.state)
        if "stop" in steps:
            self.stop()
        if "start" in steps:
            self.start()
        if wanted == "restarted" and self.progress.dependents_stopped:
            self.progress.warnings.append(
                f"restarting {self.name} stopped {', '.join(self.progress.dependents_stopped)}, "
                "which depend on it; they were not started again. Start them with "
                "exchops.kms.exchange_service."
            )
        return bool(steps)


class _StillPending(Exception):
    def __init__(self, status: ServiceStatus, waited: int) -> None:
        super().__init__(status.state)
        self.status = status
        self.waited = waited
