# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse `dir` output (docs/windows-output.md#dir): one folder, `dir /-c PATH` (`parse_dir` ->
`DirListing`); a tree, `dir /-c /s [/a] PATH` (`parse_dir_tree` -> `DirTree`); and dir's own
messages given back to stderr from a `2>&1`-merged answer (`split_merged_dir_streams`).

A missing file or path ("File Not Found", "The system cannot find the path specified.") is the
answer `found=False`. Every File(s) and Dir(s) line is checked against the entries it sums up, and
sizes with digit grouping are refused (run dir with /-c). Any other stderr text ("Access is
denied." for an unreadable subfolder) raises `CommandFailed`; cmd's "is not recognized"
`ToolMissing`; a line that is not dir's `ParseError`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._base import (
    _STDERR_LINES,
    _by_name,
    _Line,
    _lines,
    _parse_error,
    _split_streams,
    _stderr_answers,
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


@dataclass(frozen=True, kw_only=True)
class _DirTotals:
    """What both forms end with, and the volume they name. `found` is False for "File Not Found"
    / "The system cannot find the path specified." (then there are no entries and no totals)."""

    found: bool
    file_count: int = 0
    total_bytes: int = 0
    dir_count: int = 0
    free_bytes: int | None = None
    volume_label: str | None = None
    serial_number: str | None = None


@dataclass(frozen=True, kw_only=True)
class DirListing(_DirTotals):
    """`dir /-c PATH` (docs/windows-output.md#e14): one folder, its entries, the File(s) and Dir(s)
    totals."""

    directory: str | None
    entries: tuple[DirEntry, ...] = ()

    @property
    def files(self) -> tuple[DirEntry, ...]:
        return tuple(entry for entry in self.entries if not entry.is_dir)

    def entry(self, name: str) -> DirEntry | None:
        """The entry called `name`, compared case-insensitively (as NTFS and FAT do)."""
        return _by_name(self.entries, name)


@dataclass(frozen=True, kw_only=True)
class DirTree(_DirTotals):
    """`dir /-c /s [/a] PATH` (the layout of `dir /-c PATH`, one block per folder): `folders` are
    the per-folder listings in output order (each with its own File(s) total; `free_bytes` None),
    then the "Total Files Listed:" totals and the free bytes of the drive (no folders when not
    found)."""

    folders: tuple[DirListing, ...] = ()

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


_DIR_TOTAL_LISTED = re.compile(r"^\s+Total Files Listed:\s*$")


class _Block(NamedTuple):
    """One folder being read: its ' Directory of' line and the entries so far."""

    directory: str
    line: _Line
    entries: list[DirEntry]


def _dir_entry(match: re.Match[str]) -> DirEntry:
    dirname, size = match.group("dirname"), match.group("size")
    return DirEntry(
        name=dirname if dirname is not None else match.group("filename"),
        size=None if size is None else int(size),
        is_dir=dirname is not None,
        date=match.group("date"),
        time=match.group("time"),
    )


class _DirRead:
    """One pass over the stdout of `dir PATH` or, with `tree`, `dir /s PATH`: the volume lines,
    then folder blocks (' Directory of X', its entries, its File(s) line), then the totals: the
    Dir(s) line after the folder's File(s) line for `dir PATH`; 'Total Files Listed:', the grand
    File(s) line and the Dir(s) line for `dir /s PATH`. A line out of place raises ParseError."""

    def __init__(self, section: str, tree: bool) -> None:
        self.section = section
        self.tree = tree
        self.label: str | None = None
        self.serial: str | None = None
        self.folders: list[DirListing] = []
        self.block: _Block | None = None
        self.listed: _Line | None = None  # "Total Files Listed:" (dir /s)
        self.total: tuple[re.Match[str], _Line] | None = None  # the File(s) line of the totals
        self.dirs: re.Match[str] | None = None

    def read(self, stdout: str) -> _DirRead:
        for line in _lines(stdout):
            if line.text.strip():
                self._read(line)
        return self

    def _read(self, line: _Line) -> None:
        text = line.text
        volume, serial = _DIR_VOLUME.match(text), _DIR_SERIAL.match(text)
        directory, entry = _DIR_OF.match(text), _DIR_ENTRY.match(text)
        files, dirs = _DIR_FILES.match(text), _DIR_DIRS.match(text)
        # dir PATH takes the volume lines wherever they stand; dir /s only before its folders.
        head = not self.tree or (not self.folders and self.block is None)
        if volume and self.label is None and head:
            self.label = volume.group("label") or ""
        elif serial and self.serial is None and head:
            self.serial = serial.group("serial")
        elif directory and self.block is None and self._may_open_a_folder():
            self.block = _Block(directory.group("path"), line, [])
        elif entry and self.block is not None:
            self.block.entries.append(_dir_entry(entry))
        elif files and self.block is not None:
            self._close(self.block, files, line)
        elif self.tree and _DIR_TOTAL_LISTED.match(text) and self._may_total():
            self.listed = line
        elif files and self.listed is not None and self.total is None:
            self.total = (files, line)
        elif dirs and self.total is not None and self.dirs is None:
            self.dirs = dirs
        elif _DIR_GROUPED.match(text):
            raise _parse_error(self.section, "sizes carry digit grouping: run dir with /-c", line)
        elif self.tree and directory and self.block is not None:
            raise _parse_error(
                self.section, "a folder's listing ends without its File(s) line", line
            )
        else:
            form = "a dir /s listing" if self.tree else "a single-directory dir listing"
            raise _parse_error(self.section, f"not a line of {form}", line)

    def _may_open_a_folder(self) -> bool:
        """dir PATH lists one folder; dir /s PATH folders until 'Total Files Listed:'."""
        return self.listed is None if self.tree else not self.folders

    def _may_total(self) -> bool:
        """'Total Files Listed:' comes after the last folder's File(s) line, once."""
        return self.block is None and bool(self.folders) and self.listed is None

    def _close(self, block: _Block, files: re.Match[str], line: _Line) -> None:
        """End the folder at its File(s) line: dir /s checks it at once; for dir PATH it is the
        listing's total, checked with the Dir(s) line at the end."""
        folder = DirListing(
            found=True,
            directory=block.directory,
            entries=tuple(block.entries),
            file_count=int(files.group("count")),
            total_bytes=int(files.group("bytes")),
            dir_count=_counted(block.entries)[2],
        )
        if self.tree:
            _check_folder(self.section, folder, line)
        else:
            self.total = (files, line)
        self.folders.append(folder)
        self.block = None

    def totals(self, files: re.Match[str], dirs: re.Match[str]) -> dict[str, Any]:
        """The `_DirTotals` fields of a complete listing, from its File(s) and Dir(s) lines."""
        return {
            "found": True,
            "file_count": int(files.group("count")),
            "total_bytes": int(files.group("bytes")),
            "dir_count": int(dirs.group("count")),
            "free_bytes": int(dirs.group("free")),
            "volume_label": self.label,
            "serial_number": self.serial,
        }


def _counted(entries: Sequence[DirEntry]) -> tuple[int, int, int]:
    """(files, the bytes in them, folders) among `entries`."""
    files = [entry for entry in entries if not entry.is_dir]
    return len(files), sum(entry.size or 0 for entry in files), len(entries) - len(files)


def _check_folder(section: str, folder: DirListing, line: _Line) -> None:
    listed = _counted(folder.entries)[:2]
    if listed != (folder.file_count, folder.total_bytes):
        raise _parse_error(
            section,
            f"the File(s) line of {folder.directory} ({folder.file_count} files, "
            f"{folder.total_bytes} bytes) does not match its entries ({listed[0]} files, "
            f"{listed[1]} bytes)",
            line,
        )


def _check_totals(
    section: str,
    printed: _DirTotals,
    counted: tuple[int, int, int],
    parts: str,
    line: _Line | None,
) -> None:
    totals = (printed.file_count, printed.total_bytes, printed.dir_count)
    if counted != totals:
        raise _parse_error(
            section,
            f"the totals ({totals[0]} files, {totals[1]} bytes, {totals[2]} dirs) do not match "
            f"the {parts} ({counted[0]} files, {counted[1]} bytes, {counted[2]} dirs)",
            line,
        )


def parse_dir(stdout: str, stderr: str, exit_code: int, section: str = "dir") -> DirListing:
    """Parse `dir /-c PATH` (docs/windows-output.md#e14): entries, the File(s) and Dir(s) totals
    (checked against the entries) and the free bytes. Sizes with digit grouping are refused (use
    /-c). A missing file or path is the answer `found=False`; other stderr text raises
    `CommandFailed`."""
    missing = _stderr_answers(section, stderr, exit_code, _DIR_NOT_FOUND)
    read = _DirRead(section, tree=False).read(stdout)
    if missing:
        if read.folders or (read.block is not None and read.block.entries):
            raise _parse_error(section, "a listing and 'File Not Found' together")
        directory = None if read.block is None else read.block.directory
        return DirListing(
            found=False, directory=directory, volume_label=read.label, serial_number=read.serial
        )
    if read.total is None or read.dirs is None:
        raise _parse_error(
            section, f"no ' Directory of', File(s) or Dir(s) line (exit code {exit_code})"
        )
    (folder,) = read.folders
    totals = read.totals(read.total[0], read.dirs)
    listing = DirListing(directory=folder.directory, entries=folder.entries, **totals)
    _check_totals(section, listing, _counted(listing.entries), "entries", read.total[1])
    return listing


def parse_dir_tree(stdout: str, stderr: str, exit_code: int, section: str = "dir /s") -> DirTree:
    """Parse `dir /-c /s [/a] PATH`: per folder ` Directory of X`, its entries and its File(s)
    line; then `Total Files Listed:`, the grand File(s) line and the Dir(s) line with the free
    bytes. Every File(s) line is checked against the entries it sums up, and the grand totals
    against the folders. A missing path is the answer `found=False`; other stderr text
    ("Access is denied." for an unreadable subfolder) raises `CommandFailed`: a listing with a
    folder left out must never pass for the whole tree."""
    missing = _stderr_answers(section, stderr, exit_code, _DIR_NOT_FOUND)
    read = _DirRead(section, tree=True).read(stdout)
    if missing:
        if read.folders or read.block is not None:
            raise _parse_error(section, "a listing and 'File Not Found' together")
        return DirTree(found=False, volume_label=read.label, serial_number=read.serial)
    if read.block is not None:
        raise _parse_error(
            section, f"the listing of {read.block.directory} was cut short", read.block.line
        )
    if read.total is None or read.dirs is None:
        raise _parse_error(
            section,
            f"no ' Directory of', 'Total Files Listed:' or Dir(s) line (exit code {exit_code})",
        )
    tree = DirTree(folders=tuple(read.folders), **read.totals(read.total[0], read.dirs))
    counted = (
        sum(folder.file_count for folder in tree.folders),
        sum(folder.total_bytes for folder in tree.folders),
        sum(folder.dir_count for folder in tree.folders),
    )
    _check_totals(section, tree, counted, "folders", read.listed)
    return tree


# ---------------------------------------------------------------------------------------------
# dir's messages inside a `2>&1`-merged answer

# dir's answers that are not a listing ("File Not Found", docs/windows-output.md#dir; the system
# messages of ERROR_FILE_NOT_FOUND / ERROR_PATH_NOT_FOUND / ERROR_ACCESS_DENIED), written to stderr.
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
    return _split_streams(text, _DIR_STDERR_LINES)
