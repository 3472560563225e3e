# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The model of KB Q259906: Exchange releases, host builders, service control, KMS, update.exe.

What the lab makes true (each rule cites its source; "[lab]" marks a choice no source settles):

Service control (the SCM rules the KB relies on)
- Starting a service starts its stopped dependencies first; one that cannot start fails the
  start with 1068 (KB Q245230: "The SCM guarantees that dependencies will automatically be
  started prior to the starting of the service itself"). MSExchangeKMS depends on MSExchangeDS
  (KB Q143380), MSExchangeDS on MSExchangeSA.
- Stopping a service with running dependents fails with 1051 unless the caller stops them first
  (Q245230); `net stop ... /y` does (docs/windows-output.md#net).
- `sc start` returns at START_PENDING; the outcome settles when the next command starts (see
  `state.PendingTransition`) [lab]. `net start` / `net stop` wait for the outcome.

KM Server start (KB Q259906; each check names its KB), checked in this order [lab]:
1. The KM database must be intact (all files, recorded hashes). Exchange 5.5: else event 5058
   (Q190698) and the service stops with exit code 1066 and service code 1 [lab]: no source gives
   KMS's exit code, nor says that it stops. Exchange 2000: else event 5085 (KB 818952), whose
   text says "The service started, but Admin/User can not do any operation except restoring the
   database from a backup set", so KMS keeps RUNNING and the database's stamp does not change.
   (KB 818952's SYMPTOMS line also says KMS "does not start"; the lab follows the event's text.
   The collection fails such a start on the new 5085 whether KMS runs or not.)
2. The startup password (first start parameter, else anything after the program in ImagePath
   (Q235418), else the file Kmserver.pwd in the MasterPasswordPath folder (Q196129)) must match,
   else event 5057 "The supplied password is not valid." and exit code 2140 (Q184420).
   The password decrypts the database (Q154531), so it is checked before the stamp is read.
   That order, and that a start parameter wins over the disk, are the lab's [lab]: no source says
   what KMS does with both. The file name is Q196129's (Q155216 says Kmspwd.ini) [lab].
   A host built with `startup_disk` has a floppy drive A: holding Kmserver.pwd and
   MasterPasswordPath / BackupPasswordPath set to "A:\\", as Q196129 sets them; its KMS starts
   with no start parameter. The drive letter, the disk's label and size are the lab's [lab].
3. Kmserver.exe's build (major.minor.build of its version resource) must not be older than the
   database stamp, else ESE97 event 101 and MSExchangeKMS event 5389 "KMS is exiting with error
   0." and the service stops (Q259906; Q274321 shows 101 beside 5389), with WIN32_EXIT_CODE 0
   [I] (read from the event's "error 0"; no source shows the service's exit code).
4. Otherwise it runs, and the stamp becomes the running build when that is later (never lower)
   [lab]: Q259906 only says an older build fails; that a later one runs and restamps is the
   lab's.

update.exe (where it lives: KB Q191013, Q198347; no source gives its switches or exit codes)
- Refuses when Exchange is missing, or is another version than the kit's [lab: the refusal and
  its wording]. Refuses when ImagePath of MSExchangeKMS has anything after the program: "The system cannot
  find the file specified." (Q235418). Refuses, logging only the "initialized" line, when the
  KMS component is half-removed (Q290226, 0xc0020002). Refuses to downgrade [lab].
- Stops the Exchange services ("the Microsoft Exchange services will be stopped during the
  reinstall", Q290226; which ones: those whose program is under the Exchange folder, and a
  service that will not stop fails the run, are [lab]), lays down the media's binaries for the installed components, writes
  NewestBuild (Q158956) and ServicePackNumber / ServicePackBuild (which of them a real SP writes
  is not documented, docs/registry.md) [lab], applies the media's start types [lab option], and
  restarts the services that were running before,
  except MSExchangeKMS, which needs its startup password (Q184420; Performance Optimizer cannot
  restart it either, Q263718) [lab]. `/R` (forklift, Q148992) restarts nothing.
- Appends each run to "Exchange Server Setup.log" at the root of the Exchange drive, opening
  with "++++ Microsoft Exchange Setup initialized ++++" (Q158545, Q290226); the other lines and
  the exit codes (0, or the "ID no" of the error) are the lab's definition [lab]: no source
  documents them. Never touches Kmsdata.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .state import (
    AUTO_START,
    DEMAND_START,
    DISABLED,
    HKLM,
    KMSERVER_KEY,
    RUNNING,
    SERVICES_KEY,
    START_PENDING,
    STOP_PENDING,
    STOPPED,
    Drive,
    EventSpec,
    FileSystemError,
    HostState,
    InstallerRun,
    KmsDatabase,
    Media,
    PendingTransition,
    ServiceConfig,
    ServiceStatus,
    format_time,
    normalize_path,
    wait_unlocked,
)
from .windows.formats import era_of

SETUP_KEY = HKLM + r"\SOFTWARE\Microsoft\Exchange\Setup"
KMS_COMPONENT_KEY = SETUP_KEY + r"\Key Management Server"
V15_SETUP_KEY = HKLM + r"\SOFTWARE\Microsoft\ExchangeServer\v15\Setup"
# Exchange 2016, 2019 and Subscription Edition share the v15 layout; SE is 15.2 from build 2562 on
# (CSS-Exchange build dictionary).
MODERN_VERSIONS = ("2016", "2019", "SE")
SE_FIRST_BUILD = 2562
KMS_SERVICE = "MSExchangeKMS"
DEFAULT_STARTUP_PASSWORD = "HZGYYHACWLQACTI"  # the example password of KB Q184420
SETUP_LOG_INITIALIZED = "++++ Microsoft Exchange Setup initialized ++++"
# When the lab's hosts were "installed" (E14 shows these times on the Kmsdata folder) [lab].
INSTALL_TIME = "2001-03-14T09:12:00"


# ---------------------------------------------------------------------------------------------
# Releases and their files (builds: Microsoft, "Exchange Server build numbers and release dates";
# file versions: KB Q243604)


@dataclass(frozen=True)
class Release:
    """One Exchange release and the file versions it lays down in <root>\\BIN."""

    product: str  # "5.5", "2000"
    build: int  # 2650
    service_pack: int
    date: str  # release date (files get it as their time)
    files: tuple[tuple[str, str], ...]  # server binaries
    kms_files: tuple[tuple[str, str], ...]  # KM Server component binaries

    @property
    def version(self) -> str:
        return {"5.5": "5.5", "2000": "6.0"}[self.product]

    @property
    def build_text(self) -> str:
        return f"{self.version}.{self.build}"

    @property
    def name(self) -> str:
        product = "Exchange Server 5.5" if self.product == "5.5" else "Exchange 2000 Server"
        return product + (f" SP{self.service_pack}" if self.service_pack else " RTM")

    @property
    def media_name(self) -> str:
        product = (
            "Microsoft Exchange Server 5.5"
            if self.product == "5.5"
            else "Microsoft Exchange 2000 Server"
        )
        return f"{product} Service Pack {self.service_pack}"


# Exchange 5.5: Store.exe, Mad.exe, Dsamain.exe, Kmsadmin.dll, Seckm.dll revisions per SP are from
# KB Q243604 (RTM to SP3) and Q176812 (RTM "1960.8"); Emsmta.exe, Kmserver.exe and Kmsmsg.dll
# revisions, and all of SP4, are [lab] (no KB lists them). EXCACSP.DLL 5.5.1928.0 is the RTM
# file (Q176737); Kmsupgrd.dll 5.5.2418.0 came with SP2 (Q193567). Exchange 2000 builds are
# Microsoft's (same page); its SP3 KMS binary is "6.0.6249.0" (KB 818952); other revisions [lab].
# (product, SP): (build, release date, server files, KM Server files); a file is "NAME:revision"
# (of the release's build) or "NAME=full version".
_RELEASE_TABLE: dict[tuple[str, int], tuple[int, str, str, str]] = {
    ("5.5", 0): (
        1960,
        "1998-02-03",
        "STORE.EXE:6 MAD.EXE:5 DSAMAIN.EXE:4 EMSMTA.EXE:4 EXCACSP.DLL=5.5.1928.0",
        "KMSERVER.EXE:8 KMSMSG.DLL:8 KMSADMIN.DLL:3 SECKM.DLL:3",
    ),
    ("5.5", 1): (
        2232,
        "1998-08-05",
        "STORE.EXE:11 MAD.EXE:17 DSAMAIN.EXE:4 EMSMTA.EXE:4",
        "KMSERVER.EXE:0 KMSMSG.DLL:0 KMSADMIN.DLL:0 SECKM.DLL:0",
    ),
    ("5.5", 2): (
        2448,
        "1998-12-23",
        "STORE.EXE:8 MAD.EXE:8 DSAMAIN.EXE:1 EMSMTA.EXE:1",
        "KMSERVER.EXE:0 KMSMSG.DLL:0 KMSADMIN.DLL:0 SECKM.DLL:0 KMSUPGRD.DLL=5.5.2418.0",
    ),
    ("5.5", 3): (
        2650,
        "1999-09-09",
        "STORE.EXE:23 MAD.EXE:24 DSAMAIN.EXE:14 EMSMTA.EXE:14",
        "KMSERVER.EXE:12 KMSMSG.DLL:12 KMSADMIN.DLL:12 SECKM.DLL:12",
    ),
    ("5.5", 4): (
        2653,
        "2000-11-01",
        "STORE.EXE:23 MAD.EXE:24 DSAMAIN.EXE:14 EMSMTA.EXE:14",
        "KMSERVER.EXE:12 KMSMSG.DLL:12 KMSADMIN.DLL:12 SECKM.DLL:12",
    ),
    ("2000", 0): (
        4417,
        "2000-11-29",
        "STORE.EXE:0 MAD.EXE:0 EMSMTA.EXE:0",
        "KMSERVER.EXE:0 KMSMSG.DLL:0",
    ),
    ("2000", 1): (
        4712,
        "2001-06-21",
        "STORE.EXE:0 MAD.EXE:0 EMSMTA.EXE:0",
        "KMSERVER.EXE:0 KMSMSG.DLL:0",
    ),
    ("2000", 2): (
        5762,
        "2001-11-29",
        "STORE.EXE:4 MAD.EXE:4 EMSMTA.EXE:4",
        "KMSERVER.EXE:0 KMSMSG.DLL:0",
    ),
    ("2000", 3): (
        6249,
        "2002-07-18",
        "STORE.EXE:0 MAD.EXE:0 EMSMTA.EXE:0",
        "KMSERVER.EXE:0 KMSMSG.DLL:0",
    ),
}


def _files(build: str, spec: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in spec.split():
        if "=" in item:
            name, version = item.split("=")
        else:
            name, revision = item.rsplit(":", 1)
            version = f"{build}.{revision}"
        pairs.append((name, version))
    return tuple(pairs)


RELEASES: tuple[Release, ...] = tuple(
    Release(
        product,
        number,
        service_pack,
        date,
        _files(f"{'5.5' if product == '5.5' else '6.0'}.{number}", server),
        _files(f"{'5.5' if product == '5.5' else '6.0'}.{number}", kms),
    )
    for (product, service_pack), (number, date, server, kms) in _RELEASE_TABLE.items()
)

# Sizes of the binaries [lab] (and _binary_size's growth with the build [lab]); EXCACSP.DLL is
# 248 KB in 5.5 RTM (Q176737).
_FILE_SIZES = {
    "STORE.EXE": 4_812_560,
    "MAD.EXE": 1_029_392,
    "DSAMAIN.EXE": 1_562_896,
    "EMSMTA.EXE": 1_134_864,
    "EXCACSP.DLL": 253_952,
    "KMSERVER.EXE": 145_680,
    "KMSMSG.DLL": 48_400,
    "KMSADMIN.DLL": 233_744,
    "SECKM.DLL": 78_096,
    "KMSUPGRD.DLL": 61_200,
    "EXSETUP.EXE": 35_592,
}
# The KM database of E14 (only Kmsmdb.edb is named by a KB, Q201271; the names edb.chk and
# edb.log and all sizes are [lab]).
KMS_DATABASE_FILES = (("edb.chk", 8192), ("edb.log", 1_048_576), ("Kmsmdb.edb", 2_105_344))


def release(product: str, service_pack: int) -> Release:
    for candidate in RELEASES:
        if candidate.product == product and candidate.service_pack == service_pack:
            return candidate
    raise ValueError(f"no Exchange {product} SP{service_pack} in the lab's release table")


def release_for_build(product: str, build: int) -> Release | None:
    for candidate in RELEASES:
        if candidate.product == product and candidate.build == build:
            return candidate
    return None


def build_tuple(text: str | None) -> tuple[int, int, int]:
    """major.minor.build of a version string ("5.5.1960.8" -> (5, 5, 1960)); never a float."""
    if not text:
        return (0, 0, 0)
    parts = [int(part) for part in text.split(".")[:3]]
    while len(parts) < 3:
        parts.append(0)
    return parts[0], parts[1], parts[2]


def release_name(product: str, build: int) -> str:
    """Name a 4.0-2003 style build: the greatest SP build not above it; above = "+ hotfix"."""
    candidates = [r for r in RELEASES if r.product == product and r.build <= build]
    if not candidates:
        return f"Exchange {product} build {build}"
    best = max(candidates, key=lambda r: r.build)
    return best.name + (" + hotfix" if best.build != build else "")


def _binary_size(name: str, version: str) -> int:
    return _FILE_SIZES.get(name.upper(), 65_536) + 16 * (build_tuple(version)[2] % 4096)


def _binary_seed(name: str, version: str) -> str:
    return f"binary:{name.upper()}:{version}"


# ---------------------------------------------------------------------------------------------
# Event texts as the KBs quote them: 5389 Q259906, 5015 and ESE97's 101 Q274321, 5057 Q184420,
# 5058 Q190698, 5085 KB 818952. The KBs give no type for 5057 and 5058: "Error" is [lab].


@dataclass(frozen=True)
class EventText:
    source: str
    type: str
    message: str


EVENT_TEXTS: dict[int, EventText] = {
    5389: EventText("MSExchangeKMS", "Information", "KMS is exiting with error 0."),
    5015: EventText(
        "MSExchangeKMS",
        "Error",
        "Microsoft Exchange Key Management service failed logging on as a MAPI client.",
    ),
    5057: EventText("MSExchangeKMS", "Error", "The supplied password is not valid."),
    5058: EventText(
        "MSExchangeKMS",
        "Error",
        "Microsoft Exchange Key Management service has trapped an exception. Event data "
        "contains exception and context records.",
    ),
    5085: EventText(
        "MSExchangeKMS",
        "Error",
        "KMS can not mount the key database. Either the database is missing or it is corrupted. "
        "The service started, but Admin/User can not do any operation except restoring the "
        "database from a backup set. After restoring, please stop and restart the service.",
    ),
    101: EventText("ESE97", "Information", "MSExchangeKMS (2480) The database engine stopped."),
}
# Q274321's wording of 5389 (same ID, other text), which that KB shows on Exchange Server 5.5 SP3
# under Windows 2000, not on Exchange 2000 Server. The lab writes it on its Exchange 2000 hosts
# [lab]: no source gives Exchange 2000's 5389 text, and two texts for one ID make sure that
# nothing matches the event by text.
EVENT_5389_LONG = "Microsoft Exchange Key Management service is exiting with return code 0."


def _event_spec(product: str, event_id: int, pid: int = 2480) -> EventSpec:
    text = EVENT_TEXTS[event_id]
    message = text.message
    if event_id == 5389 and product == "2000":
        message = EVENT_5389_LONG
    if event_id == 101:
        message = f"MSExchangeKMS ({pid}) The database engine stopped."
    return EventSpec(text.source, event_id, text.type, message)


# ---------------------------------------------------------------------------------------------
# Host builders


def build_windows_host(
    name: str,
    address: str,
    *,
    os: str = "2016",
    domain: str = "EXCHDOM",
    clock: str | None = None,
    faults: Mapping[str, Any] | None = None,
    label: str = "",
) -> HostState:
    """A Windows server with no Exchange: drive C:, System32 with the era's programs, registry."""
    era = era_of(os)
    host = HostState(name=name, address=address, os=os, domain=domain, clock=clock)
    # Serial and free space as E14 shows them; the size, the file times and the files' versions
    # (the era's Windows version + ".0") are [lab].
    host.drives["C:"] = Drive("C:", label, "1A2B-3C4D", 4 * 1024**3, 1_234_567_890)
    windows_time = "2000-01-01T00:00:00"
    host.fs.make_dirs("C:\\", windows_time)
    system32 = era.system_root + "\\system32"
    host.fs.make_dirs(system32 + "\\wbem", windows_time)
    if "powershell.exe" in era.tools:
        host.fs.make_dirs(system32 + "\\WindowsPowerShell\\v1.0", windows_time)
    # Imported here: the tool modules import this module (sc, net and update.exe use it).
    from .windows.tools import iter_program_files

    for program in iter_program_files():
        if program not in era.tools:
            continue
        folder = {
            "wmic.exe": system32 + "\\wbem",
            "powershell.exe": system32 + "\\WindowsPowerShell\\v1.0",
        }.get(program, system32)
        shown = "WMIC.exe" if program == "wmic.exe" else program
        version = era.windows_version + ".0"
        host.write_file(
            folder + "\\" + shown,
            seed=f"windows:{os}:{program}",
            size=_binary_size(program, version),
            version=version,
            mtime=windows_time,
        )
    host.fs.make_dirs(f"{era.profiles_root}\\Administrator", windows_time)
    current = HKLM + r"\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
    host.registry.set_value(current, "CurrentVersion", "REG_SZ", era.current_version)
    host.registry.set_value(
        current, "CurrentBuildNumber", "REG_SZ", era.windows_version.split(".")[2]
    )
    host.registry.set_value(current, "ProductName", "REG_SZ", era.product_name)
    host.registry.set_value(current, "SystemRoot", "REG_SZ", era.system_root)
    host.registry.set_value(
        HKLM + r"\SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName",
        "ComputerName",
        "REG_SZ",
        host.computer_name,
    )
    host.registry.ensure_key(SERVICES_KEY)
    # Faults last: a disk_full host must still get its files.
    host.faults.update(faults or {})
    return host


# Exchange 5.5 / 2000 core services (all AUTO_START): key name, display name, program, dependencies.
# Only KMS's name and dependency are sourced (KB Q143380, below); the other display names, the
# dependencies of MSExchangeIS and MSExchangeMTA, the AUTO_START type and the lower-case program
# paths are [lab].
_SERVICES_55 = (
    ("MSExchangeSA", "Microsoft Exchange System Attendant", "MAD.EXE", ()),
    ("MSExchangeDS", "Microsoft Exchange Directory", "DSAMAIN.EXE", ("MSExchangeSA",)),
    ("MSExchangeIS", "Microsoft Exchange Information Store", "STORE.EXE", ("MSExchangeDS",)),
    ("MSExchangeMTA", "Microsoft Exchange Message Transfer Agent", "EMSMTA.EXE", ("MSExchangeDS",)),
)
# Exchange 2000 has no MSExchangeDS (the directory moved to Active Directory); KMS's dependency
# there is unsourced: the lab makes it MSExchangeSA [lab].
_SERVICES_2000 = (
    ("MSExchangeSA", "Microsoft Exchange System Attendant", "MAD.EXE", ()),
    ("MSExchangeIS", "Microsoft Exchange Information Store", "STORE.EXE", ("MSExchangeSA",)),
    ("MSExchangeMTA", "Microsoft Exchange MTA Stacks", "EMSMTA.EXE", ("MSExchangeSA",)),
)
KMS_DISPLAY_NAMES = {
    "5.5": "Microsoft Exchange Key Management Server",  # Q143380, Q184420
    "2000": "Microsoft Exchange Key Management Service",  # after KB 818952; no sc qc sample [?]
}


def _event_entries(
    events: Iterable[int | Mapping[str, Any]], product: str, end: datetime
) -> list[tuple[str, EventSpec]]:
    """(time, spec) for events given as IDs or mappings; IDs get a minute each before `end`."""
    items = list(events)
    timed: list[tuple[str, EventSpec]] = []
    for index, item in enumerate(items):
        moment = format_time(end - timedelta(minutes=len(items) - index))
        if isinstance(item, int):
            timed.append((moment, _event_spec(product, item)))
            continue
        event_id = int(item["id"])
        default = _event_spec(product, event_id) if event_id in EVENT_TEXTS else None
        spec = EventSpec(
            item.get("source", default.source if default else "MSExchangeKMS"),
            event_id,
            item.get("type", default.type if default else "Information"),
            item.get("message", default.message if default else ""),
        )
        timed.append((str(item.get("time", moment)).rstrip("Z"), spec))
    return timed


def build_exchange_host(
    name: str,
    address: str,
    version: str | None = "5.5",
    sp: int = 3,
    *,
    kms: bool = True,
    km_binary_build: str | None = None,
    kms_state: str = "stopped",
    database_stamp: str | None = None,
    events: Sequence[int | Mapping[str, Any]] = (),
    os: str = "2016",
    media: Mapping[str, str] | None = None,
    startup_password: str = DEFAULT_STARTUP_PASSWORD,
    build: str | None = None,
    image_path_password: bool = False,
    database_corrupt: bool = False,
    startup_disk: bool = False,
    domain: str = "EXCHDOM",
    service_account: str = "ExchSvc",
    clock: str | None = None,
    faults: Mapping[str, Any] | None = None,
    store_build: str | None = None,
) -> HostState:
    """An Exchange server as a fleet describes it.

    version "5.5" / "2000": an Exchange 5.5 (root C:\\EXCHSRVR) or 2000 (root C:\\Program
    Files\\Exchsrvr) server at service pack `sp`, with the KM Server component when `kms`.
    `km_binary_build` is Kmserver.exe's version (None: the SP's own files; "5.5.1960.8" is the
    KB case, the CD's RTM binaries installed after the SP). `database_stamp` is the build that last
    ran the KM database (default: the server build). `events` are event IDs (texts from
    EVENT_TEXTS) or mappings {id, source, type, message, time}. `media` maps extracted SP kits to
    the build they install ({"D:\\\\EXCH55SP3": "5.5.2650"}). `image_path_password` puts the startup
    password into MSExchangeKMS's ImagePath (Q235418); `database_corrupt` damages Kmsmdb.edb;
    `startup_disk` keeps the startup password on a disk in A: (Q196129, see the module docstring).
    `store_build` is Store.exe's file version when it is not the service pack's (None: the SP's):
    the registry then names a service pack that did not complete (Store.exe's version shows the
    level installed, KB Q278518); that a run of Setup left Store.exe behind is [lab], and the next
    run of update.exe replaces it like every file of the kit.
    version "2016" / "2019" / "SE": see `build_modern_exchange_host`; None: no Exchange at all.
    """
    if version is None:
        host = build_windows_host(name, address, os=os, domain=domain, clock=clock)
        _add_events(host, events, "5.5")
        for root, media_build in (media or {}).items():
            add_media(host, root, media_build)
        host.faults.update(faults or {})
        return host
    if version in MODERN_VERSIONS:
        return build_modern_exchange_host(
            name, address, version, build=build, os=os, domain=domain, clock=clock, faults=faults
        )
    if version not in ("5.5", "2000"):
        raise ValueError(
            f"Exchange version {version!r} is not modelled; use 5.5, 2000, 2016, 2019 or SE"
        )
    if kms_state not in ("running", "stopped"):
        raise ValueError(f"kms_state must be 'running' or 'stopped', not {kms_state!r}")
    server = release(version, sp)
    if build is not None and build_tuple(build)[:2] != build_tuple(server.build_text)[:2]:
        raise ValueError(f"build {build} is not an Exchange {version} build")
    server_build = build_tuple(build)[2] if build else server.build
    if (
        store_build is not None
        and build_tuple(store_build)[:2] != build_tuple(server.build_text)[:2]
    ):
        raise ValueError(f"store_build {store_build} is not an Exchange {version} build")
    host = build_windows_host(name, address, os=os, domain=domain, clock=clock, label="EXCHANGE")
    root = r"C:\EXCHSRVR" if version == "5.5" else r"C:\Program Files\Exchsrvr"
    account = f"{domain}\\{service_account}"
    installed = server.date + "T05:50:00"
    host.fs.make_dirs(root + "\\BIN", INSTALL_TIME)
    for file_name, file_version in server.files:
        if file_name == "STORE.EXE" and store_build is not None:
            file_version = store_build
        host.write_file(
            root + "\\BIN\\" + file_name,
            seed=_binary_seed(file_name, file_version),
            size=_binary_size(file_name, file_version),
            version=file_version,
            mtime=installed,
        )
    # Setup key (docs/registry.md#setup-key). Value order as E1 shows it, with ServicePackBuild
    # added.
    first = release(version, 0)
    host.registry.set_value(SETUP_KEY, "Services", "REG_SZ", root)
    host.registry.set_value(
        SETUP_KEY, "Services Version", "REG_DWORD", 55 if version == "5.5" else 60
    )
    host.registry.set_value(SETUP_KEY, "ServicePackNumber", "REG_DWORD", sp)
    host.registry.set_value(SETUP_KEY, "ServicePackBuild", "REG_DWORD", server_build)
    host.registry.set_value(SETUP_KEY, "NewestBuild", "REG_DWORD", server_build)
    host.registry.set_value(SETUP_KEY, "Build", "REG_DWORD", first.build)
    services = _SERVICES_55 if version == "5.5" else _SERVICES_2000
    for service_name, display, program, depends in services:
        host.add_service(
            service_name,
            display,
            f"{root}\\bin\\{program.lower()}",
            start=AUTO_START,
            dependencies=depends,
            account=account,
            status=ServiceStatus(RUNNING, 0, 0, 0),
        )
    if kms:
        _install_kms(
            host,
            version,
            server,
            root,
            km_binary_build,
            kms_state,
            database_stamp or f"{server.version}.{server_build}",
            startup_password,
            image_path_password,
            account,
        )
    # Running services get PIDs below 1320, so the first service started gets 1320 (E6).
    pid = 1024
    for status in host.services.values():
        if status.state == RUNNING:
            status.pid = pid
            pid += 24
    host.next_pid = 1320
    _add_events(host, events, version)
    if kms and any(_event_id(event) == 5389 for event in events) and kms_state == "stopped":
        # KMS ran and exited (with error 0): no longer "never started".
        host.services[KMS_SERVICE].win32_exit_code = 0
    _write_install_log(host, root, server, kms)
    for media_root, media_build in (media or {}).items():
        add_media(host, media_root, media_build)
    if database_corrupt:
        damage_kms_database(host, "corrupt")
    if kms and startup_disk:
        insert_startup_disk(host, startup_password)
    # What `dir` reports free after the build (E14), whatever the build wrote.
    host.drives["C:"].free_bytes = 1_234_567_890
    host.faults.update(faults or {})
    return host


def _event_id(event: int | Mapping[str, Any]) -> int:
    return event if isinstance(event, int) else int(event["id"])


def _add_events(host: HostState, events: Iterable[int | Mapping[str, Any]], product: str) -> None:
    for moment, spec in _event_entries(events, product, host.now()):
        host.log_event(spec.source, spec.event_id, spec.type, spec.message, time=moment)


def _install_kms(
    host: HostState,
    version: str,
    server: Release,
    root: str,
    km_binary_build: str | None,
    kms_state: str,
    database_stamp: str,
    startup_password: str,
    image_path_password: bool,
    account: str,
) -> None:
    km_release = server
    if km_binary_build is not None:
        km_release = release_for_build(version, build_tuple(km_binary_build)[2]) or server
    for file_name, file_version in km_release.kms_files:
        if km_binary_build is not None and file_name in ("KMSERVER.EXE", "KMSMSG.DLL"):
            file_version = km_binary_build  # Kmsmsg.dll matches Kmserver.exe (Q151689)
        host.write_file(
            root + "\\BIN\\" + file_name,
            seed=_binary_seed(file_name, file_version),
            size=_binary_size(file_name, file_version),
            version=file_version,
            mtime=INSTALL_TIME if km_binary_build else km_release.date + "T05:50:00",
        )
    host.registry.ensure_key(KMS_COMPONENT_KEY)
    # Q196129: an empty MasterPasswordPath means the password is typed at every start (E2).
    host.registry.set_value(KMSERVER_KEY, "MasterPasswordPath", "REG_SZ", "")
    host.registry.set_value(KMSERVER_KEY, "BackupPasswordPath", "REG_SZ", "")
    # Q235418's default ImagePath, "C:\Exchsrvr\Bin\Kmserver.exe" (E7), for the default root.
    program = (
        r"C:\Exchsrvr\Bin\Kmserver.exe"
        if root.upper() == r"C:\EXCHSRVR"
        else root + r"\bin\kmserver.exe"
    )
    image_path = program + (" " + startup_password if image_path_password else "")
    depends = ("MSExchangeDS",) if version == "5.5" else ("MSExchangeSA",)
    running = kms_state == "running"
    host.add_service(
        KMS_SERVICE,
        KMS_DISPLAY_NAMES[version],
        image_path,
        start=DEMAND_START,  # "set to manual" after a 5.5 install (Q184420)
        dependencies=depends,
        account=account,
        status=ServiceStatus(RUNNING, 0, 0, 0) if running else ServiceStatus(),
    )
    data = root + "\\KMSDATA"
    host.fs.make_dirs(data, INSTALL_TIME)
    for file_name, size in KMS_DATABASE_FILES:
        seed = f"kmsdb:{host.computer_name}:{file_name}"
        if file_name == "Kmsmdb.edb":
            seed += "@" + database_stamp
        host.write_file(data + "\\" + file_name, seed=seed, size=size, mtime=INSTALL_TIME)
    host.kms_database = KmsDatabase(data, database_stamp, startup_password)
    host.record_kms_database()


# A 3.5" floppy in A: [lab: letter, label, serial; 1.44 MB is the format's size].
FLOPPY = Drive("A:", "KMSDISK", "2C4E-6A8B", 1_457_664, 1_456_128)


def insert_startup_disk(host: HostState, password: str) -> None:
    """KB Q196129's startup disk: MasterPasswordPath and BackupPasswordPath set to "A:\\", and a
    disk in A: with the text file Kmserver.pwd that holds only the password."""
    host.drives["A:"] = Drive(
        FLOPPY.letter, FLOPPY.label, FLOPPY.serial, FLOPPY.size_bytes, FLOPPY.free_bytes
    )
    host.fs.make_dirs("A:\\", INSTALL_TIME)
    host.write_file("A:\\Kmserver.pwd", data=password.encode("latin-1"), mtime=INSTALL_TIME)
    host.registry.set_value(KMSERVER_KEY, "MasterPasswordPath", "REG_SZ", "A:\\")
    host.registry.set_value(KMSERVER_KEY, "BackupPasswordPath", "REG_SZ", "A:\\")


def _write_install_log(host: HostState, root: str, server: Release, kms: bool) -> None:
    """The first run in Exchange Server Setup.log: the installation itself [lab lines]. Like
    every run the lab logs, it has no completion wording: no source shows one (Q202258's run
    simply ends)."""
    stamp = "[05:50:00]"
    components = "Microsoft Exchange Server" + (", Key Management Server" if kms else "")
    lines = [
        SETUP_LOG_INITIALIZED,
        f"{stamp} Setup mode: complete installation of {components}",
        f"{stamp} Installing into {root}",
    ]
    host.write_file(
        _setup_log_path(host, root, server.product),
        data=("\r\n".join(lines) + "\r\n").encode("ascii"),
        mtime=INSTALL_TIME,
    )


def _setup_log_path(host: HostState, root: str, product: str) -> str:
    """5.5: "Exchange Server Setup.log" at the root of the Exchange drive (Q158545).
    2000: "Exchange Server Setup Progress.log" (Q178975), at the system drive's root [?]."""
    if product == "5.5":
        return root[:2] + "\\Exchange Server Setup.log"
    return host.system_drive + "\\Exchange Server Setup Progress.log"


def build_modern_exchange_host(
    name: str,
    address: str,
    version: str = "2016",
    *,
    build: str | None = None,
    os: str = "2016",
    domain: str = "EXCHDOM",
    clock: str | None = None,
    faults: Mapping[str, Any] | None = None,
) -> HostState:
    """Exchange 2016 (default CU23, 15.1.2507.6), 2019 (CU15, 15.2.1748.10) or Subscription
    Edition "SE" (RTM, 15.2.2562.17): the v15 Setup key (MsiProductMajor/Minor, MsiBuildMajor/
    Minor, MsiInstallPath: docs/registry.md#v8-v14-v15) and ExSetup.exe's version. SE keeps 2019's
    layout; only its build (15.2.2562 and later) tells it apart. No KMS: Exchange 2003 and later
    have none (TechNet cc759249, "Migrating Exchange KMS to Windows Server 2003 CA")."""
    default = {"2016": "15.1.2507.6", "2019": "15.2.1748.10", "SE": "15.2.2562.17"}[version]
    text = build or default
    major, minor, build_major = build_tuple(text)
    if (major, minor) != (15, 1 if version == "2016" else 2) or (
        version != "2016" and (build_major >= SE_FIRST_BUILD) != (version == "SE")
    ):
        raise ValueError(f"build {text} is not an Exchange {version} build")
    revision = int(text.split(".")[3]) if text.count(".") >= 3 else 0
    host = build_windows_host(name, address, os=os, domain=domain, clock=clock, label="EXCHANGE")
    install = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\"
    host.registry.set_value(V15_SETUP_KEY, "MsiInstallPath", "REG_SZ", install)
    host.registry.set_value(V15_SETUP_KEY, "MsiProductMajor", "REG_DWORD", major)
    host.registry.set_value(V15_SETUP_KEY, "MsiProductMinor", "REG_DWORD", minor)
    host.registry.set_value(V15_SETUP_KEY, "MsiBuildMajor", "REG_DWORD", build_major)
    host.registry.set_value(V15_SETUP_KEY, "MsiBuildMinor", "REG_DWORD", revision)
    binaries = install + "Bin"
    host.fs.make_dirs(normalize_path(binaries), INSTALL_TIME)
    host.write_file(
        normalize_path(binaries + "\\ExSetup.exe"),
        seed=_binary_seed("EXSETUP.EXE", text),
        size=_binary_size("EXSETUP.EXE", text),
        version=text,
        mtime=INSTALL_TIME,
    )
    # Service names, display names, programs and the account of the v15 services: [lab].
    account = "LocalSystem"
    for service_name, display, program in (
        (
            "MSExchangeADTopology",
            "Microsoft Exchange Active Directory Topology",
            "Microsoft.Exchange.Directory.TopologyService.exe",
        ),
        (
            "MSExchangeIS",
            "Microsoft Exchange Information Store",
            "Microsoft.Exchange.Store.Service.exe",
        ),
        ("MSExchangeTransport", "Microsoft Exchange Transport", "MSExchangeTransport.exe"),
    ):
        path = normalize_path(binaries + "\\" + program)
        host.write_file(
            path, seed=_binary_seed(program, text), size=65_536, version=text, mtime=INSTALL_TIME
        )
        host.add_service(
            service_name,
            display,
            f'"{path}"',
            start=AUTO_START,
            account=account,
            status=ServiceStatus(RUNNING, 0, 0, 0),
        )
    pid = 2048
    for status in host.services.values():
        status.pid, pid = pid, pid + 36
    host.faults.update(faults or {})
    return host


def add_media(
    host: HostState,
    root: str,
    build: str,
    *,
    start_types: Mapping[str, int] | None = None,
) -> Media:
    """An SP kit extracted at `root` that installs `build` ("5.5.2650" = 5.5 SP3).

    5.5 kits keep update.exe in ENG\\SERVER\\SETUP\\I386 (KB Q191013, Q198347); 2000 kits in
    I386 [lab]: unsourced for 2000; a 2003 SP2 harness runs \\i386\\update.exe (gagomes/xenrt,
    scripts/remote/loadsim.remote)."""
    major, minor, number = build_tuple(build)
    product = {(5, 5): "5.5", (6, 0): "2000"}.get((major, minor))
    if product is None:
        raise ValueError(f"SP media for build {build}: only Exchange 5.5 and 2000 SPs are modelled")
    target = release_for_build(product, number)
    if target is None or target.service_pack == 0:
        raise ValueError(f"build {build} is not an Exchange {product} service pack")
    folder = r"ENG\SERVER\SETUP\I386" if product == "5.5" else "I386"
    root = normalize_path(root)
    media = Media(
        root,
        product,
        target.build_text,
        target.service_pack,
        target.media_name,
        folder + "\\UPDATE.EXE",
        target.files + target.kms_files,
        tuple((start_types or {}).items()),
    )
    letter = root[:2]
    if letter not in host.drives:
        # [lab] the media drive's label, serial and sizes.
        host.drives[letter] = Drive(letter, "SPMEDIA", "5E6F-7A8B", 8 * 1024**3, 6 * 1024**3)
    when = target.date + "T05:50:00"
    host.fs.make_dirs(normalize_path(root + "\\" + folder), when)
    # [lab] update.exe's file version is the build the kit installs (+ ".0"): no source gives
    # update.exe's version resource for any 5.5 or 2000 service pack (docs/unsourced.md, U2).
    host.write_file(
        media.installer_path,
        seed=f"update:{target.build_text}",
        size=_binary_size("UPDATE.EXE", target.build_text + ".0"),
        version=target.build_text + ".0",
        mtime=when,
    )
    host.media[root] = media
    return media


def damage_kms_database(
    host: HostState, how: str = "corrupt", file_name: str = "Kmsmdb.edb"
) -> None:
    """Make the KM database fail its check (5058): "corrupt" changes a file's bytes, "missing"
    deletes it (Q190698: "Kmsdata directory is corrupt or missing files")."""
    database = host.kms_database
    if database is None:
        raise ValueError(f"{host.name} has no KM database")
    path = database.path + "\\" + file_name
    entry = host.fs.file_entry(path)
    if entry is None:
        raise ValueError(f"{path} does not exist")
    if how == "missing":
        host.delete_file(path)
    elif how == "corrupt":
        host.write_file(
            path, seed=(entry.seed or "inline") + "#damaged", size=entry.size, mtime=entry.mtime
        )
    else:
        raise ValueError(f"how must be 'corrupt' or 'missing', not {how!r}")


def from_fleet_spec(
    name: str,
    address: str,
    spec: Mapping[str, Any],
    *,
    os: str = "2016",
    domain: str = "EXCHDOM",
    kms_startup_password: str = DEFAULT_STARTUP_PASSWORD,
    clock: str | None = None,
) -> HostState:
    """Build a host from a fleet file's host entry (tests/lab/exchlab/fleet.py's schema):
    {exchange: {version, sp, build, store_build} | null, kms: {installed, binary_build, state,
    database_stamp, image_path_password, database_corrupt, startup_disk}, events: [ids], media,
    faults, os}."""
    exchange = spec.get("exchange") or {}
    version = exchange.get("version")
    kms = dict(spec.get("kms") or {})
    return build_exchange_host(
        name,
        address,
        version,
        int(exchange.get("sp", 3)),
        kms=bool(kms.get("installed", version in ("5.5", "2000"))),
        km_binary_build=kms.get("binary_build"),
        kms_state=kms.get("state", "stopped"),
        database_stamp=kms.get("database_stamp"),
        events=list(spec.get("events") or ()),
        os=spec.get("os", os),
        media=spec.get("media"),
        startup_password=kms_startup_password,
        build=exchange.get("build"),
        image_path_password=bool(kms.get("image_path_password", False)),
        database_corrupt=bool(kms.get("database_corrupt", False)),
        startup_disk=bool(kms.get("startup_disk", False)),
        domain=domain,
        clock=clock,
        faults=spec.get("faults"),
        store_build=exchange.get("store_build"),
    )


def fleet_server_build(spec: Mapping[str, Any]) -> str | None:
    """The server build ("5.5.2650") a fleet host entry describes; None for no 5.5/2000 Exchange."""
    exchange = spec.get("exchange")
    if not exchange or exchange.get("version") not in ("5.5", "2000"):
        return None
    if exchange.get("build"):
        return ".".join(str(part) for part in build_tuple(exchange["build"]))
    return release(exchange["version"], int(exchange.get("sp", 3))).build_text


# ---------------------------------------------------------------------------------------------
# What `exchlab show` says about Exchange


def installed_product(host: HostState) -> tuple[str, str] | None:
    """(product, root) from the Setup key: ("5.5", "C:\\EXCHSRVR"), or None."""
    root = host.registry.data(SETUP_KEY, "Services")
    services_version = host.registry.data(SETUP_KEY, "Services Version")
    product = {55: "5.5", 60: "2000"}.get(services_version)  # type: ignore[arg-type]
    if not isinstance(root, str) or product is None:
        return None
    return product, root


def summary(host: HostState) -> dict[str, Any]:
    """The `exchange` part of a host's show output."""
    modern = host.registry.key(V15_SETUP_KEY)
    if modern is not None:
        data = {
            name: host.registry.data(V15_SETUP_KEY, name)
            for name in (
                "MsiProductMajor",
                "MsiProductMinor",
                "MsiBuildMajor",
                "MsiBuildMinor",
                "MsiInstallPath",
            )
        }
        minor = int(data["MsiProductMinor"] or 0)  # type: ignore[call-overload]
        product = {0: "2013", 1: "2016", 2: "2019"}.get(minor, "15")
        if minor == 2 and int(data["MsiBuildMajor"] or 0) >= SE_FIRST_BUILD:  # type: ignore[call-overload]
            product = "Subscription Edition"
        exsetup = host.fs.file_entry(
            normalize_path(str(data["MsiInstallPath"]) + "\\Bin\\ExSetup.exe")
        )
        return {
            "installed": True,
            "product": f"Exchange Server {product}",
            "version": f"{data['MsiProductMajor']}.{data['MsiProductMinor']}",
            "build": ".".join(
                str(data[part])
                for part in ("MsiProductMajor", "MsiProductMinor", "MsiBuildMajor", "MsiBuildMinor")
            ),
            "service_pack": None,
            "install_path": data["MsiInstallPath"],
            "binaries": {"ExSetup.exe": exsetup.version if exsetup else None},
            "kms_binary_build": None,
            "media": {},
            "updates": [],
        }
    found = installed_product(host)
    if found is None:
        return {"installed": False}
    product, root = found
    version = "5.5" if product == "5.5" else "6.0"
    newest = int(host.registry.data(SETUP_KEY, "NewestBuild", 0))  # type: ignore[arg-type]
    binaries = {}
    for entry in host.fs.children(normalize_path(root + "\\BIN"))[1]:
        binaries[entry.name.upper()] = entry.version
    return {
        "installed": True,
        "product": "Exchange Server 5.5" if product == "5.5" else "Exchange 2000 Server",
        "version": version,
        "build": f"{version}.{newest}",
        "service_pack": host.registry.data(SETUP_KEY, "ServicePackNumber"),
        "release": release_name(product, newest),
        "install_path": root,
        "binaries": binaries,
        "kms_binary_build": binaries.get("KMSERVER.EXE"),
        "media": {media.root: media.build for media in host.media.values()},
        "updates": [run.to_json() for run in host.installer_runs],
    }


# ---------------------------------------------------------------------------------------------
# Service control


@dataclass(frozen=True)
class ControlResult:
    """0 when the SCM accepted the request, else the Win32 error it returned."""

    error: int
    service: str | None = None


@dataclass(frozen=True)
class _Outcome:
    state: str
    win32_exit_code: int = 0
    service_exit_code: int = 0
    events: tuple[EventSpec, ...] = ()
    database_stamp: str | None = None


def start_service(
    host: HostState, name: str, arguments: Sequence[str] = (), *, wait: bool = False
) -> ControlResult:
    """StartService: dependencies first, then START_PENDING; `wait` settles the outcome now.
    1060, 1056 (docs/windows-output.md#sc-failures) and 1068 (KB Q245230) are sourced; 1058 for
    a disabled service and 2 for a missing program have no source cited [lab]."""
    canonical = host.service_name(name)
    config = host.service_config(name) if canonical else None
    if canonical is None or config is None:
        return ControlResult(1060)
    status = host.services[canonical]
    if status.state != STOPPED:
        return ControlResult(1056, canonical)
    if config.start == DISABLED:
        return ControlResult(1058, canonical)
    for dependency in config.dependencies:
        dependency_name = host.service_name(dependency)
        if dependency_name is None:
            return ControlResult(1068, canonical)
        host.settle(dependency_name)
        if host.services[dependency_name].state == RUNNING:
            continue
        result = start_service(host, dependency_name, (), wait=True)
        if result.error or host.services[dependency_name].state != RUNNING:
            return ControlResult(1068, canonical)
    if not host.fs.is_file(normalize_path(config.executable or "?", host.system_drive + "\\")):
        return ControlResult(2, canonical)
    status.state = START_PENDING
    status.pid = host.allocate_pid()
    status.win32_exit_code = status.service_exit_code = 0
    outcome = (
        kms_start_outcome(host, config, tuple(arguments), status.pid)
        if canonical.upper() == KMS_SERVICE.upper()
        else _Outcome(RUNNING)
    )
    status.pending = PendingTransition(
        outcome.state,
        host.command_seq,
        host.host_faults.pending_polls,
        outcome.win32_exit_code,
        outcome.service_exit_code,
        outcome.events,
        outcome.database_stamp,
        time=host.now_text(),
    )
    if wait:
        host.settle(canonical)
    return ControlResult(0, canonical)


def stop_service(
    host: HostState, name: str, *, stop_dependents: bool = False, wait: bool = False
) -> ControlResult:
    """ControlService(STOP): 1062 when stopped, 1061 when pending, 1051 with running dependents
    (unless `stop_dependents`, which stops them first, as `net stop /y` does). 1061 for a
    pending service has no source cited [lab]."""
    canonical = host.service_name(name)
    if canonical is None:
        return ControlResult(1060)
    status = host.services[canonical]
    if status.state == STOPPED:
        return ControlResult(1062, canonical)
    if status.state in (START_PENDING, STOP_PENDING):
        return ControlResult(1061, canonical)
    running = [d for d in host.dependents(canonical) if host.services[d].state != STOPPED]
    if running and not stop_dependents:
        return ControlResult(1051, canonical)
    for dependent in running:
        if host.services[dependent].state == RUNNING:
            stop_service(host, dependent, stop_dependents=True, wait=True)
        if host.services[dependent].state != STOPPED:
            return ControlResult(1051, canonical)
    hangs = canonical.upper() in (item.upper() for item in host.host_faults.service_wont_stop)
    status.state = STOP_PENDING
    status.pending = PendingTransition(
        STOPPED, host.command_seq, host.host_faults.pending_polls, 0, 0, (), None, hangs
    )
    if wait:
        host.settle(canonical)
    return ControlResult(0, canonical)


def stop_order(host: HostState, names: Iterable[str]) -> list[str]:
    """`names` with every service after the services that depend on it (dependents first)."""
    wanted = {name.upper(): name for name in names}
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        for dependent in host.dependents(name):
            if dependent.upper() in wanted:
                visit(dependent)
        ordered.append(name)

    for name in wanted.values():
        visit(name)
    return ordered


# ---------------------------------------------------------------------------------------------
# KM Server


def kms_password_supplied(
    host: HostState, config: ServiceConfig, arguments: tuple[str, ...]
) -> str | None:
    """The startup password KMS would read: start parameter, ImagePath argument, or floppy file."""
    if arguments:
        return arguments[0]
    if config.arguments:
        return config.arguments.split()[0]
    folder = host.registry.data(KMSERVER_KEY, "MasterPasswordPath")
    if isinstance(folder, str) and folder:
        try:
            entry = host.fs.file_entry(normalize_path(folder.rstrip("\\") + "\\Kmserver.pwd"))
        except FileSystemError:
            entry = None
        if entry is not None:
            return entry.content().decode("latin-1").strip()
    return None


def kms_start_outcome(
    host: HostState, config: ServiceConfig, arguments: tuple[str, ...], pid: int
) -> _Outcome:
    """What MSExchangeKMS does once started (the rules in this module's docstring)."""
    found = installed_product(host)
    product = found[0] if found else "5.5"
    database = host.kms_database
    if database is None or not host.kms_database_intact():
        if product == "2000":
            # KB 818952, event 5085: "The service started, but Admin/User can not do any
            # operation except restoring the database": KMS runs, without its database.
            return _Outcome(RUNNING, 0, 0, (_event_spec(product, 5085),))
        # A trapped exception (5058, Q190698) ends the process with a service-specific error:
        # 1066 and code 1 are [lab].
        return _Outcome(STOPPED, 1066, 1, (_event_spec(product, 5058),))
    supplied = kms_password_supplied(host, config, arguments)
    if host.host_faults.wrong_kms_password or supplied != database.startup_password:
        return _Outcome(STOPPED, 2140, 0, (_event_spec(product, 5057),))
    program = host.fs.file_entry(normalize_path(config.executable, host.system_drive + "\\"))
    running_build = build_tuple(program.version if program else None)
    stamp = build_tuple(database.stamp_build)
    if running_build < stamp:
        # Q259906: the database was last run by a later build than this Kmserver.exe. Exit
        # code 0: [I] from the event's "exiting with error 0".
        return _Outcome(STOPPED, 0, 0, (_event_spec(product, 101, pid), _event_spec(product, 5389)))
    new_stamp = None
    if running_build > stamp:
        new_stamp = ".".join(str(part) for part in running_build)
    return _Outcome(RUNNING, 0, 0, (), new_stamp)


# ---------------------------------------------------------------------------------------------
# update.exe


@dataclass(frozen=True)
class UpdateResult:
    exit_code: int
    outcome: str


# Exit codes: the "ID no" Exchange setup shows with an error (Q290226 shows 0xc0020002); the
# others are [lab] values in the same style. That update.exe exits with that ID is [lab]: no
# source gives its exit codes. ID_CANCELLED: the operator cancelled a prompt [lab].
ID_FILE_NOT_FOUND = 0xC0020002
ID_NOT_INSTALLED = 0xC0020003
ID_NEWER_INSTALLED = 0xC00A0015
ID_WRONG_PRODUCT = 0xC00A0016
ID_SERVICE_WONT_STOP = 0xC0020420
ID_COPY_FAILED = 0xC0070020
ID_DISK_FULL = 0xC0070070
ID_CANCELLED = 0xC00204FF


class _SetupLog:
    """Lines of one run, appended to the host's setup log as the run goes (`flush`), so a poll
    from another shell reads the progress while update.exe still runs."""

    def __init__(self, host: HostState, path: str | None) -> None:
        self.host = host
        self.path = path
        self.lines = [SETUP_LOG_INITIALIZED]
        self._written = 0

    def add(self, message: str) -> None:
        self.lines.append(f"[{self.host.now().strftime('%H:%M:%S')}] {message}")

    def flush(self) -> None:
        if self.path is None or self._written == len(self.lines):
            return
        existing = self.host.fs.file_entry(self.path)
        before = existing.content() if existing else b""
        new_lines = self.lines[self._written :]
        text = "".join(line + "\r\n" for line in new_lines).encode("ascii", errors="replace")
        try:
            self.host.write_file(self.path, data=before + text)
        except FileSystemError:
            pass  # a full disk loses the log, as it would on Windows
        self._written = len(self.lines)


def _wait(host: HostState, log: _SetupLog, seconds: float) -> None:
    """update.exe works for `seconds`: its log so far is on disk and other commands may run."""
    log.flush()
    wait_unlocked(seconds)


def find_media(host: HostState, program: str) -> Media | None:
    """The kit whose update.exe is at `program`: one extracted there, or a copy of one (a kit
    staged elsewhere: the copy an `operator` run puts under C:\\exchops\\sp), known by its
    update.exe's content."""
    wanted = normalize_path(program).upper()
    for media in host.media.values():
        if media.installer_path.upper() == wanted:
            return media
    entry = host.fs.file_entry(wanted)
    for media in host.media.values():
        original = host.fs.file_entry(media.installer_path)
        if entry is None or original is None or entry.sha256() != original.sha256():
            continue
        suffix = "\\" + media.installer.upper()
        found = entry.path
        root = found[: -len(suffix)] if wanted.endswith(suffix) else found.rpartition("\\")[0]
        return dataclasses.replace(media, root=root)
    return None


def run_update(host: HostState, program: str, switches: Sequence[str]) -> UpdateResult:
    """Run the SP's update.exe at `program` (a path on the host) with `switches`."""
    started = host.now_text()
    media = find_media(host, program)
    if media is None:
        # Not an Exchange SP kit the lab knows: nothing to install.
        result = UpdateResult(ID_FILE_NOT_FOUND, f"{program} is not an Exchange SP kit")
        host.installer_runs.append(_run_record(started, program, "", switches, result))
        return result
    found = installed_product(host)
    root = found[1] if found else host.system_drive
    log = _SetupLog(host, _setup_log_path(host, root, media.product))
    pid = host.next_pid
    host.next_pid += 4
    host.processes.append(("update.exe", pid))
    try:
        result = _update(host, media, tuple(switches), log)
    finally:
        host.processes.remove(("update.exe", pid))
    log.flush()
    host.installer_runs.append(_run_record(started, program, media.root, switches, result))
    return result


def _run_record(
    started: str, program: str, media: str, switches: Sequence[str], result: UpdateResult
) -> InstallerRun:
    return InstallerRun(started, program, media, tuple(switches), result.exit_code, result.outcome)


def _fail(log: _SetupLog, code: int, message: str) -> UpdateResult:
    """Setup shows its errors in a dialog ("ID no: 0xc0020002", Q290226; "NT ID:", Q248445), not
    in the log, which simply ends (Q202258). [lab] The dialog is answered at once and update.exe
    exits with the ID; nothing is appended to the log."""
    del log
    return UpdateResult(code, message)


def _wait_for_input(host: HostState, log: _SetupLog, seconds: float) -> UpdateResult:
    """[lab] update.exe stops at a prompt (Q235978: a file in use asks for Retry; Q191013:
    "follow the instructions displayed on the screen"): it stays alive for `seconds` with no
    log line and no file written, then the prompt is cancelled and it exits, leaving the
    services it stopped stopped and the files it copied in place."""
    log.flush()
    wait_unlocked(seconds)
    del host
    return UpdateResult(ID_CANCELLED, "cancelled at a prompt after waiting for input")


def _update(
    host: HostState, media: Media, switches: tuple[str, ...], log: _SetupLog
) -> UpdateResult:
    faults = host.host_faults
    found = installed_product(host)
    if found is None:
        return _fail(
            log, ID_NOT_INSTALLED, "Microsoft Exchange Server is not installed on this computer."
        )
    product, root = found
    if product != media.product:
        return _fail(
            log,
            ID_WRONG_PRODUCT,
            f"{media.name} cannot update Exchange {product} on this computer.",
        )
    installed = int(host.registry.data(SETUP_KEY, "NewestBuild", 0))  # type: ignore[arg-type]
    target = build_tuple(media.build)[2]
    # Q290226: KMS removed incorrectly (some of its parts left) -> only the first line is logged.
    kms_config = host.service_config(KMS_SERVICE)
    kms_parts = (
        kms_config is not None,
        host.registry.key(KMS_COMPONENT_KEY) is not None,
        host.registry.key(KMSERVER_KEY) is not None,
        host.fs.is_file(normalize_path(root + "\\BIN\\KMSERVER.EXE")),
    )
    if any(kms_parts) and not all(kms_parts):
        return UpdateResult(
            ID_FILE_NOT_FOUND,
            "The System cannot find the file specified (KMS half-removed, Q290226).",
        )
    log.add(
        f"{media.name} (build {media.build}); command line: " + " ".join(("update.exe", *switches))
    )
    log.add(f"Installed: Exchange {product} build {installed}, in {root}")
    if kms_config is not None:
        log.add(f"Checking the installed version of {kms_config.executable}")
        if kms_config.arguments:
            # Q235418: a password after Kmserver.exe in ImagePath.
            return _fail(log, ID_FILE_NOT_FOUND, "The system cannot find the file specified.")
    if target < installed:
        return _fail(
            log,
            ID_NEWER_INSTALLED,
            f"A newer version of Microsoft Exchange Server (build {installed}) is installed.",
        )
    log.add(
        "Setup will reinstall Microsoft Exchange Server files for your current Setup "
        "Configuration. Existing databases will be preserved."
    )
    exchange_services = [
        name
        for name in host.services
        if (config := host.service_config(name)) is not None
        and normalize_path(config.executable or "?", host.system_drive + "\\")
        .upper()
        .startswith(root.upper() + "\\")
    ]
    was_running = [
        name for name in exchange_services if host.services[name].state in (RUNNING, START_PENDING)
    ]
    for name in stop_order(host, exchange_services):
        host.settle(name)
        status = host.services[name]
        if status.state == STOPPED:
            continue
        log.add(f"Stopping service {name}")
        stop_service(host, name, stop_dependents=True, wait=True)
        if host.services[name].state != STOPPED:
            config = host.service_config(name)
            display = config.display_name if config else name
            return _fail(
                log, ID_SERVICE_WONT_STOP, f"Setup was unable to stop the {display} service."
            )
    _wait(host, log, faults.update_duration_s / 2)
    kms_installed = host.registry.key(KMS_COMPONENT_KEY) is not None
    kms_names = {name for name, _version in release(media.product, media.service_pack).kms_files}
    files = [
        (name, version) for name, version in media.files if kms_installed or name not in kms_names
    ]
    for index, (file_name, version) in enumerate(files):
        destination = normalize_path(root + "\\BIN\\" + file_name)
        if faults.update_waits_for_input_s > 0 and index == len(files) // 2:
            return _wait_for_input(host, log, faults.update_waits_for_input_s)
        if faults.sp_installer_fails and index == len(files) // 2:
            return _fail(
                log,
                ID_COPY_FAILED,
                f"An error occurred while copying {destination}: The process cannot access the "
                "file because it is being used by another process.",
            )
        try:
            host.write_file(
                destination,
                seed=_binary_seed(file_name, version),
                size=_binary_size(file_name, version),
                version=version,
                mtime=host.now_text(),
            )
        except FileSystemError as exc:
            return _fail(
                log,
                ID_DISK_FULL if exc.winerror == 112 else ID_COPY_FAILED,
                f"An error occurred while copying {destination}: {exc.message}",
            )
        log.add(f"Installed {destination} (version {version})")
    log.add(f"Updating registry key {SETUP_KEY}")
    host.registry.set_value(SETUP_KEY, "ServicePackNumber", "REG_DWORD", media.service_pack)
    host.registry.set_value(SETUP_KEY, "ServicePackBuild", "REG_DWORD", target)
    host.registry.set_value(SETUP_KEY, "NewestBuild", "REG_DWORD", target)
    for service_name, start in media.start_types:
        canonical = host.service_name(service_name)
        if canonical is not None:
            host.registry.set_value(
                SERVICES_KEY + "\\" + canonical, "Start", "REG_DWORD", int(start)
            )
            log.add(f"Set the start type of {canonical} to {start}")
    _wait(host, log, faults.update_duration_s / 2)
    forklift = any(switch.lower() in ("/r", "-r") for switch in switches)
    if not forklift:
        for name in list(reversed(stop_order(host, was_running))):
            if name.upper() == KMS_SERVICE.upper():
                log.add(
                    f"Service {name} was not restarted: it needs its startup password "
                    "(start it with its password)."
                )
                continue
            log.add(f"Starting service {name}")
            result = start_service(host, name, (), wait=True)
            if result.error == 0 and host.services[name].state != RUNNING:
                log.add(f"Warning: service {name} did not start.")
    # [lab] No completion line: no source shows how a 5.5 run ends its log (Q202258).
    return UpdateResult(0, "succeeded")
