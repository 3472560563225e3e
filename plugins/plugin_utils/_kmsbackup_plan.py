# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure half of kms_backup (KB Q190713): which folders a backup may use, the backup to make
from a survey of the host, the proof that a copy matches the KM database, and the task results.
No I/O: `_kmsbackup` reads the host (`read_survey`, the hashes) and calls these.

- Options: `check_host_path`, `check_destination` (a copy is a new folder apart from Kmsdata),
  `default_destination` (timestamped, beside Kmsdata).
- The plan: `make_plan(survey, ...)` returns the BackupPlan or raises BackupRefused (nothing was
  changed) with the first reason not to back up: PLAN_RULES are tried in order, and
  PLAN_MESSAGES words the one that applies.
- Verification: `compare_trees` and `verify_copy` (file list, sizes, SHA256) -> the manifest, or
  VerificationFailed naming every difference.
- Results: `plan_result` (check mode) and `outcome_result`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import hashlib
import ntpath
import re
import typing as t
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ._errors import Refusal, StepError
from ._kms import KMSDATA_FOLDER, SECURITY_FOLDER
from ._rules import Values, first_rule

# Free space the destination drive must keep after the copy: a tenth of the copy, at least
# 64 MiB. Exchange keeps its databases and logs on the same drives, and a full log drive stops
# the Information Store, so the backup must not be what fills it.
FREE_SPACE_MARGIN_MIN = 64 * 1024 * 1024
FREE_SPACE_MARGIN_DIVISOR = 10
# certutil on older Windows fails on an empty file; an empty file's content is known anyway.
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_DRIVE_PATH = re.compile(r"^[A-Za-z]:\\")
_UNSAFE_PATH_CHARACTERS = frozenset('"*?<>|%/')


class BackupError(StepError):
    """A backup that cannot be made or did not complete (_errors.StepError); the text says what
    to do and never holds the startup password."""


class BackupRefused(BackupError, Refusal):
    """Refused before anything was changed on the host."""


class VerificationFailed(BackupError):
    def __init__(self, destination: str, problems: Sequence[str]) -> None:
        shown = "; ".join(problems[:6])
        if len(problems) > 6:
            shown += f"; and {len(problems) - 6} more"
        super().__init__(f"the copy in {destination} does not match the KM database: {shown}")
        self.problems = tuple(problems)


# ---------------------------------------------------------------------------------------------
# Options


def check_host_path(option: str, value: str) -> str:
    """A folder path on the host, checked so that it can be quoted on a cmd.exe line and
    compared with another: `X:\\...`, none of `" * ? < > | % /`, no empty, `.` or `..` part.
    Returns it with trailing backslashes removed and the drive letter in upper case. Raises
    ValueError with the option's name."""
    text = value.strip()
    if text.startswith("\\\\"):
        raise ValueError(
            f"{option} is {value!r}, a UNC path. The copy runs on the host itself, which cannot "
            "pass the WinRM credentials on to another server (the second hop). Give a folder on "
            "a drive of the host, such as C:\\KMS-BACKUP"
        )
    if not _DRIVE_PATH.match(text):
        raise ValueError(
            f"{option} is {value!r}, not a full path on a drive of the host. Give a folder such "
            "as C:\\EXCHSRVR\\KMSDATA"
        )
    unsafe = sorted({char for char in text if char in _UNSAFE_PATH_CHARACTERS or ord(char) < 32})
    if unsafe:
        shown = " ".join(repr(char) for char in unsafe)
        raise ValueError(
            f"{option} is {value!r}, which holds {shown}: Windows does not allow these in a "
            "folder name, or cmd.exe would change them. Give the folder's plain path"
        )
    trimmed = text.rstrip("\\")
    parts = trimmed[3:].split("\\") if len(trimmed) > 2 else []
    if not parts:
        raise ValueError(f"{option} is {value!r}, a whole drive. Give a folder on it")
    if any(part.strip() in ("", ".", "..") for part in parts):
        raise ValueError(
            f"{option} is {value!r}, which has an empty, '.' or '..' part. Give the folder's "
            "plain full path"
        )
    return trimmed[0].upper() + trimmed[1:]


