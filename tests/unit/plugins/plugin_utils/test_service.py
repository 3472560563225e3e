# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Starting, stopping and watching a service (plugins/plugin_utils/_service.py).

`ServiceControl` gets a `run(command_line)` callable. Here that is `ScriptedHost`, which reads the
batched sections our code sends and answers each command in Windows' formats
(docs/windows-output.md: #e5, #e6, #e7, #sc-failures and #sc-enumdepend for sc, #wmic-ntevent for
wmic with its CR CR LF line ends), from a small model: services with states, dependencies and
display names, an Application log with record numbers, and scripted outcomes (a KMS start that
ends in event 5389, a start that stays pending, a service that dies during the watch, a stop that
hangs). Time is a fake clock that `sleep` moves.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._poll import Clock
from ansible_collections.exchops.kms.plugins.plugin_utils._service import (
    POLL_SECONDS,
    ServiceControl,
    ServiceError,
    check_service_arguments,
    sc_enumdepend,
    sc_start,
    settles_to,
    start_line,
    steps_for,
    wmic_event_records,
)

PASSWORD = "HZGYYHACWLQACTI"  # the example KM Server startup password of KB Q184420
KMS = "MSExchangeKMS"
KMS_SERVER_QUERY = r'reg query "HKLM\SOFTWARE\Microsoft\Exchange\KMServer"'
EVENT_TEXTS = {
    5389: ("Information", "KMS is exiting with error 0."),
    5057: ("Error", "The supplied password is not valid."),
    5058: (
        "Error",
        "Microsoft Exchange Key Management service has trapped an exception. Event data "
        "contains exception and context records.",
    ),
    5015: (
        "Error",
        "Microsoft Exchange Key Management service failed logging on as a MAPI client.",
    ),
    101: ("Information", "MSExchangeKMS (2480) The database engine stopped."),
    5085: (
        "Error",
        "KMS can not mount the key database. Either the database is missing or it is corrupted. "
        "The service started, but Admin/User can not do any operation except restoring the "
        "database from a backup set. After restoring, please stop and restart the service.",
    ),
}
STATE_CODES = {
    "stopped": 1,
    "start_pending": 2,
    "stop_pending": 3,
    "running": 4,
    "paused": 7,
}
SC_MESSAGES = {
    5: "Access is denied.",
    1051: "A stop control has been sent to a service that other running services are dependent "
    "on.",
    1056: "An instance of the service is already running.",
    1058: "The service cannot be started, either because it is disabled or because it has no "
    "enabled devices associated with it.",
    1060: "The specified service does not exist as an installed service.",
    1062: "The service has not been started.",
    1068: "The dependency service or group failed to start.",
    1069: "The service did not start due to a logon failure.",
}
CRLF = "\r\n"


# ---------------------------------------------------------------------------------------------
# The scripted host


@dataclass
class Outcome:
    """What a start turns into once it settles."""

    state: str = "running"
    events: tuple[int, ...] = ()
    win32_exit_code: int = 0
    pending_queries: int = 0  # sc query answers START_PENDING this many times first
    dies_after_queries: int | None = None  # RUNNING for this many queries, then stopped
    dying_events: tuple[int, ...] = ()
    events_while_running: tuple[int, ...] = ()
    start_error: int | None = None  # sc start fails with this Win32 error
    source: str = KMS  # the source of `events`


@dataclass
class Service:
    name: str
    display: str
    state: str = "stopped"
    dependencies: tuple[str, ...] = ()
    start_type: int = 3
    image_path: str = ""
    outcome: Outcome = field(default_factory=Outcome)
    hangs_on_stop: bool = False
    refuses_stop: int = 0  # sc stop fails with this Win32 error
    win32_exit_code: int = 0
    # Runtime bookkeeping
    pending: int = 0
    running_queries: int = 0


