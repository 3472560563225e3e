# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remote-call layer of a jump host's tools: `\\\\NAME`, `/node:NAME`, `/s NAME`, UNC paths.

A tool that names another computer asks `RemoteCalls.call(name, channel, operation)`. The call
goes through these steps, in order, and the first that fails decides the answer (a `Refusal`
carrying the Win32 error; each tool prints it in its own words):

(a) Name: the jump host resolves NAME among the servers behind it; an unknown name is error 53
    ("The network path was not found.") for SMB. For DCOM (WMI) it is 1722 [lab]: the only
    published wmic failure for a host it cannot reach says "The RPC server is unavailable."
(b) Transport, from the facts of `exchlab.reach`: SMB needs the jump host's SMB 1.0 client
    (NT 4.0 and 2000 speak only SMB1, KB 204279, KB 4034314: error 384, "You can't connect to the
    file share because it's not secure...") and, for NT 4.0, NetBIOS over TCP/IP (no SMB on 445,
    KB 204279: error 53). The registry channel needs the Remote Registry service on Windows 2000
    (stopped: 53, the text a Tenable article gives for it). DCOM needs WMI on the target (NT 4.0
    only with WMI core, KB Q219378): 1722 [lab: the docs name no text for NT 4.0 without WMI].
(c) Authentication. SMB goes out with this logon session's `net use` entry for NAME, else the
    credentials the logon may delegate (CredSSP), else as ANONYMOUS LOGON; DCOM with credentials
    given on the command line, else the delegated ones, else anonymous (`net use` does not serve
    DCOM). Anonymous is refused with 5, the double hop (pywinrm issue 303: the far server logs
    "ANONYMOUS LOGON"; null sessions cannot use the registry since NT 4.0 SP3, KB Q143138). A
    jump host that sends NTLMv2 only cannot log on to NT 4.0 below SP4 (KB Q236414), nor can a
    wrong password: 1326.
(d) Rights: every channel but IPC$ needs a local Administrator of the target; else 5. For WMI
    that is the namespace's refusal, which wmic words differently from DCOM's ("Access denied"
    against "Access is denied.", both seen in published transcripts). Reading the service
    control manager is the exception (a call made with `admin=False`: `sc query`, `sc qc`):
    on NT 3.51, 4.0 and 2000 its DACL gives Everyone SC_MANAGER_CONNECT and GENERIC_READ and
    cannot be changed (KB Q179249), and only starting, stopping and configuring services is
    for Administrators by default (KB 288129, its Windows Server 2003 twin KB 325349); that
    services answer a status or configuration query to any account that logged on is [I].
    The host fault `scm_access_denied` stands for a service control manager whose DACL refuses
    this account (a hardened server): starting, stopping and configuring are refused with 5
    while every other channel lets the administrator in [lab: KB Q179249 says NT's SCM DACL
    cannot be changed; the fault plays what a security template or a later SP may set].
(e) The operation, run against the target's state while the target's lock is held (the runtime
    saves it afterwards), once the target's `at` jobs whose time has come have run
    (exchlab.console); it prints through the jump host's era: the tool that runs is the jump
    host's.

A file tool's path `\\\\NAME\\SHARE\\path` goes through the same steps on the SMB channel
(`shared_path`): what it yields is the target's state and the local path behind the admin share
(`SharedPath`), the one place a UNC path becomes a server's file. One command line may hold two
servers at once (a copy between them) or one server twice (a copy within it): a server already
held is the same state, reached once, so its lock is never taken twice.

`net use \\\\NAME\\IPC$ ...` keeps a connection with its credentials for the logon session (one
WinRS shell): `UseTables` holds one table per session object and drops it with the session. A
second user for a server already connected gives 1219. Without a session (tests calling the shell
directly) a table lasts one command line.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from ..console import run_due_jobs
from ..reach import (
    CURRENT_VERSION_KEY,
    account_key,
    admin_shares_enabled,
    is_local_admin,
    netbios_enabled,
    remote_registry_reachable,
    sends_ntlmv2_only,
    smb1_client_ready,
    understands_ntlmv2,
    wmi_installed,
)
from ..state import HostState

if TYPE_CHECKING:  # the shell knows nothing of WS-Management at run time
    from ..wsman.backend import LogonSession

ERROR_ACCESS_DENIED = 5
ERROR_BAD_NETPATH = 53
ERROR_BAD_NET_NAME = 67
ERROR_SMB1_NOT_AVAILABLE = 384
ERROR_SESSION_CREDENTIAL_CONFLICT = 1219
ERROR_LOGON_FAILURE = 1326
RPC_S_SERVER_UNAVAILABLE = 1722
ERROR_NOT_CONNECTED = 2250

