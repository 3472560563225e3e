# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.remediate_kms_move on the KB Q259906 fleet, as an operator runs it."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import run_tool


def test_the_kb_move_is_planned_then_fixed_once_and_left_alone_after(
    lab_factory, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    lab = lab_factory("q259906.yml")
    secrets = yaml.safe_load(lab.inventory.read_text(encoding="utf-8"))["all"]["vars"]
    playbook = ["ansible-playbook", "exchops.kms.remediate_kms_move", "-i", str(lab.inventory)]
    reports = ["-e", f"kms_report_dir={tmp_path / 'reports'}"]

    before = lab.show()
    planned = run_tool([*playbook, *reports, "--check", "--diff"], ansible_env, tmp_path)
    assert planned.returncode == 0, planned.stdout
    assert lab.show() == {**before, **{h: {**before[h], "requests": lab.show()[h]["requests"]} for h in before}}
    plan = json.loads((tmp_path / "reports" / "plan-kms-new.json").read_text(encoding="utf-8"))
    assert (plan["kms_binary_before"], plan["media_build"]) == ("5.5.1960.8", "5.5.2650.0")
    assert (plan["build_after"], plan["kms_binary_after"]) == ("5.5.2650.0", "5.5.2650.0")
    # --diff: the service pack step's predicted builds, before and after.
    assert "--- before: kms-new: before" in planned.stdout, planned.stdout
    assert "+++ after: kms-new: after (predicted)" in planned.stdout
    assert "-Kmserver.exe: 5.5.1960.8 (5.5 RTM)" in planned.stdout
    assert "+Kmserver.exe: 5.5.2650 (5.5 SP3)" in planned.stdout
    assert [step["step"].split()[0] for step in plan["steps"]] == ["back", "stop", "reapply", "start", "check"]

    fixed = run_tool([*playbook, "-vvvv"], ansible_env, tmp_path)
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

    again = run_tool(playbook, ansible_env, tmp_path)
    assert again.returncode == 0
    assert "changed=0" in again.stdout and "failed=0" in again.stdout
    assert len(lab.show("kms-new")["backups"]) == 1

    gate = run_tool(["ansible-playbook", "exchops.kms.check_kms_move", "-i", str(lab.inventory), *reports], ansible_env, tmp_path)
    assert gate.returncode == 0, gate.stdout[-2000:]
