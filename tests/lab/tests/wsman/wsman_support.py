# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared pieces of the WS-Management layer tests: a dummy backend, addresses, constants.

Every server binds fresh addresses in 127.77.0.0/16 on high ports, so these tests can run next
to other lab tests (which use other addresses) and next to another run of themselves.
"""

from __future__ import annotations

import base64
import os
import random
import re
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import requests
import spnego
import winrm
from pypsrp.client import Client
from spnego.exceptions import SpnegoError
from winrm.protocol import Protocol

from exchlab.wsman import CommandResult, LabCA, LogonSession, Stdin, WsmanFaults, WsmanServer

HTTP_PORT = 15985
HTTPS_PORT = 15986
USER = "labadmin"
DOMAIN_USER = "LAB\\labadmin"
PASSWORD = "Lab-Passw0rd"

# Output with cmd-isms the clients must pass through untouched: wmic's \r\r\n, a TAB, and
# trailing spaces.
EXACT_BYTES = "Name  \r\r\nKMS-NEW\t\r\r\n\r\r\n"


def large_output(size: int) -> str:
    line = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!\r\n"
    return (line * (size // len(line) + 1))[:size]


class DummyBackend:
    """A host that echoes command lines, with a few special commands for the tests.

    ``sleep N`` waits N seconds (cut short when the test ends), ``fail`` writes to stderr with
    exit code 3, ``exact`` returns EXACT_BYTES, ``cafe`` returns 'café über ✓', ``big N`` returns
    N bytes, ``env NAME`` prints the shell's variable, ``logon`` prints who the shell runs as,
    ``stdin N`` reads standard input for up to N seconds and echoes it after its length.
    Every command's logon session lands in ``sessions``, and what ``stdin`` read in
    ``stdin_reads``; ``counts`` and ``shells_peak`` are what the protocol layer reported.
    """

    def __init__(self, name: str, address: str) -> None:
        self.name = name
        self.address = address
        self.faults = WsmanFaults()
        self.counts: Counter[str] = Counter()
        self.shells_peak = 0
        self.command_lines: list[str] = []
        self.sessions: list[LogonSession | None] = []
        self.stdin_reads: list[bytes] = []
        self.released = threading.Event()
        self._lock = threading.Lock()

    def check_credentials(self, user: str, password: str) -> bool:
        return user.lower() in (USER, DOMAIN_USER.lower()) and password == PASSWORD

    def run_command(
        self,
        command_line: str,
        environment: dict[str, str],
        codepage: int = 437,
        session: LogonSession | None = None,
        stdin: Stdin | None = None,
    ) -> CommandResult:
        with self._lock:
            self.command_lines.append(command_line)
            self.sessions.append(session)
        verb, _separator, rest = command_line.partition(" ")
        if verb == "sleep":
            self.released.wait(float(rest))
            return CommandResult(f"slept {rest}\r\n", "", 0)
        if verb == "fail":
            return CommandResult("partial\r\n", "boom: it failed\r\n", 3)
        if verb == "exact":
            return CommandResult(EXACT_BYTES, "", 0)
        if verb == "cafe":
            return CommandResult("café über ✓\r\n", "", 0)
        if verb == "big":
            return CommandResult(large_output(int(rest)), "", 0)
        if verb == "chcp":
            return CommandResult(f"Active code page: {codepage}\r\n", "", 0)
        if verb == "env":
            return CommandResult(f"{rest}={environment.get(rest, '')}\r\n", "", 0)
        if verb == "logon":
            if session is None:
                return CommandResult("no session\r\n", "", 1)
            delegated = session.delegated.user if session.delegated else "-"
            return CommandResult(f"{session.user} {session.auth} {delegated}\r\n", "", 0)
        if verb == "stdin":
            data = stdin.read(float(rest)) if stdin is not None else b""
            with self._lock:
                self.stdin_reads.append(data)
            echoed = data.decode("ascii", errors="replace")
            return CommandResult(f"{len(data)} bytes: {echoed}", "", 0)
        return CommandResult(f"ran {command_line}\r\n", "", 0)

    def count(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1

    def note_open_shells(self, open_now: int) -> None:
        with self._lock:
            self.shells_peak = max(self.shells_peak, open_now)


class AddressPool:
    """Hands out unused 127.77.x.y addresses, starting at a random place per test run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = random.Random(os.getpid()).randrange(0, 60000)

    def take(self, count: int = 1) -> list[str]:
        out = []
        with self._lock:
            while len(out) < count:
                self._next = (self._next + 1) % 65536
                third, fourth = divmod(self._next, 256)
                if fourth in (0, 255):
                    continue
                out.append(f"127.77.{third}.{fourth}")
        return out


