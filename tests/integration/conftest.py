# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared helpers for integration tests: run the real Ansible command-line tools from .venv."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import typing as t
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pytest
import winrm
import yaml
from secret_scan import SecretScan, files_in, leak_report, secrets_of, verbosity_of

from exchlab.fleet import LAB_SECRETS
from exchlab.layout import StateLayout
from exchlab.state import HostState

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The ansible-* tools (and the controller's Python): this venv's, or those of another
# ansible-core line's venv (EXCHOPS_ANSIBLE_BIN, its bin folder), so that the suite runs
# ansible-playbook of that line while the lab runs from this venv.
ANSIBLE_BIN = Path(os.environ.get("EXCHOPS_ANSIBLE_BIN") or BIN)
# Every command of this suite runs at -vvvv (ANSIBLE_VERBOSITY) unless a test asks for less, so
# the secret scan below reads the most Ansible ever prints.
SCAN_VERBOSITY = "4"


# Tests that `make test` runs on the newest ansible-core line only: what they prove is the lab's
# timing or our own step logic, which no ansible-core line changes, and they are among the
# slowest. Each use gives its reason: @pytest.mark.newest_line_only(reason="...").
NEWEST_LINE_ONLY = "newest_line_only"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{NEWEST_LINE_ONLY}(reason): run on the newest ansible-core line only (make test leaves "
        "it out of the other lines' integration runs with -m 'not newest_line_only')",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker in item.iter_markers(NEWEST_LINE_ONLY):
            if not marker.kwargs.get("reason"):
                raise pytest.UsageError(f"{item.nodeid}: {NEWEST_LINE_ONLY} needs a reason=")


def ansible_environment(folder: Path) -> dict[str, str]:
    """Environment for ansible-* commands: their venv's tools (ANSIBLE_BIN), no user config, a private home in
    FOLDER."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(
        PATH=f"{ANSIBLE_BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_HOME=str(folder / "ansible-home"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_VERBOSITY=SCAN_VERBOSITY,
    )
    return env


@pytest.fixture
def ansible_env(tmp_path: Path) -> dict[str, str]:
    """The environment for this test's ansible-* commands (ansible_environment in tmp_path)."""
    return ansible_environment(tmp_path)


def run_tool(
    command: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run one command-line tool with a folder of its own for HOME, TMPDIR, ANSIBLE_LOCAL_TEMP
    and molecule's ephemeral directory; fail the test if its output, a file it wrote in CWD or
    any file in its own folder holds a password it could know (secret_scan.py)."""
    routes = secrets_of(command, cwd, LAB_SECRETS)
    own = command_folder()
    started = {path: path.stat().st_mtime for path in files_in(cwd)}
    completed = subprocess.run(
        command,
        env=dict(
            env,
            HOME=str(own / "home"),
            TMPDIR=str(own / "tmp"),
            ANSIBLE_LOCAL_TEMP=str(own / "ansible-local-temp"),
            MOLECULE_EPHEMERAL_DIRECTORY=str(own / "molecule-ephemeral"),
        ),
        cwd=cwd,
        capture_output=True,
        timeout=300,
        check=False,
    )
    leaks = SECRET_SCAN.scan_output(completed.stdout, "stdout", routes.secrets)
    leaks += SECRET_SCAN.scan_output(completed.stderr, "stderr", routes.secrets)
    written = [
        (path, str(path.relative_to(cwd)))
        for path in files_in(cwd, routes.inputs)
        if started.get(path) != path.stat().st_mtime
    ]
    leaks += SECRET_SCAN.scan_files(written, routes.secrets)
    leaks += SECRET_SCAN.scan_files(
        ((path, f"its own {path.relative_to(own)}") for path in files_in(own, routes.inputs)),
        routes.secrets,
    )
    SECRET_SCAN.count_command(verbosity_of(command, env), routes.secrets)
    if leaks:  # not `assert`: pytest's explanation of it would show the values around it
        raise AssertionError(f"{' '.join(command[:3])} ... leaked: {leak_report(leaks)}")
    return subprocess.CompletedProcess(
        command,
        completed.returncode,
        completed.stdout.decode("utf-8", "replace"),
        completed.stderr.decode("utf-8", "replace"),
    )


def shown_in(text: str, output: str) -> bool:
    """TEXT as Ansible showed it in OUTPUT: as it is (2.19's `[ERROR]: Task failed: ...`), or
    inside a result's JSON (2.16 to 2.18's `FAILED! => {"msg": ...}`, with backslashes and
    quotes escaped)."""
    return text in output or json.dumps(text, ensure_ascii=False)[1:-1] in output


# Each command's own folder (HOME, TMPDIR, ...), under one folder per session, removed at its
# end (after every lab of the session has stopped).
COMMAND_FOLDERS: list[Path] = []


def command_folder() -> Path:
    if not COMMAND_FOLDERS:
        COMMAND_FOLDERS.append(Path(tempfile.mkdtemp(prefix="exchops-commands-")))
    own = COMMAND_FOLDERS[0] / str(len(COMMAND_FOLDERS))
    COMMAND_FOLDERS.append(own)
    for name in ("home", "tmp", "ansible-local-temp", "molecule-ephemeral"):
        (own / name).mkdir(parents=True)
    return own


def pytest_sessionfinish() -> None:
    if COMMAND_FOLDERS:
        shutil.rmtree(COMMAND_FOLDERS[0], ignore_errors=True)


SECRET_SCAN = SecretScan()

# What a gate's pair verdict says that depends neither on where its servers run (a lab or its
# twin) nor on how they are reached (directly or through a jump host).
PAIR_VERDICT_FIELDS = (
    "status",
    "reason",
    "fix",
    "remedy",
    "remedy_build",
    "target_build",
    "source_build",
    "kms_binary_build",
    "database_build",
    "database_build_from",
)


def pair_verdict(pair: dict[str, object]) -> dict[str, object]:
    """The PAIR_VERDICT_FIELDS of one pair of a gate's report.json."""
    return {key: pair[key] for key in PAIR_VERDICT_FIELDS}


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """One line (and tests/output/secret-scan[-LINE].json) saying how much was scanned."""
    if not SECRET_SCAN.commands:
        return
    terminalreporter.write_line(
        f"{SECRET_SCAN.summary_line()}; a leak fails the test that caused it"
    )
    output = REPO / "tests" / "output"
    output.mkdir(parents=True, exist_ok=True)
    # One file per ansible-core line's venv, so that the runs of make test keep each its own.
    line = "" if ANSIBLE_BIN == BIN else "-" + ANSIBLE_BIN.parent.name.removeprefix(".venv-")
    summary = json.dumps(SECRET_SCAN.summary(), indent=1) + "\n"
    (output / f"secret-scan{line}.json").write_text(summary, encoding="utf-8")


FLEETS = REPO / "tests" / "lab" / "fleets"
# Labs of one test run take 127.0.N.x for N from here on; set EXCHOPS_TEST_OCTET to run two test
# sessions side by side without their labs colliding.
_NEXT_OCTET = iter(range(int(os.environ.get("EXCHOPS_TEST_OCTET", "100")), 256))


class RunningLab:
    """A lab started with the real `exchlab` command; stopped (and checked) at teardown."""

    def __init__(self, fleet: str, state: Path) -> None:
        self.fleet = fleet
        self.state = state
        self.base = f"127.0.{next(_NEXT_OCTET)}.1"
        # A test that opts in to a startup password on the jump host's command lines
        # (exchange_jump_allow_password_in_argv) sets this, and asserts the exposure itself.
        self.audit_shows_passwords = False

    def exchlab(self, *arguments: str) -> str:
        result = subprocess.run(
            [str(BIN / "exchlab"), *arguments],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, f"exchlab {arguments} failed: {result.stderr}"
        return result.stdout

    def up(self) -> None:
        self.exchlab(
            "up",
            "--fleet",
            str(FLEETS / self.fleet),
            "--state",
            str(self.state),
            "--fresh",
            "--base-address",
            self.base,
            "--http-port",
            "35985",
            "--https-port",
            "35986",
        )

    def down(self) -> None:
        self.exchlab("down", "--state", str(self.state))

    @property
    def inventory(self) -> Path:
        return self.state / "inventory.yml"

    def show(self, host: str | None = None) -> dict:
        hosts = json.loads(self.exchlab("show", "--state", str(self.state)))["hosts"]
        return hosts[host] if host else hosts

    def fault(self, host: str, *settings: str) -> None:
        self.exchlab("fault", "--state", str(self.state), host, *settings)

    def host_state(self, host: str) -> HostState:
        """HOST as the lab keeps it, read from the lab's own files (not through any command the
        plugins run)."""
        return HostState.load(StateLayout(self.state).host_file(host))

    def kms_database_manifest(self, host: str) -> list[dict[str, t.Any]]:
        """Each file of HOST's KM database as a backup's manifest lists it (its path inside the
        database folder, size, SHA256), computed by the lab from its own state."""
        state = self.host_state(host)
        assert state.kms_database is not None
        prefix = len(state.kms_database.path) + 1
        return [
            {"name": entry.path[prefix:], "size": entry.size, "sha256": entry.sha256()}
            for entry in state.kms_database_files()
        ]

    def kms_database_sha256(self, host: str) -> dict[str, str]:
        """The SHA256 of each file of HOST's KM database, by its path inside the folder."""
        return {entry["name"]: entry["sha256"] for entry in self.kms_database_manifest(host)}

    def command_line_leaks(self) -> str:
        """Every lab password found in the command lines a jump host of this lab started (its
        process-creation audit, event 4688), in every form the secret scan knows; '' if none."""
        leaks = []
        for name, host in self.show().items():
            for number, line in enumerate(host.get("command_lines") or (), start=1):
                where = f"{name}'s command line {number}"
                leaks += SECRET_SCAN.scan_output(line.encode("utf-8"), where, LAB_SECRETS)
        return leak_report(leaks)

    @contextlib.contextmanager
    def faulted(self, host: str, *settings: str, clear: Iterable[str]) -> Iterator[None]:
        """`exchlab fault HOST SETTINGS...` for the block; `exchlab fault HOST CLEAR...` after
        it, however it ends."""
        self.fault(host, *settings)
        try:
            yield
        finally:
            self.fault(host, *clear)


LabFactory = Callable[[str], RunningLab]


@pytest.fixture(scope="module")
def lab_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabFactory]:
    """Start a lab of a fleet (a file of tests/lab/fleets, or an absolute path): one lab per call,
    all of a test module's labs stopped when the module ends."""
    started: list[RunningLab] = []

    def start(fleet: str) -> RunningLab:
        lab = RunningLab(fleet, tmp_path_factory.mktemp("lab") / "state")
        lab.up()
        started.append(lab)
        return lab

    yield start
    leaks = {}
    for lab in started:
        leaked = "" if lab.audit_shows_passwords else lab.command_line_leaks()
        lab.down()
        assert not (lab.state / "exchlab.pid").exists(), f"lab of {lab.fleet} still running"
        if leaked:
            leaks[lab.fleet] = leaked
    # Not `assert` on the values: pytest would show what surrounds them.
    if leaks:
        raise AssertionError(f"a jump host's command lines hold a password: {leaks}")


def module_lab(name: str, fleet: str) -> Callable[..., RunningLab]:
    """A fixture NAME: a lab of FLEET for the tests of one module, in file order. What one test
    changes, the later tests of that module see, and no other module does (module scope)."""

    @pytest.fixture(scope="module", name=name)
    def lab(lab_factory: LabFactory) -> RunningLab:
        return lab_factory(fleet)

    return lab


# The fleets several test modules run on (tests/lab/fleets says what each holds).
kb_lab = module_lab("kb_lab", "q259906.yml")  # KB Q259906: kms-new has SP3 but RTM Kmserver.exe
matched_lab = module_lab("matched_lab", "matched.yml")
service_faults_lab = module_lab("service_faults_lab", "service_faults.yml")
sp_faults_lab = module_lab("sp_faults_lab", "sp_faults.yml")
backup_faults_lab = module_lab("backup_faults_lab", "backup_faults.yml")


def tree_results(directory: Path) -> dict[str, dict]:
    """Per-host results written by Ansible's tree callback."""
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in directory.iterdir()}


# run(lab, pattern, module, module_args, *extra) -> (the command's result, per-host JSON results)
RunModule = Callable[..., tuple[subprocess.CompletedProcess[str], dict[str, dict]]]


@pytest.fixture
def ansible_module(ansible_env: dict[str, str], tmp_path: Path) -> RunModule:
    """`ansible PATTERN -m MODULE [-a ARGS] EXTRA...` in this test's environment and folder.

    `lab` None runs without an inventory, for the controller's implicit localhost. The per-host
    JSON results come from Ansible's tree callback, one folder per call. A test that needs other
    settings for all its commands changes `ansible_env` (the same dict) before it runs them.
    """

    def run(
        lab: RunningLab | None, pattern: str, module: str, module_args: str, *extra: str
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, dict]]:
        tree = tmp_path / f"tree-{len(list(tmp_path.glob('tree-*')))}"
        tree.mkdir()
        tree_env = dict(
            ansible_env,
            ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
            ANSIBLE_CALLBACK_TREE_DIR=str(tree),
            ANSIBLE_LOAD_CALLBACK_PLUGINS="True",
            ANSIBLE_DEPRECATION_WARNINGS="False",
        )
        command = ["ansible", *(["-i", str(lab.inventory)] if lab else []), pattern, "-m", module]
        if module_args:
            command += ["-a", module_args]
        result = run_tool([*command, *extra], tree_env, tmp_path)
        return result, tree_results(tree)

    return run


# The gate playbooks: the variable that names their report folder, and their report's schema.
GATES = {
    "exchops.kms.check_kms_move": ("kms_report_dir", "kms_report.schema.json"),
    "exchops.kms.check_exchange_parity": (
        "exchange_parity_report_dir",
        "exchange_parity_report.schema.json",
    ),
}
# run(playbook, lab, *extra) -> (its result, report.json, report.md, junit.xml's root)
RunGate = Callable[..., tuple[subprocess.CompletedProcess[str], dict, str, ET.Element]]


@pytest.fixture
def gate_playbook(ansible_env: dict[str, str], tmp_path: Path) -> RunGate:
    """`ansible-playbook GATE -i LAB's inventory EXTRA...` in this test's environment and folder,
    into a new report folder; report.json is validated against the gate's schema."""

    def run(
        playbook: str, lab: RunningLab, *extra: str
    ) -> tuple[subprocess.CompletedProcess[str], dict, str, ET.Element]:
        report_dir_variable, schema = GATES[playbook]
        reports = tmp_path / f"report-{len(list(tmp_path.glob('report-*')))}"
        result = run_tool(
            [
                "ansible-playbook",
                playbook,
                "-i",
                str(lab.inventory),
                "-e",
                f"{report_dir_variable}={reports}",
                *extra,
            ],
            ansible_env,
            tmp_path,
        )
        report = json.loads((reports / "report.json").read_text(encoding="utf-8"))
        schema_text = (REPO / "docs/schemas" / schema).read_text(encoding="utf-8")
        jsonschema.validate(report, json.loads(schema_text))
        markdown = (reports / "report.md").read_text(encoding="utf-8")
        return result, report, markdown, ET.parse(reports / "junit.xml").getroot()

    return run


class Remediation:
    """`ansible-playbook exchops.kms.remediate_kms_move -i LAB's inventory -e kms_report_dir=
    REPORTS EXTRA...` in a test's environment and folder: `run(lab, *extra)`. REPORTS is one
    folder per test (`reports`), so each run's remediation.json replaces the last one's, as an
    operator's next run does; `report()` reads it, checked against its schema."""

    PLAYBOOK = "exchops.kms.remediate_kms_move"
    SCHEMA = "kms_remediation.schema.json"

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.reports = folder / "reports"

    def command(self, lab: RunningLab, *extra: str) -> list[str]:
        inventory = ["-i", str(lab.inventory)]
        return ["ansible-playbook", self.PLAYBOOK, *inventory, *self.report_dir, *extra]

    @property
    def report_dir(self) -> list[str]:
        """The -e that sends the reports to `reports` (for other playbooks run alongside)."""
        return ["-e", f"kms_report_dir={self.reports}"]

    def run(self, lab: RunningLab, *extra: str) -> subprocess.CompletedProcess[str]:
        return run_tool(self.command(lab, *extra), self.env, self.folder)

    def report(self) -> dict:
        """remediation.json, checked against its schema; its .md and junit siblings exist too."""
        report = json.loads((self.reports / "remediation.json").read_text(encoding="utf-8"))
        schema = json.loads((REPO / "docs/schemas" / self.SCHEMA).read_text(encoding="utf-8"))
        jsonschema.validate(report, schema)
        for sibling in ("remediation.md", "remediation-junit.xml"):
            assert (self.reports / sibling).is_file(), sibling
        return report


@pytest.fixture
def remediation(ansible_env: dict[str, str], tmp_path: Path) -> Remediation:
    """The remediation playbook against a lab, in this test's environment and folder."""
    return Remediation(ansible_env, tmp_path)


@pytest.fixture
def gate_on_new_lab(lab_factory: LabFactory, gate_playbook: RunGate) -> RunGate:
    """gate_playbook on a lab of a fleet started for this one run: run(playbook, fleet, *extra),
    for the tests that need nothing of the lab but the gate's answer."""

    def run(
        playbook: str, fleet: str, *extra: str
    ) -> tuple[subprocess.CompletedProcess[str], dict, str, ET.Element]:
        return gate_playbook(playbook, lab_factory(fleet), *extra)

    return run


def override(tmp_path: Path, host: str, **variables: object) -> list[str]:
    """Inventory arguments that change some of one host's variables (a later -i wins)."""
    extra = tmp_path / f"override-{host}-{len(list(tmp_path.glob('override-*')))}.yml"
    extra.write_text(yaml.safe_dump({"all": {"hosts": {host: variables}}}), encoding="utf-8")
    return ["-i", str(extra)]


def without_requests(shown: dict) -> dict:
    """A host's `exchlab show` without its request counters (reads count requests too)."""
    return {key: value for key, value in shown.items() if key != "requests"}


@dataclass
class Shown:
    """`exchlab show` of some hosts, by host: before a block, and after it once it has ended."""

    before: dict[str, dict]
    after: dict[str, dict] = field(default_factory=dict)


@contextlib.contextmanager
def lab_unchanged(lab: RunningLab, *hosts: str) -> Iterator[Shown]:
    """Fail unless the block leaves the hosts (every host of the lab if none is named) as
    `exchlab show` showed them before it, request counters aside (reads count requests too)."""

    def show() -> dict[str, dict]:
        every_host = lab.show()
        return {host: every_host[host] for host in hosts} if hosts else every_host

    shown = Shown(show())
    yield shown
    shown.after = show()
    assert {host: without_requests(state) for host, state in shown.after.items()} == {
        host: without_requests(state) for host, state in shown.before.items()
    }


def lab_session(lab: RunningLab, host: str) -> winrm.Session:
    """A pywinrm session to a lab host with the inventory's settings (plain HTTP, NTLM): what an
    operator or another tool runs there, not through the plugins."""
    inventory = yaml.safe_load(lab.inventory.read_text(encoding="utf-8"))["all"]
    settings = next(
        group["hosts"][host] for group in inventory["children"].values() if host in group["hosts"]
    )
    return winrm.Session(
        f"http://{settings['ansible_host']}:{settings['ansible_port']}/wsman",
        auth=(settings["ansible_user"], inventory["vars"]["ansible_password"]),
        transport="ntlm",
    )
