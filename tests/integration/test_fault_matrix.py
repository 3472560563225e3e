# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.remediate_kms_move against one KB Q259906 pair per fault (fleet fault_matrix.yml).

One lab, one sequence: the faulted run fails each faulted pair with a message naming the host and
the cause while the clean pair is remediated and every KM database stays intact; the faults are
cleared with `exchlab fault`, a rerun remediates every pair, and a third run changes nothing.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import RunningLab, ansible_environment, run_tool

TARGETS = (
    "ok-new", "auth-new", "tlsx-new", "tlsn-new", "drop-new", "wsf-new",
    "opto-new", "inst-new", "disk-new", "pw-new", "stop-new",
)  # fmt: skip


@dataclass(frozen=True)
class FaultMode:
    """One faulted pair: what the operator must read, how to clear it, what the rerun leaves."""

    target: str
    # Stable fragments of the failure message (the host's name is checked for every mode).
    message: tuple[str, ...]
    # `exchlab fault` settings that put the host back to its defaults.
    clear: tuple[str, ...]
    # After the rerun: backup folders on the target and update.exe runs, both runs counted.
    backups: int = 1
    update_runs: int = 1


FAULT_MODES = (
    FaultMode(
        "auth-new",
        ("the host refused the credentials of", "Check ansible_user and ansible_password"),
        ("auth_refused=false",),
    ),
    FaultMode(
        "tlsx-new",
        ("TLS certificate not trusted (certificate has expired)", "Renew the host's WinRM HTTPS"),
        ("tls_certificate=ok",),
    ),
    FaultMode(
        "tlsn-new",
        ("TLS certificate not trusted (IP address mismatch)", "reissue the certificate"),
        ("tls_certificate=ok",),
    ),
    FaultMode(
        "drop-new",
        (
            "the connection failed during the backup",
            "the host closed the connection while reading command output",
            "NOT a usable backup",
            "was only read and still holds its 3 files",
        ),
        ("drop_receive_for=null", "drop_connection_count=1"),
        # The copy that lost its connection stays (the message says to delete it).
        backups=2,
    ),
    FaultMode(
        "wsf-new",
        ("WS-Man fault 2150858770 while starting a command", "Nothing more was run"),
        ("wsman_fault_on=null", "wsman_fault_code=2150858770"),
    ),
    FaultMode(
        "opto-new",
        ("the command did not finish within 6 s", "It may still be running on the host"),
        ("operation_timeout=false", "command_lifetime_s=300"),
    ),
    FaultMode(
        "inst-new",
        (
            "update.exe from D:\\EXCH55SP3",
            "ended and the service pack is not proven in place (outcome failed)",
            "MSExchangeKMS was not started",
        ),
        ("sp_installer_fails=false",),
        # The failed run had backed up and run update.exe once already.
        backups=2,
        update_runs=2,
    ),
    FaultMode(
        "disk-new",
        ("drive C: has 10240 bytes free, but the copy needs", "Nothing was changed"),
        ("disk_full=false",),
    ),
    FaultMode(
        "pw-new",
        ("it logged event 5057", "the KMS startup password was wrong or missing (KB Q184420)"),
        ("wrong_kms_password=false",),
        # The service pack was reapplied by the failed run; the rerun only starts KMS.
    ),
    FaultMode(
        "stop-new",
        (
            "MSExchangeKMS has been STOP_PENDING for 30 s after sc stop without progress",
            "Nothing was copied",
            "so it was not started again",
        ),
        ("service_wont_stop=[]",),
    ),
)
BY_TARGET = {mode.target: mode for mode in FAULT_MODES}

# opto-new never finishes a command: short WinRM and read timeouts keep the run short.
SHORT_TIMEOUTS = {
    "kms_targets": {
        "hosts": {
            "opto-new": {
                "ansible_winrm_operation_timeout_sec": 2,
                "ansible_winrm_read_timeout_sec": 4,
                "sp_parity_timeout": 6,
            }
        }
    }
}


@dataclass(frozen=True)
class Run:
    result: subprocess.CompletedProcess[str]
    failures: dict[str, str]  # target -> the message of its failed task
    recap: dict[str, dict[str, int]]  # host -> PLAY RECAP counters
    hosts: dict[str, dict]  # exchlab show, after the run
    outcomes: dict[str, str]  # target -> its outcome in remediation.json


class Matrix:
    """The lab and the way this module runs the remediation against it."""

    def __init__(self, lab: RunningLab, workdir: Path) -> None:
        self.lab = lab
        self.workdir = workdir
        timeouts = workdir / "short-timeouts.yml"
        timeouts.write_text(yaml.safe_dump(SHORT_TIMEOUTS), encoding="utf-8")
        self.command = [
            "ansible-playbook", "exchops.kms.remediate_kms_move",
            "-i", str(lab.inventory), "-i", str(timeouts),
            "--forks", str(len(TARGETS) * 2),  # every pair at once: one slow fault must not serialise
            "-e", "kms_remediate_watch=3",
            "-e", f"kms_report_dir={workdir / 'reports'}",
        ]  # fmt: skip
        self.env = ansible_environment(workdir)

    def run(self) -> Run:
        result = run_tool(self.command, self.env, self.workdir)
        report = json.loads(
            (self.workdir / "reports" / "remediation.json").read_text(encoding="utf-8")
        )
        outcomes = {pair["target"]: pair["outcome"] for pair in report["pairs"]}
        return Run(result, failures(result.stdout), recap(result.stdout), self.lab.show(), outcomes)


