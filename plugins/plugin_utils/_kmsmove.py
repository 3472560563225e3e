# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a KM Server move (KB Q154531) needs beyond the backup of `_kmsbackup`.

- `RestoreCheck`: verify only. A restored KM database folder against the backup's manifest,
  before KMS first starts on it: `sc query`, `dir /s /a`, `certutil -hashfile` -> `verify_restore`.
  It only reads, and refuses while KMS runs (a running KMS writes its database, KB Q274321).
- `fetch_backup`: the second copy on the controller (copy_to). Per file, one line:
  `certutil -f -encode FILE OUT`, `type OUT`, `del OUT`, where OUT is one file beside the backup
  folder (`<backup>.exchops-fetch.b64`): the one thing this module ever deletes, a file it wrote
  itself by that exact name, because it holds the KM database as Base64. The controller checks
  each file's size and SHA256 against the manifest and names the copy only once it is whole.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import json
import os
import shutil
import tempfile
import typing as t
from collections.abc import Callable, Sequence
from pathlib import Path

from ._kmsbackup import (
    Run,
    hash_section,
    kms_query_section,
    locate_database,
    read_hash,
    read_kms_state,
    read_tree,
    refuse_unreachable,
    tree_section,
)
from ._kmsbackup_plan import (
    BackupError,
    BackupOutcome,
    ManifestEntry,
    RestoreMismatch,
    check_fetched,
    hashed_entries,
    is_under,
    refuse_unsettled_kms,
    restore_result,
    verify_restore,
)
from ._probe import run_sections, section, shell_path
from ._reach import Reach, remote_of
from ._winout import ParseError, ToolMissing, decode_certutil_base64, parse_certutil_encode

# ---------------------------------------------------------------------------------------------
# Verify only: a restored KM database folder against its backup's manifest


class RestoreCheck:
    """Prove a restore (KB Q190713 "To restore the directory", Q154531 step 7) before KMS first
    starts on it: the folder holds exactly the backup's files with their sizes and SHA256. Only
    reads: `sc query`, `dir /s`, `certutil -hashfile`; nothing is stopped, started or written."""

    def __init__(
        self,
        run: Run,
        manifest: Sequence[ManifestEntry],
        *,
        database_path: str = "",
        log: Callable[[str], None] = lambda message: None,
        reach: Reach | None = None,
    ) -> None:
        """`reach`, when the shell runs on the server's jump host: the paths stay the server's
        and are read through its admin share (_probe.shell_path)."""
        self._run = run
        self._manifest = tuple(manifest)
        self._database_path = database_path
        self._log = log
        self._reach = reach
        self._remote = remote_of(reach)

    def check(self) -> tuple[dict[str, t.Any], tuple[str, ...]]:
        """(the task result, warnings); RestoreMismatch or BackupRefused, nothing changed."""
        database_path = self._database_path or locate_database(self._run, self._log, self._reach)
        self._log(f"checking {database_path} against the backup's manifest")
        root = shell_path(database_path, self._remote)
        sections = run_sections(
            self._run, [kms_query_section(remote=self._remote), tree_section("source", root)]
        )
        refuse_unreachable(self._reach, sections)
        kms_state = read_kms_state(sections)
        refuse_unsettled_kms(database_path, kms_state)
        found, is_file = read_tree(sections, "source", root)
        if is_file:
            raise RestoreMismatch(database_path, ["it is a file, not a folder"])
        present = {item.name.casefold() for item in found.files} if found else set()
        to_hash = [e for e in hashed_entries(self._manifest) if e.name.casefold() in present]
        hashes, errors, missing_tool = self._hashes(database_path, to_hash)
        hashing = missing_tool is None
        verify_restore(
            database_path, self._manifest, found, hashes, hash_errors=errors, hashing=hashing
        )
        warnings: list[str] = []
        if not hashing:
            warnings.append(
                f"'{missing_tool}' is not available on this host, so {database_path} was "
                "compared with the backup by its file list and sizes only, not by SHA256."
            )
        elif any(entry.sha256 is None for entry in self._manifest):
            warnings.append(
                "the backup's manifest has no SHA256 for some files (the backup was verified "
                "by sizes only), so those files were compared by size only."
            )
        return restore_result(database_path, self._manifest, kms_state, hashing), tuple(warnings)

    def _hashes(
        self, database_path: str, entries: Sequence[ManifestEntry]
    ) -> tuple[dict[str, str], dict[str, str], str | None]:
        """(SHA256 by name, why a hash is missing by name, the missing tool or None)."""
        if not entries:
            return {}, {}, None
        root = shell_path(database_path, self._remote)
        parts = [
            hash_section(f"sha_{index}", f"{root}\\{entry.name}")
            for index, entry in enumerate(entries)
        ]
        sections = run_sections(self._run, parts)
        hashes: dict[str, str] = {}
        errors: dict[str, str] = {}
        for index, entry in enumerate(entries):
            try:
                hashes[entry.name] = read_hash(sections, f"sha_{index}")
            except ToolMissing as exc:
                return {}, {}, exc.tool
            except ParseError as exc:
                errors[entry.name] = str(exc)
        return hashes, errors, None


