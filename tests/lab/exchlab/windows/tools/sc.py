# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sc.exe query / queryex / qc / start / stop / config / enumdepend (docs/windows-output.md#sc).

sc.exe exits with the Win32 error number and prints `[SC] <call> FAILED <n>:`, an empty line and
the message (section 2.3). Its failure text goes to stdout here: the stream is not established
(section 0) and sc.exe prints through the C runtime's stdout (ReactOS sc). `sc start` returns at
START_PENDING and prints PID and FLAGS (E6); the outcome is seen by the next command.

`sc \\NAME ...` on a jump host controls NAME's services through the remote-call layer (MS-SCMR's
svcctl pipe over SMB: exchlab.windows.remote); the blocks it prints are the local ones, a query
needs no administrator (KB Q179249) while control and configuration do, and a refusal is
`[SC] OpenSCManager FAILED <n>:` (5 and 1722 are quoted from captures; 53 for a name
that is not found, and every other code there, are [lab]).

[lab], no source cited: the usage texts, the enumeration's alphabetical order, `sc \\OTHER` on a
host that reaches no other host answering 1722 "The RPC server is unavailable.", and the status
block `sc stop` prints (STOP_PENDING, STOPPABLE, WAIT_HINT 0).
"""

from __future__ import annotations

from ...exchange import start_service, stop_order, stop_service
from ...state import RUNNING, SERVICES_KEY, START_PENDING, STOP_PENDING, STOPPED, HostState
from ..formats import (
    ACCEPTS_NOTHING,
    ACCEPTS_STOP,
    CRLF,
    sc_config_block,
    sc_failure,
    sc_status_block,
)
from ..remote import SVCCTL, Refusal, path_error_code
from . import Invocation, Output, Tool

_START_TYPES = {"auto": 2, "demand": 3, "disabled": 4, "boot": 0, "system": 1}
# Commands that only read the service control manager: any account that logged on may run them
# against another computer (exchlab.windows.remote, step d); the others need an administrator.
_READS = ("query", "queryex", "qc", "enumdepend")


def _status_text(
    host: HostState, name: str, *, extended: bool, enumerate_: bool = False, leading: bool = True
) -> str:
    status = host.services[name]
    config = host.service_config(name)
    assert config is not None
    pending = status.pending
    if status.state == RUNNING:
        controls = ACCEPTS_STOP
    else:
        controls = ACCEPTS_NOTHING
    wait_hint = 0x7D0 if status.state in (START_PENDING, STOP_PENDING) else 0
    exit_code = status.win32_exit_code
    if pending is not None and status.state == START_PENDING:
        exit_code = 0
    return sc_status_block(
        name,
        config.type,
        status.state,
        controls,
        exit_code,
        status.service_exit_code,
        wait_hint,
        pid=status.pid if extended else None,
        display_name=config.display_name if enumerate_ else None,
        leading=leading,
    )


def _query(invocation: Invocation, output: Output, argv: list[str], extended: bool) -> int:
    host = invocation.host
    names = [arg for arg in argv if "=" not in arg]
    options = {arg.lower() for arg in argv if arg.endswith("=")}
    if not names or options:
        # Enumeration: active services (or all with "state= all"), alphabetical like the SCM.
        wanted_all = any(arg.lower() == "all" for arg in argv)
        shown = [
            name
            for name in sorted(host.services, key=str.upper)
            if wanted_all or host.services[name].state != STOPPED
        ]
        for index, name in enumerate(shown):
            output.out(
                _status_text(host, name, extended=extended, enumerate_=True, leading=index == 0)
            )
        return 0
    canonical = host.service_name(names[0])
    if canonical is None:
        output.out(sc_failure("EnumQueryServicesStatus:OpenService", 1060))
        return 1060
    output.out(_status_text(host, canonical, extended=extended))
    return 0


def _qc(invocation: Invocation, output: Output, argv: list[str]) -> int:
    """`sc qc NAME`: SERVICE_NAME is the name as typed (a published `sc.exe qc lanmanworkstation`
    capture prints "SERVICE_NAME: lanmanworkstation"), LOAD_ORDER_GROUP the service's Group."""
    host = invocation.host
    config = host.service_config(argv[0]) if argv else None
    if config is None:
        output.out(sc_failure("OpenService", 1060))
        return 1060
    group = host.registry.data(SERVICES_KEY + "\\" + config.name, "Group", "")
    output.out(
        sc_config_block(
            argv[0],
            config.type,
            config.start,
            config.error_control,
            config.image_path,
            config.display_name,
            config.dependencies,
            config.account,
            load_order_group=str(group),
        )
    )
    return 0


def _start(invocation: Invocation, output: Output, argv: list[str]) -> int:
    """`sc start NAME [arguments...]`: the arguments reach the service as start parameters, which
    is how KMS gets its startup password from a command line (Microsoft Learn "Sc start"; the
    password is a start parameter, KB Q184420; that KMS takes it this way is unsourced)."""
    if not argv:
        output.out(
            f"DESCRIPTION:{CRLF}        Starts a service running.{CRLF}USAGE:{CRLF}"
            f"        sc <server> start [service name] <arg1> <arg2> ...{CRLF}"
        )
        return 1
    host = invocation.host
    result = start_service(host, argv[0], argv[1:])
    if result.error == 1060:
        output.out(sc_failure("StartService: OpenService", 1060))
        return 1060
    if result.error:
        output.out(sc_failure("StartService", result.error))
        return result.error
    assert result.service is not None
    status = host.services[result.service]
    config = host.service_config(result.service)
    assert config is not None
    output.out(
        sc_status_block(
            result.service, config.type, START_PENDING, ACCEPTS_NOTHING, 0, 0, 0x7D0, pid=status.pid
        )
    )
    return 0


