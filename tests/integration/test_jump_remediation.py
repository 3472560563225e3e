# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""KB Q259906 behind a Windows jump host, end to end: the gate fails the NT 4.0 pair that only
jump01 reaches, exchops.kms.remediate_kms_move backs up the KM database through jump01, stops the
Exchange services with `sc \\\\KMS-NEW`, shows the console steps, and waits (launch mode
operator) while the operator at kms-new's console runs update.exe: here `exchlab console`, run by
a thread once the play's run record is on the server. The play never starts update.exe itself."""

from __future__ import annotations

import json
import threading
import time
import typing as t

import pytest
from conftest import LabFactory, Remediation, RunGate, RunModule, RunningLab, lab_unchanged

from exchlab.state import normalize_path

GATE = "exchops.kms.check_kms_move"
UPDATE = "D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386\\update.exe"
# The play's run record on kms-new (beside "Exchange Server Setup.log" on the Exchange drive).
RUN_RECORD = normalize_path("C:\\exchops-sp-run.txt")
# Short waits for the lab, whose installer ends at once.
FAST = json.dumps(
    {
        "kms_remediate_sp_quiet_period": 3,
        "kms_remediate_sp_poll_interval": 1,
        "kms_remediate_sp_timeout": 180,
        "kms_remediate_watch": 2,
    }
)


class Operator(threading.Thread):
    """The person at kms-new's console: once the play has stopped the services and written its
    run record, runs update.exe there and clicks through it (`exchlab console --run`)."""

    def __init__(self, lab: RunningLab, host: str = "kms-new", timeout: float = 150.0) -> None:
        super().__init__(name="operator-at-the-console", daemon=True)
        self.lab, self.host, self.timeout = lab, host, timeout
        self.answer: dict | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.lab.host_state(self.host).fs.is_file(RUN_RECORD):
                console = ("console", "--state", str(self.lab.state), self.host, "--run", UPDATE)
                self.answer = json.loads(self.lab.exchlab(*console))
                return
            time.sleep(0.5)


def starts_an_installer(line: str) -> bool:
    """Whether a jump host's command line runs update.exe, or has another computer run it
    (`at`, `wmic process call create`); reading its version or listing it does not."""
    program = line.lstrip('"').upper()
    return (
        program.startswith(UPDATE.upper())
        or "PROCESS CALL CREATE" in program
        or program.startswith("AT ")
    )


def states(shown: dict) -> dict[str, str]:
    """The Exchange services' states (the lab's NT 4.0 hosts run Schedule too)."""
    return {
        name: service["state"]
        for name, service in shown["services"].items()
        if name.startswith("MSExchange")
    }


@pytest.fixture
def jump_kb_lab(lab_factory: LabFactory) -> RunningLab:
    return lab_factory("jump_q259906.yml")


def test_the_kb_pair_behind_a_jump_host_is_remediated_with_the_operator_at_the_console(
    jump_kb_lab: RunningLab, remediation: Remediation, gate_playbook: RunGate
) -> None:
    lab = jump_kb_lab
    gate, report, _markdown, _junit = gate_playbook(GATE, lab)
    assert gate.returncode == 2, gate.stdout[-3000:]
    assert report["pairs"][0]["status"] == "mismatch", report["pairs"][0]
    database = lab.kms_database_sha256("kms-new")

    with lab_unchanged(lab, "kms-old", "kms-new"):
        planned = remediation.run(lab, "--check", "--diff", "-e", FAST)
    assert planned.returncode == 0, planned.stdout[-3000:]
    plan = json.loads((remediation.reports / "plan-kms-new.json").read_text(encoding="utf-8"))
    how = next(step["how"] for step in plan["steps"] if "how" in step)
    assert how.endswith(
        f"Through jump01: {UPDATE} on KMS-NEW, an operator at the console runs it (launch mode "
        "operator)."
    )

    operator = Operator(lab)
    operator.start()
    fixed = remediation.run(lab, "-e", FAST)
    operator.join(5)
    assert fixed.returncode == 0, fixed.stdout[-4000:]
    assert operator.answer is not None and operator.answer["exit_code"] == 0, operator.answer
    assert f"At KMS-NEW's console, logged on as an administrator: run {UPDATE}" in fixed.stdout
    (row,) = remediation.report()["pairs"]
    assert (row["outcome"], row["sp_outcome"]) == ("remediated", "ok"), row

    shown = lab.show("kms-new")
    assert set(states(shown).values()) == {"running"}, states(shown)
    assert shown["kms_database"]["intact"] is True
    assert lab.kms_database_sha256("kms-new") == database
    assert len(shown["backups"]) == 1
    # update.exe ran once, at the console; jump01 never started it, kms-new got no request.
    assert len(shown["exchange"]["updates"]) == 1
    jump_lines = lab.show("jump01")["command_lines"]
    started = [line for line in jump_lines if starts_an_installer(line)]
    assert started == [], started
    assert "sc \\\\KMS-NEW stop MSExchangeSA" in jump_lines
    assert shown["requests"]["commands"] == 0
    assert not lab.host_state("kms-new").fs.is_file(RUN_RECORD)

    gate, report, _markdown, _junit = gate_playbook(GATE, lab)
    assert gate.returncode == 0, gate.stdout[-3000:]
    assert report["pairs"][0]["status"] == "match"
    again = remediation.run(lab, "-e", FAST)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
    assert "kms-new                    : ok=" in again.stdout


