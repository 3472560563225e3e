# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jump hosts and the legacy servers behind them: what decides whether a remote call gets through.

Exchange 5.5 / 2000 KM servers run Windows NT 4.0 or 2000, which run no WinRM: they are read
from a modern jump host whose own tools (`reg \\\\NAME`, `sc \\\\NAME`, `wmic /node:NAME` ...) reach
them by NetBIOS name. Every fact that decides a call is kept where Windows keeps it, so the
tools that read it (`sc query mrxsmb10`, `reg query ...\\Lsa`) and the remote-call layer
(`exchlab.windows.remote`) can never disagree:

The jump host (the client side)
- SMB 1.0 client: the mrxsmb10 driver, and the Workstation service (LanmanWorkstation) depending
  on it. NT 4.0 and 2000 speak only SMB1 (SMB2 starts with Vista / 2008, KB 204279); Windows
  Server 2019 and later ship without the SMB1 client (KB 4034314), 2012 R2 and 2016 have it.
  Microsoft Learn "How to detect, enable and disable SMBv1, SMBv2, and SMBv3 in Windows" detects
  it with `sc.exe qc lanmanworkstation`, enables it with `sc.exe config lanmanworkstation depend=
  bowser/mrxsmb10/mrxsmb20/nsi` and `sc.exe config mrxsmb10 start= auto`, and disables it with
  `depend= bowser/mrxsmb20/nsi` and `start= disabled`: the client is there while the driver runs
  and the Workstation service depends on it. On a host without it the lab removes the driver, as
  on a clean 2019, so `sc query mrxsmb10` answers 1060 there [lab]. The Workstation service's
  program line, account and group are a published `sc qc lanmanworkstation` capture's; its PID
  is [lab].
- NetBIOS over TCP/IP: NetBT's NetbiosOptions of the network interface (2 = disabled). NT 4.0 has
  no direct-hosted SMB on TCP 445, so without NetBIOS (TCP 139) the jump host cannot reach it
  (KB 204279). Windows 2000 also listens on 445. The interface's GUID is the lab's [lab].
- The NTLM responses it sends: Lsa\\LmCompatibilityLevel, 3 ("send NTLMv2 response only") when
  absent, the default of Windows Vista / 2008 and later (Windows 2000 Resource Kit registry
  reference cc960646 for the levels; the default is [R]).
- Its audit of process creation (event 4688 with command lines): `HostState.command_lines`.
- Its WinRM service's MaxShellsPerUser: 30, Windows Server 2012 R2's and later's default
  (JUMP_MAX_SHELLS_PER_USER), unless the fleet gives the jump host `faults:
  {max_shells_per_user: N}`; the other hosts keep the WS-Man layer's 5.

