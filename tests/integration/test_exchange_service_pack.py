# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.exchange_service_pack with the real `ansible` command against the lab.

The KB fleet (q259906.yml): kms-new runs 5.5 SP3 with Kmserver.exe from the 5.5 CD (RTM) and has
the SP3 kit at kms_remediate_sp_media. Check mode and the refusals run on a lab no test changes;
the run (taken once, by the first test that needs it) and the second run on another, so every
test passes alone and in any order. tests/lab/fleets/sp_faults.yml holds the hard
cases, one host each.
"""

from __future__ import annotations

import time
import typing as t
from collections.abc import Callable

import pytest
from conftest import RunModule, RunningLab, lab_unchanged, module_lab

SP3 = r"D:\EXCH55SP3\ENG\SERVER\SETUP\I386"
SP2 = r"D:\EXCH55SP2\ENG\SERVER\SETUP\I386"
FAILED_COPY_ID = 0xC0070020  # the lab's update.exe failing half-way (KB-style "ID no")
SERVICE_PACK = "exchops.kms.exchange_service_pack"
# The SP3 kit the inventory names for kms-new, and the build it must install.
INVENTORY_KIT = (
    "media={{ kms_remediate_sp_media }} media_build={{ kms_remediate_sp_build }} build=5.5.2650"
)
# update.exe's timing in the lab against our polling: no ansible-core line changes it.
LAB_TIMING = pytest.mark.newest_line_only(
    reason="the lab's update.exe timing against our polling, the same on every line"
)
# The KB fleet for the tests that change nothing (check mode, refusals): kb_lab's kms-new gets SP3.
unchanged_kb_lab = module_lab("unchanged_kb_lab", "q259906.yml")
# refused(lab, host, module_args) -> the host's result
Refused = Callable[[RunningLab, str, str], dict]


@pytest.fixture
def refused(ansible_module: RunModule) -> Refused:
    """The service pack run on one host, which must fail it and leave it as `exchlab show`
    showed it before (request counters aside)."""

    def run(lab: RunningLab, host: str, module_args: str) -> dict:
        with lab_unchanged(lab, host):
            result, results = ansible_module(lab, host, SERVICE_PACK, module_args)
        assert result.returncode != 0
        return results[host]

    return run


def test_check_mode_reads_everything_changes_nothing_and_diffs_the_builds(
    unchanged_kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    with lab_unchanged(unchanged_kb_lab, "kms-new"):
        result, results = ansible_module(
            unchanged_kb_lab, "kms-new", SERVICE_PACK, INVENTORY_KIT, "--check", "--diff"
        )
    assert result.returncode == 0, result.stdout + result.stderr
    target = results["kms-new"]
    assert (target["changed"], target["outcome"], target["exit_code"]) == (True, "not_run", None)
    assert (target["build_before"], target["kms_binary_before"]) == ("5.5.2650.0", "5.5.1960.8")
    assert target["media_build"] == "5.5.2650.0"
    # No source says which version Kmserver.exe gets: the prediction leaves it as it is.
    assert target["kms_binary_after"] == "5.5.1960.8"
    assert "+Kmserver.exe: replaced by the copy of 5.5.2650 (5.5 SP3)" in result.stdout
    assert target["media_build_from"] == "operator statement"
    assert "is the operator's statement (media_build)" in " ".join(
        (result.stdout + result.stderr).split()
    )


def test_media_without_a_stated_build_is_refused_whatever_update_exe_says(
    unchanged_kb_lab: RunningLab, refused: Refused
) -> None:
    target = refused(unchanged_kb_lab, "kms-new", f"media={SP3} build=5.5.2650")
    assert target["outcome"] == "refused" and target["changed"] is False
    assert target["msg"].startswith("kms-new: media_build is not set.")
    assert "with media_build (role variable kms_remediate_sp_build)" in target["msg"]
    assert target["msg"].endswith("Nothing was changed.")


def test_media_of_another_build_than_asked_is_refused_with_nothing_changed(
    unchanged_kb_lab: RunningLab, refused: Refused
) -> None:
    target = refused(
        unchanged_kb_lab, "kms-new", f"media={SP3} media_build=5.5.2650 build=5.5.2653"
    )
    assert target["outcome"] == "refused" and target["changed"] is False
    assert target["msg"].startswith(
        f"kms-new: the media at {SP3} installs 5.5.2650 (5.5 SP3) but build asks for "
        "5.5.2653 (5.5 SP4)."
    )
    assert target["msg"].endswith("Nothing was changed.")


class Sp3Run(t.NamedTuple):
    """The service pack run on kb_lab's kms-new: its output, its result, the database before."""

    stdout: str
    target: dict
    database_before: dict