class ScriptedHost:
    def __init__(
        self,
        *services: Service,
        wmic: bool = True,
        records: list | None = None,
        master_password_path: str | None = "",
    ) -> None:
        self.services = {service.name.upper(): service for service in services}
        self.wmic = wmic
        # HKLM\SOFTWARE\Microsoft\Exchange\KMServer's MasterPasswordPath (KB Q196129): "" typed,
        # "A:\" a startup disk, None no such value.
        self.master_password_path = master_password_path
        self.log: list[tuple[int, int, str]] = list(records or [])  # (record, id, source)
        self.lines: list[str] = []
        self.now = 1000.0
        self.sleeps: list[float] = []

    # time
    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    # the event log
    def add_event(self, event_id: int, source: str = KMS) -> None:
        record = self.log[-1][0] + 1 if self.log else 1
        self.log.append((record, event_id, source))

    def commands(self) -> list[str]:
        return [command for line in self.lines for _name, command in _sections(line)]

    # WinrsShell.run
    def run(self, line: str) -> SimpleNamespace:
        self.lines.append(line)
        self.now += 0.2
        out = []
        for name, command in _sections(line):
            text, ok = self.answer(command)
            out.append(
                f"==exchops:begin:{name}=={CRLF}{text}==exchops:end:{'ok' if ok else 'failed'}== {CRLF}"
            )
        return SimpleNamespace(stdout="".join(out), stderr="", exit_code=0)

    def answer(self, command: str) -> tuple[str, bool]:
        words = command.split()
        if words[0] == "sc":
            return self.sc(words[1], words[2], words[3:])
        if words[0] == "reg":
            return self.reg(command)
        if words[0] == "wmic":
            if not self.wmic:
                return (
                    "'wmic' is not recognized as an internal or external command,\r\n"
                    "operable program or batch file.\r\n",
                    False,
                )
            return self.wmic_events(command)
        raise AssertionError(f"unexpected command {command!r}")

    def reg(self, command: str) -> tuple[str, bool]:
        """`reg query` of the KMServer key, Vista+ layout (docs/windows-output.md E1, E2)."""
        assert command == KMS_SERVER_QUERY, command
        text = f"{CRLF}HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\KMServer{CRLF}"
        if self.master_password_path is not None:
            text += f"    MasterPasswordPath    REG_SZ    {self.master_password_path}{CRLF}"
        return text + CRLF, True

    def sc(self, verb: str, name: str, rest: list[str]) -> tuple[str, bool]:
        service = self.services.get(name.upper())
        if service is None:
            operation = {
                "query": "EnumQueryServicesStatus:OpenService",
                "start": "StartService: OpenService",
            }
            return _sc_failure(operation.get(verb, "OpenService"), 1060), False
        if verb == "query":
            self._advance(service)
            return _sc_status(service), True
        if verb == "qc":
            return _sc_qc(service), True
        if verb == "start":
            return self.start(service, rest)
        if verb == "stop":
            return self.stop(service)
        if verb == "enumdepend":
            return self.enumdepend(service)
        raise AssertionError(verb)

    def _advance(self, service: Service) -> None:
        outcome = service.outcome
        if service.state == "start_pending":
            if service.pending > 0:
                service.pending -= 1
                return
            self._settle(service)
        elif service.state == "running" and outcome.dies_after_queries is not None:
            if service.running_queries >= outcome.dies_after_queries:
                service.state = "stopped"
                for event_id in outcome.dying_events:
                    self.add_event(event_id)
            service.running_queries += 1

    def _settle(self, service: Service) -> None:
        outcome = service.outcome
        service.state = outcome.state
        service.win32_exit_code = outcome.win32_exit_code
        for event_id in outcome.events + outcome.events_while_running:
            # ESE's "database engine stopped" comes from source ESE97 (KB Q274321).
            self.add_event(event_id, "ESE97" if event_id == 101 else outcome.source)

    def start(self, service: Service, arguments: list[str]) -> tuple[str, bool]:
        service.arguments = arguments  # type: ignore[attr-defined]
        if service.state != "stopped":
            return _sc_failure("StartService", 1056), False
        if service.start_type == 4:
            return _sc_failure("StartService", 1058), False
        if service.outcome.start_error:
            return _sc_failure("StartService", service.outcome.start_error), False
        for dependency in service.dependencies:
            depended = self.services[dependency.upper()]
            if depended.state != "running":
                text, ok = self.start(depended, [])
                if ok:
                    self._settle(depended)
                if depended.state != "running":
                    return _sc_failure("StartService", 1068), False
        service.state = "start_pending"
        service.pending = service.outcome.pending_queries
        service.running_queries = 0
        return _sc_status(service, pid=1320), True

    def dependents(self, service: Service) -> list[Service]:
        """Every service that depends on `service`, directly or not, dependents first."""
        direct = [
            other
            for other in self.services.values()
            if service.name.upper() in (dep.upper() for dep in other.dependencies)
        ]
        found: list[Service] = []
        for other in direct:
            for item in [*self.dependents(other), other]:
                if item not in found:
                    found.append(item)
        return found

    def enumdepend(self, service: Service) -> tuple[str, bool]:
        found = self.dependents(service)
        text = f"Enum: entriesRead = {len(found)}{CRLF}"
        for other in found:
            block = _sc_status(other)
            text += block.replace(
                f"SERVICE_NAME: {other.name}{CRLF}",
                f"SERVICE_NAME: {other.name}{CRLF}DISPLAY_NAME: {other.display}{CRLF}",
            )
        return text, True

    def stop(self, service: Service) -> tuple[str, bool]:
        if service.state == "stopped":
            return _sc_failure("ControlService", 1062), False
        if service.refuses_stop:
            return _sc_failure("ControlService", service.refuses_stop), False
        if any(other.state != "stopped" for other in self.dependents(service)):
            return _sc_failure("ControlService", 1051), False
        service.state = "stop_pending"
        answer = _sc_status(service)
        if not service.hangs_on_stop:
            service.state = "stopped"  # the next sc query sees it stopped
        return answer, True

    def wmic_events(self, command: str) -> tuple[str, bool]:
        source = re.search(r"SourceName='([^']+)'", command).group(1)
        after = re.search(r"RecordNumber > ([0-9]+)", command)
        rows = [
            row
            for row in reversed(self.log)  # newest first, as the lab does
            if row[2].upper() == source.upper() and (after is None or row[0] > int(after.group(1)))
        ]
        if not rows:
            return f"No Instance(s) Available.{CRLF}", True
        end = "\r\r\n"
        text = end + end
        for record, event_id, event_source in rows:
            kind, message = EVENT_TEXTS[event_id]
            if after is None:
                text += f"RecordNumber={record}{end}{end}{end}"
            else:
                text += (
                    f"EventCode={event_id}{end}Message={message}{end}RecordNumber={record}{end}"
                    f"SourceName={event_source}{end}TimeGenerated=20010314091240.000000+000{end}"
                    f"Type={kind}{end}{end}{end}"
                )
        return text, True


