# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The modules that change a KM server, on servers behind a Windows jump host (exchange_jump_host):
the real pywinrm reaches jump01 with CredSSP, and jump01's tools name the NT 4.0 server
(`sc \\\\KMS-OLD ...`). The KMS startup password reaches jump01 on a command's standard input,
never on a command line (the lab records jump01's command lines as its process-creation audit
would), unless the operator opts in by name; each lab's jump host command lines are also
checked for every lab password when the lab stops (conftest)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import LabFactory, RunModule, RunningLab, lab_unchanged

KMS = "MSExchangeKMS"
# The lab's KMS startup password (exchlab fleet LAB_DEFAULTS: the example of KB Q184420).
PASSWORD = "HZGYYHACWLQACTI"
FROM_INVENTORY = "startup_password={{ kms_startup_password }}"
# Start KMS with the inventory's password; watch 2 s (the lab's KMS fails at once or not at all).
START_KMS = f"name={KMS} state=started watch=2 {FROM_INVENTORY}"
SERVICE = "exchops.kms.exchange_service"
BACKUP = "exchops.kms.kms_backup"
KMSDATA = "C:\\EXCHSRVR\\KMSDATA"
ARGV_OPT_IN = "exchange_jump_allow_password_in_argv"


@pytest.fixture(scope="module")
def jump_kb_lab(lab_factory: LabFactory) -> RunningLab:
    return lab_factory("jump_q259906.yml")


@pytest.fixture(scope="module")
def jump_doctor_lab(lab_factory: LabFactory) -> RunningLab:
    """One legacy server per fault of the second hop (tests/lab/fleets/jump_doctor.yml)."""
    return lab_factory("jump_doctor.yml")


def kms_state(lab: RunningLab, host: str) -> str:
    return lab.show(host)["services"][KMS]["state"]


def jump_lines(lab: RunningLab, jump: str = "jump01") -> list[str]:
    """The command lines JUMP's process-creation audit recorded: each cmd.exe line, and each
    program that line started."""
    return list(lab.show(jump)["command_lines"])


def programs(lines: list[str]) -> list[str]:
    """The programs among LINES, without the cmd.exe lines that batch them (`_probe.section`)."""
    return [line for line in lines if not line.startswith("echo ==exchops:")]


