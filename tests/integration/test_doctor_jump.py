# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WinRM doctor through a jump host, against the lab: one test per cause of a second hop that
fails, each reported alone, in one line that names the server, the jump host, the cause and the
fix.

Fleet jump_doctor.yml holds one legacy server per fault behind four jump hosts (a healthy 2016,
a 2019 without the SMB 1.0 client, a 2016 with NetBIOS over TCP/IP off, a 2016 whose WinRM never
had CredSSP enabled); the real `exchops.kms.winrm_doctor` reads them all in one `ansible` run.
The two causes that live in the controller's settings (a name the jump host does not know,
credentials never delegated) are one changed inventory variable on the healthy server, kms-ok.
The jump hosts' command lines are checked for passwords when the lab stops (conftest).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import (
    LabFactory,
    RunningLab,
    ansible_environment,
    override,
    run_tool,
    shown_in,
    tree_results,
)

DOCTOR = "exchops.kms.winrm_doctor"
LEGACY_SERVERS = "all:!jump_hosts"


@pytest.fixture(scope="module")
def lab(lab_factory: LabFactory) -> RunningLab:
    return lab_factory("jump_doctor.yml")


def run_doctor(lab: RunningLab, folder: Path, pattern: str, *extra: str) -> dict[str, dict]:
    """`ansible PATTERN -m exchops.kms.winrm_doctor -a fail_on_problems=false` (at -vvvv, as every
    command of the suite); each host's result, after checking that each problem is one line the
    output shows and that nothing was changed."""
    folder.mkdir()
    tree = folder / "tree"
    env = dict(
        ansible_environment(folder),
        ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
        ANSIBLE_CALLBACK_TREE_DIR=str(tree),
        ANSIBLE_LOAD_CALLBACK_PLUGINS="True",
        ANSIBLE_DEPRECATION_WARNINGS="False",
    )
    command = ["ansible", "-i", str(lab.inventory), pattern, "-m", DOCTOR]
    result = run_tool([*command, "-a", "fail_on_problems=false", *extra], env, folder)
    assert result.returncode == 0, result.stdout + result.stderr
    results = tree_results(tree)
    for answer in results.values():
        assert answer["changed"] is False
        assert answer["ok"] is (not answer["problems"]), answer
        for problem, line in zip(answer["problems"], answer["lines"]):
            assert line == f"{problem['host']}: {problem['message']} Fix: {problem['fix']}"
            assert shown_in(line, result.stdout + result.stderr), line
    return results