The legacy server (the target)
- Its service pack (CSDVersion "Service Pack N", KB Q222507): NTLMv2 exists from NT 4.0 SP4 on
  (KB Q236414), so NT 4.0 below SP4 refuses a jump host that sends NTLMv2 only. SP6a keeps
  CSDVersion "Service Pack 6" and adds the Q246009 hotfix key [lab: the key's place; that a
  registry key tells 6a from 6 is Microsoft's statement reported by Redmond magazine, 1999].
- WMI: the WinMgmt service. NT 4.0 has it only with WMI core installed (KB Q219378); Windows 2000
  includes it. Its display name and program path are [lab].
- The Remote Registry service (Windows 2000): stopped, `reg \\\\NAME` finds no network path. On NT
  4.0 "the remote registry server runs within the Winlogon.exe system process" (KB Q264684): there
  is no service to stop. Its program regsvc.exe and display name are [lab].
- The admin shares (C$, ADMIN$): LanmanServer\\Parameters AutoShareServer = 0 removes them;
  IPC$ always exists (https://learn.microsoft.com/en-us/troubleshoot/windows-server/networking/
  problems-administrative-shares-missing).
- The Schedule service, which runs `at` jobs (exchlab.console): running [lab: NT 4.0 installs
  it set to start manually; the lab's servers have it started, as the at_interactive mode needs].
- Faults set at run time (`exchlab fault`) or in the fleet land where Windows keeps the fact
  (`apply_faults`): `schedule_stopped` stops the Schedule service, `admin_shares_off` sets
  AutoShareServer = 0 (takes effect at once [lab]: Windows removes the shares at the Server
  service's next start); `scm_access_denied` stays a fault the remote-call layer reads.
- Its local Administrators (`HostState.local_admins`): the admin shares are for them (same page),
  and remote service control, registry and WMI reads need them too [I].
"""

from __future__ import annotations

from collections.abc import Sequence

from .console import SCHEDULE_SERVICE
from .state import HKLM, RUNNING, SERVICES_KEY, HostState, ServiceStatus
from .windows.formats import era_of

LEGACY_OS = ("nt4", "2000")
JUMP_OS = ("2012", "2016", "2019", "2022")
# KB 4034314: the SMB1 client is gone from a clean 2019 or later install.
_SMB1_CLIENT_BY_DEFAULT = ("2008", "2012", "2016")

SMB1_CLIENT_DRIVER = "mrxsmb10"
WORKSTATION = "LanmanWorkstation"
# Its dependencies without the SMB1 client; with it, MRxSmb10 comes after Bowser (the order of
# Microsoft's `sc.exe config lanmanworkstation depend= ...` lines).
WORKSTATION_DEPENDENCIES = ("Bowser", "MRxSmb20", "NSI")
NETBT_INTERFACE_KEY = (
    SERVICES_KEY + r"\NetBT\Parameters\Interfaces\Tcpip_{4D36E972-E325-11CE-BFC1-08002BE10318}"
)
LSA_KEY = HKLM + r"\SYSTEM\CurrentControlSet\Control\Lsa"
LANMAN_SERVER_KEY = SERVICES_KEY + r"\LanmanServer\Parameters"
CURRENT_VERSION_KEY = HKLM + r"\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
SP6A_HOTFIX_KEY = CURRENT_VERSION_KEY + r"\Hotfix\Q246009"
REMOTE_REGISTRY = "RemoteRegistry"
WMI_SERVICE = "WinMgmt"
# Vista / 2008 and later send NTLMv2 only when LmCompatibilityLevel is absent.
DEFAULT_LM_COMPATIBILITY = 3
# The highest level that still sends NTLM (not NTLMv2-only) responses (cc960646).
NTLM_RESPONSES_LEVEL = 2
# NT 4.0 understands NTLMv2 from this service pack on (KB Q236414).
NT4_NTLMV2_FROM_SP = 4
# WinRM's MaxShellsPerUser on Windows Server 2012 R2 and later, every jump host's era
# ("Installation and configuration for Windows Remote Management", MaxShellsPerUser:
# https://learn.microsoft.com/en-us/windows/win32/winrm/installation-and-configuration-for-windows-remote-management).
JUMP_MAX_SHELLS_PER_USER = 30


def smb1_client_by_default(os: str) -> bool:
    return os in _SMB1_CLIENT_BY_DEFAULT


# ---------------------------------------------------------------------------------------------
# Builders: applied to a host built by exchlab.exchange


def make_jump_host(
    host: HostState,
    *,
    smb1_client: bool | None = None,
    netbios: bool = True,
    lm_compatibility: int | None = None,
    wmic: bool = True,
) -> None:
    """Make a built Windows host a jump host: its SMB1 client, NetBIOS, NTLM level, wmic, its
    MaxShellsPerUser (the fleet's, else JUMP_MAX_SHELLS_PER_USER), and its process-creation
    audit switched on (an empty `command_lines`)."""
    host.faults.setdefault("max_shells_per_user", JUMP_MAX_SHELLS_PER_USER)
    if smb1_client is None:
        smb1_client = smb1_client_by_default(host.os)
    if smb1_client:
        # A file-system driver (type 2), started automatically [lab: start type and path].
        host.add_service(
            SMB1_CLIENT_DRIVER,
            "SMB 1.x MiniRedirector",
            r"system32\DRIVERS\mrxsmb10.sys",
            start=2,
            service_type=0x2,
            status=ServiceStatus(RUNNING, 0, 0, 0),
        )
    dependencies = list(WORKSTATION_DEPENDENCIES)
    if smb1_client:
        dependencies.insert(1, "MRxSmb10")
    host.add_service(
        WORKSTATION,
        "Workstation",
        r"C:\Windows\System32\svchost.exe -k NetworkService -p",
        start=2,
        dependencies=tuple(dependencies),
        account="NT AUTHORITY\\NetworkService",
        service_type=0x20,
        status=ServiceStatus(RUNNING, _boot_pid(host), 0, 0),
    )
    host.registry.set_value(SERVICES_KEY + "\\" + WORKSTATION, "Group", "REG_SZ", "NetworkProvider")
    host.registry.set_value(NETBT_INTERFACE_KEY, "NetbiosOptions", "REG_DWORD", 0 if netbios else 2)
    if lm_compatibility is not None:
        host.registry.set_value(LSA_KEY, "LmCompatibilityLevel", "REG_DWORD", lm_compatibility)
    if not wmic:
        # Windows 11 24H2 / Server 2025 make wmic a feature on demand (docs/windows-output.md
        # section 0): without it, cmd answers "not recognized".
        for entry in list(host.fs.all_files()):
            if entry.name.lower() == "wmic.exe":
                host.fs.remove_file(entry.path)
    host.command_lines = []


def make_legacy_host(
    host: HostState,
    *,
    service_pack: str,
    admins: Sequence[str],
    wmi: bool = True,
    remote_registry: bool = True,
    admin_shares: bool = True,
) -> None:
    """Make a built NT 4.0 / 2000 host a server behind a jump host (the facts in this module's
    docstring). `service_pack` as people say it: "6a", "4", "0"."""
    if host.os not in LEGACY_OS:
        raise ValueError(f"a legacy host runs Windows NT 4.0 or 2000, not {host.os!r}")
    number = int(service_pack.rstrip("a"))
    if number:
        host.registry.set_value(
            CURRENT_VERSION_KEY, "CSDVersion", "REG_SZ", f"Service Pack {number}"
        )
    if service_pack == "6a":
        host.registry.set_value(SP6A_HOTFIX_KEY, "Installed", "REG_DWORD", 1)
    system32 = (
        str(host.registry.data(CURRENT_VERSION_KEY, "SystemRoot", "C:\\WINNT")) + "\\system32"
    )
    free = {letter: drive.free_bytes for letter, drive in host.drives.items()}
    if wmi:
        _add_program_service(
            host, WMI_SERVICE, "Windows Management Instrumentation", system32 + r"\wbem\winmgmt.exe"
        )
    _add_program_service(
        host,
        SCHEDULE_SERVICE,
        "Schedule" if host.os == "nt4" else "Task Scheduler",
        system32 + (r"\atsvc.exe" if host.os == "nt4" else r"\mstask.exe"),
    )
    if host.os == "2000":
        _add_program_service(
            host,
            REMOTE_REGISTRY,
            "Remote Registry Service",
            system32 + r"\regsvc.exe",
            running=remote_registry,
        )
    if not admin_shares:
        host.registry.set_value(LANMAN_SERVER_KEY, "AutoShareServer", "REG_DWORD", 0)
    host.local_admins = list(admins)
    apply_faults(host)
    for letter, drive in host.drives.items():
        # What `dir` reports free stays the builder's (E14), whatever these files took.
        drive.free_bytes = free.get(letter, drive.free_bytes)


def apply_faults(host: HostState) -> None:
    """Put a legacy host's faults where Windows keeps them (this module's docstring); no-op on
    other hosts. Clearing a fault undoes it."""
    if host.os not in LEGACY_OS or not host.local_admins:
        return
    schedule = host.service_name(SCHEDULE_SERVICE)
    if schedule is not None and "schedule_stopped" in host.faults:
        status = host.services[schedule]
        if host.faults["schedule_stopped"] and status.state == RUNNING:
            host.services[schedule] = ServiceStatus()
        elif not host.faults["schedule_stopped"] and status.state != RUNNING:
            host.services[schedule] = ServiceStatus(RUNNING, host.allocate_pid(), 0, 0)
    if "admin_shares_off" in host.faults:
        if host.faults["admin_shares_off"]:
            host.registry.set_value(LANMAN_SERVER_KEY, "AutoShareServer", "REG_DWORD", 0)
        else:
            host.registry.delete_value(LANMAN_SERVER_KEY, "AutoShareServer")


def _add_program_service(
    host: HostState, name: str, display: str, program: str, *, running: bool = True
) -> None:
    version = era_of(host.os).windows_version + ".0"
    host.write_file(program, seed=f"windows:{host.os}:{name}", size=65_536, version=version)
    host.add_service(
        name,
        display,
        program,
        start=2,
        status=ServiceStatus(RUNNING, _boot_pid(host), 0, 0) if running else ServiceStatus(),
    )


def _boot_pid(host: HostState) -> int:
    """A PID for a service running since boot: below the first one a start hands out (1320, E6),
    as the Exchange builder numbers its services."""
    pids = [status.pid for status in host.services.values() if 0 < status.pid < host.next_pid]
    return max(pids, default=1000) + 24


# ---------------------------------------------------------------------------------------------
# What the remote-call layer asks


def smb1_client_ready(jump: HostState) -> bool:
    """The SMB1 client driver is installed and running, and the Workstation service depends on
    it (Microsoft Learn's detection, `sc.exe qc lanmanworkstation`)."""
    name = jump.service_name(SMB1_CLIENT_DRIVER)
    if name is None or jump.services[name].state != RUNNING:
        return False
    workstation = jump.service_config(WORKSTATION)
    return workstation is not None and any(
        dependency.lower() == SMB1_CLIENT_DRIVER for dependency in workstation.dependencies
    )


def netbios_enabled(jump: HostState) -> bool:
    return jump.registry.data(NETBT_INTERFACE_KEY, "NetbiosOptions", 0) != 2


def sends_ntlmv2_only(jump: HostState) -> bool:
    """LmCompatibilityLevel 3 and up: clients use only NTLMv2 (cc960646)."""
    level = jump.registry.data(LSA_KEY, "LmCompatibilityLevel", DEFAULT_LM_COMPATIBILITY)
    return int(level) > NTLM_RESPONSES_LEVEL  # type: ignore[arg-type]


def service_pack_number(host: HostState) -> int:
    text = host.registry.data(CURRENT_VERSION_KEY, "CSDVersion", "")
    digits = str(text).removeprefix("Service Pack ").strip()
    return int(digits) if digits.isdigit() else 0


def understands_ntlmv2(target: HostState) -> bool:
    """Windows 2000, or NT 4.0 from SP4 on (KB Q236414)."""
    return target.os != "nt4" or service_pack_number(target) >= NT4_NTLMV2_FROM_SP


def _service_running(host: HostState, name: str) -> bool:
    canonical = host.service_name(name)
    return canonical is not None and host.services[canonical].state == RUNNING


def remote_registry_reachable(target: HostState) -> bool:
    """NT 4.0 always (Winlogon serves it, KB Q264684); Windows 2000 while the service runs."""
    return target.os == "nt4" or _service_running(target, REMOTE_REGISTRY)


def wmi_installed(target: HostState) -> bool:
    """DCOM activation starts WinMgmt on demand: installed is enough [lab]."""
    return target.service_name(WMI_SERVICE) is not None


def admin_shares_enabled(target: HostState) -> bool:
    return target.registry.data(LANMAN_SERVER_KEY, "AutoShareServer", 1) != 0


def account_key(account: str, default_domain: str) -> str:
    """An account name compared as Windows does: case-insensitive, domain added when omitted."""
    domain, separator, user = account.rpartition("\\")
    return f"{domain if separator else default_domain}\\{user}".upper()


def is_local_admin(target: HostState, account: str, default_domain: str) -> bool:
    wanted = account_key(account, default_domain)
    return any(account_key(admin, default_domain) == wanted for admin in target.local_admins)
