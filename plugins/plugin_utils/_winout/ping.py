# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse `ping [-n COUNT] [-w TIMEOUT] NAME`: `parse_ping` -> `PingResult`, whether ping
resolved the name, to which address, and its statistics (docs/windows-output.md#ping).

Only the name is decided here: ping's first line is either `Pinging NAME [ADDRESS] with N bytes
of data:` (the name resolved, whatever the replies) or `Ping request could not find host NAME.
Please check the name and try again.` (it did not). The lines of the replies between them and
the statistics ("Reply from ...", "Request timed out.") say what the network answered, which
nothing here decides on.

cmd's "is not recognized" raises `ToolMissing`; ping's own refusal ("IP address must be
specified.", a bad option) with a non-zero exit code `CommandFailed`; any other first line
`ParseError`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from dataclasses import dataclass

from ._base import _command_failed, _nonblank, _parse_error, _raise_if_missing

# Microsoft Learn "ping" shows `pinging example.microsoft.com [192.168.239.132] with 32 bytes
# of data:` [V] (lower case there, capitalised in every published capture [S]); a target given
# as an address is printed without brackets [S].
_PINGING = re.compile(
    r"^[Pp]inging (?P<name>\S+) (?:\[(?P<address>[^\]\s]+)\] )?with [0-9]+ bytes of data:\s*$"
)
# A published capture of Windows' ping [V]; some captures stop after the name's period [S].
_NOT_FOUND = re.compile(
    r"^Ping request could not find host (?P<name>\S+?)\.(?: Please check the name and try "
    r"again\.)?\s*$"
)
# The statistics' counts, as published Windows 7 / 10 captures print them [S].
_PACKETS = re.compile(
    r"^\s*Packets: Sent = (?P<sent>[0-9]+), Received = (?P<received>[0-9]+), "
    r"Lost = [0-9]+ \([0-9]+% loss\),?\s*$"
)


@dataclass(frozen=True)
class PingResult:
    """What ping said of NAME. `resolved` is True when it printed its `Pinging` line, which it
    does once it has an address to send to (for a target given as an address too, which needs
    no resolving); False for "could not find host"."""

    resolved: bool
    name: str  # as ping printed it
    address: str | None = None  # the address the name resolved to, when printed
    sent: int | None = None  # the statistics' counts, when printed
    received: int | None = None


def parse_ping(stdout: str, stderr: str, exit_code: int, section: str = "ping") -> PingResult:
    """Parse ping's answer for one target: resolved (its `Pinging` line, the address, the
    statistics' counts) or not ("could not find host"), decided by its first line and never by
    the exit code, which no source documents. cmd's "is not recognized" raises ToolMissing;
    another first line with a non-zero exit code CommandFailed (ping refused its arguments),
    with exit code 0 ParseError."""
    _raise_if_missing(section, stderr, exit_code)
    lines = _nonblank(stdout, "stdout") + _nonblank(stderr, "stderr")
    if not lines:
        raise _parse_error(section, f"ping printed nothing (exit code {exit_code})")
    first = lines[0]
    not_found = _NOT_FOUND.match(first.text)
    if not_found:
        return PingResult(False, not_found.group("name"))
    pinging = _PINGING.match(first.text)
    if pinging:
        counts = next((m for line in lines[1:] if (m := _PACKETS.match(line.text))), None)
        return PingResult(
            True,
            pinging.group("name"),
            pinging.group("address"),
            int(counts.group("sent")) if counts else None,
            int(counts.group("received")) if counts else None,
        )
    if exit_code != 0:
        raise _command_failed(section, exit_code, lines)
    raise _parse_error(
        section,
        "expected 'Pinging NAME [ADDRESS] with N bytes of data:' or 'Ping request could not "
        "find host NAME.' (docs/windows-output.md#ping)",
        first,
    )
