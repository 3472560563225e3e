# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The check_kms_move gate, run as CI runs it: `ansible-playbook exchops.kms.check_kms_move`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import RunGate, RunModule, lab_unchanged, override, run_tool

GATE = "exchops.kms.check_kms_move"
# ansible-playbook's own exit codes, which the gate's README documents.
ALL_MATCH, NOT_A_MATCH, UNREACHABLE = 0, 2, 4


def test_the_kb_fleet_fails_the_gate_naming_both_hosts_builds_kb_and_fix(
    gate_on_new_lab: RunGate,
) -> None:
    result, report, markdown, junit = gate_on_new_lab(GATE, "q259906.yml")
    assert result.returncode == NOT_A_MATCH, result.stdout
    expected = (
        "kms-new runs Exchange 5.5 SP3 (5.5.2650) but its KM Server binaries (Kmserver.exe) are "
        "Exchange 5.5 RTM (5.5.1960), older than 5.5.2650, the build that last ran the KM "
        "database (from kms-old's Kmserver.exe): KMS will exit with event 5389 (KB Q259906). "
        "Reapply Exchange 5.5 SP3 on kms-new (playbook exchops.kms.remediate_kms_move)."
    )
    assert expected in result.stdout
    (pair,) = report["pairs"]
    assert (pair["target"], pair["source"], pair["status"]) == ("kms-new", "kms-old", "mismatch")
    assert (pair["target_build"], pair["source_build"], pair["kms_binary_build"]) == (
        "5.5.2650.0",
        "5.5.2650.0",
        "5.5.1960.8",
    )
    for text in (
        "kms-new",
        "kms-old",
        "5.5.2650.0",
        "5.5.1960.8",
        "KB Q259906",
        "Reapply Exchange 5.5 SP3 on kms-new",
    ):
        assert text in markdown
    assert junit.find("testsuite").get("failures") == "1"
    assert report["result"] == "fail" and report["partial"] is False


def test_a_matched_move_passes_and_a_second_run_changes_nothing(
    lab_factory, gate_playbook: RunGate
) -> None:
    lab = lab_factory("matched.yml")
    before = lab.show()
    result, report, markdown, _junit = gate_playbook(GATE, lab)
    assert result.returncode == ALL_MATCH, result.stdout
    assert report["result"] == "pass" and report["pairs"][0]["status"] == "match"
    assert "✅ match" in markdown
    again, _report, _markdown, _junit = gate_playbook(GATE, lab, "--check")
    assert again.returncode == ALL_MATCH
    assert "changed=0" in again.stdout and "changed=1" not in again.stdout
    after = lab.show()
    for host in before:
        assert after[host]["services"] == before[host]["services"]
        assert after[host]["kms_database"] == before[host]["kms_database"]


@pytest.mark.parametrize(
    ("allow", "code", "status"), [(False, NOT_A_MATCH, "mismatch"), (True, ALL_MATCH, "match")]
)
def test_a_newer_target_passes_only_when_allowed(
    gate_on_new_lab: RunGate, allow: bool, code: int, status: str
) -> None:
    extra = ["-e", "sp_parity_allow_newer_target=true"] if allow else []
    result, report, _markdown, _junit = gate_on_new_lab(GATE, "target_newer.yml", *extra)
    assert result.returncode == code, result.stdout
    assert report["pairs"][0]["status"] == status
    assert "5.5.2653" in report["pairs"][0]["reason"]


def test_an_exchange_2000_move_with_rtm_km_binaries_fails(gate_on_new_lab: RunGate) -> None:
    result, report, _markdown, _junit = gate_on_new_lab(GATE, "exchange2000.yml")
    assert result.returncode == NOT_A_MATCH
    assert (
        "e2k-kms-new runs Exchange 2000 Server SP3 (6.0.6249) but its KM Server binaries "
        "(Kmserver.exe) are Exchange 2000 Server RTM (6.0.4417)"
    ) in report["pairs"][0]["reason"]


def test_ten_pairs_with_one_unreachable_report_every_pair_and_exit_unreachable(
    gate_on_new_lab: RunGate,
) -> None:
    result, report, markdown, junit = gate_on_new_lab(GATE, "mixed10.yml")
    assert result.returncode == UNREACHABLE, result.stdout
    statuses = {pair["target"]: pair["status"] for pair in report["pairs"]}
    assert len(statuses) == 10
    assert report["counts"] == {"match": 7, "mismatch": 2, "unreachable": 1, "error": 0}
    assert statuses["dead-new"] == "unreachable"
    assert "certificate has expired" in next(
        p["reason"] for p in report["pairs"] if p["target"] == "dead-new"
    )
    assert (
        len(
            [
                line
                for line in markdown.splitlines()
                if line.startswith("| ") and "new" in line.split("|")[1]
            ]
        )
        == 10
    )
    suite = junit.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("10", "2", "1")


