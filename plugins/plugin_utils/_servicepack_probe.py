# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a service pack run asks the host, and what the answers say: the command lines of
`_servicepack`'s job (cmd.exe lines, sections as `_probe.py` builds them) and the readings
assembled from their parsed sections (only `_winout.py` knows output formats).

Round trip 1 (`read_command`) reads the facts probe, the media's update.exe version, every
service's start type and whether update.exe already runs; round trip 2 (`detail_command`) the
setup log and the Exchange services' dependencies; a poll (`poll_command`) update.exe's process
and the setup log while it runs. No command line built here names the KM database (Kmsdata).
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
import typing as t
from contextlib import AbstractContextManager
from dataclasses import dataclass

from ._builds import Build
from ._facts import FactsError, read_facts
from ._kms import KMS_SERVER_KEY, KMS_SERVICE, KMS_SERVICE_KEY
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
from ._servicepack_plan import (
    UPDATE_EXE,
    HostReadings,
    LogDetails,
    ServicePackError,
    check_update_arguments,
    update_exe_path,
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
from ._winrs import CommandOutput

# Q158545: "Exchange Server Setup.log", at the root of the drive Exchange is installed on (5.5).
SETUP_LOG_55 = "Exchange Server Setup.log"
# Q178975 names the 2000 / 2003 log; its folder is not documented: the system drive's root [?].
SETUP_LOG_2000 = r"%SystemDrive%\Exchange Server Setup Progress.log"
KMS_COMPONENT_KEY = SETUP_KEY_LEGACY + r"\Key Management Server"
# `sc config NAME start= X` takes these words for the start types `sc qc` / wmic report.
SC_START_WORDS = {
    "auto": "auto",
    "manual": "demand",
    "disabled": "disabled",
    "boot": "boot",
    "system": "system",
}
# Arguments with these characters are quoted for cmd.exe.
_NEEDS_QUOTES = re.compile(r"[\s&|<>^(),;=]")


# ---------------------------------------------------------------------------------------------
# Command builders


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
    # Version line then, docs/windows-output.md section 4): either way the media's build is
    # unknown.
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
# While update.exe runs, and after it


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


def poll_reading_from(sections: Sections, log_size: int) -> PollReading:
    """A PollReading from the sections of `poll_command`; `log_size`: the log's size before the
    run (only what the run appended is read)."""
    try:
        tasks = parse_tasklist_csv(*sections.need("sp_tasks").streams(), section="sp_tasks")
        running: bool | None = any(task.image.lower() == UPDATE_EXE for task in tasks)
    except ToolMissing:
        running = None
    text = parse_type(*sections.need("sp_log_text").streams(), section="sp_log_text")
    return PollReading(running, runs_appended(text, log_size))


def runs_appended(text: str | None, size_before: int) -> tuple[SetupRun, ...]:
    """The runs a setup log whose text is now `text` gained since it was `size_before` long."""
    return parse_setup_log(setup_log_appended(text or "", size_before))


def restore_outcomes(
    sections: Sections, names: t.Sequence[str]
) -> t.Iterator[tuple[str, ScFailure | None]]:
    """(service, its `sc config` failure or None) from the sections of `restore_command`, for the
    services in the order it was given them (sorted); each is parsed only when it is reached."""
    for index, name in enumerate(names):
        yield name, parse_sc_config(
            *sections.need(f"sp_config_{index}").streams(), section=f"sp_config_{index}"
        )
