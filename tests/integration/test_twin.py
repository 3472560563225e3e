# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rehearsal twins (`exchlab twin`): a lab built from what was gathered on a fleet reproduces its
KB Q259906 failure, and the gate, the check-mode plan and the remediation behave on it as on the
fleet itself; a fleet read through a Windows jump host gets a twin read the same way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import BIN, RunModule, RunningLab, lab_unchanged, pair_verdict, run_tool

pytestmark = pytest.mark.newest_line_only(
    reason="exchlab twin is the lab's own; the gate and the remediation it runs on a twin are "
    "tested on every line by their own tests"
)

# ansible-playbook's own exit codes, which the gate's README documents.
ALL_MATCH, NOT_A_MATCH = 0, 2


@pytest.fixture
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RunningLab]]:
    """Twin labs, each on its own loopback range; stopped (and checked) at teardown. Their state
    lives outside the tests' working folder: the inventory there holds the lab's password, which
    the secret scan would rightly flag in any folder a command writes to."""
    started: list[RunningLab] = []
    yield started
    for twin in started:
        twin.down()
        assert not (twin.state / "exchlab.pid").exists(), "twin lab still running"


def build_twin(
    twins: list[RunningLab],
    facts: Path,
    env: dict[str, str],
    cwd: Path,
    state: Path,
    *extra: str,
):
    twin = RunningLab("twin", state)
    command = [
        str(BIN / "exchlab"),
        "twin",
        "--facts",
        str(facts),
        "--state",
        str(state),
        "--base-address",
        twin.base,
        "--http-port",
        "35985",
        "--https-port",
        "35986",
        *extra,
    ]
    result = run_tool(command, env, cwd)
    twins.append(twin)
    assert result.returncode == 0, result.stderr
    return twin, result


def gate(lab: RunningLab, env: dict[str, str], cwd: Path, reports: Path):
    result = run_tool(
        [
            "ansible-playbook",
            "exchops.kms.check_kms_move",
            "-i",
            str(lab.inventory),
            "-e",
            f"kms_report_dir={reports}",
        ],
        env,
        cwd,
    )
    return result, json.loads((reports / "report.json").read_text(encoding="utf-8"))


def pair_summary(report: dict) -> list[tuple]:
    return [
        (
            p["target"],
            p["source"],
            p["status"],
            p["target_build"],
            p["source_build"],
            p["kms_binary_build"],
        )
        for p in report["pairs"]
    ]


def rehearse(twin: RunningLab, env: dict[str, str], cwd: Path, reports: Path) -> None:
    """The runbook's rehearsal on a twin of the KB pair: gate, plan, remediation, gate."""
    failed, report = gate(twin, env, cwd, reports / "gate-before")
    assert failed.returncode == NOT_A_MATCH, failed.stdout[-3000:]
    assert pair_summary(report) == [
        ("kms-new", "kms-old", "mismatch", "5.5.2650.0", "5.5.2650.0", "5.5.1960.8")
    ]
    assert any(finding.startswith("event 5389 at ") for finding in report["pairs"][0]["findings"])
    assert "(KB Q259906)" in report["pairs"][0]["reason"]

    playbook = [
        "ansible-playbook",
        "exchops.kms.remediate_kms_move",
        "-i",
        str(twin.inventory),
        "-e",
        f"kms_report_dir={reports / 'remediation'}",
    ]
    with lab_unchanged(twin):  # check mode changes nothing on the twin
        planned = run_tool([*playbook, "--check"], env, cwd)
        assert planned.returncode == 0, planned.stdout[-3000:]
    plan = json.loads((reports / "remediation" / "plan-kms-new.json").read_text(encoding="utf-8"))
    # Check mode predicts no Kmserver.exe version: no source lists it per service pack.
    assert (plan["kms_binary_before"], plan["media_build"], plan["kms_binary_after"]) == (
        "5.5.1960.8",
        "5.5.2650.0",
        "5.5.1960.8",
    )

    fixed = run_tool(playbook, env, cwd)
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    outcome = json.loads((reports / "remediation" / "remediation.json").read_text(encoding="utf-8"))
    assert [(p["target"], p["outcome"]) for p in outcome["pairs"]] == [("kms-new", "remediated")]
    target = twin.show("kms-new")
    assert target["services"]["MSExchangeKMS"]["state"] == "running"
    assert target["kms_database"]["intact"] is True
    assert target["kms_database"]["stamp_build"] == "5.5.2650"
    assert [backup["matches_database"] for backup in target["backups"]] == [True]

    passed, report = gate(twin, env, cwd, reports / "gate-after")
    assert passed.returncode == ALL_MATCH, passed.stdout[-3000:]
    assert [p["status"] for p in report["pairs"]] == ["match"]


