# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A legacy server's console, its Schedule service's `at` jobs, and the lab clock.

The collection reapplies an Exchange SP on an NT 4.0 / 2000 server in one of two ways, and the
lab plays both:

- `operator`: the kit is staged on the server's disk (`\\\\NAME\\C$\\exchops\\sp\\...`) and a person
  at the server's console runs update.exe, a GUI installer with no documented silent switch
  (KB Q191013: "Type Update, and then follow the instructions displayed on the screen").
  `exchlab console --state DIR HOST` is that person (`click_through`); with `--when-file PATH`
  the person comes only once PATH exists on the server, as one who reads the steps the play shows
  right after writing its run record (`operator_has_come`) [lab].
- `at_interactive`: a jump host's `at \\\\NAME HH:MM /interactive "cmd /c C:\\exchops\\runsp.cmd"`
  adds a job to the server's Schedule service. Jobs run at their time as SYSTEM (KB Q105995),
  which has no network credentials, so a job that reads a UNC path fails [I]; on NT 4.0 the
  Schedule service no longer understands cmd.exe's internal commands, hence `cmd /c`. The job's
  update.exe waits on the console (exchlab.windows.tools.update) until the operator clicks
  through it, and the batch that started it goes on only then (its "finished" marker).

An installer the operator clicks through appends its run to "Exchange Server Setup.log" in the
root of the Exchange drive, as every run does (KB Q158545, Q182518, Q290226). Only an installer
on the console's desktop can be clicked: one started by a job without /interactive, or by
`wmic process call create` (Win32_Process.Create "cannot be used to start an interactive process
remotely", https://learn.microsoft.com/en-us/windows/win32/cimwin32prov/
create-method-in-class-win32-process), waits on a desktop nobody sees, forever.

Nothing of an installer started this way lives in the jump host's WinRS shell: a connection the
jump host loses meanwhile (its `drop_connection_on` / `drop_receive_for` faults,
exchlab.wsman.backend) changes nothing on the server, and the installer goes on.

A command line stopped by an installer that waits keeps the rest of its batch files in the
wait's `then` (run in order when the installer ends, with ERRORLEVEL set to its exit code) [lab:
the lab runs no processes side by side; a batch that waits is kept as its remaining lines].

