# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet benchmark: exchops.kms against the lab, beside Ansible doing nothing on the same hosts.

    make bench   (= .venv/bin/python benchmarks/fleet.py [--pairs 50,200] [--repeat 3] [--forks 20]
                                                   [--forks-sweep 5,10,40] [--jump-pairs 100])

For each size N, starts the lab with N replicated KB Q259906 pairs (N targets + N sources), then
times, in `--repeat` rounds of one run each (the median is kept):

- floor:          `ansible.builtin.debug` on every host of the inventory (2N), no connection;
- floor_targets:  the same on the N targets only (for reference);
- lab_alone:      one `cmd /c ver` per host with pywinrm in 20 processes, no Ansible: what the lab
                  and the WinRM client cost by themselves;
- facts:          `exchops.kms.exchange_facts` on every host (2N);
- gate:           the `check_kms_move` playbook (every bench pair mismatches: exit 2 expected).

At the largest size it also times the floor and the gate once at each other fork count of
`--forks-sweep`, then the gate once at each fork count of `--latency-forks` with every WS-Man
request delayed `--latency-ms` (a network's latency): README's forks advice.

Then the jump run: `--jump-pairs` KB pairs (default 100; 0 skips it) on Windows NT 4.0 behind
one jump host, jump01 (tests/lab/fleets/jump_bench.yml), timed in `--repeat` rounds, each on a
freshly started lab:

- floor:          `ansible.builtin.debug` on every legacy host (2N: the hosts the gate reads;
                  not the jump host, which carries their shells and runs no task);
- floor_targets:  the same on the N targets only;
- gate:           `check_kms_move` (exit 2 expected, every pair a `mismatch` as above).

Its figures: the gate's HTTP requests on the jump host divided by the legacy hosts (these listen
nowhere, so the jump host gets every request; what they got is recorded beside it), and the
most shells open on the jump host at once during the gate (`shells_peak` of `exchlab show`: the
lab starts at 0 each round and the floors must leave it there), each the largest over rounds;
beside it the controller's own limit, `exchange_jump_max_shells`'s default. It writes
benchmarks/results/fleet-jump-N.json.

Every gate run must judge every pair as the bench fleet makes it (each pair a `mismatch` in
report.json); a run that judged otherwise (a pair in error, unreachable, missing) stops the
benchmark instead of being timed. HTTP requests per host are read from `exchlab show` (the mean
and the maximum over hosts). Memory is the controller's whole process tree: ansible-playbook and
every fork and module process under it, sampled every 0.1 s with psutil as the sum of each
process's PSS (proportional set size: a page shared by N processes counts 1/N in each, so the 20
forks' shared pages count once), the peak of those sums kept (a peak shorter than 0.1 s can be
missed). It writes benchmarks/results/fleet-N.json, fleet.json and fleet.png (time against hosts),
and ends, for the largest N, with the line

    ratio_vs_floor=X requests_per_host=N hosts=H ratio_vs_targets_floor=Y
    max_requests_per_host=M controller_peak_mib=P jump_ratio_vs_floor=JX
    jump_ratio_vs_targets_floor=JY jump_requests_per_legacy_host=R jump_shells_peak=S

(on one line): X = gate / floor (every host), Y = gate / floor_targets (the targets alone), N the
mean and M the maximum of the gate's HTTP requests per host, P the gate's controller peak in MiB;
then the jump run's gate: JX against its floor (every legacy host), JY against its targets'
floor, R its HTTP requests per legacy host, S the most shells open on the jump host at once (the
jump_* keys only with a jump run). Nothing is asserted: timings belong in a benchmark, never in a
test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from figures import misjudged_pairs, summary_line

from ansible_collections.exchops.kms.plugins.plugin_utils._reach import DEFAULT_JUMP_MAX_SHELLS
from exchlab import runtime
from exchlab.layout import StateLayout

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = ROOT / "benchmarks" / "results"
FLEETS = ROOT / "tests" / "lab" / "fleets"
# tests/lab/fleets/jump_bench.yml's jump host, in group jump_hosts of its inventory.
JUMP_HOST = "jump01"