def test_a_twin_of_the_kb_fleets_gathered_facts_fails_like_it_and_is_remediated(
    lab_factory,
    twins,
    ansible_module: RunModule,
    ansible_env: dict[str, str],
    tmp_path: Path,
    tmp_path_factory,
) -> None:
    fleet = lab_factory("q259906.yml")
    gathered, results = ansible_module(fleet, "all", "exchops.kms.exchange_facts", "")
    assert gathered.returncode == 0, gathered.stdout[-3000:]
    # One file mapping each host to its result, as an admin collects them from the real servers.
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(results, indent=1), encoding="utf-8")
    _real_gate, real_report = gate(fleet, ansible_env, tmp_path, tmp_path / "real-gate")

    twin, built = build_twin(
        twins,
        facts,
        ansible_env,
        tmp_path,
        tmp_path_factory.mktemp("twin") / "state",
        "--pair",
        "kms-new=kms-old",
    )
    assert "exchlab twin: 2 host(s), 1 pair(s) from facts.json" in built.stdout
    assert built.stderr == ""  # the lab's own hosts carry nothing the lab cannot model
    assert twin.show("kms-new")["kms_database"]["stamp_build"] == "5.5.2650"
    assert twin.show("kms-new")["services"]["MSExchangeKMS"]["state"] == "stopped"
    assert twin.show("kms-old")["services"]["MSExchangeKMS"]["state"] == "running"

    _failed, twin_report = gate(twin, ansible_env, tmp_path, tmp_path / "twin-gate")
    assert pair_summary(twin_report) == pair_summary(real_report)
    assert twin_report["pairs"][0]["reason"] == real_report["pairs"][0]["reason"]
    rehearse(twin, ansible_env, tmp_path, tmp_path / "rehearsal")


def test_a_twin_of_a_tree_folder_pairs_itself_from_the_fleets_inventory(
    lab_factory, twins, ansible_env: dict[str, str], tmp_path: Path, tmp_path_factory
) -> None:
    fleet = lab_factory("q259906.yml")
    tree = tmp_path / "facts-tree"
    gathered = run_tool(
        [
            "ansible",
            "-i",
            str(fleet.inventory),
            "all",
            "-m",
            "exchops.kms.exchange_facts",
            "--tree",
            str(tree),
        ],
        ansible_env,
        tmp_path,
    )
    assert gathered.returncode == 0, gathered.stdout[-3000:]
    twin, _built = build_twin(
        twins,
        tree,
        ansible_env,
        tmp_path,
        tmp_path_factory.mktemp("twin") / "state",
        "--pairs",
        str(fleet.inventory),
    )
    fleet_text = (twin.state / "twin-fleet.yml").read_text(encoding="utf-8")
    assert "database_stamp: 5.5.2650" in fleet_text and "password" not in fleet_text.lower()
    _failed, report = gate(twin, ansible_env, tmp_path, tmp_path / "twin-gate")
    assert [p["status"] for p in report["pairs"]] == ["mismatch"]


