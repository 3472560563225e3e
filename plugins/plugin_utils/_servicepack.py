# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reapplying an Exchange 5.5 / 2000 service pack from media the host can read
(exchops.kms.exchange_service_pack), safely and idempotently.

What the domain says (domain/service-packs.md, kb-q259906.md sections 4-5) and how it shapes this:
- No unattended switch and no exit code of the 5.5 SP's update.exe is documented: switches and
  success exit codes are options, and success is judged afterwards from the versions (registry
  NewestBuild and Kmserver.exe's file version) and from what the run appended to the setup log
  (Q158545), never from the exit code alone.
- Never downgrade: media older than the server or than Kmserver.exe is refused; so is media that
  is not the wanted build. update.exe fails when MSExchangeKMS's ImagePath carries a password
  (Q235418) or KM Server is half-installed (Q290226, Q196171); an SP must not run while
  MSExchangeKMS runs (Q190713, Q232609). Each refusal happens before anything runs.
- Exchange Setup changes other services' start types: the start types of the Exchange services
  and the services they depend on are read before and restored after.
- The KM database (Kmsdata) is never named in any command built here.

The parts: command builders (cmd.exe lines, sections as `_probe.py` builds them), readings
assembled from parsed sections (only `_winout.py` knows output formats), the plan (refusals and
idempotence, builds compared as integer tuples), the outcome classification, and `ServicePackJob`,
which drives the run through shells it is handed (the action gives it `WinrsShell`s). update.exe
runs in its own shell on a worker thread while this thread polls the host through another one and
shows progress (`_poll.poll_until`; a pause ends early when update.exe's command returns). If
the connection of update.exe's shell is lost, the job polls through NEW shells (a pywinrm
session does not survive a dropped connection) and never starts update.exe again. That shell is
not deleted while update.exe may still run in it: deleting a WinRS shell ends the processes it
started.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
import threading
import typing as t
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field

from . import _errors as errors
from ._builds import Build, name_build
from ._errors import StepError
from ._facts import FactsError, read_facts
from ._kms import KMS_SERVER_KEY, KMS_SERVICE, KMS_SERVICE_KEY
from ._poll import SYSTEM_CLOCK, Clock, PollTimeout, poll_until
from ._probe import (
    SETUP_KEY_LEGACY,
    ProbeError,
    Sections,
    facts_probe,
    sc,
    section,
    split_sections,
    wmic_file_version,
)
from ._winout import (
    ParseError,
    ScFailure,
    SetupRun,
    ToolMissing,
    parse_dir,
    parse_reg_query,
    parse_sc_config,
    parse_sc_qc,
    parse_setup_log,
    parse_tasklist_csv,
    parse_type,
    parse_wmic_file_version,
    parse_wmic_service_start_modes,
    setup_log_appended,
)
from ._winrs import CommandOutput, WinrsError

UPDATE_EXE = "update.exe"
# Q158545: "Exchange Server Setup.log", at the root of the drive Exchange is installed on (5.5).
SETUP_LOG_55 = "Exchange Server Setup.log"
# Q178975 names the 2000 / 2003 log; its folder is not documented: the system drive's root [?].
SETUP_LOG_2000 = r"%SystemDrive%\Exchange Server Setup Progress.log"
KMS_COMPONENT_KEY = SETUP_KEY_LEGACY + r"\Key Management Server"
EXCHANGE_SERVICE_PREFIX = "MSExchange"
# Windows Installer's ERROR_SUCCESS_REBOOT_REQUIRED / ERROR_SUCCESS_REBOOT_INITIATED: not
# documented for update.exe; honoured only when listed in success_exit_codes.
REBOOT_EXIT_CODES = frozenset({3010, 1641})
OUTCOMES = ("ok", "ok_reboot_required", "failed", "still_running", "unknown")
# `sc config NAME start= X` takes these words for the start types `sc qc` / wmic report.
SC_START_WORDS = {
    "auto": "auto",
    "manual": "demand",
    "disabled": "disabled",
    "boot": "boot",
    "system": "system",
}
# Characters that cmd.exe would expand or treat as syntax inside update.exe's arguments.
_UNSAFE_ARGUMENT = re.compile(r'["%!\r\n\x00]')
_NEEDS_QUOTES = re.compile(r"[\s&|<>^(),;=]")
TAIL_LINES = 20
READ_TIMEOUT_S = 300
# Polls that may fail in a row while update.exe's own connection is lost, before giving up.
LOST_POLL_ATTEMPTS = 3


class ServicePackError(StepError):
    """Something makes the run unsafe or impossible (_errors.StepError)."""


class Refusal(ServicePackError, errors.Refusal):
    """The plan refused to run update.exe; nothing was changed."""


# ---------------------------------------------------------------------------------------------
# Command builders


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


def update_command(media: str, arguments: t.Sequence[str]) -> str:
    """The command line that runs update.exe from the media with the configured switches."""
    check_update_arguments(arguments)
    parts = [f'"{update_exe_path(media)}"']
    for argument in arguments:
        parts.append(f'"{argument}"' if _NEEDS_QUOTES.search(argument) else argument)
    return " ".join(parts)


def wmic_services() -> str:
    # Every service and its start type; `< NUL`: wmic may wait for stdin in a WinRS shell.
    return "wmic service get Name,StartMode /value < NUL"


def tasklist_update() -> str:
    return f'tasklist /fi "imagename eq {UPDATE_EXE}" /fo csv /nh'


def setup_log_path(server_build: Build, install_path: str) -> str:
    """Where Setup appends its runs: 5.5 at the root of the Exchange drive (Q158545), 2000 and
    2003 in "Exchange Server Setup Progress.log" (Q178975)."""
    if server_build.family == (5, 5) or server_build.major < 5:
        return f"{install_path.strip()[:2]}\\{SETUP_LOG_55}"
    return SETUP_LOG_2000


def read_command(media: str) -> str:
    """Round trip 1: the facts probe (server build, Kmserver.exe, MSExchangeKMS), the media's
    update.exe version, every service's start type, and whether update.exe already runs."""
    return " & ".join(
        (
            facts_probe(0),
            section("sp_media", wmic_file_version(update_exe_path(media))),
            section("sp_services", wmic_services()),
            section("sp_tasks", tasklist_update()),
        )
    )


def detail_command(log_path: str, services: t.Sequence[str], with_log_text: bool) -> str:
    """Round trip 2: the setup log's size (and text), and `sc qc` of each Exchange service for
    the services it depends on."""
    parts = [section("sp_log_dir", f'dir /-c "{log_path}"')]
    if with_log_text:
        # `echo.` ends the text with a line end, so the section's end marker stays on its own line.
        parts.append(section("sp_log_text", f'type "{log_path}" && echo.'))
    for index, name in enumerate(services):
        parts.append(section(f"sp_qc_{index}", sc("qc", name)))
    return " & ".join(parts)


def poll_command(log_path: str) -> str:
    """What a poll reads while update.exe runs: its process, and the setup log."""
    return " & ".join(
        (
            section("sp_tasks", tasklist_update()),
            section("sp_log_text", f'type "{log_path}" && echo.'),
        )
    )


def restore_command(changes: t.Mapping[str, str]) -> str:
    """`sc config NAME start= TYPE` for each service whose start type is to be set back."""
    return " & ".join(
        section(f"sp_config_{index}", f"sc config {name} start= {SC_START_WORDS[start_type]}")
        for index, (name, start_type) in enumerate(sorted(changes.items()))
    )


# ---------------------------------------------------------------------------------------------
# Readings


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


def _build_or_none(text: str | None) -> Build | None:
    if not text:
        return None
    try:
        return Build.parse(text)
    except ValueError:
        return None


def readings_from(
    sections: Sections, facts: dict[str, t.Any], warnings: t.Sequence[str]
) -> HostReadings:
    """HostReadings from the sections of `read_command` and the facts `assemble` built from them."""
    kms = facts.get("kms") or {}
    service = kms.get("service") or {}
    install_path = facts.get("install_path")
    server_build = _build_or_none(facts.get("build")) if facts.get("installed") else None
    setup = parse_reg_query(
        *sections.need("setup_legacy").streams(), section="setup_legacy", key=SETUP_KEY_LEGACY
    )
    kms_server = parse_reg_query(
        *sections.need("kms_server_key").streams(), section="kms_server_key", key=KMS_SERVER_KEY
    )
    service_key = parse_reg_query(
        *sections.need("kms_service_key").streams(),
        section="kms_service_key",
        key=KMS_SERVICE_KEY,
    )
    kms_binary_text = kms.get("binary_build")
    files_unknown = "file_versions" in (facts.get("sources") or {})
    parts = [
        (
            f"the {KMS_SERVICE} service",
            service.get("state", "absent") != "absent" or service_key.found,
        ),
        (
            KMS_COMPONENT_KEY,
            setup.found and "Key Management Server" in setup.subkeys(SETUP_KEY_LEGACY),
        ),
        (KMS_SERVER_KEY, kms_server.found),
    ]
    if not files_unknown:
        parts.append(("Kmserver.exe", kms_binary_text is not None))
    # None both when there is no update.exe and when it has no version resource (wmic prints no
    # Version line then, windows-output.md section 4): either way the media's build is unknown.
    media_version_text = parse_wmic_file_version(
        *sections.need("sp_media").streams(), section="sp_media"
    )
    start_types = parse_wmic_service_start_modes(
        *sections.need("sp_services").streams(), section="sp_services"
    )
    try:
        tasks = parse_tasklist_csv(*sections.need("sp_tasks").streams(), section="sp_tasks")
        update_pids: tuple[int, ...] | None = tuple(
            task.pid for task in tasks if task.image.lower() == UPDATE_EXE
        )
    except ToolMissing:
        update_pids = None
    return HostReadings(
        facts=facts,
        warnings=tuple(warnings),
        server_build=server_build,
        install_path=install_path,
        kms_installed=bool(kms.get("installed")),
        kms_parts=tuple(parts),
        kms_binary=_build_or_none(kms_binary_text),
        kms_state=str(service.get("state", "absent")),
        image_path_has_arguments=bool(service.get("image_path_has_arguments")),
        kms_image_path=str(service.get("binary_path", "")),
        media_version=_build_or_none(media_version_text),
        update_pids=update_pids,
        start_types=start_types,
    )


def log_details_from(sections: Sections, path: str, services: t.Sequence[str]) -> LogDetails:
    listing = parse_dir(*sections.need("sp_log_dir").streams(dir_output=True), section="sp_log_dir")
    size = 0
    if listing.found:
        entry = listing.entry(path.rsplit("\\", 1)[-1])
        size = entry.size or 0 if entry is not None else 0
    text = None
    if "sp_log_text" in sections:
        text = parse_type(*sections["sp_log_text"].streams(), section="sp_log_text")
    dependencies: dict[str, tuple[str, ...]] = {}
    for index, name in enumerate(services):
        config = parse_sc_qc(*sections.need(f"sp_qc_{index}").streams(), section=f"sp_qc_{index}")
        if not isinstance(config, ScFailure):
            # "+Group" entries name load-order groups, not services.
            dependencies[name] = tuple(
                dep for dep in config.dependencies if not dep.startswith("+")
            )
    return LogDetails(path, size, text, dependencies)


class ShellLike(t.Protocol):  # pylint: disable=too-few-public-methods
    def run(self, command_line: str) -> CommandOutput: ...


OpenShell = t.Callable[[int], AbstractContextManager[ShellLike]]


def read_host(shell: ShellLike, media: str) -> HostReadings:
    """Round trip 1 (and the binaries' versions of an install outside the default paths)."""
    try:
        sections, facts = read_facts(shell.run, read_command(media), 0)
        return readings_from(sections, facts.facts, facts.warnings)
    except (ProbeError, FactsError, ParseError) as exc:
        raise ServicePackError(
            f"could not read the host: {exc}. The host answered in an unexpected form; run with "
            "-vvvv to see the command and report it."
        ) from None


def read_details(shell: ShellLike, readings: HostReadings, with_log_text: bool) -> LogDetails:
    """Round trip 2: the setup log and the Exchange services' dependencies."""
    if readings.server_build is None or not readings.install_path:
        raise ServicePackError("no Exchange install path to find the setup log under.")
    path = setup_log_path(readings.server_build, readings.install_path)
    services = readings.exchange_services
    output = shell.run(detail_command(path, services, with_log_text))
    try:
        return log_details_from(split_sections(output.stdout), path, services)
    except (ProbeError, ParseError) as exc:
        raise ServicePackError(
            f"could not read the setup log or the services: {exc}. Run with -vvvv to see the "
            "command and report it."
        ) from None


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


# ---------------------------------------------------------------------------------------------
# The run


@dataclass(frozen=True)
class Options:
    media: str
    build: Build | None
    arguments: tuple[str, ...]
    success_exit_codes: tuple[int, ...]
    timeout: int
    poll_interval: int
    progress_interval: int
    check_mode: bool = False


@dataclass
class Report:
    """What the action returns (see RETURN in plugins/modules/exchange_service_pack.py)."""

    outcome: str
    remedy: str
    changed: bool
    media_build: str | None
    build_before: str | None
    kms_binary_before: str | None
    build_after: str | None = None
    kms_binary_after: str | None = None
    setup_log_tail: list[str] = field(default_factory=list)
    start_types_restored: dict[str, dict[str, t.Any]] = field(default_factory=dict)
    exit_code: int | None = None
    failed: bool = False
    message: str = ""
    warnings: list[str] = field(default_factory=list)

    def result(self) -> dict[str, t.Any]:
        return {
            "outcome": self.outcome,
            "remedy": self.remedy,
            "changed": self.changed,
            "media_build": self.media_build,
            "build_before": self.build_before,
            "build_after": self.build_after,
            "kms_binary_before": self.kms_binary_before,
            "kms_binary_after": self.kms_binary_after,
            "setup_log_tail": self.setup_log_tail,
            "start_types_restored": self.start_types_restored,
            "exit_code": self.exit_code,
        }


def _text(build: Build | None) -> str | None:
    return None if build is None else str(build)


@dataclass
class _RunnerResult:
    output: CommandOutput | None = None
    error: BaseException | None = None


def _run_update(shell: ShellLike, command: str, result: _RunnerResult) -> None:
    try:
        result.output = shell.run(command)
    # The thread's edge: whatever ends the run is handed to the job, which reports it.
    except Exception as exc:  # pylint: disable=broad-exception-caught
        result.error = exc


@dataclass(frozen=True)
class PollReading:
    process_running: bool | None
    runs: tuple[SetupRun, ...]

    @property
    def last_line(self) -> str | None:
        for run in reversed(self.runs):
            if run.lines:
                return run.last_line
        return None

    @property
    def ended(self) -> bool:
        return bool(self.runs) and (self.runs[-1].completed or self.runs[-1].failed)


@dataclass(frozen=True)
class Waited:
    exit_code: int | None
    lost: bool
    still_running: bool
    process_running: bool | None
    last_poll: PollReading | None
    error: str | None = None  # what ended the connection to update.exe
    # update.exe is known to have ended: its command returned, or polls saw the run end.
    ended: bool = False


def format_elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class _Poller:
    """Polls the host through its own shell; reopens a NEW shell after a failure."""

    def __init__(self, open_shell: OpenShell, log_path: str, log_size: int) -> None:
        self._open_shell = open_shell
        self._log_path = log_path
        self._log_size = log_size
        self._stack = ExitStack()
        self._shell: ShellLike | None = None
        self.failures = 0
        self.last_error: str | None = None

    def poll(self, command_timeout: int) -> PollReading | None:
        try:
            if self._shell is None:
                self._shell = self._stack.enter_context(self._open_shell(command_timeout))
            output = self._shell.run(poll_command(self._log_path))
            sections = split_sections(output.stdout)
            try:
                tasks = parse_tasklist_csv(*sections.need("sp_tasks").streams(), section="sp_tasks")
                running: bool | None = any(task.image.lower() == UPDATE_EXE for task in tasks)
            except ToolMissing:
                running = None
            text = parse_type(*sections.need("sp_log_text").streams(), section="sp_log_text") or ""
        except (WinrsError, ProbeError, ParseError) as exc:
            self.failures += 1
            self.last_error = str(exc)
            self.close()
            return None
        self.failures = 0
        return PollReading(running, parse_setup_log(setup_log_appended(text, self._log_size)))

    def close(self) -> None:
        self._shell = None
        self._stack.close()


def _over(waited: Waited | None) -> bool:
    return waited is not None


class _Watch:
    """The wait for update.exe: its worker thread, the polls of the host and the progress lines.
    `look()` is one reading of `poll_until`: how the wait ended, or None while it goes on. Until
    the connection to update.exe is lost, polls only show progress (one failure stops them); after,
    only polls can tell that update.exe ended, through new shells."""

    def __init__(
        self,
        job: ServicePackJob,
        runner: threading.Thread,
        result: _RunnerResult,
        details: LogDetails,
    ) -> None:
        self.job, self.runner, self.result = job, runner, result
        self.poller = _Poller(job.open_shell, details.path, details.size)
        self.start = job.clock.now()
        self.deadline = self.start + job.options.timeout
        self.next_poll = self.start + job.options.poll_interval
        self.next_progress = self.start + job.options.progress_interval
        self.phase = "update.exe running"
        self.last_poll: PollReading | None = None
        self.lost = False
        self.polling = True
        self.idle_polls = 0

    def look(self) -> Waited | None:
        if not self.runner.is_alive() and not self.lost:
            if self.result.output is not None:
                return Waited(
                    self.result.output.exit_code,
                    lost=False,
                    still_running=False,
                    process_running=False,
                    last_poll=self.last_poll,
                    ended=True,
                )
            self._lose()
        now = self.job.clock.now()
        if now >= self.deadline or now < self.next_poll or not (self.polling or self.lost):
            return None
        waited = self._poll(max(60, int(self.deadline - now) + 30))
        self.next_poll = self.job.clock.now() + self.job.options.poll_interval
        return waited

    def _lose(self) -> None:
        self.lost, self.phase = True, "connection to update.exe lost, polling the host"
        self.job.say(
            f"{self.job.host}: lost the connection to update.exe ({self.result.error}); "
            "update.exe is not started again: polling the setup log and the process "
            "through a new shell"
        )
        self.next_poll = self.job.clock.now()

    def _poll(self, command_timeout: int) -> Waited | None:
        reading = self.poller.poll(command_timeout)
        if reading is None:
            if not self.lost:
                self.polling = False  # progress only: do not keep opening shells
                self.job.verbose(f"{self.job.host}: polling stopped: {self.poller.last_error}")
            elif self.poller.failures >= LOST_POLL_ATTEMPTS:
                return Waited(
                    None,
                    lost=True,
                    still_running=False,
                    process_running=None,
                    last_poll=self.last_poll,
                    error=self.poller.last_error,
                )
            return None
        self.last_poll = reading
        if self.lost:
            ended, self.idle_polls = _ended_while_lost(reading, self.idle_polls)
            if ended:
                return Waited(
                    None,
                    lost=True,
                    still_running=False,
                    process_running=reading.process_running,
                    last_poll=reading,
                    error=_error(self.result),
                    ended=True,
                )
        return None

    def timed_out(self) -> Waited:
        running = self.last_poll.process_running if self.last_poll else None
        # Without a lost connection, update.exe's command has not returned: it runs.
        still = not self.lost or running is not False
        return Waited(
            None,
            lost=self.lost,
            still_running=still,
            process_running=running,
            last_poll=self.last_poll,
            error=_error(self.result),
            ended=not still,
        )

    def pause(self, _pauses: int, remaining: float) -> float:
        """Until the next poll or progress line, or the timeout; never more than 5 s."""
        wake = min(
            self.next_progress, self.next_poll if self.polling or self.lost else self.deadline
        )
        return max(0.0, min(wake - self.job.clock.now(), remaining, 5.0))

    def show_progress(self, _waited: Waited | None, _seconds: float) -> None:
        now = self.job.clock.now()
        if now < self.next_progress:
            return
        last_poll = self.last_poll
        line = last_poll.last_line if last_poll and last_poll.last_line else "nothing new yet"
        self.job.say(
            f"{self.job.host}: {format_elapsed(now - self.start)} elapsed, {self.phase}"
            f"{_process_seen(last_poll)}; setup log: {line}"
        )
        while self.next_progress <= now:
            self.next_progress += self.job.options.progress_interval

    def close(self) -> None:
        self.poller.close()


class ServicePackJob:
    """One host's service pack run, through shells from `open_shell(command_timeout_s)`.
    `say` shows progress to the operator; `verbose` logs steps (-vv)."""

    def __init__(
        self,
        host: str,
        open_shell: OpenShell,
        options: Options,
        say: t.Callable[[str], None],
        verbose: t.Callable[[str], None],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.host = host
        self.open_shell = open_shell
        self.options = options
        self.say = say
        self.verbose = verbose
        self.clock = clock

    # -- the whole task ------------------------------------------------------------------------

    def run(self) -> Report:
        options = self.options
        with self.open_shell(READ_TIMEOUT_S) as shell:
            before = read_host(shell, options.media)
            base = Report(
                outcome="refused",
                remedy="",
                changed=False,
                media_build=_text(before.media_version),
                build_before=_text(before.server_build),
                kms_binary_before=_text(before.kms_binary),
                warnings=list(before.warnings),
            )
            try:
                decision = decide_install(
                    before, options.media, options.build, kms_may_run=options.check_mode
                )
            except Refusal as exc:
                base.remedy = str(exc)
                raise Refusal(str(exc), base.result()) from None
            if not decision.install:
                base.outcome = "ok"
                base.remedy = f"None: {decision.reason}; update.exe was not run."
                base.build_after, base.kms_binary_after = base.build_before, base.kms_binary_before
                return base
            # The setup log's size now (only what the run appends is read later) and the
            # services the Exchange services depend on (their start types are watched too).
            details = read_details(shell, before, with_log_text=False)
        if before.update_pids is None:
            base.warnings.append(
                "tasklist is not available on this host, so an update.exe that is already "
                "running cannot be seen; make sure no service pack setup runs there."
            )
        if options.check_mode:
            if kms_is_open(before):
                base.warnings.append(
                    f"{KMS_SERVICE} is {before.kms_state.replace('_', ' ')}: a run without check "
                    f"mode refuses until it is stopped (exchops.kms.kms_remediate stops it "
                    "after the backup)."
                )
            base.outcome, base.changed = "not_run", True
            base.remedy = (
                f"Run without check mode to install {describe(decision.media_build)}: "
                f"{decision.reason}."
            )
            base.build_after = str(decision.media_build)
            base.kms_binary_after = str(decision.media_build) if before.kms_installed else None
            return base
        command = update_command(options.media, options.arguments)
        self.verbose(f"{self.host}: {decision.reason}; running {command}")
        waited = self._install(decision, details)
        return self._after(base, before, details, decision, waited)

    # -- running update.exe --------------------------------------------------------------------

    def _install(self, decision: SpPlan, details: LogDetails) -> Waited:
        options = self.options
        command = update_command(options.media, options.arguments)
        result = _RunnerResult()
        stack = ExitStack()
        # Opening the shell may fail (unreachable): update.exe has not started then.
        shell = stack.enter_context(
            self.open_shell(options.timeout + 2 * options.poll_interval + 120)
        )
        runner = threading.Thread(
            target=_run_update,
            args=(shell, command, result),
            name=f"exchops-update-{self.host}",
            daemon=True,
        )
        runner.start()
        waited = self._wait(runner, result, decision, details)
        if waited.ended:
            stack.close()
        else:
            # Deleting the shell would end an update.exe that may still run in it: leave the
            # shell to its idle timeout.
            stack.pop_all()
        return waited

    def _wait(
        self, runner: threading.Thread, result: _RunnerResult, decision: SpPlan, details: LogDetails
    ) -> Waited:
        options = self.options
        self.say(
            f"{self.host}: starting update.exe from {options.media} to install "
            f"{describe(decision.media_build)} (timeout {options.timeout} s)"
        )
        watch = _Watch(self, runner, result, details)
        try:
            waited = poll_until(
                watch.look,
                _over,
                first=watch.look(),
                timeout=options.timeout,
                interval=watch.pause,
                # A pause ends as soon as update.exe's command returns.
                clock=self.clock.woken_by(runner),
                on_wait=watch.show_progress,
            )
        except PollTimeout:
            return watch.timed_out()
        finally:
            watch.close()
        return t.cast(Waited, waited)

    # -- after the run -------------------------------------------------------------------------

    def _after(
        self,
        base: Report,
        before: HostReadings,
        details: LogDetails,
        decision: SpPlan,
        waited: Waited,
    ) -> Report:
        report = base
        report.changed = True
        report.exit_code = waited.exit_code
        if waited.still_running:
            runs = waited.last_poll.runs if waited.last_poll else ()
            outcome = classify(
                None, self.options.success_exit_codes, runs, True, waited.process_running
            )
            report.outcome, report.remedy = outcome.outcome, outcome.remedy
            report.setup_log_tail = log_tail(runs)
            report.failed = True
            report.message = (
                f"update.exe from {self.options.media} did not end within "
                f"{self.options.timeout} s. "
                f"{outcome.remedy}"
            )
            return report
        after, after_details, shell_error = self._read_after(before)
        if after is None or after_details is None:
            report.outcome = "unknown"
            report.remedy = (
                "update.exe ran but the host could not be read afterwards. Check the versions with "
                "exchops.kms.exchange_facts and the setup log on the host, then run this task "
                "again; it runs nothing when the versions already match."
            )
            report.failed = True
            report.message = (
                f"update.exe ran, then reading the host failed: {shell_error}. {report.remedy}"
            )
            return report
        runs = parse_setup_log(setup_log_appended(after_details.text or "", details.size))
        outcome = classify(
            waited.exit_code, self.options.success_exit_codes, runs, False, waited.process_running
        )
        report.outcome, report.remedy = outcome.outcome, outcome.remedy
        report.setup_log_tail = log_tail(runs)
        report.build_after = _text(after.server_build)
        report.kms_binary_after = _text(after.kms_binary)
        restore_problem = self._restore_start_types(report, before, details, after)
        wrong = verify(decision.media_build, after, before.kms_installed)
        media_text = describe(decision.media_build)
        evidence = f"{outcome.detail}"
        if waited.lost:
            evidence += (
                f" The connection to update.exe was lost ({waited.error}) and the result was "
                "read through a new shell."
            )
        if outcome.outcome not in ("ok", "ok_reboot_required"):
            last = (
                f" Last setup-log lines: {' | '.join(report.setup_log_tail[-3:])}."
                if report.setup_log_tail
                else ""
            )
            report.failed = True
            report.message = (
                f"update.exe from {self.options.media} ended with outcome {outcome.outcome}: "
                f"{evidence}{last} "
                f"{outcome.remedy}"
            )
        elif wrong:
            report.failed = True
            report.message = (
                f"update.exe reported success ({evidence.rstrip('.')}) but {'; '.join(wrong)}, not "
                f"{media_text}. "
                "The service pack is not in place; KB Q259906 is not fixed. Read the setup log on "
                "the host, then run this task again."
            )
        if restore_problem:
            report.failed = True
            report.message = f"{report.message} {restore_problem}".strip()
        return report

    def _read_after(
        self, before: HostReadings
    ) -> tuple[HostReadings | None, LogDetails | None, str | None]:
        """The host after the run, with the setup log's text; one retry through a new shell."""
        error = None
        for _attempt in range(2):
            try:
                with self.open_shell(READ_TIMEOUT_S) as shell:
                    after = read_host(shell, self.options.media)
                    # The log stays where it was, even if Setup left the Setup key unreadable.
                    located = (
                        after if after.server_build is not None and after.install_path else before
                    )
                    return after, read_details(shell, located, with_log_text=True), None
            except (WinrsError, ServicePackError) as exc:
                error = str(exc)
        return None, None, error

    def _restore_start_types(
        self, report: Report, before: HostReadings, details: LogDetails, after: HostReadings
    ) -> str:
        watched = watched_services(before, details)
        changes = start_type_changes(before.start_types, after.start_types, watched)
        if not changes:
            return ""
        wanted = {name: start_types[0] for name, start_types in changes.items()}
        problems: list[str] = []
        outcomes: dict[str, ScFailure | None] = {}
        try:
            with self.open_shell(READ_TIMEOUT_S) as shell:
                output = shell.run(restore_command(wanted))
            sections = split_sections(output.stdout)
            for index, name in enumerate(sorted(wanted)):
                outcomes[name] = parse_sc_config(
                    *sections.need(f"sp_config_{index}").streams(), section=f"sp_config_{index}"
                )
        except (WinrsError, ProbeError, ParseError) as exc:
            problems.append(f"setting the start types back failed: {exc}")
        for name, (old, new) in sorted(changes.items()):
            failure = outcomes.get(name)
            restored = name in outcomes and failure is None
            entry: dict[str, t.Any] = {"before": old, "after_setup": new, "restored": restored}
            if failure is not None:
                entry["error"] = f"{failure.operation} FAILED {failure.error}: {failure.message}"
                problems.append(f"{name}: {entry['error']}")
            report.start_types_restored[name] = entry
        if problems:
            return (
                "Setup changed start types that could not all be set back ("
                + "; ".join(problems)
                + "). Set them with sc config NAME start= TYPE (see start_types_restored)."
            )
        return ""


def _error(result: _RunnerResult) -> str | None:
    return None if result.error is None else str(result.error)


def _process_seen(reading: PollReading | None) -> str:
    """What the last poll's tasklist said of update.exe, for the progress line."""
    if reading is None or reading.process_running is None:
        return ""
    return (
        " (tasklist: update.exe running)"
        if reading.process_running
        else (" (tasklist: no update.exe)")
    )


def _ended_while_lost(reading: PollReading, idle_polls: int) -> tuple[bool, int]:
    """After the connection to update.exe was lost: did it end? Its log's end line says so; a
    missing process says so too once something was appended, or on a second look when nothing
    was (update.exe may not have started at all)."""
    if reading.ended:
        return True, 0
    if reading.process_running is False:
        if reading.runs:
            return True, 0
        idle_polls += 1
        return idle_polls >= 2, idle_polls
    return False, 0