# The channels a tool uses: named pipes over SMB (winreg for reg, svcctl for sc and the .NET
# ServiceController), files over an admin share, the IPC$ share itself (net use), WMI over DCOM.
WINREG = "winreg"
SVCCTL = "svcctl"
SHARE = "share"
IPC = "ipc"
WMI = "wmi"
ATSVC = "atsvc"  # the Schedule service's pipe (NetScheduleJobAdd, at.exe)
_SMB_CHANNELS = (WINREG, SVCCTL, SHARE, IPC, ATSVC)
ADMIN_SHARES = ("ADMIN$",)  # and every drive letter + "$"

T = TypeVar("T")


@dataclass(frozen=True)
class Credentials:
    """A user and password a jump-host tool logs on with to another computer."""

    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Refusal:
    """Why a remote call did not get through: the Win32 error a tool reports.

    `anonymous` tells the double hop (no credentials at all) from a user who is not an
    administrator; both are error 5, which wmic words differently."""

    code: int
    anonymous: bool = False


class Reachable(Protocol):
    """One server a jump host reaches by name."""

    def opened(self) -> contextlib.AbstractContextManager[HostState]:
        """The server's state, exclusively, for one call; the caller's changes are kept."""


class Network(Protocol):
    """What one jump host's network holds: the servers it reaches and the accounts they know."""

    domain: str  # the domain an account name without one belongs to

    def find(self, name: str) -> Reachable | None:
        """The server NAME resolves to from this jump host (NetBIOS name, case-insensitive)."""

    def logon_valid(self, user: str, password: str) -> bool:
        """Whether the target accepts this account and password (NTLM level aside)."""

    def use_table(self, session: LogonSession | None) -> dict[str, UseEntry]:
        """The `net use` connections of a logon session (a new table for None)."""


@dataclass
class UseEntry:
    """`net use` connections to one server: its credentials and the shares connected."""

    credentials: Credentials | None
    shares: set[str] = field(default_factory=set)


class UseTables:
    """`net use` tables by logon session object, each dropped when its session is."""

    def __init__(self) -> None:
        self._tables: dict[int, tuple[weakref.ref[LogonSession], dict[str, UseEntry]]] = {}
        # Reentrant: a session collected while this thread holds the lock drops its table here.
        self._lock = threading.RLock()

    def table(self, session: LogonSession | None) -> dict[str, UseEntry]:
        if session is None:
            return {}
        key = id(session)
        with self._lock:
            found = self._tables.get(key)
            if found is not None and found[0]() is session:
                return found[1]
            table: dict[str, UseEntry] = {}
            self._tables[key] = (weakref.ref(session, lambda _gone: self._drop(key)), table)
            return table

    def __len__(self) -> int:
        """How many logon sessions have a table now."""
        with self._lock:
            return len(self._tables)

    def _drop(self, key: int) -> None:
        with self._lock:
            entry = self._tables.get(key)
            if entry is not None and entry[0]() is None:
                del self._tables[key]


class _HeldHost:
    def __init__(self, state: HostState) -> None:
        self.state = state

    @contextlib.contextmanager
    def opened(self) -> Iterator[HostState]:
        yield self.state


class ServerNetwork:
    """The servers one jump host reaches, by the name it reaches them, and the one account they
    all know (the lab's): exchlab.windows.remote's Network."""

    def __init__(
        self, servers: Mapping[str, Reachable], user: str, password: str, domain: str
    ) -> None:
        self._servers = {name.upper(): server for name, server in servers.items()}
        self._user = user
        self._password = password
        self.domain = domain
        self._uses = UseTables()

    def find(self, name: str) -> Reachable | None:
        return self._servers.get(name.upper())

    def logon_valid(self, user: str, password: str) -> bool:
        return account_matches(user, self._user, self.domain) and password == self._password

    def use_table(self, session: LogonSession | None) -> dict[str, UseEntry]:
        return self._uses.table(session)


class InMemoryNetwork(ServerNetwork):
    """Host states of this process as a network, for tests and tools: no locks, nothing saved."""

    def __init__(self, hosts: Mapping[str, HostState], user: str, password: str, domain: str):
        super().__init__(
            {name: _HeldHost(state) for name, state in hosts.items()}, user, password, domain
        )


def account_matches(given: str, account: str, domain: str) -> bool:
    """USER or DOMAIN\\USER names the lab's account (names are case-insensitive)."""
    return account_key(given, domain) == account_key(account, domain)