def test_an_operator_who_has_not_come_leaves_the_pair_waiting_and_the_next_run_finishes(
    jump_kb_lab: RunningLab, remediation: Remediation
) -> None:
    lab = jump_kb_lab
    database = lab.kms_database_sha256("kms-new")
    short = json.dumps({**json.loads(FAST), "kms_remediate_sp_timeout": 6})
    waiting = remediation.run(lab, "-e", short)
    assert waiting.returncode == 2, waiting.stdout[-3000:]
    (row,) = remediation.report()["pairs"]
    assert (row["outcome"], row["sp_outcome"]) == ("waiting_for_input", "waiting_for_input"), row
    assert "was not seen installed at KMS-NEW's console within 6 s" in row["reason"]
    shown = lab.show("kms-new")
    assert set(states(shown).values()) == {"stopped"}, states(shown)
    assert shown["exchange"]["updates"] == [] and len(shown["backups"]) == 1
    assert lab.host_state("kms-new").fs.is_file(RUN_RECORD)

    # The operator runs the installer now; the next run polls from the run record, through a
    # jump host whose polls lose their connection twice (the installer is not in its shells).
    lab.exchlab("console", "--state", str(lab.state), "kms-new", "--run", UPDATE)
    lab.fault("jump01", "drop_receive_for=sp_bin_dir", "drop_connection_count=2")
    finished = remediation.run(lab, "-e", FAST)
    assert finished.returncode == 0, finished.stdout[-4000:]
    # -vvvv shows each lost poll; the wait went on through new shells.
    assert finished.stdout.count("a poll through the jump host failed") == 2
    (row,) = remediation.report()["pairs"]
    assert (row["outcome"], row["sp_outcome"]) == ("remediated", "ok"), row
    shown = lab.show("kms-new")
    assert set(states(shown).values()) == {"running"}, states(shown)
    assert lab.kms_database_sha256("kms-new") == database
    assert len(shown["exchange"]["updates"]) == 1


SERVICE_PACK = "exchops.kms.exchange_service_pack"
# kms-new's service pack step alone, as the role runs it (the KB target: Kmserver.exe off the CD).
SP_ARGS = (
    f"media={UPDATE.rsplit(chr(92), 1)[0]} media_build=5.5.2650 build=5.5.2650 "
    "kms_database_build=5.5.2650 quiet_period=3 poll_interval=1 timeout=30"
)


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        pytest.param(
            "admin_shares_off",
            "has no administrative share C$ (AutoShareServer turned off)",
            id="admin_shares_off",
        ),
        pytest.param(
            "scm_access_denied",
            "[SC] OpenSCManager FAILED 5: Access is denied.",
            id="scm_access_denied",
        ),
    ],
)
def test_a_server_the_jump_host_cannot_change_fails_the_service_pack_with_nothing_changed(
    jump_kb_lab: RunningLab, ansible_module: RunModule, fault: str, says: str
) -> None:
    lab = jump_kb_lab
    database = lab.kms_database_sha256("kms-new")
    with lab.faulted("kms-new", f"{fault}=true", clear=[f"{fault}=false"]):
        with lab_unchanged(lab, "kms-new"):
            result, results = ansible_module(lab, "kms-new", SERVICE_PACK, SP_ARGS)
    assert result.returncode != 0
    message = results["kms-new"]["msg"]
    assert message.startswith("kms-new: ") and says in message, message
    assert "jump01" in message and "KMS-NEW" in message, message
    assert "Nothing was changed." in message, message
    assert lab.kms_database_sha256("kms-new") == database
    assert not lab.host_state("kms-new").fs.is_file(RUN_RECORD)