def _noop_play(hosts: str) -> str:
    return f"""
- name: Do nothing on {hosts} (Ansible's floor)
  hosts: {hosts}
  gather_facts: false
  tasks:
    - name: Print nothing
      ansible.builtin.debug:
        msg: ""
      changed_when: false
"""


PLAYBOOKS = {
    "floor": _noop_play("all"),
    "floor_targets": _noop_play("kms_targets"),
    "facts": """
- name: Read Exchange facts from every host
  hosts: all
  gather_facts: false
  tasks:
    - name: Read Exchange facts
      exchops.kms.exchange_facts:
        kms_event_count: 0
""",
    "gate": """
- name: Run the KM Server move gate
  ansible.builtin.import_playbook: exchops.kms.check_kms_move
""",
}
EXPECTED_EXIT = {"floor": 0, "floor_targets": 0, "facts": 0, "gate": 2}
# The jump run (tests/lab/fleets/jump_bench.yml): its floor is every legacy host, sources and
# targets, the hosts the gate reads; the jump host only carries their shells and runs no task.
JUMP_PLAYBOOKS = {
    "floor": _noop_play("all:!jump_hosts"),
    "floor_targets": PLAYBOOKS["floor_targets"],
    "gate": PLAYBOOKS["gate"],
}
SAMPLE_SECONDS = 0.1

# One `ver` per host through pywinrm, in a pool of processes like Ansible's forks.
_LAB_ALONE = """
import multiprocessing, sys, yaml, winrm
inventory = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
common = inventory["all"]["vars"]
hosts = [
    host
    for group in inventory["all"]["children"].values()
    for host in (group.get("hosts") or {}).values()
]
def run(host):
    url = f"http://{host['ansible_host']}:{host.get('ansible_port', common.get('ansible_port', 5985))}/wsman"
    user = host.get("ansible_user", common.get("ansible_user"))
    session = winrm.Session(url, auth=(user, common["ansible_password"]), transport="ntlm")
    return session.run_cmd("ver").status_code
with multiprocessing.Pool(int(sys.argv[2])) as pool:
    codes = pool.map(run, hosts, chunksize=1)
sys.exit(0 if set(codes) == {0} else 1)
"""


def fleet_file(directory: Path, pairs: int, fleet: str = "bench.yml") -> Path:
    """The bench fleet FLEET of tests/lab/fleets with its one pair's `count:` set to PAIRS."""
    template = (FLEETS / fleet).read_text(encoding="utf-8")
    text, counts = re.subn(r"(?m)^(\s*- count: )\d+$", rf"\g<1>{pairs}", template)
    if counts != 1:
        raise SystemExit(f"{FLEETS / fleet}: {counts} `- count:` lines, not one")
    path = directory / "fleet.yml"
    path.write_text(text, encoding="utf-8")
    return path


def exchlab(*arguments: str) -> str:
    return subprocess.run(
        [str(BIN / "exchlab"), *arguments], check=True, capture_output=True, text=True
    ).stdout


def host_requests(state: Path) -> dict[str, dict[str, int]]:
    """Every host's request counters (`requests` of `exchlab show`), by host name."""
    hosts = json.loads(exchlab("show", "--state", str(state)))["hosts"]
    return {name: host["requests"] for name, host in hosts.items()}


def http_requests(state: Path) -> dict[str, int]:
    return {name: requests["http"] for name, requests in host_requests(state).items()}


def tree_pss(root: psutil.Process) -> int:
    """Bytes of PSS of ROOT and every process under it, now; processes that end while being
    read count nothing."""
    total = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for process in processes:
        try:
            total += process.memory_full_info().pss
        except psutil.Error:
            continue
    return total