@pytest.fixture(scope="module")
def fleet(lab: RunningLab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The doctor's answer for every legacy server of the fleet, from one run."""
    return run_doctor(lab, tmp_path_factory.mktemp("doctor") / "fleet", LEGACY_SERVERS)


def only_problem(answer: dict) -> dict:
    """The one problem the doctor reported (no companion rows), with its line."""
    ids = [problem["id"] for problem in answer["problems"]]
    assert len(ids) == 1, ids
    (problem,) = answer["problems"]
    (line,) = answer["lines"]
    return {**problem, "line": line}


def test_a_server_with_nothing_wrong_is_proven_read_through_its_jump_host(
    fleet: dict[str, dict],
) -> None:
    # The control: the same readings on a healthy pair report nothing.
    answer = fleet["kms-ok"]
    assert answer["problems"] == [], answer
    assert answer["msg"] == (
        "kms-ok: jump01 reads KMS-OK (Windows NT 4.0) with the credentials its logon carries; "
        "WMI answers."
    )


def test_a_2019_jump_host_without_the_smb1_client_cannot_reach_windows_2000(
    fleet: dict[str, dict],
) -> None:
    problem = only_problem(fleet["w2k-smb1"])
    assert problem["id"] == "jump_smb1_client_missing"
    assert problem["line"].startswith("w2k-smb1: jump19 has no SMB 1.0 client")
    assert "no MRxSmb10 among the Workstation service's dependencies" in problem["message"]
    assert "KB 4034314" in problem["message"]
    assert problem["fix"].startswith("Install the 'SMB 1.0/CIFS Client' feature on jump19")


def test_netbios_over_tcpip_off_on_the_jump_host_cannot_reach_nt4(fleet: dict[str, dict]) -> None:
    problem = only_problem(fleet["nt4-nbt"])
    assert problem["id"] == "jump_netbios_off"
    assert problem["line"].startswith(
        "nt4-nbt: NetBIOS over TCP/IP is off on jumpnb (no NetBT_Tcpip transport)"
    )
    assert "no SMB on port 445 (KB 204279)" in problem["message"]
    assert problem["fix"] == (
        "Enable NetBIOS over TCP/IP on jumpnb's network adapter (Advanced TCP/IP settings, WINS "
        "tab), and let TCP 139 through to NT4-NBT."
    )


def test_a_name_the_jump_host_cannot_resolve_is_named(lab: RunningLab, tmp_path: Path) -> None:
    # WMI fails for the same name; it is not reported as a cause of its own.
    renamed = override(tmp_path, "kms-ok", ansible_host="KMS-GONE")
    answer = run_doctor(lab, tmp_path / "renamed", "kms-ok", *renamed)["kms-ok"]
    problem = only_problem(answer)
    assert problem["id"] == "hop_name_unresolved"
    assert problem["line"] == (
        "kms-ok: jump01 cannot resolve the name KMS-GONE (ping could not find the host). Fix: "
        "Set kms-ok's ansible_host to a name jump01 resolves (through WINS, DNS or an LMHOSTS "
        "entry) or to KMS-GONE's IP address."
    )


def test_remote_registry_stopped_on_windows_2000_is_named(fleet: dict[str, dict]) -> None:
    problem = only_problem(fleet["w2k-rr"])
    assert problem["id"] == "hop_remote_registry_stopped"
    assert problem["line"].startswith(
        "w2k-rr: the Remote Registry service is stopped on W2K-RR, so jump01 cannot read its "
        "registry"
    )
    assert problem["fix"].startswith("Start it: sc \\\\W2K-RR start RemoteRegistry")


def test_access_denied_through_an_ntlm_logon_is_the_double_hop(
    lab: RunningLab, tmp_path: Path
) -> None:
    # Every tool of the hop is refused (reg, sc and WMI alike); only the cause is reported.
    ntlm = override(tmp_path, "jump01", ansible_winrm_transport="ntlm")
    answer = run_doctor(lab, tmp_path / "ntlm", "kms-ok", *ntlm)["kms-ok"]
    problem = only_problem(answer)
    assert problem["id"] == "jump_no_delegation"
    assert problem["line"].startswith("kms-ok: jump01's WinRM logon delegates no credentials")
    assert "ANONYMOUS LOGON and is refused: the double hop." in problem["message"]
    assert problem["fix"].startswith("Set ansible_winrm_transport: credssp for jump01")


def test_nt4_without_wmi_core_is_named_as_wmi_unreachable(fleet: dict[str, dict]) -> None:
    problem = only_problem(fleet["nt4-nowmi"])
    assert problem["id"] == "hop_wmi_unreachable"
    assert problem["line"].startswith(
        "nt4-nowmi: WMI on NT4-NOWMI does not answer jump01 (The RPC server is unavailable.)"
    )
    assert "only when WMI core is installed (KB Q219378)" in problem["message"]
    assert problem["fix"].startswith("Install WMI core on an NT 4.0 server")


def test_an_account_that_is_no_administrator_on_the_server_is_named(
    fleet: dict[str, dict],
) -> None:
    # The service control manager answers any account that logged on (KB Q179249), the registry
    # and WMI only administrators: WMI's refusal is not reported as a cause of its own.
    problem = only_problem(fleet["nt4-user"])
    assert problem["id"] == "hop_not_administrator"
    assert problem["line"].startswith("nt4-user: NT4-USER refused the registry read")
    assert "the account is not an administrator on NT4-USER" in problem["message"]
    assert problem["fix"].startswith("Make the account an administrator on NT4-USER")


def test_credssp_not_enabled_on_the_jump_host_is_named_before_any_second_hop(
    fleet: dict[str, dict],
) -> None:
    # The jump host's own WinRM is diagnosed first; the second hop is not tried until it works.
    problem = only_problem(fleet["kms-cs"])
    assert (problem["id"], problem["host"]) == ("credssp_not_enabled", "jumpcs")
    assert problem["line"].startswith(
        "jumpcs: ansible_winrm_transport=credssp, but CredSSP is not enabled on the host's WinRM "
        "service"
    )
    assert "Enable-WSManCredSSP -Role Server" in problem["fix"]


def test_nt4_below_sp4_refusing_ntlmv2_is_a_refused_logon(fleet: dict[str, dict]) -> None:
    # NT 4.0 before SP4 answers the NTLMv2 a modern jump host sends with the same 1326 ("The
    # user name or password is incorrect.") as a wrong password, and with the logon refused
    # neither its registry (CSDVersion) nor WMI can be read to tell the two apart: the one row
    # names both, the service pack first in its fix. WMI (absent here too) is not reported: its
    # answer says nothing while the logon is refused.
    problem = only_problem(fleet["nt4-sp3"])
    assert problem["id"] == "hop_logon_refused"
    assert problem["line"].startswith(
        "nt4-sp3: NT4-SP3 refused the logon of the account jump01 passes on"
    )
    assert "below Service Pack 4 also refuses the NTLMv2" in problem["message"]
    assert "(KB Q236414)" in problem["message"]
    assert "install Service Pack 4 or later" in problem["fix"]
