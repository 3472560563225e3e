# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`type FILE`: a file's bytes, unchanged (the Exchange Server Setup.log is read this way).

`type \\\\NAME\\C$\\path` on a jump host reads NAME's file through its admin share (the remote-call
layer, exchlab.windows.remote); a refusal prints its system message on stderr, exit code 1 [lab:
the exit code].
"""

from __future__ import annotations

from ...state import leaf_name, parent_path
from ..cmdline import split_arguments
from ..formats import CRLF
from ..remote import Refusal
from . import Invocation, Output, Tool, refusal_message, syntax_error


def type_file(invocation: Invocation, output: Output) -> int:
    names = split_arguments(invocation.args)
    if not names:
        return syntax_error(output)
    code = 0
    several = len(names) > 1 or any("*" in name or "?" in name for name in names)
    for name in names:
        code = max(code, _type_one(invocation, output, name, several))
    return code


def _type_one(invocation: Invocation, output: Output, name: str, several: bool) -> int:
    with invocation.located(name) as located:
        if isinstance(located, Refusal):
            output.err(refusal_message(located) + CRLF)
            return 1
        return _type_here(located.invocation, output, located.text, several)


def _type_here(invocation: Invocation, output: Output, name: str, several: bool) -> int:
    fs = invocation.host.fs
    path = invocation.path_or_error(name, output)
    if path is None:
        return 1
    matches = invocation.expand_wildcards(name)
    if fs.is_dir(path):
        # [I] docs/windows-output.md#tool-messages (Win32 error 5's text).
        output.err(f"Access is denied.{CRLF}")
        return 1
    if not matches:
        message = (
            "The system cannot find the file specified."
            if fs.is_dir(parent_path(path))
            else "The system cannot find the path specified."
        )
        if several and ("*" in name or "?" in name):
            message = "The system cannot find the file specified."
        output.err(message + CRLF)
        return 1
    for match in matches:
        entry = fs.file_entry(match)
        assert entry is not None
        if several:
            # With several files, TYPE names each one on stderr first [lab: no source cited].
            output.err(f"{CRLF}{leaf_name(entry.path)}{CRLF}{CRLF}{CRLF}")
        output.out(entry.content().decode("latin-1"))
    return 0


TOOLS = (Tool(("type",), type_file),)