class RemoteCalls:
    """The remote calls of one command line on a jump host (its logon session's view)."""

    def __init__(
        self, jump: HostState, network: Network, session: LogonSession | None = None
    ) -> None:
        self.jump = jump
        self.network = network
        self.session = session
        self.uses = network.use_table(session)
        # The servers this command line holds open now, by their Reachable object.
        self._held: dict[int, HostState] = {}

    def is_self(self, name: str) -> bool:
        return name.upper() in (self.jump.computer_name, ".", "LOCALHOST")

    def resolve(self, name: str) -> tuple[str, str] | None:
        """Step (a) alone, as ping does it: (the server's computer name, its address), or None
        when NAME is no server of this network. The server's state is only read."""
        server = self.network.find(name)
        if server is None:
            return None
        with server.opened() as target:
            return target.computer_name, target.address

    def call(
        self,
        name: str,
        channel: str,
        operation: Callable[[HostState], T],
        *,
        share: str | None = None,
        explicit: Credentials | None = None,
        admin: bool = True,
    ) -> T | Refusal:
        """Steps (a) to (e) of this module's docstring; the operation's result, or a Refusal.
        `admin`: whether the operation needs a local Administrator of the target (step d)."""
        with self.reached(name, channel, share=share, explicit=explicit, admin=admin) as target:
            if isinstance(target, Refusal):
                return target
            return operation(target)

    @contextlib.contextmanager
    def reached(
        self,
        name: str,
        channel: str,
        *,
        share: str | None = None,
        explicit: Credentials | None = None,
        admin: bool = True,
    ) -> Iterator[HostState | Refusal]:
        """Steps (a) to (d), then the target's state for step (e) while the block runs, or the
        Refusal. A server already reached by this command line (a copy between two folders of
        one server) is the same state: it is neither opened nor advanced a second time."""
        server = self.network.find(name)
        if server is None:
            yield Refusal(RPC_S_SERVER_UNAVAILABLE if channel == WMI else ERROR_BAD_NETPATH)
            return
        held = self._held.get(id(server))
        if held is not None:
            yield self._refusal(name, held, channel, share, explicit, admin) or held
            return
        with server.opened() as target:
            # A request reaches the target: its time moves on and what was pending settles
            # (a service started by an earlier call), as for a command run on it.
            target.begin_command()
            run_due_jobs(target)
            self._held[id(server)] = target
            try:
                yield self._refusal(name, target, channel, share, explicit, admin) or target
            finally:
                del self._held[id(server)]

    @contextlib.contextmanager
    def shared_path(self, path: str) -> Iterator[SharedPath | Refusal]:
        """`\\\\NAME\\SHARE\\rest` through SHARE (steps a to d): the server's state and the
        local path behind the share while the block runs, or the Refusal. Files behind IPC$ (or
        any share but an admin share) are error 67 [lab]."""
        parts = split_unc(path)
        if parts is None:
            raise ValueError(f"{path!r} is no UNC path")
        name, share, inner = parts
        with self.reached(name, SHARE, share=share) as target:
            if isinstance(target, Refusal):
                yield target
                return
            root = share_path(target, share, "")
            if root is None:
                yield Refusal(ERROR_BAD_NET_NAME)
                return
            local = share_path(target, share, inner) or root
            yield SharedPath(target, local, root, f"\\\\{name}\\{share}")

    def _refusal(
        self,
        name: str,
        target: HostState,
        channel: str,
        share: str | None,
        explicit: Credentials | None,
        admin: bool,
    ) -> Refusal | None:
        refused = self._transport_refusal(target, channel)
        if refused is not None:
            return refused
        credentials = explicit or self.outbound_credentials(name, channel)
        if credentials is None:
            return Refusal(ERROR_ACCESS_DENIED, anonymous=True)
        refused = self._logon_refusal(target, credentials)
        if refused is not None:
            return refused
        if channel == SHARE:
            return self._share_refusal(target, share or "", credentials)
        if channel == IPC or not admin:
            return None
        if not is_local_admin(target, credentials.user, self.network.domain):
            return Refusal(ERROR_ACCESS_DENIED)
        if channel == SVCCTL and target.faults.get("scm_access_denied"):
            return Refusal(ERROR_ACCESS_DENIED)
        return None

    def _transport_refusal(self, target: HostState, channel: str) -> Refusal | None:
        if channel == WMI:
            return None if wmi_installed(target) else Refusal(RPC_S_SERVER_UNAVAILABLE)
        if not smb1_client_ready(self.jump):
            return Refusal(ERROR_SMB1_NOT_AVAILABLE)
        if target.os == "nt4" and not netbios_enabled(self.jump):
            return Refusal(ERROR_BAD_NETPATH)
        if channel == WINREG and not remote_registry_reachable(target):
            return Refusal(ERROR_BAD_NETPATH)
        return None

    def _logon_refusal(self, target: HostState, credentials: Credentials) -> Refusal | None:
        if sends_ntlmv2_only(self.jump) and not understands_ntlmv2(target):
            return Refusal(ERROR_LOGON_FAILURE)
        if not self.network.logon_valid(credentials.user, credentials.password):
            return Refusal(ERROR_LOGON_FAILURE)
        return None

    def _share_refusal(
        self, target: HostState, share: str, credentials: Credentials
    ) -> Refusal | None:
        upper = share.upper()
        if upper == "IPC$":
            return None
        is_drive = len(upper) == 2 and upper[1] == "$" and f"{upper[0]}:" in target.drives
        if not (is_drive or upper in ADMIN_SHARES) or not admin_shares_enabled(target):
            return Refusal(ERROR_BAD_NET_NAME)
        if not is_local_admin(target, credentials.user, self.network.domain):
            return Refusal(ERROR_ACCESS_DENIED)
        return None

    def outbound_credentials(self, name: str, channel: str) -> Credentials | None:
        """Step (c): a `net use` entry (SMB only), else the delegated credentials, else None."""
        if channel in _SMB_CHANNELS:
            entry = self.uses.get(name.upper())
            if entry is not None and entry.credentials is not None:
                return entry.credentials
        delegated = self.session.delegated if self.session is not None else None
        if delegated is not None:
            return Credentials(delegated.user, delegated.password)
        return None

    # -- net use -------------------------------------------------------------------------

    def connect(self, name: str, share: str, credentials: Credentials | None) -> Refusal | None:
        """`net use \\\\NAME\\SHARE`: connect with CREDENTIALS (None: the logon's own) and keep
        the connection for later calls of this logon session."""
        existing = self.uses.get(name.upper())
        given = credentials or self.outbound_credentials(name, IPC)
        if (
            existing is not None
            and existing.credentials is not None
            and given is not None
            and account_key(existing.credentials.user, self.network.domain)
            != account_key(given.user, self.network.domain)
        ):
            return Refusal(ERROR_SESSION_CREDENTIAL_CONFLICT)
        channel = IPC if share.upper() == "IPC$" else SHARE
        outcome = self.call(name, channel, lambda _target: None, share=share, explicit=given)
        if isinstance(outcome, Refusal):
            return outcome
        entry = existing or UseEntry(given)
        entry.credentials = given
        entry.shares.add(share.upper())
        self.uses[name.upper()] = entry
        return None

    def disconnect(self, name: str, share: str) -> bool:
        """`net use \\\\NAME\\SHARE /delete`: False when no such connection exists."""
        entry = self.uses.get(name.upper())
        if entry is None or share.upper() not in entry.shares:
            return False
        entry.shares.discard(share.upper())
        if not entry.shares:
            del self.uses[name.upper()]
        return True