@pytest.fixture(scope="module")
def sp3_runs() -> list[Sp3Run]:
    """The one SP3 run of kb_lab's kms-new, once a test needed it."""
    return []


@pytest.fixture
def sp3_run(kb_lab: RunningLab, ansible_module: RunModule, sp3_runs: list[Sp3Run]) -> Sp3Run:
    """kms-new given SP3 (once per module, by the first test that needs it), so that the test of
    the run and the test of the second run pass alone and in any order."""
    if not sp3_runs:
        database = kb_lab.show("kms-new")["kms_database"]
        # Let this run of update.exe leave the Information Store on manual: reported, not set
        # back.
        kb_lab.fault("kms-new", "sp_start_types={MSExchangeIS: manual}")
        result, results = ansible_module(kb_lab, "kms-new", SERVICE_PACK, INVENTORY_KIT, "--diff")
        assert result.returncode == 0, result.stdout + result.stderr
        sp3_runs.append(Sp3Run(result.stdout, results["kms-new"], database))
    return sp3_runs[0]


def test_the_kb_target_gets_sp3_proven_from_the_versions_with_a_realistic_setup_log(
    kb_lab: RunningLab, sp3_run: Sp3Run
) -> None:
    database, target = sp3_run.database_before, sp3_run.target
    assert (target["outcome"], target["changed"], target["exit_code"]) == ("ok", True, 0)
    assert target["media_build_from"] == "operator statement"
    assert target["kms_binary_after"].startswith("5.5.2650.")
    assert target["build_after"] == "5.5.2650.0"
    # The lab's log has no completion wording (no source shows one): the versions decided.
    assert not any("successfully" in line for line in target["setup_log_tail"])
    assert target["decided_by"] == [
        "update.exe ended: its command returned exit code 0",
        "registry: Exchange 5.5.2650 (5.5 SP3) (NewestBuild)",
        "Store.exe file version 5.5.2650.23",
        f"Kmserver.exe file version {target['kms_binary_after']} (before the run: 5.5.1960.8)",
    ]
    # Every running Exchange service stopped first, dependents first, and started again after.
    assert set(target["services_stopped"]) == {
        "MSExchangeSA",
        "MSExchangeDS",
        "MSExchangeIS",
        "MSExchangeMTA",
    }
    assert target["services_stopped"][-1] == "MSExchangeSA"
    assert target["services_started"] == list(reversed(target["services_stopped"]))
    assert target["start_types_changed"] == {
        "MSExchangeIS": {"before": "auto", "after_setup": "manual"}
    }
    assert "Start MSExchangeKMS with its startup password" in target["remedy"]
    stdout = sp3_run.stdout
    assert f"kms-new: starting update.exe from {SP3} to install 5.5.2650 (5.5 SP3)" in stdout
    assert "+Kmserver.exe: 5.5.2650.12 (5.5 SP3)" in stdout

    shown = kb_lab.show("kms-new")
    exchange = shown["exchange"]
    assert (exchange["build"], exchange["service_pack"]) == ("5.5.2650", 3)
    assert exchange["kms_binary_build"].startswith("5.5.2650.")
    assert exchange["binaries"]["KMSMSG.DLL"] == exchange["kms_binary_build"]
    assert [run["outcome"] for run in exchange["updates"]] == ["succeeded"]
    assert shown["kms_database"] == database and database["intact"] is True
    assert shown["services"]["MSExchangeIS"]["start_mode"] == "manual"
    assert {name: service["state"] for name, service in shown["services"].items()} == {
        "MSExchangeSA": "running",
        "MSExchangeDS": "running",
        "MSExchangeIS": "running",
        "MSExchangeMTA": "running",
        "MSExchangeKMS": "stopped",
    }


def test_a_second_run_finds_sp3_in_place_and_runs_nothing(
    kb_lab: RunningLab, ansible_module: RunModule, sp3_run: Sp3Run
) -> None:
    assert sp3_run.target["changed"] is True  # the first run, behind this one
    result, results = ansible_module(kb_lab, "kms-new", SERVICE_PACK, INVENTORY_KIT)
    assert result.returncode == 0, result.stdout + result.stderr
    target = results["kms-new"]
    assert (target["changed"], target["outcome"], target["exit_code"]) == (False, "ok", None)
    assert target["remedy"].startswith(
        "None: Exchange and Kmserver.exe are already on 5.5.2650 (5.5 SP3)"
    )
    assert len(kb_lab.show("kms-new")["exchange"]["updates"]) == 1


