# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reapplying an Exchange 5.5 / 2000 service pack from media the host can read
(exchops.kms.exchange_service_pack), safely and idempotently: the job that talks to the host.
What it asks the host and what the answers say is `_servicepack_probe`; what may run, and what a
run's evidence means, is decided in `_servicepack_plan` (no I/O).

`ServicePackJob` drives the run through shells it is handed (the action gives it `WinrsShell`s):
it reads the host, lets the plan decide, runs update.exe, reads the host again and sets back the
start types Exchange Setup changed (of the Exchange services and the services they depend on).
update.exe runs in its own shell on a worker thread while this thread polls the host through
another one and shows progress (`_poll.poll_until`; a pause ends early when update.exe's command
returns). If the connection of update.exe's shell is lost, the job polls through NEW shells (a
pywinrm session does not survive a dropped connection) and never starts update.exe again. That
shell is not deleted while update.exe may still run in it: deleting a WinRS shell ends the
processes it started.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import threading
import typing as t
from contextlib import ExitStack
from dataclasses import dataclass, field

from ._builds import Build
from ._kms import KMS_SERVICE
from ._poll import SYSTEM_CLOCK, Clock, PollTimeout, poll_until
from ._probe import ProbeError, split_sections
from ._servicepack_plan import (
    HostReadings,
    LogDetails,
    Refusal,
    ServicePackError,
    SpOutcome,
    SpPlan,
    classify,
    decide_install,
    describe,
    kms_is_open,
    log_tail,
    start_type_changes,
    verify,
    watched_services,
)
from ._servicepack_probe import (
    OpenShell,
    PollReading,
    ShellLike,
    poll_command,
    poll_reading_from,
    read_details,
    read_host,
    restore_command,
    restore_outcomes,
    runs_appended,
    update_command,
)
from ._winout import ParseError, ScFailure, SetupRun
from ._winrs import CommandOutput, WinrsError

READ_TIMEOUT_S = 300
# Polls that may fail in a row while update.exe's own connection is lost, before giving up.
LOST_POLL_ATTEMPTS = 3


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


@dataclass
class Report:
    """What the action returns (see RETURN in plugins/modules/exchange_service_pack.py)."""

    outcome: str
    remedy: str
    changed: bool
    media_build: str | None
    build_before: str | None
    kms_binary_before: str | None
    build_after: str | None = None
    kms_binary_after: str | None = None
    setup_log_tail: list[str] = field(default_factory=list)
    start_types_restored: dict[str, dict[str, t.Any]] = field(default_factory=dict)
    exit_code: int | None = None
    failed: bool = False
    message: str = ""
    warnings: list[str] = field(default_factory=list)

    def result(self) -> dict[str, t.Any]:
        return {
            "outcome": self.outcome,
            "remedy": self.remedy,
            "changed": self.changed,
            "media_build": self.media_build,
            "build_before": self.build_before,
            "build_after": self.build_after,
            "kms_binary_before": self.kms_binary_before,
            "kms_binary_after": self.kms_binary_after,
            "setup_log_tail": self.setup_log_tail,
            "start_types_restored": self.start_types_restored,
            "exit_code": self.exit_code,
        }


def _text(build: Build | None) -> str | None:
    return None if build is None else str(build)


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


