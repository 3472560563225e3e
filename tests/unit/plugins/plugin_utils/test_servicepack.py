# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reapplying a service pack: the command lines and readings (plugins/plugin_utils/
_servicepack_probe.py), and the job (_servicepack.py) run through fake shells that answer with
recorded lab output (fixtures/servicepack), on the fake clock. The decisions it takes
(_servicepack_plan.py) are tested in test_servicepack_plan.py."""

from __future__ import annotations

import dataclasses
import re
import threading
import types
import typing as t

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._builds import Build
from ansible_collections.exchops.kms.plugins.plugin_utils._facts import assemble
from ansible_collections.exchops.kms.plugins.plugin_utils._probe import split_sections
from ansible_collections.exchops.kms.plugins.plugin_utils._reach import Reach
from ansible_collections.exchops.kms.plugins.plugin_utils._service import (
    Progress,
    ServiceError,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._servicepack import (
    Options,
    ServicePackJob,
    at_due,
    format_elapsed,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._servicepack_plan import (
    HostReadings,
    Refusal,
    RunRecord,
    ServicePackError,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._servicepack_probe import (
    PollReading,
    console_batch_command,
    detail_command,
    parse_run_record,
    poll_command,
    read_command,
    read_details,
    read_host,
    readings_from,
    run_record_command,
    run_record_delete_command,
    schedule_command,
    setup_log_path,
    tasklist_update,
    update_command,
    wmic_services,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    SETUP_LOG_INITIALIZED,
    ServerClock,
    parse_setup_log,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._winrs import (
    CommandOutput,
    WinrsTarget,
    WinrsUnreachable,
)

MEDIA = r"D:\EXCH55SP3\ENG\SERVER\SETUP\I386"
UPDATE = '"D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386\\update.exe"'
# The lab's hosts answer as Windows Server 2003 does.
NO_TASKS = "INFO: No tasks running with the specified criteria."
TASKLIST_MISSING = (
    "'tasklist' is not recognized as an internal or external command,\r\n"
    "operable program or batch file."
)


# ---------------------------------------------------------------------------------------------
# Command lines


def test_update_exe_runs_from_the_media_folder_with_the_switches_as_given() -> None:
    assert update_command(MEDIA + "\\", []) == UPDATE
    assert update_command(MEDIA, ["/R", "-s"]) == UPDATE + " /R -s"


def test_switches_with_spaces_or_cmd_syntax_are_quoted() -> None:
    assert (
        update_command(MEDIA, ["/log C:\\sp log.txt", "a&b"])
        == UPDATE + ' "/log C:\\sp log.txt" "a&b"'
    )


@pytest.mark.parametrize("argument", ['/x"y', "%TEMP%", "!x!", "a\nb", "", "  "])
def test_switches_cmd_would_expand_or_split_are_refused(argument: str) -> None:
    with pytest.raises(ValueError, match="argument"):
        update_command(MEDIA, [argument])


def test_no_command_line_ever_names_the_km_database() -> None:
    lines = [
        read_command(MEDIA),
        detail_command(r"C:\Exchange Server Setup.log", ("MSExchangeKMS", "MSExchangeSA"), True),
        poll_command(r"C:\Exchange Server Setup.log"),
        update_command(MEDIA, ["/R"]),
        run_record_command(
            r"C:\Exchange Server Setup.log", RunRecord(Build(5, 5, 2650), ("MSExchangeSA",))
        ),
    ]
    assert all("kmsdata" not in line.lower() for line in lines)


def test_the_read_command_asks_for_the_media_version_the_services_and_update_exe() -> None:
    line = read_command(MEDIA)
    assert (
        'wmic datafile where name="D:\\\\EXCH55SP3\\\\ENG\\\\SERVER\\\\SETUP\\\\I386\\\\update.exe" get Version'
        in line
    )
    assert "wmic service get Name,StartMode /value < NUL" in line
    assert 'tasklist /fi "imagename eq update.exe" /fo csv /nh' in line
    assert "%" not in line


@pytest.mark.parametrize(
    ("build", "install_path", "expected"),
    [
        ("5.5.2650", r"C:\EXCHSRVR", r"C:\Exchange Server Setup.log"),
        ("5.5.2650", r"E:\exchsrvr", r"E:\Exchange Server Setup.log"),
        # Q182518 / Q202258: 5.0 (and 4.0) write Exchange Server Setup.log too.
        ("5.0.1460", r"D:\EXCHSRVR", r"D:\Exchange Server Setup.log"),
        ("4.0.996", r"C:\EXCHSRVR", r"C:\Exchange Server Setup.log"),
        (
            "6.0.6249",
            r"C:\Program Files\Exchsrvr",
            r"%SystemDrive%\Exchange Server Setup Progress.log",
        ),
    ],
)
def test_the_setup_log_is_where_each_version_writes_it(
    build: str, install_path: str, expected: str
) -> None:
    assert setup_log_path(Build.parse(build), install_path) == expected


def test_the_run_record_holds_the_media_build_and_the_stopped_services_and_reads_back() -> None:
    written = RunRecord(
        Build(5, 5, 2650),
        ("MSExchangeIS", "MSExchangeSA"),
        Build(5, 5, 1960, 8),
        Build(5, 5, 2650),
        Build(5, 5, 2650, 23),
    )
    line = run_record_command(r"C:\Exchange Server Setup.log", written)
    assert line == (
        "(echo exchops.kms exchange_service_pack run& echo media_build=5.5.2650.0& "
        "echo stopped=MSExchangeIS,MSExchangeSA& echo kms_before=5.5.1960.8& "
        "echo build_before=5.5.2650.0& echo store_before=5.5.2650.23)> "
        '"C:\\exchops-sp-run.txt"'
    )
    text = (
        "exchops.kms exchange_service_pack run\r\nmedia_build=5.5.2650.0\r\n"
        "stopped=MSExchangeIS,MSExchangeSA\r\nkms_before=5.5.1960.8\r\n"
        "build_before=5.5.2650.0\r\nstore_before=5.5.2650.23\r\n"
    )
    assert parse_run_record(text) == written
    # A record of an earlier release has no readings of the registry and Store.exe.
    older = text.split("build_before", maxsplit=1)[0]
    assert parse_run_record(older) == RunRecord(
        Build(5, 5, 2650), ("MSExchangeIS", "MSExchangeSA"), Build(5, 5, 1960, 8)
    )
    assert parse_run_record(None) is None


def test_through_a_jump_host_the_run_record_is_written_and_deleted_over_the_admin_share() -> None:
    record = RunRecord(Build(5, 5, 2650), ("MSExchangeSA",))
    assert run_record_command(LOG, record, "KMSNEW").endswith(
        '> "\\\\KMSNEW\\C$\\exchops-sp-run.txt"'
    )
    assert run_record_delete_command(LOG, "KMSNEW") == 'del "\\\\KMSNEW\\C$\\exchops-sp-run.txt"'


@pytest.mark.parametrize(
    "text", ["media_build=5.5.2650\r\n", "exchops.kms exchange_service_pack run\r\n"]
)
def test_a_run_record_not_written_whole_is_not_trusted(text: str) -> None:
    with pytest.raises(ServicePackError, match="exchops-sp-run.txt"):
        parse_run_record(text)


def test_polls_list_the_bin_folder_when_asked_so_file_changes_show_progress() -> None:
    line = poll_command(r"C:\Exchange Server Setup.log", r"C:\EXCHSRVR\BIN")
    assert 'dir /-c "C:\\EXCHSRVR\\BIN"' in line
    assert "sp_bin_dir" not in poll_command(r"C:\Exchange Server Setup.log")


# ---------------------------------------------------------------------------------------------
# Readings from the recorded answers

# Recorded from the lab (tests/lab/fleets/q259906.yml, host kms-new): the answers to the job's
# command lines (exit code 0, stderr empty). The read, the detail line and the poll are fixture
# files (fixtures/servicepack/); the read and the detail line after update.exe ran differ from
# those before it only by what the run changed, named here.

# wmic reads Kmserver.exe and Kmsmsg.dll at SP3 instead of 5.5 RTM.
KM_BINARIES_TO_SP3 = tuple(
    (
        f"==exchops:begin:{section}== \r\n\r\r\n\r\r\nVersion=5.5.1960.8\r\r\n",
        f"==exchops:begin:{section}== \r\n\r\r\n\r\r\nVersion=5.5.2650.12\r\r\n",
    )
    for section in ("kmserver_0", "kmsmsg_0")
)
# dir sees the setup log grown by update.exe's run (its date, its size and the free space) ...
SETUP_LOG_GROWN = (
    (
        "14/03/2001  09:12               228 Exchange Server Setup.log\r\n",
        "27/11/2026  06:19              1775 Exchange Server Setup.log\r\n",
    ),
    ("1 File(s)            228 bytes\r\n", "1 File(s)           1775 bytes\r\n"),
    ("1234567890 bytes free\r\n", "1234522183 bytes free\r\n"),
)
# ... and the detail line after the run also types the log: the sp_log_text section the poll read.


def _edited(answer: str, edits: t.Iterable[tuple[str, str]]) -> str:
    for old, new in edits:
        assert answer.count(old) == 1, f"{old!r} is not in the recording exactly once"
        answer = answer.replace(old, new)
    return answer


def _framed(answer: str, name: str) -> str:
    """Section `name` of `answer` with its begin and end lines."""
    start = answer.index(f"==exchops:begin:{name}== \r\n")
    end = answer.index("\r\n", answer.index("==exchops:end:", start)) + len("\r\n")
    return answer[start:end]


@pytest.fixture(scope="module")
def answers(recorded: t.Callable[[str], t.Any]) -> dict[str, str]:
    """The lab's answers by name: `read_before`, `detail_before`, `poll_after` as recorded,
    `read_after` and `detail_after` derived as above."""
    read_before = recorded("servicepack/read_before").stdout
    detail_before = recorded("servicepack/detail_before").stdout
    poll_after = recorded("servicepack/poll_after").stdout
    grown = _edited(detail_before, SETUP_LOG_GROWN)
    log_dir = _framed(grown, "sp_log_dir")
    after_log_dir = grown.index(log_dir) + len(log_dir)
    return {
        "read_before": read_before,
        "detail_before": detail_before,
        "poll_after": poll_after,
        "read_after": _edited(read_before, KM_BINARIES_TO_SP3),
        "detail_after": grown[:after_log_dir]
        + _framed(poll_after, "sp_log_text")
        + grown[after_log_dir:],
    }


def _sections(answer: str, **replace: str) -> dict:
    for old, new in replace.items():
        answer = answer.replace(old, new)
    return split_sections(answer)


def _readings(answer: str) -> HostReadings:
    sections = split_sections(answer)
    facts = assemble(sections, 0)
    return readings_from(sections, facts.facts, facts.warnings, facts.store_version)


def test_the_kb_target_reads_as_sp3_with_rtm_km_binaries_and_sp3_media(
    answers: dict[str, str],
) -> None:
    readings = _readings(answers["read_before"])
    assert readings.server_build == Build(5, 5, 2650)
    assert readings.kms_binary == Build(5, 5, 1960, 8)
    assert readings.media_version == Build(5, 5, 2650)
    assert readings.kms_installed and not readings.kms_half_installed
    assert readings.kms_state == "stopped" and not readings.image_path_has_arguments
    assert readings.update_pids == ()
    assert readings.exchange_services == (
        "MSExchangeDS",
        "MSExchangeIS",
        "MSExchangeKMS",
        "MSExchangeMTA",
        "MSExchangeSA",
    )
    assert readings.start_types["MSExchangeKMS"] == "manual"
    assert (readings.store_version, readings.build_from) == (Build(5, 5, 2650, 23), "NewestBuild")


def test_media_without_update_exe_reads_as_no_media_build(answers: dict[str, str]) -> None:
    answer = (
        answers["read_before"]
        .replace("Version=5.5.2650.0\r\r\n", "")
        .replace(
            "==exchops:begin:sp_media== \r\n",
            "==exchops:begin:sp_media== \r\nNo Instance(s) Available.\r\n",
        )
    )
    readings = _readings(answer)
    assert (readings.media_found, readings.media_version) == (False, None)


def test_update_exe_without_a_version_resource_is_found_without_a_version(
    answers: dict[str, str],
) -> None:
    answer = answers["read_before"].replace("Version=5.5.2650.0\r\r\n", "Version=\r\r\n")
    readings = _readings(answer)
    assert (readings.media_found, readings.media_version) == (True, None)


def test_a_running_update_exe_is_seen_with_its_pid(answers: dict[str, str]) -> None:
    answer = answers["read_before"].replace(
        NO_TASKS,
        '"update.exe","2468","Services","0","12,345 K"',
    )
    assert _readings(answer).update_pids == (2468,)


def test_a_host_without_tasklist_cannot_tell_whether_update_exe_runs(
    answers: dict[str, str],
) -> None:
    answer = answers["read_before"].replace(NO_TASKS, TASKLIST_MISSING)
    assert _readings(answer).update_pids is None


def test_km_server_without_its_kmserver_key_is_half_installed(answers: dict[str, str]) -> None:
    start = answers["read_before"].index("==exchops:begin:kms_server_key==")
    end = answers["read_before"].index("==exchops:end:ok==", start)
    answer = (
        answers["read_before"][: start + len("==exchops:begin:kms_server_key== \r\n")]
        + "ERROR: The system was unable to find the specified registry key or value.\r\n==exchops:end:failed=="
        + answers["read_before"][end + len("==exchops:end:ok==") :]
    )
    readings = _readings(answer)
    assert readings.kms_half_installed
    assert dict(readings.kms_parts)[r"HKLM\SOFTWARE\Microsoft\Exchange\KMServer"] is False


def test_elapsed_time_reads_as_minutes_and_seconds() -> None:
    assert [format_elapsed(seconds) for seconds in (5, 65, 3600.9)] == ["5s", "1m05s", "60m00s"]


# ---------------------------------------------------------------------------------------------
# The job, through fake shells that answer with the recorded lab output


# The lab's Exchange 5.5 services and who depends on whom (KB Q143380: KMS and the others on DS,
# DS on SA), as `sc enumdepend` would list the dependents.
DEPENDENTS = {
    "MSExchangeSA": ("MSExchangeIS", "MSExchangeMTA", "MSExchangeKMS", "MSExchangeDS"),
    "MSExchangeDS": ("MSExchangeIS", "MSExchangeMTA", "MSExchangeKMS"),
}
RUNNING = ("MSExchangeSA", "MSExchangeDS", "MSExchangeIS", "MSExchangeMTA")


class FakeServices:
    """The host's Exchange services, driven through `control` instead of `sc` answers."""

    def __init__(self, running: t.Sequence[str] = RUNNING, wont_stop: str | None = None) -> None:
        self.state = {name: "stopped" for name in (*RUNNING, "MSExchangeKMS")}
        self.state.update({name: "running" for name in running})
        self.wont_stop = wont_stop
        self.log: list[str] = []

    def control(self, _shell: t.Any, name: str) -> FakeControl:
        return FakeControl(self, name)


