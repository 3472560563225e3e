# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""KM servers on Windows NT 4.0 and 2000 run no WinRM: the lab's legacy hosts listen nowhere and
are read through a Windows jump host (exchange_jump_host) that the real pywinrm reaches with
CredSSP, whose delegated credentials the lab's jump host uses towards them. The gate, the facts
and the doctor through it; a logon that delegates nothing; a direct connection to a legacy host.
The jump hosts' command lines are checked for passwords when each lab stops (conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import LabFactory, RunGate, RunModule, RunningLab

GATE = "exchops.kms.check_kms_move"
DOCTOR = "exchops.kms.winrm_doctor"
ALL_MATCH, NOT_A_MATCH, UNREACHABLE = 0, 2, 4
# What a pair's verdict says that does not depend on how its servers were reached.
VERDICT = (
    "status",
    "reason",
    "fix",
    "remedy",
    "remedy_build",
    "target_build",
    "source_build",
    "kms_binary_build",
    "database_build",
    "database_build_from",
)

# What exchange_facts reads of each legacy Windows of the lab (SP6a keeps SP6's CSDVersion).
WINDOWS_READ = {
    "nt4": {"version": "4.0", "build": "1381", "service_pack": "Service Pack 6"},
    "2000": {"version": "5.0", "build": "2195", "service_pack": "Service Pack 4"},
}


@pytest.fixture(scope="module")
def jump_kb_lab(lab_factory: LabFactory) -> RunningLab:
    return lab_factory("jump_q259906.yml")


def jump_settings(tmp_path: Path, **settings: object) -> list[str]:
    """An extra inventory that changes jump01's settings."""
    extra = tmp_path / "jump01.yml"
    extra.write_text(yaml.safe_dump({"all": {"hosts": {"jump01": settings}}}), encoding="utf-8")
    return ["-i", str(extra)]


def test_the_gate_through_a_jump_host_gives_the_direct_kb_labs_verdict(
    jump_kb_lab: RunningLab, kb_lab: RunningLab, gate_playbook: RunGate
) -> None:
    through, report, markdown, _junit = gate_playbook(GATE, jump_kb_lab)
    direct, direct_report, _markdown, _junit = gate_playbook(GATE, kb_lab)
    assert (through.returncode, direct.returncode) == (NOT_A_MATCH, NOT_A_MATCH), through.stdout
    (pair,) = report["pairs"]
    (direct_pair,) = direct_report["pairs"]
    assert {key: pair[key] for key in VERDICT} == {key: direct_pair[key] for key in VERDICT}
    assert (pair["status"], pair["kms_binary_build"]) == ("mismatch", "5.5.1960.8")
    assert "reapply" in pair["fix"].lower() and "kms-new" in markdown
    # Only the jump host listens; it started the reads with the servers' NetBIOS names.
    lines = jump_kb_lab.show("jump01")["command_lines"]
    assert any(
        'reg query "\\\\KMS-NEW\\HKLM\\SOFTWARE\\Microsoft\\Exchange' in line for line in lines
    )
    assert any("wmic /node:KMS-OLD datafile" in line for line in lines)


def test_a_matched_pair_behind_a_jump_host_passes_the_gate(
    lab_factory: LabFactory, gate_playbook: RunGate
) -> None:
    result, report, _markdown, _junit = gate_playbook(GATE, lab_factory("jump_matched.yml"))
    assert result.returncode == ALL_MATCH, result.stdout
    assert [pair["status"] for pair in report["pairs"]] == ["match"]


