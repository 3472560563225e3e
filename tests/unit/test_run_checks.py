# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make test` always ends with its summary line: a stage whose tool cannot start, or that breaks,
is a failed stage with its message, and the stages after it still run."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUN_CHECKS = REPO / "hacking" / "run_checks.py"


def interpreter_without_tools(folder: Path) -> Path:
    """A Python whose own folder holds no black, antsibull-changelog or other tool: run_checks
    looks for the tools beside its interpreter, then on PATH."""
    folder.mkdir()
    python = folder / "python"
    python.symlink_to(os.path.realpath(sys.executable))
    return python


def test_a_tool_that_cannot_start_is_a_failed_stage_and_the_next_stage_still_runs(
    tmp_path: Path,
) -> None:
    python = interpreter_without_tools(tmp_path / "bin")
    result = subprocess.run(
        [str(python), str(RUN_CHECKS), "format", "changelog"],
        cwd=REPO,
        env={"PATH": str(tmp_path / "empty"), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "black could not be started: No such file or directory" in result.stdout
    assert "antsibull-changelog could not be started" in result.stdout
    summary = result.stdout.split("=== summary ===")[1].splitlines()
    assert [line.split()[:2] for line in summary[1:3]] == [
        ["FAIL", "format"],
        ["FAIL", "changelog"],
    ]
    assert "(black could not be started)" in summary[1]
    assert summary[-1] == "checks: 0 passed, 2 failed, 0 skipped"


def load_run_checks(monkeypatch):
    """hacking/run_checks.py as a module (its dataclass needs it in sys.modules)."""
    spec = importlib.util.spec_from_file_location("exchops_run_checks", RUN_CHECKS)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_a_stage_that_breaks_is_a_failed_stage_with_its_message(capsys, monkeypatch) -> None:
    run_checks = load_run_checks(monkeypatch)

    def unreadable_report():
        raise PermissionError("[Errno 13] Permission denied: 'tests/output/junit-unit.xml'")

    run_checks.STAGES = {
        "breaks": unreadable_report,
        "after": run_checks.command_stage([sys.executable, "-c", "pass"]),
    }
    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))  # main() puts its own folder first
    code = run_checks.main([])
    printed = capsys.readouterr().out
    assert code == 1
    assert "stage breaks stopped: PermissionError: [Errno 13] Permission denied" in printed
    lines = printed.split("=== summary ===")[1].splitlines()
    assert lines[1].split()[:2] == ["FAIL", "breaks"] and "(PermissionError: " in lines[1]
    assert lines[2].split()[:2] == ["ok", "after"]
    assert lines[-1] == "checks: 1 passed, 1 failed, 0 skipped"