@dataclass
class Run:
    seconds: float
    peak_pss: int  # bytes: the largest sum of PSS over the process tree seen while it ran
    output: str


def timed(command: list[str], env: dict[str, str], expected: int) -> Run:
    """Run COMMAND, sampling its process tree's PSS, and stop the benchmark unless it exits
    EXPECTED."""
    with tempfile.TemporaryFile() as output:
        started = time.monotonic()
        process = psutil.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        peak, finished = 0, threading.Event()

        def sample() -> None:
            nonlocal peak
            while not finished.wait(SAMPLE_SECONDS):
                peak = max(peak, tree_pss(process))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = process.wait()
        seconds = time.monotonic() - started
        finished.set()
        sampler.join()
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
    if code != expected:
        raise SystemExit(f"{' '.join(command[:3])} exited {code}, not {expected}:\n{text[-3000:]}")
    return Run(seconds, peak, text)


def set_latency(state: Path, hosts: list[str], latency_ms: int) -> None:
    """The lab's latency fault on every host (each WS-Man request waits that long), set through
    its control socket: one `exchlab fault` process per host would take minutes at 400 hosts."""
    layout = StateLayout(state)
    for host in hosts:
        answer = runtime.ask(
            layout, {"op": "fault", "host": host, "faults": {"latency_ms": latency_ms}}
        )
        if "error" in answer:
            raise SystemExit(f"exchlab fault {host}: {answer['error']}")


def bench_env(directory: Path) -> dict[str, str]:
    """The environment of every measured command: none of the caller's ANSIBLE_* settings, and
    an ANSIBLE_HOME and a temporary directory of DIRECTORY's. The controller keeps its shell
    slots for a jump host in its temporary directory, by the jump host's address: another run
    on this machine, with a lab on the same address in a network namespace of its own, must
    not share them."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    (directory / "tmp").mkdir(exist_ok=True)
    env.update(
        ANSIBLE_HOME=str(directory / "home"), ANSIBLE_NOCOLOR="1", TMPDIR=str(directory / "tmp")
    )
    return env


def playbook_command(directory: Path, inventory: Path, name: str, forks: int) -> list[str]:
    """ansible-playbook of DIRECTORY/NAME.yml against INVENTORY, its report in DIRECTORY."""
    return [
        str(BIN / "ansible-playbook"),
        "-i",
        str(inventory),
        "-f",
        str(forks),
        "-e",
        f"kms_report_dir={directory / 'kms-report'}",
        str(directory / f"{name}.yml"),
    ]


def measured(
    directory: Path, name: str, command: list[str], env: dict[str, str], pairs: int
) -> Run:
    """The run of COMMAND (measurement NAME); for the gate, only when its report in DIRECTORY
    judged each of the PAIRS pairs as expected."""
    report_dir = directory / "kms-report"
    shutil.rmtree(report_dir, ignore_errors=True)
    run = timed(command, env, EXPECTED_EXIT.get(name, 0))
    wrong = misjudged_pairs(report_dir / "report.json", pairs) if name == "gate" else ""
    if wrong:
        raise SystemExit(f"the gate did not judge the bench as expected: {wrong}")
    return run


def timing_figures(seconds: dict[str, list[float]], peak_pss: dict[str, int]) -> dict[str, object]:
    """What every run reports of its rounds: the seconds of each, their medians, the controller's
    peak PSS in MiB, and each median against the floor and the targets' floor."""
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "seconds": seconds,
        "median_s": medians,
        "controller_peak_pss_mib": {name: round(b / 2**20, 1) for name, b in peak_pss.items()},
        "ratio_vs_floor": {name: round(medians[name] / medians["floor"], 2) for name in medians},
        "ratio_vs_targets_floor": {
            name: round(medians[name] / medians["floor_targets"], 2) for name in medians
        },
    }


