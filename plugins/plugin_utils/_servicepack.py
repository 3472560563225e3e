# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reapplying an Exchange 5.5 / 2000 service pack from media the host can read
(exchops.kms.exchange_service_pack), safely and idempotently: the job that talks to the host.
What it asks the host and what the answers say is `_servicepack_probe`; what may run, and what a
run's evidence means, is decided in `_servicepack_plan` (no I/O).

`ServicePackJob` drives the run through shells it is handed (the action gives it `WinrsShell`s):
it reads the host, lets the plan decide, stops every running Exchange service in dependency
order (`_service.ServiceControl`, `sc enumdepend`; KB Q235978, Q177221), records them on the host
(the run record), runs update.exe, reads the host again, lets the plan judge the outcome from the
versions, and starts again every service it stopped except MSExchangeKMS, whatever the outcome,
once update.exe has ended. MSExchangeKMS is never started here: it needs its startup password
and starts only after a proven success (exchops.kms.exchange_service).

update.exe runs in its own shell on a worker thread while this thread polls the host through
another one and shows progress (`_poll.poll_until`; a pause ends early when update.exe's command
returns). update.exe is interactive (Q191013, Q235978): when it still runs but neither the setup
log nor the Exchange BIN folder changes for `no_progress_timeout` seconds, the run ends
`waiting_for_input`; update.exe is never ended and nothing is restarted under it. A later run
finds the run record and, once update.exe has ended, judges the versions and starts the services
again. If the connection of update.exe's shell is lost, the job polls through NEW shells (a
pywinrm session does not survive a dropped connection) and never starts update.exe again. That
shell is not deleted while update.exe may still run in it: deleting a WinRS shell ends the
processes it started.