def test_an_inventory_without_targets_fails_the_gate_instead_of_passing_nothing(
    ansible_env: dict[str, str], tmp_path: Path
) -> None:
    inventory = tmp_path / "empty.yml"
    inventory.write_text(
        "all:\n  hosts:\n    some-server:\n      ansible_host: 127.0.0.1\n", encoding="utf-8"
    )
    result = run_tool(
        [
            "ansible-playbook",
            "exchops.kms.check_kms_move",
            "-i",
            str(inventory),
            "-e",
            f"kms_report_dir={tmp_path}/r",
        ],
        ansible_env,
        tmp_path,
    )
    assert result.returncode == NOT_A_MATCH, result.stdout
    assert "The inventory has no host in the group kms_targets" in result.stdout
    report = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    assert report["pairs"] == [] and report["result"] == "fail"


def test_two_sp4_servers_whose_kmserver_is_the_sp3_build_pass_with_a_finding(
    lab_factory, gate_playbook: RunGate
) -> None:
    # docs/unsourced.md, U3: Kmserver.exe 5.5.2650.12 on both 5.5 SP4 servers ([lab] binaries set by
    # the fleet). The build that last ran the KM database is kms-old's Kmserver.exe, 5.5.2650.
    lab = lab_factory("sp4_matched.yml")
    with lab_unchanged(lab):
        result, report, markdown, junit = gate_playbook(GATE, lab)
    assert result.returncode == ALL_MATCH, result.stdout
    (pair,) = report["pairs"]
    assert (pair["status"], pair["remedy"]) == ("match", None)
    assert (pair["target_build"], pair["source_build"], pair["kms_binary_build"]) == (
        "5.5.2653.0",
        "5.5.2653.0",
        "5.5.2650.12",
    )
    assert (pair["database_build"], pair["database_build_from"]) == ("5.5.2650", "source_kmserver")
    assert pair["reason"] == (
        "kms-new and kms-old both run Exchange 5.5 SP4 (5.5.2653), and kms-new's Kmserver.exe "
        "(5.5.2650) is not older than 5.5.2650, the build that last ran the KM database (from "
        "kms-old's Kmserver.exe)."
    )
    assert any(
        finding.startswith("kms-new's Kmserver.exe carries an earlier service pack's build")
        for finding in pair["findings"]
    )
    assert "carries an earlier service pack's build" in markdown
    assert junit.find("testsuite").get("failures") == "0"


def test_with_the_source_gone_the_gate_judges_from_the_build_kms_backup_recorded(
    lab_factory,
    gate_playbook: RunGate,
    ansible_module: RunModule,
    tmp_path: Path,
) -> None:
    lab = lab_factory("sp4_matched.yml")
    # Before the move: back up the KM database on the old server; keep kms_backup's result.
    backup, results = ansible_module(lab, "kms-old", "exchops.kms.kms_backup", "")
    assert backup.returncode == 0, backup.stdout
    recorded = results["kms-old"]
    assert recorded["kms_binary_build"] == "5.5.2650.12"
    manifest = tmp_path / "kms-old-backup.json"
    manifest.write_text(json.dumps(recorded), encoding="utf-8")
    # After the move: kms-old is gone (nothing listens on port 9).
    gone = override(tmp_path, "kms-old", ansible_port=9)

    without, report, _markdown, _junit = gate_playbook(GATE, lab, *gone)
    assert without.returncode == UNREACHABLE, without.stdout
    assert "sp_parity_backup_manifest" in report["pairs"][0]["fix"]

    for extra, read_from, evidence in (
        (
            ["-e", f"sp_parity_backup_manifest={manifest}"],
            "backup_manifest",
            "Kmserver.exe 5.5.2650.12 recorded by kms_backup on kms-old",
        ),
        (["-e", "kms_database_build=5.5.2650.12"], "kms_database_build", "kms_database_build"),
    ):
        with lab_unchanged(lab, "kms-new"):
            result, report, markdown, _junit = gate_playbook(GATE, lab, *gone, *extra)
        assert result.returncode == ALL_MATCH, result.stdout
        (pair,) = report["pairs"]
        assert (pair["status"], pair["source_build"]) == ("match", None)
        assert (pair["database_build"], pair["database_build_from"]) == ("5.5.2650", read_from)
        assert f"not older than 5.5.2650, the build that last ran the KM database ({evidence}" in (
            pair["reason"]
        )
        assert "kms-old was not read" in pair["reason"]
        assert any(finding.startswith("kms-old was not read") for finding in pair["findings"])
        assert evidence in markdown
