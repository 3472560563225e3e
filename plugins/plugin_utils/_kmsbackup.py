# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Back up the KM database folder (Kmsdata) on its host, the way KB Q190713 says, and prove the
copy: "1. Stop the Microsoft Exchange Key Management Server service. 2. Run backup or make a copy
of the Kmsdata directory. 3. ... verify that all files have been copied. 4. Restart the
Microsoft Exchange Key Management Server service."

The steps, each one WinRS command line (several commands share a line as `_probe` sections):

1. locate (only without `database_path`): `reg query HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup`;
   the database is `<Services>\\KMSDATA` (KB Q201271).
2. survey: `sc query MSExchangeKMS`, `dir /-c /s /a KMSDATA` (/a: hidden and system files too),
   `dir /-c /a DEST`, `dir /-c /a X:\\` (free bytes of the destination drive) -> `make_plan`,
   which refuses (BackupRefused: nothing was changed) a missing or empty Kmsdata, an existing
   destination, too little free space, or a running KMS without its startup password. A running
   KMS without startup_password costs one more read: `reg query
   HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer`, whose MasterPasswordPath says whether
   KMS reads its password from a startup disk (KB Q196129, `_kms.PasswordSource`); it can then
   be started again with no password, and the plan goes ahead.
3. stop (KMS running): `_service.ServiceControl.stop()`, as exchange_service stops it:
   `sc enumdepend MSExchangeKMS 64000` and `sc query`, each running dependent stopped first, then
   `sc stop MSExchangeKMS` and `sc query`, then `sc query` polled until STOPPED; a stop whose
   CHECKPOINT does not move for 30 s (or a longer WAIT_HINT) is hung and fails early. Then the
   survey again, one line: the listing taken with KMS stopped is the one copied, as stopping may
   flush the Jet logs and the checkpoint (the database runs under ESE97, KB Q274321). The plan
   is checked again and keeps the state KMS had before the backup.
4. copy: `xcopy SRC DST /E /I /H /K /Y /Q < NUL` as a command of its own, for its exact exit code.
5. verify: MSExchangeKMS's state, both trees listed again, `certutil -hashfile F SHA256` of every
   non-empty file on both sides (lines kept under COMMAND_LINE_BUDGET) -> `verify_copy`.
6. restore (KMS was running): `ServiceControl(..., watch=0).ensure("started")`, as
   exchange_service starts it: `sc query` and `sc qc`; the newest RecordNumber of MSExchangeKMS's
   events (wmic) with the state of the services it depends on; `sc start MSExchangeKMS
   "<password>"` and `sc query`, polled to RUNNING or STOPPED; then, once, its state and its new
   events. A new KMS failure event (5389, 5057, 5058, 5015, 5085) fails the start even while KMS
   runs, with the event's meaning and fix (_kms); a KMS that stopped is explained by its events
   or its exit codes.