class FakeControl:
    def __init__(self, services: FakeServices, name: str) -> None:
        self.services, self.name = services, name
        self.progress = Progress(name)

    def stop(self) -> None:
        state = self.services.state
        self.progress.previous_state = state[self.name]
        running = [name for name in DEPENDENTS.get(self.name, ()) if state[name] == "running"]
        self.progress.dependents_stopped = []
        for name in (*running, self.name):
            if name == self.services.wont_stop:
                raise ServiceError(
                    f"{name} is still RUNNING: sc stop {name} failed with error 1051."
                )
            if state[name] == "running":
                self.services.log.append(f"stop {name}")
            state[name] = "stopped"
            if name != self.name:
                self.progress.dependents_stopped.append(name)

    def read(self) -> tuple[t.Any, None]:
        return types.SimpleNamespace(state=self.services.state[self.name]), None

    def start(self) -> None:
        assert self.name != "MSExchangeKMS", "KMS starts only with its password, never here"
        self.services.log.append(f"start {self.name}")
        self.services.state[self.name] = "running"


def _section_text(name: str, text: str) -> str:
    return f"==exchops:begin:{name}== \r\n{text}==exchops:end:ok== \r\n"


class FakeHost:
    """Answers the job's command lines as the lab did; counts update.exe runs."""

    def __init__(
        self,
        answers: dict[str, str],
        *,
        lose_update: bool = False,
        hang_update: bool = False,
        setup_sets_is_manual: bool = False,
        setup_skips_kmserver: bool = False,
        failing_polls: int = 0,
        unreadable_after: bool = False,
        record: str | None = None,
        update_running: bool = False,
        updated: bool = False,
        no_tasklist: bool = False,
        console_after_polls: int | None = None,
    ) -> None:
        self.answers = answers
        # Launch mode operator: the operator at the console installs the service pack once the
        # run record is there and this many polls have been answered (None: never).
        self.console_after_polls = console_after_polls
        self.lose_update = lose_update
        self.hang_update = hang_update
        self.setup_sets_is_manual = setup_sets_is_manual
        self.setup_skips_kmserver = setup_skips_kmserver
        self.failing_polls = failing_polls  # polls that fail before one is answered
        self.unreadable_after = unreadable_after  # reading the host fails once update.exe ran
        self.record = record  # the run record an earlier run left
        self.update_running = update_running  # an update.exe of an earlier run still runs
        self.update_runs = 0
        self.updated = updated
        self.no_tasklist = no_tasklist  # cmd does not know tasklist
        self.commands: list[str] = []
        self.shells: list[FakeShell] = []
        self.release = threading.Event()

    def open(self, command_timeout: int) -> FakeShell:
        shell = FakeShell(self, command_timeout)
        self.shells.append(shell)
        return shell

    def answer(self, command_line: str) -> CommandOutput:
        self.commands.append(command_line)
        if command_line.startswith(UPDATE):
            self.update_runs += 1
            if self.hang_update:
                self.release.wait(10)
                raise WinrsUnreachable(
                    "kms-new (http://127.0.0.2:5985/wsman)", "unreachable: the test ended."
                )
            self.updated = True
            if self.lose_update:
                raise WinrsUnreachable(
                    "kms-new (http://127.0.0.2:5985/wsman)",
                    "unreachable: the host closed the connection while reading command output.",
                )
            return CommandOutput("", "", 0, 1.0)
        if "exchops-sp-run.txt" in command_line and "sp_log_dir" not in command_line:
            if command_line.startswith("del "):
                self.record = None
            else:
                self.record = RECORD
            return CommandOutput("", "", 0, 0.1)
        if "sp_media" in command_line:
            if self.updated and self.unreadable_after:
                raise WinrsUnreachable(
                    "kms-new (http://127.0.0.2:5985/wsman)", "unreachable: no route."
                )
            answer = self.answers["read_after" if self.updated else "read_before"]
            if self.updated and self.setup_skips_kmserver:
                answer = answer.replace("Version=5.5.2650.12", "Version=5.5.1960.8", 1)
            if self.updated and self.setup_sets_is_manual:
                answer = answer.replace(
                    "Name=MSExchangeIS\r\r\nStartMode=Auto",
                    "Name=MSExchangeIS\r\r\nStartMode=Manual",
                )
            if (self.hang_update and self.update_runs) or self.update_running:
                answer = answer.replace(NO_TASKS, '"update.exe","2468","Services","0","9,876 K"')
            if self.no_tasklist:
                answer = answer.replace(NO_TASKS, TASKLIST_MISSING)
            return CommandOutput(answer, "", 0, 0.1)
        if "sp_log_dir" in command_line:
            answer = self.answers[
                "detail_after" if "sp_log_text" in command_line else "detail_before"
            ]
            if self.record is not None and "exchops-sp-run.txt" in command_line:
                answer += _section_text("sp_record", self.record)
            return CommandOutput(answer, "", 0, 0.1)
        if "sp_log_text" in command_line and "sp_tasks" in command_line:
            if self.failing_polls:
                self.failing_polls -= 1
                raise WinrsUnreachable(
                    "kms-new (http://127.0.0.2:5985/wsman)", "unreachable: no route."
                )
            if self.record is not None and self.console_after_polls is not None:
                self.console_after_polls -= 1
                self.updated = self.updated or self.console_after_polls <= 0
            answer = self.answers["poll_after"]
            if self.hang_update:
                answer = self.answers["poll_after"].replace(
                    NO_TASKS, '"update.exe","2468","Services","0","9,876 K"'
                )
                answer = (
                    answer[: answer.index("[", answer.index("==exchops:begin:sp_log_text=="))]
                    + "==exchops:end:ok== \r\n"
                )
            return CommandOutput(answer, "", 0, 0.1)
        raise AssertionError(f"unexpected command: {command_line}")


