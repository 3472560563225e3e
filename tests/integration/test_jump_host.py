# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""KM servers on Windows NT 4.0 and 2000 run no WinRM: the lab's legacy hosts listen nowhere and
are read through a Windows jump host (exchange_jump_host) that the real pywinrm reaches with
CredSSP, whose delegated credentials the lab's jump host uses towards them. The gate, the facts,
fleet build parity and the doctor through it; a logon that delegates nothing; a direct
connection to a legacy host. The jump hosts' command lines are checked for passwords when each
lab stops (conftest), and the parity run checks them itself."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import SECRET_SCAN, LabFactory, RunGate, RunModule, RunningLab, pair_verdict
from secret_scan import leak_report, secrets_of

GATE = "exchops.kms.check_kms_move"
PARITY = "exchops.kms.check_exchange_parity"
DOCTOR = "exchops.kms.winrm_doctor"
ALL_MATCH, NOT_A_MATCH, UNREACHABLE = 0, 2, 4
# check_exchange_parity's exit codes (roles/exchange_parity/README.md): ansible-playbook's own.
PARITY_PASS, PARITY_OUTLIER = 0, 2
# The task of the parity role that reads each host (roles/exchange_parity/tasks/check.yml).
PARITY_READ_TASK = (
    "exchops.kms.exchange_parity : Read the Exchange build of every host of the group"
)
JUMP_MIXED_HOSTS = ("kms-old", "kms-new", "e2k-old", "e2k-new", "w2k-kms55")
# How Ansible's default callback prints a task's result at -vvvv: its JSON follows the brace.
OK_RESULT = re.compile(r"^ok: \[(?P<host>[^\]]+)\] => \{$", re.MULTILINE)

# What exchange_facts reads of each legacy Windows of the lab (SP6a keeps SP6's CSDVersion).
WINDOWS_READ = {
    "nt4": {"version": "4.0", "build": "1381", "service_pack": "Service Pack 6"},
    "2000": {"version": "5.0", "build": "2195", "service_pack": "Service Pack 4"},
}


@pytest.fixture(scope="module")
def jump_kb_lab(lab_factory: LabFactory) -> RunningLab:
    return lab_factory("jump_q259906.yml")


@pytest.fixture(scope="module")
def jump_mixed_lab(lab_factory: LabFactory) -> RunningLab:
    """Every legacy kind behind jump01 (tests/lab/fleets/jump_mixed.yml); read, never changed."""
    return lab_factory("jump_mixed.yml")


def jump_settings(tmp_path: Path, **settings: object) -> list[str]:
    """An extra inventory that changes jump01's settings."""
    extra = tmp_path / "jump01.yml"
    extra.write_text(yaml.safe_dump({"all": {"hosts": {"jump01": settings}}}), encoding="utf-8")
    return ["-i", str(extra)]


def test_the_gate_through_a_jump_host_gives_the_direct_kb_labs_verdict(
    jump_kb_lab: RunningLab, kb_lab: RunningLab, gate_playbook: RunGate
) -> None:
    through, report, markdown, _junit = gate_playbook(GATE, jump_kb_lab)
    direct, direct_report, _markdown, _junit = gate_playbook(GATE, kb_lab)
    assert (through.returncode, direct.returncode) == (NOT_A_MATCH, NOT_A_MATCH), through.stdout
    (pair,) = report["pairs"]
    (direct_pair,) = direct_report["pairs"]
    assert pair_verdict(pair) == pair_verdict(direct_pair)
    assert (pair["status"], pair["kms_binary_build"]) == ("mismatch", "5.5.1960.8")
    assert "reapply" in pair["fix"].lower() and "kms-new" in markdown
    # Only the jump host listens; it started the reads with the servers' NetBIOS names.
    lines = jump_kb_lab.show("jump01")["command_lines"]
    assert any(
        'reg query "\\\\KMS-NEW\\HKLM\\SOFTWARE\\Microsoft\\Exchange' in line for line in lines
    )
    assert any("wmic /node:KMS-OLD datafile" in line for line in lines)


def test_a_matched_pair_behind_a_jump_host_passes_the_gate(
    lab_factory: LabFactory, gate_playbook: RunGate
) -> None:
    result, report, _markdown, _junit = gate_playbook(GATE, lab_factory("jump_matched.yml"))
    assert result.returncode == ALL_MATCH, result.stdout
    assert [pair["status"] for pair in report["pairs"]] == ["match"]


