# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A KM Server that keeps its startup password on a disk (KB Q196129), on the lab's disk_mode.yml.

MasterPasswordPath is "A:\\" on both servers, and the lab's inventory carries no
kms_startup_password: the remediation and exchops.kms.exchange_service must start KMS with no
start parameter, and no password may appear on any command line they send (read back from the
-vvvv output, where every command line is shown).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import RunModule, RunningLab, module_lab, override, run_tool

disk_lab = module_lab("disk_lab", "disk_mode.yml")
KMS = "MSExchangeKMS"
SERVICE = "exchops.kms.exchange_service"
# The lab's startup password, kept on the disk in A: (exchlab fleet LAB_DEFAULTS, KB Q184420's).
PASSWORD = "HZGYYHACWLQACTI"
# -vvvv shows each command line sent; a start of KMS, with whatever follows it.
KMS_START = re.compile(r"\(sc start MSExchangeKMS([^)]*)\)")


def kms_starts(output: str) -> list[str]:
    """What followed `sc start MSExchangeKMS` on each command line sent (empty: nothing)."""
    return KMS_START.findall(output)


def test_the_inventory_of_a_disk_mode_fleet_gives_no_startup_password(
    disk_lab: RunningLab,
) -> None:
    inventory = yaml.safe_load(disk_lab.inventory.read_text(encoding="utf-8"))
    assert "kms_startup_password" not in inventory["all"]["vars"]
    assert PASSWORD not in disk_lab.inventory.read_text(encoding="utf-8")


def test_the_remediation_starts_a_disk_mode_kms_without_any_password(
    disk_lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    playbook = ["ansible-playbook", "exchops.kms.remediate_kms_move", "-i", str(disk_lab.inventory)]
    reports = ["-e", f"kms_report_dir={tmp_path / 'reports'}"]

    planned = run_tool([*playbook, *reports, "--check"], ansible_env, tmp_path)
    assert planned.returncode == 0, planned.stdout[-3000:]
    plan = json.loads((tmp_path / "reports" / "plan-kms-new.json").read_text(encoding="utf-8"))
    assert plan["steps"][3]["step"] == (
        "start MSExchangeKMS from its startup disk (MasterPasswordPath A:\\, KB Q196129), with no "
        "start parameter, and watch it for 15 s, only once the versions prove the service pack in "
        "place"
    )

    fixed = run_tool([*playbook, *reports, "-vvvv"], ansible_env, tmp_path)
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    output = fixed.stdout + fixed.stderr
    assert kms_starts(output) == [""]  # one start, with no start parameter
    assert PASSWORD not in output
    target = disk_lab.show("kms-new")
    assert target["services"][KMS]["state"] == "running"
    database = target["kms_database"]
    assert (database["intact"], database["stamp_build"]) == (True, "5.5.2650")
    report = json.loads((tmp_path / "reports" / "remediation.json").read_text(encoding="utf-8"))
    assert [(pair["target"], pair["outcome"]) for pair in report["pairs"]] == [
        ("kms-new", "remediated")
    ]


@pytest.mark.parametrize("warned", [False, True], ids=["no password", "a password given anyway"])
def test_exchange_service_restarts_a_disk_mode_kms_with_no_start_parameter(
    disk_lab: RunningLab, ansible_module: RunModule, tmp_path: Path, warned: bool
) -> None:
    args = f"name={KMS} state=restarted watch=1"
    extra = ["-vvvv"]
    if warned:
        # As an inventory that sets kms_startup_password for every host would pass it.
        args += " startup_password={{ kms_startup_password }}"
        extra += override(tmp_path, "kms-old", kms_startup_password=PASSWORD)
    result, results = ansible_module(disk_lab, "kms-old", SERVICE, args, *extra)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    restarted = results["kms-old"]
    assert (restarted["state"], restarted["password_source"], restarted["events"]) == (
        "running",
        "disk",
        [],
    )
    assert kms_starts(output) == [""]
    assert PASSWORD not in output + json.dumps(results)
    # Ansible shows warnings (wrapped to the terminal) and drops them from the stored result.
    shown = " ".join(output.split())
    warning = (
        "kms-old: MasterPasswordPath is 'A:\\' (HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer): "
        "KMS reads its startup password from the disk in that drive (KB Q196129), so "
        "startup_password was not passed to MSExchangeKMS. To type the password instead, clear "
        "the drive letter from MasterPasswordPath (KB Q196129)."
    )
    assert (warning in shown) is warned
    assert disk_lab.show("kms-old")["services"][KMS]["state"] == "running"


def test_the_facts_say_the_kms_reads_a_startup_disk(
    disk_lab: RunningLab, ansible_module: RunModule
) -> None:
    result, results = ansible_module(disk_lab, "kms-new", "exchops.kms.exchange_facts", "")
    assert result.returncode == 0, result.stdout[-3000:]
    kms = results["kms-new"]["ansible_facts"]["exchange"]["kms"]
    assert (kms["password_source"], kms["master_password_path"]) == ("disk", "A:\\")
