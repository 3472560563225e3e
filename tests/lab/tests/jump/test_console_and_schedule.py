# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An Exchange SP reapplied at a legacy server's console (exchlab.console), in-process.

The two launch modes of issue 19: `operator` (the kit staged under C:\\exchops\\sp, a person runs
update.exe at the console) and `at_interactive` (`net time`, a batch with marker files, `at
\\\\NAME HH:MM /interactive`, the job's update.exe waiting for the operator's clicks); and the
route the collection will not take, `wmic process call create`, whose installer nobody can click.
"""

from __future__ import annotations

import pytest
from jump_support import JumpLab, credssp, jump_host, legacy_host, ntlm

from exchlab.console import ConsoleError, advance, click_through
from exchlab.exchange import SETUP_KEY, add_media
from exchlab.reach import apply_faults
from exchlab.state import HostState

KIT = r"D:\EXCH55SP3"
STAGED = r"C:\exchops\sp\ENG\SERVER\SETUP\I386\update.exe"
MARKERS = r"C:\exchops\sp.state"
RUNSP = (
    b"@echo off\r\n"
    b"echo started> C:\\exchops\\sp.state\r\n"
    b"C:\\exchops\\sp\\ENG\\SERVER\\SETUP\\I386\\update.exe\r\n"
    b"echo finished>> C:\\exchops\\sp.state\r\n"
)
SCHEDULE = r'at \\KMSNEW 09:15 /interactive "cmd /c C:\exchops\runsp.cmd"'
DEPRECATED = "The AT command has been deprecated. Please use schtasks.exe instead.\r\n\r\n"
SP3_BUILD = 2650


def staged_server() -> HostState:
    """The KB target, its SP3 kit extracted on D: and staged under C:\\exchops\\sp with the
    batch the at_interactive mode writes."""
    server = legacy_host()
    add_media(server, KIT, "5.5.2650")
    server.make_dirs(r"C:\exchops\sp\ENG\SERVER\SETUP\I386")
    kit_update = server.fs.file_entry(KIT + r"\ENG\SERVER\SETUP\I386\UPDATE.EXE")
    assert kit_update is not None
    server.copy_file(kit_update, STAGED)
    server.write_file(r"C:\exchops\runsp.cmd", data=RUNSP)
    server.registry.set_value(SETUP_KEY, "NewestBuild", "REG_DWORD", 2470)  # SP2's build
    return server


def markers(server: HostState) -> str:
    entry = server.fs.file_entry(MARKERS)
    return entry.content().decode() if entry is not None else ""


def setup_log(server: HostState) -> str:
    entry = server.fs.file_entry(r"C:\Exchange Server Setup.log")
    return entry.content().decode() if entry is not None else ""


def test_net_time_prints_the_servers_clock_as_net_exe_does() -> None:
    server = staged_server()
    lab = JumpLab(jump_host(), server)
    result = lab.run(r"net time \\KMSNEW", credssp())
    assert (result.stdout, result.stderr, result.exit_code) == (
        "Current time at \\\\KMSNEW is 3/14/2001 9:12:41 AM\r\n\r\n"
        "The command completed successfully.\r\n\r\n",
        "",
        0,
    )
    advance(server, 13 * 3600)
    later = lab.run(r"net time \\kmsnew", credssp())
    assert later.stdout.startswith("Current time at \\\\kmsnew is 3/14/2001 10:12:42 PM\r\n")


def test_net_time_failures_are_the_remote_call_layers() -> None:
    lab = JumpLab(jump_host(), staged_server())
    unknown = lab.run(r"net time \\NOSUCH", credssp())
    assert (unknown.stderr, unknown.exit_code) == (
        "System error 53 has occurred.\r\n\r\nThe network path was not found.\r\n\r\n",
        2,
    )
    without_smb1 = JumpLab(jump_host("2019"), staged_server()).run(r"net time \\KMSNEW", credssp())
    assert without_smb1.stderr.startswith("System error 384 has occurred.")


def test_at_interactive_the_job_waits_for_the_operator_and_the_batch_finishes_after() -> None:
    server = staged_server()
    lab = JumpLab(jump_host(), server)
    added = lab.run(SCHEDULE, credssp())
    assert (added.stdout, added.exit_code) == (
        DEPRECATED + "Added a new job with job ID = 1\r\n",
        0,
    )
    listed = lab.run(r"at \\KMSNEW", credssp())
    assert listed.stdout.splitlines()[2:] == [
        "Status ID   Day                     Time          Command Line",
        "-" * 79,
        r"       1    Today                   9:15 AM       cmd /c C:\exchops\runsp.cmd",
    ]
    assert advance(server, 60) == []  # 9:13: not yet
    assert advance(server, 120) == [1]
    assert markers(server) == "started\r\n"
    assert [wait["installer"] for wait in server.console_waits] == [STAGED]
    assert server.installer_runs == []
    assert setup_log(server).count("Setup initialized") == 1  # the build's own run only
    # Time passes; nobody clicks: the installer still waits and the batch never goes on.
    advance(server, 3 * 3600)
    assert markers(server) == "started\r\n"
    assert lab.run(r"at \\KMSNEW", credssp()).stdout == (
        DEPRECATED + "There are no entries in the list.\r\n"
    )

    clicked = click_through(server)
    assert (clicked["installer"], clicked["exit_code"], clicked["batch_ended"]) == (
        STAGED,
        0,
        True,
    )
    assert markers(server) == "started\r\nfinished\r\n"
    assert server.console_waits == []
    assert server.registry.data(SETUP_KEY, "NewestBuild") == SP3_BUILD
    assert server.installer_runs[-1].outcome == "succeeded"
    assert setup_log(server).count("Setup initialized") == 2  # appended, not replaced


def test_a_job_scheduled_for_an_earlier_time_runs_the_next_day() -> None:
    server = staged_server()
    lab = JumpLab(jump_host(), server)
    lab.run(r'at \\KMSNEW 09:00 /interactive "cmd /c C:\exchops\runsp.cmd"', credssp())
    assert "Tomorrow" in lab.run(r"at \\KMSNEW", credssp()).stdout
    assert advance(server, 3600) == []
    assert advance(server, 23 * 3600) == [1]


def test_a_job_runs_when_a_request_reaches_the_server_after_its_time() -> None:
    server = staged_server()
    lab = JumpLab(jump_host(), server)
    lab.run(SCHEDULE, credssp())
    server.clock_offset_s = 180  # the clock moved on; nothing reached the server yet
    assert server.console_waits == []
    lab.run(r"net time \\KMSNEW", credssp())
    assert len(server.console_waits) == 1


def test_a_job_without_interactive_waits_where_nobody_can_click() -> None:
    server = staged_server()
    lab = JumpLab(jump_host(), server)
    lab.run(r'at \\KMSNEW 09:15 "cmd /c C:\exchops\runsp.cmd"', credssp())
    advance(server, 180)
    assert markers(server) == "started\r\n"
    with pytest.raises(ConsoleError, match="none on the console's desktop"):
        click_through(server)
    assert markers(server) == "started\r\n"


def test_system_has_no_network_credentials_so_a_job_reading_a_share_fails() -> None:
    server = staged_server()
    lab = JumpLab(jump_host(), server)
    lab.run(r'at \\KMSNEW 09:15 /interactive "cmd /c \\JUMP01\kit\update.exe"', credssp())
    advance(server, 180)
    assert server.console_waits == []
    assert [job["status"] for job in server.at_jobs] == ["error"]
    assert server.installer_runs == []


def test_at_needs_an_administrator_and_credentials() -> None:
    server = staged_server()
    lab = JumpLab(jump_host(), server)
    anonymous = lab.run(SCHEDULE, ntlm())
    assert (anonymous.stdout, anonymous.stderr, anonymous.exit_code) == (
        DEPRECATED,
        "Access is denied.\r\n\r\n",
        1,
    )
    not_admin = JumpLab(jump_host(), legacy_host(admins=("LAB\\someoneelse",)))
    assert not_admin.run(SCHEDULE, credssp()).stderr == "Access is denied.\r\n\r\n"
    assert server.at_jobs == []


def test_at_with_the_schedule_service_stopped_fails_until_it_runs_again() -> None:
    server = staged_server()
    server.faults["schedule_stopped"] = True
    apply_faults(server)
    lab = JumpLab(jump_host(), server)
    assert (
        "STATE              : 1  STOPPED"
        in lab.run(r"sc \\KMSNEW query Schedule", credssp()).stdout
    )
    refused = lab.run(SCHEDULE, credssp())
    assert (refused.stderr, refused.exit_code) == ("The service has not been started.\r\n\r\n", 1)
    server.faults["schedule_stopped"] = False
    apply_faults(server)
    assert lab.run(SCHEDULE, credssp()).exit_code == 0


def test_jobs_wait_while_the_schedule_service_is_stopped() -> None:
    server = staged_server()
    lab = JumpLab(jump_host(), server)
    lab.run(SCHEDULE, credssp())
    server.faults["schedule_stopped"] = True
    apply_faults(server)
    assert advance(server, 600) == []
    server.faults["schedule_stopped"] = False
    apply_faults(server)
    assert advance(server, 0) == [1]


def test_admin_shares_off_hides_c_dollar_but_not_the_schedule_service() -> None:
    server = staged_server()
    server.faults["admin_shares_off"] = True
    apply_faults(server)
    lab = JumpLab(jump_host(), server)
    listing = lab.run(r"dir \\KMSNEW\C$\exchops", credssp())
    assert (listing.stderr, listing.exit_code) == ("The network name cannot be found.\r\n", 1)
    assert lab.run(SCHEDULE, credssp()).exit_code == 0
    server.faults["admin_shares_off"] = False
    apply_faults(server)
    assert lab.run(r"dir \\KMSNEW\C$\exchops", credssp()).exit_code == 0


def test_scm_access_denied_refuses_control_but_not_queries() -> None:
    server = staged_server()
    server.faults["scm_access_denied"] = True
    lab = JumpLab(jump_host(), server)
    stopped = lab.run(r"sc \\KMSNEW stop MSExchangeIS", credssp())
    assert (stopped.stdout, stopped.exit_code) == (
        "[SC] OpenSCManager FAILED 5:\r\n\r\nAccess is denied.\r\n\r\n",
        5,
    )
    assert lab.run(r"sc \\KMSNEW query MSExchangeIS", credssp()).exit_code == 0
    assert lab.run(SCHEDULE, credssp()).exit_code == 0  # an administrator otherwise
    assert server.services["MSExchangeIS"].state == "RUNNING"


def test_wmic_process_call_create_answers_and_its_installer_waits_forever() -> None:
    server = staged_server()
    lab = JumpLab(jump_host(), server)
    created = lab.run(r'wmic /node:KMSNEW process call create "C:\exchops\runsp.cmd"', credssp())
    assert created.exit_code == 0
    assert created.stdout.startswith(
        "Executing (\\\\KMSNEW\\ROOT\\CIMV2:Win32_Process)->Create()\r\n"
        "Method execution successful.\r\nOut Parameters:\r\ninstance of __PARAMETERS\r\n{\r\n"
        "\tProcessId = "
    )
    assert created.stdout.endswith(";\r\n\tReturnValue = 0;\r\n};\r\n\r\n")
    assert markers(server) == "started\r\n"
    assert [wait["launch"] for wait in server.console_waits] == ["wmic"]
    with pytest.raises(ConsoleError, match="waits where nobody can click it"):
        click_through(server)
    assert server.installer_runs == []

    missing = lab.run(r'wmic /node:KMSNEW process call create "C:\nothere.exe"', credssp())
    assert "\tReturnValue = 9;\r\n" in missing.stdout
    assert "ProcessId" not in missing.stdout


def test_operator_mode_the_console_runs_the_staged_kit() -> None:
    server = staged_server()
    ran = click_through(server)
    assert (ran["installer"], ran["waited_since"], ran["exit_code"]) == (STAGED, None, 0)
    assert server.registry.data(SETUP_KEY, "NewestBuild") == SP3_BUILD
    assert server.installer_runs[-1].media == r"C:\exchops\sp"


def test_operator_mode_run_names_the_installer_and_nothing_staged_is_an_error() -> None:
    server = legacy_host()
    add_media(server, KIT, "5.5.2650")
    with pytest.raises(ConsoleError, match="no kit is staged under"):
        click_through(server)
    with pytest.raises(ConsoleError, match="has no file"):
        click_through(server, r"C:\nothere\update.exe")
    ran = click_through(server, KIT + r"\ENG\SERVER\SETUP\I386\UPDATE.EXE")
    assert ran["exit_code"] == 0


def test_update_over_winrs_on_a_listening_host_still_runs_to_its_end() -> None:
    server = staged_server()
    from exchlab.windows.shell import run_command  # pylint: disable=import-outside-toplevel

    result = run_command(server, STAGED)
    assert result.exit_code == 0
    assert server.console_waits == []


def test_tasklist_shows_the_waiting_installer_until_the_operator_clicks() -> None:
    server = staged_server()
    lab = JumpLab(jump_host(), server)
    lab.run(SCHEDULE, credssp())
    advance(server, 180)
    pid = server.console_waits[0]["pid"]
    waiting = lab.run(r'tasklist /s KMSNEW /fi "IMAGENAME eq update.exe" /fo csv /nh', credssp())
    assert f'"update.exe","{pid}"' in waiting.stdout
    click_through(server)
    gone = lab.run(r'tasklist /s KMSNEW /fi "IMAGENAME eq update.exe" /fo csv /nh', credssp())
    assert "update.exe" not in gone.stdout
