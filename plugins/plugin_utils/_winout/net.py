# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse `net stop NAME /y` (docs/windows-output.md#net, #e10): `parse_net_stop` -> `NetStop`.

A failure net reports with an error number (not started, no such service, access denied) is an
answer. net's usage text raises `CommandFailed`; cmd's "is not recognized" `ToolMissing`; a line
net does not print, without an error number, `ParseError`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from dataclasses import dataclass

from ._base import (
    _command_failed,
    _Line,
    _nonblank,
    _parse_error,
    _raise_if_missing,
    _raise_if_silent_failure,
)

_NET_DEPENDENTS = re.compile(
    r"^The following services are dependent on the (?P<name>.+) service\.\s*$"
)
_NET_ALSO_STOP = re.compile(r"^Stopping the .+ service will also stop these services\.\s*$")
_NET_LISTED = re.compile(r"^ {2,}(?P<name>\S.*?)\s*$")
_NET_CONFIRM = re.compile(
    r"^Do you want to continue this operation\? \(Y/N\) \[N\]:\s*(?P<answer>\S*)\s*$"
)
# net prints progress dots after "is stopping" while it waits (docs/windows-output.md#net, "…").
_NET_STOPPING = re.compile(r"^The (?P<name>.+) service is stopping\.*\s*$")
_NET_STOPPED = re.compile(r"^\.*The (?P<name>.+) service was stopped successfully\.\s*$")
_NET_NOT_STOPPED = re.compile(r"^\.*The (?P<name>.+) service could not be stopped\.\s*$")
_NET_NOT_STARTED = re.compile(r"^The (?P<name>.+) service is not started\.\s*$")
_NET_HELPMSG = re.compile(r"^More help is available by typing NET HELPMSG (?P<number>[0-9]+)\.\s*$")
_NET_SYSTEM_ERROR = re.compile(r"^System error (?P<number>[0-9]+) has occurred\.\s*$")
_NET_SYNTAX = "The syntax of this command is:"
# NERR_ numbers of the fixed texts (LAN Manager apperr.h; `net helpmsg N` prints them).
_NET_FIXED = {
    "The service name is invalid.": 2185,
    "The service is starting or stopping.  Please try again later.": 3533,
}
NERR_SERVICE_NOT_STARTED = 3521
NERR_SERVICE_PENDING = 3533
NERR_BAD_SERVICE_NAME = 2185


@dataclass(frozen=True)
class NetStop:
    """What `net stop NAME /y` reported (docs/windows-output.md#net, #e10). Services are named
    by their display names, as net prints them.

    `dependents`: the services net listed as depending on NAME (it stops them first, `/y`
    confirming); `stopped` / `not_stopped`: each "was stopped successfully" / "could not be
    stopped", in order; `not_started`: "The ... service is not started." (NERR 3521, an answer:
    there was nothing to stop); `declined`: net asked "(Y/N)" and got no "y" (`/y` missing);
    `error`: the NET HELPMSG or "System error" number of a failure (5 = access denied, 2185 = no
    such service, 3533 = starting or stopping), None when net reported none; `message`: net's
    failure text, joined with spaces ("" when there is none).
    """

    dependents: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()
    not_stopped: tuple[str, ...] = ()
    not_started: bool = False
    declined: bool = False
    error: int | None = None
    message: str = ""


def parse_net_stop(stdout: str, stderr: str, exit_code: int, section: str = "net stop") -> NetStop:
    """Parse `net stop NAME /y` (both streams, merged or not). Lines this parser does not know are
    kept as failure text when net reported an error number, and raise ParseError otherwise. net's
    usage text raises CommandFailed; cmd's "is not recognized" ToolMissing."""
    _raise_if_missing(section, stderr, exit_code)
    dependents: list[str] = []
    stopped: list[str] = []
    not_stopped: list[str] = []
    failure: list[str] = []
    unknown: list[_Line] = []
    not_started = declined = listing = False
    error: int | None = None
    lines = _nonblank(stdout, "stdout") + _nonblank(stderr, "stderr")
    for line in lines:
        text = line.text.rstrip()
        if text.strip() == _NET_SYNTAX:
            raise _command_failed(section, exit_code, [line])
        if listing and (listed := _NET_LISTED.match(text)):
            dependents.append(listed.group("name"))
            continue
        if listing and _NET_ALSO_STOP.match(text):
            continue
        listing = False
        if match := _NET_DEPENDENTS.match(text):
            listing = True
        elif _NET_STOPPING.match(text):
            continue
        elif match := _NET_CONFIRM.match(text):
            declined = not match.group("answer").lower().startswith("y")
        elif match := _NET_STOPPED.match(text):
            stopped.append(match.group("name"))
        elif match := _NET_NOT_STOPPED.match(text):
            not_stopped.append(match.group("name"))
            failure.append(text.strip())
        elif match := _NET_NOT_STARTED.match(text):
            not_started = True
            failure.append(text.strip())
        elif match := _NET_HELPMSG.match(text):
            error = error if error is not None else int(match.group("number"))
        elif match := _NET_SYSTEM_ERROR.match(text):
            error = int(match.group("number"))
            failure.append(text.strip())
        elif text.strip() in _NET_FIXED:
            error = error if error is not None else _NET_FIXED[text.strip()]
            failure.append(text.strip())
        else:
            unknown.append(line)
            failure.append(text.strip())
    if unknown and error is None:
        raise _parse_error(section, "not a line net stop prints", unknown[0])
    _raise_if_silent_failure(section, stdout, stderr, exit_code)
    return NetStop(
        dependents=tuple(dependents),
        stopped=tuple(stopped),
        not_stopped=tuple(not_stopped),
        not_started=not_started,
        declined=declined,
        error=error,
        message=" ".join(failure),
    )