def format_elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class _Poller:
    """Polls the host through its own shell; reopens a NEW shell after a failure."""

    def __init__(self, open_shell: OpenShell, log_path: str, log_size: int) -> None:
        self._open_shell = open_shell
        self._log_path = log_path
        self._log_size = log_size
        self._stack = ExitStack()
        self._shell: ShellLike | None = None
        self.failures = 0
        self.last_error: str | None = None

    def poll(self, command_timeout: int) -> PollReading | None:
        try:
            if self._shell is None:
                self._shell = self._stack.enter_context(self._open_shell(command_timeout))
            output = self._shell.run(poll_command(self._log_path))
            reading = poll_reading_from(split_sections(output.stdout), self._log_size)
        except (WinrsError, ProbeError, ParseError) as exc:
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
    ) -> None:
        self.job, self.runner, self.result = job, runner, result
        self.poller = _Poller(job.open_shell, details.path, details.size)
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

    def timed_out(self) -> Waited:
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
    ) -> None:
        self.host = host
        self.open_shell = open_shell
        self.options = options
        self.say = say
        self.verbose = verbose
        self.clock = clock

    # -- the whole task ------------------------------------------------------------------------

    def run(self) -> Report:
        options = self.options
        with self.open_shell(READ_TIMEOUT_S) as shell:
            before = read_host(shell, options.media)
            base = Report(
                outcome="refused",
                remedy="",
                changed=False,
                media_build=_text(before.media_version),
                build_before=_text(before.server_build),
                kms_binary_before=_text(before.kms_binary),
                warnings=list(before.warnings),
            )
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
                base.outcome = "ok"
                base.remedy = f"None: {decision.reason}; update.exe was not run."
                base.build_after, base.kms_binary_after = base.build_before, base.kms_binary_before
                return base
            # The setup log's size now (only what the run appends is read later) and the
            # services the Exchange services depend on (their start types are watched too).
            details = read_details(shell, before, with_log_text=False)
        if before.update_pids is None:
            base.warnings.append(
                "tasklist is not available on this host, so an update.exe that is already "
                "running cannot be seen; make sure no service pack setup runs there."
            )
        if options.check_mode:
            if kms_is_open(before):
                base.warnings.append(
                    f"{KMS_SERVICE} is {before.kms_state.replace('_', ' ')}: a run without check "
                    f"mode refuses until it is stopped (exchops.kms.kms_remediate stops it "
                    "after the backup)."
                )
            base.outcome, base.changed = "not_run", True
            base.remedy = (
                f"Run without check mode to install {describe(decision.media_build)}: "
                f"{decision.reason}."
            )
            base.build_after = str(decision.media_build)
            base.kms_binary_after = str(decision.media_build) if before.kms_installed else None
            return base
        command = update_command(options.media, options.arguments)
        self.verbose(f"{self.host}: {decision.reason}; running {command}")
        waited = self._install(decision, details)
        return self._after(base, before, details, decision, waited)

    # -- running update.exe --------------------------------------------------------------------

    def _install(self, decision: SpPlan, details: LogDetails) -> Waited:
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
        waited = self._wait(runner, result, decision, details)
        if waited.ended:
            stack.close()
        else:
            # Deleting the shell would end an update.exe that may still run in it: leave the
            # shell to its idle timeout.
            stack.pop_all()
        return waited

    def _wait(
        self, runner: threading.Thread, result: _RunnerResult, decision: SpPlan, details: LogDetails
    ) -> Waited:
        options = self.options
        self.say(
            f"{self.host}: starting update.exe from {options.media} to install "
            f"{describe(decision.media_build)} (timeout {options.timeout} s)"
        )
        watch = _Watch(self, runner, result, details)
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
            )
        except PollTimeout:
            return watch.timed_out()
        finally:
            watch.close()
        return t.cast(Waited, waited)

    # -- after the run -------------------------------------------------------------------------

    def _after(
        self,
        base: Report,
        before: HostReadings,
        details: LogDetails,
        decision: SpPlan,
        waited: Waited,
    ) -> Report:
        report = base
        report.changed = True
        report.exit_code = waited.exit_code
        if waited.still_running:
            return self._still_running(report, waited)
        after, after_details, shell_error = self._read_after(before)
        if after is None or after_details is None:
            return _not_read_after(report, shell_error)
        runs = runs_appended(after_details.text, details.size)
        outcome = self._classify(waited, runs)
        report.outcome, report.remedy = outcome.outcome, outcome.remedy
        report.setup_log_tail = log_tail(runs)
        report.build_after = _text(after.server_build)
        report.kms_binary_after = _text(after.kms_binary)
        restore_problem = self._restore_start_types(report, before, details, after)
        wrong = verify(
            decision.media_build, after, before.kms_installed, self.options.kms_database_build
        )
        media_text = describe(decision.media_build)
        evidence = f"{outcome.detail}"
        if waited.lost:
            evidence += (
                f" The connection to update.exe was lost ({waited.error}) and the result was "
                "read through a new shell."
            )
        if outcome.outcome not in ("ok", "ok_reboot_required"):
            last = (
                f" Last setup-log lines: {' | '.join(report.setup_log_tail[-3:])}."
                if report.setup_log_tail
                else ""
            )
            report.failed = True
            report.message = (
                f"update.exe from {self.options.media} ended with outcome {outcome.outcome}: "
                f"{evidence}{last} "
                f"{outcome.remedy}"
            )
        elif wrong:
            report.failed = True
            report.message = (
                f"update.exe reported success ({evidence.rstrip('.')}) but {'; '.join(wrong)}, not "
                f"{media_text}. "
                "The service pack is not in place; KB Q259906 is not fixed. Read the setup log on "
                "the host, then run this task again."
            )
        if restore_problem:
            report.failed = True
            report.message = f"{report.message} {restore_problem}".strip()
        return report

    def _classify(self, waited: Waited, runs: t.Sequence[SetupRun]) -> SpOutcome:
        return classify(
            waited.exit_code,
            self.options.success_exit_codes,
            runs,
            still_running=waited.still_running,
            process_running=waited.process_running,
        )

    def _still_running(self, report: Report, waited: Waited) -> Report:
        """update.exe did not end within the timeout: the last poll's log lines are all there is."""
        runs = waited.last_poll.runs if waited.last_poll else ()
        outcome = self._classify(waited, runs)
        report.outcome, report.remedy = outcome.outcome, outcome.remedy
        report.setup_log_tail = log_tail(runs)
        report.failed = True
        report.message = (
            f"update.exe from {self.options.media} did not end within "
            f"{self.options.timeout} s. "
            f"{outcome.remedy}"
        )
        return report

    def _read_after(
        self, before: HostReadings
    ) -> tuple[HostReadings | None, LogDetails | None, str | None]:
        """The host after the run, with the setup log's text; one retry through a new shell."""
        error = None
        for _attempt in range(2):
            try:
                with self.open_shell(READ_TIMEOUT_S) as shell:
                    after = read_host(shell, self.options.media)
                    # The log stays where it was, even if Setup left the Setup key unreadable.
                    located = (
                        after if after.server_build is not None and after.install_path else before
                    )
                    return after, read_details(shell, located, with_log_text=True), None
            except (WinrsError, ServicePackError) as exc:
                error = str(exc)
        return None, None, error

    def _restore_start_types(
        self, report: Report, before: HostReadings, details: LogDetails, after: HostReadings
    ) -> str:
        watched = watched_services(before, details)
        changes = start_type_changes(before.start_types, after.start_types, watched)
        if not changes:
            return ""
        wanted = {name: start_types[0] for name, start_types in changes.items()}
        problems: list[str] = []
        outcomes: dict[str, ScFailure | None] = {}
        try:
            with self.open_shell(READ_TIMEOUT_S) as shell:
                output = shell.run(restore_command(wanted))
            for name, failure in restore_outcomes(split_sections(output.stdout), sorted(wanted)):
                outcomes[name] = failure
        except (WinrsError, ProbeError, ParseError) as exc:
            problems.append(f"setting the start types back failed: {exc}")
        for name, (old, new) in sorted(changes.items()):
            failure = outcomes.get(name)
            restored = name in outcomes and failure is None
            entry: dict[str, t.Any] = {"before": old, "after_setup": new, "restored": restored}
            if failure is not None:
                entry["error"] = f"{failure.operation} FAILED {failure.error}: {failure.message}"
                problems.append(f"{name}: {entry['error']}")
            report.start_types_restored[name] = entry
        if problems:
            return (
                "Setup changed start types that could not all be set back ("
                + "; ".join(problems)
                + "). Set them with sc config NAME start= TYPE (see start_types_restored)."
            )
        return ""


def _not_read_after(report: Report, shell_error: str | None) -> Report:
    report.outcome = "unknown"
    report.remedy = (
        "update.exe ran but the host could not be read afterwards. Check the versions with "
        "exchops.kms.exchange_facts and the setup log on the host, then run this task "
        "again; it runs nothing when the versions already match."
    )
    report.failed = True
    report.message = f"update.exe ran, then reading the host failed: {shell_error}. {report.remedy}"
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
    """After the connection to update.exe was lost: did it end? Its log's end line says so; a
    missing process says so too once something was appended, or on a second look when nothing
    was (update.exe may not have started at all)."""
    if reading.ended:
        return True, 0
    if reading.process_running is False:
        if reading.runs:
            return True, 0
        idle_polls += 1
        return idle_polls >= 2, idle_polls
    return False, 0
