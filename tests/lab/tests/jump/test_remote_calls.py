# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A jump host's tools reaching NT 4.0 / 2000 servers: who gets through, and the exact answers.

Each test runs a command line in the jump host's cmd simulation with the logon session the WS-Man
layer would hand over: CredSSP (credentials to delegate), plain NTLM (none: the double hop), and
NTLM plus a `net use` connection.
"""

from __future__ import annotations

import gc

import pytest
from jump_support import (
    ACCOUNT,
    PASSWORD,
    STARTUP_PASSWORD,
    JumpLab,
    credssp,
    jump_host,
    legacy_host,
    ntlm,
)

from exchlab.windows.remote import UseEntry, UseTables
from exchlab.windows.shell import run_command

SETUP = r"HKLM\SOFTWARE\Microsoft\Exchange\Setup"
KB_SETUP_VISTA = (
    "\r\n"
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup\r\n"
    "    Services    REG_SZ    C:\\EXCHSRVR\r\n"
    "    Services Version    REG_DWORD    0x37\r\n"
    "    ServicePackNumber    REG_DWORD    0x3\r\n"
    "    ServicePackBuild    REG_DWORD    0xa5a\r\n"
    "    NewestBuild    REG_DWORD    0xa5a\r\n"
    "    Build    REG_DWORD    0x7a8\r\n"
    "\r\n"
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup\\Key Management Server\r\n"
)
KMS_STOPPED = (
    "\r\n"
    "SERVICE_NAME: MSExchangeKMS\r\n"
    "        TYPE               : 10  WIN32_OWN_PROCESS\r\n"
    "        STATE              : 1  STOPPED\r\n"
    "                                (NOT_STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)\r\n"
    "        WIN32_EXIT_CODE    : 0  (0x0)\r\n"
    "        SERVICE_EXIT_CODE  : 0  (0x0)\r\n"
    "        CHECKPOINT         : 0x0\r\n"
    "        WAIT_HINT          : 0x0\r\n"
    "\r\n"
)
KMSERVER_VERSION = (
    'wmic /node:KMSNEW datafile where name="C:\\\\EXCHSRVR\\\\BIN\\\\KMSERVER.EXE" '
    "get Version /value < NUL"
)


def outcome(result: object) -> tuple[str, str, int]:
    return result.stdout, result.stderr, result.exit_code  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Delegated credentials get through, and the jump host's formats are printed


def test_reg_through_a_credssp_logon_prints_the_targets_key_in_the_jump_hosts_format(
    kb_lab: JumpLab,
) -> None:
    result = kb_lab.run(rf'reg query "\\KMSNEW\{SETUP}"', credssp())
    assert outcome(result) == (KB_SETUP_VISTA, "", 0)


def test_the_same_key_read_on_the_nt4_server_itself_would_have_the_old_reg_layout(
    kb_lab: JumpLab,
) -> None:
    # What the jump host prints (above) is not the target's own tool's output.
    own = run_command(kb_lab.servers["KMSNEW"], f"reg query {SETUP} /v Build")
    assert own.stdout.startswith("\r\n! REG.EXE VERSION 2.0\r\n\r\n")
    assert "    Build\tREG_DWORD\t0x7a8\r\n" in own.stdout


def test_sc_through_a_credssp_logon_prints_the_targets_service(kb_lab: JumpLab) -> None:
    assert outcome(kb_lab.run(r"sc \\KMSNEW query MSExchangeKMS", credssp())) == (
        KMS_STOPPED,
        "",
        0,
    )


def test_wmic_reads_the_km_binary_version_on_nt4_with_wmi_core(kb_lab: JumpLab) -> None:
    result = kb_lab.run(KMSERVER_VERSION, credssp())
    assert outcome(result) == ("\r\r\n\r\r\nVersion=5.5.1960.8\r\r\n\r\r\n\r\r\n\r\r\n", "", 0)


def test_wmic_os_describes_the_nt4_target_not_the_jump_host(kb_lab: JumpLab) -> None:
    result = kb_lab.run(
        "wmic /node:KMSNEW os get Caption,CSDVersion,ServicePackMajorVersion,Version /value",
        credssp(),
    )
    assert result.stdout == (
        "\r\r\n\r\r\n"
        "Caption=Microsoft Windows NT\r\r\n"
        "CSDVersion=Service Pack 6\r\r\n"
        "ServicePackMajorVersion=6\r\r\n"
        "Version=4.0.1381\r\r\n"
        "\r\r\n\r\r\n\r\r\n"
    )


def test_wmic_events_of_the_target_come_through(kb_lab: JumpLab) -> None:
    result = kb_lab.run(
        "wmic /node:KMSNEW ntevent where \"LogFile='Application' and "
        "SourceName='MSExchangeKMS'\" get EventCode /value < NUL",
        credssp(),
    )
    assert "EventCode=5389\r\r\n" in result.stdout
    assert result.exit_code == 0


def test_dir_over_the_admin_share_names_the_share_as_typed(kb_lab: JumpLab) -> None:
    result = kb_lab.run(r"dir /-c \\KMSNEW\c$\EXCHSRVR\KMSDATA", credssp())
    assert outcome(result) == (
        " Volume in drive \\\\KMSNEW\\c$ is EXCHANGE\r\n"
        " Volume Serial Number is 1A2B-3C4D\r\n"
        "\r\n"
        " Directory of \\\\KMSNEW\\c$\\EXCHSRVR\\KMSDATA\r\n"
        "\r\n"
        "14/03/2001  09:12    <DIR>          .\r\n"
        "14/03/2001  09:12    <DIR>          ..\r\n"
        "14/03/2001  09:12              8192 edb.chk\r\n"
        "14/03/2001  09:12           1048576 edb.log\r\n"
        "14/03/2001  09:12           2105344 Kmsmdb.edb\r\n"
        "               3 File(s)        3162112 bytes\r\n"
        "               2 Dir(s)      1234567890 bytes free\r\n",
        "",
        0,
    )


def test_type_over_the_admin_share_reads_the_targets_setup_log(kb_lab: JumpLab) -> None:
    result = kb_lab.run(r'type "\\KMSNEW\C$\Exchange Server Setup.log"', credssp())
    assert result.stdout.startswith("++++ Microsoft Exchange Setup initialized ++++\r\n")
    assert result.exit_code == 0


def test_tasklist_lists_the_targets_processes_without_the_jump_hosts_shell(
    kb_lab: JumpLab,
) -> None:
    result = kb_lab.run("tasklist /s KMSNEW /fo csv /nh", credssp())
    images = [line.split(",")[0] for line in result.stdout.splitlines()]
    assert '"lsass.exe"' in images and '"mad.exe"' in images
    assert '"cmd.exe"' not in images and '"winrshost.exe"' not in images


def test_sc_start_changes_the_targets_state() -> None:
    matched = legacy_host(km_binary_build=None, events=[])
    lab = JumpLab(jump_host(), matched)
    started = lab.run(rf"sc \\KMSNEW start MSExchangeKMS {STARTUP_PASSWORD}", credssp())
    assert "STATE              : 2  START_PENDING" in started.stdout
    assert matched.services["MSExchangeKMS"].state == "START_PENDING"
    queried = lab.run(r"sc \\KMSNEW query MSExchangeKMS", credssp())
    assert "STATE              : 4  RUNNING" in queried.stdout
    assert matched.services["MSExchangeKMS"].state == "RUNNING"


def test_the_kb_target_started_remotely_stops_with_event_5389(kb_lab: JumpLab) -> None:
    kb_lab.run(rf"sc \\KMSNEW start MSExchangeKMS {STARTUP_PASSWORD}", credssp())
    kb_lab.run(r"sc \\KMSNEW query MSExchangeKMS", credssp())
    target = kb_lab.servers["KMSNEW"]
    assert target.services["MSExchangeKMS"].state == "STOPPED"
    assert [event.event_id for event in target.events][-2:] == [101, 5389]


# ---------------------------------------------------------------------------------------------
# The double hop: a plain NTLM logon goes out as ANONYMOUS LOGON


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (rf'reg query "\\KMSNEW\{SETUP}"', ("", "ERROR: Access is denied.\r\n\r\n", 1)),
        (
            r"sc \\KMSNEW query MSExchangeKMS",
            ("[SC] OpenSCManager FAILED 5:\r\n\r\nAccess is denied.\r\n\r\n", "", 5),
        ),
        (
            KMSERVER_VERSION,
            ("", "Node - KMSNEW\r\nERROR:\r\nDescription = Access is denied.\r\n\r\n", 1),
        ),
        (r"dir \\KMSNEW\C$\EXCHSRVR", ("", "Access is denied.\r\n", 1)),
        (r"type \\KMSNEW\C$\boot.ini", ("", "Access is denied.\r\n", 1)),
        ("tasklist /s KMSNEW", ("", "ERROR: Access denied\r\n", 1)),
        (
            r"net use \\KMSNEW\IPC$",
            ("", "System error 5 has occurred.\r\n\r\nAccess is denied.\r\n\r\n", 2),
        ),
    ],
)
def test_a_plain_ntlm_logon_is_refused_by_every_tool_in_its_own_words(
    kb_lab: JumpLab, line: str, expected: tuple[str, str, int]
) -> None:
    assert outcome(kb_lab.run(line, ntlm())) == expected


def test_no_session_at_all_is_the_same_anonymous_refusal(kb_lab: JumpLab) -> None:
    assert kb_lab.run(r"sc \\KMSNEW query MSExchangeKMS").exit_code == 5


def test_a_net_use_connection_serves_smb_tools_of_the_same_logon_but_not_wmic(
    kb_lab: JumpLab,
) -> None:
    session = ntlm()
    connected = kb_lab.run(rf"net use \\KMSNEW\IPC$ {PASSWORD} /user:{ACCOUNT}", session)
    assert outcome(connected) == ("The command completed successfully.\r\n\r\n", "", 0)
    assert outcome(kb_lab.run(rf'reg query "\\KMSNEW\{SETUP}"', session))[2] == 0
    assert outcome(kb_lab.run(r"sc \\KMSNEW query MSExchangeKMS", session))[0] == KMS_STOPPED
    assert kb_lab.run(r"dir \\KMSNEW\C$\EXCHSRVR", session).exit_code == 0
    # DCOM authenticates on its own: `net use` does not serve wmic.
    assert "Access is denied." in kb_lab.run(KMSERVER_VERSION, session).stderr
    # Another WinRS shell is another logon session: it has no connection.
    assert kb_lab.run(r"sc \\KMSNEW query MSExchangeKMS", ntlm()).exit_code == 5


def test_net_use_delete_ends_the_connection(kb_lab: JumpLab) -> None:
    session = ntlm()
    kb_lab.run(rf"net use \\KMSNEW\IPC$ {PASSWORD} /user:{ACCOUNT}", session)
    deleted = kb_lab.run(r"net use \\KMSNEW\IPC$ /delete /y", session)
    assert outcome(deleted) == ("\\\\KMSNEW\\IPC$ was deleted successfully.\r\n\r\n", "", 0)
    assert kb_lab.run(r"sc \\KMSNEW query MSExchangeKMS", session).exit_code == 5
    again = kb_lab.run(r"net use \\KMSNEW\IPC$ /delete", session)
    assert outcome(again) == (
        "",
        "The network connection could not be found.\r\n\r\n"
        "More help is available by typing NET HELPMSG 2250.\r\n\r\n",
        2,
    )


def test_net_use_lists_the_sessions_connections(kb_lab: JumpLab) -> None:
    session = ntlm()
    assert kb_lab.run("net use", session).stdout == "There are no entries in the list.\r\n\r\n"
    kb_lab.run(rf"net use \\KMSNEW\IPC$ {PASSWORD} /user:{ACCOUNT}", session)
    listed = kb_lab.run("net use", session).stdout
    assert "\\\\KMSNEW\\IPC$" in listed and listed.endswith(
        "The command completed successfully.\r\n\r\n"
    )


def test_a_second_user_for_a_connected_server_is_error_1219(kb_lab: JumpLab) -> None:
    session = ntlm()
    kb_lab.run(rf"net use \\KMSNEW\IPC$ {PASSWORD} /user:{ACCOUNT}", session)
    result = kb_lab.run(r"net use \\KMSNEW\IPC$ other /user:KMSNEW\Administrator", session)
    assert outcome(result) == (
        "",
        "System error 1219 has occurred.\r\n\r\n"
        "Multiple connections to a server or shared resource by the same user, using more than "
        "one user name, are not allowed. Disconnect all previous connections to the server or "
        "shared resource and try again.\r\n\r\n",
        2,
    )


def test_a_wrong_password_is_a_logon_failure(kb_lab: JumpLab) -> None:
    result = kb_lab.run(rf"net use \\KMSNEW\IPC$ wrong /user:{ACCOUNT}", ntlm())
    assert outcome(result) == (
        "",
        "System error 1326 has occurred.\r\n\r\nThe user name or password is incorrect.\r\n\r\n",
        2,
    )


def test_explicit_wmic_credentials_get_through_a_plain_ntlm_logon(kb_lab: JumpLab) -> None:
    line = KMSERVER_VERSION.replace(
        "/node:KMSNEW", f"/node:KMSNEW /user:{ACCOUNT} /password:{PASSWORD}"
    )
    assert "Version=5.5.1960.8" in kb_lab.run(line, ntlm()).stdout
    wrong = KMSERVER_VERSION.replace("/node:KMSNEW", f"/node:KMSNEW /user:{ACCOUNT} /password:x")
    assert "Description = Access is denied." in kb_lab.run(wrong, ntlm()).stderr


def test_explicit_tasklist_credentials_get_through_a_plain_ntlm_logon(kb_lab: JumpLab) -> None:
    result = kb_lab.run(f"tasklist /s KMSNEW /u {ACCOUNT} /p {PASSWORD} /nh", ntlm())
    assert result.exit_code == 0 and "lsass.exe" in result.stdout


# ---------------------------------------------------------------------------------------------
# Each step that can refuse: name, transport, logon, rights


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            rf'reg query "\\NOSUCH\{SETUP}"',
            ("", "ERROR: The network path was not found.\r\n\r\n", 1),
        ),
        (
            r"sc \\NOSUCH query MSExchangeKMS",
            (
                "[SC] OpenSCManager FAILED 53:\r\n\r\nThe network path was not found.\r\n\r\n",
                "",
                53,
            ),
        ),
        (
            "wmic /node:NOSUCH os get Caption /value",
            (
                "",
                "Node - NOSUCH\r\nERROR:\r\nDescription = The RPC server is unavailable.\r\n\r\n",
                1,
            ),
        ),
        (r"dir \\NOSUCH\C$", ("", "The network path was not found.\r\n", 1)),
        (
            r"net use \\NOSUCH\IPC$",
            ("", "System error 53 has occurred.\r\n\r\nThe network path was not found.\r\n\r\n", 2),
        ),
        ("tasklist /s NOSUCH", ("", "ERROR: The RPC server is unavailable.\r\n", 1)),
    ],
)
def test_an_unknown_name_is_answered_as_windows_does(
    kb_lab: JumpLab, line: str, expected: tuple[str, str, int]
) -> None:
    assert outcome(kb_lab.run(line, credssp())) == expected


SMB1_MISSING = (
    "System error 384 has occurred.\r\n\r\n"
    "You can't connect to the file share because it's not secure. This share requires the "
    "obsolete SMB1 protocol, which is unsafe and could expose your system to attack.\r\n"
    "Your system requires SMB2 or higher. For more info on resolving this issue, see: "
    "https://go.microsoft.com/fwlink/?linkid=852747\r\n\r\n"
)


@pytest.mark.parametrize("os", ["2019", "2022"])
def test_a_2019_or_later_jump_host_has_no_smb1_client_by_default(os: str) -> None:
    lab = JumpLab(jump_host(os), legacy_host())
    assert outcome(lab.run(r"net use \\KMSNEW\IPC$", credssp())) == ("", SMB1_MISSING, 2)
    assert lab.run(rf'reg query "\\KMSNEW\{SETUP}"', credssp()).stderr == (
        "ERROR: The network path was not found.\r\n\r\n"
    )
    assert lab.run(r"sc \\KMSNEW query MSExchangeKMS", credssp()).exit_code == 53
    # WMI goes over DCOM, not SMB.
    assert lab.run(KMSERVER_VERSION, credssp()).exit_code == 0
    # What the jump host shows of it: no SMB1 client driver.
    assert lab.run("sc query mrxsmb10").exit_code == 1060


def test_a_2019_jump_host_with_the_smb1_client_installed_gets_through() -> None:
    lab = JumpLab(jump_host("2019", smb1_client=True), legacy_host())
    assert lab.run(r"sc \\KMSNEW query MSExchangeKMS", credssp()).exit_code == 0
    assert "FILE_SYSTEM_DRIVER" in lab.run("sc query mrxsmb10").stdout


def test_without_netbios_the_jump_host_reaches_windows_2000_but_not_nt4() -> None:
    lab = JumpLab(
        jump_host(netbios=False),
        legacy_host("KMSNT4"),
        legacy_host("KMSW2K", "2000", service_pack="4"),
    )
    assert lab.run(r"sc \\KMSNT4 query MSExchangeKMS", credssp()).exit_code == 53
    assert lab.run(r"sc \\KMSW2K query MSExchangeKMS", credssp()).exit_code == 0


def test_windows_2000_with_remote_registry_stopped_refuses_reg_until_it_is_started() -> None:
    lab = JumpLab(
        jump_host(), legacy_host("KMSW2K", "2000", service_pack="4", remote_registry=False)
    )
    refused = lab.run(rf'reg query "\\KMSW2K\{SETUP}"', credssp())
    assert refused.stderr == "ERROR: The network path was not found.\r\n\r\n"
    assert lab.run(r"sc \\KMSW2K start RemoteRegistry", credssp()).exit_code == 0
    assert lab.run(rf'reg query "\\KMSW2K\{SETUP}"', credssp()).exit_code == 0


def test_nt4_without_wmi_core_answers_no_wmi_but_smb_tools_work() -> None:
    lab = JumpLab(jump_host(), legacy_host(wmi=False))
    assert outcome(lab.run(KMSERVER_VERSION, credssp())) == (
        "",
        "Node - KMSNEW\r\nERROR:\r\nDescription = The RPC server is unavailable.\r\n\r\n",
        1,
    )
    assert lab.run("tasklist /s KMSNEW", credssp()).stderr == (
        "ERROR: The RPC server is unavailable.\r\n"
    )
    assert lab.run(r"sc \\KMSNEW query MSExchangeKMS", credssp()).exit_code == 0


def test_without_admin_shares_c_dollar_is_not_found_but_ipc_connects() -> None:
    lab = JumpLab(jump_host(), legacy_host(admin_shares=False))
    assert outcome(lab.run(r"dir \\KMSNEW\C$", credssp())) == (
        "",
        "The network name cannot be found.\r\n",
        1,
    )
    assert lab.run(r"net use \\KMSNEW\C$", credssp()).stderr == (
        "System error 67 has occurred.\r\n\r\nThe network name cannot be found.\r\n\r\n"
    )
    assert lab.run(r"net use \\KMSNEW\IPC$", credssp()).exit_code == 0


def test_an_account_that_is_not_a_local_administrator_is_refused() -> None:
    lab = JumpLab(jump_host(), legacy_host(admins=("LAB\\someone-else",)))
    assert lab.run(rf'reg query "\\KMSNEW\{SETUP}"', credssp()).stderr == (
        "ERROR: Access is denied.\r\n\r\n"
    )
    assert lab.run(r"dir \\KMSNEW\C$", credssp()).stderr == "Access is denied.\r\n"
    # The WMI namespace refuses in other words than DCOM does.
    assert lab.run(KMSERVER_VERSION, credssp()).stderr == (
        "Node - KMSNEW\r\nERROR:\r\nDescription = Access denied\r\n\r\n"
    )
    # IPC$ itself needs no administrator.
    assert lab.run(r"net use \\KMSNEW\IPC$", credssp()).exit_code == 0


def test_an_administrator_named_without_its_domain_is_the_same_account() -> None:
    lab = JumpLab(jump_host(), legacy_host(admins=("LABADMIN",)))
    assert lab.run(r"sc \\KMSNEW query MSExchangeKMS", credssp()).exit_code == 0


def test_nt4_before_sp4_refuses_a_jump_host_that_sends_ntlmv2_only() -> None:
    lab = JumpLab(jump_host(), legacy_host(service_pack="3"))
    assert lab.run(r"sc \\KMSNEW query MSExchangeKMS", credssp()).stdout == (
        "[SC] OpenSCManager FAILED 1326:\r\n\r\nThe user name or password is incorrect.\r\n\r\n"
    )
    assert lab.run(r"net use \\KMSNEW\IPC$", credssp()).stderr.startswith(
        "System error 1326 has occurred."
    )


def test_a_jump_host_that_still_sends_ntlm_reaches_nt4_before_sp4() -> None:
    lab = JumpLab(jump_host(lm_compatibility=2), legacy_host(service_pack="3"))
    assert lab.run(r"sc \\KMSNEW query MSExchangeKMS", credssp()).exit_code == 0


def test_a_jump_host_without_wmic_does_not_recognise_it() -> None:
    lab = JumpLab(jump_host(wmic=False), legacy_host())
    result = lab.run(KMSERVER_VERSION, credssp())
    assert result.exit_code == 9009
    assert result.stderr.startswith("'wmic' is not recognized")


# ---------------------------------------------------------------------------------------------
# Hosts that reach nobody keep their answers


def test_a_host_without_a_network_answers_sc_to_another_host_as_before() -> None:
    alone = jump_host()
    result = run_command(alone, r"sc \\KMSNEW query MSExchangeKMS")
    assert result.stdout == (
        "[SC] OpenSCManager FAILED 1722:\r\n\r\nThe RPC server is unavailable.\r\n\r\n"
    )


def test_the_jump_host_naming_itself_runs_locally(kb_lab: JumpLab) -> None:
    assert kb_lab.run(r"sc \\JUMP01 query mrxsmb10", ntlm()).exit_code == 0


def test_a_logon_sessions_connections_go_with_the_session() -> None:
    tables = UseTables()
    session = ntlm()
    tables.table(session)["KMSNEW"] = UseEntry(None)
    assert tables.table(session) == {"KMSNEW": UseEntry(None)}
    assert tables.table(ntlm()) == {} and tables.table(None) == {}
    assert len(tables) == 1
    del session
    gc.collect()
    assert len(tables) == 0
