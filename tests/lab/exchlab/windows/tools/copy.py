# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`copy`, xcopy.exe and robocopy.exe, as far as backing up a KM database folder needs them.

KB Q190713: back up Kmsdata by copying the whole folder with KMS stopped, then verify the copy.
All three copy file by file in NTFS order. A file that does not fit fails with ERROR_DISK_FULL
and leaves no partial destination file (CopyFile deletes it); the source is never touched.

On a jump host either path may be `\\\\NAME\\C$\\path` on a legacy server (the remote-call
layer, exchlab.windows.remote; `Invocation.located`): within one server, between a server and the
jump host's disk, or between two servers, the bytes stream through the jump host and the
destination host's rules (its free space, its disk-full fault) apply. Paths on a server are
printed under the share as typed. A refusal prints the system message of its Win32 error (53, 67,
5, 1326; no SMB1 client is 53, `path_error_code`) as each tool prints a path its file system
refuses: copy on stderr with "0 file(s) copied.", exit 1; xcopy on stderr, exit 4; robocopy an
"ERROR n (0x...) Accessing Source Directory" / "Creating Destination Directory" line, exit 16,
as for a missing source [lab: which words each tool prints for a network error]. Nothing is
written on either host then.

Disk-full texts: `copy` prints the system message "There is not enough space on the disk.";
xcopy prints its own "Insufficient disk space" (XCOPY_ERROR_DISK_FULL in the Windows utilities
message table) and exits 4 (KB Q120829: "4 ... There is not enough memory or disk space");
robocopy prints "ERROR 112 (0x00000070) Copying File ..." and the system message, goes on with
the next file (/R:0 = no retries), and exits with bit 8 set (failures).

[lab], no source cited: copy's "The file cannot be copied onto itself." and its overwrite prompt;
xcopy's other messages ("File not found - X", "Invalid number of parameters", "Invalid switch -
X", "Unable to create directory - X", "File creation error - ...", the overwrite prompt) and the
exit code it gives each (4 or 5; KB Q120829 names the codes, not which message goes with which).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...state import (
    ERROR_DISK_FULL,
    FileEntry,
    FileSystem,
    FileSystemError,
    HostState,
    leaf_name,
    normalize_path,
    parent_path,
)
from ..cmdline import split_arguments
from ..formats import CRLF, SYSTEM_MESSAGES
from ..remote import Refusal, path_error_code
from . import (
    Invocation,
    Located,
    Output,
    Tool,
    located_pair,
    refusal_message,
    syntax_error,
    wildcard_match,
)


def _copy_file(host: HostState, source: FileEntry, destination: str) -> FileSystemError | None:
    try:
        host.copy_file(source, destination)
    except FileSystemError as exc:
        return exc
    return None


def _answer(invocation: Invocation) -> str:
    """The first answer character waiting on stdin ("" when there is none, as with < NUL)."""
    return invocation.stdin.strip()[:1].lower()


def _same_file(source: Located, destination: Located, source_path: str, target: str) -> bool:
    return source.host is destination.host and source_path.upper() == target.upper()


# ---------------------------------------------------------------------------------------------
# copy (cmd.exe internal)


def copy(invocation: Invocation, output: Output) -> int:
    """`copy [/y] SRC [DST]`; "%9d file(s) copied." closes every run."""
    overwrite = False
    names: list[str] = []
    for arg in split_arguments(invocation.args):
        lowered = arg.lower()
        if lowered in ("/y",):
            overwrite = True
        elif lowered in ("/-y", "/b", "/a", "/v", "/d", "/n", "/z", "/l"):
            continue
        else:
            names.append(arg)
    if not names or len(names) > 2:
        return syntax_error(output)
    with located_pair(invocation, names[0], names[1] if len(names) == 2 else None) as pair:
        source_at, destination_at = pair
        for refused in (source_at, destination_at):
            if isinstance(refused, Refusal):
                # As for a path the file system refuses, with the remote layer's error [lab].
                output.err(refusal_message(refused) + CRLF)
                output.out(f"{0:>9} file(s) copied.{CRLF}")
                return 1
        assert isinstance(source_at, Located) and isinstance(destination_at, Located)
        return _copy(invocation, output, source_at, destination_at, overwrite)


