# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run every test and check of exchops.kms, in order, and end with one 'N passed, N failed' line.

`make test` runs all stages; `make <stage>` (or `run_checks.py STAGE ...`) runs some. Every stage
runs even when an earlier one failed, so one run shows every problem; the exit code is non-zero
when any stage failed. pytest stages count their tests (from JUnit XML); every other stage counts
as one check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "output"
PYTHON_VERSION = "3.11"


@dataclass
class Outcome:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    detail: str = ""


# The exit code of a command that could not be started, as a shell reports it.
NOT_STARTED = 127


def run(command: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> int:
    """Run COMMAND and return its exit code; a command that cannot start (not installed, not
    executable) is reported and returns NOT_STARTED, so that its stage fails and the rest run."""
    print(f"$ {' '.join(command)}", flush=True)
    try:
        return subprocess.run(command, cwd=cwd, env=env, check=False).returncode
    except OSError as error:
        print(f"{command[0]} could not be started: {error.strerror or error}", flush=True)
        return NOT_STARTED


# The further ansible-core lines, each in its own venv made by hacking/setup.sh from
# constraints/ansible-core-LINE.txt; the newest line (2.19) is .venv's, that of every other stage.
OLDEST_LINE = "2.16"
MIDDLE_LINES = ("2.17", "2.18")


def line_bin(line: str) -> Path:
    """The bin folder of LINE's venv: its python and ansible-* tools."""
    return ROOT / f".venv-{line}" / "bin"


def pytest_stage(
    name: str,
    paths: list[str],
    options: tuple[str, ...] = (),
    python: Path | None = None,
    env: dict[str, str] | None = None,
) -> Callable[[], Outcome]:
    """pytest PATHS OPTIONS with PYTHON (this one by default) and ENV added to the environment;
    its JUnit report is tests/output/junit-NAME.xml."""

    def stage() -> Outcome:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        junit = OUTPUT / f"junit-{name}.xml"
        junit.unlink(missing_ok=True)
        command = [str(python or sys.executable), "-m", "pytest", *paths, "-q", *options]
        code = run([*command, f"--junitxml={junit}"], env=dict(os.environ, **(env or {})))
        if not junit.exists():
            ended = exit_detail(command, code) if code == NOT_STARTED else f"pytest exited {code}"
            return Outcome(failed=1, detail=f"{ended} without a report")
        suite = ET.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        total = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
        outcome = Outcome(passed=total - failed - skipped, failed=failed, skipped=skipped)
        if total == 0:
            # pytest's exit 5: a stage that ran nothing is a failure, not a pass.
            outcome.failed, outcome.detail = 1, "no test collected"
        elif code != 0 and failed == 0:
            outcome.failed, outcome.detail = 1, f"pytest exited {code}"
        return outcome

    return stage


def collection_files() -> list[str]:
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [name for name in listing.split("\0") if name and (ROOT / name).exists()]


def sanity_stage(tools: Path | None = None) -> Callable[[], Outcome]:
    """`ansible-test sanity` of the line whose bin folder is TOOLS (this venv's by default)."""

    def stage() -> Outcome:
        # ansible-test needs a real ansible_collections/exchops/kms directory (a symlink fails: it
        # uses the physical cwd), so the tracked and new files are copied into one.
        with tempfile.TemporaryDirectory(prefix="exchops-sanity-") as scratch:
            copy = Path(scratch) / "ansible_collections" / "exchops" / "kms"
            for name in collection_files():
                target = copy / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, target, follow_symlinks=False)
            env = dict(os.environ, ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False")
            if tools:
                env["PATH"] = f"{tools}{os.pathsep}{env['PATH']}"
            command = ["ansible-test", "sanity", "--local", "--python", PYTHON_VERSION]
            code = run([*command, "--color", "no"], cwd=copy, env=env)
        return (
            Outcome(passed=1) if code == 0 else Outcome(failed=1, detail=exit_detail(command, code))
        )

    return stage


def exit_detail(command: list[str], code: int) -> str:
    """How a failed command ended, for the summary."""
    return f"{command[0]} could not be started" if code == NOT_STARTED else f"exit {code}"


def command_stage(command: list[str], env: dict[str, str] | None = None) -> Callable[[], Outcome]:
    def stage() -> Outcome:
        code = run(command, env=dict(os.environ, **(env or {})))
        return (
            Outcome(passed=1) if code == 0 else Outcome(failed=1, detail=exit_detail(command, code))
        )

    return stage


FORBIDDEN_IN_TARBALL = (".venv/", ".venv-", ".ansible/", "tests/output/", ".git/", "kms-report/")


def build_and_install() -> Outcome:
    """Build the tarball, install it elsewhere, and read a plugin's docs from the installed copy."""
    with tempfile.TemporaryDirectory(prefix="exchops-build-") as scratch:
        scratch_path = Path(scratch)
        installed = scratch_path / "collections"
        # Only the freshly installed copy may be found, not the working tree linked into .venv.
        env = dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=str(installed),
            ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False",
        )
        if run(["ansible-galaxy", "collection", "build", "--output-path", scratch]) != 0:
            return Outcome(failed=1, detail="build failed")
        (tarball,) = scratch_path.glob("exchops-kms-*.tar.gz")
        with tarfile.open(tarball) as archive:
            leaked = [m for m in archive.getnames() if m.startswith(FORBIDDEN_IN_TARBALL)]
        if leaked:
            return Outcome(failed=1, detail=f"tarball ships {leaked[:3]}")
        install = ["ansible-galaxy", "collection", "install", "-p", str(installed), str(tarball)]
        if run(install, env=env) != 0:
            return Outcome(failed=1, detail="install failed")
        doc = subprocess.run(
            ["ansible-doc", "exchops.kms.exchange_facts"],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        print(doc.stdout[:400] + ("\n..." if len(doc.stdout) > 400 else ""), doc.stderr, flush=True)
        if doc.returncode != 0 or str(installed) not in doc.stdout:
            return Outcome(failed=1, detail="ansible-doc did not read the installed copy")
    return Outcome(passed=1)


def run_scanned(command: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """Run `command`, echoing its output, and return its exit code and its output."""
    print(f"$ {' '.join(command)}", flush=True)
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as process:
        assert process.stdout is not None
        output = bytearray()
        for line in process.stdout:
            sys.stdout.buffer.write(line)
            output += line
        code = process.wait()
    sys.stdout.flush()
    return code, bytes(output)


def molecule() -> Outcome:
    """Every scenario in extensions/molecule, each at -vvvv with a folder of its own for HOME,
    TMPDIR, ANSIBLE_HOME (molecule installs the built collection there), ANSIBLE_LOCAL_TEMP and
    molecule's ephemeral directory; its output and that whole folder are searched by the
    integration suite's secret scan, all but the lab's state (its inventory holds the passwords)
    and the collection molecule installs from the working tree."""
    # pylint: disable=import-outside-toplevel
    from exchlab.fleet import LAB_SECRETS

    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from secret_scan import SecretScan, leak_report, scan_command_folder

    scenarios = sorted(p.parent.name for p in (ROOT / "extensions/molecule").glob("*/molecule.yml"))
    outcome, scan = Outcome(), SecretScan()
    for scenario in scenarios:
        with tempfile.TemporaryDirectory(prefix="exchops-molecule-") as folder:
            own = {name: Path(folder) / name for name in ("home", "tmp", "ansible", "local", "eph")}
            for path in own.values():
                path.mkdir()
            env = dict(os.environ, ANSIBLE_NOCOLOR="1", NO_COLOR="1", ANSIBLE_VERBOSITY="4")
            env.update(HOME=str(own["home"]), TMPDIR=str(own["tmp"]))
            env.update(ANSIBLE_HOME=str(own["ansible"]), ANSIBLE_LOCAL_TEMP=str(own["local"]))
            env.update(MOLECULE_EPHEMERAL_DIRECTORY=str(own["eph"]))
            command = ["molecule", "test", "-s", scenario]
            code, output = run_scanned(command, env)
            lab = own["eph"] / "lab"
            # Left out: the lab's state, and the collection installed from the working tree
            # (its tests quote the lab's passwords).
            copy = own["ansible"] / "collections" / "ansible_collections" / "exchops" / "kms"
            leaks = scan_command_folder(
                scan,
                command,
                output,
                Path(folder),
                LAB_SECRETS,
                [lab / "inventory.yml"],
                [lab, copy],
            )
            print(f"{scan.summary_line()}: {leak_report(leaks) or 'none found'}", flush=True)
            if code == 0 and not leaks:
                outcome.passed += 1
            else:
                outcome.failed += 1
                outcome.detail += f"{scenario} failed (exit {code}); " if code else ""
                outcome.detail += f"{scenario} leaked: {leak_report(leaks)}; " if leaks else ""
    if not scenarios:
        outcome.failed, outcome.detail = 1, "no scenario found"
    return outcome


# The Python that the formatting applies to (settings in pyproject.toml; `make format` fixes).
FORMATTED = ["plugins", "tests", "hacking", "benchmarks"]

# What the middle lines run: the gate, the remediation and the secret scan (the suite-wide scan
# of conftest.run_tool searches every command of these runs too, at -vvvv).
LINE_TESTS = [
    "tests/integration/test_check_kms_move.py",
    "tests/integration/test_remediate_kms_move.py",
    "tests/integration/test_secret_scan.py",
]


def line_stages() -> dict[str, Callable[[], Outcome]]:
    """The oldest line: unit tests with its Python, the integration suite but for the tests
    marked newest_line_only, its own ansible-test sanity. The middle lines: LINE_TESTS. pytest
    and the lab run from this venv; EXCHOPS_ANSIBLE_BIN gives the ansible-* tools of the line."""
    oldest = line_bin(OLDEST_LINE)
    stages = {
        f"unit-{OLDEST_LINE}": pytest_stage(
            f"unit-{OLDEST_LINE}", ["tests/unit"], python=oldest / "python"
        ),
        f"integration-{OLDEST_LINE}": pytest_stage(
            f"integration-{OLDEST_LINE}",
            ["tests/integration"],
            ("-m", "not newest_line_only"),
            env={"EXCHOPS_ANSIBLE_BIN": str(oldest)},
        ),
        f"sanity-{OLDEST_LINE}": sanity_stage(oldest),
    }
    for line in MIDDLE_LINES:
        stages[f"lines-{line}"] = pytest_stage(
            f"lines-{line}", LINE_TESTS, env={"EXCHOPS_ANSIBLE_BIN": str(line_bin(line))}
        )
    return stages


STAGES: dict[str, Callable[[], Outcome]] = {
    "format": command_stage(["black", "--check", "--quiet", *FORMATTED]),
    "imports": command_stage(["isort", "--check-only", "--quiet", *FORMATTED]),
    "unit": pytest_stage("unit", ["tests/unit"]),
    "lab": pytest_stage("lab", ["tests/lab/tests"]),
    "integration": pytest_stage("integration", ["tests/integration"]),
    "molecule": molecule,
    "sanity": sanity_stage(),
    # ansible-lint installs its own copy into .ansible/; hide the one linked into .venv.
    "lint": command_stage(
        ["ansible-lint", "--profile", "production"], {"ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False"}
    ),
    "build": build_and_install,
    "changelog": command_stage(["antsibull-changelog", "lint"]),
    **line_stages(),
}


def main(selected: list[str]) -> int:
    # The tools (ansible-test, ansible-lint, ...) are the ones beside this interpreter in .venv.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    unknown = [name for name in selected if name not in STAGES]
    if unknown:
        print(f"unknown stage(s) {unknown}; choose from {list(STAGES)}", file=sys.stderr)
        return 2
    results: list[tuple[str, Outcome, float]] = []
    for name in selected or list(STAGES):
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        try:
            outcome = STAGES[name]()
        except Exception as error:  # pylint: disable=broad-exception-caught
            # A stage that breaks (a tool missing, a file unreadable) is a failed stage with its
            # message; the later stages still run and the summary line still ends the run.
            print(f"stage {name} stopped: {type(error).__name__}: {error}", flush=True)
            outcome = Outcome(failed=1, detail=f"{type(error).__name__}: {error}")
        results.append((name, outcome, time.monotonic() - started))

    print("\n=== summary ===")
    for name, outcome, seconds in results:
        state = "FAIL" if outcome.failed else "ok"
        counts = f"{outcome.passed} passed, {outcome.failed} failed, {outcome.skipped} skipped"
        extra = f"  ({outcome.detail})" if outcome.detail else ""
        print(f"{state:4} {name:16} {seconds:7.1f} s  {counts}{extra}")
    outcomes = [outcome for _name, outcome, _seconds in results]
    passed = sum(outcome.passed for outcome in outcomes)
    failed = sum(outcome.failed for outcome in outcomes)
    skipped = sum(outcome.skipped for outcome in outcomes)
    print(f"checks: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
