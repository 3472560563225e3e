# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What KM Server is, in one place: its service and registry keys, its events and what each
means and fixes, what its exit codes mean, and how its startup password reaches it.

Everything else asks this module: the facts (events as results), the parity gate (what an event
on a target means), service control and the backup (how KMS is started, what a failed start
means). Sources: KB Q259906, Q274321, Q184420, Q190698, Q190713, Q235418, 818952; for the
startup password of a moved KM database Q154531, Q198814, Q155216, and for the startup disk
Q196129; the Microsoft Learn page of `sc start` (its ServiceArguments are the service's start
parameters).
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import ntpath
import re
import typing as t
from dataclasses import dataclass

from ._builds import Build, name_build, service_pack_release
from ._winout import EventRecord, RegQuery, ServiceStatus

KMS_SERVICE = "MSExchangeKMS"
KMS_SERVICE_KEY = rf"HKLM\SYSTEM\CurrentControlSet\Services\{KMS_SERVICE}"
# MasterPasswordPath / BackupPasswordPath of a startup floppy (KB Q196129).
KMS_SERVER_KEY = r"HKLM\SOFTWARE\Microsoft\Exchange\KMServer"
MASTER_PASSWORD_PATH = "MasterPasswordPath"
# The KM database folder of 5.5 and 2000, under Exchange's Services folder (KB Q201271).
KMSDATA_FOLDER = "KMSDATA"
# Exchange 4.0 and 5.0 keep KM Server in a SECURITY folder beside the Exchange folder, not inside
# it: KB Q143380 lists the KMS file as SECURITY\BIN\KMSERVER.EXE next to EXCHSRVR\BIN\MAD.EXE,
# and KB Q155216 backs up "the Security directory" of a 4.0 / 5.0 server (on 5.5 "there is no
# Security directory, because the KM server information is stored in the Exchsrvr\Kmsdata
# directory"). "Beside" is read as in the Exchange folder's parent: C:\SECURITY for C:\EXCHSRVR
# [I] (no KB shows an install outside a drive's root).
SECURITY_FOLDER = "SECURITY"
KM_IN_SECURITY_FOLDER = frozenset({(4, 0), (5, 0)})
# The versions whose KM Server folders are known (above): 4.0 to 2000.
_KM_FAMILIES = KM_IN_SECURITY_FOLDER | {(5, 5), (6, 0)}


def is_kms(name: str) -> bool:
    """Whether a service key name is KM Server's (service names are case-insensitive)."""
    return name.upper() == KMS_SERVICE.upper()


def kms_home(install_path: str, family: tuple[int, int] | None = None) -> str:
    """The folder whose BIN holds Kmserver.exe: Exchange's install path (`Services`) for 5.5
    and 2000 (KB Q235418) and when the version is unknown; the SECURITY folder beside it for 4.0
    and 5.0 (KB Q143380)."""
    root = install_path.rstrip("\\")
    if family in KM_IN_SECURITY_FOLDER:
        return ntpath.join(ntpath.dirname(root), SECURITY_FOLDER)
    return root


def kms_database_folder(install_path: str, family: tuple[int, int]) -> str | None:
    """The KM database folder: `<Services>\\KMSDATA` for 5.5 and 2000 (KB Q201271, KB 818952),
    the SECURITY folder beside `<Services>` for 4.0 and 5.0 (KB Q155216, Q143380); None for a
    version without KM Server."""
    if family not in _KM_FAMILIES:
        return None
    if family in KM_IN_SECURITY_FOLDER:
        return kms_home(install_path, family)
    return f"{kms_home(install_path)}\\{KMSDATA_FOLDER}"


# ---------------------------------------------------------------------------------------------
# KB Q259906 applies to Exchange 5.5 only ("Microsoft Exchange Server, version 5.5"). No KB shows
# Exchange 2000's KMS logging 5389 for a version mismatch (its documented start failure is 5085,
# KB 818952), so wherever the collection applies Q259906 to Exchange 2000 the link is inferred,
# and the words say so.


def q259906_for(version: str) -> str:
    """How a message cites KB Q259906 for a server of `version` ("5.5", "2000")."""
    if version == "5.5":
        return "KB Q259906"
    return f"KB Q259906, written for Exchange 5.5; for Exchange {version} the link is inferred"


