# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""at.exe on a jump host: `at \\\\NAME HH:MM [/interactive] "COMMAND"` adds a job to NAME's Schedule
service (exchlab.console runs it at its time); `at \\\\NAME` lists the jobs.

Sources: on Windows 8 / 2012 and later (CurrentVersion 6.2 and up) at.exe first prints "The AT
command has been deprecated. Please use schtasks.exe instead." and a job added prints "Added a
new job with job ID = N" (public script transcripts). NetScheduleJobAdd, the call behind it
(https://learn.microsoft.com/en-us/windows/desktop/api/lmat/nf-lmat-netschedulejobadd): only
members of the local Administrators group may add jobs, and it is no longer available as of
Windows 8, so a 2012 or later target refuses with "The request is not supported." (the lab's
targets behind a jump host are NT 4.0 / 2000 only). The list's columns Status ID Day Time
Command Line are NT's at.exe's. The call goes through the remote-call layer (the atsvc pipe over
SMB, exchlab.windows.remote), whose refusal at.exe prints as the system message.

[lab], no source cited: that a stopped Schedule service answers "The service has not been
started." (NERR_ServiceNotInstalled, 2184: the pairing is [I]); the exit codes (1 on failure);
the list's column widths and its "Today"/"Tomorrow" day words; the blank line after the
deprecation line; "There are no entries in the list." for an empty list; the usage text; the
`exchlab: ... is not emulated` line for jobs on the jump host itself.
"""

from __future__ import annotations

import re

from ...console import add_job, schedule_running, waiting_jobs
from ...state import HostState, parse_time
from ..cmdline import split_arguments
from ..formats import CRLF, SYSTEM_MESSAGES
from ..remote import ATSVC, Refusal, path_error_code
from . import Invocation, Output, Tool

DEPRECATED = f"The AT command has been deprecated. Please use schtasks.exe instead.{CRLF}{CRLF}"
NERR_SERVICE_NOT_INSTALLED = 2184
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _deprecated_on(invocation: Invocation) -> bool:
    """Windows 8 / Server 2012 (CurrentVersion 6.2) and later print the deprecation line."""
    major, minor = (int(part) for part in invocation.era.current_version.split(".")[:2])
    return (major, minor) >= (6, 2)


def _usage(output: Output) -> int:
    output.err(
        f"The syntax of this command is:{CRLF}{CRLF}"
        f"AT [\\\\computername] [ [id] [/DELETE] | /DELETE [/YES]]{CRLF}"
        f"AT [\\\\computername] time [/INTERACTIVE]{CRLF}    [ /EVERY:date[,...] | "
        f'/NEXT:date[,...]] "command"{CRLF}'
    )
    return 1


def _listing(target: HostState) -> str:
    jobs = waiting_jobs(target)
    if not jobs:
        return f"There are no entries in the list.{CRLF}"
    today = target.now().date()
    lines = [
        f"Status ID   Day                     Time          Command Line{CRLF}",
        "-" * 79 + CRLF,
    ]
    for job in jobs:
        due = parse_time(job["due"])
        day = "Today" if due.date() == today else "Tomorrow"
        hour = due.hour % 12 or 12
        when = f"{hour}:{due:%M} {'AM' if due.hour < 12 else 'PM'}"
        lines.append(f"{'':<7}{job['id']:<5}{day:<24}{when:<14}{job['command']}{CRLF}")
    return "".join(lines)


def at(invocation: Invocation, output: Output) -> int:
    words = split_arguments(invocation.args)
    remote = invocation.remote
    if _deprecated_on(invocation):
        output.out(DEPRECATED)
    if not words or not words[0].startswith("\\\\") or remote is None:
        # Jobs on the jump host itself are not the lab's business.
        output.err(
            f"exchlab: at without \\\\NAME on {invocation.host.computer_name} is not emulated{CRLF}"
        )
        return 1
    name, rest = words[0][2:], words[1:]
    switches = [word.lower() for word in rest if word.startswith("/")]
    operands = [word for word in rest if not word.startswith("/")]
    if operands and not _TIME.match(operands[0]):
        return _usage(output)
    if operands and len(operands) != 2:
        return _usage(output)

    def operation(target: HostState) -> str | int:
        if not schedule_running(target):
            return NERR_SERVICE_NOT_INSTALLED
        if not operands:
            return _listing(target)
        command = operands[1].strip('"')
        job_id = add_job(target, operands[0], command, "/interactive" in switches)
        return f"Added a new job with job ID = {job_id}{CRLF}"

    outcome = remote.call(name, ATSVC, operation)
    if isinstance(outcome, Refusal):
        output.err(SYSTEM_MESSAGES[path_error_code(outcome)] + CRLF + CRLF)
        return 1
    if isinstance(outcome, int):
        output.err(SYSTEM_MESSAGES[outcome] + CRLF + CRLF)
        return 1
    output.out(outcome)
    return 0


TOOLS = (Tool(("at",), at, file_name="at.exe"),)