def test_media_older_than_the_server_is_refused_as_a_downgrade(
    sp_faults_lab: RunningLab, refused: Refused
) -> None:
    host = refused(sp_faults_lab, "sp-downgrade", f"media={SP2} media_build=5.5.2448")
    assert (host["outcome"], host["changed"], host["media_build"]) == (
        "refused",
        False,
        "5.5.2448.0",
    )
    assert (
        "installs 5.5.2448 (5.5 SP2) but Exchange is already 5.5.2650 (5.5 SP3): update.exe would "
        "downgrade the server" in host["msg"]
    )
    assert host["msg"].endswith("Use the media of 5.5 SP3 or later. Nothing was changed.")


def test_a_failing_installer_ends_failed_from_the_versions_with_the_services_back_but_not_kms(
    sp_faults_lab: RunningLab, ansible_module: RunModule
) -> None:
    database = sp_faults_lab.show("sp-fails")["kms_database"]
    result, results = ansible_module(
        sp_faults_lab, "sp-fails", SERVICE_PACK, f"media={SP3} media_build=5.5.2650 build=5.5.2650"
    )
    assert result.returncode != 0
    host = results["sp-fails"]
    assert (host["outcome"], host["changed"], host["exit_code"]) == ("failed", True, FAILED_COPY_ID)
    # The error was a dialog: the log holds no failure line, and the versions decided.
    assert host["setup_log_tail"][0] == "++++ Microsoft Exchange Setup initialized ++++"
    assert "Kmserver.exe file version 5.5.1960.8 (before the run: 5.5.1960.8)" in host["decided_by"]
    assert host["msg"].startswith(
        f"sp-fails: update.exe from {SP3} ended and the service pack is not proven in place "
        "(outcome failed):"
    )
    assert "MSExchangeKMS was not started." in host["msg"]
    assert "exit code 0xC0070020 is not in success_exit_codes" in host["msg"]
    assert host["kms_binary_after"] == "5.5.1960.8"
    shown = sp_faults_lab.show("sp-fails")
    assert shown["kms_database"] == database and database["intact"] is True
    assert len(shown["exchange"]["updates"]) == 1
    states = {name: service["state"] for name, service in shown["services"].items()}
    assert states.pop("MSExchangeKMS") == "stopped"
    assert set(states.values()) == {"running"}, states


def _update_exe_gone(lab: RunningLab, host: str, timeout: float = 60.0) -> None:
    """Wait until the lab has recorded the end of the host's update.exe run."""
    deadline = time.monotonic() + timeout
    while not lab.show(host)["exchange"]["updates"]:
        assert time.monotonic() < deadline, "update.exe did not end"
        time.sleep(1)


@LAB_TIMING
def test_an_installer_waiting_for_input_is_left_alone_then_the_services_come_back_without_kms(
    sp_faults_lab: RunningLab, ansible_module: RunModule
) -> None:
    database = sp_faults_lab.show("sp-waits")["kms_database"]
    args = f"media={SP3} build=5.5.2650 media_build=5.5.2650 poll_interval=1 no_progress_timeout=4"
    result, results = ansible_module(sp_faults_lab, "sp-waits", SERVICE_PACK, args)
    assert result.returncode != 0
    host = results["sp-waits"]
    assert (host["outcome"], host["changed"]) == ("waiting_for_input", True), host
    assert host["update_pid"] and host["decided_by"][0].startswith("tasklist: update.exe running")
    stopped = host["services_stopped"]
    assert set(stopped) == {"MSExchangeSA", "MSExchangeDS", "MSExchangeIS", "MSExchangeMTA"}
    assert "sc start MSExchangeSA, then sc start MSExchangeDS" in host["msg"]
    assert "Start MSExchangeKMS only once the service pack is proven in place" in host["msg"]
    assert "host's console" not in host["msg"]
    # update.exe still runs: nothing was restarted under it, and a second run leaves it alone.
    shown = sp_faults_lab.show("sp-waits")
    assert shown["exchange"]["updates"] == []
    assert {shown["services"][name]["state"] for name in stopped} == {"stopped"}
    result, results = ansible_module(sp_faults_lab, "sp-waits", SERVICE_PACK, args)
    again = results["sp-waits"]
    assert (again["outcome"], again["changed"]) == ("still_running", False), again
    assert sp_faults_lab.show("sp-waits")["services"]["MSExchangeSA"]["state"] == "stopped"

    # Once update.exe is gone without a proven success: the services run again, KMS does not.
    _update_exe_gone(sp_faults_lab, "sp-waits")
    result, results = ansible_module(sp_faults_lab, "sp-waits", SERVICE_PACK, args)
    assert result.returncode != 0
    last = results["sp-waits"]
    assert (last["outcome"], last["changed"]) == ("failed", True), last
    assert last["decided_by"][0] == "update.exe ended: tasklist no longer lists it"
    assert last["services_started"] == list(reversed(stopped))
    assert "MSExchangeKMS was not started." in last["msg"]
    shown = sp_faults_lab.show("sp-waits")
    states = {name: service["state"] for name, service in shown["services"].items()}
    assert states.pop("MSExchangeKMS") == "stopped"
    assert set(states.values()) == {"running"}, states
    assert shown["kms_database"] == database and database["intact"] is True
    assert len(shown["exchange"]["updates"]) == 1


