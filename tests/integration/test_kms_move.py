# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The KM Server move's own steps (KB Q154531) with the real `ansible` against the lab: the backup
on the old server with its second, verified copy on the controller (kms_backup copy_to), and the
verification of a restore on the new server (kms_backup verify_against), read back with `exchlab
show`, the lab's own files and the controller's folder.

The tests share one lab of the KB fleet: kms-old (KMS running) and kms-new (KMS stopped). Each
server is backed up once, by the first test that needs its backup, so they pass alone and in any
order. What an operator does by hand (restoring Kmsdata) is done here over WinRM with pywinrm and
cmd.exe tools, as an operator would at the server's console.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import winrm
from conftest import RunModule, RunningLab, lab_session, lab_unchanged, module_lab

KMSDATA = "C:\\EXCHSRVR\\KMSDATA"
BACKUP = "exchops.kms.kms_backup"
WITH_PASSWORD = "startup_password={{ kms_startup_password }}"
FETCH_SUFFIX = ".exchops-fetch.b64"

pytestmark = pytest.mark.filterwarnings(
    "ignore:'pywinrm' will use an environment variable:DeprecationWarning"
)

move_lab = module_lab("move_lab", "q259906.yml")


def host_files(lab: RunningLab, host: str) -> dict[str, str]:
    """Every file of the host (path -> SHA256), from the lab's own state, not through a command
    the plugins run."""
    return {entry.path: entry.sha256() for entry in lab.host_state(host).fs.all_files()}


def kmsdata_sha256(lab: RunningLab, host: str) -> dict[str, str]:
    prefix = KMSDATA.upper() + "\\"
    return {
        path[len(prefix) :]: digest
        for path, digest in host_files(lab, host).items()
        if path.upper().startswith(prefix)
    }


def operator(lab: RunningLab, host: str, command: str) -> winrm.Response:
    """One cmd.exe line on a lab host, as the operator runs it (not through the plugins)."""
    return lab_session(lab, host).run_cmd(command)


def verify_args(manifest: list[dict]) -> str:
    return json.dumps({"verify_against": manifest})


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The controller folder of the module's copies (kept across its tests)."""
    return tmp_path_factory.mktemp("controller") / "kms-backups"


@pytest.fixture(scope="module")
def backups() -> dict[str, dict]:
    """Each server's one backup of this module, by host: taken by the first test that needs it,
    whichever that is, so that every test passes alone and in any order."""
    return {}


def backup_once(backups: dict[str, dict], host: str, run: Callable[[], tuple]) -> dict:
    if host not in backups:
        result, results = run()
        assert result.returncode == 0, result.stdout + result.stderr
        backups[host] = results[host]
    return backups[host]


@pytest.fixture
def old_copy(
    move_lab: RunningLab, ansible_module: RunModule, controller: Path, backups: dict[str, dict]
) -> dict:
    """The backup of kms-old with its verified copy on the controller."""
    arguments = f"{WITH_PASSWORD} copy_to={controller}"
    return backup_once(
        backups, "kms-old", lambda: ansible_module(move_lab, "kms-old", BACKUP, arguments)
    )


@pytest.fixture
def new_backup(move_lab: RunningLab, ansible_module: RunModule, backups: dict[str, dict]) -> dict:
    """The backup of kms-new (KMS stopped, so no password is needed)."""
    return backup_once(backups, "kms-new", lambda: ansible_module(move_lab, "kms-new", BACKUP, ""))


def test_the_old_servers_backup_arrives_on_the_controller_with_matching_sha256(
    move_lab: RunningLab, controller: Path, old_copy: dict
) -> None:
    answer = old_copy
    assert answer["changed"] is True
    copy = answer["controller_copy"]
    folder = controller / "kms-old" / answer["backup_path"].rsplit("\\", 1)[-1]
    assert copy["path"] == str(folder)
    assert (copy["files"], copy["bytes"], copy["verification"]) == (3, 3162112, "sha256")

    live = kmsdata_sha256(move_lab, "kms-old")
    fetched = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in (folder / "KMSDATA").iterdir()
    }
    assert fetched == live
    assert (folder / "KMSDATA" / "Kmsmdb.edb").stat().st_size == 2105344
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["host"] == "kms-old"
    assert manifest["backup_path"] == answer["backup_path"]
    assert manifest["manifest"] == answer["manifest"]
    # The gate after the move reads the build that last ran the database from this file.
    assert manifest["kms_binary_build"] == answer["kms_binary_build"]
    assert manifest["kms_binary_build"]
    # Nothing half-made beside it, and no Base64 copy of the database left on the host.
    assert sorted(path.name for path in folder.parent.iterdir()) == [folder.name]
    assert not [path for path in host_files(move_lab, "kms-old") if path.endswith(FETCH_SUFFIX)]
    shown = move_lab.show("kms-old")
    assert shown["services"]["MSExchangeKMS"]["state"] == "running"
    assert [backup["matches_database"] for backup in shown["backups"]] == [True]


