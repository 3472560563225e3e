# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a jump host records of the processes it starts (a model of event 4688 with command lines),
and the tools that read standard input so that a secret never has to be on a command line."""

from __future__ import annotations

from jump_support import (
    ACCOUNT,
    PASSWORD,
    STARTUP_PASSWORD,
    JumpLab,
    ScriptedStdin,
    credssp,
    jump_host,
    legacy_host,
    ntlm,
)

from exchlab.exchange import build_windows_host
from exchlab.state import HostState
from exchlab.windows.shell import run_command

KMS_START = (
    "powershell -NoProfile -NonInteractive -Command "
    '"$p = [Console]::In.ReadLine(); '
    "$s = New-Object System.ServiceProcess.ServiceController('MSExchangeKMS','KMSNEW'); "
    "$s.Start(@($p)); $s.WaitForStatus('Running', [TimeSpan]::FromSeconds(60)); $s.Status\""
)


def matched_lab() -> JumpLab:
    """A KM server whose binaries match its database: KMS starts with the right password."""
    return JumpLab(jump_host(), legacy_host(km_binary_build=None, events=[]))


def secret_free(lines: list[str]) -> bool:
    return not any(PASSWORD in line or STARTUP_PASSWORD in line for line in lines)


# ---------------------------------------------------------------------------------------------
# The audit


def test_the_jump_host_records_the_winrs_line_and_each_program_it_starts(kb_lab: JumpLab) -> None:
    line = r"echo x & reg query \\KMSNEW\HKLM\SOFTWARE & sc \\KMSNEW query MSExchangeKMS 2>&1"
    kb_lab.run(line, credssp())
    assert kb_lab.jump.command_lines == [
        line,
        r"reg query \\KMSNEW\HKLM\SOFTWARE",
        r"sc \\KMSNEW query MSExchangeKMS",
    ]


def test_internal_commands_are_not_processes_but_tasklist_is(kb_lab: JumpLab) -> None:
    kb_lab.run("dir C:\\ > NUL & type C:\\nothing 2>NUL & tasklist /nh", credssp())
    assert kb_lab.jump.command_lines[1:] == ["tasklist /nh"]


def test_a_command_that_is_not_found_starts_no_process(kb_lab: JumpLab) -> None:
    kb_lab.run("wevtutilx qe Application", credssp())
    assert kb_lab.jump.command_lines == ["wevtutilx qe Application"]


def test_the_legacy_servers_record_nothing(kb_lab: JumpLab) -> None:
    kb_lab.run(r"sc \\KMSNEW query MSExchangeKMS", credssp())
    assert kb_lab.servers["KMSNEW"].command_lines is None


def test_a_password_on_a_command_line_is_in_the_audit_log() -> None:
    lab = matched_lab()
    lab.run(rf"net use \\KMSNEW\IPC$ {PASSWORD} /user:{ACCOUNT}", ntlm())
    lab.run(rf"sc \\KMSNEW start MSExchangeKMS {STARTUP_PASSWORD}", credssp())
    assert not secret_free(lab.jump.command_lines)
    assert rf"sc \\KMSNEW start MSExchangeKMS {STARTUP_PASSWORD}" in lab.jump.command_lines


def test_the_audit_log_survives_the_host_state_file() -> None:
    jump = jump_host()
    jump.record_command_line("hostname")
    assert HostState.loads(jump.dumps()).command_lines == ["hostname"]
    assert HostState.loads(legacy_host().dumps()).command_lines is None


def test_show_prints_the_command_lines_unmasked(kb_lab: JumpLab) -> None:
    kb_lab.run(rf"sc \\KMSNEW start MSExchangeKMS {STARTUP_PASSWORD}", credssp())
    shown = kb_lab.jump.to_show()
    assert shown["command_lines"][-1].endswith(STARTUP_PASSWORD)
    assert "command_lines" not in kb_lab.servers["KMSNEW"].to_show()


# ---------------------------------------------------------------------------------------------
# net use reading its password from standard input


def test_net_use_star_reads_the_password_from_stdin_and_keeps_it_off_the_command_line() -> None:
    lab = JumpLab(jump_host(), legacy_host())
    session = ntlm()
    stdin = ScriptedStdin(f"{PASSWORD}\r\n".encode("cp437"))
    connected = lab.run(rf"net use \\KMSNEW\IPC$ * /user:{ACCOUNT}", session, stdin)
    assert (connected.stdout, connected.stderr, connected.exit_code) == (
        "Type the password for \\\\KMSNEW\\IPC$:\r\nThe command completed successfully.\r\n\r\n",
        "",
        0,
    )
    assert lab.run(r"sc \\KMSNEW query MSExchangeKMS", session).exit_code == 0
    assert secret_free(lab.jump.command_lines)


def test_net_use_star_with_nothing_on_stdin_is_a_logon_failure(kb_lab: JumpLab) -> None:
    result = kb_lab.run(rf"net use \\KMSNEW\IPC$ * /user:{ACCOUNT}", ntlm(), ScriptedStdin())
    assert result.stderr.startswith("System error 1326 has occurred.")


def test_a_command_line_that_reads_no_input_never_waits_for_it(kb_lab: JumpLab) -> None:
    stdin = ScriptedStdin(b"unused\r\n")
    kb_lab.run(r"sc \\KMSNEW query MSExchangeKMS & reg query \\KMSNEW\HKLM", credssp(), stdin)
    assert not stdin.reads


def test_a_redirected_input_is_what_net_use_reads(kb_lab: JumpLab) -> None:
    kb_lab.jump.write_file("C:\\pw.txt", data=f"{PASSWORD}\r\n".encode())
    stdin = ScriptedStdin(b"not this\r\n")
    result = kb_lab.run(rf"net use \\KMSNEW\IPC$ * /user:{ACCOUNT} < C:\pw.txt", ntlm(), stdin)
    assert result.exit_code == 0
    assert not stdin.reads


# ---------------------------------------------------------------------------------------------
# powershell: the KMS start with its password on stdin; file versions over the admin share


def test_powershell_starts_kms_with_the_password_read_from_stdin() -> None:
    lab = matched_lab()
    stdin = ScriptedStdin(f"{STARTUP_PASSWORD}\r\n".encode())
    result = lab.run(KMS_START, credssp(), stdin)
    assert (result.stdout, result.stderr, result.exit_code) == ("Running\r\n", "", 0)
    assert lab.servers["KMSNEW"].services["MSExchangeKMS"].state == "RUNNING"
    assert secret_free(lab.jump.command_lines)
    assert lab.jump.command_lines == [KMS_START, KMS_START]


def test_powershell_reports_a_kms_that_stops_on_the_wrong_password() -> None:
    lab = matched_lab()
    result = lab.run(KMS_START, credssp(), ScriptedStdin(b"wrong\r\n"))
    assert result.stdout == "Stopped\r\n"
    assert result.stderr.startswith(
        'Exception calling "WaitForStatus" with "2" argument(s): "Time out has expired and the '
        'operation has not been completed."\r\n'
    )
    assert [event.event_id for event in lab.servers["KMSNEW"].events][-1] == 5057


def test_powershell_reads_its_whole_script_from_stdin() -> None:
    lab = matched_lab()
    script = (
        "$p = [Console]::In.ReadLine()\r\n"
        f"{STARTUP_PASSWORD}\r\n"
        "$s = New-Object System.ServiceProcess.ServiceController('MSExchangeKMS','KMSNEW')\r\n"
        "$s.Start(@($p))\r\n"
        "$s.WaitForStatus('Running', [TimeSpan]::FromSeconds(60))\r\n"
        "$s.Status\r\n"
    )
    line = "powershell -NoProfile -NonInteractive -Command -"
    result = lab.run(line, credssp(), ScriptedStdin(script.encode()))
    assert (result.stdout, result.exit_code) == ("Running\r\n", 0)
    assert lab.jump.command_lines == [line, line]


def test_powershell_over_a_plain_ntlm_logon_cannot_open_the_remote_scm(kb_lab: JumpLab) -> None:
    result = kb_lab.run(KMS_START, ntlm(), ScriptedStdin(f"{STARTUP_PASSWORD}\r\n".encode()))
    assert result.stderr.startswith(
        'Exception calling "Start" with "1" argument(s): "Cannot open Service Control Manager '
        "on computer 'KMSNEW'. This operation might require other privileges.\"\r\n"
        "    + CategoryInfo          : NotSpecified: (:) [], MethodInvocationException\r\n"
        "    + FullyQualifiedErrorId : InvalidOperationException\r\n"
    )
    assert result.exit_code == 1


def test_powershell_reads_a_file_version_over_the_admin_share_without_wmi() -> None:
    lab = JumpLab(jump_host(), legacy_host(wmi=False))
    line = (
        'powershell -NoProfile -Command "(Get-Item -LiteralPath '
        "'\\\\KMSNEW\\C$\\EXCHSRVR\\BIN\\KMSERVER.EXE').VersionInfo.FileVersion\""
    )
    result = lab.run(line, credssp())
    assert (result.stdout, result.stderr, result.exit_code) == ("5.5.1960.8\r\n", "", 0)


def test_powershell_names_a_missing_file_as_get_item_does(kb_lab: JumpLab) -> None:
    line = (
        'powershell -Command "(Get-Item -LiteralPath '
        "'\\\\KMSNEW\\C$\\NOPE.EXE').VersionInfo.FileVersion\""
    )
    result = kb_lab.run(line, credssp())
    assert result.stderr.startswith(
        "Get-Item : Cannot find path '\\\\KMSNEW\\C$\\NOPE.EXE' because it does not exist.\r\n"
    )
    assert result.exit_code == 1


def test_powershell_refuses_what_it_does_not_emulate(kb_lab: JumpLab) -> None:
    result = kb_lab.run('powershell -Command "Get-Process"', credssp())
    assert result.stderr == "exchlab: powershell statement not emulated: Get-Process\r\n"
    assert result.exit_code == 1


def test_powershell_is_on_the_path_of_2012_r2_and_later_only() -> None:
    assert JumpLab(jump_host("2012")).run("powershell -Command 'x'").stdout == "x\r\n"
    old = build_windows_host("W2K3", "127.0.0.12", os="2003")
    assert run_command(old, "powershell -Command 'x'").exit_code == 9009