_SECTION = re.compile(
    r"echo ==exchops:begin:([a-z0-9_]+)== & \((.*?)\) 2>&1 && echo ==exchops:end:ok== "
    r"\|\| echo ==exchops:end:failed=="
)


def _sections(line: str) -> list[tuple[str, str]]:
    return _SECTION.findall(line)


def _field(label: str, value: str) -> str:
    return f"        {label:<19}: {value}{CRLF}"


def _sc_status(service: Service, pid: int | None = None) -> str:
    code = STATE_CODES[service.state]
    controls = (
        "STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN"
        if service.state == "running"
        else "NOT_STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN"
    )
    text = CRLF + f"SERVICE_NAME: {service.name}{CRLF}"
    text += _field("TYPE", "10  WIN32_OWN_PROCESS")
    text += _field("STATE", f"{code}  {service.state.upper()}")
    text += f"{' ' * 32}({controls}){CRLF}"
    exit_code = service.win32_exit_code
    text += _field("WIN32_EXIT_CODE", f"{exit_code}  (0x{exit_code:x})")
    text += _field("SERVICE_EXIT_CODE", "0  (0x0)")
    text += _field("CHECKPOINT", "0x0")
    text += _field("WAIT_HINT", "0x7d0" if "pending" in service.state else "0x0")
    if pid is not None:
        text += _field("PID", str(pid)) + f"        {'FLAGS':<19}: {CRLF}"
    return text + CRLF


def _sc_qc(service: Service) -> str:
    start = {2: "2   AUTO_START", 3: "3   DEMAND_START", 4: "4   DISABLED"}[service.start_type]
    text = f"[SC] QueryServiceConfig SUCCESS{CRLF}{CRLF}SERVICE_NAME: {service.name}{CRLF}"
    text += _field("TYPE", "10  WIN32_OWN_PROCESS")
    text += _field("START_TYPE", start)
    text += _field("ERROR_CONTROL", "1   NORMAL")
    text += _field(
        "BINARY_PATH_NAME", service.image_path or f"C:\\Exchsrvr\\Bin\\{service.name}.exe"
    )
    text += _field("LOAD_ORDER_GROUP", "")
    text += _field("TAG", "0")
    text += _field("DISPLAY_NAME", service.display)
    dependencies = list(service.dependencies) or [""]
    text += _field("DEPENDENCIES", dependencies[0])
    for more in dependencies[1:]:
        text += f"{' ' * 27}: {more}{CRLF}"
    text += _field("SERVICE_START_NAME", "EXCHDOM\\ExchSvc")
    return text + CRLF


def _sc_failure(operation: str, code: int) -> str:
    return f"[SC] {operation} FAILED {code}:{CRLF}{CRLF}{SC_MESSAGES[code]}{CRLF}{CRLF}"


def exchange_55(
    kms_state: str = "stopped", ds_state: str = "running", sa_state: str = "running", **kms: object
) -> list[Service]:
    """The Exchange 5.5 services (KMS depends on DS, KB Q143380; DS on SA)."""
    return [
        Service("MSExchangeSA", "Microsoft Exchange System Attendant", sa_state),
        Service("MSExchangeDS", "Microsoft Exchange Directory", ds_state, ("MSExchangeSA",)),
        Service(
            "MSExchangeIS",
            "Microsoft Exchange Information Store",
            "running" if ds_state == "running" else "stopped",
            ("MSExchangeDS",),
        ),
        Service(KMS, "Microsoft Exchange Key Management Server", kms_state, ("MSExchangeDS",), **kms),  # type: ignore[arg-type]
    ]


def control(
    host: ScriptedHost, name: str = KMS, watch: int = 15, timeout: int = 60, **extra: object
) -> ServiceControl:
    return ServiceControl(
        host.run,
        name,
        startup_password=extra.pop("password", PASSWORD),  # type: ignore[arg-type]
        watch=watch,
        timeout=timeout,
        clock=host.clock,
        sleep=host.sleep,
    )


def starts(host: ScriptedHost) -> list[str]:
    return [command for command in host.commands() if command.startswith(("sc start", "net start"))]


# ---------------------------------------------------------------------------------------------
# Pure parts


@pytest.mark.parametrize(
    ("wanted", "state", "steps"),
    [
        ("started", "running", ()),
        ("started", "stopped", ("start",)),
        ("stopped", "running", ("stop",)),
        ("stopped", "stopped", ()),
        ("restarted", "running", ("stop", "start")),
        ("restarted", "stopped", ("start",)),
    ],
)
def test_steps_follow_the_wanted_and_the_settled_state(
    wanted: str, state: str, steps: tuple
) -> None:
    assert steps_for(wanted, state) == steps


@pytest.mark.parametrize(
    ("state", "settled"),
    [
        ("running", "running"),
        ("start_pending", "running"),
        ("stop_pending", "stopped"),
        ("paused", None),
    ],
)
def test_pending_states_settle_towards_their_goal_and_paused_is_not_driven(
    state: str, settled: str | None
) -> None:
    assert settles_to(state) == settled


