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
from ._kms import KMS_SERVICE
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
# The plan: refusals and idempotence (builds compare as integer tuples, builds.md)


def describe(build: Build) -> str:
    """ "5.5.2650 (5.5 SP3)", "5.5.1960.8 (5.5 RTM)"."""
    shown = str(build) if build.revision else build.short
    return f"{shown} ({name_build(build).short})"


@dataclass(frozen=True)
class SpPlan:
    install: bool
    media_build: Build
    reason: str


def decide_install(
    readings: HostReadings, media: str, wanted: Build | None, kms_may_run: bool = False
) -> SpPlan:
    """Decide whether update.exe from `media` may run, must run, or need not run. Raises
    `Refusal` with a complete message when it must not. `kms_may_run` (check mode) lets a
    running MSExchangeKMS through: a plan predicts the run that follows the backup, which
    stops KMS; the caller warns about it."""
    server = readings.server_build
    if server is None or server.major >= 8:
        found = f"Exchange {describe(server)}" if server else "no Exchange 4.0 - 2003 install"
        raise Refusal(
            f"found {found}. This module reapplies Exchange 5.5 / 2000 service packs with "
            "update.exe; later versions are updated with their own Setup. Run it only "
            "against the KM Server of an Exchange 5.5 or 2000 site."
        )
    if readings.media_version is None:
        where = update_exe_path(media)
        raise Refusal(
            f"no update.exe with a version at {where}, so the media's build cannot be "
            "read, and without it a downgrade cannot be ruled out. Set media to the folder "
            "of the extracted service pack kit that holds update.exe (5.5: "
            "<kit>\\ENG\\SERVER\\SETUP\\I386, KB Q191013)."
        )
    media_build = readings.media_version
    if media_build.family != server.family:
        raise Refusal(
            f"the media at {media} holds update.exe {describe(media_build)}, a service pack "
            f"for another Exchange version than the server's {describe(server)}. Point "
            f"media at a service pack kit for {name_build(server).product}."
        )
    if media_build.sp_key < server.sp_key:
        raise Refusal(
            f"the media at {media} installs {describe(media_build)} but Exchange is "
            f"already {describe(server)}: update.exe would downgrade the server, and a "
            "service pack older than the build that last ran the KM database does not fix "
            f"event 5389 (KB Q259906). Use the media of {name_build(server).short} or later."
        )
    binary = readings.kms_binary
    if binary is not None and media_build.sp_key < binary.sp_key:
        raise Refusal(
            f"the media at {media} installs {describe(media_build)} but Kmserver.exe is "
            f"already {describe(binary)}: update.exe would downgrade the KM Server "
            "binaries below the build that may have last run the KM database (KB Q259906). "
            f"Use media that installs {binary.short} or later."
        )
    if wanted is not None and wanted.sp_key != media_build.sp_key:
        raise Refusal(
            f"the media at {media} holds update.exe {describe(media_build)} but build asks "
            f"for {describe(wanted)}. Installing another service pack than the one asked "
            "for leaves the KM Server move unfixed (KB Q259906: both servers on the same "
            f"service pack). Point media at the {name_build(wanted).short} kit, or set "
            f"build to {media_build.short} if that is the service pack you want."
        )
    if readings.kms_installed and binary is None:
        raise Refusal(
            "KM Server is installed but Kmserver.exe's file version cannot be read (no "
            "wmic on the host?), so neither the need for the service pack nor its success "
            "can be proven. Read Kmserver.exe's version on the host (its Properties, "
            "Version tab) and reapply the service pack by hand if it is older than "
            f"{describe(media_build)}."
        )
    km_needed = (
        readings.kms_installed and binary is not None and binary.sp_key != media_build.sp_key
    )
    if server.sp_key == media_build.sp_key and not km_needed:
        what = "Exchange and Kmserver.exe are" if readings.kms_installed else "Exchange is"
        return SpPlan(
            False,
            media_build,
            f"{what} already on {describe(media_build)}, the media's service pack",
        )
    _refuse_unsafe_run(readings, media_build, kms_may_run)
    reasons = []
    if server.sp_key != media_build.sp_key:
        reasons.append(f"Exchange is {describe(server)}")
    if km_needed and binary is not None:
        reasons.append(f"Kmserver.exe is {describe(binary)}")
    return SpPlan(
        True, media_build, f"{' and '.join(reasons)}; the media installs {describe(media_build)}"
    )


