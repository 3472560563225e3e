# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.remediate_kms_move on the KB Q259906 fleet, as an operator runs it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml
from conftest import Remediation, lab_unchanged, run_tool


def test_the_kb_move_is_planned_then_fixed_once_and_left_alone_after(
    lab_factory, ansible_env: dict[str, str], tmp_path: Path, remediation: Remediation
) -> None:
    lab = lab_factory("q259906.yml")
    secrets = yaml.safe_load(lab.inventory.read_text(encoding="utf-8"))["all"]["vars"]

    with lab_unchanged(lab):
        planned = remediation.run(lab, "--check", "--diff")
        assert planned.returncode == 0, planned.stdout
    plan = json.loads((remediation.reports / "plan-kms-new.json").read_text(encoding="utf-8"))
    assert (plan["kms_binary_before"], plan["media_build"]) == ("5.5.1960.8", "5.5.2650.0")
    # No source says which version Kmserver.exe gets: the plan does not predict a new one.
    assert (plan["build_after"], plan["kms_binary_after"]) == ("5.5.2650.0", "5.5.1960.8")
    # --diff: the service pack step's predicted builds, before and after.
    assert "--- before: kms-new: before" in planned.stdout, planned.stdout
    assert "+++ after: kms-new: after (predicted)" in planned.stdout
    assert "-Kmserver.exe: 5.5.1960.8 (5.5 RTM)" in planned.stdout
    assert (
        "+Kmserver.exe: replaced by the copy of 5.5.2650 (5.5 SP3) (its version is not "
        "documented)" in planned.stdout
    )
    assert [step["step"].split()[0] for step in plan["steps"]] == [
        "back",
        "stop",
        "reapply",
        "start",
        "check",
    ]

    assert [(p["target"], p["outcome"]) for p in remediation.report()["pairs"]] == [
        ("kms-new", "planned")
    ]

    fixed = remediation.run(lab, "-vvvv")
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert "KM database backed up to C:\\\\EXCHSRVR\\\\KMSDATA.backup-" in fixed.stdout
    for secret in (secrets["ansible_password"], secrets["kms_startup_password"]):
        assert secret not in fixed.stdout + fixed.stderr
    target = lab.show("kms-new")
    assert target["services"]["MSExchangeKMS"]["state"] == "running"
    assert target["kms_database"]["intact"] is True
    assert target["kms_database"]["stamp_build"] == "5.5.2650"
    assert [backup["matches_database"] for backup in target["backups"]] == [True]
    assert all(event["id"] != 5389 for event in target["events"][1:]), target["events"]

    (fixed_row,) = remediation.report()["pairs"]
    assert fixed_row["outcome"] == "remediated"
    assert (fixed_row["kms_binary_before"], fixed_row["kms_binary_after"]) == (
        "5.5.1960.8",
        "5.5.2650.12",
    )
    assert fixed_row["backup_path"] == target["backups"][0]["path"]
    # The lab's setup log has no completion wording: the versions read back decided.
    assert fixed_row["sp_outcome"] == "ok"
    assert fixed_row["decided_by"][:3] == [
        "update.exe ended: its command returned exit code 0",
        "registry: Exchange 5.5.2650 (5.5 SP3) (NewestBuild)",
        "Store.exe file version 5.5.2650.23",
    ]
    assert all(service["state"] == "running" for service in target["services"].values()), target[
        "services"
    ]

    again = remediation.run(lab)
    assert again.returncode == 0
    assert "changed=0" in again.stdout and "failed=0" in again.stdout
    assert len(lab.show("kms-new")["backups"]) == 1
    assert remediation.report()["pairs"][0]["outcome"] == "unchanged"

    gate = run_tool(
        [
            "ansible-playbook",
            "exchops.kms.check_kms_move",
            "-i",
            str(lab.inventory),
            *remediation.report_dir,
        ],
        ansible_env,
        tmp_path,
    )
    assert gate.returncode == 0, gate.stdout[-2000:]


def test_every_faulted_pair_is_reported_with_its_step_and_no_database_is_lost(
    lab_factory, remediation: Remediation
) -> None:
    # Three pairs, each failing at another step: the backup (disk full), the service pack
    # (installer fails half-way), the restart (KMS refuses the password). None may hide another.
    lab = lab_factory("remediation_faults.yml")
    result = remediation.run(lab, "--forks", "6")
    assert result.returncode == 2, result.stdout[-3000:]
    report = remediation.report()
    assert report["result"] == "fail" and report["counts"]["failed"] == 3
    steps = {pair["target"]: pair["step"] for pair in report["pairs"]}
    assert steps == {
        "inst-new": "Reapply the source's service pack on the new KM Server",
        "disk-new": "Back up the KM database before anything changes",
        "pw-new": "Start MSExchangeKMS and prove it stays up",
    }
    for pair in report["pairs"]:
        assert pair["reason"].startswith(pair["target"] + ": ")
        assert f"fatal: [{pair['target']}]: FAILED!" in result.stdout
        assert lab.show(pair["target"])["kms_database"]["intact"] is True
    assert report["pairs"][0]["backup_path"] and not report["pairs"][1]["backup_path"]