def test_command_builders_pass_the_password_only_to_sc_start() -> None:
    assert sc_start(KMS, PASSWORD) == f'sc start {KMS} "{PASSWORD}"'
    assert sc_start("MSExchangeDS") == "sc start MSExchangeDS"
    assert sc_start(KMS, PASSWORD, remote="KMSOLD") == f'sc \\\\KMSOLD start {KMS} "{PASSWORD}"'
    assert sc_enumdepend("MSExchangeDS") == "sc enumdepend MSExchangeDS 64000"
    assert sc_enumdepend(KMS, remote="KMSOLD") == f"sc \\\\KMSOLD enumdepend {KMS} 64000"
    assert wmic_event_records(KMS) == (
        "wmic ntevent where \"LogFile='Application' and SourceName='MSExchangeKMS'\" "
        "get RecordNumber /value < NUL"
    )
    assert 'and RecordNumber > 41"' in wmic_event_records(KMS, 41)
    assert wmic_event_records(KMS, 41, remote="KMSOLD").startswith("wmic /node:KMSOLD ntevent")


@pytest.mark.parametrize(
    ("name", "state", "password", "match"),
    [
        pytest.param(
            "Microsoft Exchange Key Management Server",
            "started",
            PASSWORD,
            "not a service key name",
            id="display name",
        ),
        pytest.param(
            "KMS&calc",
            "stopped",
            None,
            "not a service key name",
            id="cmd metacharacter in name",
        ),
        pytest.param(KMS, "running", PASSWORD, "state is 'running'", id="unknown state"),
        pytest.param(
            KMS,
            "started",
            "HZGYY HACW",
            "cannot pass it unchanged",
            id="space in password",
        ),
        pytest.param(KMS, "started", 'HZ"GYY', "cannot pass it unchanged", id="quote in password"),
        pytest.param(
            KMS,
            "started",
            "HZ%PATH%",
            "cannot pass it unchanged",
            id="percent in password",
        ),
    ],
)
def test_arguments_that_cannot_work_are_refused_before_anything_is_sent(
    name: str, state: str, password: str | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match) as caught:
        check_service_arguments(name, state, password)
    assert str(caught.value).endswith(".")
    if password:
        assert password not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "state", "password", "warnings"),
    [
        (KMS, "started", PASSWORD, []),
        # Whether KMS needs the password is read from the host (KB Q196129): ServiceControl.
        (KMS, "started", None, []),
        ("msexchangekms", "restarted", "", []),
        (KMS, "stopped", None, []),
        (KMS, "restarted", PASSWORD, []),
        ("MSExchangeDS", "started", None, []),
        (
            "MSExchangeDS",
            "started",
            PASSWORD,
            ["startup_password is used only for MSExchangeKMS; it was not passed to MSExchangeDS."],
        ),
    ],
)
def test_valid_arguments_pass_with_a_warning_for_a_password_that_is_ignored(
    name: str, state: str, password: str | None, warnings: list[str]
) -> None:
    assert check_service_arguments(name, state, password) == warnings


# ---------------------------------------------------------------------------------------------
# Starting


def test_a_stopped_kms_starts_with_the_password_as_start_parameter_and_is_watched() -> None:
    host = ScriptedHost(*exchange_55())
    service = control(host, watch=15)
    assert service.ensure("started") is True
    assert starts(host) == [f'sc start {KMS} "{PASSWORD}"']
    assert not any(
        command.startswith(("net start", "sc config", "reg add", "reg delete"))
        for command in host.commands()
    )
    assert service.progress.result() == {
        "name": KMS,
        "state": "running",
        "previous_state": "stopped",
        "events": [],
        "dependencies_started": [],
        "password_source": "start_parameter",
    }
    # Watched for the whole period, asking sc query every few seconds.
    watched = host.commands()[host.commands().index(f'sc start {KMS} "{PASSWORD}"') :]
    assert sum(command == f"sc query {KMS}" for command in watched) >= 15 / POLL_SECONDS
    assert host.now - 1000 >= 15  # the fake clock: sleeps plus 0.2 s per round trip
    assert max(host.sleeps) <= POLL_SECONDS


def test_a_running_service_is_only_queried_when_it_should_run() -> None:
    host = ScriptedHost(*exchange_55(kms_state="running"))
    service = control(host)
    assert service.ensure("started") is False
    assert host.commands() == [f"sc query {KMS}", f"sc qc {KMS}", KMS_SERVER_QUERY]
    assert len(host.lines) == 1
    assert service.progress.result()["state"] == "running"
    assert service.acted is False


def test_a_stopped_service_stays_untouched_when_it_should_be_stopped() -> None:
    host = ScriptedHost(*exchange_55())
    assert control(host).ensure("stopped") is False
    assert host.commands() == [f"sc query {KMS}", f"sc qc {KMS}"]


def test_a_start_that_ends_in_event_5389_names_the_event_its_meaning_and_the_fix() -> None:
    outcome = Outcome(state="stopped", events=(101, 5389))
    host = ScriptedHost(*exchange_55(outcome=outcome))
    host.services["MSEXCHANGEKMS"].outcome = outcome
    service = control(host)
    with pytest.raises(ServiceError) as caught:
        service.ensure("started")
    message = str(caught.value)
    assert message.startswith("MSExchangeKMS started but was STOPPED again right after sc start")
    assert "event 5389 (record 2" in message
    assert '"KMS is exiting with error 0."' in message
    assert "KB Q259906" in message
    assert "exchops.kms.remediate_kms_move" in message
    assert PASSWORD not in message and PASSWORD not in repr(caught.value.result)
    assert service.acted is True
    assert caught.value.result["state"] == "stopped"
    assert [event["id"] for event in caught.value.result["events"]] == [5389]


