# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WS-Management / WinRS server side for the lab, knowing nothing of Exchange or cmd.exe.

Unmodified pywinrm and pypsrp clients connect to it over HTTP (NTLM or CredSSP with message
encryption) and HTTPS (Basic, NTLM with channel binding, or CredSSP); each command line goes to
a ``Backend`` with the shell's ``LogonSession`` (CredSSP's carries the delegated credentials) and
a ``Stdin`` fed by WinRS Send.

    ca = LabCA.load_or_create(state_dir)
    server = WsmanServer([backend, ...], ca, ntlm_user_file=str(state_dir / "ntlm_users"))
    server.start()
    ...
    server.stop()
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import logging

from .backend import Backend, CommandResult, Delegated, LogonSession, Stdin, WsmanFaults
from .listener import ListenerBindError, WsmanServer
from .soap import WsmanFault
from .tls import LabCA, ServerCertificate

# Quiet by default: the lab's callers decide whether protocol chatter is shown.
logging.getLogger("exchlab.wsman").addHandler(logging.NullHandler())

__all__ = [
    "Backend",
    "CommandResult",
    "Delegated",
    "LabCA",
    "ListenerBindError",
    "LogonSession",
    "ServerCertificate",
    "Stdin",
    "WsmanFault",
    "WsmanFaults",
    "WsmanServer",
]
