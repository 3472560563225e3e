# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`type FILE`: a file's bytes, unchanged (the Exchange Server Setup.log is read this way)."""

from __future__ import annotations

from ...state import leaf_name, parent_path
from ..cmdline import split_arguments
from ..formats import CRLF
from . import Invocation, Output, Tool, syntax_error


def type_file(invocation: Invocation, output: Output) -> int:
    names = split_arguments(invocation.args)
    if not names:
        return syntax_error(output)
    fs = invocation.host.fs
    code = 0
    several = len(names) > 1 or any("*" in name or "?" in name for name in names)
    for name in names:
        path = invocation.path_or_error(name, output)
        if path is None:
            code = 1
            continue
        matches = invocation.expand_wildcards(name)
        if fs.is_dir(path):
            # [I] docs/windows-output.md#tool-messages (Win32 error 5's text).
            output.err(f"Access is denied.{CRLF}")
            code = 1
            continue
        if not matches:
            message = (
                "The system cannot find the file specified."
                if fs.is_dir(parent_path(path))
                else "The system cannot find the path specified."
            )
            if several and ("*" in name or "?" in name):
                message = "The system cannot find the file specified."
            output.err(message + CRLF)
            code = 1
            continue
        for match in matches:
            entry = fs.file_entry(match)
            assert entry is not None
            if several:
                # With several files, TYPE names each one on stderr first [lab: no source cited].
                output.err(f"{CRLF}{leaf_name(entry.path)}{CRLF}{CRLF}{CRLF}")
            output.out(entry.content().decode("latin-1"))
    return code


TOOLS = (Tool(("type",), type_file),)