def test_verify_only_refuses_a_running_kms_and_changes_nothing(
    move_lab: RunningLab, ansible_module: RunModule, old_copy: dict
) -> None:
    with lab_unchanged(move_lab, "kms-old"):
        result, results = ansible_module(
            move_lab, "kms-old", BACKUP, verify_args(old_copy["manifest"])
        )
    assert result.returncode != 0
    answer = results["kms-old"]
    assert answer["changed"] is False
    assert answer["msg"].startswith(
        "kms-old: MSExchangeKMS is RUNNING, so C:\\EXCHSRVR\\KMSDATA is not checked"
    )
    assert answer["msg"].endswith("Nothing was changed.")


def test_verify_only_fails_naming_the_files_of_a_kmsdata_that_is_not_the_backup(
    move_lab: RunningLab, ansible_module: RunModule, old_copy: dict
) -> None:
    with lab_unchanged(move_lab, "kms-new"):
        result, results = ansible_module(
            move_lab, "kms-new", BACKUP, verify_args(old_copy["manifest"])
        )
    assert result.returncode != 0
    answer = results["kms-new"]
    assert answer["changed"] is False
    message = answer["msg"]
    assert message.startswith(
        "kms-new: the KM database folder C:\\EXCHSRVR\\KMSDATA does not match the backup's "
        "manifest: "
    )
    # The two servers' databases differ file by file (each its own Kmsmdb.edb and logs).
    assert "Kmsmdb.edb differs: SHA256 " in message
    assert "Do not start MSExchangeKMS on it" in message
    assert message.endswith("Nothing was changed.")


def test_verify_only_passes_on_an_intact_kmsdata_and_a_second_run_changes_nothing(
    move_lab: RunningLab, ansible_module: RunModule, new_backup: dict
) -> None:
    arguments = verify_args(new_backup["manifest"])
    for extra in ((), ("--check",), ()):
        with lab_unchanged(move_lab, "kms-new"):
            result, results = ansible_module(move_lab, "kms-new", BACKUP, arguments, *extra)
        assert result.returncode == 0, result.stdout + result.stderr
        answer = results["kms-new"]
        assert answer["changed"] is False
        assert answer["msg"] == (
            "C:\\EXCHSRVR\\KMSDATA matches the backup's manifest: the same 3 files, sizes and "
            "SHA256. MSExchangeKMS is stopped and was not touched."
        )
        assert (answer["verification"], answer["files"], answer["bytes"]) == (
            "sha256",
            3,
            3162112,
        )
        assert answer["manifest"] == new_backup["manifest"]


def test_verify_only_names_a_changed_file_and_proves_the_restore_that_fixes_it(
    move_lab: RunningLab, ansible_module: RunModule, new_backup: dict
) -> None:
    arguments = verify_args(new_backup["manifest"])
    damaged = operator(move_lab, "kms-new", f"copy /y {KMSDATA}\\edb.chk {KMSDATA}\\edb.log")
    assert damaged.status_code == 0, damaged.std_out + damaged.std_err
    with lab_unchanged(move_lab, "kms-new"):
        result, results = ansible_module(move_lab, "kms-new", BACKUP, arguments)
    assert result.returncode != 0
    message = results["kms-new"]["msg"]
    assert "does not match the backup's manifest: edb.log is " in message
    assert "Kmsmdb.edb" not in message
    assert message.endswith("Nothing was changed.")

    # The restore, as Q190713 and Q198814 describe it: KMS stopped, the files in Kmsdata deleted,
    # the backup copied back.
    backup = new_backup["backup_path"]
    restored = operator(
        move_lab, "kms-new", f'del /q {KMSDATA}\\* & xcopy "{backup}" "{KMSDATA}" /E /I /H /K /Y /Q'
    )
    assert restored.status_code == 0, restored.std_out + restored.std_err
    result, results = ansible_module(move_lab, "kms-new", BACKUP, arguments)
    assert result.returncode == 0, result.stdout + result.stderr
    assert results["kms-new"]["changed"] is False
    assert {
        name.casefold(): digest for name, digest in kmsdata_sha256(move_lab, "kms-new").items()
    } == {entry["name"].casefold(): entry["sha256"] for entry in new_backup["manifest"]}