def test_exchange_facts_are_right_for_every_legacy_kind_behind_one_jump_host(
    jump_mixed_lab: RunningLab, ansible_module: RunModule
) -> None:
    lab = jump_mixed_lab
    shown = lab.show()
    _result, results = ansible_module(lab, "all:!jump_hosts", "exchops.kms.exchange_facts", "")
    assert set(results) == set(JUMP_MIXED_HOSTS)
    for host, result in results.items():
        facts = result["ansible_facts"]["exchange"]
        exchange = shown[host]["exchange"]
        assert facts["reach"] == {"via": "jump01", "auth": "delegated"}, host
        assert facts["service_pack"] == exchange["service_pack"], host
        assert facts["build"].startswith(exchange["build"] + "."), host
        assert (
            facts["kms"]["service"]["state"] == shown[host]["services"]["MSExchangeKMS"]["state"]
        ), host
        # The fleet's NT 4.0 SP6a and Windows 2000 SP4, as their registry gives them, read in
        # the same command line (docs/registry.md#windows-version).
        assert facts["windows"] == WINDOWS_READ[shown[host]["os"]], host
    # NT 4.0 without WMI core: no version and no event is guessed, and the facts say why.
    without_wmi = results["kms-new"]["ansible_facts"]["exchange"]
    assert without_wmi["kms"].get("binary_build") is None
    assert without_wmi["sources"]["file_versions"].startswith("unavailable (WMI: ")
    assert without_wmi["sources"]["events"].startswith("unavailable (WMI: ")
    assert without_wmi["kms"]["events"] == []
    with_wmi = results["kms-old"]["ansible_facts"]["exchange"]
    assert with_wmi["kms"]["binary_build"] == shown["kms-old"]["exchange"]["kms_binary_build"]


def parity_groups(tmp_path: Path, **groups: tuple[str, ...]) -> list[str]:
    """An extra inventory that puts hosts of a lab's inventory into groups of their own."""
    extra = tmp_path / f"groups-{len(list(tmp_path.glob('groups-*')))}.yml"
    children = {name: {"hosts": {host: {} for host in hosts}} for name, hosts in groups.items()}
    extra.write_text(yaml.safe_dump({"all": {"children": children}}), encoding="utf-8")
    return ["-i", str(extra)]


def task_results(stdout: str, task: str) -> dict[str, dict]:
    """Each host's result of TASK as ansible-playbook printed it at -vvvv (the suite's
    verbosity): the `ok: [HOST] => {...}` results after the task's header, up to the next task."""
    start = stdout.index(f"TASK [{task}]")
    end = stdout.find("\nTASK [", start + 1)
    block = stdout[start : end if end != -1 else len(stdout)]
    decoder = json.JSONDecoder()
    return {
        match.group("host"): decoder.raw_decode(block, match.end() - 1)[0]
        for match in OK_RESULT.finditer(block)
    }


def inventory_password_leaks(lab: RunningLab, texts: dict[str, str]) -> str:
    """Every password of LAB's inventory (the account's and the KMS startup password) found in
    TEXTS (where -> text), in every form the secret scan knows; '' if none. The passwords
    themselves are never shown."""
    passwords = secrets_of(["-i", str(lab.inventory)], lab.state).secrets
    keys = {origin.rsplit(" ", 1)[-1] for origin in passwords.values()}
    assert keys == {"ansible_password", "kms_startup_password"}, keys
    leaks = []
    for where, text in texts.items():
        leaks += SECRET_SCAN.scan_bytes(text.encode("utf-8"), where, passwords)
    return leak_report(leaks)


