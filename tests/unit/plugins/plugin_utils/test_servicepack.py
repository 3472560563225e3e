# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reapplying a service pack: the command lines and readings (plugins/plugin_utils/
_servicepack_probe.py), and the job (_servicepack.py) run through fake shells that answer with
recorded lab output (fixtures/servicepack), on the fake clock. The decisions it takes
(_servicepack_plan.py) are tested in test_servicepack_plan.py."""

from __future__ import annotations

import threading
import typing as t

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._builds import Build
from ansible_collections.exchops.kms.plugins.plugin_utils._facts import assemble
from ansible_collections.exchops.kms.plugins.plugin_utils._probe import split_sections
from ansible_collections.exchops.kms.plugins.plugin_utils._servicepack import (
    Options,
    ServicePackJob,
    format_elapsed,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._servicepack_plan import HostReadings
from ansible_collections.exchops.kms.plugins.plugin_utils._servicepack_probe import (
    PollReading,
    detail_command,
    poll_command,
    read_command,
    readings_from,
    restore_command,
    setup_log_path,
    update_command,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    SETUP_LOG_INITIALIZED,
    parse_setup_log,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._winrs import (
    CommandOutput,
    WinrsUnreachable,
)

MEDIA = r"D:\EXCH55SP3\ENG\SERVER\SETUP\I386"
UPDATE = '"D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386\\update.exe"'
# The lab's hosts answer as Windows Server 2003 does.
NO_TASKS = "INFO: No tasks running with the specified criteria."


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
        restore_command({"MSExchangeIS": "auto", "MSExchangeKMS": "manual"}),
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


def test_start_types_are_set_back_with_the_words_sc_config_takes() -> None:
    line = restore_command(
        {"MSExchangeIS": "auto", "MSExchangeKMS": "manual", "Tlntsvr": "disabled"}
    )
    assert "sc config MSExchangeIS start= auto" in line
    assert "sc config MSExchangeKMS start= demand" in line
    assert "sc config Tlntsvr start= disabled" in line


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
    return readings_from(sections, facts.facts, facts.warnings)


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


def test_media_without_update_exe_reads_as_no_media_build(answers: dict[str, str]) -> None:
    answer = (
        answers["read_before"]
        .replace("Version=5.5.2650.0\r\r\n", "")
        .replace(
            "==exchops:begin:sp_media== \r\n",
            "==exchops:begin:sp_media== \r\nNo Instance(s) Available.\r\n",
        )
    )
    assert _readings(answer).media_version is None


def test_a_running_update_exe_is_seen_with_its_pid(answers: dict[str, str]) -> None:
    answer = answers["read_before"].replace(
        NO_TASKS,
        '"update.exe","2468","Services","0","12,345 K"',
    )
    assert _readings(answer).update_pids == (2468,)


def test_a_host_without_tasklist_cannot_tell_whether_update_exe_runs(
    answers: dict[str, str],
) -> None:
    answer = answers["read_before"].replace(
        NO_TASKS,
        "'tasklist' is not recognized as an internal or external command,\r\noperable program or batch file.",
    )
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
    ) -> None:
        self.answers = answers
        self.lose_update = lose_update
        self.hang_update = hang_update
        self.setup_sets_is_manual = setup_sets_is_manual
        self.setup_skips_kmserver = setup_skips_kmserver
        self.failing_polls = failing_polls  # polls that fail before one is answered
        self.unreadable_after = unreadable_after  # reading the host fails once update.exe ran
        self.update_runs = 0
        self.updated = False
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
        if "sp_config_" in command_line:
            return CommandOutput(
                "==exchops:begin:sp_config_0== \r\n[SC] ChangeServiceConfig SUCCESS\r\n==exchops:end:ok== \r\n",
                "",
                0,
                0.1,
            )
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
            if self.hang_update and self.update_runs:
                answer = answer.replace(NO_TASKS, '"update.exe","2468","Services","0","9,876 K"')
            return CommandOutput(answer, "", 0, 0.1)
        if "sp_log_dir" in command_line:
            return CommandOutput(
                self.answers["detail_after" if "sp_log_text" in command_line else "detail_before"],
                "",
                0,
                0.1,
            )
        if "sp_log_text" in command_line and "sp_tasks" in command_line:
            if self.failing_polls:
                self.failing_polls -= 1
                raise WinrsUnreachable(
                    "kms-new (http://127.0.0.2:5985/wsman)", "unreachable: no route."
                )
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


def _job(host: FakeHost, said: list[str], clock: t.Any, **options: t.Any) -> ServicePackJob:
    """The job on the fake clock (tests/unit/conftest.py): no wait sleeps for real."""
    values = {
        "media": MEDIA,
        "build": Build(5, 5, 2650),
        "arguments": (),
        "success_exit_codes": (0,),
        "timeout": 60,
        "poll_interval": 1,
        "progress_interval": 1,
    }
    values.update(options)
    return ServicePackJob(
        "kms-new", host.open, Options(**values), say=said.append, verbose=said.append, clock=clock
    )


def test_the_kb_target_gets_sp3_once_and_reads_back_sp3_binaries(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said = FakeHost(answers), []
    report = _job(host, said, fake_clock.clock).run()
    assert (report.outcome, report.changed, report.failed, report.exit_code) == (
        "ok",
        True,
        False,
        0,
    )
    assert (report.build_before, report.kms_binary_before) == ("5.5.2650.0", "5.5.1960.8")
    assert (report.build_after, report.kms_binary_after) == ("5.5.2650.0", "5.5.2650.12")
    assert host.update_runs == 1
    assert report.setup_log_tail[-1].endswith("Setup completed successfully.")
    assert len(report.setup_log_tail) == 20  # the newest lines of the run, at most 20
    assert "Installing into C:\\EXCHSRVR" not in " ".join(
        report.setup_log_tail
    )  # the old run is not read
    assert report.start_types_restored == {}
    assert any("starting update.exe" in line for line in said)
    assert all(shell.closed for shell in host.shells)


def test_check_mode_reads_predicts_and_runs_nothing(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said = FakeHost(answers), []
    report = _job(host, said, fake_clock.clock, check_mode=True).run()
    assert (report.outcome, report.changed, report.build_after, report.kms_binary_after) == (
        "not_run",
        True,
        "5.5.2650.0",
        "5.5.2650.0",
    )
    assert host.update_runs == 0
    assert all("sp_media" in command or "sp_log_dir" in command for command in host.commands)


def test_a_lost_connection_is_followed_by_polls_through_a_new_shell_never_a_second_run(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said = FakeHost(answers, lose_update=True), []
    report = _job(host, said, fake_clock.clock).run()
    assert host.update_runs == 1
    assert (report.outcome, report.failed, report.exit_code) == ("ok", False, None)
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
    assert report.message == (
        "update.exe ran, then reading the host failed: kms-new (http://127.0.0.2:5985/wsman): "
        "unreachable: no route.. update.exe ran but the host could not be read afterwards. "
        "Check the versions with exchops.kms.exchange_facts and the setup log on the host, then "
        "run this task again; it runs nothing when the versions already match."
    )


def test_setup_changing_a_start_type_is_set_back_and_reported(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said = FakeHost(answers, setup_sets_is_manual=True), []
    report = _job(host, said, fake_clock.clock).run()
    assert report.start_types_restored == {
        "MSExchangeIS": {"before": "auto", "after_setup": "manual", "restored": True}
    }
    assert any("sc config MSExchangeIS start= auto" in command for command in host.commands)
    assert not report.failed


def test_success_reported_by_setup_fails_the_task_when_kmserver_exe_is_still_old(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said = FakeHost(answers, setup_skips_kmserver=True), []
    report = _job(host, said, fake_clock.clock).run()
    assert (report.outcome, report.failed, report.kms_binary_after) == ("ok", True, "5.5.1960.8")
    assert report.message.startswith(
        "update.exe reported success (exit code 0; the setup log shows a completed run) but "
        "Kmserver.exe's file version is 5.5.1960.8 (5.5 RTM), still the Exchange CD's build, not "
        "5.5.2650 (5.5 SP3)."
    )
    assert host.update_runs == 1


def test_a_timeout_leaves_update_exe_and_its_shell_alone(
    answers: dict[str, str], fake_clock: t.Any
) -> None:
    host, said = FakeHost(answers, hang_update=True), []
    fake_clock.thread_grace = 0.0  # update.exe hangs until the test ends
    try:
        report = _job(host, said, fake_clock.clock, timeout=2).run()
    finally:
        host.release.set()
    assert (report.outcome, report.failed, report.changed) == ("still_running", True, True)
    (update_shell,) = [shell for shell in host.shells if shell.ran_update]
    assert not update_shell.closed, "deleting the shell would end update.exe"
    assert host.update_runs == 1
    assert fake_clock.time == 2.0
    assert said[-1] == (
        "kms-new: 1s elapsed, update.exe running (tasklist: update.exe running); setup log: "
        "++++ Microsoft Exchange Setup initialized ++++"
    )


def test_poll_readings_know_when_the_run_ended() -> None:
    ended = PollReading(
        False,
        parse_setup_log(f"{SETUP_LOG_INITIALIZED}\r\n[10:42:04] Setup completed successfully.\r\n"),
    )
    running = PollReading(
        True,
        parse_setup_log(f"{SETUP_LOG_INITIALIZED}\r\n[10:42:01] Stopping service MSExchangeIS\r\n"),
    )
    assert ended.ended and not running.ended
    assert running.last_line == "[10:42:01] Stopping service MSExchangeIS"
    assert PollReading(None, ()).last_line is None
