# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""net.exe start / stop (docs/windows-output.md section 3): waits for the outcome, names the service
by its display name, exits 2 on failure with the message on stderr. `net use` is net_use.py's,
`net config` net_config.py's.

Texts are net.exe's message table (APE_* in the LAN Manager apperr.h: 3521 "The %1 service is
not started.", 3523 "could not be started.", 3528 "could not be stopped.", 3530 the dependents
list, 3534 "The service did not report an error.", 3547 "A service specific error occurred").
A failed start prints "System error N has occurred." and the system message, so a wrong KMS
startup password (exit code 2140) shows the Q184420 text "An internal Windows NT error occurred."

[lab], no source cited: "The service is starting or stopping.  Please try again later." (3533),
"A system error has occurred." before the system error, the `net start` list of started
services, the syntax texts, and the dependents prompt answered from stdin.

`net time \\NAME` prints NAME's clock, "Current time at \\NAME is 12/3/2026 10:15:02 PM", an
empty line and net.exe's "The command completed successfully." (NetRemoteTOD over IPC$: any
account that logs on may read it [I]); the date and time follow the jump host's locale, en-US
in the lab [lab]. Failures are the remote-call layer's, printed as `net use` prints them. No parser reads net's
output (docs/windows-output.md#tool-messages).
"""

from __future__ import annotations

from ...console import clock_text
from ...exchange import start_service, stop_order, stop_service
from ...state import RUNNING, STOPPED, HostState
from ..formats import CRLF, SYSTEM_MESSAGES
from ..remote import IPC, Refusal
from . import Invocation, Output, Tool
from .net_config import show_config
from .net_use import system_error, use


def _helpmsg(number: int) -> str:
    return f"More help is available by typing NET HELPMSG {number}.{CRLF}{CRLF}"


def _find(host: HostState, name: str) -> str | None:
    """A service by key name or display name (net accepts both)."""
    canonical = host.service_name(name)
    if canonical is not None:
        return canonical
    for candidate in host.services:
        config = host.service_config(candidate)
        if config and config.display_name.upper() == name.upper():
            return candidate
    return None


def _display(host: HostState, name: str) -> str:
    config = host.service_config(name)
    return config.display_name if config else name


# What net.exe says of a service that already is where it was asked to go, and its message
# number: {display} is the service's display name.
_ALREADY = {
    RUNNING: ("The requested service has already been started.", 2182),
    STOPPED: ("The {display} service is not started.", 3521),
}


def _settled_service(host: HostState, names: list[str], output: Output, goal: str) -> str | None:
    """The service the words name, if it is RUNNING or STOPPED and not already at `goal` (one of
    the two); None after printing net.exe's error for an unknown service, one that is starting
    or stopping, or one already at `goal`."""
    canonical = _find(host, " ".join(names))
    if canonical is None:
        output.err(f"The service name is invalid.{CRLF}{CRLF}" + _helpmsg(2185))
        return None
    state = host.services[canonical].state
    if state not in (RUNNING, STOPPED):
        output.err(
            f"The service is starting or stopping.  Please try again later.{CRLF}{CRLF}"
            + _helpmsg(3533)
        )
        return None
    if state == goal:
        text, number = _ALREADY[goal]
        output.err(text.format(display=_display(host, canonical)) + CRLF + CRLF + _helpmsg(number))
        return None
    return canonical


def _system_error(code: int) -> str:
    return (
        f"System error {code} has occurred.{CRLF}{CRLF}{SYSTEM_MESSAGES.get(code, '')}{CRLF}{CRLF}"
    )


def _list_started(host: HostState, output: Output) -> int:
    names = sorted(
        (_display(host, name) for name, status in host.services.items() if status.state == RUNNING),
        key=str.upper,
    )
    output.out(f"These Windows services are started:{CRLF}{CRLF}")
    output.out("".join(f"   {name}{CRLF}" for name in names))
    output.out(f"{CRLF}The command completed successfully.{CRLF}{CRLF}")
    return 0


def _start(invocation: Invocation, output: Output, words: list[str]) -> int:
    host = invocation.host
    names = [word for word in words if not word.startswith("/")]
    parameters = [word for word in words if word.startswith("/")]
    if not names:
        return _list_started(host, output)
    canonical = _settled_service(host, names, output, RUNNING)
    if canonical is None:
        return 2
    display = _display(host, canonical)
    result = start_service(host, canonical, parameters, wait=True)
    if result.error:
        output.err(_system_error(result.error))
        return 2
    output.out(f"The {display} service is starting.{CRLF}")
    status = host.services[canonical]
    if status.state == RUNNING:
        output.out(f"The {display} service was started successfully.{CRLF}{CRLF}")
        return 0
    text = f"The {display} service could not be started.{CRLF}{CRLF}"
    if status.win32_exit_code == 0:
        text += f"The service did not report an error.{CRLF}{CRLF}" + _helpmsg(3534)
    elif status.win32_exit_code == 1066:
        text += (
            f"A service specific error occurred: {status.service_exit_code}.{CRLF}{CRLF}"
            + _helpmsg(3547)
        )
    else:
        text += f"A system error has occurred.{CRLF}{CRLF}" + _system_error(status.win32_exit_code)
    output.err(text)
    return 2


def _stop_one(host: HostState, name: str, output: Output) -> bool:
    display = _display(host, name)
    output.out(f"The {display} service is stopping.")
    stop_service(host, name, wait=True)
    if host.services[name].state == STOPPED:
        output.out(f"{CRLF}The {display} service was stopped successfully.{CRLF}{CRLF}")
        return True
    output.out(CRLF)
    output.err(f"The {display} service could not be stopped.{CRLF}{CRLF}")
    return False


def _stop(invocation: Invocation, output: Output, words: list[str]) -> int:
    host = invocation.host
    names = [word for word in words if not word.startswith("/")]
    confirmed = any(word.lower() in ("/y", "/yes") for word in words)
    if not names:
        output.err(f"The syntax of this command is:{CRLF}{CRLF}NET STOP{CRLF}service{CRLF}{CRLF}")
        return 1
    canonical = _settled_service(host, names, output, STOPPED)
    if canonical is None:
        return 2
    display = _display(host, canonical)
    dependents = _running_dependents(host, canonical)
    if dependents:
        output.out(
            f"The following services are dependent on the {display} service.{CRLF}"
            f"Stopping the {display} service will also stop these services.{CRLF}{CRLF}"
            + "".join(f"   {_display(host, name)}{CRLF}" for name in dependents)
            + CRLF
        )
        if not confirmed:
            # A WinRS shell has no console to answer: nothing (or < NUL) means "N".
            output.out("Do you want to continue this operation? (Y/N) [N]: ")
            if invocation.stdin.strip()[:1].lower() != "y":
                output.out(CRLF)
                return 2
            output.out("y" + CRLF)
        for name in dependents:
            if not _stop_one(host, name, output):
                return 2
    return 0 if _stop_one(host, canonical, output) else 2


def _running_dependents(host: HostState, name: str) -> list[str]:
    """Every running service that depends on `name`, directly or not, in stopping order."""
    found: list[str] = []
    pending = [name]
    while pending:
        current = pending.pop()
        for dependent in host.dependents(current):
            if dependent not in found and host.services[dependent].state != STOPPED:
                found.append(dependent)
                pending.append(dependent)
    return stop_order(host, found)


def _time(invocation: Invocation, output: Output, words: list[str]) -> int:
    remote = invocation.remote
    if not words or not words[0].startswith("\\\\") or remote is None:
        output.err(f"exchlab: net time without \\\\NAME is not emulated{CRLF}")
        return 1
    name = words[0][2:]
    outcome = remote.call(name, IPC, lambda target: target.now(), admin=False)
    if isinstance(outcome, Refusal):
        return system_error(output, outcome.code)
    output.out(
        f"Current time at \\\\{name} is {clock_text(outcome)}{CRLF}{CRLF}"
        f"The command completed successfully.{CRLF}{CRLF}"
    )
    return 0


def net(invocation: Invocation, output: Output) -> int:
    argv = invocation.argv
    command = argv[0].lower() if argv else ""
    if command == "start":
        return _start(invocation, output, argv[1:])
    if command == "stop":
        return _stop(invocation, output, argv[1:])
    if command == "use":
        return use(invocation, output, argv[1:])
    if command == "config":
        return show_config(invocation, output, argv[1:])
    if command == "time":
        return _time(invocation, output, argv[1:])
    if command == "helpmsg" and len(argv) > 1 and argv[1].isdigit():
        message = SYSTEM_MESSAGES.get(int(argv[1]))
        if message:
            output.out(f"{CRLF}{message}{CRLF}{CRLF}")
            return 0
    output.err(
        f"The syntax of this command is:{CRLF}{CRLF}NET{CRLF}"
        f"    [ ACCOUNTS | COMPUTER | CONFIG | CONTINUE | FILE | GROUP | HELP |{CRLF}"
        f"      HELPMSG | LOCALGROUP | PAUSE | SESSION | SHARE | START |{CRLF}"
        f"      STATISTICS | STOP | TIME | USE | USER | VIEW ]{CRLF}{CRLF}"
    )
    return 1


TOOLS = (Tool(("net",), net, file_name="net.exe"),)