def _copy(
    invocation: Invocation,
    output: Output,
    source_at: Located,
    destination_at: Located,
    overwrite: bool,
) -> int:
    fs, target_fs = source_at.host.fs, destination_at.host.fs
    try:
        source_path = source_at.path()
        sources = (
            fs.children(source_path)[1]
            if fs.is_dir(source_path)
            else [
                fs.file_entry(path)
                for path in source_at.invocation.expand_wildcards(source_at.text)
            ]
        )
        destination = destination_at.path()
    except FileSystemError as exc:
        output.err(exc.message + CRLF)
        output.out(f"{0:>9} file(s) copied.{CRLF}")
        return 1
    files = [entry for entry in sources if entry is not None]
    if not files:
        output.err(f"The system cannot find the file specified.{CRLF}")
        output.out(f"{0:>9} file(s) copied.{CRLF}")
        return 1
    several = len(files) > 1 or fs.is_dir(source_path)
    copied, code = 0, 0
    for entry in files:
        target = (
            normalize_path(destination + "\\" + entry.name)
            if target_fs.is_dir(destination)
            else destination
        )
        if several:
            output.out(source_at.shown(entry.path) + CRLF)
        if _same_file(source_at, destination_at, entry.path, target):
            output.err(f"The file cannot be copied onto itself.{CRLF}")
            code = 1
            continue
        if target_fs.is_file(target) and not overwrite:
            output.out(f"Overwrite {destination_at.shown(target)}? (Yes/No/All): ")
            if _answer(invocation) not in ("y", "a"):
                output.out(CRLF)
                continue
            output.out(_answer(invocation) + CRLF)
        error = _copy_file(destination_at.host, entry, target)
        if error is not None:
            output.err(error.message + CRLF)
            code = 1
            break
        copied += 1
    output.out(f"{copied:>9} file(s) copied.{CRLF}")
    return code


# ---------------------------------------------------------------------------------------------
# xcopy.exe


@dataclass
class _XcopyOptions:
    subdirs: bool = False
    empty_dirs: bool = False
    assume_dir: bool = False
    overwrite: bool = False
    quiet: bool = False
    full_names: bool = False
    list_only: bool = False
    keep_going: bool = False


_XCOPY_SWITCHES = {
    "/s": "subdirs",
    "/e": "empty_dirs",
    "/i": "assume_dir",
    "/y": "overwrite",
    "/q": "quiet",
    "/f": "full_names",
    "/l": "list_only",
    "/c": "keep_going",
}
# Accepted and not modelled: attributes, ACLs, hidden files, restartable mode, verify ...
_XCOPY_IGNORED = {
    "/h",
    "/k",
    "/r",
    "/o",
    "/x",
    "/v",
    "/z",
    "/j",
    "/g",
    "/n",
    "/b",
    "/-y",
    "/a",
    "/m",
}


def xcopy(invocation: Invocation, output: Output) -> int:
    options = _XcopyOptions()
    names: list[str] = []
    for arg in split_arguments(invocation.args):
        lowered = arg.lower()
        if lowered in _XCOPY_SWITCHES:
            setattr(options, _XCOPY_SWITCHES[lowered], True)
        elif (
            lowered in _XCOPY_IGNORED or lowered.startswith("/d") or lowered.startswith("/exclude:")
        ):
            continue
        elif arg.startswith("/"):
            output.err(f"Invalid switch - {arg}{CRLF}")
            return 4
        else:
            names.append(arg)
    if options.empty_dirs:
        options.subdirs = True
    if not names or len(names) > 2:
        output.err(f"Invalid number of parameters{CRLF}")
        return 4
    with located_pair(invocation, names[0], names[1] if len(names) == 2 else None) as pair:
        source_at, destination_at = pair
        for refused in (source_at, destination_at):
            if isinstance(refused, Refusal):
                # As for a path the file system refuses, with the remote layer's error [lab].
                output.err(refusal_message(refused) + CRLF)
                return 4
        assert isinstance(source_at, Located) and isinstance(destination_at, Located)
        return _xcopy(invocation, output, names, options, source_at, destination_at)


