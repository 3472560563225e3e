# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures that run the real `exchlab` command and always stop what they start."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

FLEETS = Path(__file__).resolve().parents[2] / "fleets"
EXCHLAB = [sys.executable, "-m", "exchlab.cli"]
# Each lab of this test module gets its own loopback range and ports, so the tests can run while
# a developer's demo lab holds 127.0.10.x:5985.
_OCTETS = itertools.count(140)


def next_base() -> str:
    return f"127.0.{next(_OCTETS)}.1"


def exchlab(*arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*EXCHLAB, *arguments], capture_output=True, text=True, timeout=180, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exchlab {' '.join(arguments)} failed: {result.stderr}")
    return result


def lab_processes(state: Path) -> list[int]:
    """Pids of lab runtimes serving `state` (there must be none after `down`)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"exchlab.runtime" in command_line and str(state).encode() in command_line:
            status = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if status != "Z":
                pids.append(int(entry.name))
    return pids


class Lab:
    def __init__(self, state: Path, base: str) -> None:
        self.state = state
        self.base = base

    def up(self, fleet: str, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return exchlab(
            "up",
            "--fleet",
            str(FLEETS / fleet),
            "--state",
            str(self.state),
            "--base-address",
            self.base,
            "--http-port",
            "25985",
            "--https-port",
            "25986",
            *extra,
            check=check,
        )

    def show(self, host: str | None = None) -> dict:
        return json.loads(
            exchlab("show", "--state", str(self.state), *([host] if host else [])).stdout
        )

    def down(self) -> subprocess.CompletedProcess[str]:
        return exchlab("down", "--state", str(self.state))

    def inventory(self) -> dict:
        import yaml  # pylint: disable=import-outside-toplevel

        return yaml.safe_load((self.state / "inventory.yml").read_text(encoding="utf-8"))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    state = tmp_path / "lab"
    instance = Lab(state, next_base())
    try:
        yield instance
    finally:
        exchlab("down", "--state", str(state), check=False)
        leftover = lab_processes(state)
        for pid in leftover:
            os.kill(pid, 9)
        assert not leftover, f"lab processes left behind after down: {leftover}"