def http_url(backend: DummyBackend) -> str:
    return f"http://{backend.address}:{HTTP_PORT}/wsman"


def https_url(backend: DummyBackend) -> str:
    return f"https://{backend.address}:{HTTPS_PORT}/wsman"


def _endpoint(backend: DummyBackend, ca: LabCA | None) -> tuple[str, dict[str, str]]:
    """The URL, and pywinrm's certificate options: HTTP without a CA, HTTPS validated with one."""
    if ca is None:
        return http_url(backend), {}
    return https_url(backend), {
        "server_cert_validation": "validate",
        "ca_trust_path": str(ca.ca_path),
    }


def pywinrm_session(
    backend: DummyBackend,
    transport: str = "ntlm",
    ca: LabCA | None = None,
    *,
    user: str = USER,
    password: str = PASSWORD,
    **options: Any,
) -> winrm.Session:
    """An unmodified pywinrm Session to the backend's listener: plain HTTP, or HTTPS checking the
    certificate against `ca`. `options` go to pywinrm as they are."""
    url, tls = _endpoint(backend, ca)
    return winrm.Session(url, auth=(user, password), transport=transport, **tls, **options)


def pywinrm_protocol(backend: DummyBackend, *args: Any, **options: Any) -> Protocol:
    """pywinrm's lower-level Protocol (one shell, several commands), as `pywinrm_session` with
    the same arguments builds it."""
    return pywinrm_session(backend, *args, **options).protocol


def pypsrp_client(backend: DummyBackend, ca: LabCA | None = None, **options: Any) -> Client:
    """An unmodified pypsrp Client to the backend: plain HTTP, or HTTPS checking the certificate
    against `ca`. `options` go to pypsrp as they are."""
    if ca is None:
        options.update(port=HTTP_PORT, ssl=False)
    else:
        options.update(port=HTTPS_PORT, ssl=True, cert_validation=str(ca.ca_path))
    options.setdefault("username", USER)
    options.setdefault("password", PASSWORD)
    return Client(backend.address, **options)


def credssp_exchange(
    url: str, user: str = USER, password: str = PASSWORD, **request_options: Any
) -> tuple[list[requests.Response], spnego.ContextProxy]:
    """A CredSSP logon driven step by step with pyspnego's client, as requests-credssp drives
    it, keeping every response the listener sent (requests-credssp shows none of them)."""
    client = spnego.client(user, password, service="HTTP", protocol="credssp")
    responses: list[requests.Response] = []
    token = client.step()
    with requests.Session() as http:
        while token:
            authorization = "CredSSP " + base64.b64encode(token).decode("ascii")
            response = http.post(
                url,
                data=b"",
                headers={"Authorization": authorization},
                timeout=10,
                **request_options,
            )
            responses.append(response)
            match = re.search(r"CredSSP ([^,\s]+)$", response.headers.get("WWW-Authenticate", ""))
            if response.status_code != 401 or not match:
                break
            try:
                token = client.step(base64.b64decode(match.group(1)))
            except SpnegoError:
                break
    return responses, client


# make_server(count=1, configure=None, **WsmanServer kwargs) -> (server, backends)
ServerFactory = Callable[..., tuple[WsmanServer, list[DummyBackend]]]
