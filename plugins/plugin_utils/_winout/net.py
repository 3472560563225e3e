# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse `net config redirector` (`net config workstation`): `parse_net_config_redirector` ->
`RedirectorConfig`, the transports the Workstation service is active on
(docs/windows-output.md#net-config-redirector).

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


@dataclass(frozen=True)
class Transport:
    """One transport the Workstation service is active on."""

    name: str  # "NetBT_Tcpip_{610E2A3A-16C7-4E66-A11D-A483A5468C10}", "NetbiosSmb"
    address: str  # 12 hexadecimal digits, upper case: the adapter's MAC address, or zeros


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
