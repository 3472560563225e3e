# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.move_kms on the KB Q259906 fleet, one step after another as an operator runs them
(KB Q154531): backup on the old server, service_pack on the new one, verify after the restore.

The lab's kms-new already holds KM Server installed from the CD (RTM Kmserver.exe, MSExchangeKMS
stopped) and a KM database of its own: its two servers share no disk, so the old server's backup
cannot be restored onto kms-new here, and the verify step is proven against a copy of kms-new's
own database (and shown to refuse the old server's, which differs file by file).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import Remediation, RunningLab, lab_unchanged, run_tool

PLAYBOOK = "exchops.kms.move_kms"


def recap(stdout: str, host: str) -> dict[str, int]:
    match = re.search(rf"^{re.escape(host)}\s+:\s+(.*)$", stdout, re.MULTILINE)
    assert match, stdout[-2000:]
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}


def test_the_move_backs_up_reapplies_and_proves_each_step_changing_nothing_twice(
    lab_factory, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    lab: RunningLab = lab_factory("q259906.yml")
    copies = tmp_path / "kms-backups"
    playbook = ["ansible-playbook", PLAYBOOK, "-i", str(lab.inventory)]

    def step(name: str, *extra: str):
        return run_tool(
            [
                *playbook,
                "-e",
                f"kms_move_step={name}",
                "-e",
                f"kms_backup_copy_to={copies}",
                *extra,
            ],
            ansible_env,
            tmp_path,
        )

    # Check mode: the plan, and nothing changed on either server or the controller.
    with lab_unchanged(lab):
        planned = step("backup", "--check")
    assert planned.returncode == 0, planned.stdout[-3000:]
    assert "Would stop MSExchangeKMS on kms-old, back up its KM database" in planned.stdout
    assert not copies.exists()

    done = step("backup")
    assert done.returncode == 0, done.stdout[-3000:]
    old = lab.show("kms-old")
    assert old["services"]["MSExchangeKMS"]["state"] == "stopped"
    assert [backup["matches_database"] for backup in old["backups"]] == [True]
    (copy,) = (copies / "kms-old").iterdir()
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["backup_path"] == old["backups"][0]["path"]
    assert sorted(path.name for path in (copy / "KMSDATA").iterdir()) == [
        "Kmsmdb.edb",
        "edb.chk",
        "edb.log",
    ]
    assert "MSExchangeKMS stays stopped on kms-old" in done.stdout

    again = step("backup")
    assert again.returncode == 0, again.stdout[-3000:]
    assert recap(again.stdout, "kms-new")["changed"] == 0
    assert "still equals its copy" in again.stdout
    assert len(lab.show("kms-old")["backups"]) == 1

    # The service pack on the new server (its KM Server came from the CD), KMS left stopped.
    with lab_unchanged(lab):
        assert step("service_pack", "--check").returncode == 0
    reapplied = step("service_pack")
    assert reapplied.returncode == 0, reapplied.stdout[-3000:]
    new = lab.show("kms-new")
    assert new["services"]["MSExchangeKMS"]["state"] == "stopped"
    assert new["exchange"]["kms_binary_build"].startswith("5.5.2650")
    twice = step("service_pack")
    assert twice.returncode == 0, twice.stdout[-3000:]
    assert recap(twice.stdout, "kms-new")["changed"] == 0

    # Verify against the old server's copy: kms-new holds another database, named file by file.
    with lab_unchanged(lab):
        refused = step("verify")
    assert refused.returncode != 0
    assert "does not match the backup's manifest" in refused.stdout
    assert "Kmsmdb.edb differs: SHA256" in refused.stdout

    # Verify against a copy of kms-new's own database: the restore equals it, twice, changed=0.
    own = run_tool(
        [
            "ansible",
            "-i",
            str(lab.inventory),
            "kms-new",
            "-m",
            "exchops.kms.kms_backup",
            "-a",
            f"copy_to={tmp_path / 'own'}",
        ],
        ansible_env,
        tmp_path,
    )
    assert own.returncode == 0, own.stdout[-3000:]
    (own_manifest,) = (tmp_path / "own" / "kms-new").glob("*/manifest.json")
    for extra in (("--check",), (), ()):
        with lab_unchanged(lab):
            proven = step("verify", "-e", f"kms_move_manifest={own_manifest}", *extra)
        assert proven.returncode == 0, proven.stdout[-3000:]
        assert recap(proven.stdout, "kms-new")["changed"] == 0
        assert "matches the backup's manifest: the same 3 files, sizes and SHA256" in proven.stdout
        assert "original KM Server's startup password or disk (KB Q154531 step 8)" in proven.stdout


def test_a_new_server_on_another_service_pack_is_refused_before_anything_changes(
    lab_factory, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    lab: RunningLab = lab_factory("target_newer.yml")
    with lab_unchanged(lab):
        result = run_tool(
            [
                "ansible-playbook",
                PLAYBOOK,
                "-i",
                str(lab.inventory),
                "-e",
                "kms_move_step=backup",
                "-e",
                f"kms_backup_copy_to={tmp_path / 'copies'}",
            ],
            ansible_env,
            tmp_path,
        )
    assert result.returncode != 0
    assert "KM database moves only between servers of the same version and service pack" in (
        result.stdout
    )
    assert "Nothing was changed." in result.stdout
    assert not (tmp_path / "copies").exists()


def test_the_remediation_keeps_its_backup_on_the_controller_too_when_asked(
    lab_factory, tmp_path: Path, remediation: Remediation
) -> None:
    lab: RunningLab = lab_factory("q259906.yml")
    copies = tmp_path / "copies"
    result = remediation.run(lab, "-e", f"kms_backup_copy_to={copies}")
    assert result.returncode == 0, result.stdout[-3000:]
    (backup,) = lab.show("kms-new")["backups"]
    folder = copies / "kms-new" / backup["path"].rsplit("\\", 1)[-1]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["backup_path"] == backup["path"]
    assert sorted(path.name for path in (folder / "KMSDATA").iterdir()) == [
        "Kmsmdb.edb",
        "edb.chk",
        "edb.log",
    ]
    assert f"verified copy on the controller in {folder}" in result.stdout