# ---------------------------------------------------------------------------------------------
# The build that last ran the KM database, and KM binaries against it (KB Q259906).
#
# Q259906's cause: "the KM server database is running on a version of Microsoft Exchange Server
# that is later than the Exchange Server service pack that is installed on the new server". No
# source says how KMS records that build, so it is read where it shows: the file version of the
# Kmserver.exe that last ran the database (the old server's), compared with the new server's.
# No source lists the Kmserver.exe that each service pack installs (KB Q243604 lists KM files for
# RTM to SP3, Kmserver.exe not among them; SP4 "is simply a collection of fixes", ITPro, "The Pros
# and Cons of SP4", https://www.itprotoday.com/microsoft-exchange/pros-and-cons-sp4), so a
# Kmserver.exe below its server's service pack build is a finding, never a mismatch by itself.
# Builds compare on major.minor.build: Q259906 speaks of versions and service packs, the KM
# hotfixes below differ from them in that third part, and the fourth differs per file (Q243604).

# Where the build that last ran the KM database was read, strongest evidence first.
DATABASE_BUILD_FROM = (
    "source_kmserver",  # the old server's Kmserver.exe, read now
    "backup_manifest",  # the Kmserver.exe that kms_backup recorded beside its copy
    "kms_database_build",  # the operator's statement
    "source_server_build",  # the old server's Exchange build: weaker, KM files may lag it
)


def older_than_database(binary: Build, database: Build) -> bool:
    """KB Q259906's cause: Kmserver.exe of another Exchange version than the build that last ran
    the KM database, or older than it."""
    return binary.family != database.family or binary.sp_key < database.sp_key


def from_the_cd(binary: Build, server: Build) -> bool:
    """Kmserver.exe of another Exchange version than the server, or carrying its version's first
    (RTM) build, the Exchange CD's, on a server with a service pack: KM Server installed from the
    CD after the service pack, which must then be reapplied (KB Q259906 MORE INFORMATION,
    Q192044)."""
    if binary.family != server.family:
        return True
    first = service_pack_release(server.family, 0)
    server_sp = name_build(server).service_pack
    return first is not None and server_sp > 0 and binary.sp_key <= first.build.sp_key


@dataclass(frozen=True)
class KmsHotfix:
    kb: str
    kmserver: Build  # Kmserver.exe's file version after the hotfix
    summary: str


# Exchange 5.5 SP2 hotfixes that replace Kmserver.exe with a build between SP2 (2448) and SP3
# (2650); each KB's file table gives the version, and each says "first corrected in Exchange
# Server 5.5 Service Pack 3". Hotfixes leave the server's build as it was (KB Q278518).
KMS_HOTFIXES: tuple[KmsHotfix, ...] = (
    KmsHotfix("Q231751", Build(5, 5, 2602), "signing keys cannot be renewed after 5.5 SP2"),
    KmsHotfix("Q231307", Build(5, 5, 2606), "V1 certificates issued when V3 only is set"),
    KmsHotfix("Q230780", Build(5, 5, 2608), "KMS does not start after moving to V3 certificates"),
)


def kms_hotfix(build: Build) -> KmsHotfix | None:
    """The KM Server hotfix whose Kmserver.exe is `build` (major.minor.build), if the table has it."""
    for hotfix in KMS_HOTFIXES:
        if hotfix.kmserver.sp_key == build.sp_key:
            return hotfix
    return None


def is_hotfix_build(build: Build) -> bool:
    """A 4.0-2003 build between two service packs (Kmserver.exe 5.5.2606 is SP2 + hotfix,
    Q231307): no service pack installs it, a hotfix does."""
    return kms_hotfix(build) is not None or name_build(build).release.endswith(" + hotfix")


# ---------------------------------------------------------------------------------------------
# Events. Matched by source and ID, never by text: 5389 has two wordings (Q259906, Q274321).


@dataclass(frozen=True)
class KmsEvent:
    meaning: str  # what the event says about the host, with its KB
    fix: str  # what the operator does about it (a sentence without its closing period)


