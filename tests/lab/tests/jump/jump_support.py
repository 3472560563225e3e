# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A jump host and the legacy servers behind it, in-process; logon sessions as the WS-Man layer
hands them over (CredSSP with delegated credentials, or plain NTLM); a scripted standard input."""

from __future__ import annotations

from dataclasses import dataclass, field

from exchlab.exchange import build_exchange_host, build_windows_host
from exchlab.reach import make_jump_host, make_legacy_host
from exchlab.state import HostState
from exchlab.windows.remote import InMemoryNetwork
from exchlab.windows.shell import CommandResult, run_command
from exchlab.wsman.backend import Delegated, LogonSession

CLOCK = "2001-03-14T09:12:40"
DOMAIN = "LAB"
USER = "labadmin"
PASSWORD = "Jump-Passw0rd!"
ACCOUNT = f"{DOMAIN}\\{USER}"
STARTUP_PASSWORD = "HZGYYHACWLQACTI"  # KB Q184420's example


@dataclass
class ScriptedStdin:
    """What a client sends with WinRS Send: all of it, then the end of the stream."""

    data: bytes = b""
    reads: list[float] = field(default_factory=list)

    def read(self, timeout_s: float) -> bytes:
        self.reads.append(timeout_s)
        data, self.data = self.data, b""
        return data


def credssp() -> LogonSession:
    """A CredSSP logon: the client handed over the user's own password."""
    return LogonSession(ACCOUNT, "credssp", Delegated(ACCOUNT, PASSWORD))


def ntlm() -> LogonSession:
    """A plain NTLM logon: nothing to delegate (the double hop)."""
    return LogonSession(ACCOUNT, "ntlm")


def jump_host(os: str = "2016", **knobs: object) -> HostState:
    host = build_windows_host("JUMP01", "127.0.0.10", os=os, domain=DOMAIN, clock=CLOCK)
    make_jump_host(host, **knobs)  # type: ignore[arg-type]
    return host


def legacy_host(
    name: str = "KMSNEW",
    os: str = "nt4",
    *,
    service_pack: str = "6a",
    wmi: bool = True,
    remote_registry: bool = True,
    admin_shares: bool = True,
    admins: tuple[str, ...] = (ACCOUNT,),
    **exchange: object,
) -> HostState:
    """An Exchange 5.5 SP3 KM server (the KB target unless told otherwise) behind a jump host."""
    options: dict[str, object] = {
        "km_binary_build": "5.5.1960.8",
        "kms_state": "stopped",
        "database_stamp": "5.5.2650",
        "events": [5389],
        "clock": CLOCK,
        "domain": DOMAIN,
        "startup_password": STARTUP_PASSWORD,
    }
    options.update(exchange)
    version = str(options.pop("version", "5.5"))
    host = build_exchange_host(name, "127.0.0.11", version, 3, os=os, **options)  # type: ignore
    make_legacy_host(
        host,
        service_pack=service_pack,
        admins=admins,
        wmi=wmi,
        remote_registry=remote_registry,
        admin_shares=admin_shares,
    )
    return host


class JumpLab:
    """A jump host and the servers behind it, run in-process."""

    def __init__(self, jump: HostState, *servers: HostState) -> None:
        self.jump = jump
        self.servers = {server.computer_name: server for server in servers}
        self.network = InMemoryNetwork(self.servers, USER, PASSWORD, DOMAIN)

    def run(
        self,
        line: str,
        session: LogonSession | None = None,
        stdin: ScriptedStdin | None = None,
    ) -> CommandResult:
        return run_command(self.jump, line, session=session, stdin=stdin, network=self.network)
