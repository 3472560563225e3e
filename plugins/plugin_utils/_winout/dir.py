# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse `dir` output (§6): one folder, `dir /-c PATH` (`parse_dir` -> `DirListing`); a tree,
`dir /-c /s [/a] PATH` (`parse_dir_tree` -> `DirTree`); and dir's own messages given back to
stderr from a `2>&1`-merged answer (`split_merged_dir_streams`).

A missing file or path ("File Not Found", "The system cannot find the path specified.") is the
answer `found=False`. Every File(s) and Dir(s) line is checked against the entries it sums up, and
sizes with digit grouping are refused (run dir with /-c). Any other stderr text ("Access is
denied." for an unreadable subfolder) raises `CommandFailed`; cmd's "is not recognized"
`ToolMissing`; a line that is not dir's `ParseError`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from ._base import (
    _STDERR_LINES,
    _command_failed,
    _Line,
    _lines,
    _nonblank,
    _parse_error,
    _raise_if_missing,
)

_DIR_NOT_FOUND = (
    "File Not Found",
    "The system cannot find the file specified.",
    "The system cannot find the path specified.",
)
_DIR_VOLUME = re.compile(r"^ Volume in drive (?P<drive>.+?) (?:is (?P<label>.*)|has no label\.)$")
_DIR_SERIAL = re.compile(r"^ Volume Serial Number is (?P<serial>[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4})\s*$")
_DIR_OF = re.compile(r"^ Directory of (?P<path>.+?)\s*$")
# Dates and times follow the locale (dd/mm/yyyy, mm/dd/yyyy, dd.mm.yyyy, yyyy-mm-dd; 24-hour,
# "09:12 AM"); they are kept as text, never interpreted.
_DIR_DATE = r"[0-9]{1,4}[/.-][0-9]{1,2}[/.-][0-9]{1,4}"
_DIR_TIME = r"[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?(?: ?[AaPp][Mm])?"
_DIR_ENTRY = re.compile(
    rf"^(?P<date>{_DIR_DATE}) +(?P<time>{_DIR_TIME}) +"
    r"(?:<DIR> +(?P<dirname>\S.*)|(?P<size>[0-9]+) (?P<filename>.+))$"
)
_DIR_GROUPED = re.compile(rf"^{_DIR_DATE} +{_DIR_TIME} +[0-9]{{1,3}}[,.' \u00a0][0-9]{{3}}")
_DIR_FILES = re.compile(r"^\s+(?P<count>[0-9]+) File\(s\)\s+(?P<bytes>[0-9]+) bytes\s*$")
_DIR_DIRS = re.compile(r"^\s+(?P<count>[0-9]+) Dir\(s\)\s+(?P<free>[0-9]+) bytes free\s*$")


class DirEntry(NamedTuple):
    """One line of a listing: `size` is None for a directory; date and time are the locale's
    text, never interpreted."""

    name: str
    size: int | None
    is_dir: bool
    date: str
    time: str


@dataclass(frozen=True)
class DirListing:
    """`dir /-c PATH` (§6, E14). `found` is False for "File Not Found" / "The system cannot find
    the path specified." (then there are no entries and no totals)."""

    found: bool
    directory: str | None
    entries: tuple[DirEntry, ...] = ()
    file_count: int = 0
    total_bytes: int = 0
    dir_count: int = 0
    free_bytes: int | None = None
    volume_label: str | None = None
    serial_number: str | None = None

    @property
    def files(self) -> tuple[DirEntry, ...]:
        return tuple(entry for entry in self.entries if not entry.is_dir)

    def entry(self, name: str) -> DirEntry | None:
        """The entry called `name`, compared case-insensitively (as NTFS and FAT do)."""
        wanted = name.casefold()
        for entry in self.entries:
            if entry.name.casefold() == wanted:
                return entry
        return None


class _DirHead(NamedTuple):
    label: str | None
    serial: str | None
    directory: str | None