def failures(stdout: str) -> dict[str, str]:
    """The last failure message Ansible printed for each host (multi-line JSON at -vvvv)."""
    found: dict[str, str] = {}
    decoder = json.JSONDecoder()
    for match in re.finditer(r"^fatal: \[([^\]]+)\]: FAILED! => ", stdout, re.MULTILINE):
        result, _end = decoder.raw_decode(stdout, match.end())
        found[match.group(1)] = result.get("msg", "")
    return found


def recap(stdout: str) -> dict[str, dict[str, int]]:
    counters: dict[str, dict[str, int]] = {}
    for host, fields in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", stdout, re.MULTILINE):
        counters[host] = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", fields)}
    return counters


@pytest.fixture(scope="module")
def matrix(lab_factory, tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    return Matrix(lab_factory("fault_matrix.yml"), tmp_path_factory.mktemp("fault-matrix"))


@pytest.fixture(scope="module")
def faulted_run(matrix: Matrix) -> Run:
    return matrix.run()


def test_the_faulted_run_fails_exactly_the_faulted_pairs(faulted_run: Run) -> None:
    assert faulted_run.result.returncode == 2, faulted_run.result.stdout[-3000:]
    assert sorted(faulted_run.failures) == sorted(BY_TARGET)
    # The report lists every pair with its own outcome, the failed ones included.
    assert faulted_run.outcomes == {
        target: ("failed" if target in BY_TARGET else "remediated") for target in TARGETS
    }
    for target in TARGETS:
        assert faulted_run.recap[target]["failed"] == (1 if target in BY_TARGET else 0), target
        assert faulted_run.recap[target]["unreachable"] == 0, target


@pytest.mark.parametrize("mode", FAULT_MODES, ids=lambda mode: mode.target)
def test_each_fault_ends_its_pair_with_a_clear_message_and_the_km_database_intact(
    faulted_run: Run, mode: FaultMode
) -> None:
    message = faulted_run.failures[mode.target]
    assert message.startswith(mode.target), message
    for fragment in mode.message:
        assert fragment in message, message
    assert "Traceback" not in message
    target = faulted_run.hosts[mode.target]
    assert target["kms_database"]["intact"] is True
    assert target["kms_database"]["stamp_build"] == "5.5.2650"


def test_the_clean_pair_is_remediated_whatever_the_others_meet(faulted_run: Run) -> None:
    clean = faulted_run.hosts["ok-new"]
    assert faulted_run.recap["ok-new"]["failed"] == 0
    assert clean["services"]["MSExchangeKMS"]["state"] == "running"
    assert clean["exchange"]["kms_binary_build"].startswith("5.5.2650.")
    assert [backup["matches_database"] for backup in clean["backups"]] == [True]
    assert all(host["kms_database"]["intact"] is True for host in faulted_run.hosts.values())


@pytest.fixture(scope="module")
def cleared_run(matrix: Matrix, faulted_run: Run) -> Run:
    for mode in FAULT_MODES:
        matrix.lab.fault(mode.target, *mode.clear)
    return matrix.run()


def test_once_the_faults_are_cleared_every_pair_is_remediated(cleared_run: Run) -> None:
    assert cleared_run.result.returncode == 0, cleared_run.result.stdout[-3000:]
    assert cleared_run.failures == {}
    assert set(cleared_run.outcomes.values()) == {"remediated", "unchanged"}
    assert cleared_run.outcomes["ok-new"] == "unchanged"
    for target in TARGETS:
        host = cleared_run.hosts[target]
        source = cleared_run.hosts[target.replace("-new", "-old")]
        mode = BY_TARGET.get(target, FaultMode(target, (), ()))
        assert host["services"]["MSExchangeKMS"]["state"] == "running", target
        assert (
            host["exchange"]["kms_binary_build"] == source["exchange"]["kms_binary_build"]
        ), target
        assert host["kms_database"]["intact"] is True, target
        assert len(host["backups"]) == mode.backups, (target, host["backups"])
        assert all(backup["matches_database"] for backup in host["backups"]), target
        assert len(host["exchange"]["updates"]) == mode.update_runs, (
            target,
            host["exchange"]["updates"],
        )
        assert host["exchange"]["updates"][-1]["outcome"] == "succeeded", target
    assert all(host["kms_database"]["intact"] is True for host in cleared_run.hosts.values())


def test_a_third_run_changes_nothing(matrix: Matrix, cleared_run: Run) -> None:
    again = matrix.run()
    assert again.result.returncode == 0, again.result.stdout[-3000:]
    assert again.outcomes == {target: "unchanged" for target in TARGETS}
    for target in TARGETS:
        assert again.recap[target]["changed"] == 0, (target, again.recap[target])
        assert again.recap[target]["failed"] == 0, target
    assert {name: len(host["backups"]) for name, host in again.hosts.items()} == {
        name: len(host["backups"]) for name, host in cleared_run.hosts.items()
    }
