# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a host is reached: over WinRM on the host itself, or through its Windows jump host.

Exchange 5.5 and 2000 run on Windows NT 4.0 and 2000, which cannot run WinRM (it starts with
Windows Server 2003 R2 / Vista SP1). Such a server stays its own inventory host, with

    ansible_host: KMSNEW            # its name as the jump host reaches it (NetBIOS name or address)
    exchange_jump_host: jump01      # the inventory host of the Windows jump host
    exchange_jump_auth: delegated   # the default: the jump host uses the credentials its logon got

The shell then opens on the jump host, with the jump host's own `ansible_*` /
`ansible_winrm_*` settings (resolved as `delegate_to` would), and the commands name the legacy
server (`reg query "\\\\KMSNEW\\HKLM\\..."`, `sc \\\\KMSNEW`, `wmic /node:KMSNEW`): see
`_probe`. The legacy host's other connection settings are not used.

The second hop needs credentials the jump host may use onwards. Ansible's WinRM guide: credential
delegation is done only by CredSSP and by Kerberos with delegation; NTLM, Basic and certificate
logons delegate nothing, and the jump host then reaches the legacy server as ANONYMOUS LOGON,
which is refused ("Access is denied.")
(https://docs.ansible.com/ansible/latest/os_guide/windows_winrm.html#winrm-limitations). NT 4.0
has no Kerberos at all, so Kerberos delegation can serve Windows 2000 servers only; it is
accepted but untested. A mode with credentials of the legacy server's own is left out: the tools
that take them (`net use`, `wmic /user /password`) take the password on the command line, which
the jump host's process-creation audit (event 4688) records.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import re
import tempfile
import typing as t
from dataclasses import dataclass

from ansible.module_utils.parsing.convert_bool import boolean

from ._poll import SYSTEM_CLOCK, Clock, PollTimeout, every, poll_until
from ._winout.remote import (
    ACCESS_DENIED,
    LOGON_FAILURE,
    NETWORK_NAME_NOT_FOUND,
    NETWORK_PATH_NOT_FOUND,
    RPC_SERVER_UNAVAILABLE,
    SMB1_NOT_AVAILABLE,
    remote_call_error,
)
from ._winrs import (
    DEFAULT_COMMAND_TIMEOUT_SEC,
    WinrsConfigError,
    WinrsQuotaFault,
    WinrsTarget,
    target_from_options,
    whole_number,
)

JUMP_HOST_VAR = "exchange_jump_host"
JUMP_AUTH_VAR = "exchange_jump_auth"
DELEGATED = "delegated"
JUMP_AUTH_MODES = (DELEGATED,)
JUMP_MAX_SHELLS_VAR = "exchange_jump_max_shells"
# Off by default: the KMS startup password then reaches the jump host on the start command's
# standard input, never on a command line (`_service.start_line`).
PASSWORD_IN_ARGV_VAR = "exchange_jump_allow_password_in_argv"
# Windows allows each user MaxShellsPerUser shells at once, 30 by default from Windows Server
# 2012 on ("Installation and configuration for Windows Remote Management",
# https://learn.microsoft.com/windows/win32/winrm/installation-and-configuration-for-windows-remote-management).
# Forks are separate processes and a pair's read opens two shells: the controller keeps below
# that, leaving room for an operator's own session.
DEFAULT_JUMP_MAX_SHELLS = 25

# How the facts say a host was read directly.
DIRECT = None

# A name the jump host's tools take after \\ or /node: without quoting: a NetBIOS or DNS name or
# an IPv4 address. Anything else (spaces, cmd's & | < > ^ % ", a scheme, a port) is refused
# before it reaches a command line.
_REMOTE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252}[A-Za-z0-9])?")

DOUBLE_HOP_FIX = (
    "Set ansible_winrm_transport: credssp for {jump} (and enable CredSSP on it: "
    "Enable-WSManCredSSP -Role Server; on the controller pip install pywinrm[credssp]), or, for "
    "Windows 2000 servers only, kerberos with ansible_winrm_kerberos_delegation: true."
)


