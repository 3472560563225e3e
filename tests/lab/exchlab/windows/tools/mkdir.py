# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`md` / `mkdir`: create folders, missing parents included (command extensions are on)."""

from __future__ import annotations

from ...state import parent_path
from ..cmdline import split_arguments
from ..formats import CRLF
from . import Invocation, Output, Tool, syntax_error


def mkdir(invocation: Invocation, output: Output) -> int:
    names = split_arguments(invocation.args)
    if not names:
        return syntax_error(output)
    fs = invocation.host.fs
    code = 0
    for name in names:
        path = invocation.path_or_error(name, output)
        if path is None:
            code = 1
            continue
        if fs.exists(path):
            # [lab] wording: no source cited.
            output.err(f"A subdirectory or file {name} already exists.{CRLF}")
            code = 1
            continue
        if invocation.host.drive_of(path) is None:
            output.err(f"The system cannot find the path specified.{CRLF}")
            code = 1
            continue
        blocking = parent_path(path)
        while blocking != parent_path(blocking) and not fs.is_dir(blocking):
            if fs.is_file(blocking):
                output.err(f"The system cannot find the path specified.{CRLF}")
                code = 1
                break
            blocking = parent_path(blocking)
        else:
            invocation.host.make_dirs(path)
    return code


TOOLS = (Tool(("md", "mkdir"), mkdir),)