def test_a_twin_of_a_gate_report_reproduces_the_failure_and_its_remediation(
    lab_factory, twins, ansible_env: dict[str, str], tmp_path: Path, tmp_path_factory
) -> None:
    fleet = lab_factory("q259906.yml")
    real_gate, real_report = gate(fleet, ansible_env, tmp_path, tmp_path / "real-gate")
    assert real_gate.returncode == NOT_A_MATCH

    twin, built = build_twin(
        twins,
        tmp_path / "real-gate" / "report.json",
        ansible_env,
        tmp_path,
        tmp_path_factory.mktemp("twin") / "state",
    )
    assert "report.json carries builds only" in built.stderr
    assert "kms-new: MSExchangeKMS stopped with event 5389 (derived:" in built.stderr
    rehearse(twin, ansible_env, tmp_path, tmp_path / "rehearsal")


def test_a_twin_of_facts_read_through_a_jump_host_is_read_through_its_jump_host_and_fails_alike(
    lab_factory,
    twins,
    ansible_module: RunModule,
    ansible_env: dict[str, str],
    tmp_path: Path,
    tmp_path_factory,
) -> None:
    # Both KM servers run Windows NT 4.0 SP6a behind jump01; the admin reads every host of the
    # inventory, the jump host included, as they come.
    fleet = lab_factory("jump_q259906.yml")
    gathered, results = ansible_module(fleet, "all", "exchops.kms.exchange_facts", "")
    assert gathered.returncode == 0, gathered.stdout[-3000:]
    for host in ("kms-old", "kms-new"):
        exchange = results[host]["ansible_facts"]["exchange"]
        assert exchange["reach"] == {"via": "jump01", "auth": "delegated"}
        # SP6a keeps SP6's CSDVersion (docs/registry.md#windows-version).
        assert exchange["windows"] == {
            "version": "4.0",
            "build": "1381",
            "service_pack": "Service Pack 6",
        }
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(results, indent=1), encoding="utf-8")
    real_gate, real_report = gate(fleet, ansible_env, tmp_path, tmp_path / "real-gate")
    assert real_gate.returncode == NOT_A_MATCH, real_gate.stdout[-3000:]

    twin, built = build_twin(
        twins,
        facts,
        ansible_env,
        tmp_path,
        tmp_path_factory.mktemp("twin") / "state",
        "--pairs",
        str(fleet.inventory),
    )
    assert "exchlab twin: 3 host(s), 1 pair(s) from facts.json" in built.stdout
    assert (
        "exchlab twin: warning: jump01: the jump host of kms-new, kms-old; no fact names its own "
        "Windows, so the twin's runs Windows Server 2016" in built.stderr
    )
    written = yaml.safe_load((twin.state / "twin-fleet.yml").read_text(encoding="utf-8"))
    assert written["jump_hosts"] == [{"name": "jump01", "os": "2016"}]
    (pair,) = written["pairs"]
    for role in ("source", "target"):
        assert {key: pair[role][key] for key in ("os", "sp", "wmi_core", "reach")} == {
            "os": "nt4",
            "sp": 6,
            "wmi_core": True,
            "reach": {"via": "jump01"},
        }
    shown = twin.show()
    assert {host: shown[host]["os"] for host in ("jump01", "kms-old", "kms-new")} == {
        "jump01": "2016",
        "kms-old": "nt4",
        "kms-new": "nt4",
    }

    twin_gate, twin_report = gate(twin, ansible_env, tmp_path, tmp_path / "twin-gate")
    assert twin_gate.returncode == NOT_A_MATCH, twin_gate.stdout[-3000:]
    (twin_pair,) = twin_report["pairs"]
    (real_pair,) = real_report["pairs"]
    assert pair_verdict(twin_pair) == pair_verdict(real_pair)
    assert (twin_pair["status"], twin_pair["kms_binary_build"]) == ("mismatch", "5.5.1960.8")
    # The twin's servers listen nowhere: its gate read them through its jump host, by name.
    lines = twin.show("jump01")["command_lines"]
    assert any(
        'reg query "\\\\KMS-NEW\\HKLM\\SOFTWARE\\Microsoft\\Exchange' in line for line in lines
    )
    assert twin.command_line_leaks() == ""
