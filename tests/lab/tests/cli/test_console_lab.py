# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`exchlab clock` and `exchlab console` on a running jump-host lab, with the real pywinrm client:
an `at /interactive` job scheduled from the jump host waits on the KM server's console until the
operator clicks through it, and a WinRM connection the jump host loses meanwhile changes nothing;
`exchlab console --when-file` comes only once the play's run record is on the server.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
import requests
import winrm
from conftest import EXCHLAB, Lab, exchlab
from test_jump_lab import jump_session

KIT_UPDATE = r"D:\EXCH55SP3\ENG\SERVER\SETUP\I386\update.exe"
# The file a play writes on the server right before it shows the console steps (its run record).
RUN_RECORD = r"C:\exchops-sp-run.txt"


def run_in(protocol: winrm.Protocol, shell: str, line: str, stdin: bytes | None = None) -> str:
    command = protocol.run_command(shell, line)
    if stdin is not None:
        protocol.send_command_input(shell, command, stdin, end=True)
    stdout, stderr, code = protocol.get_command_output(shell, command)
    protocol.cleanup_command(shell, command)
    assert code == 0, (line, stdout, stderr)
    return stdout.decode()


def test_an_at_job_waits_on_the_console_through_a_lost_connection(lab: Lab) -> None:
    lab.up("jump_q259906.yml", "--base-address", "auto")
    session, password = jump_session(lab)
    protocol = session.protocol
    shell = protocol.open_shell()
    # The password goes in on standard input, never on a command line.
    run_in(protocol, shell, r"net use \\KMS-NEW\IPC$ * /user:LAB\labadmin", password.encode())
    clock = run_in(protocol, shell, r"net time \\KMS-NEW")
    shown_time = re.match(
        r"Current time at \\\\KMS-NEW is \d+/\d+/\d{4} (\d+):(\d\d):\d\d (AM|PM)", clock
    )
    assert shown_time is not None, clock
    assert clock.endswith("\r\n\r\nThe command completed successfully.\r\n\r\n")
    hour = int(shown_time.group(1)) % 12 + (12 if shown_time.group(3) == "PM" else 0)
    minute = int(shown_time.group(2)) + 2
    due = f"{(hour + minute // 60) % 24:02d}:{minute % 60:02d}"
    added = run_in(protocol, shell, rf'at \\KMS-NEW {due} /interactive "cmd /c {KIT_UPDATE}"')
    assert added.endswith("Added a new job with job ID = 1\r\n")
    before = lab.show("kms-new")["hosts"]["kms-new"]
    assert before["exchange"]["kms_binary_build"] == "5.5.1960.8"

    moved = json.loads(
        exchlab("clock", "--state", str(lab.state), "kms-new", "--advance", "300").stdout
    )
    assert moved["hosts"]["kms-new"]["jobs_ran"] == [1]
    waiting = lab.show("kms-new")["hosts"]["kms-new"]["console_waits"]
    # cmd finds the program under its name on disk.
    assert [(wait["installer"], wait["launch"]) for wait in waiting] == [
        (KIT_UPDATE.upper(), "at /interactive")
    ]

    # The jump host's connection drops while the installer waits on the server's console.
    exchlab("fault", "--state", str(lab.state), "jump01", "drop_connection_on=Command")
    with pytest.raises(requests.exceptions.ConnectionError):
        protocol.run_command(shell, r"at \\KMS-NEW")
    assert lab.show("kms-new")["hosts"]["kms-new"]["console_waits"] == waiting

    clicked = exchlab("console", "--state", str(lab.state), "kms-new")
    answer = json.loads(clicked.stdout)
    assert (answer["installer"], answer["exit_code"], answer["batch_ended"]) == (
        KIT_UPDATE.upper(),
        0,
        True,
    )
    after = lab.show("kms-new")["hosts"]["kms-new"]
    assert "console_waits" not in after
    assert after["exchange"]["kms_binary_build"].startswith("5.5.2650")