def _xcopy(
    invocation: Invocation,
    output: Output,
    names: list[str],
    options: _XcopyOptions,
    source_at: Located,
    destination_at: Located,
) -> int:
    fs = source_at.host.fs
    host, target_fs = destination_at.host, destination_at.host.fs
    try:
        source = source_at.path()
        destination = destination_at.path()
    except FileSystemError as exc:
        output.err(exc.message + CRLF)
        return 4
    shown_source = names[0].strip('"').rstrip("\\")
    # (file, path relative to the source folder) in NTFS order; folders to create for /E.
    if fs.is_dir(source):
        folder, mask = source, "*"
    else:
        folder, mask = parent_path(source), leaf_name(source)
        shown_source = shown_source.rsplit("\\", 1)[0] if "\\" in shown_source else ""
    if not fs.is_dir(folder):
        output.err(f"File not found - {leaf_name(source)}{CRLF}")
        output.out(f"0 File(s) copied{CRLF}")
        return 4
    plan, folders = _xcopy_plan(fs, folder, mask, options)
    if not plan and not fs.is_dir(source):
        output.err(f"File not found - {mask if mask != '*' else leaf_name(source)}{CRLF}")
        output.out(f"0 File(s) copied{CRLF}")
        return 4
    several = fs.is_dir(source) or "*" in mask or "?" in mask
    # /I answers "directory" only when several files are copied; otherwise xcopy asks.
    into_folder = target_fs.is_dir(destination) or (several and options.assume_dir)
    if not into_folder and not target_fs.is_file(destination):
        output.out(
            f"Does {names[1] if len(names) == 2 else destination} specify a file name{CRLF}"
            f"or directory name on the target{CRLF}(F = file, D = directory)? "
        )
        answer = _answer(invocation)
        if answer not in ("d", "f"):
            return 4
        output.out(answer.upper() + CRLF)
        into_folder = answer == "d"
    copied = 0
    code = 0
    if not options.list_only:
        try:
            if into_folder:
                host.make_dirs(destination)
            for relative in folders:
                host.make_dirs(normalize_path(destination + "\\" + relative))
        except FileSystemError as exc:
            failed = exc.path or destination
            shown = destination_at.shown(failed) if destination_at.shared else failed
            output.err(f"Unable to create directory - {shown}{CRLF}")
            output.out(f"0 File(s) copied{CRLF}")
            return 4
    for entry, relative in plan:
        target = normalize_path(destination + "\\" + relative) if into_folder else destination
        shown = (shown_source + "\\" if shown_source else "") + relative
        if options.full_names:
            output.out(f"{shown} -> {destination_at.shown(target)}{CRLF}")
        elif not options.quiet:
            output.out(shown + CRLF)
        if options.list_only:
            copied += 1
            continue
        if target_fs.is_file(target) and not options.overwrite:
            output.out(f"Overwrite {destination_at.shown(target)} (Yes/No/All)? ")
            if _answer(invocation) not in ("y", "a"):
                output.out(CRLF)
                continue
            output.out(_answer(invocation).upper() + CRLF)
        try:
            host.make_dirs(parent_path(target))
        except FileSystemError:
            pass
        error = _copy_file(host, entry, target)
        if error is None:
            copied += 1
            continue
        code = 4 if error.winerror == ERROR_DISK_FULL else 5
        output.err(
            f"Insufficient disk space{CRLF}"
            if error.winerror == ERROR_DISK_FULL
            else f"File creation error - {error.message}{CRLF}"
        )
        if not options.keep_going:
            break
    output.out(f"{copied} File(s) {'copied' if not options.list_only else ''}".rstrip() + CRLF)
    return code


def _xcopy_plan(
    fs: FileSystem, folder: str, mask: str, options: _XcopyOptions
) -> tuple[list[tuple[FileEntry, str]], list[str]]:
    """Files to copy (with their path relative to `folder`) and, for /E, folders to create."""
    plan: list[tuple[FileEntry, str]] = []
    folders: list[str] = []

    def walk(current: str, prefix: str) -> None:
        dirs, files = fs.children(current)
        for entry in files:
            if wildcard_match(mask, entry.name):
                plan.append((entry, prefix + entry.name))
        if options.subdirs:
            for sub in dirs:
                if options.empty_dirs:
                    folders.append(prefix + sub.name)
                walk(sub.path, prefix + sub.name + "\\")

    walk(folder, "")
    return plan, folders