def _stop(invocation: Invocation, output: Output, argv: list[str]) -> int:
    if not argv:
        output.out(f"DESCRIPTION:{CRLF}        Sends a STOP control request to a service.{CRLF}")
        return 1
    host = invocation.host
    result = stop_service(host, argv[0])
    if result.error == 1060:
        output.out(sc_failure("OpenService", 1060))
        return 1060
    if result.error:
        output.out(sc_failure("ControlService", result.error))
        return result.error
    assert result.service is not None
    config = host.service_config(result.service)
    assert config is not None
    status = host.services[result.service]
    output.out(
        sc_status_block(
            result.service,
            config.type,
            STOP_PENDING,
            ACCEPTS_STOP,
            status.win32_exit_code if status.win32_exit_code != 1077 else 0,
            0,
            0,
        )
    )
    return 0


def _enumdepend(invocation: Invocation, output: Output, argv: list[str]) -> int:
    """`sc enumdepend NAME [buffer]`: every service that depends on NAME, directly or not, in any
    state, in the reverse of their start order (EnumDependentServices with SERVICE_STATE_ALL, as
    ReactOS's sc prints it: "Enum: entriesRead = N", then per service an empty line, SERVICE_NAME,
    DISPLAY_NAME and the status lines). [lab] ignores the buffer size: every list fits."""
    host = invocation.host
    canonical = host.service_name(argv[0]) if argv else None
    if canonical is None:
        output.out(sc_failure("OpenService", 1060))
        return 1060
    found: list[str] = []
    pending = [canonical]
    while pending:
        for dependent in host.dependents(pending.pop()):
            if dependent not in found:
                found.append(dependent)
                pending.append(dependent)
    output.out(f"Enum: entriesRead = {len(found)}{CRLF}")
    for name in stop_order(host, found):
        text = _status_text(host, name, extended=False, enumerate_=True, leading=True)
        output.out(text[: -len(CRLF)])  # one empty line between entries, as before each
    return 0


def _config(invocation: Invocation, output: Output, argv: list[str]) -> int:
    """`sc config NAME start= demand binPath= "..."` (the "= " form: value after a space)."""
    host = invocation.host
    config = host.service_config(argv[0]) if argv else None
    if config is None:
        output.out(sc_failure("OpenService", 1060))
        return 1060
    key = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\" + config.name
    pairs = argv[1:]
    for index in range(0, len(pairs) - 1, 2):
        option, value = pairs[index].lower(), pairs[index + 1]
        if option == "start=" and value.lower() in _START_TYPES:
            host.registry.set_value(key, "Start", "REG_DWORD", _START_TYPES[value.lower()])
        elif option == "binpath=":
            host.registry.set_value(key, "ImagePath", "REG_EXPAND_SZ", value)
        elif option == "displayname=":
            host.registry.set_value(key, "DisplayName", "REG_SZ", value)
        elif option == "obj=":
            host.registry.set_value(key, "ObjectName", "REG_SZ", value)
        elif option == "depend=":
            host.registry.set_value(key, "DependOnService", "REG_MULTI_SZ", tuple(value.split("/")))
        elif option != "password=":
            output.out(
                f"[SC] ChangeServiceConfig FAILED 87:{CRLF}{CRLF}"
                f"The parameter is incorrect.{CRLF}{CRLF}"
            )
            return 87
    output.out(f"[SC] ChangeServiceConfig SUCCESS{CRLF}")
    return 0


def sc(invocation: Invocation, output: Output) -> int:
    argv = invocation.argv
    remote = invocation.remote
    if argv and argv[0].startswith("\\\\") and remote is not None:
        machine = argv[0][2:]
        if not remote.is_self(machine):
            rest = argv[1:]
            outcome = remote.call(
                machine,
                SVCCTL,
                lambda target: _command(invocation.on(target), output, rest),
                admin=not rest or rest[0].lower() not in _READS,
            )
            if isinstance(outcome, Refusal):
                code = path_error_code(outcome)
                output.out(sc_failure("OpenSCManager", code))
                return code
            return outcome
    if argv and argv[0].startswith("\\\\"):
        machine = argv[0][2:]
        if machine.upper() not in (invocation.host.computer_name, ".", "LOCALHOST"):
            output.out(
                f"[SC] OpenSCManager FAILED 1722:{CRLF}{CRLF}"
                f"The RPC server is unavailable.{CRLF}{CRLF}"
            )
            return 1722
        argv = argv[1:]
    return _command(invocation, output, argv)


def _command(invocation: Invocation, output: Output, argv: list[str]) -> int:
    """One sc command (the server name taken off) against the invocation's host."""
    if not argv:
        output.out(
            f"DESCRIPTION:{CRLF}"
            f"        SC is a command line program used for communicating with the{CRLF}"
            f"        Service Control Manager and services.{CRLF}"
        )
        return 0
    command, rest = argv[0].lower(), argv[1:]
    if command == "query":
        return _query(invocation, output, rest, False)
    if command == "queryex":
        return _query(invocation, output, rest, True)
    if command == "qc":
        return _qc(invocation, output, rest)
    if command == "start":
        return _start(invocation, output, rest)
    if command == "stop":
        return _stop(invocation, output, rest)
    if command == "config":
        return _config(invocation, output, rest)
    if command == "enumdepend":
        return _enumdepend(invocation, output, rest)
    output.out(f"[SC] {argv[0]} is not a command the lab's sc.exe knows.{CRLF}")
    return 1


TOOLS = (Tool(("sc",), sc, file_name="sc.exe"),)
