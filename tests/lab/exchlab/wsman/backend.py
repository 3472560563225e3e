# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract between the WS-Management layer and whatever runs the command lines.

The protocol layer knows nothing about Exchange or cmd.exe: it hands a command line and the
shell's environment to a ``Backend`` and turns the ``CommandResult`` into WinRS Receive
responses. ``WsmanFaults`` is read on every request, so a lab can flip a fault at run time.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# Operation names accepted by WsmanFaults.drop_connection_on and wsman_fault_on.
OPERATIONS = ("Create", "Command", "Receive", "Signal", "Delete", "Send")


@dataclass(frozen=True)
class CommandResult:
    """What a command line printed and how it ended, as text (encoded later per code page)."""

    stdout: str
    stderr: str
    exit_code: int


@dataclass(frozen=True)
class Delegated:
    """Credentials a logon may use onwards, to other computers: what a CredSSP client hands the
    server (the user's own name and password). A plain NTLM or Basic logon has none, which is
    the double hop: its calls to other computers go out as ANONYMOUS LOGON."""

    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class LogonSession:
    """Who a WinRS shell runs as, and how that user authenticated to the listener."""

    user: str  # as authenticated, e.g. "LAB\\ansible"
    auth: str  # "ntlm" (Negotiate/NTLM), "basic" or "credssp"
    delegated: Delegated | None = None


class Stdin(Protocol):
    """The standard input of one command: what the client sends with WinRS Send."""

    def read(self, timeout_s: float) -> bytes:
        """Everything sent until the client marks the stream's end, or what has arrived when
        TIMEOUT_S ends (b"" when nothing was sent)."""


@dataclass
class WsmanFaults:
    """Failure modes of one simulated host; mutable and read on every request.

    ``tls_certificate`` is read when the HTTPS listener starts and by
    ``WsmanServer.renew_certificate()`` (`exchlab fault` calls it), as a Windows listener
    presents a new certificate once it is bound.
    """

    # Every auth attempt gets 401, as a wrong password would.
    auth_refused: bool = False
    # The WinRM service's Auth/CredSSP: offered and accepted when true. Windows' default is false
    # until `Enable-WSManCredSSP -Role Server` (https://learn.microsoft.com/en-us/powershell/
    # module/microsoft.wsman.management/enable-wsmancredssp); every lab host starts with it on
    # so that any of them can serve as a jump host [lab]. False models a host never enabled.
    credssp_enabled: bool = True
    # Added before answering every HTTP request.
    latency_ms: int = 0
    # "Create" | "Command" | "Receive" | "Signal" | "Delete": close the TCP connection
    # without answering (or running) that operation, drop_connection_count times.
    drop_connection_on: str | None = None
    drop_connection_count: int = 1
    # Case-insensitive text: a Receive for a command whose line contains it loses its TCP
    # connection (drop_connection_count times) while the command keeps running on the host, as
    # when a network blip cuts a long install (the shell and its process survive on Windows).
    drop_receive_for: str | None = None
    # Operation name answered with a WS-Man fault carrying wsman_fault_code instead.
    wsman_fault_on: str | None = None
    wsman_fault_code: int = 2150858770
    # Every command started while this is set never produces output: Receive answers the
    # TimedOut fault each OperationTimeout until command_lifetime_s ends, then the command
    # is killed with exit code 1 [lab: the lifetime and the code].
    operation_timeout: bool = False
    command_lifetime_s: float = 300.0
    # Windows' MaxShellsPerUser quota (per host, per authenticated user); the default 5 has no
    # source cited [lab]. Jump hosts start with 2012 R2's and later's 30 (exchlab.reach).
    max_shells_per_user: int = 5
    # "ok" | "expired" | "wrong_name": which certificate the HTTPS listener presents.
    tls_certificate: str = "ok"
    # A code page every new shell runs in whatever WINRS_CODEPAGE asks (None: honour it), as a
    # host whose cmd.exe is forced to its OEM code page (850, 932 ...) does.
    shell_codepage: int | None = None
    # Seconds added to the Date header of every HTTP response: a host whose clock is off.
    clock_skew_s: int = 0


class Backend(Protocol):
    """One simulated Windows computer, as the protocol layer sees it."""

    name: str  # Windows computer name, e.g. "KMS-NEW" (faults' Machine=, certificates)
    address: str  # loopback address the host listens on, e.g. "127.0.0.5"
    faults: WsmanFaults

    def check_credentials(self, user: str, password: str) -> bool:
        """Return whether Basic credentials are valid for this host."""

    def run_command(
        self,
        command_line: str,
        environment: dict[str, str],
        codepage: int = 437,
        session: LogonSession | None = None,
        stdin: Stdin | None = None,
    ) -> CommandResult:
        """Run one command line in a shell of that code page, as SESSION's user, with STDIN as
        its standard input; blocking, may take seconds (called in a worker thread)."""

    def count(self, kind: str) -> None:
        """Count one "http" request, one "shells" creation or one "commands" start."""

    def note_open_shells(self, open_now: int) -> None:
        """How many shells are open on this host right after one was created (every user's):
        the host keeps the most, so a run's peak shows even once its shells are deleted."""