EVENTS: dict[int, KmsEvent] = {
    5389: KmsEvent(
        "MSExchangeKMS exited; with KM binaries older than the KM database's last build this "
        "is KB Q259906 (reapply the SP; that KB is written for Exchange 5.5, so on Exchange 2000 "
        "the link is inferred)",
        "Back up the KM database, then reapply the Exchange service pack so that Kmserver.exe is "
        "no longer older than the build that last ran the KM database (playbook "
        "exchops.kms.remediate_kms_move, role exchops.kms.kms_remediate)",
    ),
    5015: KmsEvent(
        "MSExchangeKMS failed logging on as a MAPI client: the service account lost its "
        "rights (KB Q274321); reapplying a service pack will not fix this",
        "Give the service account back its rights (a local administrator, the same account as "
        "the Directory service, KB Q274321), then start MSExchangeKMS again",
    ),
    5057: KmsEvent(
        "the KMS startup password was wrong or missing (KB Q184420)",
        "Check kms_startup_password (case-sensitive, KB Q190699): it must be the startup password "
        "of the KM Server that created this KM database. After a move or a restore that is the "
        "ORIGINAL KM Server's password or disk, not the one shown when KM Server was installed on "
        "this server (KB Q154531, Q198814, Q155216). Set startup_password to it",
    ),
    5058: KmsEvent(
        "the Kmsdata folder is corrupt or missing files; restore it from an offline backup "
        "(KB Q190698)",
        "Restore the Kmsdata folder from an offline backup (exchops.kms.kms_backup makes one), "
        "then start MSExchangeKMS again",
    ),
    5085: KmsEvent(
        "KMS cannot mount the key database (KB 818952, Exchange 2000)",
        "Back up the KM database, run eseutil /d on it (KB 818952), then start MSExchangeKMS "
        "again",
    ),
}
# 5057 when KMS reads its password from a startup disk (KB Q196129): the disk is what to check.
_DISK_5057_FIX = (
    "{reading}, so KMS reads its startup password from the disk in that drive, not from a start "
    "parameter (KB Q196129). Put in the startup disk of the KM Server that created this KM "
    "database: after a move or a restore, the ORIGINAL KM Server's disk (KB Q154531, Q198814). "
    "Or clear the drive letter from MasterPasswordPath and give startup_password instead (KB "
    "Q196129)"
)
FAILURE_EVENT_IDS = frozenset(EVENTS)
# 5389 with 5015 points at the service account's rights, not only at the build (KB Q274321).
ACCOUNT_RIGHTS_EVENT_IDS = frozenset({5389, 5015})


def event_dict(record: EventRecord) -> dict[str, t.Any]:
    """An event as the modules return it (exchange_facts' `kms.events`, exchange_service's
    `events`)."""
    return {
        "id": record.event_id,
        "source": record.source,
        "time": record.time.isoformat(),
        "type": record.type,
        "record": record.record,
        "message": record.message,
    }


def is_kms_event(record: EventRecord) -> bool:
    # Source names are compared case-insensitively: Q321164 prints "MSexchangekms".
    return record.source.upper() == KMS_SERVICE.upper()


def failure_events(events: t.Sequence[EventRecord]) -> list[EventRecord]:
    """The KMS failure events among `events`, oldest first."""
    found = [e for e in events if is_kms_event(e) and e.event_id in FAILURE_EVENT_IDS]
    return sorted(found, key=lambda event: event.record or 0)


def event_fix(event_id: int, source: PasswordSource | None = None) -> str:
    """What the operator does about a KMS event; for 5057 on a host whose KMS reads a startup
    disk (`source`), the disk rather than startup_password."""
    if event_id == 5057 and source is not None and source.disk:
        return _DISK_5057_FIX.format(reading=source.reading())
    return EVENTS[event_id].fix


