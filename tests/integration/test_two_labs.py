# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Two labs on the same fleet: an `up` that cannot listen writes no inventory and names the lab
that holds the addresses; `--base-address auto` starts it beside the first, and a playbook run
on each inventory reaches its own lab's servers only."""

from __future__ import annotations

import subprocess

import pytest
from conftest import BIN, FLEETS, RunModule, RunningLab

FACTS = "exchops.kms.exchange_facts"


def exchlab(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "exchlab"), *arguments], capture_output=True, text=True, timeout=180, check=False
    )


def test_a_second_lab_on_taken_addresses_fails_cleanly_then_runs_beside_on_auto(
    kb_lab: RunningLab, ansible_module: RunModule, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Outside the playbook's folder, whose new files the secret scan reads.
    second = RunningLab("q259906.yml", tmp_path_factory.mktemp("lab") / "second")
    ports = ("--http-port", "35985", "--https-port", "35986")
    common = ("up", "--fleet", str(FLEETS / "q259906.yml"), "--state", str(second.state), *ports)
    try:
        failed = exchlab(*common, "--base-address", kb_lab.base)
        assert failed.returncode == 1
        assert f"the lab of state folder {kb_lab.state} (pid " in failed.stderr
        assert "No inventory was written" in failed.stderr
        assert not second.inventory.exists()

        started = exchlab(*common, "--fresh", "--base-address", "auto")
        assert started.returncode == 0, started.stderr
        first_before, second_before = kb_lab.show(), second.show()
        result, results = ansible_module(second, "kms-new", FACTS, "")
        assert result.returncode == 0, result.stdout
        assert results["kms-new"]["ansible_facts"]["exchange"]["build"] == "5.5.2650.0"
        first_after, second_after = kb_lab.show(), second.show()
        assert first_after["kms-new"]["requests"] == first_before["kms-new"]["requests"]
        assert (
            second_after["kms-new"]["requests"]["shells"]
            > second_before["kms-new"]["requests"]["shells"]
        )
    finally:
        exchlab("down", "--state", str(second.state))