class ConsoleOfAtJob(threading.Thread):
    """Launch mode at_interactive in the lab: once the play has added its `at` job to kms-new,
    the lab's clock passes the job's time (`exchlab clock --advance`), the job starts update.exe
    on the console's desktop, and the operator there clicks through it (`exchlab console`)."""

    def __init__(self, lab: RunningLab, host: str = "kms-new", timeout: float = 150.0) -> None:
        super().__init__(name="operator-of-the-at-job", daemon=True)
        self.lab, self.host, self.timeout = lab, host, timeout
        self.answer: dict | None = None

    def _until(self, ready: t.Callable[[], bool]) -> bool:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if ready():
                return True
            time.sleep(0.5)
        return False

    def run(self) -> None:
        state = str(self.lab.state)
        if not self._until(lambda: bool(self.lab.host_state(self.host).at_jobs)):
            return
        self.lab.exchlab("clock", "--state", state, self.host, "--advance", "180")
        if self._until(lambda: bool(self.lab.host_state(self.host).console_waits)):
            self.answer = json.loads(self.lab.exchlab("console", "--state", state, self.host))


def test_an_at_job_starts_the_installer_on_the_console_and_its_batch_ends_the_wait(
    jump_kb_lab: RunningLab, remediation: Remediation
) -> None:
    lab = jump_kb_lab
    database = lab.kms_database_sha256("kms-new")
    at_job = json.dumps({**json.loads(FAST), "kms_remediate_sp_launch": "at_interactive"})
    operator = ConsoleOfAtJob(lab)
    operator.start()
    fixed = remediation.run(lab, "-e", at_job)
    operator.join(5)
    assert fixed.returncode == 0, fixed.stdout[-4000:]
    assert operator.answer is not None and operator.answer["batch_ended"] is True, operator.answer
    assert "kms-new: at job 1 runs " + UPDATE in fixed.stdout
    (row,) = remediation.report()["pairs"]
    assert (row["outcome"], row["sp_outcome"]) == ("remediated", "ok"), row
    assert row["decided_by"][0].startswith(
        "update.exe at the console ended: its batch made the folder C:\\exchops\\sp-"
    )
    (job,) = lab.host_state("kms-new").at_jobs
    assert (job["command"], job["interactive"]) == ("cmd /c C:\\exchops\\runsp.cmd", True)
    shown = lab.show("kms-new")
    assert set(states(shown).values()) == {"running"}, states(shown)
    assert lab.kms_database_sha256("kms-new") == database
    assert len(shown["exchange"]["updates"]) == 1
    jump_lines = lab.show("jump01")["command_lines"]
    assert "net time \\\\KMS-NEW" in jump_lines
    # One job added (its line recorded as cmd.exe's and as at.exe's), due at HH:MM of the server.
    assert {line for line in jump_lines if line.startswith("at \\\\KMS-NEW ")} == {
        f"at \\\\KMS-NEW {job['due'][11:16]} /interactive \"cmd /c C:\\exchops\\runsp.cmd\""
    }


def test_a_stopped_schedule_service_fails_the_at_job_and_brings_the_services_back(
    jump_kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    lab = jump_kb_lab
    database = lab.kms_database_sha256("kms-new")
    lab.fault("kms-new", "schedule_stopped=true")
    result, results = ansible_module(
        lab, "kms-new", SERVICE_PACK, f"{SP_ARGS} launch=at_interactive"
    )
    assert result.returncode != 0
    message = results["kms-new"]["msg"]
    assert message.startswith(
        "kms-new: could not schedule update.exe on KMS-NEW's console"
    ), message
    assert "update.exe was not started" in message
    assert "sc \\\\KMS-NEW start Schedule" in message, message
    shown = lab.show("kms-new")
    assert set(states(shown).values()) == {"running", "stopped"}
    assert states(shown).pop("MSExchangeKMS") == "stopped"
    assert shown["exchange"]["updates"] == [] and lab.host_state("kms-new").at_jobs == []
    assert not lab.host_state("kms-new").fs.is_file(RUN_RECORD)
    assert lab.kms_database_sha256("kms-new") == database


def test_a_kit_on_a_share_that_system_cannot_read_is_refused_through_the_jump_host(
    jump_kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    lab = jump_kb_lab
    share = "\\\\JUMP01\\KITS\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386"
    # JSON, so that the share's leading \\ reaches the module as typed.
    arguments = json.dumps({"media": share, "media_build": "5.5.2650", "launch": "at_interactive"})
    with lab_unchanged(lab, "kms-new"):
        result, results = ansible_module(lab, "kms-new", SERVICE_PACK, arguments)
    assert result.returncode != 0
    message = results["kms-new"]["msg"]
    assert message.startswith(f"kms-new: media {share} is not a folder on a drive of KMS-NEW")
    assert "runs update.exe as SYSTEM, which cannot read a network path" in message
    assert message.endswith("Nothing was changed."), message