def explain_events(failures: t.Sequence[EventRecord], source: PasswordSource | None = None) -> str:
    """`logged event 5389 (record 7, <time>, "<text>"): <meaning>. <fix>.` `source` is where
    the host's KMS takes its startup password from, when it was read."""
    parts = [
        f"event {event.event_id} (record {event.record}, {event.time.isoformat()}, "
        f'"{event.message[:160]}"): {EVENTS[event.event_id].meaning}'
        for event in failures
    ]
    text = "logged " + "; and ".join(parts) + "."
    if ACCOUNT_RIGHTS_EVENT_IDS <= {event.event_id for event in failures}:
        return (
            f"{text} Events 5389 and 5015 together point to the service account's rights "
            f"(KB Q274321). {EVENTS[5015].fix}."
        )
    return f"{text} {event_fix(failures[0].event_id, source)}."


# ---------------------------------------------------------------------------------------------
# Exit codes of a KMS that stopped (sc query's WIN32_EXIT_CODE / SERVICE_EXIT_CODE).

ERROR_WRONG_PASSWORD = 2140  # "An internal Windows NT error occurred." + event 5057 (Q184420)
ERROR_SERVICE_SPECIFIC = 1066  # the service's own code is in SERVICE_EXIT_CODE


def exit_code_meaning(status: ServiceStatus, source: PasswordSource | None = None) -> str | None:
    """What KMS's exit codes say about why it stopped, with the fix; None when they say
    nothing known. `source` as for explain_events."""
    if status.win32_exit_code == ERROR_WRONG_PASSWORD:
        return (
            "error 2140 is KMS's answer to a wrong or missing startup password (event 5057, KB "
            f"Q184420). {event_fix(5057, source)}"
        )
    # No source says which KMS failure gives which service-specific code, or that the service's
    # exit code is 0 with event 5389 ("KMS is exiting with error 0" is the event's text): the
    # events decide, and these words only say where to look.
    if status.win32_exit_code == ERROR_SERVICE_SPECIFIC:
        return (
            f"error 1066 carries KMS's own code {status.service_exit_code}, whose meaning no "
            "source gives. Read its events (exchops.kms.exchange_facts): event 5058 is a damaged "
            "or incomplete KM database (KB Q190698), 5057 a wrong startup password (KB Q184420)"
        )
    if status.win32_exit_code == 0:
        return (
            'KMS exited without an error code. Event 5389, "KMS is exiting with error 0", '
            "means Kmserver.exe is older than the build that last ran the KM database (KB "
            "Q259906; written for Exchange 5.5, so on Exchange 2000 the link is inferred); that "
            "the exit code is then 0 is inferred. Read its events (exchops.kms.exchange_facts) "
            "before starting it again"
        )
    return None


# ---------------------------------------------------------------------------------------------
# The startup password. KMS decrypts the KM database with it (KB Q154531: the disk "contains the
# 64-bit encryption key for the database").
#
# Whose: the KM database's, i.e. that of the KM Server that created it. After a move or a
# restore it is the ORIGINAL server's password or disk (KB Q154531 step 8, "Place the ORIGINAL
# Key Management server disk"; Q198814, "type in the alpha string, or insert the start up disk
# from the old (original) Key Management Server"; Q155216, the startup disk "for the original
# computer"), never the one shown when KM Server was installed on the new server (Q198814: the
# reinstall "will create a new alpha string").
#
# From where: chosen at installation and kept in the registry (KB Q196129). When MasterPasswordPath
# under HKLM\SOFTWARE\Microsoft\Exchange\KMServer holds a drive ("A:\"), KMS reads the
# password from a disk in that drive at every start; "If you remove the drive letter from the
# MasterPasswordPath value, you must manually type the KMS service password in the startup
# parameter box every time". So that one value decides (`PasswordSource`): a drive letter at its
# start is disk mode, and KMS is started with no start parameter; anything else (empty, absent)
# is the typed password, KMS's start parameter, what the Services console's "Start parameters"
# box passes (KB Q184420). The file on the disk is never looked for: its name is disputed (Q196129
# says Kmserver.pwd, Q155216 Kmspwd.ini) and the drive is the server's own, where an operator
# puts the disk in. A start in disk mode is judged like any other, from the service's state and
# its events (event 5057 then points at the disk).
#
# The password is never put in ImagePath, which breaks the service pack's update.exe (KB
# Q235418). It can travel two routes, each with its rule:
#
# - A command line (the route used today): `sc start MSExchangeKMS "<password>"`, whose arguments
#   sc passes to the service as its start parameters (Microsoft Learn, "Sc start"). cmd.exe reads
#   the line first: inside double quotes it leaves & | < > ^ ( ) , ; = alone, but still expands %
#   (and ! under delayed expansion); then sc splits its arguments the C runtime's way, where a
#   quote ends the argument and a backslash before the closing quote escapes it. So a password
#   must not hold whitespace, a double quote, % or !, nor end with a backslash.
# - A process's standard input (a jump host's own start, to come): no shell reads it, so nothing
#   is quoted and only line ends and control characters matter.

