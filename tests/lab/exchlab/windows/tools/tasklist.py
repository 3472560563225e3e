# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""tasklist.exe (Windows XP / Server 2003 and later): the processes of the host.

Supported: `/fi "imagename eq NAME"` (NAME may end in *), `/fi "pid eq N"`, `/fo table|csv`,
`/nh`. Formats: the table has the columns "Image Name", "PID", "Session Name", "Session#",
"Mem Usage" (widths 25, 8, 16, 11, 12) under a line of "="; csv quotes every field; memory is
"5,432 K" (the widths, the memory form and the ERROR: text for a bad option are [lab]; the
column names: docs/windows-output.md#tool-messages, [I]). A filter that matches nothing prints "INFO: No tasks are running which match the
specified criteria." (XP / 2003: "INFO: No tasks running with the specified criteria.").

`/s NAME [/u USER [/p PASSWORD]]` on a jump host lists NAME's processes through the remote-call
layer (WMI over DCOM: exchlab.windows.remote), in the jump host's table. A refusal prints, on
stderr with exit code 1, "ERROR: Access denied" (as a published transcript shows it) or
"ERROR: The RPC server is unavailable."; "ERROR: The user name or password is incorrect." is
[lab].

[lab] The process table is the running services (their PIDs), programs a command of another shell
still runs (update.exe while it installs) and a few system processes. Registered as a cmd.exe internal command so that no era's System32 list has
to change: the lab's Windows 2000 hosts have it too, real ones do not.
"""

from __future__ import annotations

import re

from ...state import RUNNING, leaf_name
from ..cmdline import split_arguments
from ..formats import CRLF
from ..remote import WMI, Credentials, Refusal
from . import Invocation, Output, Tool

_HEADER = ("Image Name", "PID", "Session Name", "Session#", "Mem Usage")
_WIDTHS = (25, 8, 16, 11, 12)
# (image, pid, memory in KB) of the processes every host runs [lab].
_SYSTEM = (
    ("System Idle Process", 0, 8),
    ("System", 4, 140),
    ("smss.exe", 260, 1_024),
    ("csrss.exe", 348, 4_412),
    ("services.exe", 472, 7_860),
    ("lsass.exe", 484, 14_208),
    ("svchost.exe", 600, 18_540),
    ("winrshost.exe", 1_900, 6_120),
)
_FILTER = re.compile(r"^\s*(?P<field>imagename|pid)\s+eq\s+(?P<value>.+?)\s*$", re.IGNORECASE)


def _memory(kilobytes: int) -> str:
    return f"{kilobytes:,} K"


def _processes(invocation: Invocation, remotely: bool) -> list[tuple[str, int, int]]:
    """The host's processes; listed from another computer, without the WinRS shell's own
    (winrshost, cmd, tasklist run on the computer asking)."""
    host = invocation.host
    rows = [row for row in _SYSTEM if not (remotely and row[0] == "winrshost.exe")]
    for name, status in sorted(host.services.items(), key=lambda item: item[1].pid):
        config = host.service_config(name)
        if config is None or status.state != RUNNING or not status.pid:
            continue
        rows.append((leaf_name(config.executable), status.pid, 8_192 + (status.pid % 97) * 64))
    rows.extend((image, pid, 21_504) for image, pid in host.processes)
    # Installers waiting on the console (exchlab.console) run on until someone clicks.
    rows.extend(("update.exe", wait["pid"], 21_504) for wait in host.console_waits)
    if not remotely:
        rows.append(("cmd.exe", host.next_pid, 2_876))
        rows.append(("tasklist.exe", host.next_pid + 4, 5_432))
    return rows


def _matches(row: tuple[str, int, int], field: str, value: str) -> bool:
    if field == "pid":
        return value.isdigit() and row[1] == int(value)
    wanted = value.strip('"').lower()
    if wanted.endswith("*"):
        return row[0].lower().startswith(wanted[:-1])
    return row[0].lower() == wanted


def _invalid(output: Output, argument: str) -> int:
    output.err(f"ERROR: Invalid argument/option - '{argument}'.{CRLF}")
    output.err(f'Type "TASKLIST /?" for usage.{CRLF}')
    return 1


_REFUSALS = {
    5: "ERROR: Access denied",
    1326: "ERROR: The user name or password is incorrect.",
    1722: "ERROR: The RPC server is unavailable.",
}


def tasklist(invocation: Invocation, output: Output) -> int:
    argv = split_arguments(invocation.args)
    filters: list[tuple[str, str]] = []
    form, header = "table", True
    system: dict[str, str] = {}
    index = 0
    while index < len(argv):
        switch = argv[index].lower()
        if switch in ("/s", "/u", "/p") and index + 1 < len(argv):
            system[switch] = argv[index + 1]
            index += 2
            continue
        if switch in ("/fi", "/fo") and index + 1 < len(argv):
            value = argv[index + 1]
            if switch == "/fo":
                if value.lower() not in ("table", "csv"):
                    return _invalid(output, value)
                form = value.lower()
            else:
                match = _FILTER.match(value)
                if match is None:
                    output.err(f"ERROR: The search filter cannot be recognized.{CRLF}")
                    return 1
                filters.append((match.group("field").lower(), match.group("value")))
            index += 2
            continue
        if switch == "/nh":
            header = False
            index += 1
            continue
        return _invalid(output, argv[index])
    name = system.get("/s")
    remote = invocation.remote
    if name is None or name.upper() in (invocation.host.computer_name, ".", "LOCALHOST"):
        return _show(invocation, output, filters, form, header, remotely=False)
    if remote is None:
        output.err(_REFUSALS[1722] + CRLF)
        return 1
    explicit = Credentials(system["/u"], system.get("/p", "")) if "/u" in system else None
    outcome = remote.call(
        name,
        WMI,
        lambda target: _show(invocation.on(target), output, filters, form, header, remotely=True),
        explicit=explicit,
    )
    if isinstance(outcome, Refusal):
        output.err(_REFUSALS.get(outcome.code, _REFUSALS[5]) + CRLF)
        return 1
    return outcome


def _show(
    invocation: Invocation,
    output: Output,
    filters: list[tuple[str, str]],
    form: str,
    header: bool,
    *,
    remotely: bool,
) -> int:
    rows = [
        row
        for row in _processes(invocation, remotely)
        if all(_matches(row, f, v) for f, v in filters)
    ]
    if not rows:
        if invocation.era.vista_or_later:
            output.out(f"INFO: No tasks are running which match the specified criteria.{CRLF}")
        else:
            output.out(f"INFO: No tasks running with the specified criteria.{CRLF}")
        return 0
    fields = [(image, str(pid), "Services", "0", _memory(memory)) for image, pid, memory in rows]
    if form == "csv":
        lines = ([_HEADER] if header else []) + fields
        output.out("".join(",".join(f'"{item}"' for item in line) + CRLF for line in lines))
        return 0
    text = CRLF
    if header:
        text += _table_line(_HEADER) + " ".join("=" * width for width in _WIDTHS) + CRLF
    output.out(text + "".join(_table_line(line) for line in fields))
    return 0


def _table_line(line: tuple[str, ...]) -> str:
    image, pid, session_name, session, memory = line
    return (
        f"{image[:25]:<25} {pid:>8} {session_name:<16} {session:>11} {memory:>12}".rstrip() + CRLF
    )


TOOLS = (Tool(("tasklist",), tasklist, windows_program=True),)