def test_old_5389_events_from_before_the_start_do_not_count() -> None:
    host = ScriptedHost(*exchange_55())
    for _old in range(3):
        host.add_event(5389)
    service = control(host, watch=3)
    assert service.ensure("started") is True
    assert service.progress.events == []
    assert "RecordNumber > 3" in " ".join(host.commands())


def test_a_wrong_startup_password_names_event_5057_and_the_variable_to_check() -> None:
    outcome = Outcome(state="stopped", events=(5057,), win32_exit_code=2140)
    host = ScriptedHost(*exchange_55(outcome=outcome))
    with pytest.raises(
        ServiceError,
        match=r"event 5057 .*wrong or missing \(KB Q184420\)\. Check kms_startup_password .*"
        r"the ORIGINAL KM Server's password or disk, not the one shown when KM Server was "
        r"installed on this server \(KB Q154531, Q198814, Q155216\)",
    ):
        control(host, password="NOTTHEPASSWORD").ensure("started")


def test_a_stop_with_error_2140_and_no_event_still_points_to_the_password() -> None:
    outcome = Outcome(state="stopped", win32_exit_code=2140)
    host = ScriptedHost(*exchange_55(outcome=outcome))
    with pytest.raises(
        ServiceError, match=r"logged no new MSExchangeKMS event \(WIN32_EXIT_CODE 2140.*KB Q184420"
    ):
        control(host).ensure("started")


def test_kms_that_dies_during_the_watch_fails_with_the_event_that_explains_it() -> None:
    outcome = Outcome(dies_after_queries=3, dying_events=(5058,))
    host = ScriptedHost(*exchange_55(outcome=outcome))
    with pytest.raises(ServiceError) as caught:
        control(host, watch=30).ensure("started")
    message = str(caught.value)
    assert re.search(r"was STOPPED again [0-9]+ s after reaching RUNNING", message)
    assert (
        "event 5058" in message and "Restore the Kmsdata folder from an offline backup" in message
    )
    assert host.now - 1000 < 30  # failed as soon as it was seen, not at the end of the watch


@pytest.mark.parametrize(
    ("event", "meaning"),
    [
        (5015, r"KB Q274321"),
        # KB 818952: with 5085 "The service started", but it cannot mount the KM database.
        (5085, r"KMS cannot mount the key database \(KB 818952, Exchange 2000\).*eseutil /d"),
    ],
)
def test_a_failure_event_while_kms_still_runs_fails_the_watch(event: int, meaning: str) -> None:
    outcome = Outcome(events_while_running=(event,))
    host = ScriptedHost(*exchange_55(outcome=outcome))
    with pytest.raises(
        ServiceError, match=rf"^MSExchangeKMS is running but logged event {event} .*{meaning}"
    ):
        control(host, watch=0).ensure("started")


def test_events_5389_and_5015_together_point_to_the_service_account() -> None:
    outcome = Outcome(state="stopped", events=(5389, 5015))
    host = ScriptedHost(*exchange_55(outcome=outcome))
    with pytest.raises(
        ServiceError,
        match=r"Events 5389 and 5015 together point to the service account's rights \(KB Q274321\)",
    ):
        control(host).ensure("started")


def test_failure_event_ids_fail_only_kms_other_services_just_report_their_new_events() -> None:
    host = ScriptedHost(*exchange_55(ds_state="stopped"))
    host.services["MSEXCHANGEDS"].outcome = Outcome(events=(5389,), source="MSExchangeDS")
    host.add_event(5057, "MSExchangeDS")  # an old one, before the start
    service = control(host, name="MSExchangeDS", watch=0, password=None)
    assert service.ensure("started") is True
    assert [
        (event["id"], event["source"], event["record"]) for event in service.progress.events
    ] == [(5389, "MSExchangeDS", 2)]


def test_a_start_that_stays_pending_past_the_timeout_names_the_state() -> None:
    outcome = Outcome(pending_queries=1000)
    host = ScriptedHost(*exchange_55(outcome=outcome))
    with pytest.raises(
        ServiceError,
        match=r"^MSExchangeKMS is still START_PENDING [0-9]+ s after sc start \(timeout 20 s\)",
    ):
        control(host, timeout=20).ensure("started")
    assert 20 <= host.now - 1000 < 30


def test_a_slow_start_is_polled_until_it_runs() -> None:
    outcome = Outcome(pending_queries=4)
    host = ScriptedHost(*exchange_55(outcome=outcome))
    service = control(host, watch=0)
    assert service.ensure("started") is True
    assert service.progress.state == "running"
    assert host.sleeps[:3] == [1.0, 2.0, 3.0]  # the pause grows to POLL_SECONDS