_COMMAND_LINE_UNSAFE = frozenset('"%!')


def check_startup_password_for_command_line(password: str) -> None:
    """Refuse (ValueError, a whole sentence without its period, never holding the password) a
    startup password that the `sc start` command line cannot pass to KMS unchanged."""
    if any(
        char.isspace() or char in _COMMAND_LINE_UNSAFE or not char.isprintable()
        for char in password
    ) or password.endswith("\\"):
        raise ValueError(
            "startup_password holds a space, a double quote, a %, a ! or a control character, "
            "or ends with a backslash: cmd.exe and sc cannot pass it unchanged on the sc start "
            "command line (KM Server startup passwords are letters, KB Q184420). Check the value "
            "of startup_password, or start MSExchangeKMS from the Services console with it"
        )


def start_parameter(password: str) -> str:
    """The password as `sc start`'s one service argument: in double quotes, so that cmd.exe
    passes the characters it would otherwise read (& | < > ^ ...) as they are."""
    return f'"{password}"'


_DRIVE = re.compile(r"^\s*[A-Za-z]:")


@dataclass(frozen=True)
class PasswordSource:
    """Where the host's KMS takes its startup password from, as its registry says (KB Q196129).
    `master_password_path` is MasterPasswordPath's data: None when the key or the value is not
    there (never set, or no KM Server), "" when it is empty."""

    master_password_path: str | None

    @property
    def disk(self) -> bool:
        """KMS reads the password from a disk: MasterPasswordPath starts with a drive letter."""
        return bool(_DRIVE.match(self.master_password_path or ""))

    @property
    def mode(self) -> str:
        """ "disk" or "start_parameter" (as exchange_facts reports it)."""
        return "disk" if self.disk else "start_parameter"

    def reading(self) -> str:
        """The registry reading that decided, as messages quote it."""
        if self.master_password_path is None:
            return f"{KMS_SERVER_KEY} has no {MASTER_PASSWORD_PATH} value"
        if not self.master_password_path.strip():
            return f"{MASTER_PASSWORD_PATH} is empty ({KMS_SERVER_KEY})"
        return f"{MASTER_PASSWORD_PATH} is '{self.master_password_path}' ({KMS_SERVER_KEY})"


def password_source(query: RegQuery) -> PasswordSource:
    """The PasswordSource a `reg query` of KMS_SERVER_KEY shows (its type is not documented,
    KB Q196129: any string data is taken)."""
    value = query.value(KMS_SERVER_KEY, MASTER_PASSWORD_PATH) if query.found else None
    data = value.data if value is not None and isinstance(value.data, str) else None
    return PasswordSource(data)


def password_not_passed(source: PasswordSource) -> str:
    """The warning when startup_password is given but KMS reads a disk (a sentence)."""
    return (
        f"{source.reading()}: KMS reads its startup password from the disk in that drive (KB "
        f"Q196129), so startup_password was not passed to {KMS_SERVICE}. To type the password "
        "instead, clear the drive letter from MasterPasswordPath (KB Q196129)."
    )


def password_needed(source: PasswordSource, state: str) -> str:
    """Why a start of KMS without startup_password is refused (a sentence, nothing sent)."""
    return (
        f"state={state} for {KMS_SERVICE} needs startup_password: {source.reading()}, so KMS "
        "takes its startup password as its start parameter (KB Q196129, Q184420), decrypts the "
        "KM database with it and without it exits with event 5057. Set startup_password (for "
        "example to the vaulted variable kms_startup_password) to the startup password of the KM "
        "Server that created this KM database: after a move or a restore, the ORIGINAL KM "
        "Server's (KB Q154531, Q198814)."
    )
