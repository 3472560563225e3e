# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse `net config redirector` (`net config workstation`): `parse_net_config_redirector` ->
`RedirectorConfig`, the transports the Workstation service is active on
(docs/windows-output.md#net-config-redirector); and `net time \\\\NAME`: `parse_net_time` ->
`ServerClock`, the time of day on NAME's clock (docs/windows-output.md#net-time).

KB 204279 ("Direct host SMB over TCP/IP"): `net config redirector` lists a `NetBT_Tcpip_{GUID}
(ADDRESS)` transport for each network adapter NetBIOS over TCP/IP is bound to, under "Workstation
active on". Only that list is read; the other lines (computer and user names, versions, domains,
COM settings) are not.

cmd's "is not recognized" raises `ToolMissing`; a failure net reports (any stderr text, a
non-zero exit code) `CommandFailed`; output without the "Workstation active on" line, or a line
in its list that is not `NAME (ADDRESS)`, `ParseError`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from dataclasses import dataclass

from ._base import (
    _command_failed,
    _lines,
    _nonblank,
    _parse_error,
    _raise_if_silent_failure,
    _stderr_answers,
)

# The heading of the transport list (KB 204279's sample) [V]; it may carry padding spaces (the
# ReactOS clone pads its labels to a column) [R].
_ACTIVE_ON = "Workstation active on"
# One transport: its device name without "\Device\", a space and its address in parentheses,
# 12 hexadecimal digits (KB 204279's sample) [V]. The indentation varies: none in the KB's sample
# as Microsoft Learn shows it, 6 spaces in ReactOS's clone, 8 in published captures [S]; any is
# read.
_TRANSPORT = re.compile(r"^\s*(?P<name>\S.*?)\s+\((?P<address>[0-9A-Fa-f]{12})\)\s*$")
# NetBIOS over TCP/IP's transport, one per adapter it is bound to (KB 204279) [V].
NETBT_TRANSPORT = "NetBT_Tcpip"
# `net time \\NAME`: "Current time at \\NAME is <date> <time>", the date and time in the jump
# host's locale [I] (docs/windows-output.md#net-time). Only the time of day is read: its last
# H:MM[:SS], then an AM/PM designator or nothing (a 24-hour clock). Any other word after the
# time is a designator this parser does not know, and refused rather than guessed.
_CURRENT_TIME = re.compile(r"^Current time at \\\\(?P<name>\S+) is (?P<when>.+?)\s*$")
_TIME_OF_DAY = re.compile(
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?\s*(?P<half>\S*)$"
)
_HALVES = {"am": 0, "a.m.": 0, "pm": 12, "p.m.": 12}


@dataclass(frozen=True)
class Transport:
    """One transport the Workstation service is active on."""

    name: str  # "NetBT_Tcpip_{610E2A3A-16C7-4E66-A11D-A483A5468C10}", "NetbiosSmb"
    address: str  # 12 hexadecimal digits, upper case: the adapter's MAC address, or zeros


@dataclass(frozen=True)
class ServerClock:
    """The time of day `net time` read on a server's clock, and the line it came from."""

    hour: int  # 0-23
    minute: int
    second: int
    line: str

    @property
    def seconds(self) -> int:
        """Seconds since the server's midnight."""
        return self.hour * 3600 + self.minute * 60 + self.second


@dataclass(frozen=True)
class RedirectorConfig:
    """What `net config redirector` lists under "Workstation active on", in its order."""

    transports: tuple[Transport, ...]

    @property
    def netbios_over_tcpip(self) -> bool:
        """Whether NetBIOS over TCP/IP is bound to any adapter: a NetBT_Tcpip transport is
        listed (KB 204279)."""
        prefix = NETBT_TRANSPORT.casefold()
        return any(transport.name.casefold().startswith(prefix) for transport in self.transports)


def parse_net_config_redirector(
    stdout: str, stderr: str, exit_code: int, section: str = "net config redirector"
) -> RedirectorConfig:
    """Parse `net config redirector` (or `net config workstation`): the transports under
    "Workstation active on", up to the first empty line (none when NetBIOS over TCP/IP is bound
    to no adapter, docs/windows-output.md#net-config-redirector). cmd's "is not recognized"
    raises ToolMissing; net's own failure (stderr text, a non-zero exit code) CommandFailed;
    output without the list, or a list line that is not `NAME (ADDRESS)`, ParseError."""
    _stderr_answers(section, stderr, exit_code)
    _raise_if_silent_failure(section, stdout, stderr, exit_code)
    if exit_code != 0:
        # Run with 2>&1, net's message ("System error 5 has occurred.", a service not started)
        # arrives among stdout's lines.
        raise _command_failed(section, exit_code, _nonblank(stdout, "stdout"))
    lines = _lines(stdout)
    heading = next(
        (index for index, line in enumerate(lines) if line.text.strip() == _ACTIVE_ON), None
    )
    if heading is None:
        raise _parse_error(
            section,
            f"no '{_ACTIVE_ON}' line: not the listing of net config redirector "
            "(docs/windows-output.md#net-config-redirector)",
        )
    transports = []
    for line in lines[heading + 1 :]:
        if not line.text.strip():
            break
        match = _TRANSPORT.match(line.text)
        if not match:
            raise _parse_error(
                section, f"expected a transport 'NAME (ADDRESS)' under '{_ACTIVE_ON}'", line
            )
        transports.append(Transport(match.group("name"), match.group("address").upper()))
    return RedirectorConfig(tuple(transports))


def parse_net_time(
    stdout: str, stderr: str, exit_code: int, section: str = "net time"
) -> ServerClock:
    """Parse `net time \\\\NAME` (docs/windows-output.md#net-time): the time of day in its
    "Current time at" line. net's failure (a name that does not resolve, access denied: a
    non-zero exit code, its text among stdout's lines under 2>&1) raises CommandFailed; no such
    line, or a time this parser cannot read unambiguously, ParseError."""
    _stderr_answers(section, stderr, exit_code)
    _raise_if_silent_failure(section, stdout, stderr, exit_code)
    if exit_code != 0:
        raise _command_failed(section, exit_code, _nonblank(stdout, "stdout"))
    for line in _lines(stdout):
        current = _CURRENT_TIME.match(line.text.strip())
        if not current:
            continue
        when = _TIME_OF_DAY.search(current.group("when"))
        half = when.group("half").casefold() if when else ""
        hour = int(when.group("hour")) if when else -1
        if when is None or (half and half not in _HALVES) or not 0 <= hour <= 23:
            raise _parse_error(
                section,
                "the time at the end of the line is not H:MM[:SS] with AM, PM or nothing after "
                "it (docs/windows-output.md#net-time)",
                line,
            )
        if half:
            if not 1 <= hour <= 12:
                raise _parse_error(section, f"hour {hour} with {half.upper()}", line)
            hour = hour % 12 + _HALVES[half]
        minute, second = int(when.group("minute")), int(when.group("second") or 0)
        if minute > 59 or second > 59:
            raise _parse_error(section, "minutes or seconds past 59", line)
        return ServerClock(hour, minute, second, line.text.strip())
    raise _parse_error(
        section,
        "no 'Current time at' line: not the output of net time (docs/windows-output.md#net-time)",
    )