def test_console_and_clock_say_what_is_wrong(lab: Lab) -> None:
    lab.up("jump_q259906.yml", "--base-address", "auto")
    nothing = exchlab("console", "--state", str(lab.state), "kms-new", check=False)
    assert nothing.returncode == 1
    assert "no installer waits on kms-new's console and no kit is staged under" in nothing.stderr
    assert "--run PATH" in nothing.stderr
    unknown = exchlab("console", "--state", str(lab.state), "kms-nowhere", check=False)
    assert (unknown.returncode, "no host 'kms-nowhere'" in unknown.stderr) == (1, True)
    backwards = exchlab("clock", "--state", str(lab.state), "--advance", "-5", check=False)
    assert (backwards.returncode, "only moves forward" in backwards.stderr) == (1, True)

    operator = exchlab("console", "--state", str(lab.state), "kms-new", "--run", KIT_UPDATE)
    assert json.loads(operator.stdout)["exit_code"] == 0
    read = json.loads(exchlab("clock", "--state", str(lab.state)).stdout)
    assert set(read["hosts"]) == {"jump01", "kms-old", "kms-new"}

    exchlab("fault", "--state", str(lab.state), "kms-new", "schedule_stopped=true")
    services = lab.show("kms-new")["hosts"]["kms-new"]["services"]
    assert services["Schedule"]["state"] == "stopped"
    exchlab("fault", "--state", str(lab.state), "kms-new", "schedule_stopped=false")
    assert lab.show("kms-new")["hosts"]["kms-new"]["services"]["Schedule"]["state"] == "running"

    lab.down()
    stopped = exchlab("console", "--state", str(lab.state), "kms-new", check=False)
    assert (stopped.returncode, "no lab is running" in stopped.stderr) == (1, True)


def operator_when(lab: Lab, wait: str) -> subprocess.Popen[str]:
    """`exchlab console kms-new --run KIT_UPDATE --when-file RUN_RECORD --wait WAIT`, started."""
    arguments = ["console", "--state", str(lab.state), "kms-new", "--run", KIT_UPDATE]
    return subprocess.Popen(  # pylint: disable=consider-using-with # waited for by each test
        [*EXCHLAB, *arguments, "--when-file", RUN_RECORD, "--wait", wait],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_operator_comes_once_the_run_record_is_on_the_server(lab: Lab) -> None:
    lab.up("jump_q259906.yml", "--base-address", "auto")
    operator = operator_when(lab, "60")
    time.sleep(2)
    assert operator.poll() is None, operator.communicate()
    waiting = lab.show("kms-new")["hosts"]["kms-new"]
    assert waiting["exchange"]["updates"] == []
    assert waiting["exchange"]["kms_binary_build"] == "5.5.1960.8"

    session, password = jump_session(lab)
    protocol = session.protocol
    shell = protocol.open_shell()
    run_in(protocol, shell, r"net use \\KMS-NEW\IPC$ * /user:LAB\labadmin", password.encode())
    run_in(protocol, shell, r'echo exchops> "\\KMS-NEW\C$\exchops-sp-run.txt"')
    stdout, stderr = operator.communicate(timeout=60)
    assert operator.returncode == 0, stderr
    answer = json.loads(stdout)
    assert (answer["exit_code"], answer["waited_since"]) == (0, None)
    after = lab.show("kms-new")["hosts"]["kms-new"]
    assert len(after["exchange"]["updates"]) == 1
    assert after["exchange"]["kms_binary_build"].startswith("5.5.2650")


def test_an_operator_whose_file_never_appears_runs_nothing_and_says_so(lab: Lab) -> None:
    lab.up("jump_q259906.yml", "--base-address", "auto")
    began = time.monotonic()
    operator = operator_when(lab, "1.5")
    stdout, stderr = operator.communicate(timeout=60)
    assert time.monotonic() - began >= 1.5
    assert (operator.returncode, stdout) == (1, "")
    assert stderr == (
        f"exchlab console: error: no file {RUN_RECORD} appeared on kms-new within 1.5 s, so "
        "nobody came to its console and nothing was run.\n"
    )
    assert lab.show("kms-new")["hosts"]["kms-new"]["exchange"]["updates"] == []

    alone = exchlab("console", "--state", str(lab.state), "kms-new", "--wait", "5", check=False)
    assert (alone.returncode, "give --when-file PATH too" in alone.stderr) == (1, True)
    unc = exchlab(
        "console", "--state", str(lab.state), "kms-new", "--when-file", r"\\X\C$\f", check=False
    )
    assert (unc.returncode, "is not a path on kms-new's disks" in unc.stderr) == (1, True)

    # A lab stopped meanwhile (a scenario's destroy) ends the wait at once.
    operator = operator_when(lab, "60")
    time.sleep(1)
    lab.down()
    _stdout, stderr = operator.communicate(timeout=30)
    assert operator.returncode == 1
    assert "stopped while the operator waited for" in stderr
    assert lab.show("kms-new")["hosts"]["kms-new"]["exchange"]["updates"] == []
