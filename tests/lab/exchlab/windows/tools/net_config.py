# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`net config workstation` (`net config redirector`): the Workstation service's settings and the
transports it is active on.

KB 204279 (direct hosting of SMB over TCP/IP): "To determine if NetBIOS over TCP/IP is enabled on
a Windows-based computer, issue a net config redirector or net config server command"; the output
lists NetBT_Tcpip_{GUID} (MAC) once per adapter NetBIOS over TCP/IP is bound to, and NetbiosSmb,
the direct-hosted transport. Windows 2000 / 2003 print both (the KB's sample); published Vista-
and-later captures (Windows 7, Server 2008 R2, Windows 10) list NetBT_Tcpip lines only. The
layout (names padded to column 37, transports indented 8 spaces under "Workstation active on",
the COM lines, "The command completed successfully.") is those captures'.

The adapter and whether NetBIOS over TCP/IP is bound to it are exchlab.reach's (one adapter per
host, NetBT's NetbiosOptions; 2 = disabled): a host with it off lists no NetBT_Tcpip transport.

[lab], no source cited: the adapter's GUID and MAC address, the empty list of a Vista-and-later
host without NetBIOS over TCP/IP, the full computer name without a DNS suffix and no "Workstation
Domain DNS Name" line (the lab has no DNS names), the "Software version" text (the host's product
name), and the empty line after the last line.
"""

from __future__ import annotations

from ...reach import NETBT_INTERFACE_KEY, netbios_enabled
from ...state import HostState
from ..formats import CRLF
from . import Invocation, Output

_WIDTH = 37  # the value column of the captured output


def _field(name: str, value: str) -> str:
    return f"{name:<{_WIDTH}}{value}{CRLF}"


def _mac(host: HostState) -> str:
    """A MAC address made from the host's lab address (000C29 + its last three octets)."""
    octets = [int(part) for part in host.address.split(".")[-3:]]
    return "000C29" + "".join(f"{octet:02X}" for octet in octets)


def _transports(invocation: Invocation) -> list[str]:
    host = invocation.host
    found = []
    if not invocation.era.vista_or_later:
        found.append("NetbiosSmb (000000000000)")
    if netbios_enabled(host):
        guid = NETBT_INTERFACE_KEY.rpartition("Tcpip_")[2]
        found.append(f"NetBT_Tcpip_{guid} ({_mac(host)})")
    return found


def show_config(invocation: Invocation, output: Output, words: list[str]) -> int:
    """`net config workstation | redirector | rdr`; any other form is refused as not emulated."""
    if [word.lower() for word in words] not in (["workstation"], ["redirector"], ["rdr"]):
        output.err(f"exchlab: net config {' '.join(words)} is not emulated{CRLF}")
        return 1
    host = invocation.host
    user = invocation.env.get("USERNAME") or "Administrator"
    active = "".join(f"        {transport}{CRLF}" for transport in _transports(invocation))
    output.out(
        _field("Computer name", "\\\\" + host.computer_name)
        + _field("Full Computer name", host.computer_name)
        + _field("User name", user)
        + CRLF
        + f"Workstation active on{CRLF}"
        + active
        + CRLF
        + _field("Software version", invocation.era.product_name)
        + CRLF
        + _field("Workstation domain", host.domain)
        + _field("Logon domain", invocation.env.get("USERDOMAIN") or host.domain)
        + CRLF
        + _field("COM Open Timeout (sec)", "0")
        + _field("COM Send Count (byte)", "16")
        + _field("COM Send Timeout (msec)", "250")
        + f"The command completed successfully.{CRLF}{CRLF}"
    )
    return 0