def test_stopped_dependencies_are_started_by_the_service_manager_and_reported() -> None:
    host = ScriptedHost(*exchange_55(ds_state="stopped", sa_state="stopped"))
    service = control(host, watch=0)
    assert service.ensure("started") is True
    assert service.progress.dependencies_started == ["MSExchangeSA", "MSExchangeDS"]
    # Only sc start of KMS itself was sent: the service manager started the others.
    assert starts(host) == [f'sc start {KMS} "{PASSWORD}"']


def test_a_start_refused_by_sc_names_the_error_and_what_to_do() -> None:
    outcome = Outcome(start_error=1069)
    host = ScriptedHost(*exchange_55(outcome=outcome))
    with pytest.raises(
        ServiceError,
        match=r"sc start MSExchangeKMS failed with error 1069 \(The service did not start due to a logon failure\.\)\. Its account could not log on",
    ):
        control(host).ensure("started")


def test_a_disabled_service_is_refused_before_any_start() -> None:
    host = ScriptedHost(*exchange_55(start_type=4))
    with pytest.raises(
        ServiceError,
        match=r"is disabled .*sc config MSExchangeKMS start= demand\.$",
    ) as caught:
        control(host).ensure("started")
    assert starts(host) == []
    assert caught.value.changed is False


def test_a_missing_service_fails_with_nothing_changed() -> None:
    host = ScriptedHost(*exchange_55())
    with pytest.raises(
        ServiceError,
        match=r"^there is no service named MSExchangeXYZ \(sc query: error 1060.*name\.$",
    ) as caught:
        control(host, name="MSExchangeXYZ", password=None).ensure("stopped")
    assert caught.value.changed is False


def test_a_paused_service_is_refused() -> None:
    host = ScriptedHost(*exchange_55(kms_state="paused"))
    with pytest.raises(
        ServiceError, match=r"is PAUSED.*sc continue MSExchangeKMS.*run again\.$"
    ) as caught:
        control(host).ensure("started")
    assert caught.value.changed is False


def test_without_wmic_only_the_state_is_watched_and_a_warning_says_so() -> None:
    host = ScriptedHost(*exchange_55(), wmic=False)
    service = control(host, watch=3)
    assert service.ensure("started") is True
    assert service.progress.warnings == [
        "'wmic' is not available on this host, so the Application log cannot be read: only the "
        "state of MSExchangeKMS was watched. Look for new MSExchangeKMS events in Event Viewer."
    ]
    assert sum(command.startswith("wmic") for command in host.commands()) == 1


def test_a_password_in_imagepath_is_warned_about_masked() -> None:
    host = ScriptedHost(
        *exchange_55(kms_state="running", image_path=f"C:\\Exchsrvr\\Bin\\Kmserver.exe {PASSWORD}")
    )
    service = control(host)
    service.ensure("started")
    assert len(service.progress.warnings) == 1
    assert "KB Q235418" in service.progress.warnings[0]
    assert "C:\\Exchsrvr\\Bin\\Kmserver.exe ********" in service.progress.warnings[0]
    assert PASSWORD not in service.progress.warnings[0]


# ---------------------------------------------------------------------------------------------
# Stopping and restarting


def test_a_stop_stops_the_running_dependents_first_with_sc_stop_and_names_them() -> None:
    host = ScriptedHost(*exchange_55(kms_state="running"))
    service = control(host, name="MSExchangeDS", password=None)
    assert service.ensure("stopped") is True
    stops = [command for command in host.commands() if command.startswith("sc stop")]
    assert stops == ["sc stop MSExchangeIS", f"sc stop {KMS}", "sc stop MSExchangeDS"]
    assert host.commands()[2] == "sc enumdepend MSExchangeDS 64000"
    assert service.progress.result() == {
        "name": "MSExchangeDS",
        "state": "stopped",
        "previous_state": "running",
        "events": [],
        "dependents_stopped": ["MSExchangeIS", KMS],
    }


def test_a_stop_leaves_dependents_that_are_already_stopped_alone() -> None:
    host = ScriptedHost(*exchange_55(kms_state="stopped"))
    service = control(host, name="MSExchangeDS", password=None)
    service.ensure("stopped")
    assert service.progress.dependents_stopped == ["MSExchangeIS"]
    assert f"sc stop {KMS}" not in host.commands()


def test_a_stop_that_hangs_in_stop_pending_fails_after_the_timeout_naming_the_state() -> None:
    host = ScriptedHost(*exchange_55(kms_state="running", hangs_on_stop=True))
    with pytest.raises(ServiceError) as caught:
        control(host, timeout=10).ensure("stopped")
    message = str(caught.value)
    assert message.startswith(
        "MSExchangeKMS is still STOP_PENDING 10 s after sc stop (timeout 10 s): it accepted the stop"
    )
    assert "offline backup of the KM database" in message
    assert caught.value.result["state"] == "stop_pending"
    assert caught.value.changed is True


