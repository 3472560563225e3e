# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`type FILE`: a file's bytes, unchanged (the Exchange Server Setup.log is read this way).

`type \\\\NAME\\C$\\path` on a jump host reads NAME's file through its admin share (the remote-call
layer, exchlab.windows.remote); a refusal prints its system message on stderr, exit code 1 [lab:
the exit code].
"""

from __future__ import annotations

from ...state import HostState, leaf_name, parent_path
from ..cmdline import split_arguments
from ..formats import CRLF, SYSTEM_MESSAGES
from ..remote import SHARE, Refusal, path_error_code, share_path, split_unc
from . import Invocation, Output, Tool, syntax_error


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
    unc = split_unc(name)
    remote = invocation.remote
    if unc is None or remote is None:
        return _type_here(invocation, output, name, several)
    server, share, inner = unc

    def reading(host: HostState) -> int:
        return _type_here(
            invocation.on(host), output, share_path(host, share, inner) or "", several
        )

    outcome = remote.call(server, SHARE, reading, share=share)
    if isinstance(outcome, Refusal):
        output.err(SYSTEM_MESSAGES[path_error_code(outcome)] + CRLF)
        return 1
    return outcome


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
