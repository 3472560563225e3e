# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small commands: `ver`, `date /t`, `time /t`, `del`, and the programs hostname.exe and cmd.exe.

[lab], no source cited: the dd/mm/yyyy and HH:MM forms of `date /t` / `time /t` (E14's locale),
"The system cannot accept the date/time entered.", del's "Could Not Find X" with ERRORLEVEL 0,
and hostname.exe's upper-case name.
"""

from __future__ import annotations

from ..cmdline import split_arguments
from ..formats import CRLF
from ..remote import Refusal
from . import Invocation, Located, Output, Tool, refusal_message, syntax_error


def ver(invocation: Invocation, output: Output) -> int:
    """`ver`: an empty line, then the version line ("Microsoft Windows [Version 10.0.14393]")."""
    output.out(CRLF + invocation.era.ver_line + CRLF)
    return 0


def hostname(invocation: Invocation, output: Output) -> int:
    """hostname.exe prints the computer name (lab hosts have upper-case names, like NetBIOS)."""
    output.out(invocation.host.computer_name + CRLF)
    return 0


def date(invocation: Invocation, output: Output) -> int:
    if "/t" not in invocation.args.lower():
        output.err(f"The system cannot accept the date entered.{CRLF}")
        return 1
    output.out(invocation.host.now().strftime("%d/%m/%Y") + CRLF)
    return 0


def time(invocation: Invocation, output: Output) -> int:
    if "/t" not in invocation.args.lower():
        output.err(f"The system cannot accept the time entered.{CRLF}")
        return 1
    output.out(invocation.host.now().strftime("%H:%M") + CRLF)
    return 0


def delete(invocation: Invocation, output: Output) -> int:
    """`del [/f] [/q] FILE...`: a missing file is reported, yet ERRORLEVEL stays 0 (cmd.exe).
    `del \\\\NAME\\C$\\path` on a jump host deletes through NAME's admin share; a refusal prints
    its system message, ERRORLEVEL still 0 [lab]."""
    names = [arg for arg in split_arguments(invocation.args) if not arg.startswith("/")]
    if not names:
        return syntax_error(output)
    for name in names:
        with invocation.located(name) as located:
            if isinstance(located, Refusal):
                # As for a path the file system refuses, with the remote layer's error [lab].
                output.err(refusal_message(located) + CRLF)
                continue
            _delete(located, output)
    return 0


def _delete(located: Located, output: Output) -> None:
    path = located.invocation.path_or_error(located.text, output)
    if path is None:
        return
    matches = located.invocation.expand_wildcards(located.text)
    if not matches:
        output.err(f"Could Not Find {located.shown(path)}{CRLF}")
    for match in matches:
        located.host.delete_file(match)


def cmd(invocation: Invocation, output: Output) -> int:
    """cmd.exe /c LINE (or /k): a new shell on the same host and environment."""
    # Imported here: the shell imports this package.
    from ..shell import Shell

    text = invocation.args.lstrip()
    while text[:1] == "/" and text[1:2].lower() not in ("c", "k"):
        text = text.partition(" ")[2].lstrip()
    if text[:2].lower() in ("/c", "/k"):
        text = text[2:].lstrip()
        if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
            text = text[1:-1]  # cmd /c "..." strips the outer quotes (cmd /? rule 1)
    else:
        text = ""
    environment = dict(invocation.env.items())
    # The same remote calls: a server this command line holds open is the same state.
    shell = Shell(invocation.host, environment, remote=invocation.remote, launch=invocation.launch)
    shell.cwd = invocation.cwd
    result = shell.run(text)
    output.chunks.extend(shell.console.chunks)
    return result.exit_code


TOOLS = (
    Tool(("ver",), ver),
    Tool(("date",), date),
    Tool(("time",), time),
    Tool(("del", "erase"), delete),
    Tool(("hostname",), hostname, file_name="hostname.exe"),
    Tool(("cmd",), cmd, file_name="cmd.exe"),
)
