# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.kms_backup with the real `ansible` command against the lab.

Each test reads the host back with `exchlab show`: the backup folder (`backups`, with
`matches_database` computed by the lab from its own files), the KM database (`intact`), the
state of MSExchangeKMS and the event log.
"""

from __future__ import annotations

from conftest import RunModule, RunningLab, lab_unchanged

KMSDATA = "C:\\EXCHSRVR\\KMSDATA"
STARTUP_PASSWORD = "HZGYYHACWLQACTI"  # the lab's kms_startup_password (KB Q184420's example)
ACCOUNT_PASSWORD = "Lab-Passw0rd!"  # the lab's ansible_password
WITH_PASSWORD = "startup_password={{ kms_startup_password }}"
BACKUP = "exchops.kms.kms_backup"


def assert_no_secret(text: str) -> None:
    assert STARTUP_PASSWORD not in text
    assert ACCOUNT_PASSWORD not in text


def test_the_kb_target_with_kms_stopped_is_copied_and_verified_by_sha256(
    kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    before = kb_lab.show("kms-new")
    result, results = ansible_module(kb_lab, "kms-new", BACKUP, "")
    assert result.returncode == 0, result.stdout + result.stderr
    answer = results["kms-new"]

    assert answer["changed"] is True
    assert answer["database_path"] == KMSDATA
    assert answer["backup_path"].startswith(KMSDATA + ".backup-")
    assert len(answer["backup_path"]) == len(KMSDATA + ".backup-YYYYMMDD-HHMMSS")
    assert (answer["kms_state_before"], answer["kms_state_after"]) == ("stopped", "stopped")
    assert answer["kms_stop_required"] is False
    assert answer["verification"] == "sha256"
    assert (answer["files"], answer["bytes"]) == (3, 3162112)
    manifest = {entry["name"]: entry for entry in answer["manifest"]}
    assert sorted(manifest) == ["Kmsmdb.edb", "edb.chk", "edb.log"]
    assert {
        name: entry["sha256"] for name, entry in manifest.items()
    } == kb_lab.kms_database_sha256("kms-new")
    assert sum(entry["size"] for entry in manifest.values()) == answer["bytes"]

    after = kb_lab.show("kms-new")
    assert after["backups"] == [
        {"path": answer["backup_path"], "files": 3, "bytes": 3162112, "matches_database": True}
    ]
    assert after["kms_database"] == before["kms_database"]
    assert after["kms_database"]["intact"] is True
    assert after["services"] == before["services"]
    assert after["events"] == before["events"]


def test_the_kb_source_with_kms_running_is_stopped_copied_and_started_again(
    kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    before = kb_lab.show("kms-old")
    assert before["services"]["MSExchangeKMS"]["state"] == "running"
    result, results = ansible_module(kb_lab, "kms-old", BACKUP, WITH_PASSWORD, "-vvvv")
    assert result.returncode == 0, result.stdout + result.stderr
    answer = results["kms-old"]

    assert answer["kms_stop_required"] is True
    assert (answer["kms_state_before"], answer["kms_state_after"]) == ("running", "running")
    assert {
        entry["name"]: entry["sha256"] for entry in answer["manifest"]
    } == kb_lab.kms_database_sha256("kms-old")
    after = kb_lab.show("kms-old")
    assert after["services"]["MSExchangeKMS"]["state"] == "running"
    assert after["services"]["MSExchangeKMS"]["pid"] != before["services"]["MSExchangeKMS"]["pid"]
    assert [backup["path"] for backup in after["backups"] if backup["matches_database"]] == [
        answer["backup_path"]
    ]
    assert after["kms_database"]["intact"] is True
    assert after["events"] == before["events"]  # no 5057 / 5058 / 5389 from the restart
    # -vvvv shows every command line, the sc start one masked.
    output = result.stdout + result.stderr
    assert 'sc start MSExchangeKMS "********"' in output
    assert_no_secret(output)
    assert_no_secret(str(answer))


def test_check_mode_reports_the_plan_and_changes_nothing_on_the_host(
    backup_faults_lab: RunningLab, ansible_module: RunModule
) -> None:
    with lab_unchanged(backup_faults_lab, "kms-readonly") as shown:
        result, results = ansible_module(
            backup_faults_lab, "kms-readonly", BACKUP, WITH_PASSWORD, "--check"
        )
    assert result.returncode == 0, result.stdout + result.stderr

    answer = results["kms-readonly"]
    assert answer["changed"] is True
    assert answer["kms_stop_required"] is True
    assert [entry["name"] for entry in answer["manifest"]] == ["edb.chk", "edb.log", "Kmsmdb.edb"]
    assert "sha256" not in answer["manifest"][0]
    assert answer["msg"].startswith("Would stop MSExchangeKMS, copy 3 files, 3162112 bytes")
    before, after = shown.before["kms-readonly"], shown.after["kms-readonly"]
    assert after["requests"]["commands"] > before["requests"]["commands"]  # it did read


def test_an_existing_destination_is_refused_before_anything_changes(
    backup_faults_lab: RunningLab, ansible_module: RunModule
) -> None:
    with lab_unchanged(backup_faults_lab, "kms-readonly"):
        result, results = ansible_module(
            backup_faults_lab,
            "kms-readonly",
            BACKUP,
            f"{WITH_PASSWORD} destination=C:\\EXCHSRVR\\BIN",
        )
    assert result.returncode != 0
    answer = results["kms-readonly"]
    assert answer["changed"] is False
    assert answer["msg"].startswith("kms-readonly: destination C:\\EXCHSRVR\\BIN already exists.")
    assert answer["msg"].endswith("Nothing was changed.")


def test_running_kms_without_a_startup_password_is_refused_before_anything_changes(
    backup_faults_lab: RunningLab, ansible_module: RunModule
) -> None:
    with lab_unchanged(backup_faults_lab, "kms-readonly") as shown:
        result, results = ansible_module(backup_faults_lab, "kms-readonly", BACKUP, "")
    assert result.returncode != 0
    answer = results["kms-readonly"]
    assert answer["changed"] is False
    assert "MSExchangeKMS is running and startup_password is not set" in answer["msg"]
    assert answer["msg"].endswith("Nothing was changed.")
    assert shown.after["kms-readonly"]["services"]["MSExchangeKMS"]["state"] == "running"


def test_a_full_disk_is_refused_before_kms_is_stopped(
    backup_faults_lab: RunningLab, ansible_module: RunModule
) -> None:
    full = backup_faults_lab.faulted("kms-full-early", "disk_full=true", clear=["disk_full=false"])
    with full, lab_unchanged(backup_faults_lab, "kms-full-early") as shown:
        result, results = ansible_module(backup_faults_lab, "kms-full-early", BACKUP, WITH_PASSWORD)
    assert result.returncode != 0
    answer = results["kms-full-early"]
    assert answer["changed"] is False
    assert "kms-full-early: drive C: has 10240 bytes free, but the copy needs 3162112 bytes" in (
        answer["msg"]
    )
    assert answer["msg"].endswith("Nothing was changed.")
    assert shown.after["kms-full-early"]["services"]["MSExchangeKMS"]["state"] == "running"


def test_a_disk_that_fills_during_the_copy_fails_naming_the_partial_copy_and_restarts_kms(
    backup_faults_lab: RunningLab, ansible_module: RunModule
) -> None:
    host = "kms-full-late"
    before = backup_faults_lab.show(host)
    # Every free-space check passes; then another writer leaves room for edb.chk and edb.log
    # (1056768 bytes), not for Kmsmdb.edb, so xcopy fails half-way.
    filling = backup_faults_lab.faulted(
        host, "disk_fills_after_bytes=1100000", clear=["disk_fills_after_bytes=-1"]
    )
    with filling:
        result, results = ansible_module(backup_faults_lab, host, BACKUP, WITH_PASSWORD)
    assert result.returncode != 0
    answer = results[host]
    message = answer["msg"]
    assert_no_secret(message)
    path = answer["backup_path"]
    assert path.startswith(KMSDATA + ".backup-")
    assert message.startswith(
        f"{host}: xcopy could not copy {KMSDATA} to {path}: Insufficient disk space (exit code 4"
    )
    assert "it copied 2 of 3 files" in message
    assert (
        f"The partial copy is in {path} (2 of 3 files, 1056768 of 3162112 bytes): it is NOT a "
        "usable backup" in message
    )
    assert f"The KM database in {KMSDATA} was only read and still holds its 3 files" in message
    assert message.endswith("MSExchangeKMS was RUNNING before the backup and is RUNNING again.")
    assert answer["changed"] is True
    assert (answer["kms_state_before"], answer["kms_state_after"]) == ("running", "running")

    after = backup_faults_lab.show(host)
    assert after["kms_database"]["intact"] is True
    assert after["kms_database"] == before["kms_database"]
    assert after["services"]["MSExchangeKMS"]["state"] == "running"
    assert after["backups"] == []  # the partial copy has no Kmsmdb.edb
    assert after["events"] == before["events"]


def test_a_refused_startup_password_leaves_a_verified_backup_and_says_kms_is_stopped(
    backup_faults_lab: RunningLab, ansible_module: RunModule
) -> None:
    refusing = ("wrong_kms_password=true",)
    with backup_faults_lab.faulted("kms-badpw", *refusing, clear=["wrong_kms_password=false"]):
        result, results = ansible_module(backup_faults_lab, "kms-badpw", BACKUP, WITH_PASSWORD)
    assert result.returncode != 0
    answer = results["kms-badpw"]
    message = answer["msg"]
    assert_no_secret(message + str(answer))
    assert f"kms-badpw: the backup in {answer['backup_path']} is complete and verified" in message
    # The restart reads the new KMS events once: the wrong password is named by its event 5057.
    assert (
        "MSExchangeKMS was RUNNING before the backup and did not start again: MSExchangeKMS "
        "started but was STOPPED again right after sc start: it logged event 5057 (record "
    ) in message
    assert message.endswith(
        "the KMS startup password was wrong or missing (KB Q184420). Check kms_startup_password "
        "(case-sensitive, KB Q190699): it must be the startup password of the KM Server that "
        "created this KM database. After a move or a restore that is the ORIGINAL KM Server's "
        "password or disk, not the one shown when KM Server was installed on this server (KB "
        "Q154531, Q198814, Q155216). Set startup_password to it."
    )
    assert (answer["kms_state_before"], answer["kms_state_after"]) == ("running", "stopped")
    assert len(answer["manifest"]) == 3
    after = backup_faults_lab.show("kms-badpw")
    assert after["services"]["MSExchangeKMS"]["state"] == "stopped"
    assert after["kms_database"]["intact"] is True
    assert [b["path"] for b in after["backups"] if b["matches_database"]] == [answer["backup_path"]]
    assert 5057 in [event["id"] for event in after["events"]]


def test_a_windows_2000_host_without_certutil_is_verified_by_sizes_with_a_warning(
    backup_faults_lab: RunningLab, ansible_module: RunModule
) -> None:
    result, results = ansible_module(backup_faults_lab, "kms-win2000", BACKUP, "")
    assert result.returncode == 0, result.stdout + result.stderr
    answer = results["kms-win2000"]
    assert answer["verification"] == "sizes"
    assert all(entry["sha256"] is None for entry in answer["manifest"])
    # Ansible shows warnings and drops them from the stored result.
    assert "kms-win2000: 'certutil' is not available on this host" in result.stdout + result.stderr
    after = backup_faults_lab.show("kms-win2000")
    assert [b["matches_database"] for b in after["backups"]] == [True]
