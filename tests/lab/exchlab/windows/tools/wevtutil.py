# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""wevtutil.exe qe LOG [/q:XPATH] [/f:text|xml] [/c:N] [/rd:true] (Vista and later only;
on 2003 and earlier cmd.exe answers "not recognized", E15).

`/f:text` prints each event as E13 shows it (docs/windows-output.md 5.2): `Event[N]:`, two-space
indented fields, `Description: ` with its trailing space, the message unindented. The XPath
filter understands what the collection needs: `Provider[@Name='X']`, `EventID=N` (joined with
`or`), `EventRecordID>N` (and the other comparisons); anything else is ignored [lab].
`Task: N/A`, `Opcode: N/A`, `Keyword: Classic` and the `User` lines of a classic source are [?]
in docs/windows-output.md#wevtutil; `User: N/A` and `User Name: N/A` are [lab]. The error texts
and exit codes (87 for bad arguments, 15007 for an unknown log) and the `/f:xml` layout have no
source cited [lab].
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from ...state import Event
from ..formats import CRLF
from . import Invocation, Output, Tool

_QUALIFIERS = {"Error": 49152, "Warning": 32768, "Information": 16384}
_LEVELS = {"Error": 2, "Warning": 3, "Information": 4}


def _option(args: list[str], name: str) -> str | None:
    for arg in args:
        lowered = arg.lower()
        for prefix in (f"/{name}:", f"/{name}="):
            if lowered.startswith(prefix):
                return arg[len(prefix) :]
    return None


def _matches(event: Event, query: str) -> bool:
    providers = re.findall(r"Provider\[@Name=['\"]([^'\"]+)['\"]\]", query)
    if providers and event.source.upper() not in {p.upper() for p in providers}:
        return False
    ids = [int(number) for number in re.findall(r"EventID\s*=\s*(\d+)", query)]
    if ids and event.event_id not in ids:
        return False
    for operator, number in re.findall(r"EventRecordID\s*(>=|<=|>|<|=)\s*(\d+)", query):
        value = int(number)
        checks = {
            ">": event.record > value,
            "<": event.record < value,
            ">=": event.record >= value,
            "<=": event.record <= value,
            "=": event.record == value,
        }
        if not checks[operator]:
            return False
    return True


def _text(event: Event, index: int) -> str:
    lines = [
        f"Event[{index}]:",
        f"  Log Name: {event.log}",
        f"  Source: {event.source}",
        f"  Date: {event.time.rstrip('Z')}.0000000Z",
        f"  Event ID: {event.event_id}",
        "  Task: N/A",
        f"  Level: {event.type}",
        "  Opcode: N/A",
        "  Keyword: Classic",
        "  User: N/A",
        "  User Name: N/A",
        f"  Computer: {event.computer}",
        "  Description: ",
        event.message,
    ]
    return CRLF.join(lines) + CRLF


def _xml(event: Event) -> str:
    return (
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        f"<Provider Name='{escape(event.source)}'/>"
        f"<EventID Qualifiers='{_QUALIFIERS.get(event.type, 0)}'>{event.event_id}</EventID>"
        f"<Level>{_LEVELS.get(event.type, 4)}</Level><Task>0</Task>"
        "<Keywords>0x80000000000000</Keywords>"
        f"<TimeCreated SystemTime='{event.time.rstrip('Z')}.000000000Z'/>"
        f"<EventRecordID>{event.record}</EventRecordID><Channel>{escape(event.log)}</Channel>"
        f"<Computer>{escape(event.computer)}</Computer><Security/></System>"
        f"<EventData><Data>{escape(event.message)}</Data></EventData></Event>"
    )


def wevtutil(invocation: Invocation, output: Output) -> int:
    args = invocation.argv
    if len(args) < 2 or args[0].lower() not in ("qe", "query-events"):
        output.err(f"The parameter is incorrect.{CRLF}{CRLF}")
        return 87
    log_name = args[1]
    logs = {name.upper(): name for name in invocation.host.event_logs}
    if log_name.upper() not in logs:
        output.err(f"Failed to read events. The specified channel could not be found.{CRLF}{CRLF}")
        return 15007
    events = list(invocation.host.event_logs[logs[log_name.upper()]])
    query = _option(args, "q") or _option(args, "query") or ""
    events = [event for event in events if _matches(event, query)]
    if (_option(args, "rd") or "false").lower() == "true":
        events.reverse()
    count = _option(args, "c") or _option(args, "count")
    if count is not None and count.isdigit():
        events = events[: int(count)]
    if (_option(args, "f") or _option(args, "format") or "xml").lower() == "text":
        output.out("".join(_text(event, index) for index, event in enumerate(events)))
    else:
        output.out("".join(_xml(event) for event in events) + (CRLF if events else ""))
    return 0


TOOLS = (Tool(("wevtutil",), wevtutil, file_name="wevtutil.exe"),)