def kmserver_path(database_path: str) -> str | None:
    """Kmserver.exe of the KM database in `database_path`, where the sources put it for the
    folder's name; None (unknown, never guessed) for a folder of any other name.

    - KMSDATA (Exchange 5.5 and 2000): in BIN beside Kmsdata, both under the Exchange folder (KB
      Q235418: ImagePath C:\\Exchsrvr\\Bin\\Kmserver.exe; KB Q201271: Kmsdata under Exchsrvr).
    - SECURITY (Exchange 4.0 and 5.0): in BIN inside it (KB Q143380 lists
      SECURITY\\BIN\\KMSERVER.EXE; KB Q155216 backs up "the Security directory" as the KM data).

    The KMS that last ran this database ran from it, unless the database was copied here from
    another server (KB Q154531) and KMS has not run on it since."""
    folder = database_path.rstrip("\\")
    name = ntpath.basename(folder).upper()
    if name == KMSDATA_FOLDER:
        return ntpath.dirname(folder) + "\\BIN\\KMSERVER.EXE"
    if name == SECURITY_FOLDER:
        return folder + "\\BIN\\KMSERVER.EXE"
    return None


def default_destination(database_path: str, now: datetime) -> str:
    """Beside the KM database: `C:\\EXCHSRVR\\KMSDATA.backup-20240131-221500` (`now` in UTC)."""
    return f"{database_path}.backup-{now:%Y%m%d-%H%M%S}"


def drive_root(path: str) -> str:
    return path[:2].upper() + "\\"


def is_under(path: str, folder: str) -> bool:
    return path.casefold().startswith(folder.casefold().rstrip("\\") + "\\")


def check_destination(database_path: str, destination: str) -> None:
    """The copy must be a folder of its own, apart from the KM database folder."""
    if destination.casefold() == database_path.casefold():
        raise BackupRefused(
            f"destination {destination} is the KM database folder itself. The backup is a copy "
            "in a new folder. Leave destination empty for a timestamped folder beside it."
        )
    if is_under(destination, database_path):
        raise BackupRefused(
            f"destination {destination} lies inside the KM database folder {database_path}. "
            "xcopy would copy the folder into itself, and the backup would become part of the "
            "database. Choose a folder outside it, or leave destination empty."
        )
    if is_under(database_path, destination):
        raise BackupRefused(
            f"destination {destination} holds the KM database folder {database_path}. The "
            "backup is a copy in a new folder. Choose a folder outside it, or leave destination "
            "empty."
        )


# ---------------------------------------------------------------------------------------------
# Readings, as values


@dataclass(frozen=True)
class FileItem:
    """One file of a tree: `name` relative to the tree's folder ("Kmsmdb.edb", "sub\\a.log")."""

    name: str
    size: int


@dataclass(frozen=True)
class TreeReading:
    files: tuple[FileItem, ...]
    folders: tuple[str, ...]  # subfolders, relative ("sub", "sub\\deeper"); the root left out

    @property
    def bytes(self) -> int:
        return sum(item.size for item in self.files)


@dataclass(frozen=True)
class Survey:
    kms_state: str  # running, stopped, start_pending, stop_pending, paused ... or absent
    source: TreeReading | None  # None: the folder does not exist (or is a file, see below)
    source_is_file: bool
    destination_exists: bool
    drive_found: bool
    free_bytes: int | None
    # Kmserver.exe's file version beside the KM database, None when it cannot be read: recorded
    # with the backup as the build that last ran this database (see `kmserver_path`).
    kms_binary: str | None = None


# ---------------------------------------------------------------------------------------------
# The plan


