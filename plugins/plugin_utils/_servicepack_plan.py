# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of a service pack run (exchops.kms.exchange_service_pack), from readings already
taken: no I/O. `_servicepack` reads the host (through `_servicepack_probe`), runs update.exe and
words the task's result; this module says whether update.exe may run and must run
(`decide_install`, raising `Refusal`), how its run ended (`classify`), whether the versions are
in place after it (`verify`), and which start types Setup changed (`watched_services`,
`start_type_changes`).

- No unattended switch and no exit code of the 5.5 SP's update.exe is documented: switches and
  success exit codes are options, and success is judged afterwards from the versions (registry
  NewestBuild and Kmserver.exe's file version) and from what the run appended to the setup log
  (Q158545), never from the exit code alone.
- Never downgrade: media older than the server or than Kmserver.exe is refused; so is media that
  is not the wanted build. update.exe fails when MSExchangeKMS's ImagePath carries a password
  (Q235418) or KM Server is half-installed (Q290226, Q196171); an SP must not run while
  MSExchangeKMS runs (Q190713, Q232609). Each refusal happens before anything runs.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass

from . import _errors as errors
from ._builds import Build, name_build
from ._errors import StepError
from ._kms import KMS_SERVICE, from_the_cd, older_than_database
from ._winout import SetupRun

UPDATE_EXE = "update.exe"
EXCHANGE_SERVICE_PREFIX = "MSExchange"
# Windows Installer's ERROR_SUCCESS_REBOOT_REQUIRED / ERROR_SUCCESS_REBOOT_INITIATED: not
# documented for update.exe; honoured only when listed in success_exit_codes.
REBOOT_EXIT_CODES = frozenset({3010, 1641})
OUTCOMES = ("ok", "ok_reboot_required", "failed", "still_running", "unknown")
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
    media_version: Build | None
    update_pids: tuple[int, ...] | None  # None: tasklist is not available
    start_types: dict[str, str]

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
class LogDetails:
    path: str
    size: int  # 0 when the log does not exist
    text: str | None  # read only after the run
    dependencies: dict[str, tuple[str, ...]]


# ---------------------------------------------------------------------------------------------
# The plan: refusals and idempotence (builds compare as integer tuples, `Build.sp_key`)
#
# INSTALL_RULES are tried in order and the first whose predicate returns values decides: refuse
# (Refusal, nothing runs), skip (nothing to do) or install. INSTALL_MESSAGES words each from
# those values, plus {media} and {service}. Adding a refusal is adding one row to each and one
# predicate.

Values = dict[str, t.Any]
CaseT = t.TypeVar("CaseT")


@dataclass(frozen=True)
class Rule(t.Generic[CaseT]):
    """A row of an ordered rule table: the first rule whose predicate returns values decides."""

    id: str
    decides: str  # INSTALL_RULES: "refuse", "skip" or "install"; OUTCOME_RULES: an outcome
    applies: t.Callable[[CaseT], Values | None]


def _first_rule(
    rules: t.Sequence[Rule[CaseT]], case: CaseT, table: str
) -> tuple[Rule[CaseT], Values]:
    """The first rule of `table` whose predicate returns values for `case`, with the values."""
    for rule in rules:
        values = rule.applies(case)
        if values is not None:
            return rule, values
    raise AssertionError(f"no rule of {table} applies; every case must meet one")


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
        return _known(self.readings.media_version)

    @property
    def kms_behind(self) -> bool:
        """KM Server is installed and its Kmserver.exe is one the service pack must raise."""
        binary = self.readings.kms_binary
        return (
            self.readings.kms_installed
            and binary is not None
            and kms_short_of(binary, self.media_build, self.database)
        )

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


def media_build_unknown(case: InstallCase) -> Values | None:
    if case.readings.media_version is not None:
        return None
    return {"where": update_exe_path(case.media)}


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
    if case.server.sp_key != case.media_build.sp_key or case.kms_behind:
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
    if case.kms_behind:
        reasons.append(f"Kmserver.exe is {describe(_known(case.readings.kms_binary))}")
    return {**case.builds_seen(), "reasons": " and ".join(reasons)}


# "refuse": raise Refusal, nothing runs; "skip": nothing to do; "install": run update.exe.
INSTALL_RULES: tuple[Rule[InstallCase], ...] = (
    # What the host runs and what the media holds: never a downgrade, never another SP.
    Rule("not_exchange_55_or_2000", "refuse", not_exchange_55_or_2000),
    Rule("media_build_unknown", "refuse", media_build_unknown),
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
    "media_build_unknown": (
        "no update.exe with a version at {where}, so the media's build cannot be read, and "
        "without it a downgrade cannot be ruled out. Set media to the folder of the extracted "
        "service pack kit that holds update.exe (5.5: <kit>\\ENG\\SERVER\\SETUP\\I386, KB "
        "Q191013)."
    ),
    "other_exchange_version": (
        "the media at {media} holds update.exe {media_build}, a service pack for another "
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
        "the media at {media} holds update.exe {media_build} but build asks for {wanted}. "
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
    return _first_rule(INSTALL_RULES, case, "INSTALL_RULES")


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
# Neither the exit codes nor the log lines of a 5.5 SP are documented (the SP readmes, KB Q191013
# and Q198347, say only to run Update; KB Q158545 and Q290226 show the log and its error IDs): a
# log's "Setup failed" / "ID no: 0x..." outweighs a success exit code, and success needs the log's
# completion line as well as a listed exit code (or none, after a lost connection). OUTCOME_RULES
# are tried in order; OUTCOME_MESSAGES words the remedy and the evidence (detail) of each.


@dataclass(frozen=True)
class SpOutcome:
    outcome: str  # one of OUTCOMES
    remedy: str
    detail: str  # one sentence on the evidence: exit code, log lines
    rule: str  # the id of the rule of OUTCOME_RULES that decided


def exit_code_text(code: int | None) -> str:
    if code is None:
        return "unknown (the connection to update.exe was lost)"
    return f"0x{code:08X}" if code >= 0x80000000 or code < 0 else str(code)


@dataclass(frozen=True)
class RunCase:
    """What `classify` judges: update.exe's exit code (None when the connection to it was lost),
    the runs it appended to the setup log, and whether it still runs."""

    exit_code: int | None
    success_exit_codes: t.Collection[int]
    runs: t.Sequence[SetupRun]
    still_running: bool
    process_running: bool | None

    @property
    def run(self) -> SetupRun | None:
        """The last run the log gained, the one update.exe wrote."""
        return self.runs[-1] if self.runs else None

    @property
    def completed(self) -> bool:
        return self.run is not None and self.run.completed

    @property
    def exit_not_listed(self) -> bool:
        return self.exit_code is not None and self.exit_code not in self.success_exit_codes

    def log_state(self) -> Values:
        return {"log_state": "nothing appended" if self.run is None else "no completion line"}


def past_the_timeout(case: RunCase) -> Values | None:
    if not case.still_running:
        return None
    running = case.process_running
    return {"process_seen": "unknown" if running is None else ("yes" if running else "no")}


def log_failed(case: RunCase) -> Values | None:
    if case.run is None or not case.run.failed:
        return None
    return {"ids": ", ".join(f"0x{number:08x}" for number in case.run.error_ids) or "none"}


def completed_but_exit_not_listed(case: RunCase) -> Values | None:
    return {} if case.exit_not_listed and case.completed else None


def exit_not_listed(case: RunCase) -> Values | None:
    return case.log_state() if case.exit_not_listed else None


def completed_asking_restart(case: RunCase) -> Values | None:
    if case.run is None or not case.completed:
        return None
    asks = case.run.restart_required or case.exit_code in REBOOT_EXIT_CODES
    return {} if asks else None


def completed(case: RunCase) -> Values | None:
    return {} if case.completed else None


def no_end_line(case: RunCase) -> Values | None:
    return case.log_state()


# Each rule decides one of OUTCOMES.
OUTCOME_RULES: tuple[Rule[RunCase], ...] = (
    Rule("still_running", "still_running", past_the_timeout),
    # The log's failure outweighs any exit code.
    Rule("log_failed", "failed", log_failed),
    Rule("completed_but_exit_not_listed", "unknown", completed_but_exit_not_listed),
    Rule("exit_not_listed", "failed", exit_not_listed),
    # A listed exit code, or none after a lost connection: the log decides.
    Rule("completed_asking_restart", "ok_reboot_required", completed_asking_restart),
    Rule("completed", "ok", completed),
    Rule("no_end_line", "unknown", no_end_line),
)

# (remedy, detail): str.format templates over the predicate's values and {code}, the exit code.
OUTCOME_MESSAGES: dict[str, tuple[str, str]] = {
    "still_running": (
        "update.exe is still running after the timeout; it may be waiting at a dialog (no "
        "unattended switch is documented for the 5.5 update.exe). Look at the host's console "
        "and the setup log; when update.exe has ended, run this task again: it checks the "
        "versions and does not start update.exe while one runs. Its WinRS shell is left open, "
        "since deleting it would end update.exe; Windows closes it after the shell idle timeout "
        "(2 hours by default).",
        "update.exe was still running (process seen: {process_seen}); exit code not known yet.",
    ),
    "log_failed": (
        "Read the setup log lines returned here and the whole setup log on the host, fix the "
        "cause (KB Q235978: stop the Exchange services, Performance Monitor and monitoring "
        "tools first; Q290226 for 0xc0020002), then run this task again; it installs again as "
        "long as the versions are not the media's. Setup may have left the Exchange services "
        "stopped: start them once the cause is fixed. The KM database was not touched.",
        "update.exe logged a failure (ID no: {ids}); exit code {code}.",
    ),
    "completed_but_exit_not_listed": (
        "The setup log says the service pack was installed but update.exe exited with {code}, "
        "which is not in success_exit_codes. Check the versions (returned here) and the setup "
        "log; if this exit code means success for this kit, add it to success_exit_codes.",
        "exit code {code} with a completed run in the setup log.",
    ),
    "exit_not_listed": (
        "update.exe ended with an exit code that is not in success_exit_codes and the setup log "
        "shows no completed run. Read the setup log on the host (Setup shows its errors as "
        "dialogs with an ID no, KB Q290226), fix the cause, then run this task again. The KM "
        "database was not touched.",
        "exit code {code}; setup log: {log_state}.",
    ),
    "completed_asking_restart": (
        "The service pack is installed and asks for a restart. Restart the server in a "
        "maintenance window (this module never restarts it), then start MSExchangeKMS with its "
        "startup password (exchops.kms.exchange_service).",
        "exit code {code}; the setup log asks for a restart.",
    ),
    "completed": (
        "None for the service pack. Start MSExchangeKMS with its startup password "
        "(exchops.kms.exchange_service) and check that it stays running.",
        "exit code {code}; the setup log shows a completed run.",
    ),
    "no_end_line": (
        "update.exe ended but the setup log shows no completed or failed run (it may have been "
        "closed at a dialog, or may not have started). Read the setup log on the host and check "
        "the versions with exchops.kms.exchange_facts; running this task again is safe: it runs "
        "nothing when the versions match, and refuses while update.exe runs.",
        "exit code {code}; setup log: {log_state}.",
    ),
}


def outcome_rule(case: RunCase) -> tuple[Rule[RunCase], Values]:
    """The first rule of OUTCOME_RULES that applies, with the values its wording needs."""
    return _first_rule(OUTCOME_RULES, case, "OUTCOME_RULES")


def classify(
    exit_code: int | None,
    success_exit_codes: t.Collection[int],
    runs: t.Sequence[SetupRun],
    still_running: bool,
    process_running: bool | None = None,
) -> SpOutcome:
    """Classify a run of update.exe from its exit code (None when the connection to it was
    lost), the runs it appended to the setup log, and whether it is still running (see
    OUTCOME_RULES)."""
    case = RunCase(exit_code, success_exit_codes, runs, still_running, process_running)
    rule, values = outcome_rule(case)
    remedy, detail = OUTCOME_MESSAGES[rule.id]
    values = {"code": exit_code_text(exit_code), **values}
    return SpOutcome(rule.decides, remedy.format(**values), detail.format(**values), rule.id)


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


def verify(
    media_build: Build, after: HostReadings, kms_expected: bool, database: Build | None = None
) -> list[str]:
    """The readings that are not in place after a run; empty when all are: the registry on the
    media's service pack, Kmserver.exe no longer one the service pack must raise (kms_short_of).
    `kms_expected`: KM Server was installed before the run, so Kmserver.exe must be checked."""
    wrong = []
    if after.server_build is None:
        wrong.append("the registry no longer names an Exchange build (Setup key, NewestBuild)")
    elif after.server_build.sp_key != media_build.sp_key:
        wrong.append(f"the registry (Setup key, NewestBuild) says {describe(after.server_build)}")
    if kms_expected or after.kms_binary is not None:
        if after.kms_binary is None:
            wrong.append("Kmserver.exe's file version cannot be read")
        elif kms_short_of(after.kms_binary, media_build, database):
            below = (
                f"older than {database.short}, the build that last ran the KM database"
                if database is not None
                else "still the Exchange CD's build"
            )
            wrong.append(f"Kmserver.exe's file version is {describe(after.kms_binary)}, {below}")
    return wrong


# ---------------------------------------------------------------------------------------------
# Start types


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
