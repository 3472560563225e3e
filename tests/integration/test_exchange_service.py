# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.exchange_service with the real `ansible` command against the lab.

Each test sets the scene in a fleet (or with `exchlab fault`), runs the module, and reads the
result back both from Ansible (the tree callback's per-host JSON) and from the host
(`exchlab show`): the service states, the event log, the KM database, the request counts.
"""

from __future__ import annotations

from pathlib import Path

from conftest import LabFactory, RunModule, RunningLab, lab_unchanged, override

KMS = "MSExchangeKMS"
# The lab's KMS startup password (exchlab fleet LAB_DEFAULTS: the example of KB Q184420).
PASSWORD = "HZGYYHACWLQACTI"
FROM_INVENTORY = "startup_password={{ kms_startup_password }}"
SERVICE = "exchops.kms.exchange_service"


def kms_state(lab: RunningLab, host: str) -> str:
    return lab.show(host)["services"][KMS]["state"]


# ---------------------------------------------------------------------------------------------
# matched.yml: kms-old has KMS stopped (SP3 binaries), kms-new has it running


def test_kms_starts_with_the_inventory_password_stays_up_and_a_second_run_changes_nothing(
    matched_lab: RunningLab, ansible_module: RunModule
) -> None:
    # Stopped as the fleet starts it; a test before this one (password masking) restarts it.
    stop = ansible_module(matched_lab, "kms-old", SERVICE, f"name={KMS} state=stopped")[0]
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert kms_state(matched_lab, "kms-old") == "stopped"
    events_before = matched_lab.show("kms-old")["events"]

    args = f"name={KMS} state=started {FROM_INVENTORY}"  # the default watch: 15 s
    result, results = ansible_module(matched_lab, "kms-old", SERVICE, args)
    assert result.returncode == 0, result.stdout + result.stderr
    started = results["kms-old"]
    assert started["changed"] is True
    assert (started["name"], started["previous_state"], started["state"]) == (
        KMS,
        "stopped",
        "running",
    )
    assert started["events"] == []
    assert started["dependencies_started"] == []
    assert kms_state(matched_lab, "kms-old") == "running"
    assert matched_lab.show("kms-old")["events"] == events_before
    assert matched_lab.show("kms-old")["kms_database"]["intact"] is True

    commands = matched_lab.show("kms-old")["requests"]["commands"]
    result, results = ansible_module(matched_lab, "kms-old", SERVICE, args)
    assert result.returncode == 0, result.stdout
    assert results["kms-old"]["changed"] is False
    assert results["kms-old"]["state"] == "running"
    # Nothing run but the query: one command line (sc query, sc qc, the KMServer key).
    assert matched_lab.show("kms-old")["requests"]["commands"] - commands == 1


def test_kms_stops_and_restarts_and_the_directory_takes_its_dependents_along(
    matched_lab: RunningLab, ansible_module: RunModule
) -> None:
    result, results = ansible_module(matched_lab, "kms-new", SERVICE, f"name={KMS} state=stopped")
    assert result.returncode == 0, result.stdout
    assert (results["kms-new"]["changed"], results["kms-new"]["state"]) == (True, "stopped")
    assert results["kms-new"]["dependents_stopped"] == []
    assert kms_state(matched_lab, "kms-new") == "stopped"

    result, results = ansible_module(matched_lab, "kms-new", SERVICE, f"name={KMS} state=stopped")
    assert results["kms-new"]["changed"] is False

    restart = f"name={KMS} state=restarted watch=2 {FROM_INVENTORY}"
    for previous in ("stopped", "running"):
        result, results = ansible_module(matched_lab, "kms-new", SERVICE, restart)
        assert result.returncode == 0, result.stdout
        assert results["kms-new"]["changed"] is True
        assert (results["kms-new"]["previous_state"], results["kms-new"]["state"]) == (
            previous,
            "running",
        )
        assert kms_state(matched_lab, "kms-new") == "running"

    # Stopping the Directory stops KMS (it depends on MSExchangeDS, KB Q143380) ...
    result, results = ansible_module(
        matched_lab, "kms-new", SERVICE, "name=MSExchangeDS state=stopped"
    )
    assert result.returncode == 0, result.stdout
    stopped = results["kms-new"]["dependents_stopped"]
    assert KMS in stopped and "MSExchangeIS" in stopped
    assert "MSExchangeDS" not in stopped
    services = matched_lab.show("kms-new")["services"]
    assert (services["MSExchangeDS"]["state"], services[KMS]["state"]) == ("stopped", "stopped")

    # ... and starting KMS has the service manager start the Directory first.
    start = f"name={KMS} state=started watch=1 {FROM_INVENTORY}"
    result, results = ansible_module(matched_lab, "kms-new", SERVICE, start)
    assert result.returncode == 0, result.stdout
    assert results["kms-new"]["dependencies_started"] == ["MSExchangeDS"]
    assert matched_lab.show("kms-new")["services"]["MSExchangeDS"]["state"] == "running"


def test_check_mode_predicts_the_change_and_changes_nothing(
    matched_lab: RunningLab, ansible_module: RunModule
) -> None:
    start = f"name={KMS} state=started watch=0 {FROM_INVENTORY}"
    stop = f"name={KMS} state=stopped"
    result, results = ansible_module(matched_lab, "kms-new", SERVICE, start)
    assert result.returncode == 0, result.stdout

    with lab_unchanged(matched_lab, "kms-new") as shown:
        assert shown.before["kms-new"]["services"][KMS]["state"] == "running"
        result, results = ansible_module(matched_lab, "kms-new", SERVICE, stop, "--check", "--diff")
        assert result.returncode == 0, result.stdout
        assert results["kms-new"]["changed"] is True
        assert (results["kms-new"]["previous_state"], results["kms-new"]["state"]) == (
            "running",
            "stopped",
        )
        # --diff prints the state before and after (the tree callback keeps no diff).
        assert '-    "state": "running"' in result.stdout
        assert '+    "state": "stopped"' in result.stdout
        restart = f"name={KMS} state=restarted {FROM_INVENTORY}"
        result, results = ansible_module(matched_lab, "kms-new", SERVICE, restart, "--check")
        assert result.returncode == 0, result.stdout
        assert results["kms-new"]["changed"] is True


def test_no_password_reaches_the_output_even_at_vvvv(
    matched_lab: RunningLab, kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    runs = [
        ansible_module(
            matched_lab,
            "kms-old",
            SERVICE,
            f"name={KMS} state=restarted watch=1 {FROM_INVENTORY}",
            "-vvvv",
        ),
        ansible_module(
            kb_lab,
            "kms-new",
            SERVICE,
            f"name={KMS} state=started watch=1 {FROM_INVENTORY}",
            "-vvvv",
        ),
    ]
    assert runs[0][0].returncode == 0, runs[0][0].stdout
    assert runs[1][0].returncode != 0  # event 5389: the failure path is covered too
    for result, results in runs:
        output = result.stdout + result.stderr + repr(results)
        assert 'sc start MSExchangeKMS "********"' in output  # -vvvv shows the commands, masked
        assert PASSWORD not in output
        assert "Lab-Passw0rd!" not in output  # nor the WinRM account's password


# ---------------------------------------------------------------------------------------------
# q259906.yml: kms-new has RTM Kmserver.exe under a database last run by SP3


def test_the_kb_target_fails_naming_event_5389_its_meaning_and_the_fix(
    kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    database = kb_lab.show("kms-new")["kms_database"]
    args = f"name={KMS} state=started watch=2 {FROM_INVENTORY}"
    result, results = ansible_module(kb_lab, "kms-new", SERVICE, args)
    assert result.returncode != 0
    failed = results["kms-new"]
    message = failed["msg"]
    assert message.startswith("kms-new: MSExchangeKMS started but was STOPPED again")
    assert "event 5389" in message and "KB Q259906" in message
    assert "reapply the Exchange service pack" in message
    assert "exchops.kms.remediate_kms_move" in message
    assert [(event["id"], event["source"]) for event in failed["events"]] == [(5389, KMS)]
    assert failed["state"] == "stopped"
    # The fleet's old 5389 is not among the new events: only records after the start count.
    assert failed["events"][0]["record"] > min(
        event["record"] for event in kb_lab.show("kms-new")["events"]
    )
    assert kms_state(kb_lab, "kms-new") == "stopped"
    assert kb_lab.show("kms-new")["kms_database"] == database  # intact, stamp unchanged


def test_a_wrong_startup_password_fails_naming_event_5057(
    kb_lab: RunningLab, ansible_module: RunModule, tmp_path: Path
) -> None:
    wrong = override(tmp_path, "kms-old", kms_startup_password="NOTTHEPASSWORD")
    args = f"name={KMS} state=restarted watch=1 {FROM_INVENTORY}"
    result, results = ansible_module(kb_lab, "kms-old", SERVICE, args, *wrong)
    assert result.returncode != 0
    message = results["kms-old"]["msg"]
    assert "event 5057" in message and "startup password was wrong or missing" in message
    assert "Check kms_startup_password" in message
    assert "the ORIGINAL KM Server's password or disk" in message
    assert "written down when KM Server was installed" not in message
    assert "NOTTHEPASSWORD" not in result.stdout + result.stderr + repr(results)
    assert kms_state(kb_lab, "kms-old") == "stopped"
    assert kb_lab.show("kms-old")["kms_database"]["intact"] is True

    # The lab's fault: KMS refuses even the right password.
    with kb_lab.faulted("kms-old", "wrong_kms_password=true", clear=["wrong_kms_password=false"]):
        result, results = ansible_module(kb_lab, "kms-old", SERVICE, args)
    assert result.returncode != 0
    assert "event 5057" in results["kms-old"]["msg"]

    result, results = ansible_module(kb_lab, "kms-old", SERVICE, args)
    assert result.returncode == 0, result.stdout
    assert kms_state(kb_lab, "kms-old") == "running"


def test_starting_kms_without_a_password_is_refused_once_the_host_shows_it_needs_one(
    kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    before = kb_lab.show("kms-new")
    result, results = ansible_module(kb_lab, "kms-new", SERVICE, f"name={KMS} state=started")
    assert result.returncode != 0
    assert results["kms-new"]["changed"] is False
    # MasterPasswordPath is empty on the lab's hosts: the password is typed (KB Q196129).
    assert results["kms-new"]["msg"] == (
        "kms-new: state=started for MSExchangeKMS needs startup_password: MasterPasswordPath is "
        "empty (HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer), so KMS takes its startup password "
        "as its start parameter (KB Q196129, Q184420), decrypts the KM database with it and "
        "without it exits with event 5057. Set startup_password (for example to the vaulted "
        "variable kms_startup_password) to the startup password of the KM Server that created "
        "this KM database: after a move or a restore, the ORIGINAL KM Server's (KB Q154531, "
        "Q198814). Nothing was changed."
    )
    after = kb_lab.show("kms-new")
    # One read (sc query, sc qc and the KMServer key in one command line), no change.
    assert after["requests"]["commands"] - before["requests"]["commands"] == 1
    assert after["services"] == before["services"]


def test_a_service_that_does_not_exist_fails_with_nothing_changed(
    kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    result, results = ansible_module(kb_lab, "kms-new", SERVICE, "name=MSExchangeXYZ state=stopped")
    assert result.returncode != 0
    assert results["kms-new"]["msg"].startswith("kms-new: there is no service named MSExchangeXYZ")
    assert results["kms-new"]["msg"].endswith("Nothing was changed.")


def test_a_slow_start_is_polled_until_kms_runs(
    kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    stopped = ansible_module(kb_lab, "kms-old", SERVICE, f"name={KMS} state=stopped")[0]
    assert stopped.returncode == 0, stopped.stdout
    args = f"name={KMS} state=started watch=1 {FROM_INVENTORY}"
    with kb_lab.faulted("kms-old", "pending_polls=3", clear=["pending_polls=0"]):
        result, results = ansible_module(kb_lab, "kms-old", SERVICE, args, "-vv")
    assert result.returncode == 0, result.stdout
    assert results["kms-old"]["state"] == "running"
    assert "MSExchangeKMS is start_pending" in result.stdout  # the -vv progress lines


# ---------------------------------------------------------------------------------------------
# service_faults.yml


def test_a_stop_that_hangs_fails_naming_stop_pending(
    service_faults_lab: RunningLab, ansible_module: RunModule
) -> None:
    result, results = ansible_module(
        service_faults_lab, "kms-hangs", SERVICE, f"name={KMS} state=stopped timeout=4"
    )
    assert result.returncode != 0
    failed = results["kms-hangs"]
    assert failed["msg"].startswith(
        "kms-hangs: MSExchangeKMS is still STOP_PENDING 4 s after sc stop (timeout 4 s)"
    )
    assert "offline backup of the KM database" in failed["msg"]
    assert (failed["changed"], failed["state"]) == (True, "stop_pending")
    assert kms_state(service_faults_lab, "kms-hangs") == "stop_pending"
    assert service_faults_lab.show("kms-hangs")["kms_database"]["intact"] is True


def test_without_wmic_kms_is_watched_by_state_alone_with_a_warning(
    service_faults_lab: RunningLab, ansible_module: RunModule
) -> None:
    args = f"name={KMS} state=started watch=2 {FROM_INVENTORY}"
    result, results = ansible_module(service_faults_lab, "kms-win2000", SERVICE, args)
    assert result.returncode == 0, result.stdout
    assert results["kms-win2000"]["state"] == "running"
    assert results["kms-win2000"]["events"] == []
    assert "'wmic' is not available on this host" in result.stdout + result.stderr
    assert kms_state(service_faults_lab, "kms-win2000") == "running"


# ---------------------------------------------------------------------------------------------
# Exchange 2000 with a damaged KM database: event 5085, and KMS keeps running (KB 818952)

E2K_DAMAGED = """
description: Exchange 2000 SP3 whose KM database is damaged (KB 818952).
lab: {os: "2003"}
pairs:
  - source:
      name: e2k-old
      exchange: {version: "2000", sp: 3}
      kms: {state: stopped, database_stamp: "6.0.6249"}
    target:
      name: e2k-new
      exchange: {version: "2000", sp: 3}
      kms: {state: stopped, database_stamp: "6.0.6249", database_corrupt: true}
"""


def test_a_start_that_logs_5085_fails_although_kms_keeps_running(
    lab_factory: LabFactory, ansible_module: RunModule, tmp_path: Path
) -> None:
    fleet = tmp_path / "e2k_damaged.yml"
    fleet.write_text(E2K_DAMAGED, encoding="utf-8")
    lab = lab_factory(str(fleet))
    args = f"name={KMS} state=started watch=1 {FROM_INVENTORY}"
    result, results = ansible_module(lab, "e2k-new", SERVICE, args)
    assert result.returncode != 0
    message = results["e2k-new"]["msg"]
    # KB 818952: "The service started, but Admin/User can not do any operation except restoring
    # the database": running is no proof; the new 5085 fails the start.
    assert message.startswith(f"e2k-new: {KMS} is running but logged event 5085"), message
    assert "KB 818952" in message and "eseutil /d" in message
    assert kms_state(lab, "e2k-new") == "running"
    assert [event["id"] for event in lab.show("e2k-new")["events"]][-1:] == [5085]
