# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared helpers for integration tests: run the real Ansible command-line tools from .venv."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def ansible_env(tmp_path: Path) -> dict[str, str]:
    """Environment for ansible-* commands: this venv's tools, no user config, a private home."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_RETRY_FILES_ENABLED="False",
    )
    return env


def run_tool(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


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

    def exchlab(self, *arguments: str) -> str:
        result = subprocess.run(
            [str(BIN / "exchlab"), *arguments], capture_output=True, text=True, timeout=180, check=False
        )
        assert result.returncode == 0, f"exchlab {arguments} failed: {result.stderr}"
        return result.stdout

    def up(self) -> None:
        self.exchlab(
            "up", "--fleet", str(FLEETS / self.fleet), "--state", str(self.state), "--fresh",
            "--base-address", self.base, "--http-port", "35985", "--https-port", "35986",
        )

    def down(self) -> None:
        self.exchlab("down", "--state", str(self.state))

    @property
    def inventory(self) -> Path:
        return self.state / "inventory.yml"

    def show(self, host: str | None = None) -> dict:
        import json  # pylint: disable=import-outside-toplevel

        hosts = json.loads(self.exchlab("show", "--state", str(self.state)))["hosts"]
        return hosts[host] if host else hosts

    def fault(self, host: str, *settings: str) -> None:
        self.exchlab("fault", "--state", str(self.state), host, *settings)


@pytest.fixture(scope="module")
def lab_factory(tmp_path_factory: pytest.TempPathFactory):
    started: list[RunningLab] = []

    def start(fleet: str) -> RunningLab:
        lab = RunningLab(fleet, tmp_path_factory.mktemp("lab") / "state")
        lab.up()
        started.append(lab)
        return lab

    yield start
    for lab in started:
        lab.down()
        assert not (lab.state / "exchlab.pid").exists(), f"lab of {lab.fleet} still running"


def tree_results(directory: Path) -> dict[str, dict]:
    """Per-host results written by Ansible's tree callback."""
    import json  # pylint: disable=import-outside-toplevel

    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in directory.iterdir()}


def adhoc(
    lab: RunningLab,
    pattern: str,
    module_args: str,
    env: dict[str, str],
    tmp_path: Path,
    *extra: str,
) -> tuple[subprocess.CompletedProcess[str], dict[str, dict]]:
    """`ansible PATTERN -m exchops.kms.exchange_facts` with per-host JSON results."""
    tree = tmp_path / f"tree-{len(list(tmp_path.iterdir()))}"
    tree.mkdir()
    tree_env = dict(
        env,
        ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
        ANSIBLE_CALLBACK_TREE_DIR=str(tree),
        ANSIBLE_LOAD_CALLBACK_PLUGINS="True",
        ANSIBLE_DEPRECATION_WARNINGS="False",
    )
    command = ["ansible", "-i", str(lab.inventory), pattern, "-m", "exchops.kms.exchange_facts"]
    if module_args:
        command += ["-a", module_args]
    result = run_tool([*command, *extra], tree_env, tmp_path)
    return result, tree_results(tree)