def test_two_sp4_servers_whose_kmserver_is_the_sp3_build_are_left_alone(
    lab_factory, remediation: Remediation
) -> None:
    # Kmserver.exe 5.5.2650.12 on both 5.5 SP4 servers is not older than the build that last ran
    # the KM database: no backup, no SP4 reapplied, nothing demanded of Kmserver.exe (docs/unsourced.md, U3).
    lab = lab_factory("sp4_matched.yml")
    with lab_unchanged(lab):
        result = remediation.run(lab)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "changed=0" in result.stdout and "failed=0" in result.stdout
    assert "changed=1" not in result.stdout
    (row,) = remediation.report()["pairs"]
    assert (row["target"], row["outcome"]) == ("kms-new", "unchanged")
    assert lab.show("kms-new")["backups"] == []


def test_a_database_last_run_by_a_kms_hotfix_is_refused_naming_the_hotfix(
    lab_factory, ansible_env: dict[str, str], tmp_path: Path, remediation: Remediation
) -> None:
    # kms-old: 5.5 SP2 + KB Q231307 (Kmserver.exe 5.5.2606); kms-new: plain SP2. The gate says
    # install_hotfix, and the remediation, which reapplies service packs only, changes nothing.
    lab = lab_factory("kms_hotfix.yml")
    gate = run_tool(
        [
            "ansible-playbook",
            "exchops.kms.check_kms_move",
            "-i",
            str(lab.inventory),
            *remediation.report_dir,
        ],
        ansible_env,
        tmp_path,
    )
    assert gate.returncode == 2, gate.stdout[-2000:]
    (pair,) = json.loads((remediation.reports / "report.json").read_text(encoding="utf-8"))["pairs"]
    assert (pair["remedy"], pair["remedy_build"], pair["database_build"]) == (
        "install_hotfix",
        "5.5.2606",
        "5.5.2606",
    )
    assert "that a hotfix build does the same is inferred" in pair["reason"]
    with lab_unchanged(lab):
        refused = remediation.run(lab)
    assert refused.returncode == 2, refused.stdout[-3000:]
    assert "install the KM Server hotfix of KB Q231307" in refused.stdout
    assert "Nothing was changed." in refused.stdout and "changed=0" in refused.stdout
    (row,) = remediation.report()["pairs"]
    assert row["outcome"] == "failed" and "KB Q231307" in row["reason"]


def _update_exe_gone(lab, host: str, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    """Wait until the lab has recorded the end of the host's update.exe run."""
    deadline = time.monotonic() + timeout
    while not lab.show(host)["exchange"]["updates"]:
        assert time.monotonic() < deadline, "update.exe did not end"
        time.sleep(2)


def test_a_pair_whose_installer_waits_for_input_ends_waiting_then_its_services_come_back(
    lab_factory, remediation: Remediation
) -> None:
    lab = lab_factory("sp_waits.yml")
    database = lab.show("kms-new")["kms_database"]
    no_progress = ("-e", "kms_remediate_sp_no_progress_timeout=4")
    waiting = remediation.run(lab, *no_progress)
    assert waiting.returncode == 2, waiting.stdout[-3000:]
    (row,) = remediation.report()["pairs"]
    assert (row["outcome"], row["sp_outcome"]) == ("waiting_for_input", "waiting_for_input"), row
    assert row["decided_by"][0].startswith("tasklist: update.exe running")
    assert "sc start MSExchangeSA, then sc start MSExchangeDS" in row["reason"]
    # update.exe still runs: nothing restarted under it, KMS not started.
    shown = lab.show("kms-new")
    assert shown["exchange"]["updates"] == []
    states = {name: service["state"] for name, service in shown["services"].items()}
    assert set(states.values()) == {"stopped"}, states
    markdown = (remediation.reports / "remediation.md").read_text(encoding="utf-8")
    assert "⏸️ waiting for input" in markdown

    # Once update.exe has gone without a proven service pack: the services run again, not KMS.
    _update_exe_gone(lab, "kms-new")
    after = remediation.run(lab, *no_progress)
    assert after.returncode == 2, after.stdout[-3000:]
    (row,) = remediation.report()["pairs"]
    assert (row["outcome"], row["sp_outcome"]) == ("failed", "failed"), row
    assert row["decided_by"][0] == "update.exe ended: tasklist no longer lists it"
    assert "MSExchangeKMS was not started." in row["reason"]
    shown = lab.show("kms-new")
    states = {name: service["state"] for name, service in shown["services"].items()}
    assert states.pop("MSExchangeKMS") == "stopped"
    assert set(states.values()) == {"running"}, states
    assert shown["kms_database"] == database and database["intact"] is True
    assert len(shown["exchange"]["updates"]) == 1