@dataclass(frozen=True)
class SharedPath:
    """A UNC path reached through an admin share: the server's state, the path behind the share
    on it (`C:\\EXCHSRVR\\KMSDATA`), and the share's local root and UNC root as typed, so that a
    tool prints the server's paths the way they were typed (`\\\\KMSNEW\\c$\\EXCHSRVR`), as
    published `dir \\\\HOST\\c$` captures show."""

    host: HostState
    local: str
    local_root: str  # "C:\\" or the system root behind ADMIN$
    unc_root: str  # "\\\\KMSNEW\\c$", as typed

    def shown(self, path: str) -> str:
        """A local path of the server as the tool prints it: under the share's UNC root."""
        spelled = self.host.fs.display(path)
        rest = spelled[len(self.local_root.rstrip("\\")) :].strip("\\")
        return self.unc_root + ("\\" + rest if rest else "")


def split_unc(path: str) -> tuple[str, str, str] | None:
    """`\\\\NAME\\SHARE\\rest` -> (NAME, SHARE, rest without a leading backslash); None for a path
    that is not UNC or names no share."""
    text = path.strip().strip('"').replace("/", "\\")
    if not text.startswith("\\\\"):
        return None
    name, _separator, rest = text[2:].partition("\\")
    share, _separator, inner = rest.partition("\\")
    if not name or not share:
        return None
    return name, share, inner


def share_path(target: HostState, share: str, inner: str) -> str | None:
    """The target's local path behind an admin share (`C$` -> `C:\\`, `ADMIN$` -> the system
    root); None for any other share."""
    upper = share.upper()
    if upper == "ADMIN$":
        base = str(target.registry.data(CURRENT_VERSION_KEY, "SystemRoot", "C:\\WINNT"))
    elif len(upper) == 2 and upper[1] == "$":
        base = f"{upper[0]}:\\"
    else:
        return None
    return base.rstrip("\\") + "\\" + inner if inner else base


def path_error_code(refusal: Refusal) -> int:
    """The error reg, sc and the file tools (dir, type, copy, xcopy, robocopy, certutil, md,
    del) report for a refusal. Without the SMB1 client they say
    53 [lab]: which text each prints then is not established (KB 4034314 lists several, among
    them "The specified network name is no longer available." and error 64); net.exe's 384 is
    the one a capture shows."""
    return ERROR_BAD_NETPATH if refusal.code == ERROR_SMB1_NOT_AVAILABLE else refusal.code
