# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a jump host answers to the readings of the WinRM doctor's second hop: ping of the
server's name, `net config redirector`, `sc qc lanmanworkstation`, `sc \\\\NAME query
RemoteRegistry` and `wmic /node:NAME os get Version`; each decided by the same state the
remote-call layer reads, so a reading and a refusal never disagree."""

from __future__ import annotations

import pytest
from jump_support import JumpLab, credssp, jump_host, legacy_host, ntlm

from exchlab.windows.shell import run_command
from exchlab.wsman.backend import LogonSession

NETBT = "NetBT_Tcpip_{4D36E972-E325-11CE-BFC1-08002BE10318} (000C2900000A)"
REDIRECTOR = (
    "Computer name                        \\\\JUMP01\r\n"
    "Full Computer name                   JUMP01\r\n"
    "User name                            labadmin\r\n"
    "\r\n"
    "Workstation active on\r\n"
    "{transports}"
    "\r\n"
    "Software version                     Windows Server {os} Standard\r\n"
    "\r\n"
    "Workstation domain                   LAB\r\n"
    "Logon domain                         LAB\r\n"
    "\r\n"
    "COM Open Timeout (sec)               0\r\n"
    "COM Send Count (byte)                16\r\n"
    "COM Send Timeout (msec)              250\r\n"
    "The command completed successfully.\r\n"
    "\r\n"
)
WORKSTATION = (
    "[SC] QueryServiceConfig SUCCESS\r\n"
    "\r\n"
    "SERVICE_NAME: lanmanworkstation\r\n"
    "        TYPE               : 20  WIN32_SHARE_PROCESS\r\n"
    "        START_TYPE         : 2   AUTO_START\r\n"
    "        ERROR_CONTROL      : 1   NORMAL\r\n"
    "        BINARY_PATH_NAME   : C:\\Windows\\System32\\svchost.exe -k NetworkService -p\r\n"
    "        LOAD_ORDER_GROUP   : NetworkProvider\r\n"
    "        TAG                : 0\r\n"
    "        DISPLAY_NAME       : Workstation\r\n"
    "        DEPENDENCIES       : Bowser\r\n"
    "{more}"
    "        SERVICE_START_NAME : NT AUTHORITY\\NetworkService\r\n"
    "\r\n"
)
SMB1_DEPENDENCIES = (
    "                           : MRxSmb10\r\n"
    "                           : MRxSmb20\r\n"
    "                           : NSI\r\n"
)
SMB2_DEPENDENCIES = "                           : MRxSmb20\r\n                           : NSI\r\n"
ENVIRONMENT = {"USERNAME": "labadmin", "USERDOMAIN": "LAB"}


def run(lab: JumpLab, line: str, session: LogonSession | None = None) -> tuple[str, str, int]:
    """LINE on the jump host, for a CredSSP logon unless told, with the logon's user and domain
    in the environment as WinRS gives them (JumpLab.run passes no environment)."""
    result = run_command(
        lab.jump, line, ENVIRONMENT, session=session or credssp(), network=lab.network
    )
    return result.stdout, result.stderr, result.exit_code


# ---------------------------------------------------------------------------------------------
# ping: the name


def test_ping_of_a_server_behind_the_jump_host_prints_the_reply_block() -> None:
    lab = JumpLab(jump_host(), legacy_host())
    assert run(lab, "ping -n 1 -w 1000 KMSNEW") == (
        "\r\n"
        "Pinging KMSNEW [127.0.0.11] with 32 bytes of data:\r\n"
        "Reply from 127.0.0.11: bytes=32 time<1ms TTL=128\r\n"
        "\r\n"
        "Ping statistics for 127.0.0.11:\r\n"
        "    Packets: Sent = 1, Received = 1, Lost = 0 (0% loss),\r\n"
        "Approximate round trip times in milli-seconds:\r\n"
        "    Minimum = 0ms, Maximum = 0ms, Average = 0ms\r\n",
        "",
        0,
    )


def test_ping_of_an_unknown_name_cannot_find_the_host() -> None:
    lab = JumpLab(jump_host(), legacy_host())
    assert run(lab, "ping -n 1 -w 1000 KMS-GONE") == (
        "Ping request could not find host KMS-GONE. Please check the name and try again.\r\n",
        "",
        1,
    )


def test_names_resolve_whatever_netbios_and_the_smb1_client_are() -> None:
    # [lab]: the servers are in the jump host's DNS; NetBIOS decides the transport, not the name.
    lab = JumpLab(jump_host("2019", netbios=False), legacy_host())
    assert run(lab, "ping -n 1 KMSNEW")[2] == 0


# ---------------------------------------------------------------------------------------------
# net config redirector: NetBIOS over TCP/IP (KB 204279)


@pytest.mark.parametrize("os", ["2012", "2016", "2019", "2022"])
def test_net_config_redirector_lists_netbt_while_netbios_over_tcpip_is_on(os: str) -> None:
    lab = JumpLab(jump_host(os), legacy_host())
    name = {"2012": "2012 R2"}.get(os, os)
    expected = REDIRECTOR.format(transports=f"        {NETBT}\r\n", os=name)
    assert run(lab, "net config redirector") == (expected, "", 0)
    assert run(lab, "net config workstation")[0] == expected


def test_net_config_redirector_lists_no_netbt_while_netbios_over_tcpip_is_off() -> None:
    lab = JumpLab(jump_host(netbios=False), legacy_host())
    assert run(lab, "net config redirector") == (
        REDIRECTOR.format(transports="", os="2016"),
        "",
        0,
    )


# ---------------------------------------------------------------------------------------------
# sc qc lanmanworkstation: the SMB 1.0 client


@pytest.mark.parametrize(("os", "more"), [("2016", SMB1_DEPENDENCIES), ("2019", SMB2_DEPENDENCIES)])
def test_the_workstation_service_depends_on_mrxsmb10_while_the_smb1_client_is_on(
    os: str, more: str
) -> None:
    lab = JumpLab(jump_host(os), legacy_host())
    assert run(lab, "sc qc lanmanworkstation") == (WORKSTATION.format(more=more), "", 0)


def test_microsofts_way_to_disable_the_smb1_client_takes_the_jump_host_off_nt4() -> None:
    lab = JumpLab(jump_host("2016"), legacy_host())
    assert run(lab, "sc config lanmanworkstation depend= bowser/mrxsmb20/nsi")[2] == 0
    assert "mrxsmb10" not in run(lab, "sc qc lanmanworkstation")[0].lower()
    assert run(lab, r"net use \\KMSNEW\IPC$")[1].startswith("System error 384 has occurred.")


def test_the_smb1_client_installed_on_a_2019_jump_host_is_a_dependency_again() -> None:
    lab = JumpLab(jump_host("2019", smb1_client=True), legacy_host())
    assert run(lab, "sc qc lanmanworkstation")[0] == WORKSTATION.format(more=SMB1_DEPENDENCIES)


# ---------------------------------------------------------------------------------------------
# sc \\NAME query RemoteRegistry: the service control manager


def test_nt4_has_no_remote_registry_service_kb_q264684() -> None:
    lab = JumpLab(jump_host(), legacy_host())
    assert run(lab, r"sc \\KMSNEW query RemoteRegistry") == (
        "[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\n"
        "The specified service does not exist as an installed service.\r\n\r\n",
        "",
        1060,
    )


def test_windows_2000_shows_its_stopped_remote_registry_while_reg_finds_no_path() -> None:
    lab = JumpLab(
        jump_host(), legacy_host("KMSW2K", "2000", service_pack="4", remote_registry=False)
    )
    stdout, _stderr, code = run(lab, r"sc \\KMSW2K query RemoteRegistry")
    assert (code, "STATE              : 1  STOPPED" in stdout) == (0, True)
    assert run(lab, r'reg query "\\KMSW2K\HKLM\SOFTWARE"')[1] == (
        "ERROR: The network path was not found.\r\n\r\n"
    )


def test_an_account_that_is_no_administrator_may_query_but_not_control_services() -> None:
    # KB Q179249: Everyone may connect to and read the service control manager of NT 4.0 and
    # 2000; KB 288129: only administrators start and stop services.
    lab = JumpLab(jump_host(), legacy_host(admins=("LAB\\someone-else",)))
    assert run(lab, r"sc \\KMSNEW query RemoteRegistry")[2] == 1060
    assert run(lab, r"sc \\KMSNEW query MSExchangeKMS")[2] == 0
    assert run(lab, r"sc \\KMSNEW start MSExchangeKMS") == (
        "[SC] OpenSCManager FAILED 5:\r\n\r\nAccess is denied.\r\n\r\n",
        "",
        5,
    )


def test_without_credentials_the_service_control_manager_refuses_even_a_query() -> None:
    lab = JumpLab(jump_host(), legacy_host())
    assert run(lab, r"sc \\KMSNEW query RemoteRegistry", ntlm())[2] == 5


# ---------------------------------------------------------------------------------------------
# wmic /node:NAME os get Version: WMI over DCOM


@pytest.mark.parametrize(("os", "version"), [("nt4", "4.0.1381"), ("2000", "5.0.2195")])
def test_wmic_gives_the_servers_windows_version(os: str, version: str) -> None:
    sp = "6a" if os == "nt4" else "4"
    lab = JumpLab(jump_host(), legacy_host("KMS", os, service_pack=sp))
    assert run(lab, "wmic /node:KMS os get Version /value < NUL") == (
        f"\r\r\n\r\r\nVersion={version}\r\r\n\r\r\n\r\r\n\r\r\n",
        "",
        0,
    )