def measure(
    pairs: int,
    repeat: int,
    forks: int,
    forks_sweep: tuple[int, ...] = (),
    latency_ms: int = 0,
    latency_forks: tuple[int, ...] = (),
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="exchops-bench-") as scratch:
        directory = Path(scratch)
        state = directory / "lab"
        exchlab(
            "up",
            "--fleet",
            str(fleet_file(directory, pairs)),
            "--state",
            str(state),
            "--base-address",
            "auto",
        )
        inventory = state / "inventory.yml"
        env = bench_env(directory)

        def playbook(name: str, fork_count: int) -> list[str]:
            return playbook_command(directory, inventory, name, fork_count)

        commands = {name: playbook(name, forks) for name in PLAYBOOKS}
        commands["lab_alone"] = [sys.executable, "-c", _LAB_ALONE, str(inventory), str(forks)]
        for name, text in PLAYBOOKS.items():
            (directory / f"{name}.yml").write_text(text, encoding="utf-8")
        seconds: dict[str, list[float]] = {}
        peak_pss: dict[str, int] = {}
        requests: dict[str, float] = {}
        max_requests: dict[str, int] = {}
        try:
            # Round by round, each measurement once per round: a machine that slows down or
            # speeds up during the run then weighs on every measurement alike.
            for _attempt in range(repeat):
                for name in ("floor", "floor_targets", "lab_alone", "facts", "gate"):
                    before = http_requests(state)
                    run = measured(directory, name, commands[name], env, pairs)
                    after = http_requests(state)
                    seconds.setdefault(name, []).append(round(run.seconds, 3))
                    peak_pss[name] = max(peak_pss.get(name, 0), run.peak_pss)
                    spent = [after[host] - before[host] for host in after]
                    requests[name] = round(statistics.mean(spent), 2)
                    max_requests[name] = max(max_requests.get(name, 0), *spent)
            # The forks advice in README: the floor and the gate at other fork counts, once each.
            sweep: dict[str, dict[str, float]] = {}
            for other in forks_sweep:
                sweep[str(other)] = {}
                for name in ("floor", "gate"):
                    sweep[str(other)][name] = round(
                        measured(directory, name, playbook(name, other), env, pairs).seconds, 3
                    )
            # With a network's latency the gate waits instead of computing: there the forks
            # count decides (the lab on loopback has none of its own).
            latency: dict[str, float] = {}
            if latency_ms and latency_forks:
                hosts = list(http_requests(state))
                set_latency(state, hosts, latency_ms)
                for other in latency_forks:
                    latency[str(other)] = round(
                        measured(directory, "gate", playbook("gate", other), env, pairs).seconds, 3
                    )
                set_latency(state, hosts, 0)
        finally:
            exchlab("down", "--state", str(state))
    return {
        "pairs": pairs,
        "hosts": 2 * pairs,
        "forks": forks,
        "requests_per_host": requests,
        "max_requests_per_host": max_requests,
        **timing_figures(seconds, peak_pss),
        "forks_sweep_s": sweep,
        "latency_ms": latency_ms if latency else 0,
        "gate_with_latency_s": latency,
    }