def test_a_stop_whose_checkpoint_never_moves_is_hung_before_the_timeout() -> None:
    host = ScriptedHost(*exchange_55(kms_state="running", hangs_on_stop=True))
    with pytest.raises(ServiceError) as caught:
        control(host, timeout=600).ensure("stopped")
    assert str(caught.value).startswith(
        "MSExchangeKMS has been STOP_PENDING for 30 s after sc stop without progress "
        "(CHECKPOINT 0x0, WAIT_HINT 2000 ms): its process hangs while stopping."
    )
    assert host.now - 1000.0 < 60  # gave up at the stall, not at the 600 s timeout
    # More time would not help a stall: the advice is the log, then the process.
    assert "larger timeout" not in str(caught.value)
    assert "Read the Application log; ending the process" in str(caught.value)


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        (5, "The account may not stop services: use a local administrator, then run again."),
        (1061, "wait until sc query MSExchangeKMS shows it settled, then run again."),
    ],
)
def test_a_refused_stop_changes_nothing_and_says_why(error: int, fix: str) -> None:
    SC_MESSAGES.setdefault(1061, "The service cannot accept control messages at this time.")
    host = ScriptedHost(*exchange_55(kms_state="running", refuses_stop=error))
    with pytest.raises(ServiceError) as caught:
        control(host).ensure("stopped")
    message = str(caught.value)
    assert message.startswith(
        f"MSExchangeKMS is still RUNNING: sc stop MSExchangeKMS failed with error {error} ("
    )
    assert message.endswith(fix)
    assert caught.value.changed is False
    assert caught.value.result["state"] == "running"


def test_a_dependent_that_will_not_stop_is_named_and_the_service_is_left_running() -> None:
    services = exchange_55(kms_state="running")
    services[2].refuses_stop = 5  # MSExchangeIS
    host = ScriptedHost(*services)
    with pytest.raises(ServiceError) as caught:
        control(host, name="MSExchangeDS", password=None).ensure("stopped")
    assert str(caught.value).startswith(
        "MSExchangeIS is still RUNNING: sc stop MSExchangeIS failed"
    )
    assert "sc stop MSExchangeDS" not in host.commands()


def test_a_stop_alone_knows_the_services_own_state_from_its_first_query() -> None:
    services = exchange_55(kms_state="running")
    services[2].refuses_stop = 5  # MSExchangeIS: the stop fails before DS is touched
    host = ScriptedHost(*services)
    service = ServiceControl(
        host.run, "MSExchangeDS", timeout=60, clock=Clock(host.clock, host.sleep)
    )
    with pytest.raises(ServiceError):
        service.stop()  # no read() first, as kms_backup stops KMS
    assert (service.progress.previous_state, service.progress.state) == ("running", "running")
    assert service.acted is False


def test_a_service_found_stop_pending_is_waited_for_and_named_when_it_never_stops() -> None:
    host = ScriptedHost(*exchange_55(kms_state="stop_pending"))
    with pytest.raises(
        ServiceError,
        match=r"was already STOP_PENDING when the task began and is still STOP_PENDING .*can damage it\.$",
    ):
        control(host, timeout=5).ensure("stopped")


def test_a_restart_stops_then_starts_and_is_always_a_change() -> None:
    host = ScriptedHost(*exchange_55(kms_state="running"))
    service = control(host, watch=0)
    assert service.ensure("restarted") is True
    commands = host.commands()
    assert commands.index(f"sc stop {KMS}") < commands.index(f'sc start {KMS} "{PASSWORD}"')
    assert service.progress.result()["state"] == "running"
    assert service.progress.result()["previous_state"] == "running"


def test_a_restart_of_a_stopped_service_only_starts_it() -> None:
    host = ScriptedHost(*exchange_55())
    assert control(host, watch=0).ensure("restarted") is True
    assert not any(command.startswith("sc stop") for command in host.commands())


# ---------------------------------------------------------------------------------------------
# Check mode


@pytest.mark.parametrize(
    ("state", "wanted", "changed", "predicted"),
    [
        ("stopped", "started", True, "running"),
        ("running", "started", False, "running"),
        ("running", "stopped", True, "stopped"),
        ("stopped", "stopped", False, "stopped"),
        ("running", "restarted", True, "running"),
        ("start_pending", "started", False, "start_pending"),
        ("stop_pending", "started", True, "running"),
    ],
)
def test_check_mode_only_queries_and_predicts(
    state: str, wanted: str, changed: bool, predicted: str
) -> None:
    host = ScriptedHost(*exchange_55(kms_state=state))
    host.services["MSEXCHANGEKMS"].pending = 99  # still pending when queried
    service = control(host)
    assert service.ensure(wanted, check_mode=True) is changed
    # Before a start, where KMS takes its startup password from, in the same round trip.
    kms_server = [KMS_SERVER_QUERY] if wanted != "stopped" else []
    assert host.commands() == [f"sc query {KMS}", f"sc qc {KMS}", *kms_server]
    assert service.progress.state == predicted
    assert service.progress.previous_state == state
    assert service.acted is False


def test_restarting_the_directory_warns_that_its_dependents_stay_stopped() -> None:
    host = ScriptedHost(*exchange_55(kms_state="running"))
    service = control(host, name="MSExchangeDS", watch=0, password=None)
    assert service.ensure("restarted") is True
    assert service.progress.state == "running"
    assert service.progress.warnings == [
        "restarting MSExchangeDS stopped MSExchangeIS, MSExchangeKMS, which depend on it; they "
        "were not started again. Start them with exchops.kms.exchange_service."
    ]
    assert host.services["MSEXCHANGEKMS"].state == "stopped"