def margin_bytes(total: int) -> int:
    return max(FREE_SPACE_MARGIN_MIN, total // FREE_SPACE_MARGIN_DIVISOR)


@dataclass(frozen=True)
class BackupPlan:
    database_path: str
    destination: str
    files: tuple[FileItem, ...]
    folders: tuple[str, ...]
    free_bytes: int
    kms_state: str
    kms_binary: str | None = None

    @property
    def bytes(self) -> int:
        return sum(item.size for item in self.files)

    @property
    def required_bytes(self) -> int:
        return self.bytes + margin_bytes(self.bytes)

    @property
    def stop_kms(self) -> bool:
        return self.kms_state == "running"

    def summary(self) -> str:
        return f"{len(self.files)} files, {self.bytes} bytes"


# The reasons not to back up, tried in order: the first whose predicate returns values refuses
# the plan (BackupRefused: nothing was changed); "ok" makes it. Adding a refusal is adding one row
# to PLAN_RULES, its predicate and its wording in PLAN_MESSAGES, as in _parity's PAIR_RULES.


class PlanCase(t.NamedTuple):
    """What make_plan judges: the survey of the host and the task's options."""

    survey: Survey
    database_path: str
    destination: str
    have_password: bool  # startup_password given, or KMS reads a startup disk (KB Q196129)
    from_registry: bool


def _source_is_file(case: PlanCase) -> Values | None:
    return {} if case.survey.source_is_file else None


def _source_missing(case: PlanCase) -> Values | None:
    if case.survey.source is not None:
        return None
    if case.from_registry:
        setup = "HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup"
        return {"where": f"Exchange's Services folder ({setup}) plus KMSDATA"}
    return {"where": "database_path"}


def _source_empty(case: PlanCase) -> Values | None:
    source = case.survey.source
    return {"subfolders": len(source.folders)} if source and not source.files else None


def _destination_exists(case: PlanCase) -> Values | None:
    return {} if case.survey.destination_exists else None


def _drive_missing(case: PlanCase) -> Values | None:
    survey = case.survey
    return {} if not survey.drive_found or survey.free_bytes is None else None


def _too_little_space(case: PlanCase) -> Values | None:
    total = sum(item.size for item in case.survey.source.files) if case.survey.source else 0
    margin = margin_bytes(total)
    free = case.survey.free_bytes or 0
    if free >= total + margin:
        return None
    return {"free": free, "total": total, "margin": margin, "required": total + margin}


def _kms_not_settled(case: PlanCase) -> Values | None:
    state = case.survey.kms_state
    return None if state in ("running", "stopped", "absent") else {"shown": state.upper()}


def _no_password(case: PlanCase) -> Values | None:
    return {} if case.survey.kms_state == "running" and not case.have_password else None


@dataclass(frozen=True)
class PlanRule:
    id: str
    applies: t.Callable[[PlanCase], Values | None]


PLAN_RULES: tuple[PlanRule, ...] = (
    # Kmsdata is a folder that holds files.
    PlanRule("source_is_file", _source_is_file),
    PlanRule("source_missing", _source_missing),
    PlanRule("source_empty", _source_empty),
    # The copy goes into a new folder on a drive with room for it.
    PlanRule("destination_exists", _destination_exists),
    PlanRule("drive_missing", _drive_missing),
    PlanRule("too_little_space", _too_little_space),
    # KMS can be stopped for the copy and started again.
    PlanRule("kms_not_settled", _kms_not_settled),
    PlanRule("no_password", _no_password),
    PlanRule("ok", lambda case: {}),
)

# str.format templates over the rule's values, plus {database_path}, {destination} and {drive}.
PLAN_MESSAGES: dict[str, str] = {
    "source_is_file": "{database_path} is a file, not the KM database folder. The backup copies "
    "the whole Kmsdata folder (KB Q190713). Set database_path to the folder.",
    "source_missing": "the KM database folder {database_path} does not exist (taken from "
    "{where}). There is nothing to back up: Kmsdata holds the KM database only where KM Server "
    "is installed (KB Q201271); Exchange 4.0 and 5.0 keep it under Security instead (KB "
    "Q155216). Set database_path to the folder that holds Kmsmdb.edb.",
    "source_empty": "the KM database folder {database_path} holds no files ({subfolders} "
    "subfolders). A backup of it would restore nothing: the folder is empty unless KM Server "
    "was installed (KB Q201271). Check database_path, or whether this is the KM Server.",
    "destination_exists": "destination {destination} already exists. The backup only ever "
    "writes into a new folder, so no earlier backup is overwritten or mixed with this one. "
    "Choose another destination, or leave destination empty for a new timestamped folder.",
    "drive_missing": "drive {drive} of destination {destination} does not exist on the host, or "
    "dir shows no free space for it. Choose a destination on a local drive of the host.",
    "too_little_space": "drive {drive} has {free} bytes free, but the copy needs {total} bytes "
    "plus a margin of {margin} ({required} bytes). A full drive can stop the Exchange services "
    "that keep their data on it. Free space on {drive}, or set destination to a folder on a "
    "drive with more room.",
    "kms_not_settled": "MSExchangeKMS is {shown}. The KM database is copied only with KMS "
    "stopped (KB Q190713), and a service in {shown} cannot be stopped or started reliably. Wait "
    "until it is RUNNING or STOPPED (sc query MSExchangeKMS), then run again.",
    "no_password": "MSExchangeKMS is running and startup_password is not set, and "
    "MasterPasswordPath (HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer) names no startup "
    "disk (KB Q196129). The KM database is copied only with KMS stopped (KB Q190713), and KMS "
    "cannot be started again without its startup password (KB Q184420). Set startup_password "
    "(for example to the vaulted kms_startup_password) to the startup password of the KM Server "
    "that created this KM database, after a move the ORIGINAL server's (KB Q154531), or stop "
    "KMS yourself first.",
}


def decide_plan(case: PlanCase) -> tuple[str, Values]:
    """The first rule that applies, by id, with the values its wording needs."""
    rule, values = first_rule(PLAN_RULES, case, "PLAN_RULES")
    return rule.id, values


def make_plan(
    survey: Survey,
    database_path: str,
    destination: str,
    *,
    have_password: bool,
    from_registry: bool = False,
) -> BackupPlan:
    """The backup to make, or BackupRefused (nothing changed) with the first reason not to."""
    case = PlanCase(survey, database_path, destination, have_password, from_registry)
    outcome, values = decide_plan(case)
    if outcome != "ok":
        raise BackupRefused(
            PLAN_MESSAGES[outcome].format(
                database_path=database_path,
                destination=destination,
                drive=destination[:2].upper(),
                **values,
            )
        )
    source = survey.source or TreeReading((), ())  # "ok" only when the folder was listed
    return BackupPlan(
        database_path,
        destination,
        source.files,
        source.folders,
        survey.free_bytes or 0,
        survey.kms_state,
        survey.kms_binary,
    )


# ---------------------------------------------------------------------------------------------
# Verification


@dataclass(frozen=True)
class ManifestEntry:
    name: str
    size: int
    sha256: str | None  # None: the host has no certutil, only sizes were compared

    def to_json(self) -> dict[str, t.Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


def _by_name(files: Sequence[FileItem]) -> dict[str, FileItem]:
    return {item.name.casefold(): item for item in files}


def compare_trees(
    expected: TreeReading, found: TreeReading, found_is: str, expected_is: str
) -> list[str]:
    """What differs between two listings (names compared case-insensitively, as NTFS does)."""
    problems: list[str] = []
    wanted, have = _by_name(expected.files), _by_name(found.files)
    for key, item in wanted.items():
        other = have.get(key)
        if other is None:
            problems.append(f"{item.name} is missing from {found_is}")
        elif other.size != item.size:
            problems.append(
                f"{item.name} is {other.size} bytes in {found_is} but {item.size} bytes in "
                f"{expected_is}"
            )
    for key, item in have.items():
        if key not in wanted:
            problems.append(f"{found_is} holds {item.name}, which {expected_is} does not")
    wanted_folders = {name.casefold(): name for name in expected.folders}
    have_folders = {name.casefold() for name in found.folders}
    for key, name in wanted_folders.items():
        if key not in have_folders:
            problems.append(f"folder {name} is missing from {found_is}")
    return problems


def verify_copy(
    plan: BackupPlan,
    source_after: TreeReading | None,
    copy: TreeReading | None,
    source_hashes: dict[str, str],
    copy_hashes: dict[str, str],
    *,
    hash_errors: dict[str, str] | None = None,
    hashing: bool = True,
) -> tuple[ManifestEntry, ...]:
    """The manifest when the copy holds exactly the planned files with the same sizes and the
    same SHA256 as the KM database, else VerificationFailed naming every difference.

    Hashes are keyed by the planned names; empty files need none (their SHA256 is known).
    `hash_errors` says why a hash is missing ("copy:Kmsmdb.edb" -> certutil's text). Without
    `hashing` (no certutil on the host) only the file list and sizes are compared and the
    manifest's `sha256` is None."""
    planned = TreeReading(plan.files, plan.folders)
    problems: list[str] = []
    if source_after is None:
        problems.append(f"the KM database folder {plan.database_path} could not be listed again")
    else:
        problems += compare_trees(
            planned, source_after, "the KM database now", "its listing before the copy"
        )
    if copy is None:
        problems.append(f"the copy folder {plan.destination} does not exist")
    else:
        problems += compare_trees(planned, copy, "the copy", "the KM database")
    manifest: list[ManifestEntry] = []
    for item in plan.files:
        if item.size == 0:
            manifest.append(ManifestEntry(item.name, 0, EMPTY_SHA256))
            continue
        if not hashing:
            manifest.append(ManifestEntry(item.name, item.size, None))
            continue
        source_hash, copy_hash = source_hashes.get(item.name), copy_hashes.get(item.name)
        if source_hash is None or copy_hash is None:
            side = "source" if source_hash is None else "copy"
            why = (hash_errors or {}).get(f"{side}:{item.name}", "no answer")
            where = "the KM database" if side == "source" else "the copy"
            problems.append(f"the SHA256 of {item.name} in {where} could not be read ({why})")
        elif source_hash != copy_hash:
            problems.append(
                f"{item.name} differs: SHA256 {copy_hash[:16]}... in the copy, "
                f"{source_hash[:16]}... in the KM database"
            )
        else:
            manifest.append(ManifestEntry(item.name, item.size, source_hash))
    if problems:
        raise VerificationFailed(plan.destination, problems)
    return tuple(manifest)


# ---------------------------------------------------------------------------------------------
# Results


def plan_result(plan: BackupPlan) -> dict[str, t.Any]:
    """What check mode returns: the backup that would be made."""
    steps = []
    if plan.stop_kms:
        steps.append("stop MSExchangeKMS")
    steps.append(f"copy {plan.summary()} from {plan.database_path} to {plan.destination}")
    steps.append("verify file list, sizes and SHA256")
    if plan.stop_kms:
        steps.append("start MSExchangeKMS again")
    return {
        "changed": True,
        "msg": "Would " + ", ".join(steps) + ".",
        "database_path": plan.database_path,
        "backup_path": plan.destination,
        "manifest": [{"name": item.name, "size": item.size} for item in plan.files],
        "files": len(plan.files),
        "bytes": plan.bytes,
        "free_bytes": plan.free_bytes,
        "required_bytes": plan.required_bytes,
        "kms_stop_required": plan.stop_kms,
        "kms_state_before": plan.kms_state,
        "kms_state_after": plan.kms_state,
        **kms_binary_record(plan),
    }


@dataclass(frozen=True)
class BackupOutcome:
    plan: BackupPlan  # the plan that was copied (taken again once KMS had stopped)
    manifest: tuple[ManifestEntry, ...]
    kms_state_before: str
    kms_state_after: str
    warnings: tuple[str, ...] = ()

    @property
    def verification(self) -> str:
        """Either "sha256" (file list, sizes and hashes) or "sizes" (no certutil on the host)."""
        hashed = all(entry.sha256 is not None for entry in self.manifest)
        return "sha256" if hashed else "sizes"


def outcome_result(outcome: BackupOutcome) -> dict[str, t.Any]:
    plan = outcome.plan
    if plan.stop_kms:
        service = "MSExchangeKMS was stopped for the copy and is running again"
    elif outcome.kms_state_before == "absent":
        service = "MSExchangeKMS is not installed on this host"
    else:
        service = f"MSExchangeKMS was {outcome.kms_state_before} and was not touched"
    proof = "sizes and SHA256" if outcome.verification == "sha256" else "sizes (no SHA256)"
    return {
        "changed": True,
        "msg": (
            f"Backed up {plan.summary()} from {plan.database_path} to {plan.destination}; the "
            f"copy has the same files, {proof}. {service}."
        ),
        "verification": outcome.verification,
        "database_path": plan.database_path,
        "backup_path": plan.destination,
        "manifest": [entry.to_json() for entry in outcome.manifest],
        "files": len(plan.files),
        "bytes": plan.bytes,
        "free_bytes": plan.free_bytes,
        "required_bytes": plan.required_bytes,
        "kms_stop_required": plan.stop_kms,
        "kms_state_before": outcome.kms_state_before,
        "kms_state_after": outcome.kms_state_after,
        **kms_binary_record(plan),
    }


def kms_binary_record(plan: BackupPlan) -> dict[str, t.Any]:
    """Kmserver.exe beside the database when the backup was taken: the KM Server move gate
    (exchops.kms.sp_parity, option backup_manifest) takes it as the build that last ran the KM
    database when the old server can no longer be read (KB Q259906). In the result and in the
    controller copy's manifest.json."""
    return {
        "kms_binary_build": plan.kms_binary,
        "kms_binary_path": kmserver_path(plan.database_path),
    }


# ---------------------------------------------------------------------------------------------
# Verify only: a KM database folder against a backup's manifest (the restore on the new server)

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# A running KMS keeps its ESE97 database open and writes its logs and checkpoint (KB Q274321), so
# its folder cannot equal an offline backup (KB Q190713 backs up and restores only with KMS
# stopped); a pending one is about to change it.
VERIFY_STATES = ("stopped", "absent")


class RestoreMismatch(BackupError):
    """The KM database folder differs from the backup's manifest (nothing was changed)."""

    def __init__(self, database_path: str, problems: Sequence[str]) -> None:
        shown = "; ".join(problems[:6])
        if len(problems) > 6:
            shown += f"; and {len(problems) - 6} more"
        super().__init__(
            f"the KM database folder {database_path} does not match the backup's manifest: "
            f"{shown}. Do not start MSExchangeKMS on it: with MSExchangeKMS stopped, delete the "
            f"files in {database_path} and restore the backup into it again (KB Q190713, "
            "Q198814), then run this check again"
        )
        self.problems = tuple(problems)


def manifest_from_option(entries: Sequence[t.Any]) -> tuple[ManifestEntry, ...]:
    """The `verify_against` option as manifest entries: each a dict with `name` (relative to the
    KM database folder), `size` (bytes) and `sha256` (hex, or null for a sizes-only backup), as
    kms_backup returns them. ValueError names the first entry that is not one."""
    if not entries:
        raise ValueError(
            "verify_against is empty. Give the manifest of the backup that was restored: the "
            "'manifest' a kms_backup task returned, or the one in the manifest.json of its "
            "controller copy"
        )
    manifest: list[ManifestEntry] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"verify_against[{index}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} is {entry!r}, not a dict with name, size and sha256")
        name, size, digest = entry.get("name"), entry.get("size"), entry.get("sha256")
        if not isinstance(name, str) or not name or name.startswith("\\") or ":" in name:
            raise ValueError(f"{where} has name {name!r}, not a path relative to the folder")
        if any(part in ("", ".", "..") for part in name.split("\\")):
            raise ValueError(f"{where} has name {name!r}, with an empty, '.' or '..' part")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"{where} ({name}) has size {size!r}, not a number of bytes")
        if digest is not None and not (
            isinstance(digest, str) and _SHA256_HEX.match(digest.lower())
        ):
            raise ValueError(f"{where} ({name}) has sha256 {digest!r}, not 64 hex digits")
        if name.casefold() in seen:
            raise ValueError(f"{where} names {name} a second time")
        seen.add(name.casefold())
        manifest.append(ManifestEntry(name, size, digest.lower() if digest else None))
    return tuple(manifest)