@dataclass(frozen=True)
class Reach:
    """Where one host's commands run: the shell's endpoint (`target`, labelled with the host),
    and the host's name on the jump host's command lines (`remote`, None when direct)."""

    host: str
    target: WinrsTarget
    remote: str | None = None
    via: str | None = None
    auth: str = ""
    # The most shells this controller opens on the jump host at once, over all forks.
    max_shells: int = DEFAULT_JUMP_MAX_SHELLS
    # The operator allowed a startup password on the jump host's command lines
    # (PASSWORD_IN_ARGV_VAR), where its process-creation audit records it.
    password_in_argv: bool = False

    def facts(self) -> dict[str, t.Any]:
        """`reach` in the Exchange facts: the jump host (None when read directly) and how the
        legacy server was authenticated to (the jump auth mode), or the WinRM transport."""
        return {"via": self.via, "auth": self.auth}


def jump_host_of(host: str, host_vars: t.Mapping[str, t.Any]) -> str | None:
    """The inventory name of HOST's jump host, or None when HOST is reached directly."""
    jump = host_vars.get(JUMP_HOST_VAR)
    if jump in (None, ""):
        return None
    if not isinstance(jump, str):
        raise WinrsConfigError(
            host,
            f"{JUMP_HOST_VAR} is {jump!r}; it must be the inventory name of the Windows jump host "
            "that reaches this server, e.g. jump01.",
        )
    return jump


def direct_reach(
    host: str,
    get_option: t.Callable[[str], t.Any],
    command_timeout_sec: int = DEFAULT_COMMAND_TIMEOUT_SEC,
) -> Reach:
    """HOST reached over WinRM on itself, with its own connection options."""
    target = target_from_options(host, get_option, command_timeout_sec)
    return Reach(host, target, auth=target.transport)


def reach_through(
    host: str,
    get_option: t.Callable[[str], t.Any],
    host_vars: t.Mapping[str, t.Any],
    jump: str,
    jump_options: t.Callable[[str], t.Any],
    jump_vars: t.Mapping[str, t.Any],
    command_timeout_sec: int = DEFAULT_COMMAND_TIMEOUT_SEC,
) -> Reach:
    """HOST reached through JUMP: a shell with the jump host's options (`jump_options`, its
    `jump_vars` from the inventory), commands that name HOST by its ansible_host. Refuses,
    before anything is sent, a jump host that is itself behind one, an unknown auth mode, a
    name the tools cannot take, and a logon that would delegate nothing (the double hop)."""
    label = f"{host} (through {jump})"
    if jump == host:
        raise WinrsConfigError(
            label, f"{JUMP_HOST_VAR} names the host itself. Name the Windows jump host instead."
        )
    if jump_host_of(jump, jump_vars):
        raise WinrsConfigError(
            label,
            f"its jump host {jump} has an {JUMP_HOST_VAR} of its own; a jump host must be reached "
            f"over WinRM directly. Remove {JUMP_HOST_VAR} from {jump}.",
        )
    auth = host_vars.get(JUMP_AUTH_VAR) or DELEGATED
    if auth not in JUMP_AUTH_MODES:
        raise WinrsConfigError(
            label,
            f"{JUMP_AUTH_VAR} is {auth!r}; the one mode is {DELEGATED} (the jump host uses the "
            "credentials its WinRM logon was given). Remove it or set it to delegated.",
        )
    remote = remote_name(label, host, get_option)
    max_shells = whole_number(jump_vars.get(JUMP_MAX_SHELLS_VAR, DEFAULT_JUMP_MAX_SHELLS))
    if max_shells is None or max_shells < 1:
        raise WinrsConfigError(
            label,
            f"{jump}'s {JUMP_MAX_SHELLS_VAR} is {jump_vars.get(JUMP_MAX_SHELLS_VAR)!r}; it must be "
            f"a whole number of 1 or more, below the jump host's MaxShellsPerUser (Windows' "
            f"default 30). Set it to e.g. {DEFAULT_JUMP_MAX_SHELLS}.",
        )
    password_in_argv = host_vars.get(PASSWORD_IN_ARGV_VAR, False)
    try:
        password_in_argv = boolean(password_in_argv, strict=True)
    except TypeError:
        raise WinrsConfigError(
            label,
            # Its value is not quoted: the variable's name says "password", and a value put
            # there by mistake may be one.
            f"{PASSWORD_IN_ARGV_VAR} is not a boolean; it must be true or false. Leave it out "
            "(false, the default) unless the startup password may appear on the jump host's "
            "command lines (README, 'Reaching real KM servers').",
        ) from None
    target = target_from_options(jump, jump_options, command_timeout_sec)
    if not delegates(target):
        raise WinrsConfigError(
            label,
            f"{jump} is reached with ansible_winrm_transport={target.transport}, which delegates "
            f"no credentials: {jump} would reach {remote} as ANONYMOUS LOGON and be refused "
            f"(the double hop). {DOUBLE_HOP_FIX.format(jump=jump)} Nothing was sent.",
        )
    return Reach(
        host,
        dataclasses.replace(target, host=host, via=jump),
        remote,
        jump,
        auth,
        max_shells,
        password_in_argv,
    )


