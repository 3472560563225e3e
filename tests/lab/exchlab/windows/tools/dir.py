# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`dir [/-c] [/b] [/s] [path]`: folder listings in the layout of docs/windows-output.md section 6.

Entries come in NTFS order (folders and files together, case-insensitive by name) after `.` and
`..`; sizes and totals are grouped with commas unless `/-c` (E14 is `dir /-c`). Never a source of
versions (section 6): it shows names, sizes and times only.

`dir \\\\NAME\\C$\\path` on a jump host lists NAME's folder through its admin share (the
remote-call layer, exchlab.windows.remote) in the jump host's layout and locale: the volume line
names the share as typed (` Volume in drive \\\\HOST\\c$ is LABEL`) and so does the
` Directory of` line, as published captures show. A refusal prints its system message on stderr,
exit code 1 (53, 5, 67, 1326 as quoted from captures; the exit code is [lab]).

[lab], no source cited: `Invalid switch - "x".`, the `/b` and `/s` layouts beyond section 6's
totals lines, and which of "File Not Found" / the path message goes to stderr when.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...state import (
    DirEntry,
    FileEntry,
    FileSystem,
    leaf_name,
    parent_path,
    parse_time,
)
from ..cmdline import split_arguments
from ..formats import (
    CRLF,
    dir_dir_total,
    dir_entry_line,
    dir_file_total,
    dir_header,
)
from ..remote import Refusal
from . import Invocation, Located, Output, Tool, refusal_message, wildcard_match


@dataclass(frozen=True)
class _Options:
    grouped: bool = True
    bare: bool = False
    recursive: bool = False


def run_dir(invocation: Invocation, output: Output) -> int:
    grouped, bare, recursive = True, False, False
    targets: list[str] = []
    for arg in split_arguments(invocation.args):
        if arg.startswith("/"):
            for switch in arg[1:].lower().split("/"):
                if switch == "-c":
                    grouped = False
                elif switch == "c":
                    grouped = True
                elif switch == "b":
                    bare = True
                elif switch == "s":
                    recursive = True
                elif switch.startswith(("a", "o", "t", "q", "n", "x", "w", "d", "l", "-")):
                    continue  # accepted, not modelled
                else:
                    output.err(f'Invalid switch - "{switch}".{CRLF}')
                    return 1
        else:
            targets.append(arg)
    options = _Options(grouped, bare, recursive)
    code = 0
    for target in targets or ["."]:
        code = max(code, _list(invocation, output, target, options))
    return code


def _list(invocation: Invocation, output: Output, target: str, options: _Options) -> int:
    with invocation.located(target) as located:
        if isinstance(located, Refusal):
            output.err(refusal_message(located) + CRLF)
            return 1
        return _list_here(located, output, options)


def _list_here(located: Located, output: Output, options: _Options) -> int:
    host = located.host
    fs = host.fs
    path = located.invocation.path_or_error(located.text, output)
    if path is None:
        return 1
    drive = host.drive_of(path)
    if drive is None:
        output.err(f"The system cannot find the path specified.{CRLF}")
        return 1
    if fs.is_dir(path):
        folder, mask = path, "*"
    else:
        folder, mask = parent_path(path), leaf_name(path)
    volume = located.shared.unc_root if located.shared else drive.letter[0]
    header = dir_header(volume, drive.label, drive.serial) + CRLF
    if not fs.is_dir(folder):
        if not options.bare:
            output.out(header)
        output.err(f"The system cannot find the path specified.{CRLF}")
        return 1
    folders = [folder, *(_subfolders(fs, folder) if options.recursive else [])]
    listings = [(each, _matching(fs, each, mask)) for each in folders]
    found = any(entries for _folder, entries in listings)
    if options.bare:
        for each, entries in listings:
            for entry in entries:
                if isinstance(entry, DirEntry) and entry.name in (".", ".."):
                    continue
                name = located.shown(entry.path) if options.recursive else entry.name
                output.out(name + CRLF)
        if not found:
            output.err(f"File Not Found{CRLF}")
            return 1
        return 0
    output.out(header)
    if not found:
        if not options.recursive:
            output.out(f" Directory of {located.shown(folder)}{CRLF}{CRLF}")
        output.err(f"File Not Found{CRLF}")
        return 1
    total_files = total_bytes = total_dirs = 0
    for each, entries in listings:
        if not entries:
            continue
        output.out(f" Directory of {located.shown(each)}{CRLF}{CRLF}")
        files = dirs = size = 0
        for entry in entries:
            moment = parse_time(entry.mtime)
            if isinstance(entry, FileEntry):
                files += 1
                size += entry.size
                output.out(dir_entry_line(moment, entry.name, entry.size, options.grouped))
            else:
                dirs += 1
                output.out(dir_entry_line(moment, entry.name, None, options.grouped))
        total_files, total_bytes, total_dirs = (
            total_files + files,
            total_bytes + size,
            total_dirs + dirs,
        )
        output.out(dir_file_total(files, size, options.grouped))
        if options.recursive:
            output.out(CRLF)
    if options.recursive:
        output.out(f"     Total Files Listed:{CRLF}")
        output.out(dir_file_total(total_files, total_bytes, options.grouped))
    output.out(dir_dir_total(total_dirs, host.free_bytes(folder), options.grouped))
    return 0


def _matching(fs: FileSystem, folder: str, mask: str) -> list[DirEntry | FileEntry]:
    dirs, files = fs.children(folder)
    entries: list[DirEntry | FileEntry] = []
    own = fs.dir_entry(folder)
    if len(folder) > 3 and own is not None:
        parent = fs.dir_entry(parent_path(folder)) or own
        for name, source in ((".", own), ("..", parent)):
            if wildcard_match(mask, name):
                entries.append(DirEntry(name, source.mtime))
    merged: list[DirEntry | FileEntry] = [*dirs, *files]
    merged.sort(key=lambda entry: entry.name.upper())
    entries.extend(entry for entry in merged if wildcard_match(mask, entry.name))
    return entries


def _subfolders(fs: FileSystem, folder: str) -> list[str]:
    dirs, _files = fs.children(folder)
    found: list[str] = []
    for sub in dirs:
        found.append(sub.path)
        found.extend(_subfolders(fs, sub.path))
    return found


TOOLS = (Tool(("dir",), run_dir),)