# ---------------------------------------------------------------------------------------------
# robocopy.exe (Vista and later)

_ROBOCOPY_LINE = "-" * 79
_ROBOCOPY_RULE = "-" * 78


def robocopy(invocation: Invocation, output: Output) -> int:
    """robocopy SRC DST [files] [/E] [/S] [/COPY:DAT] [/R:n] [/W:n] [/NJH] [/NJS] [/NFL] [/NDL]
    [/NP]. Exit code bits: 1 files copied, 2 extra files, 4 mismatches, 8 failures, 16 fatal.

    The job header and summary follow the Vista+ layout as far as it is known; the lab does
    not claim byte-exactness for them (no published capture) [lab]. Use /NJH /NJS for
    output a parser can rely on.
    """
    args = split_arguments(invocation.args)
    positional = [arg for arg in args if not arg.startswith("/")]
    switches = [arg.upper() for arg in args if arg.startswith("/")]
    if len(positional) < 2:
        output.out(f'{CRLF}ERROR : Invalid Parameter #1 : "{invocation.args.strip()}"{CRLF}')
        return 16
    with located_pair(invocation, positional[0], positional[1]) as pair:
        return _robocopy(invocation, output, positional, switches, *pair)


def _robocopy_shown(located: Located | Refusal | None, path: str, typed: str) -> str:
    if isinstance(located, Located):
        return located.shown(path).rstrip("\\") + "\\"
    return typed.strip('"').rstrip("\\") + "\\"


def _robocopy_refused(refusal: Refusal, doing: str, typed: str, stamp: str) -> str:
    """The line robocopy prints for a folder it cannot reach, as for one it cannot read or
    create here, with the remote layer's error [lab]."""
    code = path_error_code(refusal)
    shown = typed.strip('"').rstrip("\\") + "\\"
    return f"{stamp} ERROR {code} (0x{code:08X}) {doing} {shown}{CRLF}{SYSTEM_MESSAGES[code]}{CRLF}"