def test_a_record_number_that_is_not_a_number_is_refused_rather_than_guessed() -> None:
    host = ScriptedHost(*exchange_55())
    original = host.wmic_events

    def garbled(command: str) -> tuple[str, bool]:
        if "RecordNumber > " in command:
            return original(command)
        return "\r\r\n\r\r\nRecordNumber=12a\r\r\n\r\r\n", True

    host.wmic_events = garbled  # type: ignore[method-assign]
    with pytest.raises(ServiceError, match=r"RecordNumber that is not a number \(12a\).*output\.$"):
        control(host).ensure("started")
    assert starts(host) == []


# ---------------------------------------------------------------------------------------------
# Where KMS takes its startup password from (KB Q196129)


def test_a_disk_mode_kms_starts_with_no_start_parameter_and_no_password() -> None:
    host = ScriptedHost(*exchange_55(), master_password_path="A:\\")
    service = control(host, password=None)
    assert service.ensure("started") is True
    assert starts(host) == [f"sc start {KMS}"]
    assert service.progress.result()["password_source"] == "disk"
    assert service.progress.warnings == []


def test_a_password_given_for_a_disk_mode_kms_is_not_passed_and_the_warning_names_the_reading() -> (
    None
):
    host = ScriptedHost(*exchange_55(), master_password_path="A:\\")
    service = control(host)
    assert service.ensure("restarted") is True
    assert starts(host) == [f"sc start {KMS}"]
    assert PASSWORD not in " ".join(host.lines)
    assert service.progress.warnings == [
        "MasterPasswordPath is 'A:\\' (HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer): KMS reads "
        "its startup password from the disk in that drive (KB Q196129), so startup_password was "
        "not passed to MSExchangeKMS. To type the password instead, clear the drive letter from "
        "MasterPasswordPath (KB Q196129)."
    ]


@pytest.mark.parametrize(
    ("master_password_path", "reading"),
    [
        ("", "MasterPasswordPath is empty"),
        (None, "HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer has no MasterPasswordPath value"),
        ("\\", "MasterPasswordPath is '\\'"),  # the drive letter removed (KB Q196129)
    ],
)
def test_a_typed_password_kms_is_not_started_without_one_and_nothing_is_sent(
    master_password_path: str | None, reading: str
) -> None:
    host = ScriptedHost(*exchange_55(), master_password_path=master_password_path)
    service = control(host, password=None)
    with pytest.raises(ServiceError) as caught:
        service.ensure("started")
    assert str(caught.value).startswith(
        f"state=started for MSExchangeKMS needs startup_password: {reading}"
    )
    assert "the ORIGINAL KM Server's (KB Q154531, Q198814)" in str(caught.value)
    assert (caught.value.changed, starts(host)) == (False, [])


def test_a_disk_mode_kms_that_logs_5057_points_to_the_original_servers_disk() -> None:
    outcome = Outcome(state="stopped", events=(5057,), win32_exit_code=2140)
    host = ScriptedHost(*exchange_55(outcome=outcome), master_password_path="A:\\")
    with pytest.raises(ServiceError) as caught:
        control(host, password=None).ensure("started")
    message = str(caught.value)
    assert "event 5057" in message
    assert (
        "MasterPasswordPath is 'A:\\' (HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer), so KMS "
        "reads its startup password from the disk in that drive, not from a start parameter (KB "
        "Q196129). Put in the startup disk of the KM Server that created this KM database: after "
        "a move or a restore, the ORIGINAL KM Server's disk (KB Q154531, Q198814)."
    ) in message
    assert "Check kms_startup_password" not in message


def test_a_disk_mode_kms_that_stops_with_2140_and_no_event_points_to_the_disk() -> None:
    outcome = Outcome(state="stopped", win32_exit_code=2140)
    host = ScriptedHost(*exchange_55(outcome=outcome), master_password_path="A:\\")
    with pytest.raises(ServiceError, match=r"WIN32_EXIT_CODE 2140.*startup disk of the KM Server"):
        control(host, password=None).ensure("started")


def jump_reach(password_in_argv: bool = False) -> t.Any:
    """How kms-new is reached behind jump01: only its name and the opt-in matter here."""
    return SimpleNamespace(remote="KMSNEW", via="jump01", password_in_argv=password_in_argv)


def test_through_a_jump_host_the_password_goes_on_standard_input_never_on_the_command_line() -> (
    None
):
    command, stdin = start_line(KMS, PASSWORD, jump_reach())
    assert PASSWORD not in command
    assert stdin == f"{PASSWORD}\r\n"
    assert command.startswith('powershell -NoProfile -NonInteractive -Command "')
    assert "$p = [Console]::In.ReadLine()" in command
    assert "ServiceController('MSExchangeKMS', 'KMSNEW'); $s.Start(@($p))" in command


@pytest.mark.parametrize(
    ("password", "reach", "expected"),
    [
        pytest.param(PASSWORD, None, f'sc start {KMS} "{PASSWORD}"', id="on the host itself"),
        pytest.param(
            PASSWORD,
            jump_reach(password_in_argv=True),
            f'sc \\\\KMSNEW start {KMS} "{PASSWORD}"',
            id="opted in",
        ),
        pytest.param(None, jump_reach(), f"sc \\\\KMSNEW start {KMS}", id="startup disk"),
    ],
)
def test_sc_start_is_used_where_no_password_would_reach_the_jump_hosts_audit_unasked(
    password: str | None, reach: t.Any, expected: str
) -> None:
    assert start_line(KMS, password, reach) == (expected, None)