def test_kms_stops_and_starts_through_the_jump_host_with_the_password_on_no_command_line(
    jump_kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    lab = jump_kb_lab
    database = lab.show("kms-old")["kms_database"]
    before = len(jump_lines(lab))
    stop, results = ansible_module(lab, "kms-old", SERVICE, f"name={KMS} state=stopped")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert (results["kms-old"]["changed"], results["kms-old"]["state"]) == (True, "stopped")
    assert kms_state(lab, "kms-old") == "stopped"
    stopped = jump_lines(lab)[before:]
    assert "sc \\\\KMS-OLD stop MSExchangeKMS" in stopped
    # The legacy host itself ran nothing: every command ran on jump01.
    assert lab.show("kms-old")["requests"]["commands"] == 0

    before = len(jump_lines(lab))
    start, results = ansible_module(lab, "kms-old", SERVICE, START_KMS)
    assert start.returncode == 0, start.stdout + start.stderr
    started = results["kms-old"]
    assert (started["changed"], started["previous_state"], started["state"]) == (
        True,
        "stopped",
        "running",
    )
    assert started["events"] == []
    assert kms_state(lab, "kms-old") == "running"
    lines = jump_lines(lab)[before:]
    (start_line,) = [line for line in lines if line.startswith("powershell ")]
    assert start_line.startswith("powershell -NoProfile -NonInteractive -Command ")
    assert "ServiceController('MSExchangeKMS', 'KMS-OLD')" in start_line
    assert "[Console]::In.ReadLine()" in start_line
    assert not [line for line in lines if line.startswith("sc \\\\KMS-OLD start")]
    assert not [line for line in jump_lines(lab) if PASSWORD in line]
    assert PASSWORD not in start.stdout + start.stderr
    assert lab.show("kms-old")["kms_database"] == database

    again, results = ansible_module(lab, "kms-old", SERVICE, START_KMS)
    assert again.returncode == 0, again.stdout
    assert (results["kms-old"]["changed"], results["kms-old"]["state"]) == (False, "running")


def test_the_kb_target_fails_to_start_through_the_jump_host_with_event_5389_explained(
    jump_kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    lab = jump_kb_lab
    database = lab.show("kms-new")["kms_database"]
    result, results = ansible_module(lab, "kms-new", SERVICE, START_KMS)
    assert result.returncode != 0
    failed = results["kms-new"]
    assert failed["changed"] is True  # the start was sent
    assert "5389" in failed["msg"] and "Q259906" in failed["msg"], failed["msg"]
    assert "started but was STOPPED again right after ServiceController on jump01" in failed["msg"]
    assert [event["id"] for event in failed["events"]][:1] == [5389]
    assert kms_state(lab, "kms-new") == "stopped"
    assert lab.show("kms-new")["kms_database"] == database
    assert PASSWORD not in result.stdout + result.stderr


def test_check_mode_through_the_jump_host_predicts_and_sends_nothing_that_changes(
    jump_kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    lab = jump_kb_lab
    with lab_unchanged(lab, "kms-old"):
        before = len(jump_lines(lab))
        result, results = ansible_module(
            lab, "kms-old", SERVICE, f"name={KMS} state=restarted {FROM_INVENTORY}", "--check"
        )
        assert result.returncode == 0, result.stdout
        assert results["kms-old"]["changed"] is True
        lines = programs(jump_lines(lab)[before:])
        assert lines and all(
            line.startswith(("sc \\\\KMS-OLD query", "sc \\\\KMS-OLD qc", "reg query"))
            for line in lines
        ), lines


def test_the_password_on_the_command_line_only_when_the_operator_opts_in_by_name(
    lab_factory: LabFactory, ansible_module: RunModule
) -> None:
    lab = lab_factory("jump_q259906.yml")
    lab.audit_shows_passwords = True  # this test shows the exposure the opt-in documents
    stop, _results = ansible_module(lab, "kms-old", SERVICE, f"name={KMS} state=stopped")
    assert stop.returncode == 0, stop.stdout
    start, results = ansible_module(
        lab, "kms-old", SERVICE, START_KMS, "-e", json.dumps({ARGV_OPT_IN: True})
    )
    assert start.returncode == 0, start.stdout + start.stderr
    assert results["kms-old"]["state"] == "running"
    lines = jump_lines(lab)
    assert f'sc \\\\KMS-OLD start MSExchangeKMS "{PASSWORD}"' in lines
    assert not [line for line in lines if line.startswith("powershell ")]
    # Ansible's own output still masks it.
    assert PASSWORD not in start.stdout + start.stderr


def test_an_opt_in_that_is_not_a_boolean_is_refused_before_anything_is_sent(
    jump_kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    lab = jump_kb_lab
    with lab_unchanged(lab, "kms-old"):
        before = len(jump_lines(lab))
        result, results = ansible_module(
            lab, "kms-old", SERVICE, f"name={KMS} state=stopped", "-e", f"{ARGV_OPT_IN}=perhaps"
        )
        # The value is not quoted (a variable named "password" may hold one by mistake).
        assert result.returncode != 0
        message = results["kms-old"]["msg"]
        assert f"{ARGV_OPT_IN} is not a boolean; it must be true or false" in message
        assert "Nothing was changed." in message
        assert jump_lines(lab)[before:] == []


@pytest.mark.parametrize(
    ("host", "jump", "says"),
    [
        pytest.param(
            "nt4-nbt",
            "jumpnb",
            "NetBIOS over TCP/IP is off on jumpnb while NT4-NBT runs NT 4.0",
            id="no NetBIOS to NT 4.0",
        ),
        pytest.param(
            "nt4-user",
            "jump01",
            "NT4-USER refused the account jump01 passes on: it is not an administrator on "
            "NT4-USER",
            id="not an administrator",
        ),
    ],
)
def test_a_server_the_jump_host_cannot_control_fails_naming_both_and_every_cause(
    jump_doctor_lab: RunningLab, ansible_module: RunModule, host: str, jump: str, says: str
) -> None:
    lab = jump_doctor_lab
    state = kms_state(lab, host)
    result, results = ansible_module(lab, host, SERVICE, f"name={KMS} state=stopped")
    assert result.returncode != 0
    message = results[host]["msg"]
    assert message.startswith(f"{host}: {jump} could not read {host.upper()} ("), message
    assert says in message, message
    assert "Nothing was changed." in message
    assert kms_state(lab, host) == state


def test_the_kms_database_is_backed_up_through_the_jump_host_and_verified_by_sha256(
    lab_factory: LabFactory, ansible_module: RunModule, tmp_path: Path
) -> None:
    lab = lab_factory("jump_q259906.yml")
    before = lab.show("kms-old")
    assert before["services"][KMS]["state"] == "running"
    first = len(jump_lines(lab))
    controller = tmp_path / "kms-backups"
    result, results = ansible_module(
        lab, "kms-old", BACKUP, f"{FROM_INVENTORY} copy_to={controller}"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer = results["kms-old"]
    assert answer["changed"] is True
    assert answer["database_path"] == KMSDATA
    assert answer["backup_path"].startswith(KMSDATA + ".backup-")  # the server's own path
    assert (answer["kms_state_before"], answer["kms_state_after"]) == ("running", "running")
    assert answer["verification"] == "sha256"
    manifest = {entry["name"]: entry["sha256"] for entry in answer["manifest"]}
    assert manifest == lab.kms_database_sha256("kms-old")

    after = lab.show("kms-old")
    assert [(backup["path"], backup["matches_database"]) for backup in after["backups"]] == [
        (answer["backup_path"], True)
    ]
    assert after["kms_database"] == before["kms_database"]
    assert after["services"][KMS]["state"] == "running"
    assert after["requests"]["commands"] == 0  # every command ran on jump01

    lines = programs(jump_lines(lab)[first:])
    share = "\\\\KMS-OLD\\C$\\EXCHSRVR\\KMSDATA"
    assert f'xcopy "{share}" "{share}.backup-' in " ".join(lines)
    assert [line for line in lines if line.startswith(f'certutil -hashfile "{share}')]
    assert [line for line in lines if line.startswith("powershell ")]  # KMS started again
    assert not [line for line in jump_lines(lab) if PASSWORD in line]
    assert PASSWORD not in result.stdout + result.stderr

    # The second copy, on the controller: fetched through jump01, each file's SHA256 the lab's.
    copy = answer["controller_copy"]
    folder = Path(copy["database_folder"])
    fetched = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.iterdir()
    }
    assert fetched == lab.kms_database_sha256("kms-old")
    assert (copy["files"], copy["verification"]) == (len(manifest), "sha256")
    # No Base64 copy of the database left on the server.
    leftovers = [
        path
        for path in lab.host_state("kms-old").fs.all_files()
        if path.path.endswith(".exchops-fetch.b64")
    ]
    assert leftovers == []

    # A restore check of the database against that manifest, through jump01: KMS runs, so it
    # is refused (a running KMS writes its database), naming the server's own folder.
    check = json.dumps({"verify_against": answer["manifest"]})
    with lab_unchanged(lab, "kms-old"):
        refused, results = ansible_module(lab, "kms-old", BACKUP, check)
    assert refused.returncode != 0
    assert KMSDATA in results["kms-old"]["msg"]
    assert results["kms-old"]["msg"].endswith("Nothing was changed.")


def test_a_restore_check_through_the_jump_host_proves_the_folder_against_its_manifest(
    jump_kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    lab = jump_kb_lab  # kms-new: KMS stopped, as before a first start on a restored database
    manifest = lab.kms_database_manifest("kms-new")
    with lab_unchanged(lab, "kms-new"):
        result, results = ansible_module(
            lab, "kms-new", BACKUP, json.dumps({"verify_against": manifest})
        )
    assert result.returncode == 0, result.stdout + result.stderr
    answer = results["kms-new"]
    assert answer["changed"] is False
    assert answer["database_path"] == KMSDATA


def test_a_backup_through_a_jump_host_without_admin_shares_is_refused_with_kms_untouched(
    jump_doctor_lab: RunningLab, ansible_module: RunModule
) -> None:
    lab = jump_doctor_lab
    with lab.faulted("kms-ok", "admin_shares_off=true", clear=["admin_shares_off=false"]):
        with lab_unchanged(lab, "kms-ok"):
            result, results = ansible_module(lab, "kms-ok", BACKUP, FROM_INVENTORY)
    assert result.returncode != 0
    message = results["kms-ok"]["msg"]
    assert "has no administrative share C$ (AutoShareServer turned off)" in message, message
    assert "Nothing was changed." in message


@pytest.mark.parametrize(
    ("module", "args", "says"),
    [
        pytest.param(SERVICE, f"name={KMS} state=stopped", "", id="exchange_service"),
        pytest.param(
            BACKUP,
            FROM_INVENTORY,
            "MSExchangeKMS could not be stopped, and the KM database is copied only with KMS "
            "stopped (KB Q190713). ",
            id="kms_backup",
        ),
    ],
)
def test_a_service_manager_that_refuses_control_stops_the_change_with_kms_and_database_as_they_were(
    jump_doctor_lab: RunningLab, ansible_module: RunModule, module: str, args: str, says: str
) -> None:
    lab = jump_doctor_lab
    with lab.faulted("kms-ok", "scm_access_denied=true", clear=["scm_access_denied=false"]):
        with lab_unchanged(lab, "kms-ok"):
            result, results = ansible_module(lab, "kms-ok", module, args)
    assert result.returncode != 0
    message = results["kms-ok"]["msg"]
    assert (
        f"{says}jump01 could not read KMS-OK ([SC] OpenSCManager FAILED 5: Access is denied.)"
        in (message)
    ), (message)
    assert "Make the account an administrator on KMS-OK" in message
    assert message.endswith("Nothing was changed."), message


def test_a_disk_that_fills_during_a_copy_through_the_jump_host_restarts_kms_and_keeps_the_database(
    jump_doctor_lab: RunningLab, ansible_module: RunModule
) -> None:
    lab = jump_doctor_lab
    before = lab.show("kms-ok")
    assert before["services"][KMS]["state"] == "running"
    # The free-space check passes; then the server's disk fills after 1,100,000 bytes, so xcopy
    # (run on jump01, writing through \\KMS-OK\C$) fails half-way.
    with lab.faulted(
        "kms-ok", "disk_fills_after_bytes=1100000", clear=["disk_fills_after_bytes=-1"]
    ):
        result, results = ansible_module(lab, "kms-ok", BACKUP, FROM_INVENTORY)
    assert result.returncode != 0
    answer = results["kms-ok"]
    message = answer["msg"]
    assert message.startswith(f"kms-ok: xcopy could not copy {KMSDATA} to {answer['backup_path']}")
    assert "it is NOT a usable backup" in message
    assert f"The KM database in {KMSDATA} was only read and still holds its" in message
    assert message.endswith("MSExchangeKMS was RUNNING before the backup and is RUNNING again.")
    assert (answer["changed"], answer["kms_state_after"]) == (True, "running")
    after = lab.show("kms-ok")
    assert after["kms_database"] == before["kms_database"]
    assert after["kms_database"]["intact"] is True
    assert after["services"][KMS]["state"] == "running"
    assert PASSWORD not in result.stdout + result.stderr