Safety rules. Nothing here writes to, moves or deletes anything in the KM database folder: xcopy
only reads its source, and no command of the backup deletes anything anywhere (the
controller copy's one `del`, of a file it wrote itself, is described below). A failed or
unverified copy stays where it is and the failure names it, with a fresh listing of the KM
database to show it is unchanged: a delete aimed at the wrong path is the one way to lose the
keys. A stop that changed nothing (ServiceControl.acted false: sc refused it while every
service stayed RUNNING, or the line was lost before any `sc stop` was sent) fails saying so and
is not followed by a start. Every failure after a stop may have taken effect tries to start KMS
again, except while it is still STOP_PENDING: a start would only queue behind the hung stop. The
startup password appears only on the `sc start` line (the shell masks it in -vvvv output) and
never in a message.

The two more steps a KM Server move needs (KB Q154531), the check of a restore and the
verified copy on the controller, are in `_kmsmove`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import typing as t
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from ._kms import KMS_SERVER_KEY, KMS_SERVICE, KMSDATA_FOLDER, PasswordSource, password_source
from ._kmsbackup_plan import (
    BackupError,
    BackupOutcome,
    BackupPlan,
    BackupRefused,
    FileItem,
    ManifestEntry,
    Survey,
    TreeReading,
    VerificationFailed,
    check_destination,
    check_host_path,
    compare_trees,
    default_destination,
    drive_root,
    is_under,
    kmserver_path,
    make_plan,
    outcome_result,
    verify_copy,
)
from ._poll import SYSTEM_CLOCK, Clock
from ._probe import (
    SETUP_KEY_LEGACY,
    Sections,
    reg_query,
    run_sections,
    sc,
    section,
    shell_path,
    wmic_file_version,
)
from ._reach import Reach, remote_of, remote_refusal, sections_refusal
from ._service import ServiceControl, ServiceError
from ._winout import (
    CommandFailed,
    DirTree,
    ParseError,
    ScFailure,
    ServiceStatus,
    ToolMissing,
    WmiFailed,
    XcopyResult,
    parse_certutil_hash,
    parse_dir,
    parse_dir_tree,
    parse_reg_query,
    parse_sc_query,
    parse_wmic_file_version,
    parse_xcopy,
)
from ._winrs import CommandOutput, WinrsError

# xcopy: /E every subfolder, empty ones too; /I the destination is a folder; /H hidden and
# system files too; /K keep attributes (read-only); /Y never prompt; /Q no file names. `< NUL`:
# a WinRS shell has no console, and xcopy must find end-of-input rather than wait for a key.
XCOPY_SWITCHES = "/E /I /H /K /Y /Q"


class BackupFailed(BackupError):
    """Failed after something was changed (KMS stopped, a copy started). `result` holds what a
    task result should still say (backup_path, kms_state_before / after, ...)."""

    def __init__(self, message: str, result: dict[str, t.Any]) -> None:
        super().__init__(message, result, changed=True)


class CopyFailed(BackupError):
    def __init__(self, source: str, destination: str, xcopy: XcopyResult, planned: int) -> None:
        said = "; ".join(xcopy.messages) or "no message"
        copied = "an unknown number" if xcopy.copied is None else str(xcopy.copied)
        super().__init__(
            f"xcopy could not copy {source} to {destination}: {said} (exit code "
            f"{xcopy.exit_code}: {xcopy.meaning}); it copied {copied} of {planned} files"
        )
        self.xcopy = xcopy


class KmsNotControlled(BackupError):
    """MSExchangeKMS did not do what was asked (stop, start)."""


class StopNotFinished(KmsNotControlled):
    """`sc stop` was accepted but MSExchangeKMS did not reach STOPPED; `state` is its last one."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.state = state


# ---------------------------------------------------------------------------------------------
# Command lines


def locate_line(remote: str | None = None) -> str:
    return section("setup", reg_query(SETUP_KEY_LEGACY, remote))


def kms_query_section(name: str = "kms", remote: str | None = None) -> str:
    return section(name, sc("query", KMS_SERVICE, remote))


def tree_section(name: str, folder: str) -> str:
    # /a: hidden and system files too; /s: every subfolder; /-c: sizes without separators.
    return section(name, f'dir /-c /s /a "{folder}"')


def survey_sections(database_path: str, destination: str, remote: str | None = None) -> list[str]:
    """The survey's sections; REMOTE names the server when the shell runs on its jump host (the
    paths are the server's: `shell_path` turns them into admin-share paths there)."""
    sections = [
        kms_query_section(remote=remote),
        tree_section("source", shell_path(database_path, remote)),
        section("target", f'dir /-c /a "{shell_path(destination, remote)}"'),
        # The root, unquoted: a quoted "C:\" would end in an escaped quote (CommandLineToArgvW).
        section("volume", f"dir /-c /a {shell_path(drive_root(destination), remote)}"),
    ]
    kmserver = kmserver_path(database_path)
    if kmserver is not None:  # None: no source says where it is for this folder
        sections.append(section("kmserver", wmic_file_version(kmserver, remote)))
    return sections


def copy_line(database_path: str, destination: str, remote: str | None = None) -> str:
    """xcopy of the server's DATABASE_PATH to DESTINATION; from a jump host both are admin-share
    paths, and the data streams through the jump host."""
    source, target = shell_path(database_path, remote), shell_path(destination, remote)
    return f'xcopy "{source}" "{target}" {XCOPY_SWITCHES} < NUL'


def hash_section(name: str, path: str) -> str:
    return section(name, f'certutil -hashfile "{path}" SHA256')


def verify_sections(
    plan: BackupPlan, remote: str | None = None
) -> tuple[list[str], dict[str, str]]:
    """The verification sections, and which file each hash section reads ("src_sha_0" ->
    "Kmsmdb.edb"; the copy's as "dst_sha_0"). From a jump host, certutil runs there and reads
    the server's files through its admin share."""
    source, copy = shell_path(plan.database_path, remote), shell_path(plan.destination, remote)
    parts = [
        kms_query_section(remote=remote),
        tree_section("source", source),
        tree_section("copy", copy),
    ]
    names: dict[str, str] = {}
    for index, item in enumerate(plan.files):
        if item.size == 0:
            continue
        for prefix, folder in (("src", source), ("dst", copy)):
            name = f"{prefix}_sha_{index}"
            names[name] = item.name
            parts.append(hash_section(name, f"{folder}\\{item.name}"))
    return parts, names


# ---------------------------------------------------------------------------------------------
# Readings


def read_services_folder(sections: Sections) -> str | None:
    """The `Services` value of the Exchange Setup key (the Exchange folder), or None."""
    query = parse_reg_query(
        *sections.need("setup").streams(), section="setup", key=SETUP_KEY_LEGACY
    )
    value = query.value(SETUP_KEY_LEGACY, "Services") if query.found else None
    if value is None or not isinstance(value.data, str) or not value.data.strip():
        return None
    return value.data


def read_kms_status(sections: Sections, name: str = "kms") -> ServiceStatus | None:
    """MSExchangeKMS's status, None when the service does not exist. Other sc failures
    (access denied ...) raise CommandFailed."""
    answer = parse_sc_query(*sections.need(name).streams(), section=name)
    if isinstance(answer, ScFailure):
        if answer.service_missing:
            return None
        raise CommandFailed(
            name, f"[SC] {answer.operation} FAILED {answer.error}: {answer.message}", answer.error
        )
    return answer


def read_kms_state(sections: Sections, name: str = "kms") -> str:
    status = read_kms_status(sections, name)
    return "absent" if status is None else status.state


def tree_reading(tree: DirTree, root: str, name: str) -> TreeReading:
    """Files and subfolders of a `dir /s` listing, relative to `root`."""
    files: list[FileItem] = []
    folders: list[str] = []
    for folder in tree.folders:
        directory = (folder.directory or "").rstrip("\\")
        if directory.casefold() == root.casefold():
            relative = ""
        elif is_under(directory, root):
            relative = directory[len(root) + 1 :]
            folders.append(relative)
        else:
            raise ParseError(name, f"the listing shows {directory}, which is not under {root}")
        for entry in folder.files:
            files.append(
                FileItem(f"{relative}\\{entry.name}" if relative else entry.name, entry.size or 0)
            )
    return TreeReading(tuple(files), tuple(folders))


def read_tree(sections: Sections, name: str, root: str) -> tuple[TreeReading | None, bool]:
    """(reading, is_file): None when `root` does not exist; is_file when it names a file."""
    tree = parse_dir_tree(*sections.need(name).streams(dir_output=True), section=name)
    if not tree.found:
        return None, False
    if (tree.root or "").rstrip("\\").casefold() != root.casefold():
        return None, True  # `dir /s FILE` lists the folders holding files of that name
    return tree_reading(tree, root, name), False


def read_survey(sections: Sections, database_path: str, remote: str | None = None) -> Survey:
    source, source_is_file = read_tree(sections, "source", shell_path(database_path, remote))
    target = parse_dir(*sections.need("target").streams(dir_output=True), section="target")
    volume = parse_dir(*sections.need("volume").streams(dir_output=True), section="volume")
    return Survey(
        kms_state=read_kms_state(sections),
        source=source,
        source_is_file=source_is_file,
        destination_exists=target.found,
        drive_found=volume.found,
        free_bytes=volume.free_bytes if volume.found else None,
        kms_binary=read_kmserver_version(sections),
    )


def read_kmserver_version(sections: Sections) -> str | None:
    """Kmserver.exe's file version, None when the file or wmic is missing (Windows 2000 and NT
    4.0 have no wmic, docs/windows-output.md#which-tool-exists) or its place is unknown
    (`kmserver_path`): the backup is made either way."""
    if "kmserver" not in sections:
        return None
    try:
        return parse_wmic_file_version(*sections.need("kmserver").streams(), section="kmserver")
    except (ToolMissing, WmiFailed):
        # WMI may not answer from a jump host either (NT 4.0 without WMI core, KB Q219378).
        return None


def read_hash(sections: Sections, name: str) -> str:
    return parse_certutil_hash(*sections.need(name).streams(), section=name)


def refuse_unreachable(reach: Reach | None, sections: Sections) -> None:
    """BackupRefused (nothing was changed) when REACH's jump host could not reach its server
    with a command of SECTIONS (_reach.remote_refusal). Kmserver.exe's version is left out: WMI
    that does not answer (NT 4.0 without WMI core, KB Q219378) leaves it unknown, and the backup
    needs only the registry, sc and the admin share."""
    refusal = sections_refusal(reach, sections, skip=lambda name: name == "kmserver")
    if refusal is not None:
        raise BackupRefused(refusal)


# ---------------------------------------------------------------------------------------------
# Running it on a host

Run = Callable[[str], CommandOutput]


def locate_database(run: Run, log: Callable[[str], None], reach: Reach | None = None) -> str:
    """The KM database folder from the registry: Exchange's Services folder plus KMSDATA (KB
    Q201271); BackupRefused when it is not known or REACH's jump host cannot read it."""
    log("reading the Exchange folder from HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup")
    sections = run_sections(run, [locate_line(reach.remote if reach else None)])
    refuse_unreachable(reach, sections)
    services = read_services_folder(sections)
    if services is None:
        raise BackupRefused(
            "the KM database folder is not known: HKLM\\SOFTWARE\\Microsoft\\Exchange\\"
            "Setup has no Services value, so Exchange 4.0-2003 is not installed here "
            "or its Setup key is damaged. Set database_path to the folder that holds "
            "Kmsmdb.edb (such as C:\\EXCHSRVR\\KMSDATA)."
        )
    try:
        return check_host_path(
            "the Services value of HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup",
            services.rstrip("\\") + "\\" + KMSDATA_FOLDER,
        )
    except ValueError as exc:
        raise BackupRefused(f"{exc}. Set database_path to the KM database folder.") from None


class Restored(t.NamedTuple):
    """MSExchangeKMS after the backup: its state, a sentence saying so, and whether it is back
    as it was (a KMS that was running runs again and logged no new failure event)."""

    state: str
    note: str
    as_before: bool = True


class KmsBackup:
    """One backup on one host, through `run` (WinrsShell.run: one command line, its output).

    `plan()` only reads. `execute(plan)` changes the host and raises BackupRefused (nothing
    changed), or BackupFailed (something changed: the message says what, where the copy is and
    in which state MSExchangeKMS was left).
    """

    def __init__(
        self,
        run: Run,
        *,
        database_path: str = "",
        destination: str = "",
        startup_password: str = "",
        timeout: int = 600,
        now: datetime,
        log: Callable[[str], None] = lambda message: None,
        clock: Clock = SYSTEM_CLOCK,
        reach: Reach | None = None,
    ) -> None:
        """`reach`, when the shell runs on the server's jump host: the commands then name the
        server, and its paths are read through its admin share (`shell_path`)."""
        self._run = run
        self._reach = reach
        self._remote = remote_of(reach)
        self._database_path = database_path
        self._destination = destination
        self._password = startup_password
        self._timeout = timeout
        self._now = now
        self._log = log
        self._clock = clock
        self._from_registry = not database_path
        self._state_after_copy: str | None = None
        self._stopper: ServiceControl | None = None
        self._warnings: list[str] = []

    def _sections(self, parts: Sequence[str]) -> Sections:
        return run_sections(self._run, parts)

    def _at(self, path: str) -> str:
        """PATH, a path on the server, as the shell sees it (_probe.shell_path)."""
        return shell_path(path, self._remote)

    # -- reading ------------------------------------------------------------------------------

    def plan(self) -> BackupPlan:
        database_path = self._database_path
        if not database_path:
            database_path = locate_database(self._run, self._log, self._reach)
            self._database_path = database_path
        destination = self._destination or default_destination(database_path, self._now)
        self._destination = destination
        check_destination(database_path, destination)
        self._log(f"surveying {database_path}, {destination} and MSExchangeKMS")
        sections = self._sections(survey_sections(database_path, destination, self._remote))
        refuse_unreachable(self._reach, sections)
        survey = read_survey(sections, database_path, self._remote)
        can_start = bool(self._password)
        if survey.kms_state == "running" and not can_start:
            can_start = self._read_password_source().disk
        return make_plan(
            survey,
            database_path,
            destination,
            have_password=can_start,
            from_registry=self._from_registry,
        )

    def _read_password_source(self) -> PasswordSource:
        """Where KMS takes its startup password from (KB Q196129): a startup disk lets it start
        again without startup_password."""
        self._log(f"reading where MSExchangeKMS takes its startup password from ({KMS_SERVER_KEY})")
        part = self._sections(
            [section("kms_server", reg_query(KMS_SERVER_KEY, self._remote))]
        ).need("kms_server")
        return password_source(
            parse_reg_query(*part.streams(), section=part.name, key=KMS_SERVER_KEY)
        )

    # -- changing -------------------------------------------------------------------------------

    def execute(self, plan: BackupPlan) -> BackupOutcome:
        before = plan.kms_state
        current = plan
        copying = False
        try:
            if plan.stop_kms:
                self._stop_kms()
                current = self._plan_again(plan)
            copying = True
            self._copy(current)
            manifest, checked = self._verify(current)
        except BackupRefused:
            raise  # sc refused to stop KMS: nothing was changed
        except (BackupError, ValueError, WinrsError) as exc:
            if self._stopper is not None and not self._stopper.acted:
                raise  # lost or unreadable before sc stop was sent: nothing was changed
            # Including a connection lost right after `sc stop` was sent: KMS may be stopping.
            raise self._failure(current, before, exc, copying) from None
        restored = self._restore(before, seen=self._state_after_copy)
        warnings = (*self._warnings, *checked)
        outcome = BackupOutcome(current, manifest, before, restored.state, warnings)
        if not restored.as_before:
            result = outcome_result(outcome)
            del result["msg"]
            proof = "SHA256" if result["verification"] == "sha256" else "sizes"
            raise BackupFailed(
                f"the backup in {current.destination} is complete and verified "
                f"({current.summary()}, same {proof}). {restored.note}",
                result,
            )
        return outcome

    def _stop_kms(self) -> None:
        """Stop MSExchangeKMS the way exchange_service does (ServiceControl.stop: the services
        that depend on it first, each waited for, a stop whose CHECKPOINT does not move is hung).
        BackupRefused when nothing was changed; StopNotFinished with its last state when the
        stop was sent but did not end in STOPPED."""
        self._log("stopping MSExchangeKMS (KB Q190713: the KM database is copied offline)")
        control = self._service_control()
        self._stopper = control
        try:
            control.stop()
        except ServiceError as exc:
            if not control.acted:
                raise BackupRefused(
                    "MSExchangeKMS could not be stopped, and the KM database is copied only with "
                    f"KMS stopped (KB Q190713). {exc}"
                ) from None
            raise StopNotFinished(str(exc), control.progress.state or "unknown") from None
        stopped = control.progress.dependents_stopped
        if stopped:
            self._warnings.append(
                f"stopping MSExchangeKMS stopped {', '.join(stopped)}, which depend on it; they "
                "were not started again. Start them with exchops.kms.exchange_service."
            )

    def _plan_again(self, plan: BackupPlan) -> BackupPlan:
        """The survey again, with KMS stopped (one round trip): the listing copied."""
        self._log("MSExchangeKMS is stopped; listing the KM database again")
        survey = read_survey(
            self._sections(survey_sections(plan.database_path, plan.destination, self._remote)),
            plan.database_path,
            self._remote,
        )
        if survey.kms_state != "stopped":
            raise StopNotFinished(
                f"MSExchangeKMS stopped, but the listing taken next shows it "
                f"{survey.kms_state.upper()}: something else started it while the backup ran",
                survey.kms_state,
            )
        try:
            again = make_plan(survey, plan.database_path, plan.destination, have_password=True)
        except BackupRefused as exc:
            raise BackupError(f"once MSExchangeKMS had stopped, {exc}") from None
        # The plan keeps the state KMS had before the backup: the one to restore.
        return replace(again, kms_state=plan.kms_state)

    def _service_control(self, **options: t.Any) -> ServiceControl:
        return ServiceControl(
            self._run,
            KMS_SERVICE,
            timeout=self._timeout,
            clock=self._clock,
            log=self._log,
            reach=self._reach,
            **options,
        )

    def _copy(self, plan: BackupPlan) -> None:
        self._log(f"copying {plan.summary()} from {plan.database_path} to {plan.destination}")
        output = self._run(copy_line(plan.database_path, plan.destination, self._remote))
        xcopy = parse_xcopy(output.stdout, output.stderr, output.exit_code)
        if not xcopy.ok:
            failure = CopyFailed(plan.database_path, plan.destination, xcopy, len(plan.files))
            refusal = remote_refusal(self._reach, output.stdout + output.stderr)
            if refusal is not None:
                raise BackupError(f"{failure}: {refusal.rstrip('.')}") from None
            raise failure

    def _verify(self, plan: BackupPlan) -> tuple[tuple[ManifestEntry, ...], tuple[str, ...]]:
        """(manifest, warnings)."""
        self._log(f"verifying {plan.destination}: file list, sizes and SHA256 on both sides")
        parts, hashed = verify_sections(plan, self._remote)
        sections = self._sections(parts)
        state = read_kms_state(sections)
        self._state_after_copy = state
        if state not in ("stopped", "absent"):
            raise VerificationFailed(
                plan.destination,
                [
                    f"MSExchangeKMS is {state.upper()} after the copy: something started it "
                    "while the KM database was being copied, so the copy may not be consistent"
                ],
            )
        source_after, _is_file = read_tree(sections, "source", self._at(plan.database_path))
        copy, _copy_is_file = read_tree(sections, "copy", self._at(plan.destination))
        hashes: dict[str, dict[str, str]] = {"source": {}, "copy": {}}
        errors: dict[str, str] = {}
        missing_tool: str | None = None
        for name, file_name in hashed.items():
            side = "source" if name.startswith("src_") else "copy"
            try:
                hashes[side][file_name] = read_hash(sections, name)
            except ToolMissing as exc:
                missing_tool = exc.tool
            except ParseError as exc:
                errors[f"{side}:{file_name}"] = str(exc)  # verify_copy names the file
        if missing_tool is None:
            manifest = verify_copy(
                plan, source_after, copy, hashes["source"], hashes["copy"], hash_errors=errors
            )
            return manifest, ()
        # Windows 2000 and NT 4.0 have no certutil: Q190713's "verify that all files have been
        # copied" is then the file list and the sizes, and the operator is told so.
        manifest = verify_copy(plan, source_after, copy, {}, {}, hashing=False)
        return manifest, (
            f"'{missing_tool}' is not available on this host (Windows 2000 and NT 4.0 have no "
            f"certutil), so the copy in {plan.destination} was verified by its file list and "
            "sizes only, not by SHA256. Compare the files byte by byte (fc /b) before relying "
            "on it.",
        )

    # -- restoring ------------------------------------------------------------------------------

    def _restore(self, before: str, seen: str | None = None) -> Restored:
        """Put MSExchangeKMS back as it was. `seen` is a state just read (by the verification),
        which spares a round trip."""
        if before == "running":
            return self._start_kms()
        try:
            state = seen or read_kms_state(self._sections([kms_query_section(remote=self._remote)]))
        except (ValueError, WinrsError):
            state = "unknown"
        if before == "absent" and state == "absent":
            return Restored(state, "MSExchangeKMS is not installed on this host.")
        return Restored(
            state,
            f"MSExchangeKMS was {before.upper()} before the backup and was not started "
            f"(it is {state.upper()}).",
        )

    def _start_kms(self) -> Restored:
        """Start MSExchangeKMS as exchange_service does (ServiceControl.ensure("started")), with
        watch=0: its state and its new KMS failure events are checked once, right after
        RUNNING."""
        control = self._service_control(startup_password=self._password, watch=0)
        try:
            control.ensure("started")
        except ServiceError as exc:
            state = control.progress.state or "unknown"
            # Running with new failure events is not "did not start": say what the host shows.
            outcome = (
                "started again, with failures" if state == "running" else "did not start again"
            )
            return Restored(
                state,
                f"MSExchangeKMS was RUNNING before the backup and {outcome}: {exc}",
                as_before=False,
            )
        except (ValueError, WinrsError) as exc:
            return Restored(
                "unknown",
                "MSExchangeKMS was RUNNING before the backup but could not be started again: "
                f"{exc}. Start it with exchops.kms.exchange_service and its startup_password.",
                as_before=False,
            )
        self._warnings += control.progress.warnings
        return Restored(
            "running", "MSExchangeKMS was RUNNING before the backup and is RUNNING again."
        )

    def _describe_copy(self, plan: BackupPlan) -> str:
        """A fresh look at the copy and the KM database after a failure."""
        try:
            copy_root, source_root = self._at(plan.destination), self._at(plan.database_path)
            sections = self._sections(
                [tree_section("copy", copy_root), tree_section("source", source_root)]
            )
            copy, _copy_is_file = read_tree(sections, "copy", copy_root)
            source, _source_is_file = read_tree(sections, "source", source_root)
        except (ValueError, WinrsError) as exc:
            return (
                f"Anything copied is in {plan.destination}; it could not be listed ({exc}). It "
                f"is not a usable backup. The KM database in {plan.database_path} was only read."
            )
        delete = (
            f"it is NOT a usable backup; delete that folder (never the KM database folder "
            f"{plan.database_path}) before the next run."
        )
        if copy is None:
            partial = f"Nothing was left in {plan.destination}."
        elif len(copy.files) < len(plan.files) or copy.bytes < plan.bytes:
            partial = (
                f"The partial copy is in {plan.destination} ({len(copy.files)} of "
                f"{len(plan.files)} files, {copy.bytes} of {plan.bytes} bytes): {delete}"
            )
        else:
            partial = (
                f"The copy is in {plan.destination} ({len(copy.files)} files, {copy.bytes} "
                f"bytes), but {delete}"
            )
        planned = TreeReading(plan.files, plan.folders)
        changes = (
            ["the folder is gone"]
            if source is None
            else compare_trees(
                planned, source, "the KM database now", "its listing before the copy"
            )
        )
        if changes:
            original = (
                f"WARNING: the KM database in {plan.database_path} differs from its listing "
                f"before the copy ({'; '.join(changes[:4])}); this backup only read it, so "
                "something else changed it. Keep the KMS startup password and your last good "
                "backup at hand."
            )
        else:
            original = (
                f"The KM database in {plan.database_path} was only read and still holds its "
                f"{len(plan.files)} files with the same sizes."
            )
        return f"{partial} {original}"

    def _failure(
        self, plan: BackupPlan, before: str, exc: BaseException, copying: bool
    ) -> BackupFailed:
        if isinstance(exc, WinrsError):
            what = f"the connection failed during the backup: {exc}"
        elif isinstance(exc, ValueError):
            what = (
                f"the host answered in an unexpected form during the backup ({exc}); run with "
                "-vvvv to see the commands and report it"
            )
        else:
            what = str(exc)
        parts = [what.rstrip(".") + "."]
        parts.append(self._describe_copy(plan) if copying else "Nothing was copied.")
        if isinstance(exc, StopNotFinished) and exc.state == "stop_pending":
            # A start cannot succeed before the stop ends, and would only queue behind it. What
            # to do about the hung process is ServiceControl's advice, already in `what`.
            after, note = exc.state, (
                f"MSExchangeKMS was {before.upper()} before the backup and is still STOP_PENDING, "
                "so it was not started again: a start would only queue behind the stop. Once sc "
                "query MSExchangeKMS shows it STOPPED, run the backup again."
            )
        else:
            after, note, _as_before = self._restore(before)
        parts.append(note)
        return BackupFailed(
            " ".join(parts),
            {
                "changed": True,
                "database_path": plan.database_path,
                "backup_path": plan.destination if copying else None,
                "kms_stop_required": plan.stop_kms,
                "kms_state_before": before,
                "kms_state_after": after,
            },
        )