class FakeShell:
    def __init__(self, host: FakeHost, command_timeout: int) -> None:
        self.host = host
        self.command_timeout = command_timeout
        self.closed = False
        self.ran: list[str] = []

    def __enter__(self) -> FakeShell:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.closed = True

    def run(self, command_line: str) -> CommandOutput:
        self.ran.append(command_line)
        return self.host.answer(command_line)

    @property
    def ran_update(self) -> bool:
        return any(command.startswith(UPDATE) for command in self.ran)


def _job(
    host: FakeHost,
    said: list[str],
    clock: t.Any,
    services: FakeServices | None = None,
    reach: Reach | None = None,
    **options: t.Any,
) -> ServicePackJob:
    """The job on the fake clock (tests/unit/conftest.py): no wait sleeps for real."""
    values = {
        "media": MEDIA,
        "media_build": Build(5, 5, 2650),
        "build": Build(5, 5, 2650),
        "arguments": (),
        "success_exit_codes": (0,),
        "timeout": 60,
        "poll_interval": 1,
        "progress_interval": 1,
    }
    values.update(options)
    return ServicePackJob(
        "kms-new",
        host.open,
        Options(**values),
        say=said.append,
        verbose=said.append,
        clock=clock,
        control=(services or FakeServices()).control,
        reach=reach,
    )