def measure_jump(pairs: int, repeat: int, forks: int) -> dict[str, object]:
    """PAIRS KB pairs behind one jump host (jump_bench.yml): the floors over the same legacy
    hosts and the gate, in REPEAT rounds. Each round starts the lab afresh, so the jump host's
    request counters and shells_peak start at 0; the floors must leave them there (they connect
    to nothing), which makes the peak read after the gate that gate's own."""
    with tempfile.TemporaryDirectory(prefix="exchops-bench-jump-") as scratch:
        directory = Path(scratch)
        fleet = fleet_file(directory, pairs, "jump_bench.yml")
        state = directory / "lab"
        inventory = state / "inventory.yml"
        env = bench_env(directory)
        for name, text in JUMP_PLAYBOOKS.items():
            (directory / f"{name}.yml").write_text(text, encoding="utf-8")
        seconds: dict[str, list[float]] = {}
        peak_pss: dict[str, int] = {}
        per_legacy_host: list[float] = []
        shells_peaks: list[int] = []
        legacy_http = 0
        for _attempt in range(repeat):
            exchlab(
                "up",
                "--fleet",
                str(fleet),
                "--state",
                str(state),
                "--base-address",
                "auto",
                "--fresh",
            )
            try:
                for name in JUMP_PLAYBOOKS:
                    if name == "gate":
                        before = host_requests(state)
                        if any(before[JUMP_HOST].values()):
                            raise SystemExit(
                                f"{JUMP_HOST} saw requests before the gate: {before[JUMP_HOST]}"
                            )
                    command = playbook_command(directory, inventory, name, forks)
                    run = measured(directory, name, command, env, pairs)
                    seconds.setdefault(name, []).append(round(run.seconds, 3))
                    peak_pss[name] = max(peak_pss.get(name, 0), run.peak_pss)
                after = host_requests(state)
            finally:
                exchlab("down", "--state", str(state))
            legacy = [host for host in after if host != JUMP_HOST]
            # The legacy hosts listen nowhere: every request of the gate went to the jump host.
            legacy_http += sum(after[host]["http"] for host in legacy)
            per_legacy_host.append(round(after[JUMP_HOST]["http"] / len(legacy), 2))
            shells_peaks.append(after[JUMP_HOST]["shells_peak"])
    return {
        "pairs": pairs,
        "legacy_hosts": 2 * pairs,
        "jump_host": JUMP_HOST,
        "forks": forks,
        **timing_figures(seconds, peak_pss),
        # Per round, and the largest: the gate's HTTP requests on the jump host over the legacy
        # hosts, and the most shells open on the jump host at once during the gate.
        "requests_per_legacy_host_rounds": per_legacy_host,
        "requests_per_legacy_host": max(per_legacy_host),
        "jump_shells_peak_rounds": shells_peaks,
        "jump_shells_peak": max(shells_peaks),
        "controller_max_shells": DEFAULT_JUMP_MAX_SHELLS,
        "legacy_hosts_http": legacy_http,
    }