# ---------------------------------------------------------------------------------------------
# The controller copy: the verified backup fetched over WinRM, verified again, then named

# Beside the backup folder, under the same parent (as well protected as the backup itself): the
# Base64 text of one file at a time, deleted as soon as it was read.
FETCH_SUFFIX = ".exchops-fetch.b64"
MANIFEST_FILE = "manifest.json"


class FetchFailed(BackupError):
    """The controller copy could not be made or proven; nothing was left in its folder."""


def fetch_sections(source: str, encoded: str) -> list[str]:
    """Encode one file to Base64 beside the backup, read it back, delete the encoded file
    (certutil -encode, Microsoft's "Appendix 6: Encoding and Decoding" cc782874; -f replaces
    a file left by an interrupted run). The delete runs whatever the first two did."""
    return [
        section("encode", f'certutil -f -encode "{source}" "{encoded}"'),
        section("encoded", f'type "{encoded}"'),
        # < NUL: were the name a folder, del would ask "Are you sure (Y/N)?" for its files; with
        # end-of-input for an answer it deletes nothing [I].
        section("cleanup", f'del "{encoded}" < NUL'),
    ]


def fetch_file(run: Run, source: str, encoded: str) -> tuple[bytes, str | None]:
    """(the file's bytes, a warning when the encoded file may be left on the host)."""
    sections = run_sections(run, fetch_sections(source, encoded))
    cleanup = sections.need("cleanup")
    warning = None
    if not cleanup.succeeded or cleanup.text.strip():
        said = cleanup.text.strip()[:200] or "nothing"
        warning = (
            f"{encoded} (a Base64 copy of {source}) may be left on the host (del answered "
            f"{said!r}); delete that one file."
        )
    parse_certutil_encode(*sections.need("encode").streams(), section="encode")
    data = decode_certutil_base64(*sections.need("encoded").streams(), section="encoded")
    return data, warning


def controller_folder(copy_to: str, host: str, backup_path: str) -> Path:
    """<copy_to>/<host>/<the backup folder's name>: the Kmsdata files under the database
    folder's name, and manifest.json beside them."""
    return Path(copy_to).expanduser().resolve() / host / backup_path.rsplit("\\", 1)[-1]


def fetch_backup(
    run: Run,
    outcome: BackupOutcome,
    folder: Path,
    record: dict[str, t.Any],
    log: Callable[[str], None] = lambda message: None,
    remote: str | None = None,
) -> tuple[dict[str, t.Any], tuple[str, ...]]:
    """Fetch the verified backup of `outcome` into `folder` on the controller: each file over
    WinRS as Base64, checked against the manifest (size, SHA256), written into a hidden staging
    folder beside `folder`, which is renamed to `folder` only once every file and manifest.json
    (`record` plus the manifest) are in it. FetchFailed otherwise, with the staging folder
    removed: a partial copy is never left under the final name. REMOTE names the server when
    the shell runs on its jump host: the files are then encoded, read and deleted through its
    admin share (_probe.shell_path). Returns (the result's `controller_copy`, warnings)."""
    plan = outcome.plan
    encoded = plan.destination + FETCH_SUFFIX
    if encoded.casefold() == plan.database_path.casefold() or is_under(plan.database_path, encoded):
        # The one file this module deletes must never be, or hold, the KM database.
        raise FetchFailed(f"{encoded}, the file the fetch writes and deletes, is the KM database")
    if folder.exists():
        raise FetchFailed(f"{folder} already exists on the controller; it is never overwritten")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    leaf = plan.database_path.rsplit("\\", 1)[-1]
    warnings: list[str] = []
    try:
        for entry in outcome.manifest:
            log(f"fetching {entry.name} ({entry.size} bytes) to the controller")
            data, warning = (
                (b"", None)
                if entry.size == 0
                else fetch_file(
                    run,
                    shell_path(f"{plan.destination}\\{entry.name}", remote),
                    shell_path(encoded, remote),
                )
            )
            warnings += [warning] if warning else []
            problem = check_fetched(entry, data)
            if problem:
                raise FetchFailed(f"{problem}: the transfer changed it")
            target = staging.joinpath(leaf, *entry.name.split("\\"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        manifest = [entry.to_json() for entry in outcome.manifest]
        (staging / MANIFEST_FILE).write_text(
            json.dumps({**record, "manifest": manifest}, indent=2) + "\n", encoding="utf-8"
        )
        os.rename(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    copy = {
        "path": str(folder),
        "database_folder": str(folder / leaf),
        "manifest_path": str(folder / MANIFEST_FILE),
        "files": len(outcome.manifest),
        "bytes": plan.bytes,
        "verification": "sha256",
    }
    return copy, tuple(warnings)
