# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measure the lab alone: start-up of the 400-host bench fleet, and 100 sequential pywinrm
run_cmd calls to one host with the requests each costs (read back from `exchlab show`).

    .venv/bin/python benchmarks/lab.py [--calls 100]

Prints figures; asserts nothing (timing belongs here, not in tests).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import winrm
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXCHLAB = [sys.executable, "-m", "exchlab.cli"]


def exchlab(*arguments: str) -> str:
    return subprocess.run([*EXCHLAB, *arguments], check=True, capture_output=True, text=True).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--fleet", default=str(ROOT / "tests/lab/fleets/bench.yml"))
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="exchlab-bench-") as scratch:
        state = Path(scratch) / "lab"
        started = time.monotonic()
        exchlab(
            "up", "--fleet", arguments.fleet, "--state", str(state), "--base-address", "127.0.60.1"
        )
        up_seconds = time.monotonic() - started
        try:
            inventory = yaml.safe_load((state / "inventory.yml").read_text(encoding="utf-8"))["all"]
            hosts = [
                (name, variables)
                for group in inventory["children"].values()
                for name, variables in group["hosts"].items()
            ]
            name, variables = hosts[0]
            session = winrm.Session(
                f"http://{variables['ansible_host']}:{variables['ansible_port']}/wsman",
                auth=(variables["ansible_user"], inventory["vars"]["ansible_password"]),
                transport="ntlm",
                ca_trust_path=None,
            )
            started = time.monotonic()
            for _call in range(arguments.calls):
                session.run_cmd("sc query MSExchangeKMS")
            calls_seconds = time.monotonic() - started
            shown = json.loads(exchlab("show", "--state", str(state), name))["hosts"][name]
        finally:
            exchlab("down", "--state", str(state))
    requests = shown["requests"]
    print(f"hosts={len(hosts)} up_seconds={up_seconds:.2f}")
    print(
        f"run_cmd_calls={arguments.calls} seconds={calls_seconds:.2f} "
        f"per_call_ms={calls_seconds / arguments.calls * 1000:.1f} "
        f"requests_per_run_cmd={requests['http'] / arguments.calls:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