def test_fleet_parity_reads_every_legacy_kind_through_the_jump_host_and_names_the_outliers(
    jump_mixed_lab: RunningLab, gate_playbook: RunGate, tmp_path: Path
) -> None:
    lab = jump_mixed_lab
    before = lab.show()
    groups = parity_groups(tmp_path, behind_jump01=JUMP_MIXED_HOSTS)
    result, report, markdown, junit = gate_playbook(
        PARITY, lab, *groups, "-e", "exchange_parity_group=behind_jump01"
    )
    # Two products in one group: Exchange 5.5 (3 hosts) is the reference, its SP3 the build most
    # hosts run; Exchange 2000 is never compared, and the 5.5 SP4 host is ahead.
    assert result.returncode == PARITY_OUTLIER, result.stdout
    rows = {row["host"]: row for row in report["hosts"]}
    assert len(report["hosts"]) == len(rows) == len(JUMP_MIXED_HOSTS)
    assert {host: row["status"] for host, row in rows.items()} == {
        "kms-old": "ok",
        "kms-new": "ok",
        "e2k-old": "outlier",
        "e2k-new": "outlier",
        "w2k-kms55": "outlier",
    }
    assert report["counts"] == {"ok": 2, "outlier": 3, "unreachable": 0, "error": 0}
    assert report["reference"]["release"] == "Exchange Server 5.5 SP3"
    assert "a different product from Exchange Server 5.5" in rows["e2k-old"]["reason"]
    assert "(this host is ahead of them)" in rows["w2k-kms55"]["reason"]
    for host in JUMP_MIXED_HOSTS:
        exchange = before[host]["exchange"]
        assert rows[host]["build"].startswith(exchange["build"] + "."), host
        assert rows[host]["release"] == exchange["release"], host
        if host != "kms-new":
            assert rows[host]["kms_binary_build"] == exchange["kms_binary_build"], host
    # NT 4.0 without WMI core: Kmserver.exe's version is not guessed.
    assert rows["kms-new"]["kms_binary_build"] is None
    suite = junit.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "3", "0")
    assert "- **w2k-kms55**: Install Exchange Server 5.5 SP4 on the hosts behind w2k-kms55" in (
        markdown
    )

    # Each host's facts came through jump01, and only jump01 was asked: the servers listen
    # nowhere and counted no request; jump01 named each of them on its command lines.
    reads = task_results(result.stdout, PARITY_READ_TASK)
    assert set(reads) == set(JUMP_MIXED_HOSTS), result.stdout
    for host, read in reads.items():
        assert read["ansible_facts"]["exchange"]["reach"] == {
            "via": "jump01",
            "auth": "delegated",
        }, host
    after = lab.show()
    for host in JUMP_MIXED_HOSTS:
        assert after[host]["requests"] == {
            "http": 0,
            "shells": 0,
            "commands": 0,
            "shells_peak": 0,
        }, host
    assert after["jump01"]["requests"]["commands"] > before["jump01"]["requests"]["commands"]
    lines = after["jump01"]["command_lines"]
    for name in ("KMS-OLD", "KMS-NEW", "E2K-OLD", "E2K-NEW", "W2K-KMS55"):
        assert any(f'reg query "\\\\{name}\\HKLM\\SOFTWARE' in line for line in lines), name
    # No password of the inventory on any command line jump01 started (its process-creation
    # audit, event 4688) nor in what ansible-playbook printed at -vvvv.
    texts = {f"jump01's command line {n}": line for n, line in enumerate(lines, start=1)}
    texts.update(stdout=result.stdout, stderr=result.stderr)
    assert inventory_password_leaks(lab, texts) == ""


def test_fleet_parity_passes_a_matched_group_behind_the_jump_host(
    jump_mixed_lab: RunningLab, gate_playbook: RunGate, tmp_path: Path
) -> None:
    groups = parity_groups(tmp_path, nt4_kms=("kms-old", "kms-new"))
    result, report, _markdown, junit = gate_playbook(
        PARITY, jump_mixed_lab, *groups, "-e", "exchange_parity_group=nt4_kms"
    )
    assert result.returncode == PARITY_PASS, result.stdout
    assert report["result"] == "pass" and report["outliers"] == []
    assert report["counts"] == {"ok": 2, "outlier": 0, "unreachable": 0, "error": 0}
    assert report["summary"] == "All 2 hosts of nt4_kms run Exchange Server 5.5 SP3 (5.5.2650.0)."
    assert junit.find("testsuite").get("failures") == "0"
    assert "failed=1" not in result.stdout


# What a parity row says that does not depend on how its server was reached.
PARITY_VERDICT = (
    "status",
    "build",
    "release",
    "behind",
    "kms_binary_build",
    "kms_binary_release",
    "reason",
    "fix",
)


