# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Assemble `ansible_facts.exchange` (its shape: RETURN of plugins/modules/exchange_facts.py)
from the probe's parsed sections.

The registry readings and their sources are in docs/registry.md: the v15, v14 and v8.0 setup keys
name 2007 and later; otherwise the 4.0-2003 `Exchange\\Setup` key does, confirmed by file
versions. Every reading records where it came from, and readings that disagree are reported as
`inconsistent` with all of them, never silently resolved.

A section that looks for one generation's setup key (`setup_2013` on an Exchange 5.5 host) and
cannot be read never sinks the facts of the generation the host shows: those stand, and a warning
quotes the unreadable answer and names the section. When no installed generation is found and
such a section could not be read, the facts are refused: the unreadable one may be the one there.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ._builds import Build, name_build, service_pack_release
from ._kms import (
    KM_IN_SECURITY_FOLDER,
    KMS_SERVER_KEY,
    KMS_SERVICE,
    KMS_SERVICE_KEY,
    event_dict,
    from_the_cd,
    is_kms_event,
    kms_database_folder,
    password_source,
)
from ._probe import (
    DEFAULT_INSTALL_PATHS,
    SETUP_KEY_2007,
    SETUP_KEY_2010,
    SETUP_KEY_2013_PLUS,
    SETUP_KEY_LEGACY,
    WINDOWS_NT_KEY,
    WINDOWS_VALUES,
    Runs,
    Sections,
    files_section_names,
    files_sections,
    kms_binary_paths,
    run_sections,
    split_sections,
)
from ._winout import (
    ParseError,
    RegQuery,
    ScFailure,
    ToolMissing,
    WmiFailed,
    parse_reg_query,
    parse_sc_qc,
    parse_sc_query,
    parse_wmic_events,
    parse_wmic_file_version,
    remote_call_error,
)

# `Services Version` is the product version times ten (docs/registry.md#setup-key).
_SERVICES_VERSION_FAMILY = {40: (4, 0), 50: (5, 0), 55: (5, 5), 60: (6, 0), 65: (6, 5)}


# The sections that look for one Exchange generation's setup key, newest first, and what each
# looks for (docs/registry.md#v8-v14-v15, #setup-key).
_MODERN_SECTIONS = (
    ("setup_2013", SETUP_KEY_2013_PLUS, "Exchange 2013 or later"),
    ("setup_2010", SETUP_KEY_2010, "Exchange 2010"),
    ("setup_2007", SETUP_KEY_2007, "Exchange 2007"),
)
_LEGACY_SECTION = ("setup_legacy", SETUP_KEY_LEGACY, "Exchange 4.0 to 2003")
# How much of an unreadable answer a warning quotes (already masked by the parser).
_QUOTED_MAX = 120
# How `sources.windows` marks a value of the Windows NT CurrentVersion key that was not read.
WINDOWS_NOT_THERE = "(not there)"
WINDOWS_UNREADABLE = "(unreadable)"
# The `inconsistent` entry of the server build's readings, and Store.exe's name among them.
SERVER_BUILD = "server build"
STORE_EXE = "Store.exe"


class FactsError(ValueError):
    """A section could not be understood; the message names the section and the line."""


class RemoteUnreadable(Exception):
    """The jump host could not reach or read the server it names: `error` is the Windows error
    its tool reported (`_winout.remote`), `text` that tool's output."""

    def __init__(self, remote: str, error: str, text: str) -> None:
        super().__init__(f"{remote}: {error}: {text}")
        self.remote = remote
        self.error = error
        self.text = text


@dataclass(frozen=True)
class _Unreadable:
    """A generation's section whose answer could not be read."""

    section: str
    key: str
    looks_for: str
    error: ParseError

    def quoted(self) -> str:
        """The answer's offending line and why it is not read, or the tool's own failure text,
        as the parser masked them; the line at most 120 characters."""
        if self.error.line is None:
            return f"'{_cut(self.error.reason)}'"
        return f"'{_cut(self.error.line)}': {self.error.reason}"


def _cut(text: str) -> str:
    return text if len(text) <= _QUOTED_MAX else text[: _QUOTED_MAX - 3] + "..."


