# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""README's CI samples run as written: in a copy of the checkout with the operator's inventory
added as inventory.yml (here the KB lab's), each command line of the sample, in order, in a venv
that holds nothing but what the sample installs, ends as a CI job needs it to, and the files its
later steps read (the report, the JUnit file) are there. tests/unit/test_readme_ci.py checks,
without running them, that every file the samples name exists or is made by an earlier step."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, RunningLab, ansible_environment, run_tool

sys.path.insert(0, str(REPO / "tests" / "unit"))
# pylint: disable-next=wrong-import-position
from test_readme_ci import ci_samples, steps_of  # noqa: E402

NOT_A_MATCH = 2  # the KB lab's pair mismatches: the gate's exit code that fails the CI job

pytestmark = pytest.mark.newest_line_only(
    reason="the samples install their own ansible-core into a venv of their own: the line under "
    "test plays no part"
)


def sample(kind: str) -> dict:
    """README's GitHub Actions ("steps") or GitLab CI ("script") job."""
    (job,) = [job for _name, job in ci_samples() if kind in job]
    return job


def checkout_with_inventory(folder: Path, lab: RunningLab) -> Path:
    """What the runner's checkout holds: the repository's files (tracked or new, as a clone
    would), and the operator's inventory.yml."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listing.split("\0")):
        if (REPO / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, folder / name, follow_symlinks=False)
    shutil.copy2(lab.inventory, folder / "inventory.yml")
    return folder


@pytest.fixture(scope="module")
def runner_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with nothing installed: what the job's Python is before its pip line."""
    venv = tmp_path_factory.mktemp("runner") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return venv / "bin"


def run_lines(steps: list[tuple[str, dict[str, str]]], checkout: Path, venv_bin: Path) -> list[int]:
    """Each (command line, the step's environment) as the job's shell runs it, in order, on a
    PATH that holds only the job's venv and the system; the exit code of each."""
    codes = []
    for line, step_env in steps:
        env = ansible_environment(checkout.parent)
        env.update(step_env, PATH=f"{venv_bin}:/usr/bin:/bin")
        result = run_tool(["bash", "-c", line], env, checkout)
        codes.append(result.returncode)
        if result.returncode not in (0, NOT_A_MATCH):
            raise AssertionError(f"{line!r} exited {result.returncode}:\n{result.stdout[-3000:]}")
    return codes


def test_the_gitlab_sample_runs_as_written_and_fails_the_job_on_the_kb_pair(
    kb_lab: RunningLab, runner_venv: Path, tmp_path: Path
) -> None:
    job = sample("script")
    checkout = checkout_with_inventory(tmp_path / "checkout", kb_lab)
    codes = run_lines([(line, {}) for line in job["script"]], checkout, runner_venv)
    # pip, build, install succeed; the gate fails the job (exit 2) on the KB pair.
    assert codes == [0, 0, 0, NOT_A_MATCH], codes
    for name in (*job["artifacts"]["paths"], job["artifacts"]["reports"]["junit"]):
        assert (checkout / name).exists(), name
    assert "kms-new" in (checkout / "kms-report" / "report.md").read_text(encoding="utf-8")


def test_the_github_sample_runs_as_written_and_its_summary_step_has_the_report(
    kb_lab: RunningLab, runner_venv: Path, tmp_path: Path
) -> None:
    job = sample("steps")
    checkout = checkout_with_inventory(tmp_path / "checkout", kb_lab)
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    # The sample's vault password file, which the operator provides on the runner.
    (runner_temp / "vault-pass").write_text("not-a-secret-of-this-inventory\n", encoding="utf-8")
    summary = tmp_path / "step-summary.txt"
    steps = []
    for step in job["steps"]:
        if "run" in step:
            step_env = {"GITHUB_STEP_SUMMARY": str(summary)}
            for name, value in (step.get("env") or {}).items():
                step_env[name] = value.replace("${{ runner.temp }}", str(runner_temp))
            steps.append((step["run"], step_env))
    codes = run_lines(steps, checkout, runner_venv)
    assert codes == [0, 0, 0, NOT_A_MATCH, 0], codes
    report = (checkout / "kms-report" / "report.md").read_text(encoding="utf-8")
    assert summary.read_text(encoding="utf-8") == report
    for _command, settings in steps_of(job):
        for key in ("path", "report_paths"):
            if key in settings:
                assert (checkout / settings[key]).exists(), settings[key]
