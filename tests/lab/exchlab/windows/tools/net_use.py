# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`net use`: connections of the logon session to other computers' shares (exchlab.windows.remote).

`net use \\\\NAME\\IPC$ [PASSWORD | *] [/user:[DOMAIN\\]USER]` connects and keeps the credentials
for the session's later SMB calls (`reg \\\\NAME`, `sc \\\\NAME`, `dir \\\\NAME\\C$`); with `*` it
prints "Type the password for \\\\NAME\\IPC$:" and reads the password from standard input (WinRS
Send): whether net.exe reads a pipe rather than the console is not verified [lab]. Without
/user it connects as the logon's own (delegated) account. `net use \\\\NAME\\IPC$ /delete` drops
the connection; `net use` lists them.

Texts: "The command completed successfully.", "Type the password for ...:", and the failure frame
"System error N has occurred." / empty line / the system message / empty line on stderr with
exit code 2 are quoted from captures (53, 384, 1219; the exit code: docs/windows-output.md
section 3). [lab], no source cited: "\\\\NAME\\IPC$ was deleted successfully.", the 2250 answer to a
delete of nothing, the list's layout, and "exchlab: ... is not emulated" for drive-letter forms.
"""

from __future__ import annotations

from ..formats import CRLF, SYSTEM_MESSAGES
from ..remote import ERROR_BAD_NETPATH, ERROR_NOT_CONNECTED, Credentials, split_unc
from . import Invocation, Output

_DONE = f"The command completed successfully.{CRLF}{CRLF}"


def system_error(output: Output, code: int) -> int:
    output.err(f"System error {code} has occurred.{CRLF}{CRLF}{SYSTEM_MESSAGES[code]}{CRLF}{CRLF}")
    return 2


def use(invocation: Invocation, output: Output, words: list[str]) -> int:
    remote = invocation.remote
    switches = [word for word in words if word.startswith("/")]
    operands = [word for word in words if not word.startswith("/")]
    if not operands:
        return _list(invocation, output)
    unc = split_unc(operands[0])
    if unc is None or unc[2]:
        output.err(f"exchlab: net use {operands[0]} is not emulated{CRLF}")
        return 1
    name, share, _inner = unc
    shown = f"\\\\{name}\\{share}"
    if remote is None or remote.is_self(name):
        # A host that reaches no other host (and a jump host naming itself [lab]).
        return system_error(output, ERROR_BAD_NETPATH)
    if any(switch.lower() in ("/delete", "/d") for switch in switches):
        if remote.disconnect(name, share):
            output.out(f"{shown} was deleted successfully.{CRLF}{CRLF}")
            return 0
        output.err(
            f"{SYSTEM_MESSAGES[ERROR_NOT_CONNECTED]}{CRLF}{CRLF}"
            f"More help is available by typing NET HELPMSG {ERROR_NOT_CONNECTED}.{CRLF}{CRLF}"
        )
        return 2
    user = next(
        (switch.split(":", 1)[1] for switch in switches if switch.lower().startswith("/user:")),
        None,
    )
    password = operands[1] if len(operands) > 1 else None
    if password == "*":
        output.out(f"Type the password for {shown}:")
        password = invocation.read_line()
        output.out(CRLF)
    credentials = None
    if user is not None or password is not None:
        session_user = remote.session.user if remote.session is not None else ""
        credentials = Credentials(user or session_user, password or "")
    refusal = remote.connect(name, share, credentials)
    if refusal is not None:
        return system_error(output, refusal.code)
    output.out(_DONE)
    return 0


def _list(invocation: Invocation, output: Output) -> int:
    remote = invocation.remote
    uses = remote.uses if remote is not None else {}
    if not uses:
        output.out(f"There are no entries in the list.{CRLF}{CRLF}")
        return 0
    lines = [
        f"New connections will be remembered.{CRLF}{CRLF}{CRLF}",
        f"{'Status':<13}{'Local':<10}{'Remote':<26}Network{CRLF}{CRLF}",
        "-" * 79 + CRLF,
    ]
    for name, entry in sorted(uses.items()):
        for share in sorted(entry.shares):
            remote_name = f"\\\\{name}\\{share}"
            lines.append(f"{'OK':<13}{'':<10}{remote_name:<26}Microsoft Windows Network{CRLF}")
    lines.append(_DONE)
    output.out("".join(lines))
    return 0