def test_fleet_parity_of_the_kb_pair_through_the_jump_host_is_the_direct_labs(
    jump_kb_lab: RunningLab, kb_lab: RunningLab, gate_playbook: RunGate, tmp_path: Path
) -> None:
    # Both KM servers of KB Q259906 run 5.5 SP3, so their builds are on par: parity passes the
    # pair, and its report shows the RTM Kmserver.exe the KM gate fails it for (test above).
    groups = parity_groups(tmp_path, kb_pair=("kms-old", "kms-new"))
    through, report, markdown, _junit = gate_playbook(
        PARITY, jump_kb_lab, *groups, "-e", "exchange_parity_group=kb_pair"
    )
    direct, direct_report, _markdown, _junit = gate_playbook(
        PARITY, kb_lab, *groups, "-e", "exchange_parity_group=kb_pair"
    )
    assert (through.returncode, direct.returncode) == (PARITY_PASS, PARITY_PASS), through.stdout
    rows = {row["host"]: {key: row[key] for key in PARITY_VERDICT} for row in report["hosts"]}
    direct_rows = {
        row["host"]: {key: row[key] for key in PARITY_VERDICT} for row in direct_report["hosts"]
    }
    assert rows == direct_rows
    assert rows["kms-new"]["kms_binary_build"] == "5.5.1960.8"
    assert rows["kms-new"]["kms_binary_release"] == "Exchange Server 5.5 RTM"
    assert rows["kms-old"]["kms_binary_build"].startswith("5.5.2650.")
    assert "5.5.1960.8 (Exchange Server 5.5 RTM)" in markdown
    reads = task_results(through.stdout, PARITY_READ_TASK)
    assert {
        host: read["ansible_facts"]["exchange"]["reach"]["via"] for host, read in reads.items()
    } == {
        "kms-old": "jump01",
        "kms-new": "jump01",
    }


def test_a_jump_host_reached_with_ntlm_fails_every_legacy_host_naming_the_double_hop(
    jump_kb_lab: RunningLab, gate_playbook: RunGate, ansible_module: RunModule, tmp_path: Path
) -> None:
    ntlm = jump_settings(tmp_path, ansible_winrm_transport="ntlm")
    before = jump_kb_lab.show("jump01")["requests"]
    result, report, _markdown, _junit = gate_playbook(GATE, jump_kb_lab, *ntlm)
    assert result.returncode == NOT_A_MATCH, result.stdout
    (pair,) = report["pairs"]
    assert pair["status"] == "error"
    assert "delegates no credentials" in pair["reason"] and "(the double hop)" in pair["reason"]
    assert "Set ansible_winrm_transport: credssp for jump01" in pair["reason"]
    # Refused from the settings: nothing was sent to the jump host.
    assert jump_kb_lab.show("jump01")["requests"] == before
    # The doctor says the same, after trying both hops.
    _result, results = ansible_module(
        jump_kb_lab, "kms-new", DOCTOR, "fail_on_problems=false", *ntlm
    )
    problems = {problem["id"]: problem for problem in results["kms-new"]["problems"]}
    assert "jump_no_delegation" in problems, problems
    assert "the double hop" in problems["jump_no_delegation"]["message"]
    assert "credssp" in problems["jump_no_delegation"]["fix"]


def test_direct_winrm_to_a_legacy_host_is_unreachable_and_names_exchange_jump_host(
    jump_kb_lab: RunningLab, ansible_module: RunModule, tmp_path: Path
) -> None:
    # kms-new without exchange_jump_host, with WinRM settings of its own: WinRM straight to the
    # server, which runs none (and whose NetBIOS name the controller does not resolve).
    direct_settings = {
        "exchange_jump_host": None,
        "ansible_user": "LAB\\labadmin",
        "ansible_port": 5985,
        "ansible_winrm_scheme": "http",
    }
    direct = tmp_path / "direct.yml"
    direct.write_text(
        yaml.safe_dump({"all": {"hosts": {"kms-new": direct_settings}}}), encoding="utf-8"
    )
    result, results = ansible_module(
        jump_kb_lab, "kms-new", "exchops.kms.exchange_facts", "", "-i", str(direct)
    )
    assert results["kms-new"].get("unreachable"), result.stdout
    message = results["kms-new"]["msg"]
    assert message.startswith("kms-new (")
    assert "unreachable: " in message
    assert "reach it through a Windows jump host by setting exchange_jump_host" in message


def test_the_doctor_proves_the_second_hop_and_names_the_servers_windows(
    jump_kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    _result, results = ansible_module(jump_kb_lab, "kms-new", DOCTOR, "")
    assert results["kms-new"]["problems"] == [], results["kms-new"]
    assert results["kms-new"]["msg"] == (
        "kms-new: jump01 reads KMS-NEW (Windows NT 4.0) with the credentials its logon "
        "carries; WMI answers."
    )
