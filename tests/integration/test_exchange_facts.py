# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.exchange_facts with the real `ansible` / `ansible-playbook` against the lab."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
import yaml
from conftest import RunModule, RunningLab, override, run_tool

FACTS = "exchops.kms.exchange_facts"


@pytest.fixture(scope="module")
def mix_lab(lab_factory) -> RunningLab:
    return lab_factory("facts_mix.yml")


def facts_of(results: dict[str, dict], host: str) -> dict:
    assert "ansible_facts" in results[host], results[host]
    return results[host]["ansible_facts"]["exchange"]


def test_the_kb_target_shows_sp3_with_rtm_km_binaries_stopped_kms_and_event_5389(
    kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    before = kb_lab.show("kms-new")["requests"]["http"]
    result, results = ansible_module(kb_lab, "all", FACTS, "")
    assert result.returncode == 0, result.stdout + result.stderr

    target = facts_of(results, "kms-new")
    assert target["installed"] is True
    assert (target["product"], target["version"], target["release"]) == (
        "Exchange Server 5.5",
        "5.5",
        "Exchange Server 5.5 SP3",
    )
    assert (target["build"], target["build_number"], target["service_pack"]) == (
        "5.5.2650.0",
        2650,
        3,
    )
    assert target["install_path"] == "C:\\EXCHSRVR"
    kms = target["kms"]
    assert kms["installed"] is True
    assert kms["binary_build"] == "5.5.1960.8"
    assert kms["binary_release"] == "Exchange Server 5.5 RTM"
    assert kms["matches_server"] is False
    assert kms["service"]["state"] == "stopped"
    assert kms["service"]["start_mode"] == "manual"
    assert kms["database_path"] == "C:\\EXCHSRVR\\KMSDATA"
    assert [(event["id"], event["source"]) for event in kms["events"]] == [(5389, "MSExchangeKMS")]
    assert target["inconsistent"] == []
    assert "NewestBuild" in target["sources"]["build"]

    source = facts_of(results, "kms-old")
    assert source["release"] == "Exchange Server 5.5 SP3"
    assert source["kms"]["matches_server"] is True
    assert source["kms"]["service"]["state"] == "running"
    assert results["kms-new"]["changed"] is False
    # One shell, one command: 3 NTLM requests + Create, Command, Receive, Delete.
    assert kb_lab.show("kms-new")["requests"]["http"] - before == 7


def test_check_mode_reads_the_same_facts_and_changes_nothing(
    kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    before = kb_lab.show("kms-new")
    result, results = ansible_module(kb_lab, "kms-new", FACTS, "", "--check")
    assert result.returncode == 0
    assert facts_of(results, "kms-new")["kms"]["binary_build"] == "5.5.1960.8"
    after = kb_lab.show("kms-new")
    assert after["services"] == before["services"]
    assert after["kms_database"] == before["kms_database"]
    assert after["events"] == before["events"]


def test_each_kind_of_host_is_named_over_each_kind_of_connection(
    mix_lab: RunningLab, ansible_module: RunModule
) -> None:
    result, results = ansible_module(mix_lab, "all", FACTS, "kms_event_count=5")
    assert result.returncode == 0, result.stdout

    nothing = facts_of(results, "no-exchange")
    assert nothing["installed"] is False
    assert nothing["kms"]["installed"] is False
    assert nothing["kms"]["service"]["state"] == "absent"

    modern = facts_of(results, "exch2016")
    assert (modern["release"], modern["build"]) == ("Exchange Server 2016 CU23", "15.1.2507.6")
    assert modern["kms"]["installed"] is False

    over_ntlm_https = facts_of(results, "e55-sp4-https")
    assert over_ntlm_https["release"] == "Exchange Server 5.5 SP4"
    assert over_ntlm_https["kms"]["matches_server"] is True

    over_basic_https = facts_of(results, "e55-sp2-basic")
    assert over_basic_https["release"] == "Exchange Server 5.5 SP2"

    windows_2000 = facts_of(results, "e55-win2000")
    assert windows_2000["release"] == "Exchange Server 5.5 SP3"
    assert "binary_build" not in windows_2000["kms"]
    assert "e55-win2000: 'wmic' is not available on this host" in result.stdout + result.stderr


def test_exchange_2000_km_binaries_from_the_rtm_cd_do_not_match_sp3(
    lab_factory, ansible_module: RunModule
) -> None:
    lab = lab_factory("exchange2000.yml")
    result, results = ansible_module(lab, "all", FACTS, "")
    assert result.returncode == 0, result.stdout
    target = facts_of(results, "e2k-kms-new")
    assert (target["version"], target["release"]) == ("2000", "Exchange 2000 Server SP3")
    assert target["kms"]["binary_release"] == "Exchange 2000 Server RTM"
    assert target["kms"]["matches_server"] is False
    assert facts_of(results, "e2k-kms-old")["kms"]["matches_server"] is True


def test_facts_of_a_source_land_under_its_own_name_with_delegate_facts(
    kb_lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    playbook = tmp_path / "delegate.yml"
    playbook.write_text(
        """
- name: Read both servers of a KM Server move
  hosts: kms_targets
  gather_facts: false
  tasks:
    - name: Read Exchange facts from the KM source server
      exchops.kms.exchange_facts:
      delegate_to: "{{ kms_source_host }}"
      delegate_facts: true
    - name: Read Exchange facts from the new KM Server
      exchops.kms.exchange_facts:
    - name: Check that each server kept its own facts
      ansible.builtin.assert:
        that:
          - hostvars[kms_source_host].ansible_facts.exchange.kms.binary_build == '5.5.2650.12'
          - ansible_facts.exchange.kms.binary_build == '5.5.1960.8'
""",
        encoding="utf-8",
    )
    result = run_tool(
        ["ansible-playbook", "-i", str(kb_lab.inventory), str(playbook)], ansible_env, tmp_path
    )
    assert result.returncode == 0, result.stdout
    assert "failed=0" in result.stdout


def test_connection_failures_fail_only_their_host_with_the_setting_to_change(
    kb_lab: RunningLab, mix_lab: RunningLab, ansible_module: RunModule, tmp_path: Path
) -> None:
    # Wrong password on the target; the source in the same run still succeeds.
    wrong = override(tmp_path, "kms-new", ansible_password="Not-The-Password1")
    result, results = ansible_module(kb_lab, "all", FACTS, "", *wrong)
    assert result.returncode != 0
    assert "kms-new | FAILED!" in result.stdout
    assert "kms-new (http://" in results["kms-new"]["msg"]
    assert "refused the credentials of 'LAB\\labadmin'" in results["kms-new"]["msg"]
    assert "Check ansible_user and ansible_password" in results["kms-new"]["msg"]
    assert "ansible_facts" in results["kms-old"]

    # A CA that did not issue the host's certificate.
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    untrusted = override(tmp_path, "e55-sp4-https", ansible_winrm_ca_trust_path=str(other_ca))
    result, results = ansible_module(mix_lab, "e55-sp4-https:e55-sp2-basic", FACTS, "", *untrusted)
    assert results["e55-sp4-https"]["unreachable"] is True
    assert "TLS certificate not trusted" in results["e55-sp4-https"]["msg"]
    assert (
        "Set ansible_winrm_ca_trust_path to the PEM file of the issuing CA"
        in results["e55-sp4-https"]["msg"]
    )
    assert "ansible_facts" in results["e55-sp2-basic"]

    # Nothing listens on the port.
    closed = override(tmp_path, "kms-new", ansible_port=1)
    result, results = ansible_module(kb_lab, "all", FACTS, "", *closed)
    assert results["kms-new"]["unreachable"] is True
    assert "nothing listens on port 1 (connection refused)" in results["kms-new"]["msg"]
    assert "ansible_facts" in results["kms-old"]


def test_a_host_that_never_answers_in_time_fails_with_the_timeout_knobs(
    kb_lab: RunningLab, ansible_module: RunModule, tmp_path: Path
) -> None:
    quick = override(
        tmp_path,
        "kms-new",
        ansible_winrm_operation_timeout_sec=1,
        ansible_winrm_read_timeout_sec=3,
    )
    faults = ("operation_timeout=true", "command_lifetime_s=30")
    with kb_lab.faulted("kms-new", *faults, clear=["operation_timeout=false"]):
        result, results = ansible_module(kb_lab, "all", FACTS, "timeout=3", *quick)
    assert "kms-new | FAILED!" in result.stdout
    assert "did not finish within 3 s" in results["kms-new"]["msg"]
    assert "ansible_facts" in results["kms-old"]


def test_basic_over_plain_http_is_refused_before_anything_is_sent(
    kb_lab: RunningLab, ansible_module: RunModule, tmp_path: Path
) -> None:
    before = kb_lab.show("kms-new")["requests"]["http"]
    basic = override(tmp_path, "kms-new", ansible_winrm_transport="basic")
    result, results = ansible_module(kb_lab, "kms-new", FACTS, "", *basic)
    assert "refusing Basic authentication over plain HTTP" in results["kms-new"]["msg"]
    assert kb_lab.show("kms-new")["requests"]["http"] == before


def test_no_password_reaches_the_output_even_at_vvvv(
    kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    inventory = yaml.safe_load(kb_lab.inventory.read_text(encoding="utf-8"))["all"]["vars"]
    result, results = ansible_module(kb_lab, "all", FACTS, "", "-vvvv")
    assert result.returncode == 0
    everything = result.stdout + result.stderr + repr(results)
    assert inventory["ansible_password"] not in everything
    assert inventory["kms_startup_password"] not in everything
    assert "running on kms-new: echo ==exchops:begin:setup_legacy==" in result.stdout