def test_exchange_facts_are_right_for_every_legacy_kind_behind_one_jump_host(
    lab_factory: LabFactory, ansible_module: RunModule
) -> None:
    lab = lab_factory("jump_mixed.yml")
    shown = lab.show()
    _result, results = ansible_module(lab, "all:!jump_hosts", "exchops.kms.exchange_facts", "")
    assert set(results) == {"kms-old", "kms-new", "e2k-old", "e2k-new", "w2k-kms55"}
    for host, result in results.items():
        facts = result["ansible_facts"]["exchange"]
        exchange = shown[host]["exchange"]
        assert facts["reach"] == {"via": "jump01", "auth": "delegated"}, host
        assert facts["service_pack"] == exchange["service_pack"], host
        assert facts["build"].startswith(exchange["build"] + "."), host
        assert (
            facts["kms"]["service"]["state"] == shown[host]["services"]["MSExchangeKMS"]["state"]
        ), host
        # The fleet's NT 4.0 SP6a and Windows 2000 SP4, as their registry gives them, read in
        # the same command line (docs/registry.md#windows-version).
        assert facts["windows"] == WINDOWS_READ[shown[host]["os"]], host
    # NT 4.0 without WMI core: no version and no event is guessed, and the facts say why.
    without_wmi = results["kms-new"]["ansible_facts"]["exchange"]
    assert without_wmi["kms"].get("binary_build") is None
    assert without_wmi["sources"]["file_versions"].startswith("unavailable (WMI: ")
    assert without_wmi["sources"]["events"].startswith("unavailable (WMI: ")
    assert without_wmi["kms"]["events"] == []
    with_wmi = results["kms-old"]["ansible_facts"]["exchange"]
    assert with_wmi["kms"]["binary_build"] == shown["kms-old"]["exchange"]["kms_binary_build"]


def test_a_jump_host_reached_with_ntlm_fails_every_legacy_host_naming_the_double_hop(
    jump_kb_lab: RunningLab, gate_playbook: RunGate, ansible_module: RunModule, tmp_path: Path
) -> None:
    ntlm = jump_settings(tmp_path, ansible_winrm_transport="ntlm")
    before = jump_kb_lab.show("jump01")["requests"]
    result, report, _markdown, _junit = gate_playbook(GATE, jump_kb_lab, *ntlm)
    assert result.returncode == NOT_A_MATCH, result.stdout
    (pair,) = report["pairs"]
    assert pair["status"] == "error"
    assert "delegates no credentials" in pair["reason"] and "(the double hop)" in pair["reason"]
    assert "Set ansible_winrm_transport: credssp for jump01" in pair["reason"]
    # Refused from the settings: nothing was sent to the jump host.
    assert jump_kb_lab.show("jump01")["requests"] == before
    # The doctor says the same, after trying both hops.
    _result, results = ansible_module(
        jump_kb_lab, "kms-new", DOCTOR, "fail_on_problems=false", *ntlm
    )
    problems = {problem["id"]: problem for problem in results["kms-new"]["problems"]}
    assert "jump_no_delegation" in problems, problems
    assert "the double hop" in problems["jump_no_delegation"]["message"]
    assert "credssp" in problems["jump_no_delegation"]["fix"]


def test_direct_winrm_to_a_legacy_host_is_unreachable_and_names_exchange_jump_host(
    jump_kb_lab: RunningLab, ansible_module: RunModule, tmp_path: Path
) -> None:
    # kms-new without exchange_jump_host, with WinRM settings of its own: WinRM straight to the
    # server, which runs none (and whose NetBIOS name the controller does not resolve).
    direct_settings = {
        "exchange_jump_host": None,
        "ansible_user": "LAB\\labadmin",
        "ansible_port": 5985,
        "ansible_winrm_scheme": "http",
    }
    direct = tmp_path / "direct.yml"
    direct.write_text(
        yaml.safe_dump({"all": {"hosts": {"kms-new": direct_settings}}}), encoding="utf-8"
    )
    result, results = ansible_module(
        jump_kb_lab, "kms-new", "exchops.kms.exchange_facts", "", "-i", str(direct)
    )
    assert results["kms-new"].get("unreachable"), result.stdout
    message = results["kms-new"]["msg"]
    assert message.startswith("kms-new (")
    assert "unreachable: " in message
    assert "reach it through a Windows jump host by setting exchange_jump_host" in message


def test_the_doctor_proves_the_second_hop_and_names_the_servers_windows(
    jump_kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    _result, results = ansible_module(jump_kb_lab, "kms-new", DOCTOR, "")
    assert results["kms-new"]["problems"] == [], results["kms-new"]
    assert results["kms-new"]["msg"] == (
        "kms-new: jump01 reads KMS-NEW (Windows NT 4.0) with the credentials its logon "
        "carries; WMI answers."
    )