STOPPED = ["MSExchangeIS", "MSExchangeMTA", "MSExchangeDS", "MSExchangeSA"]
RECORD = (
    "exchops.kms exchange_service_pack run\r\nmedia_build=5.5.2650.0\r\n"
    f"stopped={','.join(STOPPED)}\r\nkms_before=5.5.1960.8\r\n"
)


def test_the_kb_target_gets_sp3_once_proven_by_the_versions_it_reads_back(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said, services = FakeHost(answers), [], FakeServices()
    report = _job(host, said, fake_clock.clock, services).run()
    assert (report.outcome, report.changed, report.failed, report.exit_code) == (
        "ok",
        True,
        False,
        0,
    )
    assert (report.build_before, report.kms_binary_before) == ("5.5.2650.0", "5.5.1960.8")
    assert (report.build_after, report.kms_binary_after) == ("5.5.2650.0", "5.5.2650.12")
    assert report.decided_by == [
        "update.exe ended: its command returned exit code 0",
        "registry: Exchange 5.5.2650 (5.5 SP3) (NewestBuild)",
        "Store.exe file version 5.5.2650.23",
        "Kmserver.exe file version 5.5.2650.12 (before the run: 5.5.1960.8)",
    ]
    assert host.update_runs == 1
    assert len(report.setup_log_tail) == 20  # the newest lines of the run, at most 20
    assert "Installing into C:\\EXCHSRVR" not in " ".join(report.setup_log_tail)
    # Every running Exchange service stopped, dependents first, and started again after.
    assert report.services_stopped == STOPPED
    assert report.services_started == list(reversed(STOPPED))
    assert services.state["MSExchangeKMS"] == "stopped"
    assert host.record is None, "the run record is removed once the services run again"
    assert report.start_types_changed == {}
    assert any("starting update.exe" in line for line in said)
    assert all(shell.closed for shell in host.shells)


def test_an_exit_code_not_listed_is_a_warning_when_the_versions_prove_success(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said = FakeHost(answers), []
    report = _job(host, said, fake_clock.clock, success_exit_codes=(3010,)).run()
    assert (report.outcome, report.failed) == ("ok", False)
    assert any("exit code 0 is not in success_exit_codes" in w for w in report.warnings)


def test_check_mode_reads_predicts_and_runs_or_stops_nothing(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said, services = FakeHost(answers), [], FakeServices()
    report = _job(host, said, fake_clock.clock, services, check_mode=True).run()
    assert (report.outcome, report.changed, report.build_after, report.kms_binary_after) == (
        "not_run",
        True,
        "5.5.2650.0",
        "5.5.1960.8",
    )
    assert host.update_runs == 0 and services.log == []
    assert all("sp_media" in command or "sp_log_dir" in command for command in host.commands)


def test_the_operators_statement_of_the_media_build_is_used_with_a_warning(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said = FakeHost(answers), []
    report = _job(
        host, said, fake_clock.clock, check_mode=True, media_build=Build(5, 5, 2650)
    ).run()
    assert (report.media_build, report.media_build_from) == ("5.5.2650.0", "operator statement")
    assert any("the operator's statement (media_build)" in w for w in report.warnings)
    # update.exe's version (5.5.2650 here) can only refuse a statement that names another SP.
    with pytest.raises(Refusal, match=r"installs 5\.5\.2653 \(5\.5 SP4\), but its update"):
        _job(FakeHost(answers), [], fake_clock.clock, media_build=Build(5, 5, 2653)).run()
    # Without it nothing is decided from update.exe's version: refused, nothing run.
    host = FakeHost(answers)
    with pytest.raises(Refusal, match="media_build is not set"):
        _job(host, [], fake_clock.clock, media_build=None).run()
    assert host.update_runs == 0


def test_a_service_that_will_not_stop_runs_nothing_and_starts_the_others_again(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said, services = FakeHost(answers), [], FakeServices(wont_stop="MSExchangeSA")
    report = _job(host, said, fake_clock.clock, services).run()
    assert (report.outcome, report.failed, host.update_runs) == ("failed", True, 0)
    assert report.message.startswith("could not stop the Exchange services before the service pack")
    assert all(services.state[name] == "running" for name in RUNNING)
    assert host.record is None


def test_a_lost_connection_is_followed_by_polls_through_a_new_shell_never_a_second_run(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said = FakeHost(answers, lose_update=True), []
    report = _job(host, said, fake_clock.clock).run()
    assert host.update_runs == 1
    assert (report.outcome, report.failed, report.exit_code) == ("ok", False, None)
    assert report.decided_by[0] == "update.exe ended: tasklist no longer lists it"
    assert report.kms_binary_after == "5.5.2650.12"
    (update_shell,) = [shell for shell in host.shells if shell.ran_update]
    poll_shells = [
        shell
        for shell in host.shells
        if any("sp_tasks" in c and "sp_log_text" in c for c in shell.ran)
    ]
    assert poll_shells and update_shell not in poll_shells, "the polls run in a shell of their own"
    assert any("lost the connection to update.exe" in line for line in said)


def test_polls_that_keep_failing_after_a_lost_connection_end_the_wait_after_three_tries(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said = FakeHost(answers, lose_update=True, failing_polls=5), []
    report = _job(host, said, fake_clock.clock, poll_interval=7, progress_interval=60).run()
    polls = [c for c in host.commands if "sp_tasks" in c and "sp_log_text" in c]
    assert (len(polls), fake_clock.time) == (3, 14.0)  # at 0, 7 and 14 s, each in a new shell
    assert host.update_runs == 1
    assert (report.outcome, report.kms_binary_after) == ("ok", "5.5.2650.12")


def test_a_host_that_cannot_be_read_after_the_run_ends_unknown_with_what_to_check(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said = FakeHost(answers, unreadable_after=True), []
    report = _job(host, said, fake_clock.clock).run()
    assert (report.outcome, report.failed, report.changed, host.update_runs) == (
        "unknown",
        True,
        True,
        1,
    )
    assert report.message.startswith(
        "update.exe ran, then reading the host failed: kms-new (http://127.0.0.2:5985/wsman): "
        "unreachable: no route.. update.exe ended but the host could not be read afterwards."
    )
    assert "sc start MSExchangeSA, then sc start MSExchangeDS" in report.message


def test_a_start_type_changed_during_the_run_is_reported_not_set_back(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said = FakeHost(answers, setup_sets_is_manual=True), []
    report = _job(host, said, fake_clock.clock).run()
    assert report.start_types_changed == {
        "MSExchangeIS": {"before": "auto", "after_setup": "manual"}
    }
    assert not any("sc config" in command for command in host.commands)
    assert any("sc config MSExchangeIS start= auto" in w for w in report.warnings)
    assert not report.failed


def test_kmserver_exe_left_unreplaced_is_no_success_and_kms_is_not_started(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said, services = FakeHost(answers, setup_skips_kmserver=True), [], FakeServices()
    report = _job(host, said, fake_clock.clock, services).run()
    assert (report.outcome, report.failed, report.kms_binary_after) == (
        "failed",
        True,
        "5.5.1960.8",
    )
    assert "Kmserver.exe file version 5.5.1960.8 (before the run: 5.5.1960.8)" in report.decided_by
    assert "MSExchangeKMS was not started" in report.message
    assert report.services_started == list(reversed(STOPPED))
    assert services.state["MSExchangeKMS"] == "stopped"


def test_a_timeout_leaves_update_exe_its_shell_and_the_stopped_services_alone(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said, services = FakeHost(answers, hang_update=True), [], FakeServices()
    fake_clock.thread_grace = 0.0  # update.exe hangs until the test ends
    try:
        report = _job(host, said, fake_clock.clock, services, timeout=2).run()
    finally:
        host.release.set()
    assert (report.outcome, report.failed, report.changed) == ("still_running", True, True)
    (update_shell,) = [shell for shell in host.shells if shell.ran_update]
    assert not update_shell.closed, "deleting the shell would end update.exe"
    assert host.update_runs == 1
    assert fake_clock.time == 2.0
    assert all(services.state[name] == "stopped" for name in RUNNING)
    assert host.record is not None, "the record stays for the run that finds update.exe gone"
    assert said[-1] == (
        "kms-new: 1s elapsed, update.exe running (tasklist: update.exe running); setup log: "
        "++++ Microsoft Exchange Setup initialized ++++"
    )


def test_an_update_exe_that_makes_no_progress_ends_waiting_for_input_untouched(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said, services = FakeHost(answers, hang_update=True), [], FakeServices()
    fake_clock.thread_grace = 0.0
    try:
        report = _job(
            host, said, fake_clock.clock, services, timeout=600, no_progress_timeout=5
        ).run()
    finally:
        host.release.set()
    assert (report.outcome, report.failed, report.update_pid) == ("waiting_for_input", True, 2468)
    assert fake_clock.time < 600
    assert report.decided_by[0] == "tasklist: update.exe running (PID 2468)"
    (update_shell,) = [shell for shell in host.shells if shell.ran_update]
    assert not update_shell.closed
    assert all(services.state[name] == "stopped" for name in RUNNING)
    assert "console" not in report.message.replace("no window on the console that anyone", "")
    assert (
        "Services this module stopped: MSExchangeIS, MSExchangeMTA, MSExchangeDS, MSExchangeSA. "
        "Once update.exe has ended, run this task again to start them, or start them yourself "
        "in this order: sc start MSExchangeSA, then sc start MSExchangeDS, then sc start "
        "MSExchangeMTA, then sc start MSExchangeIS." in report.message
    )


def test_a_later_run_leaves_an_update_exe_that_still_runs_alone(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host = FakeHost(answers, record=RECORD, update_running=True)
    services = FakeServices(running=())
    report = _job(host, [], fake_clock.clock, services).run()
    assert (report.outcome, report.failed, report.changed) == ("still_running", True, False)
    assert report.update_pid == 2468
    assert host.update_runs == 0 and services.log == []
    assert report.message.startswith(
        "an earlier run of this module started update.exe, which still runs"
    )


def test_without_tasklist_a_later_run_says_how_to_end_the_wait_itself(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, services = FakeHost(answers, record=RECORD, no_tasklist=True), FakeServices(running=())
    report = _job(host, [], fake_clock.clock, services).run()
    assert (report.outcome, report.changed, host.update_runs) == ("still_running", False, 0)
    assert services.log == [] and host.record == RECORD
    assert report.message.endswith(
        "once the server's Task Manager lists no update.exe, delete the run record "
        "C:\\exchops-sp-run.txt and run again; the versions then decide."
    )


def test_once_update_exe_is_gone_unproven_the_services_run_again_and_kms_stays_stopped(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, services = FakeHost(answers, record=RECORD), FakeServices(running=())
    report = _job(host, [], fake_clock.clock, services).run()
    assert (report.outcome, report.failed, report.changed) == ("failed", True, True)
    assert host.update_runs == 0
    assert report.services_started == list(reversed(STOPPED))
    assert services.state["MSExchangeKMS"] == "stopped"
    assert report.decided_by[0] == "update.exe ended: tasklist no longer lists it"
    assert host.record is None


def test_once_update_exe_is_gone_with_the_versions_in_place_the_run_is_a_success(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host = FakeHost(answers, record=RECORD, updated=True)
    services = FakeServices(running=())
    report = _job(host, [], fake_clock.clock, services).run()
    assert (report.outcome, report.failed, report.media_build_from) == (
        "ok",
        False,
        "run record of an earlier run",
    )
    assert report.services_started == list(reversed(STOPPED))
    assert host.update_runs == 0 and host.record is None


def test_poll_readings_show_progress_by_the_log_and_the_binaries() -> None:
    running = PollReading(
        True,
        parse_setup_log(f"{SETUP_LOG_INITIALIZED}\r\n[10:42:01] Stopping service MSExchangeIS\r\n"),
        2468,
        80,
        (("STORE.EXE", 4812560, "27/11/2026", "06:19"),),
    )
    assert running.last_line == "[10:42:01] Stopping service MSExchangeIS"
    assert running.progress != PollReading(True, running.runs, 2468, 81, running.binaries).progress
    assert PollReading(None, ()).last_line is None


# ---------------------------------------------------------------------------------------------
# Through a Windows jump host: the reads name the server, nothing changes it

LOG = r"C:\Exchange Server Setup.log"
SERVICES = ("MSExchangeKMS", "MSExchangeSA")


def _jump_reach() -> Reach:
    target = WinrsTarget(
        "kms-old", "jump01.lab", 5985, "http", "/wsman", "credssp", "ops", None, via="jump01"
    )
    return Reach("kms-old", target, remote="KMSNEW", via="jump01", auth="delegated")


def test_without_a_remote_the_commands_are_those_of_the_host_itself() -> None:
    assert wmic_services() == "wmic service get Name,StartMode /value < NUL"
    assert tasklist_update() == 'tasklist /fi "imagename eq update.exe" /fo csv /nh'
    assert detail_command(LOG, SERVICES, True) == (
        'echo ==exchops:begin:sp_log_dir== & (dir /-c "C:\\Exchange Server Setup.log") 2>&1 '
        "&& echo ==exchops:end:ok== || echo ==exchops:end:failed== & "
        'echo ==exchops:begin:sp_record== & (type "C:\\exchops-sp-run.txt") 2>&1 '
        "&& echo ==exchops:end:ok== || echo ==exchops:end:failed== & "
        'echo ==exchops:begin:sp_log_text== & (type "C:\\Exchange Server Setup.log" && echo.) '
        "2>&1 && echo ==exchops:end:ok== || echo ==exchops:end:failed== & "
        "echo ==exchops:begin:sp_qc_0== & (sc qc MSExchangeKMS) 2>&1 "
        "&& echo ==exchops:end:ok== || echo ==exchops:end:failed== & "
        "echo ==exchops:begin:sp_qc_1== & (sc qc MSExchangeSA) 2>&1 "
        "&& echo ==exchops:end:ok== || echo ==exchops:end:failed=="
    )
    assert poll_command(LOG, r"C:\EXCHSRVR\BIN") == (
        "echo ==exchops:begin:sp_tasks== & "
        '(tasklist /fi "imagename eq update.exe" /fo csv /nh) 2>&1 '
        "&& echo ==exchops:end:ok== || echo ==exchops:end:failed== & "
        'echo ==exchops:begin:sp_log_text== & (type "C:\\Exchange Server Setup.log" && echo.) '
        "2>&1 && echo ==exchops:end:ok== || echo ==exchops:end:failed== & "
        'echo ==exchops:begin:sp_bin_dir== & (dir /-c "C:\\EXCHSRVR\\BIN") 2>&1 '
        "&& echo ==exchops:end:ok== || echo ==exchops:end:failed=="
    )
    line = read_command(MEDIA)
    assert 'reg query "HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup"' in line
    assert "sc qc MSExchangeKMS" in line
    assert "\\\\" + "KMSNEW" not in line and "/node:" not in line and "/s " not in line


def test_with_a_remote_every_read_names_the_server() -> None:
    assert wmic_services("KMSNEW") == "wmic /node:KMSNEW service get Name,StartMode /value < NUL"
    assert (
        tasklist_update("KMSNEW") == 'tasklist /s KMSNEW /fi "imagename eq update.exe" /fo csv /nh'
    )
    line = read_command(MEDIA, "KMSNEW")
    assert 'reg query "\\\\KMSNEW\\HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup"' in line
    assert "sc \\\\KMSNEW qc MSExchangeKMS" in line
    # wmic /node: takes the path on the server itself, not its admin share.
    assert (
        'wmic /node:KMSNEW datafile where name="D:\\\\EXCH55SP3\\\\ENG\\\\SERVER\\\\SETUP'
        '\\\\I386\\\\update.exe" get Version /value < NUL'
    ) in line
    assert "wmic /node:KMSNEW service get" in line
    assert "tasklist /s KMSNEW " in line
    assert 'reg query "HKLM' not in line and "sc qc" not in line
    details = detail_command(LOG, SERVICES, True, "KMSNEW")
    assert 'dir /-c "\\\\KMSNEW\\C$\\Exchange Server Setup.log"' in details
    assert 'type "\\\\KMSNEW\\C$\\exchops-sp-run.txt"' in details
    assert 'type "\\\\KMSNEW\\C$\\Exchange Server Setup.log" && echo.' in details
    assert "sc \\\\KMSNEW qc MSExchangeKMS" in details
    assert "sc \\\\KMSNEW qc MSExchangeSA" in details
    poll = poll_command(LOG, r"C:\EXCHSRVR\BIN", "KMSNEW")
    assert "tasklist /s KMSNEW " in poll
    assert 'type "\\\\KMSNEW\\C$\\Exchange Server Setup.log" && echo.' in poll
    assert 'dir /-c "\\\\KMSNEW\\C$\\EXCHSRVR\\BIN"' in poll


def test_a_setup_log_under_the_system_drive_variable_is_not_named_from_a_jump_host() -> None:
    # The jump host would expand %SystemDrive% to its own drive.
    path = setup_log_path(Build(6, 0, 6249), r"C:\Program Files\Exchsrvr")
    with pytest.raises(ServicePackError, match="system drive"):
        detail_command(path, SERVICES, False, "KMSNEW")
    assert "%SystemDrive%" in detail_command(path, SERVICES, False)


def _names_the_server(command: str) -> bool:
    """A command of the jump host that reaches KMSNEW, never the jump host's own disk."""
    return any(form in command for form in ("\\\\KMSNEW", "/node:KMSNEW", "/s KMSNEW"))


def test_through_a_jump_host_the_operator_installs_at_the_console_and_the_versions_decide(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said, services = FakeHost(answers, console_after_polls=3), [], FakeServices()
    job = _job(host, said, fake_clock.clock, services, reach=_jump_reach(), quiet_period=5)
    report = job.run()
    assert (report.outcome, report.failed, report.changed) == ("ok", False, True)
    assert host.update_runs == 0, "update.exe is never started through the jump host"
    assert services.log == [f"stop {name}" for name in STOPPED] + [
        f"start {name}" for name in reversed(STOPPED)
    ]
    assert host.record is None, "the run record is removed once the services run again"
    assert report.decided_by[0] == (
        "update.exe at the console ended: the versions moved, and the setup log and the "
        "Exchange BIN folder were unchanged for 5 s"
    )
    steps = next(line for line in said if "console (launch mode operator" in line)
    assert f"run {MEDIA}\\update.exe" in steps and "MSExchangeKMS stays stopped" in steps
    assert all(_names_the_server(command) for command in host.commands)
    assert not any(command.startswith(UPDATE) for command in host.commands)


def test_through_a_jump_host_a_wait_that_ends_unseen_leaves_the_services_and_the_record(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said, services = FakeHost(answers), [], FakeServices()
    job = _job(host, said, fake_clock.clock, services, reach=_jump_reach(), quiet_period=5)
    report = job.run()
    assert (report.outcome, report.failed) == ("waiting_for_input", True)
    assert "was not seen installed at KMSNEW's console within 60 s" in report.message
    assert "run this task again: it polls again" in report.message
    assert services.log == [f"stop {name}" for name in STOPPED]
    assert host.record is not None and host.update_runs == 0


def test_through_a_jump_host_the_next_run_polls_again_from_the_run_record(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    record = RECORD + "build_before=5.5.2650.0\r\nstore_before=5.5.2650.23\r\n"
    host = FakeHost(answers, record=record, console_after_polls=2)
    said: list[str] = []
    services = FakeServices(running=())
    job = _job(host, said, fake_clock.clock, services, reach=_jump_reach(), quiet_period=5)
    report = job.run()
    assert (report.outcome, report.changed, report.media_build_from) == (
        "ok",
        True,
        "run record of an earlier run",
    )
    assert services.log == [f"start {name}" for name in reversed(STOPPED)]
    assert host.record is None and host.update_runs == 0


def test_through_a_jump_host_check_mode_names_the_console_step_and_changes_nothing(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said, services = FakeHost(answers), [], FakeServices()
    job = _job(host, said, fake_clock.clock, services, reach=_jump_reach(), check_mode=True)
    report = job.run()
    assert (report.outcome, report.changed) == ("not_run", True)
    assert report.remedy.endswith(
        f"Through jump01: {MEDIA}\\update.exe on KMSNEW, an operator at the console runs it "
        "(launch mode operator)."
    )
    assert services.log == [] and host.record is None and len(host.commands) == 2


def test_through_a_jump_host_the_job_takes_the_reach_for_its_service_control(
    fake_clock: t.Any,
) -> None:
    ran: list[str] = []

    class Recording:
        def run(self, command_line: str, stdin: str | None = None) -> CommandOutput:
            ran.append(command_line)
            raise WinrsUnreachable("kms-old (through jump01)", "unreachable: the test ended.")

    job = ServicePackJob(
        "kms-old",
        FakeHost({}).open,
        Options(MEDIA, None, (), (0,), 60, 1, 1),
        say=print,
        verbose=print,
        clock=fake_clock.clock,
        reach=_jump_reach(),
    )
    assert job.remote == "KMSNEW"
    with pytest.raises(WinrsUnreachable):
        job._control(Recording(), "MSExchangeSA").read()  # pylint: disable=protected-access
    assert ran and all("sc \\\\KMSNEW " in command for command in ran)


def test_a_reach_without_a_remote_reads_and_predicts_on_the_host_itself(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said = FakeHost(answers), []
    direct = dataclasses.replace(_jump_reach(), host="kms-new", remote=None, via=None)
    job = _job(host, said, fake_clock.clock, reach=direct, check_mode=True)
    assert (job.reach, job.remote) == (None, None)
    assert job.run().outcome == "not_run"
    assert all("KMSNEW" not in command for command in host.commands)


@pytest.mark.parametrize(
    ("section_name", "failure", "cause"),
    [
        ("setup_legacy", "ERROR: The network path was not found.", "does not resolve"),
        ("sp_tasks", "ERROR: The RPC server is unavailable.", "blocks RPC"),
        ("sp_services", "ERROR: Access is denied.", "not an administrator"),
    ],
)
def test_a_failed_remote_read_is_refused_naming_the_jump_host_and_the_causes(
    answers: dict[str, str], section_name: str, failure: str, cause: str
) -> None:
    answer = re.sub(
        rf"==exchops:begin:{section_name}== \r\n.*?==exchops:end:ok== \r\n",
        lambda _match: f"==exchops:begin:{section_name}== \r\n{failure}\r\n"
        "==exchops:end:failed== \r\n",
        answers["read_before"],
        count=1,
        flags=re.S,
    )
    assert failure in answer

    class Shell:
        def run(self, command_line: str) -> CommandOutput:
            return CommandOutput(answer, "", 0, 0.1)

    with pytest.raises(ServicePackError, match="jump01 could not read KMSNEW") as exc:
        read_host(Shell(), MEDIA, _jump_reach())
    assert cause in str(exc.value)
    assert "unexpected form" not in str(exc.value)


def test_a_failed_remote_detail_read_is_refused_naming_the_causes(
    answers: dict[str, str],
) -> None:
    readings = t.cast(
        HostReadings,
        types.SimpleNamespace(
            server_build=Build(5, 5, 2650), install_path="C:\\EXCHSRVR", exchange_services=()
        ),
    )
    answer = "==exchops:begin:sp_log_dir== \r\nThe network name cannot be found.\r\n==exchops:end:failed== \r\n"

    class Shell:
        ran: list[str] = []

        def run(self, command_line: str) -> CommandOutput:
            self.ran.append(command_line)
            return CommandOutput(
                answer + "==exchops:begin:sp_record== \r\n==exchops:end:failed== \r\n", "", 0, 0.1
            )

    shell = Shell()
    with pytest.raises(ServicePackError, match="administrative share C\\$"):
        read_details(shell, readings, False, _jump_reach())
    assert 'dir /-c "\\\\KMSNEW\\C$\\Exchange Server Setup.log"' in shell.ran[0]


def test_resume_only_without_a_run_record_reads_and_changes_nothing(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said, services = FakeHost(answers), [], FakeServices()
    report = _job(host, said, fake_clock.clock, services, resume_only=True).run()
    assert (report.outcome, report.changed, report.decided_by) == (
        "ok",
        False,
        ["run record: none"],
    )
    assert services.log == [] and host.update_runs == 0 and len(host.commands) == 2


def test_resume_only_finishes_the_run_its_record_names_and_never_starts_update_exe(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host = FakeHost(answers, record=RECORD, updated=True)
    said: list[str] = []
    services = FakeServices(running=())
    report = _job(host, said, fake_clock.clock, services, resume_only=True).run()
    assert (report.outcome, report.changed) == ("ok", True)
    assert services.log == [f"start {name}" for name in reversed(STOPPED)]
    assert host.record is None and host.update_runs == 0


def test_resume_only_in_check_mode_says_what_it_would_finish(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said, services = FakeHost(answers, record=RECORD), [], FakeServices(running=())
    report = _job(host, said, fake_clock.clock, services, resume_only=True, check_mode=True).run()
    assert (report.outcome, report.changed) == ("not_run", True)
    assert "finish the earlier run" in report.remedy and services.log == []
    assert host.record == RECORD


@pytest.mark.parametrize(
    ("clock", "due"),
    [
        ((22, 15, 2), "22:17"),  # at least 60 s ahead, on a whole minute
        ((22, 15, 0), "22:16"),
        ((23, 59, 30), "00:01"),  # past midnight: the job runs at the next 00:01
    ],
)
def test_an_at_job_is_due_a_minute_or_two_ahead_of_the_servers_clock(
    clock: tuple[int, int, int], due: str
) -> None:
    assert at_due(ServerClock(*clock, line="")) == due


def test_the_at_jobs_batch_makes_its_markers_around_update_exe_on_the_servers_disk() -> None:
    line = console_batch_command(LOG, MEDIA, ["/R"], "20261204043012", "KMSNEW")
    assert line == (
        '(if not exist "\\\\KMSNEW\\C$\\exchops" md "\\\\KMSNEW\\C$\\exchops") & '
        "(echo @echo off& echo md C:\\exchops\\sp-20261204043012-started& "
        f"echo {UPDATE} /R& echo md C:\\exchops\\sp-20261204043012-finished)"
        '> "\\\\KMSNEW\\C$\\exchops\\runsp.cmd"'
    )
    assert schedule_command(LOG, "KMSNEW", "22:17") == (
        'at \\\\KMSNEW 22:17 /interactive "cmd /c C:\\exchops\\runsp.cmd"'
    )
    assert "sp_markers" in poll_command(LOG, None, "KMSNEW", markers=True)


@pytest.mark.parametrize("media", ["\\\\FILES\\KITS\\EXCH55SP3", "EXCH55SP3"])
def test_an_at_job_refuses_a_kit_that_system_cannot_read_before_anything_changes(
    answers: dict[str, str], fake_clock: t.Any, media: str
) -> None:
    host, said, services = FakeHost(answers), [], FakeServices()
    job = _job(host, said, fake_clock.clock, services, reach=_jump_reach(), launch="at_interactive")
    job.options = dataclasses.replace(job.options, media=media)
    with pytest.raises(Refusal, match="runs update.exe as SYSTEM") as refused:
        job.run()
    assert "Copy the kit to KMSNEW's disk" in str(refused.value)
    assert services.log == [] and host.record is None