def parse_dir(stdout: str, stderr: str, exit_code: int, section: str = "dir") -> DirListing:
    """Parse `dir /-c PATH` (§6, E14): entries, the File(s) and Dir(s) totals (checked against
    the entries) and the free bytes. Sizes with digit grouping are refused (use /-c). A missing
    file or path is the answer `found=False`; other stderr text raises `CommandFailed`."""
    _raise_if_missing(section, stderr, exit_code)
    errors = _nonblank(stderr, "stderr")
    missing = [line for line in errors if line.text.strip() in _DIR_NOT_FOUND]
    other = [line for line in errors if line.text.strip() not in _DIR_NOT_FOUND]
    if other:
        raise _command_failed(section, exit_code, other)
    head = _DirHead(None, None, None)
    entries: list[DirEntry] = []
    files = dirs = None
    files_line: _Line | None = None
    for line in _lines(stdout):
        text = line.text
        if not text.strip():
            continue
        volume, serial = _DIR_VOLUME.match(text), _DIR_SERIAL.match(text)
        directory, entry = _DIR_OF.match(text), _DIR_ENTRY.match(text)
        if volume and head.label is None:
            head = head._replace(label=volume.group("label") or "")
        elif serial and head.serial is None:
            head = head._replace(serial=serial.group("serial"))
        elif directory and head.directory is None and not entries:
            head = head._replace(directory=directory.group("path"))
        elif entry and head.directory is not None and files is None:
            dirname = entry.group("dirname")
            size = entry.group("size")
            entries.append(
                DirEntry(
                    name=dirname if dirname is not None else entry.group("filename"),
                    size=None if size is None else int(size),
                    is_dir=dirname is not None,
                    date=entry.group("date"),
                    time=entry.group("time"),
                )
            )
        elif _DIR_FILES.match(text) and files is None and head.directory is not None:
            files, files_line = _DIR_FILES.match(text), line
        elif _DIR_DIRS.match(text) and files is not None and dirs is None:
            dirs = _DIR_DIRS.match(text)
        elif _DIR_GROUPED.match(text):
            raise _parse_error(section, "sizes carry digit grouping: run dir with /-c", line)
        else:
            raise _parse_error(section, "not a line of a single-directory dir listing", line)
    if missing:
        if entries or files is not None:
            raise _parse_error(section, "a listing and 'File Not Found' together")
        return DirListing(False, head.directory, volume_label=head.label, serial_number=head.serial)
    if head.directory is None or files is None or dirs is None:
        raise _parse_error(
            section, f"no ' Directory of', File(s) or Dir(s) line (exit code {exit_code})"
        )
    listing = DirListing(
        found=True,
        directory=head.directory,
        entries=tuple(entries),
        file_count=int(files.group("count")),
        total_bytes=int(files.group("bytes")),
        dir_count=int(dirs.group("count")),
        free_bytes=int(dirs.group("free")),
        volume_label=head.label,
        serial_number=head.serial,
    )
    _check_dir_totals(section, listing, files_line)
    return listing


def _check_dir_totals(section: str, listing: DirListing, files_line: _Line | None) -> None:
    listed_files = listing.files
    listed = (
        len(listed_files),
        sum(entry.size or 0 for entry in listed_files),
        len(listing.entries) - len(listed_files),
    )
    printed = (listing.file_count, listing.total_bytes, listing.dir_count)
    if listed != printed:
        raise _parse_error(
            section,
            f"the totals ({printed[0]} files, {printed[1]} bytes, {printed[2]} dirs) do not match "
            f"the entries ({listed[0]} files, {listed[1]} bytes, {listed[2]} dirs)",
            files_line,
        )


# ---------------------------------------------------------------------------------------------
# dir /s, and dir's messages inside a `2>&1`-merged answer

# dir's answers that are not a listing (§6 "File Not Found"; the system messages of
# ERROR_FILE_NOT_FOUND / ERROR_PATH_NOT_FOUND / ERROR_ACCESS_DENIED), written to stderr.
_DIR_STDERR_LINES = (
    *_STDERR_LINES,
    re.compile(r"^File Not Found\s*$"),
    re.compile(r"^The system cannot find the (?:file|path) specified\.\s*$"),
    re.compile(r"^Access is denied\.\s*$"),
)


def split_merged_dir_streams(text: str) -> tuple[str, str]:
    """`split_merged_streams` for `dir`: also moves dir's "File Not Found", "The system cannot
    find the path specified." and "Access is denied." lines to stderr, where dir writes them, so
    `parse_dir` / `parse_dir_tree` see the streams as the tool wrote them. A listing line never
    looks like these: it starts with a date, a space or a digit."""
    stdout, stderr = [], []
    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        (stderr if any(pattern.match(bare) for pattern in _DIR_STDERR_LINES) else stdout).append(
            line
        )
    return "".join(stdout), "".join(stderr)


_DIR_TOTAL_LISTED = re.compile(r"^\s+Total Files Listed:\s*$")


@dataclass(frozen=True)
class DirTree:
    """`dir /-c /s [/a] PATH` (§6 layout, one block per folder): `folders` are the per-folder
    listings in output order (each with its own File(s) total; `free_bytes` None), then the
    "Total Files Listed:" totals and the free bytes of the drive. `found` is False for
    "File Not Found" / "The system cannot find the path specified." (no folders then)."""

    found: bool
    folders: tuple[DirListing, ...] = ()
    file_count: int = 0
    total_bytes: int = 0
    dir_count: int = 0
    free_bytes: int | None = None
    volume_label: str | None = None
    serial_number: str | None = None

    @property
    def root(self) -> str | None:
        """The first folder listed: PATH itself when PATH is a folder (its parent when PATH is a
        file, since `dir /s FILE` lists the folders holding files of that name)."""
        return self.folders[0].directory if self.folders else None

    def files(self) -> tuple[tuple[str, DirEntry], ...]:
        """(full path, entry) of every file, folder by folder in output order."""
        return tuple(
            (_join_path(folder.directory or "", entry.name), entry)
            for folder in self.folders
            for entry in folder.files
        )


def _join_path(folder: str, name: str) -> str:
    return folder + name if folder.endswith("\\") else f"{folder}\\{name}"


