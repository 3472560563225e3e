# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ping.exe `[-n COUNT] [-w TIMEOUT] [-4] NAME`: whether the host resolves NAME, and the replies.

A jump host resolves the names of the servers behind it (exchlab.windows.remote's network); an
unknown name is answered "Ping request could not find host NAME. Please check the name and try
again." on standard output (quoted from a published capture of Windows' ping, and read from
ping's standard output by public scripts). A known name gets the Vista-and-later reply block:
an empty line, "Pinging NAME [ADDRESS] with 32 bytes of data:", one "Reply from ADDRESS:
bytes=32 time<1ms TTL=128" per echo, an empty line and the statistics (layout as in published
Windows 7 / 10 captures).

[lab], no source cited: the exit codes (0 with a reply, 1 without), `time<1ms` and `TTL=128` for
every reply, the name printed as the network holds it (the server's NetBIOS name, upper case),
the server's lab address as its address, and that the lab's names resolve whatever NetBIOS over
TCP/IP is set to (the lab's servers are in the jump host's DNS): names, not NetBIOS, decide here.
A ping by address, and of any name from a host that reaches no other computer, is not emulated
beyond "could not find host" (the latter) or exchlab's own refusal (the former); without a
name ping says "IP address must be specified." [lab].
"""

from __future__ import annotations

import re

from ..formats import CRLF
from . import Invocation, Output, Tool

_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
# Switches that take a value (ping /? of Vista and later); the others stand alone.
_WITH_VALUE = ("-n", "-w", "-l", "-i", "-v", "-r", "-s", "-j", "-k", "-p")


def ping(invocation: Invocation, output: Output) -> int:
    argv = invocation.argv
    count, names = 4, []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word[:1] in ("-", "/") and len(word) > 1:
            switch = "-" + word[1:]
            if switch.lower() == "-n" and index + 1 < len(argv) and argv[index + 1].isdigit():
                count = max(1, int(argv[index + 1]))
            index += 2 if switch.lower() in _WITH_VALUE else 1
            continue
        names.append(word)
        index += 1
    if len(names) != 1:
        output.out(f"IP address must be specified.{CRLF}")
        return 1
    name = names[0]
    if _IPV4.match(name):
        output.err(f"exchlab: ping by address ({name}) is not emulated{CRLF}")
        return 1
    found = _resolve(invocation, name)
    if found is None:
        output.out(
            f"Ping request could not find host {name}. Please check the name and try again.{CRLF}"
        )
        return 1
    shown, address = found
    lines = [CRLF, f"Pinging {shown} [{address}] with 32 bytes of data:{CRLF}"]
    lines += [f"Reply from {address}: bytes=32 time<1ms TTL=128{CRLF}"] * count
    lines += [
        CRLF,
        f"Ping statistics for {address}:{CRLF}",
        f"    Packets: Sent = {count}, Received = {count}, Lost = 0 (0% loss),{CRLF}",
        f"Approximate round trip times in milli-seconds:{CRLF}",
        f"    Minimum = 0ms, Maximum = 0ms, Average = 0ms{CRLF}",
    ]
    output.out("".join(lines))
    return 0


def _resolve(invocation: Invocation, name: str) -> tuple[str, str] | None:
    """(the name as resolved, its address), or None when the host cannot resolve NAME."""
    host = invocation.host
    if name.upper() in (host.computer_name, "LOCALHOST"):
        return host.computer_name, host.address
    remote = invocation.remote
    if remote is None:
        return None
    return remote.resolve(name)


TOOLS = (Tool(("ping",), ping, file_name="ping.exe"),)