The clock: each host's time is its state's (`HostState.now`), moved on one second per command
and by `exchlab clock --state DIR [HOST] --advance SECONDS` (`advance`). Jobs whose time has
come run, oldest first, whenever the clock moves past them and a request reaches the server, so
a run is deterministic; a job whose time is earlier than the server's clock runs the next day
(https://learn.microsoft.com/en-us/windows-server/administration/windows-commands/at). The
server's local time is its UTC clock [lab].
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NoReturn

from .state import RUNNING, FileSystemError, HostState, format_time, normalize_path, parse_time

# Who started a command line: a WinRS shell, the operator at the console, the Schedule service
# (an `at` job, on the console's desktop with /interactive), WMI (`wmic process call create`).
WINRS = "winrs"
CONSOLE = "console"
AT = "at"
AT_INTERACTIVE = "at /interactive"
WMIC = "wmic"
# The launches whose windows the operator at the console sees.
_ON_THE_DESKTOP = (CONSOLE, AT_INTERACTIVE)
# The Schedule service: NT 4.0's runs `at` jobs (the Task Scheduler of Windows 2000 keeps the
# name) [lab: program path and display name].
SCHEDULE_SERVICE = "Schedule"
# Where `operator` mode stages the kit; what `exchlab console` runs when no installer waits.
STAGED_KIT = r"C:\exchops\sp"
INSTALLER_NAME = "UPDATE.EXE"


class WaitsOnConsole(Exception):
    """update.exe waits on the console: the command line that started it stops here. Each
    batch file it unwinds through adds its remaining lines to the wait's `then`."""

    def __init__(self, wait: dict[str, Any]) -> None:
        super().__init__("update.exe waits on the console")
        self.wait = wait


class ConsoleError(Exception):
    """`exchlab console` finds nothing to click through and no kit to run."""


# ---------------------------------------------------------------------------------------------
# Installers waiting on the console


def wait_on_console(host: HostState, program: str, switches: list[str], launch: str) -> NoReturn:
    """Record update.exe waiting on HOST's console and stop the command line that started it."""
    wait = {
        "installer": program,
        "switches": list(switches),
        "launch": launch,
        "on_desktop": launch in _ON_THE_DESKTOP,
        "started": host.now_text(),
        "pid": host.allocate_pid(),
        "then": [],
    }
    host.console_waits.append(wait)
    raise WaitsOnConsole(wait)


def run_started(host: HostState, command_line: str, launch: str) -> int | None:
    """A process started on HOST by its Schedule service or WMI, as SYSTEM, without network
    credentials (no remote calls): its exit code, or None while an installer it started waits."""
    # Imported here: the shell's tools import this module.
    from .windows.shell import run_command

    try:
        return run_command(
            host, command_line, {"USERNAME": "SYSTEM", "USERDOMAIN": "NT AUTHORITY"}, launch=launch
        ).exit_code
    except WaitsOnConsole:
        return None


def staged_installer(host: HostState) -> str | None:
    """The kit's update.exe under STAGED_KIT (the shortest path first), if one is staged."""
    found = [
        entry.path
        for entry in host.fs.tree_files(normalize_path(STAGED_KIT))
        if entry.name.upper() == INSTALLER_NAME
    ]
    return min(found, key=lambda path: (len(path), path.upper()), default=None)


def operator_has_come(host: HostState, when_file: str | None) -> bool:
    """Whether the operator is at HOST's console: always, unless WHEN_FILE names a file on HOST
    that the operator waits for [lab: a person who reads the console steps a play shows is
    modelled as coming once the play has written the file it writes just before showing them,
    such as its run record]. Raises ConsoleError for a path that is not on HOST's disks."""
    if when_file is None:
        return True
    try:
        return host.fs.is_file(normalize_path(when_file))
    except FileSystemError as exc:
        raise ConsoleError(f"{when_file} is not a path on {host.name}'s disks: {exc}") from exc


def click_through(host: HostState, run: str | None = None) -> dict[str, Any]:
    """The operator at HOST's console: finishes the oldest installer waiting on its desktop and
    lets the command line that started it go on; with none waiting anywhere, runs update.exe
    (RUN, else the kit staged under STAGED_KIT) as an operator would. Raises ConsoleError when
    there is nothing to click or run, or only installers on a desktop nobody sees."""
    # Imported here: the shell's tools import this module.
    from .windows.shell import Shell
    from .windows.tools.update import run_installer

    host.begin_command()
    visible = [wait for wait in host.console_waits if wait["on_desktop"]]
    if visible:
        wait = visible[0]
        host.console_waits.remove(wait)
        exit_code = run_installer(host, wait["installer"], list(wait["switches"]))
        shell = Shell(host, {"USERNAME": "SYSTEM"}, launch=wait["launch"])
        shell.errorlevel = exit_code
        try:
            shell.run_batch_lines(list(wait["then"]))
            batch_ended = True
        except WaitsOnConsole:
            batch_ended = False  # the batch started another installer, which waits in turn
        return {
            "installer": wait["installer"],
            "waited_since": wait["started"],
            "exit_code": exit_code,
            "batch_ended": batch_ended,
        }
    if host.console_waits:
        hidden = host.console_waits[0]
        raise ConsoleError(
            f"{len(host.console_waits)} update.exe wait(s) on {host.name}, none on the console's "
            f"desktop: the oldest, {hidden['installer']}, was started by {hidden['launch']} "
            "without /interactive and waits where nobody can click it"
        )
    if run is not None:
        program = normalize_path(run)
        if not host.fs.is_file(program):
            raise ConsoleError(f"{host.name} has no file {program}")
    else:
        staged = staged_installer(host)
        if staged is None:
            raise ConsoleError(
                f"no installer waits on {host.name}'s console and no kit is staged under "
                f"{STAGED_KIT}; name update.exe with --run PATH"
            )
        program = staged
    exit_code = run_installer(host, program, [])
    return {"installer": program, "waited_since": None, "exit_code": exit_code}


# ---------------------------------------------------------------------------------------------
# The Schedule service's jobs and the clock


def schedule_running(host: HostState) -> bool:
    name = host.service_name(SCHEDULE_SERVICE)
    return name is not None and host.services[name].state == RUNNING


def add_job(host: HostState, time_text: str, command: str, interactive: bool) -> int:
    """An `at` job at HH:MM of HOST's clock (the next day when that time has passed)."""
    hours, minutes = (int(part) for part in time_text.split(":"))
    now = host.now()
    due = now.replace(hour=hours, minute=minutes, second=0)
    if due <= now:
        due += timedelta(days=1)
    job_id = max((job["id"] for job in host.at_jobs), default=0) + 1
    host.at_jobs.append(
        {
            "id": job_id,
            "due": format_time(due),
            "command": command,
            "interactive": interactive,
            "status": "waiting",
        }
    )
    return job_id


def waiting_jobs(host: HostState) -> list[dict[str, Any]]:
    return [job for job in host.at_jobs if job["status"] == "waiting"]


def run_due_jobs(host: HostState) -> list[int]:
    """Run every waiting job whose time has come, oldest first (none while the Schedule service
    is stopped): the IDs run. A job that ran ends `ran` (or `error` when its command failed:
    exit code not 0) and leaves NT's job list, as a one-time job does [lab: the status]."""
    if not schedule_running(host):
        return []
    now = host.now()
    ran = []
    for job in sorted(waiting_jobs(host), key=lambda job: (job["due"], job["id"])):
        if parse_time(job["due"]) > now:
            break
        job["status"] = "running"
        exit_code = run_started(host, job["command"], AT_INTERACTIVE if job["interactive"] else AT)
        job["status"] = "ran" if exit_code in (0, None) else "error"
        job["exit_code"] = exit_code
        ran.append(job["id"])
    return ran


def advance(host: HostState, seconds: int) -> list[int]:
    """Move HOST's clock on by SECONDS and run the jobs whose time has come."""
    host.clock_offset_s += seconds
    return run_due_jobs(host)


def clock_text(moment: datetime) -> str:
    """A time as net.exe prints it with the en-US locale, the lab's jump hosts' [lab]:
    "12/3/2026 10:15:02 PM"."""
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment:%M:%S} {half}"