class _TreeBlock(NamedTuple):
    directory: str
    line: _Line
    entries: list[DirEntry]


def _tree_block(section: str, block: _TreeBlock, total: re.Match[str], line: _Line) -> DirListing:
    listing = DirListing(
        found=True,
        directory=block.directory,
        entries=tuple(block.entries),
        file_count=int(total.group("count")),
        total_bytes=int(total.group("bytes")),
        dir_count=sum(1 for entry in block.entries if entry.is_dir),
    )
    listed = (len(listing.files), sum(entry.size or 0 for entry in listing.files))
    if listed != (listing.file_count, listing.total_bytes):
        raise _parse_error(
            section,
            f"the File(s) line of {block.directory} ({listing.file_count} files, "
            f"{listing.total_bytes} bytes) does not match its entries ({listed[0]} files, "
            f"{listed[1]} bytes)",
            line,
        )
    return listing


def parse_dir_tree(stdout: str, stderr: str, exit_code: int, section: str = "dir /s") -> DirTree:
    """Parse `dir /-c /s [/a] PATH`: per folder ` Directory of X`, its entries and its File(s)
    line; then `Total Files Listed:`, the grand File(s) line and the Dir(s) line with the free
    bytes. Every File(s) line is checked against the entries it sums up, and the grand totals
    against the folders. A missing path is the answer `found=False`; other stderr text
    ("Access is denied." for an unreadable subfolder) raises `CommandFailed`: a listing with a
    folder left out must never pass for the whole tree."""
    _raise_if_missing(section, stderr, exit_code)
    errors = _nonblank(stderr, "stderr")
    missing = [line for line in errors if line.text.strip() in _DIR_NOT_FOUND]
    other = [line for line in errors if line.text.strip() not in _DIR_NOT_FOUND]
    if other:
        raise _command_failed(section, exit_code, other)
    label = serial = None
    folders: list[DirListing] = []
    block: _TreeBlock | None = None
    listed_line: _Line | None = None
    grand: re.Match[str] | None = None
    dirs: re.Match[str] | None = None
    for line in _lines(stdout):
        text = line.text
        if not text.strip():
            continue
        volume, serial_match = _DIR_VOLUME.match(text), _DIR_SERIAL.match(text)
        directory, entry = _DIR_OF.match(text), _DIR_ENTRY.match(text)
        files_total = _DIR_FILES.match(text)
        if volume and label is None and not folders and block is None:
            label = volume.group("label") or ""
        elif serial_match and serial is None and not folders and block is None:
            serial = serial_match.group("serial")
        elif directory and block is None and listed_line is None:
            block = _TreeBlock(directory.group("path"), line, [])
        elif entry and block is not None:
            dirname, size = entry.group("dirname"), entry.group("size")
            block.entries.append(
                DirEntry(
                    name=dirname if dirname is not None else entry.group("filename"),
                    size=None if size is None else int(size),
                    is_dir=dirname is not None,
                    date=entry.group("date"),
                    time=entry.group("time"),
                )
            )
        elif files_total and block is not None:
            folders.append(_tree_block(section, block, files_total, line))
            block = None
        elif _DIR_TOTAL_LISTED.match(text) and block is None and folders and listed_line is None:
            listed_line = line
        elif files_total and listed_line is not None and grand is None:
            grand = files_total
        elif _DIR_DIRS.match(text) and grand is not None and dirs is None:
            dirs = _DIR_DIRS.match(text)
        elif _DIR_GROUPED.match(text):
            raise _parse_error(section, "sizes carry digit grouping: run dir with /-c", line)
        elif directory and block is not None:
            raise _parse_error(section, "a folder's listing ends without its File(s) line", line)
        else:
            raise _parse_error(section, "not a line of a dir /s listing", line)
    if missing:
        if folders or block is not None:
            raise _parse_error(section, "a listing and 'File Not Found' together")
        return DirTree(False, volume_label=label, serial_number=serial)
    if block is not None:
        raise _parse_error(section, f"the listing of {block.directory} was cut short", block.line)
    if not folders or grand is None or dirs is None:
        raise _parse_error(
            section,
            f"no ' Directory of', 'Total Files Listed:' or Dir(s) line (exit code {exit_code})",
        )
    tree = DirTree(
        found=True,
        folders=tuple(folders),
        file_count=int(grand.group("count")),
        total_bytes=int(grand.group("bytes")),
        dir_count=int(dirs.group("count")),
        free_bytes=int(dirs.group("free")),
        volume_label=label,
        serial_number=serial,
    )
    summed = (
        sum(folder.file_count for folder in folders),
        sum(folder.total_bytes for folder in folders),
        sum(folder.dir_count for folder in folders),
    )
    if summed != (tree.file_count, tree.total_bytes, tree.dir_count):
        raise _parse_error(
            section,
            f"the totals ({tree.file_count} files, {tree.total_bytes} bytes, {tree.dir_count} "
            f"dirs) do not match the folders ({summed[0]} files, {summed[1]} bytes, "
            f"{summed[2]} dirs)",
            listed_line,
        )
    return tree