def _robocopy(
    invocation: Invocation,
    output: Output,
    positional: list[str],
    switches: list[str],
    source_at: Located | Refusal,
    destination_at: Located | Refusal | None,
) -> int:
    stamp = invocation.host.now().strftime("%Y/%m/%d %H:%M:%S")
    started = invocation.host.now().strftime("%A, %B %d, %Y %I:%M:%S %p").replace(" 0", " ")
    try:
        source = source_at.path() if isinstance(source_at, Located) else ""
        destination = destination_at.path() if isinstance(destination_at, Located) else ""
    except FileSystemError as exc:
        output.out(f"{CRLF}ERROR : {exc.message}{CRLF}")
        return 16
    masks = positional[2:] or ["*.*"]
    recurse = "/E" in switches or "/S" in switches or "/MIR" in switches
    keep_empty = "/E" in switches or "/MIR" in switches
    show_header = "/NJH" not in switches
    show_summary = "/NJS" not in switches
    show_files = "/NFL" not in switches
    show_dirs = "/NDL" not in switches
    source_shown = _robocopy_shown(source_at, source, positional[0])
    destination_shown = _robocopy_shown(destination_at, destination, positional[1])
    if show_header:
        output.out(
            f"{CRLF}{_ROBOCOPY_LINE}{CRLF}"
            f"   ROBOCOPY     ::     Robust File Copy for Windows{' ' * 30}{CRLF}"
            f"{_ROBOCOPY_LINE}{CRLF}{CRLF}"
            f"  Started : {started}{CRLF}"
            f"   Source : {source_shown}{CRLF}"
            f"     Dest : {destination_shown}{CRLF}{CRLF}"
            f"    Files : {' '.join(masks)}{CRLF}\t    {CRLF}"
            f"  Options : {' '.join(masks)} {' '.join(switches)} {CRLF}{CRLF}"
            f"{_ROBOCOPY_RULE}{CRLF}{CRLF}"
        )
    if isinstance(source_at, Refusal):
        output.out(_robocopy_refused(source_at, "Accessing Source Directory", positional[0], stamp))
        return 16
    if isinstance(destination_at, Refusal):
        doing = "Creating Destination Directory"
        output.out(_robocopy_refused(destination_at, doing, positional[1], stamp))
        return 16
    assert destination_at is not None  # None only beside a refused source
    fs = source_at.host.fs
    host, target_fs = destination_at.host, destination_at.host.fs
    if not fs.is_dir(source):
        output.out(
            f"{stamp} ERROR 2 (0x00000002) Accessing Source Directory {source_shown}{CRLF}"
            f"{SYSTEM_MESSAGES[2]}{CRLF}"
        )
        return 16
    folders = [source]
    if recurse:
        pending = [source]
        while pending:
            current = pending.pop(0)
            subdirs, _files = fs.children(current)
            for sub in subdirs:
                folders.append(sub.path)
                pending.append(sub.path)
    counts = {"dirs": 0, "dirs_copied": 0, "files": 0, "copied": 0, "failed": 0, "bytes": 0}
    copied_bytes = 0
    for folder in folders:
        relative = folder[len(source) :].lstrip("\\")
        target_folder = normalize_path(destination + ("\\" + relative if relative else ""))
        _dirs, files = fs.children(folder)
        chosen = [entry for entry in files if any(wildcard_match(m, entry.name) for m in masks)]
        if folder != source and not chosen and not keep_empty:
            continue
        counts["dirs"] += 1
        new_folder = not target_fs.is_dir(target_folder)
        if show_dirs:
            label = "New Dir" if new_folder else ""
            shown = source_at.shown(folder).rstrip("\\")
            output.out(f"\t{label:>9}  {len(chosen):>8}\t{shown}\\{CRLF}")
        try:
            host.make_dirs(target_folder)
        except FileSystemError as exc:
            output.out(
                f"{stamp} ERROR {exc.winerror} (0x{exc.winerror:08X}) Creating Destination "
                f"Directory {destination_at.shown(target_folder)}\\{CRLF}{exc.message}{CRLF}"
            )
            return 16
        if new_folder:
            counts["dirs_copied"] += 1
        for entry in chosen:
            counts["files"] += 1
            counts["bytes"] += entry.size
            target = normalize_path(target_folder + "\\" + entry.name)
            existing = target_fs.file_entry(target)
            if existing and existing.size == entry.size and existing.mtime == entry.mtime:
                continue  # robocopy skips files that look the same (size and time)
            if show_files:
                output.out(f"\t    New File  \t\t{entry.size:>8}\t{entry.name}{CRLF}")
            error = _copy_file(host, entry, target)
            if error is None:
                counts["copied"] += 1
                copied_bytes += entry.size
                continue
            counts["failed"] += 1
            output.out(
                f"{stamp} ERROR {error.winerror} (0x{error.winerror:08X}) Copying File "
                f"{source_at.shown(entry.path)}{CRLF}{error.message}{CRLF}{CRLF}"
            )
    if show_summary:
        skipped_files = counts["files"] - counts["copied"] - counts["failed"]
        output.out(
            f"{CRLF}{_ROBOCOPY_RULE}{CRLF}{CRLF}"
            f"               Total    Copied   Skipped  Mismatch    FAILED    Extras{CRLF}"
            f"    Dirs : {counts['dirs']:>9} {counts['dirs_copied']:>9} "
            f"{counts['dirs'] - counts['dirs_copied']:>9} {0:>9} {0:>9} {0:>9}{CRLF}"
            f"   Files : {counts['files']:>9} {counts['copied']:>9} {skipped_files:>9} "
            f"{0:>9} {counts['failed']:>9} {0:>9}{CRLF}"
            f"   Bytes : {counts['bytes']:>9} {copied_bytes:>9} "
            f"{counts['bytes'] - copied_bytes:>9} {0:>9} {0:>9} {0:>9}{CRLF}"
            f"   Ended : {started}{CRLF}{CRLF}"
        )
    code = 1 if counts["copied"] else 0
    if counts["failed"]:
        code |= 8
    return code


TOOLS = (
    Tool(("copy",), copy),
    Tool(("xcopy",), xcopy, file_name="xcopy.exe"),
    Tool(("robocopy",), robocopy, file_name="robocopy.exe"),
)