def kms_is_open(readings: HostReadings) -> bool:
    """Whether MSExchangeKMS may have its database open (anything but stopped or absent)."""
    return readings.kms_installed and readings.kms_state not in ("stopped", "absent")


def _refuse_unsafe_run(readings: HostReadings, media_build: Build, kms_may_run: bool) -> None:
    if readings.kms_half_installed:
        present = [name for name, here in readings.kms_parts if here]
        missing = [name for name, here in readings.kms_parts if not here]
        raise Refusal(
            f"KM Server is only partly installed (present: {', '.join(present)}; missing: "
            f"{', '.join(missing)}). update.exe fails on such a host with 0xc0020002 "
            "(KB Q290226) or tries to upgrade a KM Server that is not there (KB Q196171). "
            "Repair or remove KM Server first, then run again."
        )
    if readings.image_path_has_arguments:
        raise Refusal(
            f"the ImagePath of {KMS_SERVICE} has arguments after the program "
            f"({readings.kms_image_path}), such as the startup password. update.exe reads "
            "that path to find Kmserver.exe's version and fails with \"The system cannot "
            'find the file specified." (KB Q235418). Remove everything after Kmserver.exe '
            f"from ImagePath (HKLM\\SYSTEM\\CurrentControlSet\\Services\\{KMS_SERVICE}), "
            "give the password when starting the service, then run again."
        )
    if kms_is_open(readings) and not kms_may_run:
        raise Refusal(
            f"{KMS_SERVICE} is {readings.kms_state.replace('_', ' ')}. A service pack must "
            "not run while the KM Server has its database open (kb-q259906.md section 5; "
            f"KB Q190713). Back up the KM database and stop {KMS_SERVICE} "
            "(exchops.kms.kms_backup, exchops.kms.exchange_service with state=stopped), then "
            f"run again to install {describe(media_build)}."
        )
    if readings.update_pids:
        raise Refusal(
            f"update.exe is already running (PID {', '.join(map(str, readings.update_pids))}). "
            "A second run would race the first one over the same files and registry values. "
            "Wait until it ends (watch the setup log), then run again: this module checks "
            "the versions and runs nothing when they already match."
        )


# ---------------------------------------------------------------------------------------------
# The outcome


@dataclass(frozen=True)
class SpOutcome:
    outcome: str
    remedy: str
    detail: str  # one sentence on the evidence: exit code, log lines


def exit_code_text(code: int | None) -> str:
    if code is None:
        return "unknown (the connection to update.exe was lost)"
    return f"0x{code:08X}" if code >= 0x80000000 or code < 0 else str(code)


