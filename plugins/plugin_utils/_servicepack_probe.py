# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a service pack run asks the host, and what the answers say: the command lines of
`_servicepack`'s job (cmd.exe lines, sections as `_probe.py` builds them) and the readings
assembled from their parsed sections (only `_winout.py` knows output formats).

Round trip 1 (`read_command`) reads the facts probe, the media's update.exe version, every
service's start type and whether update.exe already runs; round trip 2 (`detail_command`) the
setup log and the Exchange services' dependencies; a poll (`poll_command`) update.exe's process
and the setup log while it runs. No command line built here names the KM database (Kmsdata).

Every command that reads the host takes `remote`: None reads the host the shell runs on; a name
reads that server from its Windows jump host (`_reach`), with `_probe`'s remote forms (`reg query
"\\\\HOST\\HKLM\\..."`, `sc \\\\HOST`, `wmic /node:HOST`), `tasklist /s HOST`, and the server's
files through its administrative share (`_probe.shell_path`). The commands that change the host
(update.exe, the run record) name the host itself only.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
import typing as t
from contextlib import AbstractContextManager
from dataclasses import dataclass

from ._builds import Build
from ._facts import FactsError, RemoteUnreadable, read_facts
from ._kms import KMS_SERVER_KEY, KMS_SERVICE, KMS_SERVICE_KEY
from ._probe import (
    SETUP_KEY_LEGACY,
    ProbeError,
    Sections,
    facts_probe,
    sc,
    section,
    shell_path,
    split_sections,
    wmic_file_version,
)
from ._reach import Reach, remote_failure_message, remote_of, sections_refusal
from ._servicepack_plan import (
    UPDATE_EXE,
    HostReadings,
    LogDetails,
    RunRecord,
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
    parse_sc_qc,
    parse_setup_log,
    parse_tasklist_csv,
    parse_type,
    parse_wmic_datafile,
    parse_wmic_service_start_modes,
    setup_log_appended,
)
from ._winrs import CommandOutput

# "Exchange Server Setup.log" for 4.0, 5.0 and 5.5 (KB Q182518; Q202258 shows a 5.0 SP's run in it),
# at the root of the drive Exchange is installed on (Q158545, written for 4.0; for 5.0 and 5.5 the
# folder is an inference [I]). The Exchange 5.5 Resource Guide warns that a server "might have two
# Setup.log files", one in the system partition (docs/unsourced.md, U11): which one update.exe
# appends to is not documented [?]. This one is read; no outcome depends on it (the log is a
# supporting reading, _servicepack_plan "The outcome").
SETUP_LOG_LEGACY = "Exchange Server Setup.log"
# Q178975 names the 2000 / 2003 log; its folder is not documented: the system drive's root [?].
SETUP_LOG_2000 = r"%SystemDrive%\Exchange Server Setup Progress.log"
# This module's own record of a run, beside the setup log: the media's build and the services it
# stopped, so that a later run can start them again once update.exe has ended
# (`run_record_command`). It never holds a secret.
RUN_RECORD = "exchops-sp-run.txt"
# Launch mode at_interactive: the folder, beside the setup log on the server's Exchange drive, of
# the batch an `at` job runs and of its marker folders. The job runs as SYSTEM, which reads only
# local paths (KB Q105995; no network credentials [I]); folders made with `md` need no
# redirection inside the batch.
CONSOLE_FOLDER = "exchops"
CONSOLE_BATCH = "runsp.cmd"
_RUN_RECORD_HEADER = "exchops.kms exchange_service_pack run"
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


def wmic_services(remote: str | None = None) -> str:
    # Every service and its start type; `< NUL`: wmic may wait for stdin in a WinRS shell.
    # `/node:HOST` asks the server's WMI from its jump host
    # (docs/windows-output.md#remote-call-errors).
    node = f"/node:{remote} " if remote else ""
    return f"wmic {node}service get Name,StartMode /value < NUL"


def tasklist_update(remote: str | None = None) -> str:
    # `/s HOST` lists the processes of another computer ("tasklist",
    # https://learn.microsoft.com/windows-server/administration/windows-commands/tasklist).
    server = f"/s {remote} " if remote else ""
    return f'tasklist {server}/fi "imagename eq {UPDATE_EXE}" /fo csv /nh'


def server_path(path: str, remote: str | None = None) -> str:
    """PATH, a file of the server, as `dir` and `type` in the shell name it (`_probe.shell_path`).
    From a jump host, a path that does not start with its drive (the 2000 / 2003 setup log under
    %SystemDrive%, which the jump host would expand to its own drive) cannot be named yet:
    ServicePackError."""
    if remote and not re.match(r"[A-Za-z]:\\", path):
        raise ServicePackError(
            f"{path} cannot be read from the jump host: the server's system drive is not read "
            "through it yet. Read the setup log at the server's console."
        )
    return shell_path(path, remote)


def setup_log_path(server_build: Build, install_path: str) -> str:
    """Where Setup appends its runs: 4.0, 5.0 and 5.5 at the root of the Exchange drive (Q182518,
    Q158545), 2000 and 2003 in "Exchange Server Setup Progress.log" (Q178975)."""
    if server_build.major < 6:
        return f"{install_path.strip()[:2]}\\{SETUP_LOG_LEGACY}"
    return SETUP_LOG_2000


def run_record_path(log_path: str) -> str:
    """This module's run record, in the setup log's folder."""
    return log_path.rsplit("\\", 1)[0] + "\\" + RUN_RECORD


def bin_folder(install_path: str) -> str:
    return install_path.strip().rstrip("\\") + "\\BIN"


def read_command(media: str, remote: str | None = None) -> str:
    """Round trip 1: the facts probe (server build, Kmserver.exe, MSExchangeKMS), the media's
    update.exe version, every service's start type, and whether update.exe already runs. MEDIA
    is a folder of the server: `wmic /node:` takes the server's own path
    (docs/windows-output.md#wmi-classes)."""
    return " & ".join(
        (
            facts_probe(0, remote),
            section("sp_media", wmic_file_version(update_exe_path(media), remote)),
            section("sp_services", wmic_services(remote)),
            section("sp_tasks", tasklist_update(remote)),
        )
    )


def detail_command(
    log_path: str, services: t.Sequence[str], with_log_text: bool, remote: str | None = None
) -> str:
    """Round trip 2: the setup log's size (and text), this module's run record, and `sc qc` of
    each Exchange service for the services it depends on."""
    log = server_path(log_path, remote)
    parts = [
        section("sp_log_dir", f'dir /-c "{log}"'),
        section("sp_record", f'type "{server_path(run_record_path(log_path), remote)}"'),
    ]
    if with_log_text:
        # `echo.` ends the text with a line end, so the section's end marker stays on its own line.
        parts.append(section("sp_log_text", f'type "{log}" && echo.'))
    for index, name in enumerate(services):
        parts.append(section(f"sp_qc_{index}", sc("qc", name, remote)))
    return " & ".join(parts)


def poll_command(
    log_path: str,
    binaries: str | None = None,
    remote: str | None = None,
    markers: bool = False,
) -> str:
    """What a poll reads while update.exe runs: its process, the setup log and, to see files
    change, the listing of the Exchange BIN folder (`binaries`); with `markers`, the folder of
    an `at` job's batch and its marker folders (`console_folder`)."""
    parts = [
        section("sp_tasks", tasklist_update(remote)),
        section("sp_log_text", f'type "{server_path(log_path, remote)}" && echo.'),
    ]
    if binaries:
        parts.append(section("sp_bin_dir", f'dir /-c "{server_path(binaries, remote)}"'))
    if markers:
        folder = server_path(console_folder(log_path), remote)
        parts.append(section("sp_markers", f'dir /-c "{folder}"'))
    return " & ".join(parts)


def console_folder(log_path: str) -> str:
    """The folder of launch mode at_interactive's batch: `exchops` beside the setup log."""
    return log_path.rsplit("\\", 1)[0] + "\\" + CONSOLE_FOLDER


def marker_folder(log_path: str, run_id: str, word: str) -> str:
    """The folder an at job's batch makes when update.exe is about to start (`started`) and
    when it has ended (`finished`)."""
    return f"{console_folder(log_path)}\\sp-{run_id}-{word}"


def console_batch_command(
    log_path: str, media: str, arguments: t.Sequence[str], run_id: str, remote: str | None
) -> str:
    """Write the batch an `at` job runs (over the server's admin share): it makes the `started`
    marker folder, runs update.exe and makes the `finished` one once update.exe has ended (a
    batch waits for the program it starts, unlike an interactive prompt [I]). update.exe's exit
    code is not recorded: it is undocumented (docs/unsourced.md, U12)."""
    folder = server_path(console_folder(log_path), remote)
    lines = (
        "@echo off",
        f"md {marker_folder(log_path, run_id, 'started')}",
        update_command(media, arguments),
        f"md {marker_folder(log_path, run_id, 'finished')}",
    )
    batch = f"{folder}\\{CONSOLE_BATCH}"
    return (
        f'(if not exist "{folder}" md "{folder}") & ('
        + "& ".join(f"echo {line}" for line in lines)
        + f')> "{batch}"'
    )


def net_time_command(remote: str) -> str:
    """The server's clock, read on the jump host (docs/windows-output.md#net-time)."""
    return f"net time \\\\{remote}"


def schedule_command(log_path: str, remote: str, due: str) -> str:
    """Add the `at` job that runs the batch on the console's desktop at DUE (HH:MM of the
    server's clock); `cmd /c`: NT 4.0's Schedule service does not run a batch's internal
    commands itself (docs/windows-output.md#at)."""
    batch = f"{console_folder(log_path)}\\{CONSOLE_BATCH}"
    return f'at \\\\{remote} {due} /interactive "cmd /c {batch}"'


def run_record_command(log_path: str, record: RunRecord, remote: str | None = None) -> str:
    """Write the run record: the media's build, the services this run stopped, in the order
    they were stopped (service key names: letters, digits and _.$-, never a secret), and
    Kmserver.exe's version, the registry build and Store.exe's version before the run. REMOTE:
    the server, when the shell runs on its jump host (written over its admin share)."""
    lines = [
        _RUN_RECORD_HEADER,
        f"media_build={record.media_build}",
        f"stopped={','.join(record.stopped)}",
        f"kms_before={record.kms_before or ''}",
        f"build_before={record.build_before or ''}",
        f"store_before={record.store_before or ''}",
    ]
    if record.launch:
        lines += [f"launch={record.launch}", f"run_id={record.run_id}"]
    target = server_path(run_record_path(log_path), remote)
    return "(" + "& ".join(f"echo {line}" for line in lines) + f')> "{target}"'


def run_record_delete_command(log_path: str, remote: str | None = None) -> str:
    return f'del "{server_path(run_record_path(log_path), remote)}"'


def parse_run_record(text: str | None) -> RunRecord | None:
    """The run record from its text (None when there is none). A record this module did not
    write whole is not trusted: raises ServicePackError naming the file."""
    if text is None:
        return None
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and line.strip())
    try:
        if _RUN_RECORD_HEADER not in text:
            raise ValueError("no header line")
        build = Build.parse(values["media_build"].strip())
    except (KeyError, ValueError) as exc:
        raise ServicePackError(
            f"the run record {RUN_RECORD} beside the setup log cannot be read ({exc}). Delete "
            "it once no update.exe runs and the Exchange services run, then run again."
        ) from None
    stopped = tuple(name for name in values.get("stopped", "").strip().split(",") if name)
    return RunRecord(
        build,
        stopped,
        *(
            _build_or_none(values.get(name, "").strip())
            for name in ("kms_before", "build_before", "store_before")
        ),
        launch=values.get("launch", "").strip(),
        run_id=values.get("run_id", "").strip(),
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
    sections: Sections,
    facts: dict[str, t.Any],
    warnings: t.Sequence[str],
    store_version: str | None = None,
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
    # The version is None both when there is no update.exe and when it has no version resource
    # (wmic prints no Version line then, docs/windows-output.md#e12); only the first refuses.
    media = parse_wmic_datafile(*sections.need("sp_media").streams(), section="sp_media")
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
        media_found=media.found,
        media_version=_build_or_none(media.version),
        update_pids=update_pids,
        start_types=start_types,
        store_version=_build_or_none(store_version),
        build_from=facts.get("build_from"),
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
    record = None
    if "sp_record" in sections:
        record = parse_run_record(parse_type(*sections["sp_record"].streams(), section="sp_record"))
    dependencies: dict[str, tuple[str, ...]] = {}
    for index, name in enumerate(services):
        config = parse_sc_qc(*sections.need(f"sp_qc_{index}").streams(), section=f"sp_qc_{index}")
        if not isinstance(config, ScFailure):
            # "+Group" entries name load-order groups, not services.
            dependencies[name] = tuple(
                dep for dep in config.dependencies if not dep.startswith("+")
            )
    return LogDetails(path, size, text, dependencies, record)


class ShellLike(t.Protocol):  # pylint: disable=too-few-public-methods
    def run(self, command_line: str) -> CommandOutput:
        """Run COMMAND_LINE in the shell and return its output."""


OpenShell = t.Callable[[int], AbstractContextManager[ShellLike]]


def refuse_unreachable(reach: Reach | None, sections: Sections) -> None:
    """ServicePackError when REACH's jump host could not reach its server with one of this
    module's commands (sections `sp_*`): the host, the jump host and every cause
    (`_reach.remote_refusal`), instead of a ParseError of Windows' error text."""
    refusal = sections_refusal(reach, sections, skip=lambda name: not name.startswith("sp_"))
    if refusal is not None:
        raise ServicePackError(refusal)


def read_host(shell: ShellLike, media: str, reach: Reach | None = None) -> HostReadings:
    """Round trip 1 (and the binaries' versions of an install outside the default paths), of
    the server REACH names when the shell runs on its jump host."""
    remote = remote_of(reach)
    try:
        sections, facts = read_facts(shell.run, read_command(media, remote), 0, remote=remote)
        refuse_unreachable(reach, sections)
        return readings_from(sections, facts.facts, facts.warnings, facts.store_version)
    except RemoteUnreadable as exc:
        # Only a read through a jump host raises it (`read_facts` with a remote).
        raise ServicePackError(
            remote_failure_message(t.cast(Reach, reach), exc.error, exc.text)
        ) from None
    except (ProbeError, FactsError, ParseError) as exc:
        raise ServicePackError(
            f"could not read the host: {exc}. The host answered in an unexpected form; run with "
            "-vvvv to see the command and report it."
        ) from None


def read_details(
    shell: ShellLike, readings: HostReadings, with_log_text: bool, reach: Reach | None = None
) -> LogDetails:
    """Round trip 2: the setup log and the Exchange services' dependencies."""
    if readings.server_build is None or not readings.install_path:
        raise ServicePackError("no Exchange install path to find the setup log under.")
    path = setup_log_path(readings.server_build, readings.install_path)
    services = readings.exchange_services
    output = shell.run(detail_command(path, services, with_log_text, remote_of(reach)))
    try:
        sections = split_sections(output.stdout)
        refuse_unreachable(reach, sections)
        return log_details_from(sections, path, services)
    except (ProbeError, ParseError) as exc:
        raise ServicePackError(
            f"could not read the setup log, the run record or the services: {exc}. Run with -vvvv to see the "
            "command and report it."
        ) from None


# ---------------------------------------------------------------------------------------------
# While update.exe runs, and after it


@dataclass(frozen=True)
class PollReading:
    process_running: bool | None
    runs: tuple[SetupRun, ...]
    update_pid: int | None = None
    log_length: int = 0  # characters the setup log has now
    binaries: tuple[tuple[str, int | None, str, str], ...] | None = None  # BIN: name, size, time
    # The names in the at job's folder (`console_folder`), upper case; None when not read.
    markers: frozenset[str] | None = None

    @property
    def last_line(self) -> str | None:
        for run in reversed(self.runs):
            if run.lines:
                return run.last_line
        return None

    @property
    def progress(self) -> t.Hashable:
        """What changes while update.exe works: the log's length and the BIN folder's files."""
        return (self.process_running, self.log_length, self.binaries)


def poll_reading_from(sections: Sections, log_size: int) -> PollReading:
    """A PollReading from the sections of `poll_command`; `log_size`: the log's size before the
    run (only what the run appended is read)."""
    pid = None
    try:
        tasks = parse_tasklist_csv(*sections.need("sp_tasks").streams(), section="sp_tasks")
        pids = [task.pid for task in tasks if task.image.lower() == UPDATE_EXE]
        running: bool | None = bool(pids)
        pid = pids[0] if pids else None
    except ToolMissing:
        running = None
    text = parse_type(*sections.need("sp_log_text").streams(), section="sp_log_text")
    binaries = None
    if "sp_bin_dir" in sections:
        listing = parse_dir(*sections["sp_bin_dir"].streams(dir_output=True), section="sp_bin_dir")
        binaries = tuple(
            (entry.name.upper(), entry.size, entry.date, entry.time) for entry in listing.entries
        )
    markers = None
    if "sp_markers" in sections:
        folder = parse_dir(*sections["sp_markers"].streams(dir_output=True), section="sp_markers")
        markers = frozenset(entry.name.upper() for entry in folder.entries)
    return PollReading(
        running, runs_appended(text, log_size), pid, len(text or ""), binaries, markers
    )


def runs_appended(text: str | None, size_before: int) -> tuple[SetupRun, ...]:
    """The runs a setup log whose text is now `text` gained since it was `size_before` long."""
    return parse_setup_log(setup_log_appended(text or "", size_before))