def plot(runs: list[dict], path: Path) -> bool:
    """fleet.png: median seconds against hosts, one line per measurement; False without matplotlib."""
    try:
        import matplotlib  # pylint: disable=import-outside-toplevel

        matplotlib.use("Agg")
        from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
    except ImportError:
        return False
    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    hosts = [run["hosts"] for run in runs]
    for name in ("floor", "lab_alone", "facts", "gate"):
        axes.plot(hosts, [run["median_s"][name] for run in runs], marker="o", label=name)
    axes.set_xlabel("hosts in the inventory (targets + sources)")
    axes.set_ylabel("median seconds")
    axes.set_title("exchops.kms against the lab (forks 20)")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pairs", default="50,200", help="comma-separated sizes (default 50,200)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--forks", type=int, default=20)
    parser.add_argument(
        "--forks-sweep",
        default="5,10,40",
        help="other fork counts to time the floor and the gate with, once each, at the largest size "
        "(default 5,10,40; empty for none)",
    )
    parser.add_argument(
        "--latency-ms",
        type=int,
        default=50,
        help="latency of every WS-Man request for the last measurement at the largest size: the "
        "gate at each fork count of --latency-forks (default 50; 0 for none)",
    )
    parser.add_argument("--latency-forks", default="5,20,50")
    parser.add_argument(
        "--jump-pairs",
        type=int,
        default=100,
        help="KB pairs behind one jump host for the jump run, after the other sizes (default "
        "100; 0 for none)",
    )
    arguments = parser.parse_args()
    sizes = sorted(int(size) for size in arguments.pairs.split(","))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = []
    sweep = tuple(int(forks) for forks in arguments.forks_sweep.split(",") if forks)
    for pairs in sizes:
        largest_size = pairs == sizes[-1]
        figures = measure(
            pairs,
            arguments.repeat,
            arguments.forks,
            sweep if largest_size else (),
            arguments.latency_ms if largest_size else 0,
            tuple(int(forks) for forks in arguments.latency_forks.split(",") if forks),
        )
        figures["machine"] = machine
        (RESULTS / f"fleet-{pairs}.json").write_text(
            json.dumps(figures, indent=2) + "\n", encoding="utf-8"
        )
        runs.append(figures)
        for name, median in figures["median_s"].items():  # type: ignore[union-attr]
            print(
                f"{pairs:4} pairs {name:14} median {median:6.2f} s, "
                f"{figures['requests_per_host'][name]:4.1f} requests/host "  # type: ignore[index]
                f"(max {figures['max_requests_per_host'][name]}), "  # type: ignore[index]
                f"peak PSS {figures['controller_peak_pss_mib'][name]:6.1f} MiB, "  # type: ignore[index]
                f"{figures['ratio_vs_floor'][name]:5.2f}x floor, "  # type: ignore[index]
                f"{figures['ratio_vs_targets_floor'][name]:5.2f}x targets' floor"  # type: ignore[index]
            )
    largest, smallest = runs[-1], runs[0]
    for forks, seconds in largest["forks_sweep_s"].items():  # type: ignore[union-attr]
        print(
            f"{largest['pairs']:4} pairs forks {forks:>3}: floor {seconds['floor']:6.2f} s, "
            f"gate {seconds['gate']:6.2f} s, {seconds['gate'] / seconds['floor']:5.2f}x its floor"
        )
    for forks, seconds in largest["gate_with_latency_s"].items():  # type: ignore[union-attr]
        print(
            f"{largest['pairs']:4} pairs, {largest['latency_ms']} ms per request, forks {forks:>3}: gate {seconds:6.2f} s"
        )
    jump = None
    if arguments.jump_pairs:
        jump = measure_jump(arguments.jump_pairs, arguments.repeat, arguments.forks)
        jump["machine"] = machine
        (RESULTS / f"fleet-jump-{arguments.jump_pairs}.json").write_text(
            json.dumps(jump, indent=2) + "\n", encoding="utf-8"
        )
        for name, median in jump["median_s"].items():  # type: ignore[union-attr]
            print(
                f"{jump['pairs']:4} pairs behind {JUMP_HOST} {name:14} median {median:6.2f} s, "
                f"peak PSS {jump['controller_peak_pss_mib'][name]:6.1f} MiB, "  # type: ignore[index]
                f"{jump['ratio_vs_floor'][name]:5.2f}x floor, "  # type: ignore[index]
                f"{jump['ratio_vs_targets_floor'][name]:5.2f}x targets' floor"  # type: ignore[index]
            )
        print(
            f"{jump['pairs']:4} pairs behind {JUMP_HOST}: gate "
            f"{jump['requests_per_legacy_host']:.2f} HTTP requests per legacy host (on "
            f"{JUMP_HOST}; the legacy hosts got {jump['legacy_hosts_http']}), at most "
            f"{jump['jump_shells_peak']} shells open on {JUMP_HOST} at once (controller limit "
            f"{jump['controller_max_shells']})"
        )
    summary = {"machine": machine, "runs": runs}
    if jump is not None:
        summary["jump"] = jump
    if len(runs) > 1:
        summary["gate_scaling"] = round(
            largest["median_s"]["gate"] / smallest["median_s"]["gate"], 2
        )
        print(
            f"gate {largest['pairs']}/{smallest['pairs']} pairs time ratio: {summary['gate_scaling']}"
        )
    (RESULTS / "fleet.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if plot(runs, RESULTS / "fleet.png"):
        print(f"plot: {RESULTS / 'fleet.png'}")
    print(summary_line(largest, jump))
    return 0


if __name__ == "__main__":
    sys.exit(main())
