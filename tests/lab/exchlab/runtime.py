# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The running lab: one background process that serves every host of a state directory.

`exchlab up` starts `python -m exchlab.runtime --state DIR` in a new session and waits for its
"ready" line. The process loads each host's state, serves WinRM on the host's loopback address,
runs command lines against the host's state (saving it after every command), answers `show` and
`fault` requests on a Unix socket in the state directory, and on SIGTERM stops every listener and
thread, saves, and exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from .console import ConsoleError, advance, click_through, operator_has_come
from .layout import StateLayout
from .reach import apply_faults
from .state import SHELLS_PEAK, HostState, waiting_releases
from .windows.remote import ServerNetwork
from .windows.shell import run_command
from .wsman import CommandResult, LogonSession, Stdin, WsmanFaults, WsmanServer
from .wsman.tls import LabCA

log = logging.getLogger("exchlab.runtime")

_WSMAN_FAULT_NAMES = {field.name for field in fields(WsmanFaults)}


class LabHost:
    """One simulated server: the protocol layer's Backend over a HostState kept on disk."""

    def __init__(self, state: HostState, path: Path, user: str, password: str, domain: str) -> None:
        self.state = state
        self.path = path
        self.name = state.name
        self.address = state.address
        self._accepted_users = {user.lower(), f"{domain}\\{user}".lower()}
        self._password = password
        self._lock = threading.Lock()
        self._counters_lock = threading.Lock()
        self.faults = WsmanFaults(
            **{key: value for key, value in state.faults.items() if key in _WSMAN_FAULT_NAMES}
        )
        # The servers this host reaches by name: set by Lab for a jump host.
        self.network: ServerNetwork | None = None

    def check_credentials(self, user: str, password: str) -> bool:
        return user.lower() in self._accepted_users and password == self._password

    def run_command(
        self,
        command_line: str,
        environment: dict[str, str],
        codepage: int = 437,
        session: LogonSession | None = None,
        stdin: Stdin | None = None,
    ) -> CommandResult:
        with self._lock, waiting_releases(self._wait_unlocked):
            result = run_command(
                self.state,
                command_line,
                environment,
                codepage,
                session=session,
                stdin=stdin,
                network=self.network,
            )
            self.state.save(self.path)
        return CommandResult(result.stdout, result.stderr, result.exit_code)

    @contextlib.contextmanager
    def opened(self) -> Iterator[HostState]:
        """This host's state for one remote call of a jump host's command, which holds the jump
        host's lock: commands are serialised per host, and a jump host only ever waits for the
        servers behind it (which run no commands themselves), so locks never wait in a circle."""
        with self._lock:
            yield self.state
            self.state.save(self.path)

    def _wait_unlocked(self, seconds: float) -> None:
        # Called with self._lock held, from the thread running a command: save what the command
        # did so far (the setup log it wrote), then let other commands in while time passes.
        self.state.save(self.path)
        self._lock.release()
        try:
            time.sleep(seconds)
        finally:
            self._lock.acquire()

    def count(self, kind: str) -> None:
        with self._counters_lock:
            self.state.requests[kind] = self.state.requests.get(kind, 0) + 1

    def note_open_shells(self, open_now: int) -> None:
        with self._counters_lock:
            peak = self.state.requests.get(SHELLS_PEAK, 0)
            self.state.requests[SHELLS_PEAK] = max(peak, open_now)

    def set_faults(self, changes: dict[str, Any]) -> None:
        with self._lock:
            for key, value in changes.items():
                if key in _WSMAN_FAULT_NAMES:
                    setattr(self.faults, key, value)
                self.state.faults[key] = value
            apply_faults(self.state)
            self.state.save(self.path)

    def show(self) -> dict[str, Any]:
        with self._lock:
            return self.state.to_show()

    def console(self, run: str | None, when_file: str | None = None) -> dict[str, Any]:
        """The operator at this host's console (exchlab.console.click_through); with WHEN_FILE
        not yet on the host, nobody has come: {"waiting_for": WHEN_FILE}, nothing changed."""
        with self._lock, waiting_releases(self._wait_unlocked):
            try:
                if not operator_has_come(self.state, when_file):
                    return {"waiting_for": when_file}
            except ConsoleError as exc:
                return {"error": str(exc)}
            try:
                answer = click_through(self.state, run)
            except ConsoleError as exc:
                return {"error": str(exc)}
            finally:
                self.state.save(self.path)
        return {"ok": True, **answer}

    def advance_clock(self, seconds: int) -> dict[str, Any]:
        """Move this host's clock on and run its `at` jobs whose time has come."""
        with self._lock:
            ran = advance(self.state, seconds)
            self.state.save(self.path)
            return {"now": self.state.now_text(), "jobs_ran": ran}

    def save(self) -> None:
        with self._lock:
            self.state.save(self.path)


class _ControlHandler(socketserver.StreamRequestHandler):
    """One JSON request per connection: {"op": "show"}, {"op": "fault", "host", "faults"},
    {"op": "console", "host", "run", "when_file"} or {"op": "clock", "host", "advance"}."""

    server: _ControlServer

    def handle(self) -> None:
        try:
            request = json.loads(self.rfile.readline())
            answer = self.server.lab.control(request)
        except (ValueError, KeyError, TypeError) as exc:
            answer = {"error": str(exc)}
        self.wfile.write(json.dumps(answer).encode() + b"\n")


