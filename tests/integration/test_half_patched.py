# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A half-installed service pack on the new KM Server, on the lab's half_patched.yml.

kms-new's registry says 5.5 SP3 and its Kmserver.exe is SP3's, but its Store.exe is still SP2's
5.5.2448.8: the service pack did not complete (KB Q278518: Store.exe's file version shows the
service pack installed). The gate must not call the pair a match, and the remediation must
reapply SP3 before it starts the stopped MSExchangeKMS, then leave the pair alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import RunGate, RunningLab, lab_unchanged, module_lab, run_tool

half_lab = module_lab("half_lab", "half_patched.yml")
# The remediation changes kms-new: its own lab, so that the gate's test finds the half-installed
# service pack whichever test runs first.
remediated_half_lab = module_lab("remediated_half_lab", "half_patched.yml")
KMS = "MSExchangeKMS"
# -vvvv shows each command line sent; a start of KMS, with whatever follows it.
KMS_START = re.compile(r"\(sc start MSExchangeKMS[^)]*\)")
# exchange_service_pack's -vv line as it starts update.exe, with the plan's reason.
UPDATE_STARTED = (
    "kms-new: Store.exe is 5.5.2448.8 (5.5 SP2); the media installs 5.5.2650 (5.5 SP3); running"
)


def test_the_gate_fails_a_half_installed_service_pack_citing_q278518(
    half_lab: RunningLab, gate_playbook: RunGate
) -> None:
    with lab_unchanged(half_lab):
        result, report, markdown, _junit = gate_playbook("exchops.kms.check_kms_move", half_lab)
    assert result.returncode == 2, result.stdout[-3000:]
    (pair,) = report["pairs"]
    assert (pair["target"], pair["status"], pair["remedy"], pair["remedy_build"]) == (
        "kms-new",
        "mismatch",
        "reapply_sp",
        "5.5.2650",
    )
    assert pair["reason"] == (
        "kms-new's Store.exe is 5.5.2448.8 (Exchange 5.5 SP2) while its registry says Exchange "
        "5.5 SP3 (5.5.2650): the service pack did not complete on kms-new (KB Q278518: "
        "Store.exe's file version shows the service pack installed), and MSExchangeKMS must not "
        "be started on a half-installed service pack."
    )
    assert pair["fix"].startswith("Reapply Exchange 5.5 SP3 on kms-new")
    assert "KB Q278518" in markdown


def test_the_remediation_reapplies_the_service_pack_before_it_starts_kms_then_rests(
    remediated_half_lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    playbook = [
        "ansible-playbook",
        "exchops.kms.remediate_kms_move",
        "-i",
        str(remediated_half_lab.inventory),
    ]
    reports = ["-e", f"kms_report_dir={tmp_path / 'reports'}"]
    before = remediated_half_lab.show("kms-new")
    assert before["exchange"]["binaries"]["STORE.EXE"] == "5.5.2448.8"
    assert before["services"][KMS]["state"] == "stopped"

    fixed = run_tool([*playbook, *reports, "-vvvv"], ansible_env, tmp_path)
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    output = fixed.stdout + fixed.stderr
    # KMS is started once, and only after update.exe was started (and, the report says, the
    # versions proved the service pack in place).
    starts = [match.start() for match in KMS_START.finditer(output)]
    assert len(starts) == 1, starts
    assert 0 <= output.index(UPDATE_STARTED) < starts[0]
    target = remediated_half_lab.show("kms-new")
    assert target["exchange"]["binaries"]["STORE.EXE"] == "5.5.2650.23"
    assert len(target["exchange"]["updates"]) == 1
    assert target["services"][KMS]["state"] == "running"
    assert target["kms_database"]["intact"] is True
    report = json.loads((tmp_path / "reports" / "remediation.json").read_text(encoding="utf-8"))
    (row,) = report["pairs"]
    assert (row["target"], row["outcome"], row["sp_outcome"]) == ("kms-new", "remediated", "ok")
    assert "Store.exe file version 5.5.2650.23" in row["decided_by"]

    again = run_tool([*playbook, *reports], ansible_env, tmp_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "changed=0" in again.stdout and "failed=0" in again.stdout
    assert "changed=1" not in again.stdout
    assert len(remediated_half_lab.show("kms-new")["exchange"]["updates"]) == 1

    gate = run_tool(
        ["ansible-playbook", "exchops.kms.check_kms_move", "-i", str(remediated_half_lab.inventory)]
        + reports,
        ansible_env,
        tmp_path,
    )
    assert gate.returncode == 0, gate.stdout[-2000:]