def classify(
    exit_code: int | None,
    success_exit_codes: t.Collection[int],
    runs: t.Sequence[SetupRun],
    still_running: bool,
    process_running: bool | None = None,
) -> SpOutcome:
    """Classify a run of update.exe from its exit code (None when the connection to it was
    lost), the runs it appended to the setup log, and whether it is still running. Neither the
    exit codes nor the log lines of a 5.5 SP are documented (service-packs.md): a log's
    "Setup failed" / "ID no: 0x..." outweighs a success exit code, and success needs the log's
    completion line as well as a listed exit code (or none, after a lost connection)."""
    run = runs[-1] if runs else None
    code_text = exit_code_text(exit_code)
    listed = exit_code is not None and exit_code in success_exit_codes
    if still_running:
        return SpOutcome(
            "still_running",
            "update.exe is still running after the timeout; it may be waiting at a dialog (no "
            "unattended switch is documented for the 5.5 update.exe). Look at the host's "
            "console and the setup log; when update.exe has ended, run this task again: it "
            "checks the versions and does not start update.exe while one runs. Its WinRS shell "
            "is left open, since deleting it would end update.exe; Windows closes it after the "
            "shell idle timeout (2 hours by default).",
            f"update.exe was still running (process seen: {_yes_no(process_running)}); exit code "
            "not known yet.",
        )
    if run is not None and run.failed:
        ids = ", ".join(f"0x{number:08x}" for number in run.error_ids) or "none"
        return SpOutcome(
            "failed",
            "Read the setup log lines returned here and the whole setup log on the host, fix "
            "the cause (KB Q235978: stop the Exchange services, Performance Monitor and "
            "monitoring tools first; Q290226 for 0xc0020002), then run this task again; it "
            "installs again as long as the versions are not the media's. Setup may have left "
            "the Exchange services stopped: start them once the cause is fixed. The KM database "
            "was not touched.",
            f"update.exe logged a failure (ID no: {ids}); exit code {code_text}.",
        )
    if exit_code is not None and not listed:
        if run is not None and run.completed:
            return SpOutcome(
                "unknown",
                f"The setup log says the service pack was installed but update.exe exited with "
                f"{code_text}, which is not in success_exit_codes. Check the versions "
                "(returned here) and the setup log; if this exit code means success for this "
                "kit, add it to success_exit_codes.",
                f"exit code {code_text} with a completed run in the setup log.",
            )
        return SpOutcome(
            "failed",
            "update.exe ended with an exit code that is not in success_exit_codes and the "
            "setup log shows no completed run. Read the setup log on the host (Setup shows its "
            "errors as dialogs with an ID no, KB Q290226), fix the cause, then run this task "
            "again. The KM database was not touched.",
            f"exit code {code_text}; setup log: {_log_state(run)}.",
        )
    if run is not None and run.completed:
        if run.restart_required or exit_code in REBOOT_EXIT_CODES:
            return SpOutcome(
                "ok_reboot_required",
                "The service pack is installed and asks for a restart. Restart the server in a "
                "maintenance window (this module never restarts it), then start MSExchangeKMS "
                "with its startup password (exchops.kms.exchange_service).",
                f"exit code {code_text}; the setup log asks for a restart.",
            )
        return SpOutcome(
            "ok",
            "None for the service pack. Start MSExchangeKMS with its startup password "
            "(exchops.kms.exchange_service) and check that it stays running.",
            f"exit code {code_text}; the setup log shows a completed run.",
        )
    return SpOutcome(
        "unknown",
        "update.exe ended but the setup log shows no completed or failed run (it may have been "
        "closed at a dialog, or may not have started). Read the setup log on the host and "
        "check the versions with exchops.kms.exchange_facts; running this task again is safe: "
        "it runs nothing when the versions match, and refuses while update.exe runs.",
        f"exit code {code_text}; setup log: {_log_state(run)}.",
    )


def _log_state(run: SetupRun | None) -> str:
    return "nothing appended" if run is None else "no completion line"


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def log_tail(runs: t.Sequence[SetupRun], limit: int = TAIL_LINES) -> list[str]:
    lines = [line for run in runs for line in run.lines]
    return lines[-limit:]


def verify(media_build: Build, after: HostReadings, kms_expected: bool) -> list[str]:
    """The readings that are not on the media's service pack after a run; empty when all are.
    `kms_expected`: KM Server was installed before the run, so Kmserver.exe must be checked."""
    wrong = []
    if after.server_build is None:
        wrong.append("the registry no longer names an Exchange build (Setup key, NewestBuild)")
    elif after.server_build.sp_key != media_build.sp_key:
        wrong.append(f"the registry (Setup key, NewestBuild) says {describe(after.server_build)}")
    if kms_expected or after.kms_binary is not None:
        if after.kms_binary is None:
            wrong.append("Kmserver.exe's file version cannot be read")
        elif after.kms_binary.sp_key != media_build.sp_key:
            wrong.append(f"Kmserver.exe's file version is {describe(after.kms_binary)}")
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