@LAB_TIMING
def test_a_connection_lost_mid_install_is_survived_by_polling_and_update_exe_runs_once(
    sp_faults_lab: RunningLab, ansible_module: RunModule
) -> None:
    # sp-lost answers each request 1.1 s late; with these timeouts only the Receive that waits
    # for the 5 s update.exe misses ansible_winrm_read_timeout_sec, which loses its connection.
    quick = [
        "-e",
        "ansible_winrm_operation_timeout_sec=1",
        "-e",
        "ansible_winrm_read_timeout_sec=2",
    ]
    result, results = ansible_module(
        sp_faults_lab,
        "sp-lost",
        SERVICE_PACK,
        f"media={SP3} media_build=5.5.2650 build=5.5.2650 poll_interval=30 progress_interval=2",
        *quick,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    host = results["sp-lost"]
    assert (host["outcome"], host["changed"], host["exit_code"]) == ("ok", True, None)
    assert host["kms_binary_after"].startswith("5.5.2650.")
    assert "sp-lost: lost the connection to update.exe" in result.stdout
    assert "update.exe is not started again" in result.stdout
    shown = sp_faults_lab.show("sp-lost")
    assert [run["outcome"] for run in shown["exchange"]["updates"]] == ["succeeded"]
    assert shown["exchange"]["kms_binary_build"].startswith("5.5.2650.")
    assert shown["kms_database"]["intact"] is True


@LAB_TIMING
def test_a_tcp_connection_cut_mid_install_is_survived_by_polling_new_shells(
    sp_faults_lab: RunningLab, ansible_module: RunModule
) -> None:
    # sp-cut's network drops the connection of the Receive waiting for update.exe; update.exe
    # goes on for 6 s on the host, where the polls (new shells) see it in tasklist.
    result, results = ansible_module(
        sp_faults_lab,
        "sp-cut",
        SERVICE_PACK,
        f"media={SP3} media_build=5.5.2650 build=5.5.2650 poll_interval=1 progress_interval=1",
        "-v",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    host = results["sp-cut"]
    assert (host["outcome"], host["changed"]) == ("ok", True), host
    assert host["kms_binary_after"].startswith("5.5.2650.")
    assert "sp-cut: lost the connection to update.exe" in result.stdout
    assert "update.exe is not started again" in result.stdout
    # A poll saw update.exe still running, then its end in the setup log.
    assert "(tasklist: update.exe running)" in result.stdout, result.stdout
    shown = sp_faults_lab.show("sp-cut")
    assert [run["outcome"] for run in shown["exchange"]["updates"]] == ["succeeded"]
    assert shown["kms_database"]["intact"] is True


def test_a_connection_dropped_before_anything_ran_is_unreachable_with_nothing_run(
    sp_faults_lab: RunningLab, ansible_module: RunModule
) -> None:
    result, results = ansible_module(
        sp_faults_lab, "sp-drop", SERVICE_PACK, f"media={SP3} media_build=5.5.2650"
    )
    assert result.returncode != 0
    host = results["sp-drop"]
    assert host["unreachable"] is True and host["changed"] is False
    assert "the host closed the connection while reading command output" in host["msg"]
    assert sp_faults_lab.show("sp-drop")["exchange"]["updates"] == []


def test_a_startup_password_in_image_path_is_refused_without_ever_being_shown(
    sp_faults_lab: RunningLab, ansible_module: RunModule
) -> None:
    result, results = ansible_module(
        sp_faults_lab,
        "sp-imagepath",
        SERVICE_PACK,
        f"media={SP3} media_build=5.5.2650 build=5.5.2650",
        "-vvvv",
    )
    assert result.returncode != 0
    host = results["sp-imagepath"]
    assert (host["outcome"], host["changed"]) == ("refused", False)
    assert r"(C:\Exchsrvr\Bin\Kmserver.exe ********)" in host["msg"]
    assert "KB Q235418" in host["msg"] and host["msg"].endswith("Nothing was changed.")
    # The lab's KMS startup password (KB Q184420's example) and the account password.
    for secret in ("HZGYYHACWLQACTI", "Lab-Passw0rd!"):
        assert secret not in result.stdout + result.stderr
    assert sp_faults_lab.show("sp-imagepath")["exchange"]["updates"] == []
