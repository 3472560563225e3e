# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`md` / `mkdir`: create folders, missing parents included (command extensions are on).

`md \\\\NAME\\C$\\path` on a jump host creates NAME's folder through its admin share (the
remote-call layer, exchlab.windows.remote); a refusal prints its system message on stderr, exit
code 1, as dir does [lab: the exit code].
"""

from __future__ import annotations

from ...state import parent_path
from ..cmdline import split_arguments
from ..formats import CRLF
from ..remote import Refusal
from . import Invocation, Located, Output, Tool, refusal_message, syntax_error


def mkdir(invocation: Invocation, output: Output) -> int:
    names = split_arguments(invocation.args)
    if not names:
        return syntax_error(output)
    code = 0
    for name in names:
        with invocation.located(name) as located:
            if isinstance(located, Refusal):
                # As for a path the file system refuses, with the remote layer's error [lab].
                output.err(refusal_message(located) + CRLF)
                code = 1
                continue
            code = max(code, _make(located, output, name))
    return code


def _make(located: Located, output: Output, name: str) -> int:
    host = located.host
    fs = host.fs
    path = located.invocation.path_or_error(located.text, output)
    if path is None:
        return 1
    if fs.exists(path):
        # [lab] wording: no source cited.
        output.err(f"A subdirectory or file {name} already exists.{CRLF}")
        return 1
    if host.drive_of(path) is None:
        output.err(f"The system cannot find the path specified.{CRLF}")
        return 1
    blocking = parent_path(path)
    while blocking != parent_path(blocking) and not fs.is_dir(blocking):
        if fs.is_file(blocking):
            output.err(f"The system cannot find the path specified.{CRLF}")
            return 1
        blocking = parent_path(blocking)
    host.make_dirs(path)
    return 0


TOOLS = (Tool(("md", "mkdir"), mkdir),)
