# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `exchlab` command: up / twin / show / fault / console / clock / down.

exchlab up --fleet tests/lab/fleets/q259906.yml --state /tmp/lab
exchlab twin --facts facts.json --pairs inventory.yml --state /tmp/twin
exchlab show --state /tmp/lab [HOST]
exchlab fault --state /tmp/lab kms-new sp_installer_fails=true
exchlab console --state DIR kms-new
exchlab console --state DIR kms-new --run PATH --when-file 'C:\\exchops-sp-run.txt' --wait 600
exchlab clock --state DIR [kms-new] --advance 120
exchlab down --state /tmp/lab
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from . import runtime
from .fleet import Fleet, FleetError, load_fleet
from .hosts import build_host_state, inventory_for
from .layout import StateLayout
from .state import HostState
from .twin import (
    REPORT,
    Twin,
    TwinError,
    fleet_text,
    read_input,
    read_pairs,
    twin_from_facts,
    twin_from_report,
)

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
# `exchlab console --when-file`: how long the operator waits for the file by default, and how
# often the host is looked at meanwhile.
WHEN_FILE_WAIT_S = 600.0
WHEN_FILE_POLL_S = 0.5


class LabError(Exception):
    """A lab command that cannot be carried out; the message says what to do."""


def _running_pid(layout: StateLayout) -> int | None:
    """The pid of this state directory's lab process, if it is still alive."""
    try:
        pid = int(layout.pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # A pid file can outlive its process and the pid be reused: check it is our runtime.
    return pid if b"exchlab.runtime" in command_line else None


def _plan_state(fleet: Fleet, layout: StateLayout) -> None:
    layout.hosts_dir.mkdir(parents=True, exist_ok=True)
    for planned in fleet.hosts:
        build_host_state(planned, fleet.lab).save(layout.host_file(planned.name))
    config = {
        "fleet": str(fleet.path),
        "lab": fleet.lab,
        "hosts": [
            {
                "name": host.name,
                "address": host.address,
                "role": host.role,
                "source": host.source,
                # A legacy server: the runtime gives it no listener, only its jump host's reach.
                **({"reach": {"via": host.via, "name": host.reach_name}} if host.via else {}),
            }
            for host in fleet.hosts
        ],
    }
    layout.lab_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _refuse_running(layout: StateLayout, state_dir: Path) -> None:
    """A state directory belongs to one running lab at a time."""
    pid = _running_pid(layout)
    if pid is not None:
        raise LabError(
            f"state directory {state_dir} is in use by the lab running as pid {pid}. "
            f"Run `exchlab down --state {state_dir}` first, or choose another --state."
        )


# `--base-address auto`: the fleet's own range if it is free, else the first free 127.0.N.1.
AUTO = "auto"
AUTO_OCTETS = range(10, 255)


def _endpoints(fleet: Fleet) -> set[tuple[str, int]]:
    """Every address:port the lab of `fleet` listens on."""
    ports = (fleet.lab["http_port"], fleet.lab["https_port"])
    return {(host.address, port) for host in fleet.hosts if host.listens for port in ports}


def _planned_endpoints(layout: StateLayout) -> set[tuple[str, int]]:
    """The address:port pairs the lab of a state directory listens on (from its lab.json)."""
    try:
        planned = json.loads(layout.lab_file.read_text(encoding="utf-8"))
        ports = (planned["lab"]["http_port"], planned["lab"]["https_port"])
        return {
            (host["address"], port)
            for host in planned["hosts"]
            if not host.get("reach")
            for port in ports
        }
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _network_namespace(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def running_labs() -> list[tuple[int, Path]]:
    """(pid, state directory) of every lab runtime that runs in this network namespace (a lab
    in another one holds none of our addresses). Read from /proc, so nothing can go stale."""
    here = _network_namespace("self")
    labs = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"exchlab.runtime" not in arguments or b"--state" not in arguments:
            continue
        position = arguments.index(b"--state") + 1
        if position >= len(arguments) or _network_namespace(entry.name) != here:
            continue
        labs.append((int(entry.name), Path(os.fsdecode(arguments[position]))))
    return sorted(labs)


def _holders(wanted: set[tuple[str, int]], own: Path) -> list[tuple[int, Path, list[str]]]:
    """The running labs (pid, state directory, address:port taken) that hold any of `wanted`."""
    found = []
    for pid, state in running_labs():
        if state == own:
            continue
        taken = sorted(wanted & _planned_endpoints(StateLayout(state)))
        if taken:
            found.append((pid, state, [f"{address}:{port}" for address, port in taken]))
    return found


def _bindable(endpoints: set[tuple[str, int]]) -> bool:
    """Whether every address:port can be listened on now (bound and released at once)."""
    for address, port in sorted(endpoints):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As the lab binds: a port in TIME_WAIT is free, one that another socket listens
            # on is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
                probe.listen(1)
            except OSError:
                return False
    return True


def _load(fleet_path: Path, overrides: dict[str, Any]) -> Fleet:
    try:
        return load_fleet(fleet_path, overrides)
    except FleetError as exc:
        raise LabError(str(exc)) from exc


def _fleet_on_free_addresses(
    fleet_path: Path, overrides: dict[str, Any], stored_base: str | None
) -> Fleet:
    """The fleet on the first free range of: the state's stored addresses, the fleet's own,
    then 127.0.N.1 for N from 10 up."""
    others = {key: value for key, value in overrides.items() if key != "base_address"}
    own = _load(fleet_path, others)
    bases = [stored_base, own.lab["base_address"], *(f"127.0.{n}.1" for n in AUTO_OCTETS)]
    tried: set[str] = set()
    for base in bases:
        if base is None or base in tried:
            continue
        tried.add(base)
        try:
            fleet = load_fleet(fleet_path, {**others, "base_address": base})
        except FleetError:
            continue  # the fleet does not fit after this base
        if _bindable(_endpoints(fleet)):
            return fleet
    raise LabError(
        "--base-address auto found no free range of 127.0.N.x addresses for this fleet on its "
        "ports; stop a lab (exchlab down) or give --http-port and --https-port."
    )


def _stored_base(layout: StateLayout) -> str | None:
    try:
        planned = json.loads(layout.lab_file.read_text(encoding="utf-8"))
        return str(planned["hosts"][0]["address"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def _why_not_started(detail: str, fleet: Fleet, state_dir: Path) -> str:
    """The start failure, and for addresses already taken: which lab holds them and what to do."""
    if "cannot listen on" not in detail:
        return detail
    holders = _holders(_endpoints(fleet), state_dir)
    advice = f"or start this lab beside it on free addresses: exchlab up ... --base-address {AUTO}"
    if not holders:
        return (
            f"{detail}; no exchlab lab holds it, so another program does (ss -ltnp shows which). "
            f"Stop it, {advice}"
        )
    named = "; ".join(
        f"the lab of state folder {state} (pid {pid}) holds {', '.join(taken[:3])}"
        + (f" and {len(taken) - 3} more" if len(taken) > 3 else "")
        for pid, state, taken in holders
    )
    stops = " and ".join(f"exchlab down --state {state}" for _pid, state, _taken in holders)
    return f"{detail}: {named}. Stop it ({stops}), {advice}"


def up(
    fleet_path: Path,
    state_dir: Path,
    fresh: bool = False,
    lab_overrides: dict[str, Any] | None = None,
) -> str:
    layout = StateLayout(state_dir)
    _refuse_running(layout, state_dir)
    overrides = dict(lab_overrides or {})
    kept = layout.lab_file.exists() and not fresh
    auto = overrides.get("base_address") == AUTO
    if auto:
        fleet = _fleet_on_free_addresses(
            fleet_path, overrides, _stored_base(layout) if kept else None
        )
    else:
        fleet = _load(fleet_path, overrides)
    state_dir.mkdir(parents=True, exist_ok=True)
    if kept:
        planned = json.loads(layout.lab_file.read_text(encoding="utf-8"))
        if planned.get("fleet") != str(fleet_path):
            raise LabError(
                f"state directory {state_dir} holds the lab of {planned.get('fleet')}, not "
                f"{fleet_path}. Use another --state, or --fresh to replace its hosts' state."
            )
        stored = {entry["name"]: entry["address"] for entry in planned["hosts"]}
        if stored != {host.name: host.address for host in fleet.hosts} and auto:
            raise LabError(
                f"state directory {state_dir} was made on {_stored_base(layout)} and up, which "
                f"is not free now; add --fresh to rebuild it on {fleet.hosts[0].address} and up."
            )
        if stored != {host.name: host.address for host in fleet.hosts}:
            raise LabError(
                f"state directory {state_dir} was made with other host names or addresses than "
                "these options give. Use the same --base-address, or --fresh to rebuild it."
            )
    else:
        _plan_state(fleet, layout)
    # An inventory is written only for a lab that listens: one left from an earlier run would
    # send a playbook to whatever answers on these addresses now (another lab's servers).
    layout.inventory.unlink(missing_ok=True)

    process = subprocess.Popen(  # pylint: disable=consider-using-with # it outlives this command
        [sys.executable, "-m", "exchlab.runtime", "--state", str(state_dir)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # survives the shell that ran `exchlab up`
        cwd="/",
    )
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    line = b""
    while time.monotonic() < deadline and not line.endswith(b"\n"):
        ready, _writable, _failed = select.select([process.stdout], [], [], 0.5)
        if ready:
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            line += chunk
    process.stdout.close()
    text = line.decode(errors="replace").strip()
    if text != "ready":
        if process.poll() is None:
            process.kill()
        process.wait()
        detail = text.removeprefix("error: ") or f"no answer within {START_TIMEOUT_S:.0f} s"
        raise LabError(
            f"the lab did not start: {_why_not_started(detail, fleet, state_dir)}. No inventory "
            f"was written. Log: {layout.log_file}"
        )
    _write_inventory(fleet, layout)
    how = "kept from the last run" if kept else "new"
    where = f" from {fleet.hosts[0].address}" if fleet.hosts else ""
    listening = sum(1 for host in fleet.hosts if host.listens)
    behind = len(fleet.hosts) - listening
    reached = f", {behind} reached through jump hosts" if behind else ""
    return (
        f"exchlab: {listening} host(s) listening{where}{reached} ({how} state), pid "
        f"{process.pid}; inventory: {layout.inventory}"
    )


def _write_inventory(fleet: Fleet, layout: StateLayout) -> None:
    """inventory.yml, whole or not at all, readable by its owner only (it holds the lab's
    passwords)."""
    partial = layout.inventory.with_name(f".{layout.inventory.name}.new")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(yaml.safe_dump(inventory_for(fleet, layout), sort_keys=False))
    os.replace(partial, layout.inventory)


TWIN_HELP = """\
Build lab replicas ("twins") of real servers from what was gathered on them, and start them, so
the gate, the check-mode plan and the remediation can be rehearsed before the change window.

--facts takes either
  * exchops.kms.exchange_facts results: the folder `ansible ... -m exchops.kms.exchange_facts
    --tree DIR` wrote (one file per host, named after it); a JSON file mapping host names to
    results ({"kms-new": {"ansible_facts": {"exchange": ...}}, ...}); the output of
    ANSIBLE_STDOUT_CALLBACK=ansible.posix.json; or one host's result, named after the file; or
  * a check_kms_move report.json: builds only, so the twin derives KMS states and events
    (stopped with event 5389 when Kmserver.exe is older than the source's build, else running).

Pairs (target <- source) for exchange_facts results come from --pairs FILE (a YAML or JSON
mapping `target: source`, or your YAML inventory: the kms_source_host host variables written in
it), from --pair TARGET=SOURCE, and from a kms_source_host key beside a host's facts; they must
agree. A report.json names its own pairs. Hosts in no pair become standalone lab hosts.

The KM database stamp (the build that last ran Kmsdata): a target's is its source's server build,
because the KM Server moved from the source (KB Q259906), or its own Kmserver.exe build when its
KMS runs with later binaries; any other host's is its own Kmserver.exe build. Each target gets its
source's service pack kit (D:\\EXCH55SP<n> or D:\\E2KSP<n>), and the inventory points
kms_remediate_sp_media at it and states its build in kms_remediate_sp_build. Credentials and
connection settings are the lab's: facts carry none.

Servers whose facts were read through a Windows jump host (reach.via) sit behind a jump host of
that name, declared once under jump_hosts, on the Windows their facts' `windows` names (NT 4.0 or
2000 and its service pack) and, on NT 4.0, with WMI core when WMI answered the reads. No fact
names the jump host's own Windows: it runs the lab's default, Windows Server 2016 (a warning line
says so). Directly read hosts run the lab's Windows version.

A missing or contradictory fact refuses the twin, naming the host, the field and what to do; a
fact the lab cannot model (another install path, other events) is a warning line. The fleet is
written to STATE/twin-fleet.yml (with the warnings as comments): read it, or start the same twin
again with `exchlab up --fleet STATE/twin-fleet.yml --state STATE`. `twin` always starts fresh.
"""


def write_twin(
    facts_path: Path,
    state_dir: Path,
    pairs_file: Path | None = None,
    pair_arguments: list[str] | None = None,
) -> tuple[Twin, str]:
    """Write STATE/twin-fleet.yml from gathered facts or a report.json; (the twin, its origin)."""
    layout = StateLayout(state_dir)
    _refuse_running(layout, state_dir)
    try:
        given = read_input(facts_path)
        pairs = read_pairs(pairs_file) if pairs_file else {}
        for argument in pair_arguments or []:
            target, separator, source = argument.partition("=")
            if not separator or not target or not source:
                raise TwinError(f"--pair {argument!r} is not TARGET=SOURCE (e.g. kms-new=kms-old).")
            if pairs.get(target, source) != source:
                raise TwinError(
                    f"{target}: --pair names its source {source} but --pairs names {pairs[target]}; "
                    "keep one."
                )
            pairs[target] = source
        if given.kind == REPORT:
            if pairs:
                raise TwinError(
                    f"{given.origin} is a report.json, which names its own pairs; drop --pairs/--pair."
                )
            built = twin_from_report(given)
        else:
            built = twin_from_facts(given, pairs)
    except TwinError as exc:
        raise LabError(str(exc)) from exc
    state_dir.mkdir(parents=True, exist_ok=True)
    layout.twin_fleet.write_text(fleet_text(built), encoding="utf-8")
    return built, given.origin


def show(state_dir: Path, host: str | None) -> dict[str, Any]:
    layout = StateLayout(state_dir)
    if not layout.lab_file.exists():
        raise LabError(
            f"{state_dir} holds no lab. Start one with `exchlab up --fleet FILE --state {state_dir}`."
        )
    if _running_pid(layout) is not None:
        answer = runtime.ask(layout, {"op": "show"})
    else:
        planned = json.loads(layout.lab_file.read_text(encoding="utf-8"))
        answer = {
            "hosts": {
                entry["name"]: HostState.load(layout.host_file(entry["name"])).to_show()
                for entry in planned["hosts"]
            }
        }
    if host is None:
        return answer
    if host not in answer["hosts"]:
        raise LabError(
            f"no host {host!r} in the lab at {state_dir}; hosts: {', '.join(answer['hosts'])}."
        )
    return {"hosts": {host: answer["hosts"][host]}}


def fault(state_dir: Path, host: str, settings: list[str]) -> dict[str, Any]:
    layout = StateLayout(state_dir)
    if _running_pid(layout) is None:
        raise LabError(f"no lab is running in {state_dir}; start it with `exchlab up` first.")
    changes: dict[str, Any] = {}
    for setting in settings:
        key, separator, value = setting.partition("=")
        if not separator:
            raise LabError(f"{setting!r} is not KEY=VALUE (e.g. auth_refused=true).")
        changes[key] = yaml.safe_load(value)
    answer = runtime.ask(layout, {"op": "fault", "host": host, "faults": changes})
    if "error" in answer:
        raise LabError(answer["error"])
    return answer


def console(
    state_dir: Path,
    host: str,
    run: str | None,
    when_file: str | None = None,
    wait_s: float | None = None,
) -> dict[str, Any]:
    """The operator at HOST's console clicks through the installer waiting there, or runs one
    (exchlab.console.click_through). With WHEN_FILE, the operator comes only once that file
    exists on HOST, looked for every WHEN_FILE_POLL_S through the running lab, for WAIT_S
    seconds at most (exchlab.console.operator_has_come) [lab]."""
    layout = StateLayout(state_dir)
    if _running_pid(layout) is None:
        raise LabError(f"no lab is running in {state_dir}; start it with `exchlab up` first.")
    if when_file is None and wait_s is not None:
        raise LabError("--wait is how long --when-file waits: give --when-file PATH too.")
    wait = WHEN_FILE_WAIT_S if wait_s is None else wait_s
    if wait < 0:
        raise LabError("--wait takes 0 or more seconds.")
    request = {"op": "console", "host": host, "run": run, "when_file": when_file}
    deadline = time.monotonic() + wait
    answer = runtime.ask(layout, request, timeout=600.0)
    while "waiting_for" in answer:
        if time.monotonic() >= deadline:
            raise LabError(
                f"no file {when_file} appeared on {host} within {wait:g} s, so nobody came to "
                "its console and nothing was run."
            )
        time.sleep(WHEN_FILE_POLL_S)
        try:
            answer = runtime.ask(layout, request, timeout=600.0)
        except OSError as exc:
            # `exchlab down` meanwhile: the control socket goes first, then the process.
            raise LabError(
                f"the lab in {state_dir} stopped while the operator waited for {when_file} on "
                f"{host} ({exc}); nothing was run."
            ) from exc
    if "error" in answer:
        raise LabError(answer["error"])
    return answer


def clock(state_dir: Path, host: str | None, seconds: int) -> dict[str, Any]:
    """Move the hosts' clocks on by SECONDS (0: read them); due `at` jobs run."""
    layout = StateLayout(state_dir)
    if _running_pid(layout) is None:
        raise LabError(f"no lab is running in {state_dir}; start it with `exchlab up` first.")
    if seconds < 0:
        raise LabError("a clock only moves forward: give --advance 0 or more seconds.")
    answer = runtime.ask(layout, {"op": "clock", "host": host, "advance": seconds})
    if "error" in answer:
        raise LabError(answer["error"])
    return answer


def down(state_dir: Path) -> str:
    layout = StateLayout(state_dir)
    pid = _running_pid(layout)
    if pid is None:
        layout.pid_file.unlink(missing_ok=True)
        return f"exchlab: no lab running in {state_dir}"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    # Wait for the process itself, not its pid file: the file goes before the interpreter exits.
    while time.monotonic() < deadline and not _reaped_or_gone(pid):
        time.sleep(0.05)
    if not _reaped_or_gone(pid):
        os.kill(pid, signal.SIGKILL)
        layout.pid_file.unlink(missing_ok=True)
        return f"exchlab: lab pid {pid} did not stop in {STOP_TIMEOUT_S:.0f} s and was killed"
    return f"exchlab: lab pid {pid} stopped; state kept in {state_dir}"


def _reaped_or_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (our own child, in tests) has stopped serving but is not reaped yet.
    try:
        status = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return status == "Z"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="exchlab", description="Simulated Exchange servers that speak real WinRM."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start a lab from a fleet file, in the background")
    up_parser.add_argument("--fleet", type=Path, required=True, help="fleet file (YAML)")
    up_parser.add_argument("--state", type=Path, required=True, help="state directory")
    up_parser.add_argument(
        "--fresh", action="store_true", help="rebuild every host's state from the fleet file"
    )
    up_parser.add_argument(
        "--base-address",
        help="first loopback address (default: the fleet's, else 127.0.10.1), or 'auto': the "
        "fleet's range if free, else the first free 127.0.N.1, so labs can run side by side",
    )
    up_parser.add_argument("--http-port", type=int, help="WinRM HTTP port (default 5985)")
    up_parser.add_argument("--https-port", type=int, help="WinRM HTTPS port (default 5986)")
    twin_parser = commands.add_parser(
        "twin",
        help="start a lab replica of real servers from their gathered facts or a report.json",
        description=TWIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    twin_parser.add_argument(
        "--facts",
        type=Path,
        required=True,
        help="exchange_facts results (JSON file or --tree folder) or a check_kms_move report.json",
    )
    twin_parser.add_argument("--state", type=Path, required=True, help="state directory")
    twin_parser.add_argument(
        "--pairs", type=Path, help="YAML/JSON mapping target: source, or a YAML inventory"
    )
    twin_parser.add_argument(
        "--pair", action="append", default=[], metavar="TARGET=SOURCE", help="one pair (repeatable)"
    )
    twin_parser.add_argument(
        "--base-address", help="first loopback address (default 127.0.10.1), or 'auto' (see up)"
    )
    twin_parser.add_argument("--http-port", type=int, help="WinRM HTTP port (default 5985)")
    twin_parser.add_argument("--https-port", type=int, help="WinRM HTTPS port (default 5986)")
    show_parser = commands.add_parser("show", help="print the hosts' state as JSON")
    show_parser.add_argument("--state", type=Path, required=True)
    show_parser.add_argument("host", nargs="?")
    fault_parser = commands.add_parser("fault", help="set faults on a running lab host")
    fault_parser.add_argument("--state", type=Path, required=True)
    fault_parser.add_argument("host")
    fault_parser.add_argument("settings", nargs="+", metavar="KEY=VALUE")
    console_parser = commands.add_parser(
        "console",
        help="the operator at a legacy server's console: click through the installer waiting "
        "there, or run the kit staged under C:\\exchops\\sp",
    )
    console_parser.add_argument("--state", type=Path, required=True)
    console_parser.add_argument("host")
    console_parser.add_argument("--run", metavar="PATH", help="update.exe to run when none waits")
    console_parser.add_argument(
        "--when-file",
        metavar="PATH",
        help="come to the console only once this file exists on the host (such as the play's "
        "run record, C:\\exchops-sp-run.txt), then click through or run as without it",
    )
    console_parser.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help=f"how long --when-file waits for its file before exiting 1 (default "
        f"{WHEN_FILE_WAIT_S:g})",
    )
    clock_parser = commands.add_parser(
        "clock", help="read or move on the hosts' clocks; `at` jobs whose time comes run"
    )
    clock_parser.add_argument("--state", type=Path, required=True)
    clock_parser.add_argument("host", nargs="?")
    clock_parser.add_argument("--advance", type=int, default=0, metavar="SECONDS")
    down_parser = commands.add_parser("down", help="stop the lab; its state stays on disk")
    down_parser.add_argument("--state", type=Path, required=True)
    arguments = parser.parse_args(argv)

    try:
        overrides: dict[str, Any] = {}
        if arguments.command in ("up", "twin"):
            overrides = {
                key: value
                for key, value in (
                    ("base_address", arguments.base_address),
                    ("http_port", arguments.http_port),
                    ("https_port", arguments.https_port),
                )
                if value is not None
            }
        if arguments.command == "up":
            print(
                up(arguments.fleet.resolve(), arguments.state.resolve(), arguments.fresh, overrides)
            )
        elif arguments.command == "twin":
            state = arguments.state.resolve()
            built, origin = write_twin(
                arguments.facts.resolve(),
                state,
                arguments.pairs.resolve() if arguments.pairs else None,
                arguments.pair,
            )
            for line in built.warnings:
                print(f"exchlab twin: warning: {line}", file=sys.stderr)
            fleet_path = StateLayout(state).twin_fleet
            print(
                f"exchlab twin: {built.host_count} host(s), {len(built.fleet.get('pairs', []))} "
                f"pair(s) from {origin}; fleet: {fleet_path}"
            )
            # Always fresh: a twin is what the facts say, not what an earlier rehearsal left.
            print(up(fleet_path, state, fresh=True, lab_overrides=overrides))
        elif arguments.command == "show":
            print(json.dumps(show(arguments.state.resolve(), arguments.host), indent=2))
        elif arguments.command == "fault":
            print(json.dumps(fault(arguments.state.resolve(), arguments.host, arguments.settings)))
        elif arguments.command == "console":
            answer = console(
                arguments.state.resolve(),
                arguments.host,
                arguments.run,
                arguments.when_file,
                arguments.wait,
            )
            print(json.dumps(answer))
        elif arguments.command == "clock":
            print(json.dumps(clock(arguments.state.resolve(), arguments.host, arguments.advance)))
        else:
            print(down(arguments.state.resolve()))
    except (LabError, OSError) as exc:
        print(f"exchlab {arguments.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