def remote_name(label: str, host: str, get_option: t.Callable[[str], t.Any]) -> str:
    """HOST's name on the jump host's command lines: its ansible_host, refused unless the
    jump host's tools can take it as it is."""
    remote = str(get_option("remote_addr") or host)
    if not _REMOTE_NAME.fullmatch(remote):
        raise WinrsConfigError(
            label,
            f"ansible_host is {remote!r}; behind a jump host it must be the server's name as the "
            "jump host reaches it: a NetBIOS or DNS name or an IPv4 address (letters, digits, "
            "'.', '-', '_'). Set ansible_host to e.g. KMSNEW.",
        )
    return remote


def delegates(target: WinrsTarget) -> bool:
    """Whether a WinRM logon with TARGET's settings gives the server credentials it may use
    onwards (Ansible's WinRM guide, "Credential Delegation")."""
    return target.transport == "credssp" or (
        target.transport == "kerberos" and target.kerberos_delegation
    )


# What each error of a remote call may mean, and what to do (docs/windows-output.md
# #remote-call-errors). One text stands for several causes: all of them are named, and the doctor
# tells them apart with its own checks.
_REMOTE_ERRORS = {
    NETWORK_PATH_NOT_FOUND: (
        "{remote}'s name does not resolve from {jump}; {jump} lacks the SMB 1.0/CIFS client "
        "that NT 4.0 and Windows 2000 need (not installed by default on Windows Server 2019 and "
        "later, KB 4034314); NetBIOS over TCP/IP is off on {jump} while {remote} runs NT 4.0, "
        "which has no SMB on port 445 (KB 204279); or the Remote Registry service is stopped on "
        "a Windows 2000 server",
        "Run the doctor (playbook exchops.kms.doctor) on {host} to tell which.",
    ),
    SMB1_NOT_AVAILABLE: (
        "{jump} has no SMB 1.0 client, and NT 4.0 and Windows 2000 speak only SMB 1 (KB 4034314)",
        "Install the 'SMB 1.0/CIFS Client' feature on {jump}, or use a jump host that has it.",
    ),
    RPC_SERVER_UNAVAILABLE: (
        "{remote} is off, a firewall between {jump} and {remote} blocks RPC (TCP 135 and the "
        "dynamic ports, or 139/445 for named pipes), or the service that answers is not running",
        "Run the doctor (playbook exchops.kms.doctor) on {host} to tell which.",
    ),
    ACCESS_DENIED: (
        "{remote} refused the account {jump} passes on: it is not an administrator on {remote} "
        "(it needs a trust between {remote}'s domain and {jump}'s, or a local account of the same "
        "name and password on {remote}), or {jump} was given no credentials to pass on (the "
        "double hop)",
        "Make the account an administrator on {remote}, and reach {jump} with "
        "ansible_winrm_transport: credssp.",
    ),
    LOGON_FAILURE: (
        "{remote} does not know the account or the password {jump} passes on; an NT 4.0 server "
        "below Service Pack 4 also refuses the NTLMv2 that a modern jump host sends (KB Q236414)",
        "Check that the account exists on {remote} (or its domain) with the same password; on NT "
        "4.0 install Service Pack 4 or later.",
    ),
    NETWORK_NAME_NOT_FOUND: (
        "{remote} has no administrative share C$ (AutoShareServer turned off)",
        "Turn the administrative shares back on for {remote}, or read it at its console.",
    ),
}


