# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.kms_move_facts against the lab: both servers of a pair read in one task, the source
with its own inventory settings; and exchops.kms.report_files on the controller."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import RunModule, RunningLab, lab_unchanged, override, run_tool

MODULE = "exchops.kms.kms_move_facts"
# read_with_source_settings(module_args="", **variables) -> (the command's result, kms-new's answer)
ReadPair = Callable[..., tuple[subprocess.CompletedProcess[str], dict]]


@pytest.fixture
def read_with_source_settings(
    kb_lab: RunningLab, ansible_module: RunModule, tmp_path: Path
) -> ReadPair:
    """kms_move_facts on kms-new of the KB lab, with some of its source kms-old's inventory
    variables changed (the target's stay as they are)."""

    def run(
        module_args: str = "", **source_variables: object
    ) -> tuple[subprocess.CompletedProcess[str], dict]:
        changed = override(tmp_path, "kms-old", **source_variables)
        result, results = ansible_module(kb_lab, "kms-new", MODULE, module_args, *changed)
        return result, results["kms-new"]

    return run


def test_one_task_reads_both_servers_with_kms_source_host_and_judges_the_kb_pair(
    kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    # Read, never changed.
    with lab_unchanged(kb_lab, "kms-new", "kms-old") as shown:
        result, results = ansible_module(kb_lab, "kms-new", MODULE, "")
    assert result.returncode == 0, result.stdout + result.stderr
    answer = results["kms-new"]
    assert (answer["status"], answer["target"], answer["source"]) == (
        "mismatch",
        "kms-new",
        "kms-old",
    )
    assert (answer["target_build"], answer["source_build"], answer["kms_binary_build"]) == (
        "5.5.2650.0",
        "5.5.2650.0",
        "5.5.1960.8",
    )
    assert answer["remedy"] == "reapply_sp" and answer["remedy_build"] == "5.5.2650"
    assert answer["ansible_facts"]["exchange"]["kms"]["binary_build"] == "5.5.1960.8"
    assert answer["source_facts"]["kms"]["binary_build"] == "5.5.2650.12"
    assert answer["unreachable_servers"] == [] and answer["changed"] is False
    before, after = shown.before, shown.after
    for host in ("kms-new", "kms-old"):
        # Each server answered its own shell (one probe each).
        assert after[host]["requests"]["commands"] - before[host]["requests"]["commands"] == 1
        assert after[host]["requests"]["http"] - before[host]["requests"]["http"] <= 7


def test_the_source_is_read_with_its_own_settings_not_the_targets(
    read_with_source_settings: ReadPair,
) -> None:
    # Only the source's inventory entry gets a wrong password: the target reads, the source is
    # refused, and the verdict names the source.
    result, answer = read_with_source_settings(ansible_password="not-the-password-9")
    assert result.returncode == 0, result.stdout
    # An error, not unreachable: the source answered and refused the password (WinRM reached
    # it), which the gate reports as an error pair (exit code 2), not as a lost server.
    assert answer["status"] == "error"
    assert (
        answer["reason"].startswith("kms-old") and "kms-new" not in answer["reason"].split(":")[0]
    )
    assert answer["source_facts"] is None
    assert answer["ansible_facts"]["exchange"]["build"] == "5.5.2650.0"


def test_a_source_without_winrm_is_an_error_verdict_naming_it(
    read_with_source_settings: ReadPair,
) -> None:
    result, answer = read_with_source_settings(ansible_connection="local")
    assert result.returncode == 0, result.stdout
    assert answer["status"] == "error"
    assert (
        "kms-old: exchops.kms.kms_move_facts reads the KM source server over WinRM"
        in answer["reason"]
    )
    assert "ansible_connection=winrm" in answer["reason"] and "'local'" in answer["reason"]


def test_fail_on_mismatch_fails_the_target_with_the_reason_and_fix_and_no_facts(
    kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    result, results = ansible_module(kb_lab, "kms-new", MODULE, "fail_on_mismatch=true")
    assert result.returncode == 2, result.stdout
    assert "kms-new | FAILED!" in result.stdout
    answer = results["kms-new"]
    assert answer["status"] == "mismatch"
    assert answer["msg"].startswith(
        "kms-new runs Exchange 5.5 SP3 (5.5.2650) but its KM Server binaries"
    )
    assert "Reapply Exchange 5.5 SP3 on kms-new" in answer["msg"]
    assert "ansible_facts" not in answer and "source_facts" not in answer


def test_fail_on_mismatch_ends_the_target_unreachable_when_its_source_cannot_be_reached(
    read_with_source_settings: ReadPair,
) -> None:
    # Port 9 (discard): nothing listens there.
    result, answer = read_with_source_settings("fail_on_mismatch=true timeout=5", ansible_port=9)
    assert result.returncode == 4, result.stdout
    assert answer["unreachable"] is True and answer["status"] == "unreachable"
    assert answer["unreachable_servers"] == ["kms-old"]
    assert answer["msg"].startswith("kms-old")


def test_a_wrong_option_names_the_host_and_the_options(
    kb_lab: RunningLab, ansible_module: RunModule
) -> None:
    result, results = ansible_module(kb_lab, "kms-new", MODULE, "source=kms-old")
    assert result.returncode == 2
    message = results["kms-new"]["msg"]
    assert (
        "kms-new: exchops.kms.kms_move_facts: unknown option 'source' (did you mean 'source_host'?)"
        in message
    )
    assert "Nothing was changed." in message


def test_the_gate_writes_the_whole_report_under_the_free_strategy_too(
    kb_lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    # The play pins the linear strategy: under `free`, the run_once report would not wait for
    # the pairs.
    reports = tmp_path / "reports"
    result = run_tool(
        [
            "ansible-playbook",
            "exchops.kms.check_kms_move",
            "-i",
            str(kb_lab.inventory),
            "-e",
            f"kms_report_dir={reports}",
        ],
        dict(ansible_env, ANSIBLE_STRATEGY="free"),
        tmp_path,
    )
    assert result.returncode == 2, result.stdout
    report = json.loads((reports / "report.json").read_text(encoding="utf-8"))
    assert [(pair["target"], pair["status"]) for pair in report["pairs"]] == [
        ("kms-new", "mismatch")
    ]
    assert report["partial"] is False


# --- exchops.kms.report_files: on the controller, whatever the host --------------------------


REPORT_FILES = "exchops.kms.report_files"


def test_report_files_writes_each_file_whole_and_leaves_no_temporary_file(
    ansible_module: RunModule, tmp_path: Path
) -> None:
    folder = tmp_path / "new" / "kms-report"
    files = {"report.json": "{}\n", "report.md": "# ok\n"}
    arguments = json.dumps({"path": str(folder), "files": files})
    result, results = ansible_module(None, "localhost", REPORT_FILES, arguments, "--check")
    answer = results["localhost"]
    assert result.returncode == 0 and answer["changed"] is False
    assert answer["written"] == [str(folder / "report.json"), str(folder / "report.md")]
    assert (folder / "report.json").read_text(encoding="utf-8") == "{}\n"
    assert sorted(path.name for path in folder.iterdir()) == ["report.json", "report.md"]
    assert oct((folder / "report.md").stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize(
    ("setup", "files", "expected"),
    [
        ("file", {}, "it is a file, not a folder"),
        ("read-only", {"report.json": "{}"}, "cannot be written on the controller"),
        ("folder", {"../report.json": "{}"}, "'../report.json' is not a file name"),
    ],
)
def test_report_files_refuses_clearly_and_writes_nothing(
    ansible_module: RunModule, tmp_path: Path, setup: str, files: dict, expected: str
) -> None:
    target = tmp_path / "target"
    if setup == "file":
        target.write_text("not a folder", encoding="utf-8")
    elif setup == "read-only":
        # root may write into a 0555 folder; nobody may create files under /sys.
        target = Path("/sys/kms-report") if os.geteuid() == 0 else target
        if os.geteuid() != 0:
            target.mkdir(mode=0o555)
    else:
        target.mkdir()
    arguments = json.dumps({"path": str(target), "files": files})
    result, results = ansible_module(None, "localhost", REPORT_FILES, arguments)
    answer = results["localhost"]
    assert result.returncode == 2
    assert expected in answer["msg"] and answer["msg"].startswith("localhost:")
    assert "Set kms_report_dir to a folder you can write" in answer["msg"] or setup == "folder"
    if setup == "folder":
        assert list(target.iterdir()) == []
    elif setup == "read-only":
        assert not (target / "report.json").exists()
