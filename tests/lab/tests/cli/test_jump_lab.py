# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`exchlab up / show / down` with jump-host fleets, reached with the real pywinrm client.

Only the jump host listens. pywinrm here logs on with plain NTLM (the lab's CredSSP acceptor is
the WS-Man layer's), so its shells have nothing to delegate: the double hop, until a `net use`
in the same command line gives the SMB tools credentials of their own.
"""

from __future__ import annotations

import json
import socket

import pytest
import winrm
from conftest import Lab
from winrm.exceptions import WSManFaultError

SETUP = r"HKLM\SOFTWARE\Microsoft\Exchange\Setup"


def jump_session(lab: Lab, name: str = "jump01") -> tuple[winrm.Session, str]:
    """An NTLM session to the jump host, and the lab's password."""
    inventory = lab.inventory()["all"]
    jump = inventory["children"]["jump_hosts"]["hosts"][name]
    password = inventory["vars"]["ansible_password"]
    session = winrm.Session(
        f"http://{jump['ansible_host']}:{jump['ansible_port']}/wsman",
        auth=(jump["ansible_user"], password),
        transport="ntlm",
    )
    return session, password


def planned_address(lab: Lab, host: str) -> str:
    planned = json.loads((lab.state / "lab.json").read_text(encoding="utf-8"))
    return next(entry["address"] for entry in planned["hosts"] if entry["name"] == host)


def test_the_kb_pair_behind_a_jump_host_is_read_through_it(lab: Lab) -> None:
    started = lab.up("jump_q259906.yml", "--base-address", "auto")
    assert "1 host(s) listening" in started.stdout
    assert "2 reached through jump hosts" in started.stdout
    inventory = lab.inventory()["all"]["children"]
    assert inventory["kms_targets"]["hosts"]["kms-new"]["ansible_host"] == "KMS-NEW"
    assert inventory["kms_targets"]["hosts"]["kms-new"]["exchange_jump_host"] == "jump01"
    assert inventory["jump_hosts"]["hosts"]["jump01"]["ansible_winrm_transport"] == "credssp"

    session, password = jump_session(lab)
    denied = session.run_cmd(rf'reg query "\\KMS-NEW\{SETUP}" /v ServicePackNumber')
    assert (denied.status_code, denied.std_err) == (1, b"ERROR: Access is denied.\r\n\r\n")
    connected = session.run_cmd(
        rf"net use \\KMS-NEW\IPC$ {password} /user:LAB\labadmin > NUL"
        r" & sc \\KMS-NEW query MSExchangeKMS"
    )
    assert connected.status_code == 0
    assert b"        STATE              : 1  STOPPED\r\n" in connected.std_out

    shown = lab.show()["hosts"]
    assert set(shown) == {"jump01", "kms-old", "kms-new"}
    assert shown["jump01"]["command_lines"][-2:] == [
        rf"net use \\KMS-NEW\IPC$ {password} /user:LAB\labadmin",
        r"sc \\KMS-NEW query MSExchangeKMS",
    ]
    assert "command_lines" not in shown["kms-new"]
    assert shown["kms-new"]["services"]["MSExchangeKMS"]["state"] == "stopped"
    assert shown["kms-new"]["requests"]["http"] == 0
    assert shown["jump01"]["requests"]["commands"] == 2


def test_the_jump_host_allows_thirty_shells_at_once_and_shows_the_peak(lab: Lab) -> None:
    lab.up("jump_q259906.yml", "--base-address", "auto")
    session, _password = jump_session(lab)
    protocol = session.protocol
    shells = [protocol.open_shell() for _shell_number in range(30)]
    with pytest.raises(WSManFaultError) as refused:
        protocol.open_shell()
    assert "maximum number of 30 concurrent shells" in refused.value.reason
    for shell in shells:
        protocol.close_shell(shell, close_session=False)

    requests = lab.show("jump01")["hosts"]["jump01"]["requests"]
    assert (requests["shells"], requests["shells_peak"]) == (30, 30)
    assert lab.show("kms-new")["hosts"]["kms-new"]["requests"]["shells_peak"] == 0


def test_a_legacy_host_has_no_winrm_listener(lab: Lab) -> None:
    lab.up("jump_q259906.yml", "--base-address", "auto")
    address = planned_address(lab, "kms-new")
    for port in (25985, 25986):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, port), timeout=5).close()
    with socket.create_connection((planned_address(lab, "jump01"), 25985), timeout=5):
        pass


def test_a_change_made_through_the_jump_host_is_kept_on_the_target(lab: Lab) -> None:
    lab.up("jump_matched.yml", "--base-address", "auto")
    session, password = jump_session(lab)
    session.run_cmd(
        rf"net use \\KMS-NEW\IPC$ {password} /user:LAB\labadmin > NUL"
        r" & sc \\KMS-NEW stop MSExchangeKMS"
    )
    assert lab.show("kms-new")["hosts"]["kms-new"]["services"]["MSExchangeKMS"]["state"] == (
        "stopped"
    )
    lab.down()
    lab.up("jump_matched.yml", "--base-address", "auto")
    shown = lab.show()["hosts"]
    assert shown["kms-new"]["services"]["MSExchangeKMS"]["state"] == "stopped"
    assert any("stop MSExchangeKMS" in line for line in shown["jump01"]["command_lines"])


def test_the_mixed_fleet_answers_each_legacy_kind_as_it_is(lab: Lab) -> None:
    lab.up("jump_mixed.yml", "--base-address", "auto")
    session, password = jump_session(lab)
    wmic = "wmic /node:{} /user:LAB\\labadmin /password:" + password + " os get Caption /value"
    with_core = session.run_cmd(wmic.format("KMS-OLD") + " < NUL")
    assert b"Caption=Microsoft Windows NT\r\r\n" in with_core.std_out
    without_core = session.run_cmd(wmic.format("KMS-NEW") + " < NUL")
    assert without_core.std_err == (
        b"Node - KMS-NEW\r\nERROR:\r\nDescription = The RPC server is unavailable.\r\n\r\n"
    )
    windows_2000 = session.run_cmd(wmic.format("W2K-KMS55") + " < NUL")
    assert b"Caption=Microsoft Windows 2000\r\r\n" in windows_2000.std_out
    e2k = session.run_cmd(
        rf"net use \\E2K-NEW\IPC$ {password} /user:LAB\labadmin > NUL"
        rf' & reg query "\\E2K-NEW\{SETUP}" /v "Services Version"'
    )
    assert b"    Services Version    REG_DWORD    0x3c\r\n" in e2k.std_out
    assert set(lab.show()["hosts"]) == {
        "jump01",
        "kms-old",
        "kms-new",
        "e2k-old",
        "e2k-new",
        "w2k-kms55",
    }


def test_the_bench_fleet_puts_two_hundred_servers_behind_one_listener(lab: Lab) -> None:
    started = lab.up("jump_bench.yml", "--base-address", "auto")
    assert "1 host(s) listening" in started.stdout
    assert "200 reached through jump hosts" in started.stdout
    session, password = jump_session(lab)
    result = session.run_cmd(
        rf"net use \\KMS-NEW-100\IPC$ {password} /user:LAB\labadmin > NUL"
        r" & sc \\KMS-NEW-100 query MSExchangeKMS"
    )
    assert b"        STATE              : 1  STOPPED\r\n" in result.std_out
    shown = lab.show("kms-new-100")["hosts"]["kms-new-100"]
    assert [event["id"] for event in shown["events"]] == [5389]
    assert lab.down().returncode == 0