def remote_failure_message(reach: Reach, error: str, text: str) -> str:
    """Why REACH's jump host could not read its server, with Windows' own TEXT, every cause
    that text may stand for, and what to do."""
    causes, fix = _REMOTE_ERRORS.get(
        error, ("the remote call failed", "Run the doctor (playbook exchops.kms.doctor) on {host}.")
    )
    names = {"host": reach.host, "jump": reach.via, "remote": reach.remote}
    return (
        f"{reach.via} could not read {reach.remote} ({text.strip()}): "
        f"{causes.format(**names)}. {fix.format(**names)}"
    )


def remote_of(reach: Reach | None) -> str | None:
    """The server REACH's commands name from its jump host; None when they run on the host
    itself (no reach, or a direct one)."""
    return reach.remote if reach else None


def sections_refusal(
    reach: Reach | None, sections: t.Mapping[str, t.Any], skip: t.Callable[[str], bool]
) -> str | None:
    """`remote_refusal` of the first section of SECTIONS (`_probe.Section`s by name, those SKIP
    does not leave out) whose command could not reach REACH's server, or None."""
    for name, part in sections.items():
        if skip(name):
            continue
        refusal = remote_refusal(reach, part.text, part.succeeded)
        if refusal is not None:
            return refusal
    return None


def remote_refusal(reach: Reach | None, text: str, succeeded: bool = False) -> str | None:
    """Why REACH's jump host could not reach its server with a command that printed TEXT (its
    name, the transport, the account: `remote_failure_message`), or None: the command reached
    it (or ran on the server itself), whatever the server answered."""
    if reach is None or reach.remote is None or succeeded:
        return None
    error = remote_call_error(text)
    if error is None:
        return None
    return remote_failure_message(reach, error, " ".join(text.split())[:200])


@contextlib.contextmanager
def shell_slot(
    reach: Reach, timeout: float, clock: Clock = SYSTEM_CLOCK, folder: str | None = None
) -> t.Iterator[None]:
    """Hold one of the jump host's `max_shells` slots while a shell is open on it, waiting up
    to TIMEOUT seconds for one to free. The slots are files locked with flock in a folder of
    the controller's temporary directory, one folder per jump host endpoint and user (Windows
    counts shells per user), so every fork of every play on this controller shares them. A host
    reached directly takes no slot."""
    if reach.via is None:
        yield
        return
    key = f"{reach.target.endpoint}|{str(reach.target.user or '').lower()}"
    slots = os.path.join(
        folder or tempfile.gettempdir(),
        f"exchops-jump-{hashlib.sha256(key.encode()).hexdigest()[:16]}",
    )
    os.makedirs(slots, mode=0o700, exist_ok=True)

    def take() -> int | None:
        for number in range(reach.max_shells):
            handle = os.open(os.path.join(slots, f"slot-{number}"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(handle)
                continue
            return handle
        return None

    try:
        held = poll_until(
            take,
            lambda handle: handle is not None,
            first=take(),
            timeout=timeout,
            interval=every(0.2),
            clock=clock,
        )
    except PollTimeout:
        raise WinrsQuotaFault(
            reach.target.label,
            f"all {reach.max_shells} shells this controller may open on {reach.via} at once "
            f"({JUMP_MAX_SHELLS_VAR}) stayed in use for {timeout:.0f} s. Run with fewer forks, "
            f"raise the task's timeout, or raise {JUMP_MAX_SHELLS_VAR} on {reach.via} up to its "
            "MaxShellsPerUser (winrm get winrm/config/winrs), then run again.",
            None,
            "exchops.kms shell limit",
        ) from None
    try:
        yield
    finally:
        os.close(t.cast(int, held))  # closing the descriptor releases its lock