class _ControlServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, lab: Lab) -> None:
        self.lab = lab
        super().__init__(str(path), _ControlHandler)


class Lab:
    """Every host of one state directory, served until stop()."""

    def __init__(self, layout: StateLayout) -> None:
        self.layout = layout
        config = json.loads(layout.lab_file.read_text(encoding="utf-8"))
        self.config = config
        lab = config["lab"]
        self.hosts: dict[str, LabHost] = {}
        for planned in config["hosts"]:
            path = layout.host_file(planned["name"])
            self.hosts[planned["name"]] = LabHost(
                HostState.load(path), path, lab["user"], lab["password"], lab["domain"]
            )
        # Legacy servers (NT 4.0 / 2000) run no WinRM: only their jump host reaches them.
        behind: dict[str, dict[str, LabHost]] = {}
        for planned in config["hosts"]:
            reach = planned.get("reach")
            if reach:
                behind.setdefault(reach["via"], {})[reach["name"]] = self.hosts[planned["name"]]
        for planned in config["hosts"]:
            if planned.get("role") == "jump":
                self.hosts[planned["name"]].network = ServerNetwork(
                    behind.get(planned["name"], {}), lab["user"], lab["password"], lab["domain"]
                )
        listening = [
            self.hosts[planned["name"]] for planned in config["hosts"] if not planned.get("reach")
        ]
        self.ca = LabCA.load_or_create(layout.root)
        layout.ntlm_users.write_text(
            # pyspnego's acceptor reads DOMAIN:USER:PASSWORD lines; each form a client may send
            # (user, DOMAIN\user) needs its own line.
            f"{lab['domain']}:{lab['user']}:{lab['password']}\n:{lab['user']}:{lab['password']}\n",
            encoding="utf-8",
        )
        os.chmod(layout.ntlm_users, 0o600)
        self.server = WsmanServer(
            listening,
            self.ca,
            http_port=lab["http_port"],
            https_port=lab["https_port"],
            ntlm_user_file=str(layout.ntlm_users),
        )
        self.control_server: _ControlServer | None = None
        self._control_thread: threading.Thread | None = None

    def start(self) -> None:
        self.server.start()
        self.layout.control_socket.unlink(missing_ok=True)
        self.control_server = _ControlServer(self.layout.control_socket, self)
        self._control_thread = threading.Thread(
            target=self.control_server.serve_forever, name="exchlab-control", daemon=True
        )
        self._control_thread.start()

    def stop(self) -> None:
        if self.control_server is not None:
            self.control_server.shutdown()
            self.control_server.server_close()
            self.layout.control_socket.unlink(missing_ok=True)
        self.server.stop()
        for host in self.hosts.values():
            host.save()

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] == "show":
            return {"hosts": {name: host.show() for name, host in self.hosts.items()}}
        if request["op"] == "fault":
            host = self.hosts.get(request["host"])
            if host is None:
                return {"error": f"no host {request['host']!r} in this lab"}
            host.set_faults(request["faults"])
            if "tls_certificate" in request["faults"]:
                self.server.renew_certificate(host.name)
            return {"ok": True, "faults": host.state.faults}
        if request["op"] == "console":
            host = self.hosts.get(request["host"])
            if host is None:
                return {"error": f"no host {request['host']!r} in this lab"}
            return host.console(request.get("run"), request.get("when_file"))
        if request["op"] == "clock":
            names = [request["host"]] if request.get("host") else list(self.hosts)
            unknown = [name for name in names if name not in self.hosts]
            if unknown:
                return {"error": f"no host {unknown[0]!r} in this lab"}
            return {
                "hosts": {
                    name: self.hosts[name].advance_clock(int(request.get("advance", 0)))
                    for name in names
                }
            }
        return {"error": f"unknown op {request['op']!r}"}


def ask(layout: StateLayout, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one control request to the running lab of `layout`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        client.connect(str(layout.control_socket))
        client.sendall(json.dumps(request).encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = client.recv(65536)
            if not chunk:
                break
            answer += chunk
    return json.loads(answer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="exchlab.runtime")
    parser.add_argument("--state", type=Path, required=True)
    arguments = parser.parse_args(argv)
    layout = StateLayout(arguments.state)
    logging.basicConfig(
        filename=layout.log_file,
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopped.set())
    signal.signal(signal.SIGINT, lambda _signum, _frame: stopped.set())
    try:
        lab = Lab(layout)
        lab.start()
    except Exception as exc:  # the edge: tell `exchlab up`, which shows it to the user
        log.exception("lab failed to start")
        print(f"error: {exc}", flush=True)
        return 1
    layout.pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")
    log.info("lab ready: %d hosts", len(lab.hosts))
    print("ready", flush=True)
    # `up` has read the line and gone; nothing may write to its pipe again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.dup2(devnull, sys.stderr.fileno())
    stopped.wait()
    log.info("stopping")
    lab.stop()
    layout.pid_file.unlink(missing_ok=True)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