def refuse_unsettled_kms(database_path: str, kms_state: str) -> None:
    """BackupRefused unless MSExchangeKMS is stopped or not installed."""
    if kms_state in VERIFY_STATES:
        return
    raise BackupRefused(
        f"MSExchangeKMS is {kms_state.upper()}, so {database_path} is not checked: a running KM "
        "Server keeps its database open and writes its logs and checkpoint (ESE97, KB "
        "Q274321), so the folder cannot equal an offline backup (KB Q190713). Check a restore "
        "before MSExchangeKMS first starts on it: stop MSExchangeKMS (exchops.kms."
        "exchange_service), and restore the backup again if KMS already ran on it."
    )


def hashed_entries(manifest: Sequence[ManifestEntry]) -> tuple[ManifestEntry, ...]:
    """The entries whose SHA256 is compared on the host: non-empty, with a recorded digest."""
    return tuple(entry for entry in manifest if entry.size > 0 and entry.sha256 is not None)


def verify_restore(
    database_path: str,
    manifest: Sequence[ManifestEntry],
    found: TreeReading | None,
    hashes: dict[str, str],
    *,
    hash_errors: dict[str, str] | None = None,
    hashing: bool = True,
) -> None:
    """Nothing when the folder holds exactly the manifest's files with their sizes and (where
    the manifest and `hashing` have them) their SHA256; else RestoreMismatch naming every
    difference. A file the backup does not hold is a difference too: files a fresh install left
    beside the restored ones (KB Q198814 deletes them before the restore)."""
    if found is None:
        raise RestoreMismatch(database_path, ["the folder does not exist"])
    expected = TreeReading(tuple(FileItem(entry.name, entry.size) for entry in manifest), ())
    problems = compare_trees(expected, found, "the folder", "the backup")
    present = {item.name.casefold() for item in found.files}
    for entry in hashed_entries(manifest) if hashing else ():
        if entry.name.casefold() not in present:
            continue  # already named as missing
        digest = hashes.get(entry.name)
        if digest is None:
            why = (hash_errors or {}).get(entry.name, "no answer")
            problems.append(f"the SHA256 of {entry.name} could not be read ({why})")
        elif digest != entry.sha256:
            problems.append(
                f"{entry.name} differs: SHA256 {digest[:16]}... in the folder, "
                f"{(entry.sha256 or '')[:16]}... in the backup"
            )
    if problems:
        raise RestoreMismatch(database_path, problems)