@dataclass
class Readings:
    """What the probe found, with where each value came from."""

    facts: dict[str, t.Any]
    sources: dict[str, str] = field(default_factory=dict)
    inconsistent: list[dict[str, t.Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Set when Exchange is installed outside the default paths, or is 4.0 / 5.0 (KM Server in a
    # SECURITY folder beside the install path, `_kms.kms_home`): the binaries' versions need a
    # second command for this install path, with KM Server where `files_family` keeps it.
    needs_files_of: str | None = None
    # Generation sections whose answer could not be read (see the module docstring).
    unreadable: list[_Unreadable] = field(default_factory=list)
    files_family: tuple[int, int] | None = None
    # Store.exe's file version as wmic read it (None: not found or not readable); not a fact of
    # ansible_facts.exchange, but the service pack run's proof (_servicepack_plan, KB Q243604).
    store_version: str | None = None


def _reg(sections: Sections, name: str, key: str) -> RegQuery:
    return parse_reg_query(*sections.need(name).streams(), section=name, key=key)


def _generation_key(
    sections: Sections, readings: Readings, name: str, key: str, looks_for: str
) -> RegQuery | None:
    """One generation's setup key, or None when its answer cannot be read (kept in
    `readings.unreadable`: `_assemble` decides whether that sinks the facts)."""
    try:
        return _reg(sections, name, key)
    except ParseError as exc:
        readings.unreadable.append(_Unreadable(name, key, looks_for, exc))
        return None


def _dword(query: RegQuery, key: str, name: str) -> int | None:
    value = query.value(key, name)
    return value.data if value is not None and isinstance(value.data, int) else None


def _string(query: RegQuery, key: str, name: str) -> str | None:
    value = query.value(key, name)
    return value.data if value is not None and isinstance(value.data, str) else None


def _why_unread(exc: ToolMissing | WmiFailed) -> tuple[str, str]:
    """Why a reading is unavailable, as a warning says it, and as its `sources` entry."""
    if isinstance(exc, ToolMissing):
        return f"'{exc.tool}' is not available on this host", f"unavailable ({exc.tool} missing)"
    return f"WMI did not answer ({exc.description})", f"unavailable (WMI: {exc.description})"


def _file_version(sections: Sections, name: str, readings: Readings) -> str | None:
    if name not in sections:
        return None
    try:
        return parse_wmic_file_version(*sections[name].streams(), section=name)
    except (ToolMissing, WmiFailed) as exc:
        # Windows 2000 and NT 4.0 have no wmic (docs/windows-output.md#which-tool-exists), and
        # NT 4.0 has WMI only with WMI core installed (KB Q219378; which classes WMI core serves
        # is unsourced). The version is unknown, never guessed: the evidence is then the
        # registry alone, which is weaker; say so once.
        why, source = _why_unread(exc)
        message = (
            f"{why}, so file versions (Kmserver.exe, Store.exe) cannot be read; the facts rest "
            "on the registry alone."
        )
        if message not in readings.warnings:
            readings.warnings.append(message)
        readings.sources["file_versions"] = source
        return None


def _modern_setup(sections: Sections, readings: Readings) -> tuple[Build, str | None] | None:
    for name, key, looks_for in _MODERN_SECTIONS:
        query = _generation_key(sections, readings, name, key, looks_for)
        if query is None or not query.found:
            continue
        parts = [
            _dword(query, key, value)
            for value in ("MsiProductMajor", "MsiProductMinor", "MsiBuildMajor", "MsiBuildMinor")
        ]
        if None in parts[:3]:
            readings.warnings.append(
                f"{key} exists but lacks MsiProductMajor / MsiProductMinor / MsiBuildMajor; "
                "it is ignored (a leftover of an uninstall?)."
            )
            continue
        major, minor, build, revision = (part or 0 for part in parts)
        readings.sources["build"] = (
            f"{key}: MsiProductMajor.MsiProductMinor.MsiBuildMajor.MsiBuildMinor"
        )
        return Build(major, minor, build, revision), _string(query, key, "MsiInstallPath")
    return None


def _legacy_build(
    family: tuple[int, int] | None,
    newest: int | None,
    sp_build: int | None,
    sp_number: int | None,
) -> tuple[Build, str] | None:
    """The server build from the Setup key, and the value that decided it: NewestBuild (KB
    Q158956, documented for 4.0 only); without it ServicePackBuild (Greenbone); without both,
    ServicePackNumber (Tenable), read as the build of that service pack in the build table.
    Sources: docs/registry.md#which-value-an-sp-writes."""
    if family is None:
        return None
    for name, number in (("NewestBuild", newest), ("ServicePackBuild", sp_build)):
        if number is not None:
            return Build(family[0], family[1], number), name
    if sp_number is not None:
        release = service_pack_release(family, sp_number)
        if release is not None:
            return Build(family[0], family[1], release.build.build), "ServicePackNumber"
    return None


def _legacy_setup(
    sections: Sections, readings: Readings
) -> tuple[Build, str | None, RegQuery, str] | None:
    name, key, looks_for = _LEGACY_SECTION
    query = _generation_key(sections, readings, name, key, looks_for)
    if query is None or not query.found:
        return None
    services_version = _dword(query, key, "Services Version")
    family = _SERVICES_VERSION_FAMILY.get(services_version or -1)
    values = {
        name: _dword(query, key, name)
        for name in ("NewestBuild", "ServicePackBuild", "ServicePackNumber")
    }
    decided = _legacy_build(
        family, values["NewestBuild"], values["ServicePackBuild"], values["ServicePackNumber"]
    )
    if decided is None:
        readings.warnings.append(
            f"{key} exists but its Services Version ({services_version}), NewestBuild "
            f"({values['NewestBuild']}), ServicePackBuild ({values['ServicePackBuild']}) and "
            f"ServicePackNumber ({values['ServicePackNumber']}) do not name an Exchange 4.0 - "
            "2003 build; Remove All can leave the key behind (KB Q178975)."
        )
        return None
    build, build_from = decided
    readings.sources["build"] = (
        f"{key}: Services Version {services_version}, {build_from} {values[build_from]}"
    )
    if build_from == "ServicePackNumber":
        readings.warnings.append(
            f"{key} has no NewestBuild or ServicePackBuild; the build {build.short} is that of "
            f"service pack {values[build_from]} (ServicePackNumber), so a hotfix or rollup above "
            "it does not show. Store.exe's file version shows the level installed (KB Q278518)."
        )
    return build, _string(query, key, "Services"), query, build_from


def _check_legacy_readings(
    build: Build, build_from: str, query: RegQuery, store_version: str | None, readings: Readings
) -> None:
    """The SP values and Store.exe must agree with the build (which of them an SP writes is not
    documented, docs/registry.md#which-value-an-sp-writes: so all are read and compared)."""
    key = SETUP_KEY_LEGACY
    observed: dict[str, t.Any] = {}
    newest = _dword(query, key, "NewestBuild")
    if newest is not None:
        observed["NewestBuild"] = newest
    sp_build = _dword(query, key, "ServicePackBuild")
    if sp_build is not None:
        observed["ServicePackBuild"] = sp_build
    sp_number = _dword(query, key, "ServicePackNumber")
    named = name_build(build)
    if sp_number is not None:
        observed["ServicePackNumber"] = sp_number
    if store_version is not None:
        observed[STORE_EXE] = store_version
    disagreements = []
    if sp_build is not None and sp_build != build.build:
        disagreements.append("ServicePackBuild")
    if sp_number is not None and sp_number != named.service_pack:
        disagreements.append("ServicePackNumber")
    if store_version is not None:
        try:
            store = Build.parse(store_version)
        except ValueError:
            store = None
        if store is None or name_build(store).service_pack != named.service_pack:
            disagreements.append(STORE_EXE)
    if disagreements:
        readings.inconsistent.append(
            {
                "what": SERVER_BUILD,
                "readings": observed,
                "disagree": disagreements,
            }
        )
        why = " (written by the last Setup or Update run, KB Q158956)"
        readings.warnings.append(
            f"the server build readings disagree: {observed}; the build is taken from "
            f"{build_from}{why if build_from == 'NewestBuild' else ''}. Check the service pack "
            "with Store.exe's file version (KB Q278518)."
        )


def store_version_of(facts: t.Mapping[str, t.Any]) -> str | None:
    """Store.exe's file version as `ansible_facts.exchange` carries it: in the server build's
    `inconsistent` entry, when it disagrees with the registry's service pack (the facts hold it
    nowhere else); None when it agrees or was not read."""
    for inconsistency in facts.get("inconsistent") or []:
        if inconsistency.get("what") != SERVER_BUILD:
            continue
        if STORE_EXE not in (inconsistency.get("disagree") or []):
            continue
        version = (inconsistency.get("readings") or {}).get(STORE_EXE)
        return str(version) if version is not None else None
    return None


def _kms_service(sections: Sections) -> dict[str, t.Any]:
    config = parse_sc_qc(*sections.need("kms_qc").streams(), section="kms_qc")
    status = parse_sc_query(*sections.need("kms_query").streams(), section="kms_query")
    service: dict[str, t.Any] = {"name": KMS_SERVICE, "state": "absent", "start_mode": None}
    if isinstance(status, ScFailure):
        if not status.service_missing:
            raise FactsError(f"kms_query: sc failed with error {status.error}: {status.message}")
    else:
        service["state"] = status.state
    if isinstance(config, ScFailure):
        if not config.service_missing:
            raise FactsError(f"kms_qc: sc failed with error {config.error}: {config.message}")
        return service
    executable_args = config.binary_path != config.masked_binary_path
    service.update(
        start_mode=config.start_type,
        display_name=config.display_name,
        dependencies=list(config.dependencies),
        account=config.account,
        binary_path=config.masked_binary_path,
        # KB Q235418: a startup password in ImagePath makes the SP's update.exe fail.
        image_path_has_arguments=executable_args,
    )
    return service


def _events(sections: Sections, count: int, readings: Readings) -> list[dict[str, t.Any]]:
    if count <= 0 or "kms_events" not in sections:
        return []
    try:
        records = parse_wmic_events(*sections["kms_events"].streams(), section="kms_events")
    except (ToolMissing, WmiFailed) as exc:
        # NT 4.0 / 2000 have no command-line event reader (docs/windows-output.md#event-log-tools),
        # and WMI may not answer (see _file_version).
        why, source = _why_unread(exc)
        readings.warnings.append(
            f"{why}, so the MSExchangeKMS events cannot be read; look for event 5389 in the "
            "Application log with Event Viewer."
        )
        readings.sources["events"] = source
        return []
    readings.sources["events"] = f"Application log, source {KMS_SERVICE} (wmic ntevent)"
    wanted = [record for record in records if is_kms_event(record)]
    wanted.sort(key=lambda record: (record.time, record.record or 0), reverse=True)
    return [event_dict(record) for record in wanted[:count]]


def _file_index(install_path: str | None) -> int | None:
    if install_path is None:
        return None
    for index, root in enumerate(DEFAULT_INSTALL_PATHS):
        if root.lower() == install_path.rstrip("\\").lower():
            return index
    return None


def read_facts(
    run: Runs,
    probe_line: str,
    kms_event_count: int,
    progress: t.Callable[[str], None] = lambda message: None,
    remote: str | None = None,
) -> tuple[Sections, Readings]:
    """Run `probe_line` (facts_probe's sections, and any others the caller adds) and assemble
    the facts; a host that installed Exchange outside the default paths gets a second command
    for its binaries' versions there (of the server REMOTE names, when the shell runs on its
    jump host). Returns every section read, with the facts."""
    sections = split_sections(run(probe_line).stdout)
    if remote:
        _raise_if_unreachable(remote, sections)
    readings = assemble(sections, kms_event_count)
    if readings.needs_files_of:
        progress(f"reading Exchange binaries under {readings.needs_files_of}")
        sections.update(
            run_sections(
                run,
                files_sections(
                    (readings.needs_files_of,), remote=remote, family=readings.files_family
                ),
            )
        )
        readings = assemble(sections, kms_event_count, files_index=0)
    return sections, readings


def _raise_if_unreachable(remote: str, sections: Sections) -> None:
    """RemoteUnreadable when the jump host's first registry read of REMOTE failed with an error
    of the remote call (the name, the transport, the credentials), not an answer about the
    server: then nothing else of it was read either."""
    first = sections.need(_LEGACY_SECTION[0])
    error = None if first.succeeded else remote_call_error(first.text)
    if error:
        raise RemoteUnreadable(remote, error, " ".join(first.text.split())[:200])


def assemble(sections: Sections, kms_event_count: int, files_index: int | None = None) -> Readings:
    """Build the facts from the probe's sections. `files_index` names the file sections to use
    when the caller probed a non-default install path itself (sections kmserver_N ...)."""
    try:
        return _assemble(sections, kms_event_count, files_index)
    except ParseError as exc:
        raise FactsError(str(exc)) from exc


def _assemble(sections: Sections, kms_event_count: int, files_index: int | None) -> Readings:
    readings = Readings(facts={})
    facts = readings.facts
    kms_service = _kms_service(sections)
    kms_service_key = _reg(sections, "kms_service_key", KMS_SERVICE_KEY)
    events = _events(sections, kms_event_count, readings)

    modern = _modern_setup(sections, readings)
    legacy = None if modern else _legacy_setup(sections, readings)
    build: Build | None = None
    install_path: str | None = None
    if modern:
        build, install_path = modern
    elif legacy:
        build, install_path = legacy[0], legacy[1]

    index = files_index if files_index is not None else _file_index(install_path)
    km_elsewhere = build is not None and build.family in KM_IN_SECURITY_FOLDER
    if (
        files_index is None
        and install_path
        and build is not None
        and build.major < 8
        and (index is None or km_elsewhere)
    ):
        readings.needs_files_of = install_path
        readings.files_family = build.family
    versions: dict[str, str | None] = {"kmserver": None, "kmsmsg": None, "store": None}
    if index is not None:
        root = install_path if files_index is not None else DEFAULT_INSTALL_PATHS[index]
        # The first round trip reads every default path with 5.5's layout (family unknown).
        family = build.family if files_index is not None and build is not None else None
        paths = (
            *kms_binary_paths(root or "", family),
            rf"{(root or '').rstrip(chr(92))}\BIN\STORE.EXE",
        )
        for label, name, path in zip(versions, files_section_names(index), paths):
            versions[label] = _file_version(sections, name, readings)
            if versions[label]:
                readings.sources[f"{label}_version"] = f"file version of {path} (wmic datafile)"

    readings.store_version = versions["store"]
    if legacy and build is not None:
        _check_legacy_readings(build, legacy[3], legacy[2], versions["store"], readings)
    files_unreadable = "file_versions" in readings.sources
    installed = build is not None and (
        build.major >= 8 or versions["store"] is not None or files_unreadable
    )
    if build is not None and not installed and readings.needs_files_of is None:
        readings.warnings.append(
            f"{SETUP_KEY_LEGACY} names Exchange {build} but Store.exe was not found under "
            f"{install_path}; treating Exchange as not installed (Remove All can leave the Setup "
            "key behind, KB Q178975)."
        )
    facts["installed"] = bool(installed) or readings.needs_files_of is not None
    _judge_unreadable(readings, build if facts["installed"] else None)
    if build is not None and facts["installed"]:
        named = name_build(build)
        if named.warning:
            readings.warnings.append(named.warning)
        facts.update(
            product=named.product,
            version=named.version,
            build=str(build),
            build_number=build.build,
            service_pack=named.service_pack,
            release=named.release,
            install_path=install_path,
            build_from=legacy[3] if legacy else "MsiBuildMajor",
        )
    facts["kms"] = _kms_facts(
        build, install_path, versions, kms_service, kms_service_key, events, readings
    )
    facts["kms"].update(_password_source(sections, readings))
    facts["windows"] = _windows(sections, readings)
    facts["sources"] = readings.sources
    facts["inconsistent"] = readings.inconsistent
    return readings


def _password_source(sections: Sections, readings: Readings) -> dict[str, t.Any]:
    """Where KMS takes its startup password from (`_kms.PasswordSource`, KB Q196129), from the
    KMServer key: nothing when the key is not there; an answer that cannot be read is a warning
    (it decides no other fact)."""
    if "kms_server_key" not in sections:
        return {}
    try:
        query = _reg(sections, "kms_server_key", KMS_SERVER_KEY)
    except ParseError as exc:
        readings.warnings.append(
            f"kms_server_key: the answer to {KMS_SERVER_KEY} could not be read ({exc}), so "
            "whether KMS reads its startup password from a disk (MasterPasswordPath, KB Q196129) "
            "is unknown."
        )
        return {}
    if not query.found:
        return {}
    source = password_source(query)
    readings.sources["password_source"] = f"MasterPasswordPath under {KMS_SERVER_KEY}"
    return {"password_source": source.mode, "master_password_path": source.master_password_path}


def _windows(sections: Sections, readings: Readings) -> dict[str, str | None]:
    """`windows`: CurrentVersion, CurrentBuildNumber and CSDVersion as the registry gives them
    (docs/registry.md#windows-version), None for a value that is not there. `sources.windows`
    says, per value, whether it was read, not there, or unreadable (a warning quotes why: it
    decides no other fact)."""
    windows: dict[str, str | None] = {}
    said: list[str] = []
    for member, name, value in WINDOWS_VALUES:
        windows[member] = None
        if name not in sections:
            continue  # an answer recorded before the probe read it
        try:
            query = _reg(sections, name, WINDOWS_NT_KEY)
        except ParseError as exc:
            readings.warnings.append(
                f"{name}: the answer to {WINDOWS_NT_KEY} /v {value} could not be read ({exc}), "
                f"so windows.{member} is unknown."
            )
            said.append(f"{value} {WINDOWS_UNREADABLE}")
            continue
        found = query.value(WINDOWS_NT_KEY, value)
        if found is None:
            said.append(f"{value} {WINDOWS_NOT_THERE}")
        elif isinstance(found.data, str):
            windows[member] = found.data
            said.append(value)
        else:
            said.append(f"{value} (a {found.type}, not a string)")
    if said:
        readings.sources["windows"] = f"{WINDOWS_NT_KEY}: {', '.join(said)}"
    return windows


def _judge_unreadable(readings: Readings, installed: Build | None) -> None:
    """Generation sections that could not be read: with no installed generation found, one of them
    may be the one there, so the facts are refused (the parser's own message, as before); next to
    an installed generation, each is a warning that quotes its answer."""
    if not readings.unreadable:
        return
    if installed is None:
        raise readings.unreadable[0].error
    shows = name_build(installed).product
    for unreadable in readings.unreadable:
        readings.warnings.append(
            f"{unreadable.section}: the answer to {unreadable.key}, which looks for "
            f"{unreadable.looks_for}, could not be read ({unreadable.quoted()}). This host "
            f"shows {shows}, so its facts stand; if {unreadable.looks_for} may be installed "
            "here too, read that key by hand."
        )


def _kms_facts(
    build: Build | None,
    install_path: str | None,
    versions: dict[str, str | None],
    service: dict[str, t.Any],
    service_key: RegQuery,
    events: list[dict[str, t.Any]],
    readings: Readings,
) -> dict[str, t.Any]:
    kms: dict[str, t.Any] = {"installed": False, "service": service, "events": events}
    present = {
        "service": service["state"] != "absent",
        "service key": service_key.found,
    }
    if "file_versions" not in readings.sources:
        present["Kmserver.exe"] = versions["kmserver"] is not None
    if any(present.values()) and not all(present.values()):
        if readings.needs_files_of is None:
            missing = [name for name, here in present.items() if not here]
            readings.warnings.append(
                f"KM Server is only partly installed (missing: {', '.join(missing)}); a service "
                "pack fails on such a host (KB Q196171, Q182814, Q290226). Repair or remove KM "
                "Server before reapplying a service pack."
            )
    kms["installed"] = all(present.values())
    database_path = (
        kms_database_folder(install_path, build.family)
        if build is not None and install_path
        else None
    )
    if database_path:
        kms["database_path"] = database_path
    binary = versions["kmserver"]
    if binary is None:
        return kms
    kms["binary_build"] = binary
    binary_build = Build.parse(binary)
    binary_named = name_build(binary_build)
    kms["binary_release"] = binary_named.release
    if versions["kmsmsg"] and versions["kmsmsg"] != binary:
        # KB Q151689: Kmsmsg.dll and Kmserver.exe must carry the same version.
        readings.inconsistent.append(
            {
                "what": "KM Server binaries",
                "readings": {"Kmserver.exe": binary, "Kmsmsg.dll": versions["kmsmsg"]},
            }
        )
        readings.warnings.append(
            f"Kmserver.exe is {binary} but Kmsmsg.dll is {versions['kmsmsg']}; they must match "
            "(KB Q151689). Reapply the service pack."
        )
    if build is not None:
        # On one server the sourced case is the Exchange CD's Kmserver.exe under a service pack
        # (KB Q259906 MORE INFORMATION, Q192044); an earlier SP's build is no proof (no source
        # lists Kmserver.exe per SP). The pair is judged against the build that last ran the KM
        # database (_parity).
        kms["matches_server"] = not from_the_cd(binary_build, build)
    return kms
