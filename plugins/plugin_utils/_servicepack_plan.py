# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of a service pack run (exchops.kms.exchange_service_pack), from readings already
taken: no I/O. `_servicepack` reads the host (through `_servicepack_probe`), runs update.exe and
words the task's result; this module says whether update.exe may run and must run
(`decide_install`, raising `Refusal`), how its run ended, from the versions read afterwards
(`classify`), and which start types changed (`watched_services`, `start_type_changes`).

- No unattended switch and no exit code of the 5.5 SP's update.exe is documented: switches and
  success exit codes are options, and success is judged afterwards from the versions (the
  registry build and Store.exe's file version) once update.exe has ended; the exit code and the
  setup log are supporting readings only (see "The outcome" below).
- Never downgrade: media older than the server or than Kmserver.exe is refused; so is media that
  is not the wanted build. update.exe fails when MSExchangeKMS's ImagePath carries a password
  (Q235418) or KM Server is half-installed (Q290226, Q196171); an SP must not run while
  MSExchangeKMS runs (Q190713, Q232609). Each refusal happens before anything runs.
- Nothing to do only when the registry build is the media's service pack and neither Store.exe
  (when readable: its file version shows the service pack installed, KB Q278518) nor Kmserver.exe
  is behind it: a registry that names the service pack over an earlier Store.exe is a service
  pack that did not complete, and it runs again.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass

from . import _errors as errors
from ._builds import Build, family_version, name_build, on_earlier_service_pack
from ._errors import StepError
from ._kms import KMS_SERVICE, from_the_cd, older_than_database
from ._rules import Values, first_rule
from ._winout import SetupRun

UPDATE_EXE = "update.exe"
EXCHANGE_SERVICE_PREFIX = "MSExchange"
# 3010 and 1641 are Windows' ERROR_SUCCESS_REBOOT_REQUIRED and ERROR_SUCCESS_REBOOT_INITIATED
# (https://learn.microsoft.com/windows/win32/debug/system-error-codes--1300-1699- and
# --3000-3999-), which Windows Installer returns. update.exe is not a Windows Installer package
# and no source gives its exit codes (docs/unsourced.md, U12): that it uses them alike is an
# assumption [I], honoured only when the operator lists them in success_exit_codes, and only
# once the versions prove the service pack in place.
REBOOT_EXIT_CODES = frozenset({3010, 1641})
OUTCOMES = (
    "ok",
    "ok_reboot_required",
    "failed",
    "still_running",
    "waiting_for_input",
    "unknown",
)
# Characters that cmd.exe would expand or treat as syntax inside update.exe's arguments.
_UNSAFE_ARGUMENT = re.compile(r'["%!\r\n\x00]')
TAIL_LINES = 20


class ServicePackError(StepError):
    """Something makes the run unsafe or impossible (_errors.StepError)."""


class Refusal(ServicePackError, errors.Refusal):
    """The plan refused to run update.exe; nothing was changed."""


# ---------------------------------------------------------------------------------------------
# update.exe and its arguments


def update_exe_path(media: str) -> str:
    """update.exe in the media folder (5.5: <kit>\\ENG\\SERVER\\SETUP\\I386, KB Q191013)."""
    return media.strip().rstrip("\\") + "\\" + UPDATE_EXE


def check_update_arguments(arguments: t.Sequence[str]) -> None:
    """Refuse arguments cmd.exe would change: quotes, % and ! (variable expansion), line ends."""
    for argument in arguments:
        if _UNSAFE_ARGUMENT.search(argument):
            raise ValueError(
                f"the argument {argument!r} holds a quote, %, ! or a line break, which cmd.exe "
                "would expand or split; pass switches without them"
            )
        if not argument.strip():
            raise ValueError("an empty argument was given; remove it")


# ---------------------------------------------------------------------------------------------
# Readings the decisions take


@dataclass(frozen=True)
class HostReadings:
    """What one round of reads found on the host."""

    facts: dict[str, t.Any]
    warnings: tuple[str, ...]
    server_build: Build | None
    install_path: str | None
    kms_installed: bool
    kms_parts: tuple[tuple[str, bool], ...]
    kms_binary: Build | None
    kms_state: str
    image_path_has_arguments: bool
    kms_image_path: str  # masked
    media_found: bool  # update.exe is in the media folder
    media_version: Build | None  # update.exe's file version, quoted only (docs/unsourced.md U2)
    update_pids: tuple[int, ...] | None  # None: tasklist is not available
    start_types: dict[str, str]
    # Store.exe's file version (None: not found or not readable) and the Setup key value the
    # server build was read from (NewestBuild, ServicePackBuild ...).
    store_version: Build | None = None
    build_from: str | None = None
    # The operator's statement of the build the media installs (option media_build), if any.
    stated_media_build: Build | None = None

    @property
    def kms_half_installed(self) -> bool:
        present = [here for _name, here in self.kms_parts]
        return any(present) and not all(present)

    @property
    def exchange_services(self) -> tuple[str, ...]:
        return tuple(
            sorted(
                name
                for name in self.start_types
                if name.upper().startswith(EXCHANGE_SERVICE_PREFIX.upper())
            )
        )


@dataclass(frozen=True)
class RunRecord:
    """The record an earlier run left on the host (`_servicepack_probe.run_record_command`):
    update.exe may still run, or ended after that run; these services wait to run again."""

    media_build: Build
    stopped: tuple[str, ...]
    kms_before: Build | None = None
    # The registry build and Store.exe's version before that run (None: not known, or a record
    # of an older release of this module).
    build_before: Build | None = None
    store_before: Build | None = None
    # Through a jump host: who starts update.exe (`operator`, `at_interactive`), and the ID of
    # this run's marker folders (at_interactive); empty for a run in this module's own shell.
    launch: str = ""
    run_id: str = ""


@dataclass(frozen=True)
class LogDetails:
    path: str
    size: int  # 0 when the log does not exist
    text: str | None  # read only after the run
    dependencies: dict[str, tuple[str, ...]]
    record: RunRecord | None = None


# ---------------------------------------------------------------------------------------------
# The plan: refusals and idempotence (builds compare as integer tuples, `Build.sp_key`)
#
# INSTALL_RULES are tried in order and the first whose predicate returns values decides: refuse
# (Refusal, nothing runs), skip (nothing to do) or install. INSTALL_MESSAGES words each from
# those values, plus {media} and {service}. Adding a refusal is adding one row to each and one
# predicate.

CaseT = t.TypeVar("CaseT")


@dataclass(frozen=True)
class Rule(t.Generic[CaseT]):
    """A row of an ordered rule table: the first rule whose predicate returns values decides."""

    id: str
    decides: str  # INSTALL_RULES: "refuse", "skip" or "install"; OUTCOME_RULES: an outcome
    applies: t.Callable[[CaseT], Values | None]


def describe(build: Build) -> str:
    """ "5.5.2650 (5.5 SP3)", "5.5.1960.8 (5.5 RTM)"."""
    shown = str(build) if build.revision else build.short
    return f"{shown} ({name_build(build).short})"


@dataclass(frozen=True)
class SpPlan:
    install: bool
    media_build: Build
    reason: str
    rule: str  # the id of the rule of INSTALL_RULES that decided


def _known(build: Build | None) -> Build:
    if build is None:
        raise AssertionError("a rule relied on a build that an earlier rule must have refused")
    return build


@dataclass(frozen=True)
class InstallCase:
    """What `decide_install` judges. `server` and `media_build` are known to the rules after the
    first two, which refuse a host or media without them."""

    readings: HostReadings
    media: str
    wanted: Build | None
    kms_may_run: bool
    # The build that last ran the KM database, when the caller knows it (kms_short_of).
    database: Build | None = None

    @property
    def server(self) -> Build:
        return _known(self.readings.server_build)

    @property
    def media_build(self) -> Build:
        """The operator's statement of the build the media installs: no source gives a way to
        read it from the kit (update.exe's file version included), so rules after
        `media_build_unstated` rest on the statement alone."""
        return _known(self.readings.stated_media_build)

    @property
    def kms_behind(self) -> bool:
        """KM Server is installed and its Kmserver.exe is one the service pack must raise."""
        binary = self.readings.kms_binary
        return (
            self.readings.kms_installed
            and binary is not None
            and kms_short_of(binary, self.media_build, self.database)
        )

    @property
    def store_behind(self) -> bool:
        """Store.exe, when readable, is on an earlier service pack than the media: a service pack
        that did not complete, whatever the registry says (KB Q278518)."""
        store = self.readings.store_version
        return store is not None and on_earlier_service_pack(store, self.media_build)

    def builds_seen(self) -> Values:
        return {"server": describe(self.server), "media_build": describe(self.media_build)}


def kms_is_open(readings: HostReadings) -> bool:
    """Whether MSExchangeKMS may have its database open (anything but stopped or absent)."""
    return readings.kms_installed and readings.kms_state not in ("stopped", "absent")


def not_exchange_55_or_2000(case: InstallCase) -> Values | None:
    server = case.readings.server_build
    if server is not None and server.major < 8:
        return None
    return {"found": f"Exchange {describe(server)}" if server else "no Exchange 4.0 - 2003 install"}


def media_missing(case: InstallCase) -> Values | None:
    return None if case.readings.media_found else {"where": update_exe_path(case.media)}


def media_build_unstated(case: InstallCase) -> Values | None:
    if case.readings.stated_media_build is not None:
        return None
    version = case.readings.media_version
    return {"version": f"{describe(version)}" if version else "unreadable"}


def media_build_disputed(case: InstallCase) -> Values | None:
    """update.exe's file version is another Exchange build than the statement's service pack.
    No source ties the two (docs/unsourced.md, U2), so this only ever refuses, never decides a
    build: a kit carrying another service pack's build is the likelier mistake than such a tie
    failing."""
    version, stated = case.readings.media_version, case.media_build
    if version is None or family_version(version) is None or version.sp_key == stated.sp_key:
        return None
    return {
        **case.builds_seen(),
        "version": describe(version),
        "stated_sp": name_build(stated).short,
    }


def other_exchange_version(case: InstallCase) -> Values | None:
    if case.media_build.family == case.server.family:
        return None
    return {**case.builds_seen(), "product": name_build(case.server).product}


def downgrades_server(case: InstallCase) -> Values | None:
    if case.media_build.sp_key >= case.server.sp_key:
        return None
    return {**case.builds_seen(), "server_sp": name_build(case.server).short}


def downgrades_kms_binaries(case: InstallCase) -> Values | None:
    binary = case.readings.kms_binary
    if binary is None or case.media_build.sp_key >= binary.sp_key:
        return None
    return {**case.builds_seen(), "binary": describe(binary), "binary_build": binary.short}


def not_the_wanted_build(case: InstallCase) -> Values | None:
    wanted = case.wanted
    if wanted is None or wanted.sp_key == case.media_build.sp_key:
        return None
    return {
        **case.builds_seen(),
        "wanted": describe(wanted),
        "wanted_sp": name_build(wanted).short,
        "media_short": case.media_build.short,
    }


def kms_binary_unknown(case: InstallCase) -> Values | None:
    unknown = case.readings.kms_installed and case.readings.kms_binary is None
    return case.builds_seen() if unknown else None


def already_on_media(case: InstallCase) -> Values | None:
    if case.server.sp_key != case.media_build.sp_key or case.kms_behind or case.store_behind:
        return None
    what = "Exchange and Kmserver.exe are" if case.readings.kms_installed else "Exchange is"
    return {**case.builds_seen(), "what": what}


def kms_half_installed(case: InstallCase) -> Values | None:
    readings = case.readings
    if not readings.kms_half_installed:
        return None
    return {
        "present": ", ".join(name for name, here in readings.kms_parts if here),
        "missing": ", ".join(name for name, here in readings.kms_parts if not here),
    }


def password_in_image_path(case: InstallCase) -> Values | None:
    readings = case.readings
    return {"image_path": readings.kms_image_path} if readings.image_path_has_arguments else None


def kms_running(case: InstallCase) -> Values | None:
    if not kms_is_open(case.readings) or case.kms_may_run:
        return None
    return {**case.builds_seen(), "state": case.readings.kms_state.replace("_", " ")}


def update_exe_running(case: InstallCase) -> Values | None:
    pids = case.readings.update_pids
    return {"pids": ", ".join(map(str, pids))} if pids else None


def behind_media(case: InstallCase) -> Values | None:
    reasons = []
    if case.server.sp_key != case.media_build.sp_key:
        reasons.append(f"Exchange is {describe(case.server)}")
    if case.store_behind:
        reasons.append(f"Store.exe is {describe(_known(case.readings.store_version))}")
    if case.kms_behind:
        reasons.append(f"Kmserver.exe is {describe(_known(case.readings.kms_binary))}")
    return {**case.builds_seen(), "reasons": " and ".join(reasons)}


# "refuse": raise Refusal, nothing runs; "skip": nothing to do; "install": run update.exe.
INSTALL_RULES: tuple[Rule[InstallCase], ...] = (
    # What the host runs and what the media holds: never a downgrade, never another SP.
    Rule("not_exchange_55_or_2000", "refuse", not_exchange_55_or_2000),
    Rule("media_missing", "refuse", media_missing),
    Rule("media_build_unstated", "refuse", media_build_unstated),
    Rule("media_build_disputed", "refuse", media_build_disputed),
    Rule("other_exchange_version", "refuse", other_exchange_version),
    Rule("downgrades_server", "refuse", downgrades_server),
    Rule("downgrades_kms_binaries", "refuse", downgrades_kms_binaries),
    Rule("not_the_wanted_build", "refuse", not_the_wanted_build),
    Rule("kms_binary_unknown", "refuse", kms_binary_unknown),
    Rule("already_on_media", "skip", already_on_media),
    # What would make a needed run fail or race (KB Q290226, Q196171, Q235418, Q190713).
    Rule("kms_half_installed", "refuse", kms_half_installed),
    Rule("password_in_image_path", "refuse", password_in_image_path),
    Rule("kms_running", "refuse", kms_running),
    Rule("update_exe_running", "refuse", update_exe_running),
    Rule("behind_media", "install", behind_media),
)

# str.format templates over the predicate's values, {media} and {service}.
INSTALL_MESSAGES: dict[str, str] = {
    "not_exchange_55_or_2000": (
        "found {found}. This module reapplies Exchange 5.5 / 2000 service packs with update.exe; "
        "later versions are updated with their own Setup. Run it only against the KM Server of "
        "an Exchange 5.5 or 2000 site."
    ),
    "media_missing": (
        "no update.exe at {where}. Set media to the folder of the extracted service pack kit "
        "that holds update.exe (5.5: <kit>\\ENG\\SERVER\\SETUP\\I386, KB Q191013)."
    ),
    "media_build_unstated": (
        "media_build is not set. No source gives a way to read the build a service pack kit "
        "installs (update.exe's file version, {version}, is not documented to be it), and "
        "without it a downgrade or another service pack than the one asked for cannot be ruled "
        "out. State the build the kit at {media} installs, from its name and readme, with "
        "media_build (role variable kms_remediate_sp_build), for example 5.5.2650 for the "
        "Exchange 5.5 SP3 kit (KB Q191013)."
    ),
    "media_build_disputed": (
        "media_build states that the media at {media} installs {media_build}, but its "
        "update.exe's file version is {version}. No source documents update.exe's version as "
        "the build a kit installs, yet a kit whose update.exe carries another service pack's "
        "build is most likely not the {stated_sp} kit, and this run must not install another "
        "service pack than the one you meant. Check the kit's name and readme, then point media "
        "at the {stated_sp} kit or correct media_build (role variable kms_remediate_sp_build)."
    ),
    "other_exchange_version": (
        "the media at {media} installs {media_build}, a service pack for another "
        "Exchange version than the server's {server}. Point media at a service pack kit for "
        "{product}."
    ),
    "downgrades_server": (
        "the media at {media} installs {media_build} but Exchange is already {server}: "
        "update.exe would downgrade the server, and a service pack older than the build that "
        "last ran the KM database does not fix event 5389 (KB Q259906). Use the media of "
        "{server_sp} or later."
    ),
    "downgrades_kms_binaries": (
        "the media at {media} installs {media_build} but Kmserver.exe is already {binary}: "
        "update.exe would downgrade the KM Server binaries below the build that may have last "
        "run the KM database (KB Q259906). Use media that installs {binary_build} or later."
    ),
    "not_the_wanted_build": (
        "the media at {media} installs {media_build} but build asks for {wanted}. "
        "Installing another service pack than the one asked for leaves the KM Server move unfixed (KB Q259906: both servers on the same "
        "service pack). Point media at the {wanted_sp} kit, or set build to {media_short} if "
        "that is the service pack you want."
    ),
    "kms_binary_unknown": (
        "KM Server is installed but Kmserver.exe's file version cannot be read (no wmic on the "
        "host?), so neither the need for the service pack nor its success can be proven. Read "
        "Kmserver.exe's version on the host (its Properties, Version tab) and reapply the "
        "service pack by hand if it is older than {media_build}."
    ),
    "already_on_media": "{what} already on {media_build}, the media's service pack",
    "kms_half_installed": (
        "KM Server is only partly installed (present: {present}; missing: {missing}). "
        "update.exe fails on such a host with 0xc0020002 (KB Q290226) or tries to upgrade a KM "
        "Server that is not there (KB Q196171). Repair or remove KM Server first, then run "
        "again."
    ),
    "password_in_image_path": (
        "the ImagePath of {service} has arguments after the program ({image_path}), such as the "
        "startup password. update.exe reads that path to find Kmserver.exe's version and fails "
        'with "The system cannot find the file specified." (KB Q235418). Remove everything '
        "after Kmserver.exe from ImagePath (HKLM\\SYSTEM\\CurrentControlSet\\Services\\"
        "{service}), give the password when starting the service, then run again."
    ),
    "kms_running": (
        "{service} is {state}. A service pack must not run while the KM Server has its database "
        "open (KB Q235978, Q190713). Back up the KM database and stop {service} "
        "(exchops.kms.kms_backup, exchops.kms.exchange_service with state=stopped), then run "
        "again to install {media_build}."
    ),
    "update_exe_running": (
        "update.exe is already running (PID {pids}). A second run would race the first one "
        "over the same files and registry values. Wait until it ends (watch the setup log), "
        "then run again: this module checks the versions and runs nothing when they already "
        "match."
    ),
    "behind_media": "{reasons}; the media installs {media_build}",
}


def install_rule(case: InstallCase) -> tuple[Rule[InstallCase], Values]:
    """The first rule of INSTALL_RULES that applies, with the values its wording needs."""
    return first_rule(INSTALL_RULES, case, "INSTALL_RULES")


def decide_install(
    readings: HostReadings,
    media: str,
    wanted: Build | None,
    kms_may_run: bool = False,
    database: Build | None = None,
) -> SpPlan:
    """Decide whether update.exe from `media` may run, must run, or need not run. Raises
    `Refusal` with a complete message when it must not. `kms_may_run` (check mode) lets a
    running MSExchangeKMS through: a plan predicts the run that follows the backup, which
    stops KMS; the caller warns about it. `database`: the build that last ran the KM database,
    when known (kms_short_of)."""
    case = InstallCase(readings, media, wanted, kms_may_run, database)
    rule, values = install_rule(case)
    text = INSTALL_MESSAGES[rule.id].format(media=media, service=KMS_SERVICE, **values)
    if rule.decides == "refuse":
        raise Refusal(text)
    return SpPlan(rule.decides == "install", case.media_build, text, rule.id)


# ---------------------------------------------------------------------------------------------
# The outcome
#
# Success is read from the host, never from what update.exe prints or returns: update.exe has
# ended (its command returned, or tasklist no longer lists it) and the re-read registry build
# (the Setup key, docs/registry.md) and Store.exe's file version are both on the media's service
# pack. Store.exe is the binary whose version each service pack is sourced to change: Q243604
# lists it for 5.5 RTM to SP3 (5.5.1960.6, 2232.11, 2448.8, 2650.23), Q278518 names it as the
# file that shows the level installed, and the Exchange Server Analyzer reads it for Exchange 2000
# (docs.microsoft.com exchange-server-analyzer aa995882). For 5.5 SP4 no KB lists the files: that
# Store.exe carries 2653 is inferred [I]. Reapplying the service pack replaces the KM Server
# binaries (Q235418: update.exe reads Kmserver.exe's version; Q259906: reapplying it fixes KMS),
# but no source lists the version each service pack leaves Kmserver.exe at (Q243604 shows SPs
# leave some binaries alone): so Kmserver.exe is asked only what KB Q259906 needs of it
# (kms_short_of): not older than the build that last ran the KM database when that is known,
# else no longer the Exchange CD's build.
# Neither update.exe's exit codes nor its log lines are documented (the SP readmes, Q191013 and
# Q198347, say only to run Update and follow the screen; its errors are dialogs, Q290226, Q202258,
# Q248445): both are supporting readings, quoted in the result but deciding nothing, except that
# a restart is asked for when the operator listed 3010 / 1641 in success_exit_codes (see
# REBOOT_EXIT_CODES). update.exe is interactive (Q191013, Q235978): a run that makes no progress
# while update.exe still runs is waiting at a prompt no one can see, and ends waiting_for_input.
#
# OUTCOME_RULES are tried in order; OUTCOME_MESSAGES words the remedy and the evidence (detail)
# of each; `decided_by` names the readings that decided.


@dataclass(frozen=True)
class SpOutcome:
    outcome: str  # one of OUTCOMES
    remedy: str
    detail: str  # one sentence on the evidence
    rule: str  # the id of the rule of OUTCOME_RULES that decided
    decided_by: tuple[str, ...] = ()  # the readings that decided, each with its value


def exit_code_text(code: int | None) -> str:
    if code is None:
        return "unknown (the connection to update.exe was lost)"
    return f"0x{code:08X}" if code >= 0x80000000 or code < 0 else str(code)


@dataclass(frozen=True)
class RunCase:
    """What `classify` judges: how the wait for update.exe ended (`still_running` past the
    timeout; `stalled` for `stalled_for` seconds without progress while it ran), its exit code
    (None when the connection to it was lost), the runs it appended to the setup log, and the
    host read again after it ended (`after`, None while it runs)."""

    media_build: Build
    exit_code: int | None
    success_exit_codes: t.Collection[int]
    runs: t.Sequence[SetupRun]
    still_running: bool
    process_running: bool | None
    after: HostReadings | None = None
    stalled: bool = False
    stalled_for: int = 0
    update_pid: int | None = None
    kms_before: Build | None = None  # Kmserver.exe's file version before the run
    database: Build | None = None  # the build that last ran the KM database, when known
    # The registry build and Store.exe's version before the run; None when not known (a later
    # run that finishes an earlier one's record).
    build_before: Build | None = None
    store_before: Build | None = None
    # A server behind a jump host: update.exe runs at the server's console (launch modes
    # operator, at_interactive), so no exit code or process is known. What shows its end, as a
    # clause (`console_ending`); None: update.exe ran in this module's own shell.
    console_end: str | None = None

    @property
    def kms_in_place(self) -> bool:
        """Kmserver.exe is no longer one the service pack must raise (kms_short_of); nothing is
        asked of a host that had no Kmserver.exe before the run."""
        if self.kms_before is None:
            return True
        after = self.after.kms_binary if self.after else None
        return after is not None and not kms_short_of(after, self.media_build, self.database)

    @property
    def moved(self) -> bool:
        """Whether any version read after the run differs from before it; without the earlier
        readings, whether any is on the media's service pack."""
        after = self.after
        if after is None:
            return False
        if self.build_before is None and self.store_before is None:
            return self.registry_on_media or self.store_on_media
        return (
            after.server_build != self.build_before
            or after.store_version != self.store_before
            or (self.kms_before is not None and after.kms_binary != self.kms_before)
        )

    @property
    def registry_on_media(self) -> bool:
        build = self.after.server_build if self.after else None
        return build is not None and build.sp_key == self.media_build.sp_key

    @property
    def store_on_media(self) -> bool:
        store = self.after.store_version if self.after else None
        return store is not None and store.sp_key == self.media_build.sp_key

    def ended_reading(self) -> str:
        if self.console_end is not None:
            return f"update.exe at the console ended: {self.console_end}"
        if self.exit_code is not None:
            return (
                f"update.exe ended: its command returned exit code {exit_code_text(self.exit_code)}"
            )
        return "update.exe ended: tasklist no longer lists it"

    def version_readings(self) -> tuple[str, ...]:
        after = self.after
        if after is None:
            return ()
        build = after.server_build
        registry = (
            f"registry: Exchange {describe(build)} ({after.build_from or 'Setup key'})"
            if build is not None
            else "registry: no Exchange build in the Setup key"
        )
        store = (
            f"Store.exe file version {after.store_version}"
            if after.store_version is not None
            else "Store.exe file version: not readable"
        )
        if self.kms_before is None:
            return (registry, store)
        kms = after.kms_binary
        return (
            registry,
            store,
            f"Kmserver.exe file version {kms if kms else 'not readable'} "
            f"(before the run: {self.kms_before})",
        )

    def values(self) -> Values:
        return {
            "media_build": describe(self.media_build),
            "readings": "; ".join(self.version_readings()),
        }


def moved_since(record: RunRecord, after: HostReadings) -> bool:
    """Whether a version read now differs from the run record's readings before the run (launch
    mode operator: the installer at the console has changed something; RunCase.moved)."""
    return RunCase(
        media_build=record.media_build,
        exit_code=None,
        success_exit_codes=(),
        runs=(),
        still_running=False,
        process_running=None,
        after=after,
        kms_before=record.kms_before,
        build_before=record.build_before,
        store_before=record.store_before,
    ).moved


def console_not_done(case: RunCase) -> Values | None:
    """update.exe at the console (a server behind a jump host): the wait ended (timeout, or polls
    lost) before its end was seen; it may not have run yet, or may still run."""
    if case.console_end is None or not case.still_running:
        return None
    return {"end": case.console_end}


def waiting_for_input(case: RunCase) -> Values | None:
    if not case.stalled:
        return None
    return {
        "seconds": case.stalled_for,
        "pid": case.update_pid if case.update_pid is not None else "unknown",
    }


def past_the_timeout(case: RunCase) -> Values | None:
    if not case.still_running:
        return None
    running = case.process_running
    return {"process_seen": "unknown" if running is None else ("yes" if running else "no")}


def update_exe_still_listed(case: RunCase) -> Values | None:
    pids = case.after.update_pids if case.after else None
    return {"pids": ", ".join(map(str, pids))} if pids else None


def _in_place(case: RunCase) -> bool:
    return case.registry_on_media and case.store_on_media and case.kms_in_place


def in_place_restart_asked(case: RunCase) -> Values | None:
    listed = case.exit_code in case.success_exit_codes
    if not (_in_place(case) and listed):
        return None
    return case.values() if case.exit_code in REBOOT_EXIT_CODES else None


def in_place(case: RunCase) -> Values | None:
    return case.values() if _in_place(case) else None


def store_not_readable(case: RunCase) -> Values | None:
    unread = case.after is not None and case.after.store_version is None
    return case.values() if unread and case.registry_on_media else None


def half_moved(case: RunCase) -> Values | None:
    return case.values() if case.moved else None


def not_moved(case: RunCase) -> Values | None:
    return case.values()


# Each rule decides one of OUTCOMES.
OUTCOME_RULES: tuple[Rule[RunCase], ...] = (
    # update.exe still runs: nothing may be judged, restarted or started under it.
    Rule("console_not_done", "waiting_for_input", console_not_done),
    Rule("waiting_for_input", "waiting_for_input", waiting_for_input),
    Rule("still_running", "still_running", past_the_timeout),
    Rule("update_exe_still_listed", "still_running", update_exe_still_listed),
    # update.exe has ended: the versions decide.
    Rule("in_place_restart_asked", "ok_reboot_required", in_place_restart_asked),
    Rule("in_place", "ok", in_place),
    Rule("store_not_readable", "unknown", store_not_readable),
    Rule("half_moved", "failed", half_moved),
    Rule("not_moved", "failed", not_moved),
)

_RUN_AGAIN = (
    "running this task again is safe: it installs only while the versions are not the "
    "media's, and never while update.exe runs."
)

# (remedy, detail): str.format templates over the predicate's values and {code}, the exit code.
OUTCOME_MESSAGES: dict[str, tuple[str, str]] = {
    "console_not_done": (
        "update.exe runs at the server's console here (KB Q191013: run Update and follow the "
        "instructions on the screen), and its end was not seen: the services this run stopped "
        "stay stopped and the run record stays on the server. Once the operator there has "
        "finished (or abandoned) the installer, run this task again: it polls again, judges the "
        "versions and starts the services it stopped again; it never starts update.exe twice.",
        "the wait ended before its end was seen ({end}).",
    ),
    "waiting_for_input": (
        "update.exe is an interactive installer (KB Q191013, Q235978) and is most likely "
        "waiting for an answer to a prompt; a process started through WinRS has no window on "
        "the console that anyone has shown, so it was left running: never end it while it "
        "copies files. Have an administrator on the host decide: watch the setup log and "
        "update.exe (tasklist), and end update.exe only to abandon the install. Then run this "
        "task again: it reads the versions, starts the services it stopped again and leaves "
        "MSExchangeKMS stopped unless the service pack is proven in place.",
        "update.exe (PID {pid}) still runs but made no progress for {seconds} s (no setup-log "
        "growth, no file changed in the Exchange BIN folder).",
    ),
    "still_running": (
        "update.exe is still running after the timeout and was left running (no unattended "
        "switch is documented for the 5.5 update.exe). Watch the setup log and update.exe "
        "(tasklist); when it has ended, run this task again: it reads the versions and does "
        "not start update.exe while one runs. Its WinRS shell is left open, since deleting it "
        "would end update.exe.",
        "update.exe was still running (process seen: {process_seen}); exit code not known yet.",
    ),
    "update_exe_still_listed": (
        "An update.exe (PID {pids}) still runs, so the versions cannot be judged yet. Wait "
        "until it ends, then run this task again.",
        "tasklist still lists update.exe (PID {pids}) after its command returned.",
    ),
    "in_place_restart_asked": (
        "The service pack is in place and update.exe's exit code {code} is listed in "
        "success_exit_codes as asking for a restart. Restart the server in a maintenance window "
        "(this module never restarts it), then start MSExchangeKMS with its startup password "
        "(exchops.kms.exchange_service).",
        "the versions are on {media_build}: {readings}; exit code {code}.",
    ),
    "in_place": (
        "None for the service pack. Start MSExchangeKMS with its startup password "
        "(exchops.kms.exchange_service) and check that it stays running.",
        "the versions are on {media_build}: {readings}.",
    ),
    "store_not_readable": (
        "The registry names the media's service pack but Store.exe's file version cannot be "
        "read (no wmic on the host?), so the service pack is not proven in place. Read "
        "Store.exe's version on the host (its Properties, Version tab, KB Q278518) before "
        "starting MSExchangeKMS; " + _RUN_AGAIN,
        "{readings}; the media installs {media_build}.",
    ),
    "half_moved": (
        "The service pack is only partly in place: do not start MSExchangeKMS on this server. "
        "Read the setup log on the host, fix the cause (KB Q235978: stop Performance Monitor, "
        "server monitors, SNMP and UPS software; Q177221), then run this task again; " + _RUN_AGAIN,
        "{readings}; the media installs {media_build}.",
    ),
    "not_moved": (
        "update.exe ended without putting the service pack in place (cancelled at a prompt, or "
        "an error shown in a dialog: KB Q290226, Q202258, Q248445). Read the setup log on the "
        "host, fix the cause, then run this task again; " + _RUN_AGAIN,
        "{readings}; the media installs {media_build}.",
    ),
}


def outcome_rule(case: RunCase) -> tuple[Rule[RunCase], Values]:
    """The first rule of OUTCOME_RULES that applies, with the values its wording needs."""
    return first_rule(OUTCOME_RULES, case, "OUTCOME_RULES")


def _decided_by(case: RunCase, rule: Rule[RunCase]) -> tuple[str, ...]:
    if rule.id == "console_not_done":
        return (
            "update.exe is run at the server's console",
            f"not seen before the wait ended: {case.console_end}",
        )
    if rule.id == "waiting_for_input":
        return (
            f"tasklist: update.exe running (PID {case.update_pid})",
            f"setup log and Exchange BIN folder: unchanged for {case.stalled_for} s",
        )
    if rule.id == "still_running":
        return ("update.exe's command had not returned after the timeout",)
    if rule.id == "update_exe_still_listed":
        return ("tasklist: update.exe running",)
    readings = (case.ended_reading(), *case.version_readings())
    if rule.id == "in_place_restart_asked":
        readings += (f"exit code {exit_code_text(case.exit_code)} listed in success_exit_codes",)
    return readings


def classify(case: RunCase) -> SpOutcome:
    """Classify a run of update.exe from the readings of `case` (see OUTCOME_RULES)."""
    rule, values = outcome_rule(case)
    remedy, detail = OUTCOME_MESSAGES[rule.id]
    values = {"code": exit_code_text(case.exit_code), **values}
    return SpOutcome(
        rule.decides,
        remedy.format(**values),
        detail.format(**values),
        rule.id,
        _decided_by(case, rule),
    )


def supporting_notes(case: RunCase) -> list[str]:
    """What the supporting readings (exit code, setup log) say, when it is worth a warning."""
    notes = []
    if case.exit_code is not None and case.exit_code not in case.success_exit_codes:
        notes.append(
            f"update.exe's exit code {exit_code_text(case.exit_code)} is not in "
            "success_exit_codes; its exit codes are not documented, so the outcome was decided "
            "from the versions."
        )
    ids = [number for run in case.runs for number in run.error_ids]
    if ids:
        notes.append(
            "the setup log quotes Setup error ID(s) "
            + ", ".join(f"0x{number:08x}" for number in ids)
            + " (KB Q290226, Q248445)."
        )
    return notes


def log_tail(runs: t.Sequence[SetupRun], limit: int = TAIL_LINES) -> list[str]:
    lines = [line for run in runs for line in run.lines]
    return lines[-limit:]


def kms_short_of(binary: Build, media_build: Build, database: Build | None) -> bool:
    """Kmserver.exe that a service pack must still raise: older than the build that last ran the
    KM database when that is known (KB Q259906), else still the Exchange CD's build under the
    service pack (KB Q259906 MORE INFORMATION, Q192044). No source lists the Kmserver.exe of each
    service pack (5.5 SP4 was a collection of fixes), so the media's own build is never demanded
    of it."""
    if database is not None:
        return older_than_database(binary, database)
    return from_the_cd(binary, media_build)


# ---------------------------------------------------------------------------------------------
# Start types
#
# Reported, never set back (docs/unsourced.md, U10): no source shows Exchange Setup changing start
# types, and one shows a 5.5 install leaving MSExchangeKMS "set to manual" on purpose (Q184420).
# Setting a start type back could undo a change Setup meant, so a change is a finding with the
# command that would set it back, for the operator to decide.


def watched_services(readings: HostReadings, details: LogDetails) -> tuple[str, ...]:
    """The Exchange services and the services they depend on (directly), as known to wmic."""
    names = {name.upper(): name for name in readings.start_types}
    watched = set(readings.exchange_services)
    for dependencies in details.dependencies.values():
        for dependency in dependencies:
            if dependency.upper() in names:
                watched.add(names[dependency.upper()])
    return tuple(sorted(watched))


def start_type_changes(
    before: t.Mapping[str, str], after: t.Mapping[str, str], watched: t.Iterable[str]
) -> dict[str, tuple[str, str]]:
    """{service: (start type before, start type now)} for each watched service that changed."""
    changes = {}
    for name in watched:
        if name in before and name in after and before[name] != after[name]:
            changes[name] = (before[name], after[name])
    return changes
