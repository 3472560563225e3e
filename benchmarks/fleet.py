# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet benchmark: exchops.kms against the lab, beside Ansible doing nothing on the same hosts.

    .venv/bin/python benchmarks/fleet.py [--pairs 200] [--repeat 3] [--forks 20]

Starts the lab with N replicated KB Q259906 pairs, then times, over the N targets, (a) the floor:
`ansible.builtin.debug` (no connection), and (b) `exchops.kms.exchange_facts` and (c) the `check_kms_move` gate; each `--repeat`
times, taking the median. HTTP requests per host come from `exchlab show`. Figures are printed and
written to benchmarks/results/; nothing is asserted (timing never belongs in a test).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = ROOT / "benchmarks" / "results"

PLAYBOOKS = {
    "floor": """
- name: Do nothing on every target (Ansible's floor)
  hosts: kms_targets
  gather_facts: false
  tasks:
    - name: Print nothing
      ansible.builtin.debug:
        msg: ""
      changed_when: false
""",
    "facts": """
- name: Read Exchange facts from every target
  hosts: kms_targets
  gather_facts: false
  tasks:
    - name: Read Exchange facts
      exchops.kms.exchange_facts:
""",
    # Every bench pair is the KB case, so the gate ends with exit code 2 (not a match): expected.
    "gate": """
- name: Run the KM Server move gate
  ansible.builtin.import_playbook: exchops.kms.check_kms_move
""",
}
EXPECTED_EXIT = {"floor": 0, "facts": 0, "gate": 2}


def fleet_file(directory: Path, pairs: int) -> Path:
    template = (ROOT / "tests/lab/fleets/bench.yml").read_text(encoding="utf-8")
    path = directory / "fleet.yml"
    path.write_text(template.replace("count: 200", f"count: {pairs}"), encoding="utf-8")
    return path


def exchlab(*arguments: str) -> str:
    return subprocess.run(
        [str(BIN / "exchlab"), *arguments], check=True, capture_output=True, text=True
    ).stdout


def requests_per_target(state: Path) -> dict[str, int]:
    hosts = json.loads(exchlab("show", "--state", str(state)))["hosts"]
    return {name: host["requests"]["http"] for name, host in hosts.items() if "-new-" in name}


def timed_run(
    playbook: Path, inventory: Path, forks: int, env: dict[str, str], expected: int
) -> float:
    started = time.monotonic()
    result = subprocess.run(
        [
            str(BIN / "ansible-playbook"), "-i", str(inventory), "-f", str(forks),
            "-e", f"kms_report_dir={playbook.parent / 'kms-report'}", str(playbook),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if result.returncode != expected:
        raise SystemExit(f"{playbook.name} failed:\n{result.stdout[-3000:]}")
    return seconds


def measure(pairs: int, repeat: int, forks: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="exchops-bench-") as scratch:
        directory = Path(scratch)
        state = directory / "lab"
        exchlab("up", "--fleet", str(fleet_file(directory, pairs)), "--state", str(state),
                "--base-address", "127.0.80.1")
        env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
        env.update(
            ANSIBLE_HOME=str(directory / "home"),
            ANSIBLE_NOCOLOR="1",
        )
        try:
            times: dict[str, list[float]] = {}
            requests: dict[str, float] = {}
            for name, text in PLAYBOOKS.items():
                playbook = directory / f"{name}.yml"
                playbook.write_text(text, encoding="utf-8")
                for _attempt in range(repeat):
                    before = requests_per_target(state)
                    times.setdefault(name, []).append(
                        timed_run(
                            playbook, state / "inventory.yml", forks, env, EXPECTED_EXIT[name]
                        )
                    )
                    after = requests_per_target(state)
                    requests[name] = statistics.mean(after[h] - before[h] for h in after)
        finally:
            exchlab("down", "--state", str(state))
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "pairs": pairs,
        "forks": forks,
        "seconds": times,
        "median": medians,
        "requests_per_host": requests,
        "ratio_vs_floor": {name: medians[name] / medians["floor"] for name in medians},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--forks", type=int, default=20)
    arguments = parser.parse_args()
    figures = measure(arguments.pairs, arguments.repeat, arguments.forks)
    figures["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"fleet-{arguments.pairs}.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    for name, median in figures["median"].items():  # type: ignore[union-attr]
        print(
            f"{name:6} median {median:6.2f} s over {arguments.pairs} targets, "
            f"{figures['requests_per_host'][name]:.1f} requests/host, "  # type: ignore[index]
            f"{figures['ratio_vs_floor'][name]:.2f}x floor"  # type: ignore[index]
        )
    gate = figures["ratio_vs_floor"]["gate"]  # type: ignore[index]
    print(
        f"ratio_vs_floor={gate:.2f} requests_per_host={figures['requests_per_host']['gate']:.0f} "  # type: ignore[index]
        f"hosts={arguments.pairs}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