A server behind a Windows jump host (`_reach.Reach` with a `remote`; NT 4.0 and 2000 run no
WinRM) is read and changed through the jump host (`sc \\\\SERVER`, its admin share), and update.exe
is never started in the jump host's shells: no unattended switch is documented for it (KB Q191013:
"Type Update, and then follow the instructions displayed on the screen"), and a process started
remotely has no window on the console (Win32_Process.Create "cannot be used to start an
interactive process remotely",
https://learn.microsoft.com/windows/win32/cimwin32prov/create-method-in-class-win32-process). The job stops the services and writes the run record, then:
launch mode `operator` shows the exact console steps; `at_interactive` writes a batch beside the
setup log and adds an `at \\\\SERVER HH:MM /interactive` job on the server's clock (`net time`)
that starts update.exe on the console's desktop. `_ConsoleWatch` then polls through the jump host:
the batch's `finished` marker folder ends the wait (at_interactive); for an installer the module
did not start (operator), the versions moved and the setup log and the BIN folder quiet for
`quiet_period` seconds. Never by a process list: tasklist /s needs WMI the server may lack. A
wait that ends first leaves the run record, and the next run polls again from it; update.exe is
never started twice.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import dataclasses
import math
import re
import threading
import typing as t
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ._builds import Build
from ._kms import KMS_SERVICE
from ._poll import SYSTEM_CLOCK, Clock, PollStalled, PollTimeout, poll_until
from ._probe import ProbeError, split_sections
from ._reach import Reach, remote_of
from ._service import ServiceControl, ServiceError
from ._servicepack_plan import (
    HostReadings,
    LogDetails,
    Refusal,
    RunCase,
    RunRecord,
    ServicePackError,
    SpOutcome,
    SpPlan,
    classify,
    decide_install,
    describe,
    kms_is_open,
    log_tail,
    moved_since,
    start_type_changes,
    supporting_notes,
    update_exe_path,
    watched_services,
)
from ._servicepack_probe import (
    CONSOLE_BATCH,
    SC_START_WORDS,
    OpenShell,
    PollReading,
    ShellLike,
    bin_folder,
    console_batch_command,
    console_folder,
    marker_folder,
    net_time_command,
    poll_command,
    poll_reading_from,
    read_details,
    read_host,
    refuse_unreachable,
    run_record_command,
    run_record_delete_command,
    run_record_path,
    runs_appended,
    schedule_command,
    update_command,
)
from ._winout import ParseError, ServerClock, parse_at_added, parse_net_time
from ._winrs import CommandOutput, WinrsError

READ_TIMEOUT_S = 300
# Launch modes for a server behind a jump host (the module's `launch`).
LAUNCH_OPERATOR = "operator"
LAUNCH_AT = "at_interactive"
# Seconds ahead of the server's clock an `at` job is due, at least: time to reach the console.
AT_LEAD_S = 60
# A folder on a drive of the server itself ("D:\\EXCH55SP3"), not a network path.
_LOCAL_PATH = re.compile(r"[A-Za-z]:\\")
# Polls that may fail in a row while update.exe's own connection is lost, before giving up.
LOST_POLL_ATTEMPTS = 3
# Seconds a stop or a start of one Exchange service may take (sc polled until it settles).
SERVICE_TIMEOUT_S = 300
ControlFactory = t.Callable[[ShellLike, str], ServiceControl]
# Outcomes under which update.exe still runs: nothing is judged, restarted or started then.
_UPDATE_RUNS = ("still_running", "waiting_for_input")


# ---------------------------------------------------------------------------------------------
# The run


@dataclass(frozen=True)
class Options:
    media: str
    build: Build | None
    arguments: tuple[str, ...]
    success_exit_codes: tuple[int, ...]
    timeout: int
    poll_interval: int
    progress_interval: int
    check_mode: bool = False
    # The build that last ran the KM database (KB Q259906), when the caller knows it.
    kms_database_build: Build | None = None
    # The operator's statement of the build the media installs (None: update.exe's version).
    media_build: Build | None = None
    no_progress_timeout: int = 900
    # Through a jump host: who starts update.exe (LAUNCH_OPERATOR: a person at the server's
    # console; LAUNCH_AT: an `at /interactive` job on its desktop), and, for an installer the
    # module did not start, how long the setup log and BIN must stay unchanged once the versions
    # moved.
    launch: str = LAUNCH_OPERATOR
    quiet_period: int = 120
    # Only finish the run an earlier task left (its run record); without one, change nothing.
    resume_only: bool = False


@dataclass
class Report:
    """What the action returns (see RETURN in plugins/modules/exchange_service_pack.py)."""

    outcome: str
    remedy: str
    changed: bool
    media_build: str | None
    build_before: str | None
    kms_binary_before: str | None
    media_build_from: str | None = None
    store_before: str | None = None
    build_after: str | None = None
    kms_binary_after: str | None = None
    store_after: str | None = None
    decided_by: list[str] = field(default_factory=list)
    services_stopped: list[str] = field(default_factory=list)
    services_started: list[str] = field(default_factory=list)
    setup_log_tail: list[str] = field(default_factory=list)
    start_types_changed: dict[str, dict[str, t.Any]] = field(default_factory=dict)
    exit_code: int | None = None
    update_pid: int | None = None
    failed: bool = False
    message: str = ""
    warnings: list[str] = field(default_factory=list)

    def result(self) -> dict[str, t.Any]:
        return {
            "outcome": self.outcome,
            "remedy": self.remedy,
            "changed": self.changed,
            "media_build": self.media_build,
            "media_build_from": self.media_build_from,
            "build_before": self.build_before,
            "build_after": self.build_after,
            "kms_binary_before": self.kms_binary_before,
            "kms_binary_after": self.kms_binary_after,
            "store_version_before": self.store_before,
            "store_version_after": self.store_after,
            "decided_by": self.decided_by,
            "services_stopped": self.services_stopped,
            "services_started": self.services_started,
            "setup_log_tail": self.setup_log_tail,
            "start_types_changed": self.start_types_changed,
            "exit_code": self.exit_code,
            "update_pid": self.update_pid,
        }


def _text(build: Build | None) -> str | None:
    return None if build is None else str(build)


def media_statement(
    readings: HostReadings, stated: Build | None
) -> tuple[HostReadings, str | None, str]:
    """The readings the plan judges, with the operator's statement of the media's build; where
    the build came from; and the warning that says so. Audit U2: no source ties update.exe's
    file version, or anything else on a kit, to the build it installs, so the statement decides
    (without one the plan refuses, `media_build_unstated`); update.exe's version can only make
    the plan refuse (`media_build_disputed`), never choose a build."""
    if stated is None:
        return readings, None, ""
    warning = (
        f"the media's build {describe(stated)} is the operator's statement (media_build); no "
        "source gives a way to read it from the kit, and the outcome is proven from the versions "
        "afterwards."
    )
    return (
        dataclasses.replace(readings, stated_media_build=stated),
        "operator statement",
        warning,
    )


def _kms(name: str) -> bool:
    return name.upper() == KMS_SERVICE.upper()


def bring_back_text(stopped: t.Sequence[str]) -> str:
    """How to start again, in order, the services a run stopped (MSExchangeKMS apart)."""
    others = [name for name in reversed(stopped) if not _kms(name)]
    if not others:
        return "No Exchange service was stopped by this module."
    return (
        f"Services this module stopped: {', '.join(stopped)}. Once update.exe has ended, run "
        "this task again to start them, or start them yourself in this order: "
        + ", then ".join(f"sc start {name}" for name in others)
        + f". Start {KMS_SERVICE} only once the service pack is proven in place, with its "
        "startup password (exchops.kms.exchange_service)."
    )


@dataclass
class _RunnerResult:
    output: CommandOutput | None = None
    error: BaseException | None = None


def _run_update(shell: ShellLike, command: str, result: _RunnerResult) -> None:
    try:
        result.output = shell.run(command)
    # The thread's edge: whatever ends the run is handed to the job, which reports it.
    except Exception as exc:  # pylint: disable=broad-exception-caught
        result.error = exc


@dataclass(frozen=True)
class Waited:
    exit_code: int | None
    lost: bool
    still_running: bool
    process_running: bool | None
    last_poll: PollReading | None
    error: str | None = None  # what ended the connection to update.exe
    # update.exe is known to have ended: its command returned, or polls saw the run end.
    ended: bool = False
    stalled_for: int | None = None  # no progress for this long while update.exe ran
    # update.exe at the server's console: what shows its end (RunCase.console_end).
    console_end: str | None = None


def format_elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class _Poller:
    """Polls the host through its own shell; reopens a NEW shell after a failure."""

    def __init__(
        self,
        open_shell: OpenShell,
        log_path: str,
        log_size: int,
        binaries: str | None,
        reach: Reach | None = None,
        markers: bool = False,
    ) -> None:
        self._open_shell = open_shell
        self._log_path = log_path
        self._log_size = log_size
        self._binaries = binaries
        self._reach = reach
        self._markers = markers
        self._stack = ExitStack()
        self._shell: ShellLike | None = None
        self.failures = 0
        self.last_error: str | None = None

    def poll(self, command_timeout: int) -> PollReading | None:
        try:
            if self._shell is None:
                self._shell = self._stack.enter_context(self._open_shell(command_timeout))
            remote = remote_of(self._reach)
            output = self._shell.run(
                poll_command(self._log_path, self._binaries, remote, self._markers)
            )
            sections = split_sections(output.stdout)
            refuse_unreachable(self._reach, sections)
            reading = poll_reading_from(sections, self._log_size)
        except (WinrsError, ProbeError, ParseError, ServicePackError) as exc:
            self.failures += 1
            self.last_error = str(exc)
            self.close()
            return None
        self.failures = 0
        return reading

    def close(self) -> None:
        self._shell = None
        self._stack.close()


def _over(waited: Waited | None) -> bool:
    return waited is not None


class _Watch:
    """The wait for update.exe: its worker thread, the polls of the host and the progress lines.
    `look()` is one reading of `poll_until`: how the wait ended, or None while it goes on. Until
    the connection to update.exe is lost, polls only show progress (one failure stops them); after,
    only polls can tell that update.exe ended, through new shells."""

    def __init__(
        self,
        job: ServicePackJob,
        runner: threading.Thread,
        result: _RunnerResult,
        details: LogDetails,
        binaries: str | None,
    ) -> None:
        self.job, self.runner, self.result = job, runner, result
        self.poller = _Poller(job.open_shell, details.path, details.size, binaries, job.reach)
        self.start = job.clock.now()
        self.deadline = self.start + job.options.timeout
        self.next_poll = self.start + job.options.poll_interval
        self.next_progress = self.start + job.options.progress_interval
        self.phase = "update.exe running"
        self.last_poll: PollReading | None = None
        self.lost = False
        self.polling = True
        self.idle_polls = 0

    def look(self) -> Waited | None:
        if not self.runner.is_alive() and not self.lost:
            if self.result.output is not None:
                return Waited(
                    self.result.output.exit_code,
                    lost=False,
                    still_running=False,
                    process_running=False,
                    last_poll=self.last_poll,
                    ended=True,
                )
            self._lose()
        now = self.job.clock.now()
        if now >= self.deadline or now < self.next_poll or not (self.polling or self.lost):
            return None
        waited = self._poll(max(60, int(self.deadline - now) + 30))
        self.next_poll = self.job.clock.now() + self.job.options.poll_interval
        return waited

    def progress(self, _waited: Waited | None) -> t.Hashable:
        return None if self.last_poll is None else self.last_poll.progress

    def stall_limit(self, _waited: Waited | None) -> float:
        """No progress ends the wait only while polls see update.exe running."""
        if self.last_poll is None or self.last_poll.process_running is not True:
            return math.inf
        return float(self.job.options.no_progress_timeout)

    def _lose(self) -> None:
        self.lost, self.phase = True, "connection to update.exe lost, polling the host"
        self.job.say(
            f"{self.job.host}: lost the connection to update.exe ({self.result.error}); "
            "update.exe is not started again: polling the setup log and the process "
            "through a new shell"
        )
        self.next_poll = self.job.clock.now()

    def _poll(self, command_timeout: int) -> Waited | None:
        reading = self.poller.poll(command_timeout)
        if reading is None:
            if not self.lost:
                self.polling = False  # progress only: do not keep opening shells
                self.job.verbose(f"{self.job.host}: polling stopped: {self.poller.last_error}")
            elif self.poller.failures >= LOST_POLL_ATTEMPTS:
                return Waited(
                    None,
                    lost=True,
                    still_running=False,
                    process_running=None,
                    last_poll=self.last_poll,
                    error=self.poller.last_error,
                )
            return None
        self.last_poll = reading
        if self.lost:
            ended, self.idle_polls = _ended_while_lost(reading, self.idle_polls)
            if ended:
                return Waited(
                    None,
                    lost=True,
                    still_running=False,
                    process_running=reading.process_running,
                    last_poll=reading,
                    error=_error(self.result),
                    ended=True,
                )
        return None

    def timed_out(self, stalled_for: int | None = None) -> Waited:
        running = self.last_poll.process_running if self.last_poll else None
        # Without a lost connection, update.exe's command has not returned: it runs.
        still = not self.lost or running is not False
        return Waited(
            None,
            lost=self.lost,
            still_running=still,
            process_running=running,
            last_poll=self.last_poll,
            error=_error(self.result),
            ended=not still,
            stalled_for=stalled_for,
        )

    def pause(self, _pauses: int, remaining: float) -> float:
        """Until the next poll or progress line, or the timeout; never more than 5 s."""
        wake = min(
            self.next_progress, self.next_poll if self.polling or self.lost else self.deadline
        )
        return max(0.0, min(wake - self.job.clock.now(), remaining, 5.0))

    def show_progress(self, _waited: Waited | None, _seconds: float) -> None:
        now = self.job.clock.now()
        if now < self.next_progress:
            return
        last_poll = self.last_poll
        line = last_poll.last_line if last_poll and last_poll.last_line else "nothing new yet"
        self.job.say(
            f"{self.job.host}: {format_elapsed(now - self.start)} elapsed, {self.phase}"
            f"{_process_seen(last_poll)}; setup log: {line}"
        )
        while self.next_progress <= now:
            self.next_progress += self.job.options.progress_interval

    def close(self) -> None:
        self.poller.close()


class _ConsoleWatch:
    """The wait for update.exe at the server's console, behind a jump host. `look()` polls the
    setup log and the BIN folder through the jump host (a failed poll opens a new shell: nothing
    of that installer lives in the jump host's shells). Launch mode operator: once both were
    unchanged for `quiet_period` seconds it reads the versions, and the wait ends when they moved
    from the run record's. at_interactive: the wait ends when the job's batch made its
    `finished` marker folder. It ends unseen at the timeout, or when LOST_POLL_ATTEMPTS polls in a
    row failed."""

    def __init__(
        self, job: ServicePackJob, record: RunRecord, details: LogDetails, binaries: str | None
    ) -> None:
        self.job, self.record = job, record
        self.scheduled = record.launch == LAUNCH_AT
        self.poller = _Poller(
            job.open_shell, details.path, details.size, binaries, job.reach, self.scheduled
        )
        self.quiet = job.options.quiet_period
        self.finished = marker_folder(details.path, record.run_id, "finished")
        self.started_marker = marker_folder(details.path, record.run_id, "started")
        self.end = (
            f"its batch made the folder {self.finished}"
            if self.scheduled
            else f"the versions moved, and the setup log and the Exchange BIN folder were "
            f"unchanged for {self.quiet} s"
        )
        self.start = job.clock.now()
        self.next_poll = self.start
        self.next_progress = self.start + job.options.progress_interval
        self.quiet_since = self.start
        self.next_versions = self.start
        self.last_poll: PollReading | None = None
        self.moved = False

    def look(self) -> Waited | None:
        job = self.job
        now = job.clock.now()
        if now < self.next_poll:
            return None
        reading = self.poller.poll(READ_TIMEOUT_S)
        self.next_poll = job.clock.now() + job.options.poll_interval
        if reading is None:
            job.verbose(
                f"{job.host}: a poll through the jump host failed: {self.poller.last_error}"
            )
            return self.not_seen() if self.poller.failures >= LOST_POLL_ATTEMPTS else None
        if self.last_poll is None or _files_seen(reading) != _files_seen(self.last_poll):
            self.quiet_since = now
        self.last_poll = reading
        if self.scheduled:
            return self._ended(reading) if self._marker(reading, self.finished) else None
        if now - self.quiet_since < self.quiet:
            return None
        if not self.moved and now >= self.next_versions:
            self.moved = self._versions_moved()
            self.next_versions = now + self.quiet
        return self._ended(reading) if self.moved else None

    def _ended(self, reading: PollReading) -> Waited:
        return Waited(
            None,
            lost=False,
            still_running=False,
            process_running=reading.process_running,
            last_poll=reading,
            ended=True,
            console_end=self.end,
        )

    @staticmethod
    def _marker(reading: PollReading | None, path: str) -> bool:
        markers = reading.markers if reading else None
        return bool(markers) and path.rsplit("\\", 1)[-1].upper() in t.cast(frozenset, markers)

    def _versions_moved(self) -> bool:
        # One shell on the jump host at a time (its max_shells slots): the next poll reopens.
        self.poller.close()
        try:
            with self.job.open_shell(READ_TIMEOUT_S) as shell:
                after = read_host(shell, self.job.options.media, self.job.reach)
        except (WinrsError, ServicePackError) as exc:
            self.job.verbose(f"{self.job.host}: reading the versions failed: {exc}")
            return False
        return moved_since(self.record, after)

    def not_seen(self) -> Waited:
        """The wait ended before the installer's end was seen."""
        lost = self.poller.failures >= LOST_POLL_ATTEMPTS
        return Waited(
            None,
            lost=lost,
            still_running=True,
            process_running=None,
            last_poll=self.last_poll,
            error=self.poller.last_error if lost else None,
            console_end=self.end,
        )

    def pause(self, _pauses: int, remaining: float) -> float:
        wake = min(self.next_poll, self.next_progress)
        return max(0.0, min(wake - self.job.clock.now(), remaining, 5.0))

    def show_progress(self, _waited: Waited | None, _seconds: float) -> None:
        job = self.job
        now = job.clock.now()
        if now < self.next_progress:
            return
        last = self.last_poll
        line = last.last_line if last and last.last_line else "nothing new yet"
        if self.scheduled:
            state = "started" if self._marker(last, self.started_marker) else "not started yet"
            seen = f"the at job's batch: {state}"
        else:
            seen = f"versions {'moved, waiting for quiet' if self.moved else 'not moved yet'}"
        job.say(
            f"{job.host}: {format_elapsed(now - self.start)} elapsed, waiting for update.exe at "
            f"{job.remote}'s console; {seen}; setup log: {line}"
        )
        while self.next_progress <= now:
            self.next_progress += job.options.progress_interval

    def close(self) -> None:
        self.poller.close()


def _files_seen(reading: PollReading) -> t.Hashable:
    """What the installer at the console changes: the setup log and the BIN folder (never the
    process list: tasklist /s needs WMI the server may lack)."""
    return (reading.log_length, reading.binaries)


class ServicePackJob:
    """One host's service pack run, through shells from `open_shell(command_timeout_s)`.
    `say` shows progress to the operator; `verbose` logs steps (-vv)."""

    def __init__(
        self,
        host: str,
        open_shell: OpenShell,
        options: Options,
        say: t.Callable[[str], None],
        verbose: t.Callable[[str], None],
        clock: Clock = SYSTEM_CLOCK,
        control: ControlFactory | None = None,
        reach: Reach | None = None,
    ) -> None:
        """`control(shell, name)` drives one service (default: `_service.ServiceControl`).
        `reach` says where the shells run when that is not the host: on its jump host, whose
        commands then name the server."""
        self.host = host
        self.remote = remote_of(reach)
        self.reach = reach if self.remote else None
        self.open_shell = open_shell
        self.options = options
        self.say = say
        self.verbose = verbose
        self.clock = clock
        self._control_factory = control

    # -- the whole task ------------------------------------------------------------------------

    def run(self) -> Report:
        options = self.options
        with self.open_shell(READ_TIMEOUT_S) as shell:
            read = read_host(shell, options.media, self.reach)
            details = None
            # Only where this module may run update.exe at all (4.0 - 2003, see INSTALL_RULES).
            server = read.server_build
            if server is not None and server.major < 8 and read.install_path:
                # The setup log's size now (only what the run appends is read later), the run
                # record of an earlier run, and the services the Exchange services depend on.
                details = read_details(shell, read, with_log_text=False, reach=self.reach)
            before, media_from, media_note = media_statement(read, options.media_build)
            base = Report(
                outcome="refused",
                remedy="",
                changed=False,
                media_build=_text(before.stated_media_build),
                build_before=_text(before.server_build),
                kms_binary_before=_text(before.kms_binary),
                media_build_from=media_from,
                store_before=_text(before.store_version),
                warnings=list(before.warnings) + ([media_note] if media_note else []),
            )
            earlier = details.record if details is not None else None
            if options.resume_only and earlier is None:
                return _unchanged(
                    base,
                    "None: no earlier run of this module left a run record; update.exe was not run.",
                    "run record: none",
                )
            if earlier is not None and options.check_mode and options.resume_only:
                base.outcome, base.changed = "not_run", True
                base.remedy = (
                    "Run without check mode to finish the earlier run of this module: judge the "
                    "versions once update.exe has ended, then start the services it stopped "
                    f"({', '.join(earlier.stopped) or 'none'}) again."
                )
                return base
            if details is not None and earlier is not None and not options.check_mode:
                if self.remote:
                    return self._resume_at_console(base, before, details, earlier)
                return self._resume(shell, base, before, details, earlier)
            self._refuse_a_kit_off_the_server(base)
            try:
                decision = decide_install(
                    before,
                    options.media,
                    options.build,
                    kms_may_run=options.check_mode,
                    database=options.kms_database_build,
                )
            except Refusal as exc:
                base.remedy = str(exc)
                raise Refusal(str(exc), base.result()) from None
            if not decision.install:
                return _unchanged(
                    base,
                    f"None: {decision.reason}; update.exe was not run.",
                    f"plan: {decision.reason}",
                )
            if details is None:
                raise ServicePackError("no Exchange install path to find the setup log under.")
            if options.check_mode:
                return self._predict(base, before, decision)
            stopped = self._stop_services(shell, base, before)
            if base.failed:
                return base
            record = RunRecord(
                decision.media_build,
                tuple(stopped),
                before.kms_binary,
                before.server_build,
                before.store_version,
                launch=options.launch if self.remote else "",
                run_id=_run_id() if self.remote and options.launch == LAUNCH_AT else "",
            )
            shell.run(run_record_command(details.path, record, self.remote))
        if self.remote:
            if record.launch == LAUNCH_AT and not self._schedule(base, record, details):
                return base
            waited = self._wait_at_console(record, details, before.install_path)
            return self._after(base, before, details, record, waited)
        if before.update_pids is None:
            base.warnings.append(
                "tasklist is not available on this host, so an update.exe that is already "
                "running cannot be seen, and a run that waits for input cannot be told apart "
                "from one that works; make sure no service pack setup runs there."
            )
        command = update_command(options.media, options.arguments)
        self.verbose(f"{self.host}: {decision.reason}; running {command}")
        waited = self._install(decision, details, before)
        return self._after(base, before, details, record, waited)

    def _refuse_a_kit_off_the_server(self, base: Report) -> None:
        """Through a jump host, media must be a folder on a drive of the server: update.exe's
        version is read there with `wmic /node:` datafile, which names the server's own files
        (docs/windows-output.md#wmi-classes), and an at job runs it as SYSTEM, which has no network
        credentials (KB Q105995 [I]). Any other path is refused, nothing changed."""
        media = self.options.media
        if self.remote is None or _LOCAL_PATH.match(media):
            return
        base.remedy = (
            f"media {media} is not a folder on a drive of {self.remote}: through a jump host "
            "update.exe's version is read on the server's own disks (wmic datafile), and an at "
            "job runs update.exe as SYSTEM, which cannot read a network path or another "
            f"session's mapped drive (KB Q105995). Copy the kit to {self.remote}'s disk (e.g. "
            f"\\\\{self.remote}\\C$\\EXCH55SP3) and set media to that folder as the server "
            "sees it (C:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386)."
        )
        raise Refusal(base.remedy, base.result())

    def _predict(self, base: Report, before: HostReadings, decision: SpPlan) -> Report:
        """Check mode: what a run would do, with nothing changed."""
        if kms_is_open(before):
            base.warnings.append(
                f"{KMS_SERVICE} is {before.kms_state.replace('_', ' ')}: a run without check "
                f"mode refuses until it is stopped (exchops.kms.kms_remediate stops it "
                "after the backup)."
            )
        if before.update_pids is None and self.remote is None:
            base.warnings.append(
                "tasklist is not available on this host, so an update.exe that is already "
                "running cannot be seen; make sure no service pack setup runs there."
            )
        base.outcome, base.changed = "not_run", True
        base.remedy = (
            f"Run without check mode to stop the Exchange services and install "
            f"{describe(decision.media_build)}: {decision.reason}."
        )
        if self.remote:
            how = (
                "an at job starts it on the console's desktop, where an operator answers it"
                if self.options.launch == LAUNCH_AT
                else "an operator at the console runs it"
            )
            base.remedy += (
                f" Through {t.cast(Reach, self.reach).via}: {update_exe_path(self.options.media)} "
                f"on {self.remote}, {how} (launch mode {self.options.launch})."
            )
        base.build_after = str(decision.media_build)
        base.kms_binary_after = base.kms_binary_before
        return base

    # -- the Exchange services -----------------------------------------------------------------

    def _control(self, shell: ShellLike, name: str) -> ServiceControl:
        if self._control_factory is not None:
            return self._control_factory(shell, name)
        return ServiceControl(
            shell.run,
            name,
            watch=0,
            timeout=SERVICE_TIMEOUT_S,
            clock=self.clock,
            log=lambda message: self.verbose(f"{self.host}: {message}"),
            reach=self.reach,
        )

    def _stop_services(self, shell: ShellLike, report: Report, before: HostReadings) -> list[str]:
        """Stop every running Exchange service, each one's dependents first (KB Q235978:
        "Stop all Exchange Server services"; Q177221). Returns them in the order stopped; on a
        failure, starts them again and marks the report failed (update.exe does not run)."""
        stopped: list[str] = []
        try:
            for name in before.exchange_services:
                if name in stopped:
                    continue
                control = self._control(shell, name)
                control.stop()
                stopped.extend(
                    n for n in control.progress.dependents_stopped or [] if n not in stopped
                )
                if control.progress.previous_state not in (None, "stopped"):
                    stopped.append(name)
        except (ServiceError, WinrsError, ProbeError, ParseError) as exc:
            report.changed = bool(stopped)
            started, problems = self._start_again(shell, stopped)
            report.services_stopped, report.services_started = stopped, started
            report.outcome, report.failed = "failed", True
            report.remedy = "Make the Exchange services stoppable, then run this task again."
            again = (
                f"Started again: {', '.join(started) or 'none'}."
                if stopped
                else "Nothing was changed."
            )
            report.message = (
                f"could not stop the Exchange services before the service pack: {exc} "
                f"update.exe was not run. {again}" + (" " + " ".join(problems) if problems else "")
            )
            return stopped
        report.changed = True
        report.services_stopped = stopped
        self.verbose(f"{self.host}: stopped {', '.join(stopped) or 'no running service'}")
        return stopped

    def _start_again(
        self, shell: ShellLike, stopped: t.Sequence[str]
    ) -> tuple[list[str], list[str]]:
        """Start the services a run stopped, in reverse order, all but MSExchangeKMS (it starts
        only after a proven success, with its startup password). Returns those started and the
        problems, each a sentence; a service already running (Setup restarted it) is left."""
        started: list[str] = []
        problems: list[str] = []
        for name in reversed(stopped):
            if _kms(name):
                continue
            control = self._control(shell, name)
            try:
                status, _config = control.read()
                if status.state == "running":
                    continue
                control.start()
                started.append(name)
            except (ServiceError, WinrsError, ProbeError, ParseError) as exc:
                problems.append(f"{name} did not start again: {exc} Start it with sc start {name}.")
        return started, problems

    # -- running update.exe --------------------------------------------------------------------

    def _install(self, decision: SpPlan, details: LogDetails, before: HostReadings) -> Waited:
        options = self.options
        command = update_command(options.media, options.arguments)
        result = _RunnerResult()
        stack = ExitStack()
        # Opening the shell may fail (unreachable): update.exe has not started then.
        shell = stack.enter_context(
            self.open_shell(options.timeout + 2 * options.poll_interval + 120)
        )
        runner = threading.Thread(
            target=_run_update,
            args=(shell, command, result),
            name=f"exchops-update-{self.host}",
            daemon=True,
        )
        runner.start()
        binaries = bin_folder(before.install_path) if before.install_path else None
        waited = self._wait(runner, result, decision, details, binaries)
        if waited.ended:
            stack.close()
        else:
            # Deleting the shell would end an update.exe that may still run in it: leave the
            # shell to its idle timeout.
            stack.pop_all()
        return waited

    def _wait(
        self,
        runner: threading.Thread,
        result: _RunnerResult,
        decision: SpPlan,
        details: LogDetails,
        binaries: str | None,
    ) -> Waited:
        options = self.options
        self.say(
            f"{self.host}: starting update.exe from {options.media} to install "
            f"{describe(decision.media_build)} (timeout {options.timeout} s, no progress for "
            f"{options.no_progress_timeout} s ends the wait)"
        )
        watch = _Watch(self, runner, result, details, binaries)
        try:
            waited = poll_until(
                watch.look,
                _over,
                first=watch.look(),
                timeout=options.timeout,
                interval=watch.pause,
                # A pause ends as soon as update.exe's command returns.
                clock=self.clock.woken_by(runner),
                on_wait=watch.show_progress,
                progress=watch.progress,
                stall_limit=watch.stall_limit,
            )
        except PollTimeout:
            return watch.timed_out()
        except PollStalled as stalled:
            return watch.timed_out(stalled_for=int(stalled.limit))
        finally:
            watch.close()
        return t.cast(Waited, waited)

    # -- after the run -------------------------------------------------------------------------

    def _case(
        self,
        record: RunRecord,
        waited: Waited,
        runs: t.Sequence[t.Any],
        after: HostReadings | None,
    ) -> RunCase:
        """The case `classify` judges; RECORD holds the media's build and the versions before
        the run (`_resume` leaves out those it never used)."""
        last = waited.last_poll
        return RunCase(
            media_build=record.media_build,
            exit_code=waited.exit_code,
            success_exit_codes=self.options.success_exit_codes,
            runs=runs,
            still_running=waited.still_running,
            process_running=waited.process_running,
            after=after,
            stalled=waited.stalled_for is not None,
            stalled_for=waited.stalled_for or 0,
            update_pid=last.update_pid if last else None,
            kms_before=record.kms_before,
            database=self.options.kms_database_build,
            build_before=record.build_before,
            store_before=record.store_before,
            console_end=waited.console_end,
        )

    def _after(
        self,
        base: Report,
        before: HostReadings,
        details: LogDetails,
        record: RunRecord,
        waited: Waited,
    ) -> Report:
        report = base
        report.exit_code = waited.exit_code
        if waited.still_running:
            runs = waited.last_poll.runs if waited.last_poll else ()
            case = self._case(record, waited, runs, None)
            report = self._update_runs(
                report, classify(case), runs, report.services_stopped, case.update_pid
            )
            if waited.console_end is not None and waited.error:
                report.message += (
                    f" The last {LOST_POLL_ATTEMPTS} polls through the jump host failed, the "
                    f"last with: {waited.error}"
                )
            return report
        after, after_details, shell_error = self._read_after(before)
        if after is None or after_details is None:
            return _not_read_after(report, shell_error)
        runs = runs_appended(after_details.text, details.size)
        case = self._case(record, waited, runs, after)
        outcome = classify(case)
        notes = supporting_notes(case)
        report.warnings.extend(notes)
        if waited.lost:
            report.warnings.append(
                f"the connection to update.exe was lost ({waited.error}); its end and the "
                "versions were read through a new shell."
            )
        report = self._ended(report, outcome, runs, after, before, details)
        if report.failed and notes:
            # A failed task's warnings are not shown: the message carries them.
            report.message += " Supporting readings, which decided nothing: " + " ".join(notes)
        return report

    def _ended(
        self,
        report: Report,
        outcome: SpOutcome,
        runs: t.Sequence[t.Any],
        after: HostReadings,
        before: HostReadings,
        details: LogDetails,
    ) -> Report:
        """update.exe has ended (or still runs: then nothing is touched): the outcome, the
        services started again, the run record removed, start type changes reported."""
        if outcome.outcome in _UPDATE_RUNS:
            return self._update_runs(report, outcome, runs, report.services_stopped)
        self._fill(report, outcome, runs, after)
        self._report_start_types(report, before, details, after)
        problems = self._finish(report, details.path, report.services_stopped)
        if outcome.outcome not in ("ok", "ok_reboot_required"):
            report.failed = True
            report.message = (
                f"update.exe from {self.options.media} ended and the service pack is not proven "
                f"in place (outcome {outcome.outcome}): {outcome.detail} {outcome.remedy} "
                f"{KMS_SERVICE} was not started."
            )
        if problems:
            report.failed = True
            report.message = f"{report.message} {' '.join(problems)}".strip()
        return report

    def _fill(
        self, report: Report, outcome: SpOutcome, runs: t.Sequence[t.Any], after: HostReadings
    ) -> None:
        report.outcome, report.remedy = outcome.outcome, outcome.remedy
        report.decided_by = list(outcome.decided_by)
        report.setup_log_tail = log_tail(runs)
        report.build_after = _text(after.server_build)
        report.kms_binary_after = _text(after.kms_binary)
        report.store_after = _text(after.store_version)

    def _finish(self, report: Report, log_path: str, stopped: t.Sequence[str]) -> list[str]:
        """Start again what this run (or the earlier run of the record) stopped, all but
        MSExchangeKMS, and remove the run record. Returns the problems, each a sentence."""
        try:
            with self.open_shell(READ_TIMEOUT_S) as shell:
                started, problems = self._start_again(shell, stopped)
                report.services_started = started
                if not problems:
                    shell.run(run_record_delete_command(log_path, self.remote))
        except WinrsError as exc:
            problems = [
                f"starting the Exchange services again failed: {exc}. {bring_back_text(stopped)}"
            ]
        if started_any := report.services_started:
            self.verbose(f"{self.host}: started {', '.join(started_any)} again")
        return problems

    def _update_runs(
        self,
        report: Report,
        outcome: SpOutcome,
        runs: t.Sequence[t.Any],
        stopped: t.Sequence[str],
        pid: int | None = None,
    ) -> Report:
        """update.exe still runs: nothing is judged, restarted or started; say exactly what was
        stopped and how to bring it back."""
        report.outcome, report.remedy = outcome.outcome, outcome.remedy
        report.decided_by = list(outcome.decided_by)
        report.setup_log_tail = log_tail(runs)
        report.update_pid = pid
        report.failed = True
        if outcome.rule == "console_not_done":
            report.message = (
                f"the service pack was not seen installed at {self.remote}'s console within "
                f"{self.options.timeout} s: {outcome.detail} {outcome.remedy} "
                f"{bring_back_text(stopped)}"
            )
            return report
        waited = (
            f"made no progress for {self.options.no_progress_timeout} s"
            if outcome.outcome == "waiting_for_input"
            else f"did not end within {self.options.timeout} s"
        )
        report.message = (
            f"update.exe from {self.options.media} still runs and {waited}: {outcome.detail} "
            f"{outcome.remedy} {bring_back_text(stopped)}"
        )
        return report

    def _resume(
        self,
        shell: ShellLike,
        base: Report,
        before: HostReadings,
        details: LogDetails,
        record: RunRecord,
    ) -> Report:
        """An earlier run left its record: judge how its update.exe ended, once it has."""
        base.changed = False
        base.media_build = str(record.media_build)
        base.media_build_from = "run record of an earlier run"
        base.services_stopped = list(record.stopped)
        pids = before.update_pids
        waited = Waited(
            None,
            lost=False,
            still_running=pids is None or bool(pids),
            process_running=None if pids is None else bool(pids),
            last_poll=PollReading(bool(pids), (), pids[0] if pids else None) if pids else None,
            ended=pids == (),
        )
        # As before the records held them: the registry and Store.exe before the run unknown.
        known = dataclasses.replace(record, build_before=None, store_before=None)
        case = self._case(known, waited, (), None if waited.still_running else before)
        outcome = classify(case)
        if outcome.outcome in _UPDATE_RUNS:
            report = self._update_runs(base, outcome, (), record.stopped, pids[0] if pids else None)
            report.message = (
                "an earlier run of this module started update.exe, which "
                + ("still runs" if pids else "may still run (tasklist is not available)")
                + f"; nothing was restarted. {outcome.remedy} {bring_back_text(record.stopped)}"
            )
            if pids is None:
                # Without tasklist no later run can see update.exe end either: say how to go on.
                report.message += (
                    " Without tasklist this module cannot see update.exe end: once the server's "
                    "Task Manager lists no update.exe, delete the run record "
                    f"{run_record_path(details.path)} and run again; the versions then decide."
                )
            return report
        base.changed = True
        return self._ended(base, outcome, (), before, before, details)

    # -- behind a jump host: update.exe at the server's console ------------------------------

    def _schedule(self, base: Report, record: RunRecord, details: LogDetails) -> bool:
        """Launch mode at_interactive: write the batch over the admin share, read the server's
        clock and add the `at` job that runs the batch on the console's desktop a minute or two
        ahead. False, with BASE failed, the services started again and the run record removed,
        when any of it fails: update.exe was not started then."""
        remote, options = t.cast(str, self.remote), self.options
        try:
            with self.open_shell(READ_TIMEOUT_S) as shell:
                written = shell.run(
                    console_batch_command(
                        details.path, options.media, options.arguments, record.run_id, remote
                    )
                )
                if written.exit_code != 0:
                    raise ServicePackError(
                        f"writing {console_folder(details.path)}\\{CONSOLE_BATCH} over the "
                        f"admin share failed: {(written.stderr or written.stdout).strip()}"
                    )
                answer = shell.run(net_time_command(remote))
                clock = parse_net_time(answer.stdout, answer.stderr, answer.exit_code)
                due = at_due(clock)
                added = shell.run(schedule_command(details.path, remote, due))
                job = parse_at_added(added.stdout, added.stderr, added.exit_code)
        except (WinrsError, ParseError, ServicePackError) as exc:
            problems = self._finish(base, details.path, record.stopped)
            base.outcome, base.failed = "failed", True
            base.remedy = (
                f"Start the Schedule service on {remote} (sc \\\\{remote} start Schedule) and "
                "run this task again, or use launch: operator."
            )
            base.message = " ".join(
                [
                    f"could not schedule update.exe on {remote}'s console through "
                    f"{t.cast(Reach, self.reach).via}: {exc}. update.exe was not started; the "
                    f"services this run stopped were started again "
                    f"({', '.join(base.services_started) or 'none'}).",
                    *problems,
                    base.remedy,
                ]
            )
            return False
        base.warnings.append(
            f"at job {job} on {remote} runs update.exe at {due} of its clock; to abandon the run "
            f"before then, delete it with `at \\\\{remote} {job} /delete`."
        )
        self.say(
            f"{self.host}: at job {job} runs {update_exe_path(options.media)} at {due} on "
            f"{remote}'s clock ({clock.line}), on the console's desktop."
        )
        return True

    def _wait_at_console(
        self, record: RunRecord, details: LogDetails, install_path: str | None
    ) -> Waited:
        options = self.options
        reach = t.cast(Reach, self.reach)
        stopped = ", ".join(record.stopped) or "none was running"
        binaries = bin_folder(install_path) if install_path else None
        watch = _ConsoleWatch(self, record, details, binaries)
        if watch.scheduled:
            start = (
                f"the at job starts {update_exe_path(options.media)} on the console's desktop; "
                f"follow its instructions on the screen to install {describe(record.media_build)}"
            )
        else:
            start = (
                f"run {update_exe_path(options.media)}, follow the instructions on the screen to "
                f"install {describe(record.media_build)}"
            )
        self.say(
            f"{self.host}: waiting for an operator at {self.remote}'s console (launch mode "
            f"{record.launch or options.launch}: update.exe has no documented unattended "
            f"switch, KB Q191013, and is never started in {reach.via}'s shells). Exchange "
            f"services stopped: {stopped}; {KMS_SERVICE} stays stopped. At {self.remote}'s "
            f"console, logged on as an administrator: {start}, and start no Exchange service. "
            f"This task polls the setup log, the Exchange BIN folder and the versions through "
            f"{reach.via} every {options.poll_interval} s and goes on once {watch.end} (timeout "
            f"{options.timeout} s)."
        )
        try:
            waited = poll_until(
                watch.look,
                _over,
                first=watch.look(),
                timeout=options.timeout,
                interval=watch.pause,
                clock=self.clock,
                on_wait=watch.show_progress,
            )
        except PollTimeout:
            return watch.not_seen()
        finally:
            watch.close()
        return t.cast(Waited, waited)

    def _resume_at_console(
        self, base: Report, before: HostReadings, details: LogDetails, record: RunRecord
    ) -> Report:
        """Through a jump host, an earlier run left its record: the operator may still be at the
        console, or done. Poll again from the record (update.exe is never started), then judge
        the versions and start the services again, as the first run would have."""
        base.media_build = str(record.media_build)
        base.media_build_from = "run record of an earlier run"
        base.services_stopped = list(record.stopped)
        waited = self._wait_at_console(record, details, before.install_path)
        base.changed = waited.ended
        return self._after(base, before, details, record, waited)

    def _read_after(
        self, before: HostReadings
    ) -> tuple[HostReadings | None, LogDetails | None, str | None]:
        """The host after the run, with the setup log's text; one retry through a new shell."""
        error = None
        for _attempt in range(2):
            try:
                with self.open_shell(READ_TIMEOUT_S) as shell:
                    after = read_host(shell, self.options.media, self.reach)
                    # The log stays where it was, even if Setup left the Setup key unreadable.
                    located = (
                        after if after.server_build is not None and after.install_path else before
                    )
                    details = read_details(shell, located, with_log_text=True, reach=self.reach)
                    return after, details, None
            except (WinrsError, ServicePackError) as exc:
                error = str(exc)
        return None, None, error

    def _report_start_types(
        self, report: Report, before: HostReadings, details: LogDetails, after: HostReadings
    ) -> None:
        """Start types that changed during the run: reported, never set back (docs/unsourced.md U10,
        _servicepack_plan "Start types")."""
        watched = watched_services(before, details)
        changes = start_type_changes(before.start_types, after.start_types, watched)
        for name, (old, new) in sorted(changes.items()):
            report.start_types_changed[name] = {"before": old, "after_setup": new}
        if changes:
            report.warnings.append(
                "start types changed during the service pack run: "
                + "; ".join(
                    f"{name} {old} -> {new}" for name, (old, new) in sorted(changes.items())
                )
                + ". They were not set back (Setup may have meant it, KB Q184420); if a change "
                "was not wanted, set it with "
                + ", ".join(
                    f"sc config {name} start= {SC_START_WORDS.get(old, old)}"
                    for name, (old, _new) in sorted(changes.items())
                )
                + "."
            )


def _run_id() -> str:
    """A name for one at_interactive run's marker folders: the controller's UTC time."""
    return datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")


def at_due(clock: ServerClock) -> str:
    """HH:MM of the server's clock at least AT_LEAD_S ahead, on a whole minute: an `at` job
    whose time has passed runs the next day
    (https://learn.microsoft.com/windows-server/administration/windows-commands/at)."""
    minutes = -(-(clock.seconds + AT_LEAD_S) // 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _unchanged(report: Report, remedy: str, decided_by: str) -> Report:
    """The host needs nothing of this run (already on the media's build, or no earlier run to
    finish): outcome ok, the versions after are those before, nothing changed."""
    report.outcome, report.changed = "ok", False
    report.remedy = remedy
    report.build_after, report.kms_binary_after = report.build_before, report.kms_binary_before
    report.store_after = report.store_before
    report.decided_by = [decided_by]
    return report


def _not_read_after(report: Report, shell_error: str | None) -> Report:
    report.outcome = "unknown"
    report.remedy = (
        "update.exe ended but the host could not be read afterwards. Check the versions with "
        "exchops.kms.exchange_facts and the setup log on the host, then run this task "
        "again; it runs nothing when the versions already match, and it starts the services it "
        "stopped again."
    )
    report.failed = True
    report.message = (
        f"update.exe ran, then reading the host failed: {shell_error}. {report.remedy} "
        f"{bring_back_text(report.services_stopped)}"
    )
    return report


def _error(result: _RunnerResult) -> str | None:
    return None if result.error is None else str(result.error)


def _process_seen(reading: PollReading | None) -> str:
    """What the last poll's tasklist said of update.exe, for the progress line."""
    if reading is None or reading.process_running is None:
        return ""
    return (
        " (tasklist: update.exe running)"
        if reading.process_running
        else (" (tasklist: no update.exe)")
    )


def _ended_while_lost(reading: PollReading, idle_polls: int) -> tuple[bool, int]:
    """After the connection to update.exe was lost: did it end? tasklist says so once something
    was appended to the log, or on a second look when nothing was (update.exe may not have
    started at all). Nothing in the log itself says that a run ended."""
    if reading.process_running is False:
        if reading.runs:
            return True, 0
        idle_polls += 1
        return idle_polls >= 2, idle_polls
    return False, 0