def restore_result(
    database_path: str, manifest: Sequence[ManifestEntry], kms_state: str, hashing: bool
) -> dict[str, t.Any]:
    """What a verification that passed returns (changed=false)."""
    sha256 = hashing and all(entry.sha256 is not None for entry in manifest)
    proof = "sizes and SHA256" if sha256 else "sizes (no SHA256)"
    total = sum(entry.size for entry in manifest)
    return {
        "changed": False,
        "msg": (
            f"{database_path} matches the backup's manifest: the same {len(manifest)} files, "
            f"{proof}. MSExchangeKMS is {kms_state} and was not touched."
        ),
        "verification": "sha256" if sha256 else "sizes",
        "database_path": database_path,
        "manifest": [entry.to_json() for entry in manifest],
        "files": len(manifest),
        "bytes": total,
        "kms_state_before": kms_state,
        "kms_state_after": kms_state,
    }


# ---------------------------------------------------------------------------------------------
# The controller copy: each fetched file against the manifest


def check_fetched(entry: ManifestEntry, data: bytes) -> str | None:
    """Why the bytes fetched for `entry` are not its file (size or SHA256), or None."""
    if len(data) != entry.size:
        return f"{entry.name} arrived with {len(data)} bytes, not {entry.size}"
    digest = hashlib.sha256(data).hexdigest()
    if entry.sha256 is not None and digest != entry.sha256:
        return f"{entry.name} arrived with SHA256 {digest[:16]}..., not {entry.sha256[:16]}..."
    return None
