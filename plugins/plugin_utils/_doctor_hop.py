# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The doctor's second hop: why a jump host cannot read the legacy server behind it.

Windows prints one text for several causes ("The network path was not found." for a name that
does not resolve, a missing SMB1 client, NetBIOS over TCP/IP turned off and a stopped Remote
Registry alike; "Access is denied." for a missing administrator right and for credentials never
delegated), so no cause is decided by that text alone. One command line on the jump host reads,
each in its own section:

- the proof: `reg query "\\\\NAME\\HKLM\\...\\Windows NT\\CurrentVersion" /v CurrentVersion`,
  which needs the name, the SMB transport, the credentials and the rights, and gives the
  server's Windows version;
- the jump host's SMB 1 client: `sc qc lanmanworkstation` (its dependencies name MRxSmb10 while
  the SMB 1 client is enabled; "How to detect, enable and disable SMBv1, SMBv2, and SMBv3 in
  Windows", https://learn.microsoft.com/windows-server/storage/file-server/troubleshoot/detect-enable-and-disable-smbv1-v2-v3);
- NetBIOS over TCP/IP on the jump host: `net config redirector`, whose transports list
  NetBT_Tcpip while it is bound (KB 204279, direct hosting of SMB over TCP/IP;
  docs/windows-output.md#net-config-redirector);
- the name: `ping -n 1 -w 1000 NAME`, which says "Ping request could not find host NAME." when
  it cannot resolve it (docs/windows-output.md#ping);
- the service control manager: `sc \\\\NAME query RemoteRegistry`, which works while reg fails
  when Remote Registry is stopped (Windows 2000; on NT 4.0 the registry server runs inside
  Winlogon, KB Q264684, so there is no such service);
- WMI: `wmic /node:NAME os get Version /value`, which goes over DCOM, not SMB, and so gives the
  server's Windows version (Win32_OperatingSystem's Version, "4.0.1381", "5.0.2195") even when
  the SMB transport fails.

Each cause is a row of HOP_SIGNATURES that reads those findings. WMI's own row speaks only when
the registry read's cause does not explain WMI's refusal too: DCOM goes to the same name with the
same logon and account as SMB, so a name that does not resolve, credentials never delegated (the
double hop refuses every tool, docs/windows-output.md#remote-call-errors), a refused logon and a
refused account fail WMI as well, and WMI's answer then says nothing of WMI itself. Nothing is
changed anywhere.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from ._probe import WINDOWS_NT_KEY, Sections, reg_value, run_commands, sc
from ._rules import Values
from ._winout import (
    ParseError,
    ScFailure,
    WmiFailed,
    parse_net_config_redirector,
    parse_ping,
    parse_reg_query,
    parse_sc_qc,
    parse_sc_query,
    parse_wmic_values,
    remote_call_error,
    split_merged_streams,
)
from ._winout.remote import (
    ACCESS_DENIED,
    LOGON_FAILURE,
    NETWORK_PATH_NOT_FOUND,
    RPC_SERVER_UNAVAILABLE,
    SMB1_NOT_AVAILABLE,
)

# "CurrentVersion" of Windows NT 4.0 and Windows 2000 (docs/registry.md#windows-version).
WINDOWS_NAMES = {"4.0": "Windows NT 4.0", "5.0": "Windows 2000"}


@dataclass(frozen=True)
class HopFindings:
    """What the jump host saw of the server; None where a reading was not possible."""

    host: str  # the legacy server's inventory name
    jump: str
    remote: str  # its name on the jump host's command lines
    delegates: bool  # whether the jump host's logon carries credentials onwards
    registry_error: str | None  # a _winout.remote error of the proof, None when it answered
    registry_text: str
    windows_version: str | None  # CurrentVersion, e.g. "4.0" (else WMI's Version's first two parts)
    smb1_client: bool | None
    netbios: bool | None
    name_resolves: bool | None
    scm_error: int | None  # the Win32 error of `sc \\NAME query`, None when it answered
    remote_registry_state: str | None  # "running", "stopped"; None without the service
    wmi_error: str | None  # WMI's Description, None when it answered


def hop_commands(remote: str) -> dict[str, str]:
    """The doctor's one command line on the jump host, as named sections."""
    return {
        "hop_version": reg_value(WINDOWS_NT_KEY, "CurrentVersion", remote),
        "jump_smb1": "sc qc lanmanworkstation",
        "jump_netbios": "net config redirector",
        "hop_name": f"ping -n 1 -w 1000 {remote}",
        "hop_scm": sc("query", "RemoteRegistry", remote),
        "hop_wmi": f"wmic /node:{remote} os get Version /value < NUL",
    }


def read_hop(
    run: t.Callable[[str], t.Any], host: str, jump: str, remote: str, delegates: bool
) -> HopFindings:
    """Run the hop's sections through RUN (a shell on the jump host) and read them."""
    sections = run_commands(run, hop_commands(remote))
    registry = sections.need("hop_version")
    error = None if registry.succeeded else remote_call_error(registry.text)
    scm_error, remote_registry = _scm(sections)
    wmi_error, wmi_version = _wmi(sections)
    return HopFindings(
        host=host,
        jump=jump,
        remote=remote,
        delegates=delegates,
        registry_error=error or (None if registry.succeeded else "other"),
        registry_text=" ".join(registry.text.split())[:200],
        windows_version=(
            _windows_version(sections) if registry.succeeded else _major_minor(wmi_version)
        ),
        smb1_client=_smb1_client(sections),
        netbios=_netbios(sections),
        name_resolves=_name_resolves(sections),
        scm_error=scm_error,
        remote_registry_state=remote_registry,
        wmi_error=wmi_error,
    )


def _windows_version(sections: Sections) -> str | None:
    try:
        query = parse_reg_query(*sections.need("hop_version").streams(), section="hop_version")
    except ParseError:
        return None
    value = query.value(WINDOWS_NT_KEY, "CurrentVersion")
    return str(value.data) if value is not None else None


def _smb1_client(sections: Sections) -> bool | None:
    try:
        config = parse_sc_qc(*sections.need("jump_smb1").streams(), section="jump_smb1")
    except ParseError:
        return None
    if isinstance(config, ScFailure):
        return None
    return any(name.casefold() == "mrxsmb10" for name in config.dependencies)


def _netbios(sections: Sections) -> bool | None:
    try:
        config = parse_net_config_redirector(
            *sections.need("jump_netbios").streams(), section="jump_netbios"
        )
    except ParseError:
        return None  # net failed, or printed no transport list: nothing is known of NetBIOS
    return config.netbios_over_tcpip


def _name_resolves(sections: Sections) -> bool | None:
    try:
        ping = parse_ping(*sections.need("hop_name").streams(), section="hop_name")
    except ParseError:
        return None  # no ping on the jump host, or an answer that says nothing of the name
    # Resolved means ping had an address to send to, whether or not the server replied.
    return ping.resolved


def _scm(sections: Sections) -> tuple[int | None, str | None]:
    try:
        status = parse_sc_query(*sections.need("hop_scm").streams(), section="hop_scm")
    except ParseError:
        return None, None
    if isinstance(status, ScFailure):
        return (None, None) if status.service_missing else (status.error, None)
    return None, status.state


def _wmi(sections: Sections) -> tuple[str | None, str | None]:
    """(WMI's Description of its failure, None when it answered; the Version it gave)."""
    stdout, stderr = split_merged_streams(sections.need("hop_wmi").text)
    try:
        instances = parse_wmic_values(stdout, stderr, 0, section="hop_wmi")
    except WmiFailed as exc:
        return exc.description, None
    except ParseError as exc:
        return str(exc), None
    versions = [instance.get("Version") for instance in instances if instance.get("Version")]
    return None, (versions[0] if versions else None)


def _major_minor(version: str | None) -> str | None:
    """Win32_OperatingSystem's Version ("4.0.1381") as CurrentVersion says it ("4.0")."""
    if not version:
        return None
    parts = version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and all(p.isdigit() for p in parts) else None


# ---------------------------------------------------------------------------------------------
# Detectors: HopFindings -> the values of the row's message and fix, or None when absent.

_PATH_ERRORS = (NETWORK_PATH_NOT_FOUND, SMB1_NOT_AVAILABLE, RPC_SERVER_UNAVAILABLE)


def no_delegation(f: HopFindings) -> Values | None:
    return {} if not f.delegates else None


def name_unresolved(f: HopFindings) -> Values | None:
    return {} if f.name_resolves is False else None


def smb1_client_missing(f: HopFindings) -> Values | None:
    return {} if f.smb1_client is False and f.registry_error in _PATH_ERRORS else None


def netbios_off(f: HopFindings) -> Values | None:
    if f.netbios is not False or f.registry_error not in _PATH_ERRORS:
        return None
    if f.windows_version not in (None, "4.0"):
        return None  # Windows 2000 also takes SMB on port 445 (KB 204279)
    return {}


def remote_registry_stopped(f: HopFindings) -> Values | None:
    if f.registry_error in _PATH_ERRORS and f.remote_registry_state == "stopped":
        return {}
    return None


def not_administrator(f: HopFindings) -> Values | None:
    # With credentials delegated and the service control manager answering, a refused registry
    # read is the account's rights, not the double hop.
    if f.delegates and f.registry_error == ACCESS_DENIED and f.scm_error is None:
        return {}
    return None


def logon_refused(f: HopFindings) -> Values | None:
    return {} if f.registry_error == LOGON_FAILURE else None


def wmi_unreachable(f: HopFindings) -> Values | None:
    if not f.wmi_error or _wmi_refused_like_the_registry(f):
        return None
    return {"reason": f.wmi_error}


def _wmi_refused_like_the_registry(f: HopFindings) -> bool:
    """Whether the cause the registry read shows also stops DCOM (this module's docstring)."""
    if f.name_resolves is False or not f.delegates or f.registry_error == LOGON_FAILURE:
        return True
    return f.registry_error == ACCESS_DENIED and remote_call_error(f.wmi_error or "") == (
        ACCESS_DENIED
    )


def unexplained(f: HopFindings) -> Values | None:
    """A failed proof no row above explains, so that no failure goes unreported."""
    if f.registry_error is None:
        return None
    explained = (
        no_delegation,
        name_unresolved,
        smb1_client_missing,
        netbios_off,
        remote_registry_stopped,
        not_administrator,
        logon_refused,
    )
    if any(detect(f) is not None for detect in explained):
        return None
    return {"text": f.registry_text}


@dataclass(frozen=True)
class HopSignature:
    id: str
    detect: t.Callable[[HopFindings], Values | None]
    message: str
    fix: str


# Messages and fixes are str.format templates over the detector's values and {host}, {jump},
# {remote}.
HOP_SIGNATURES: tuple[HopSignature, ...] = (
    HopSignature(
        "jump_no_delegation",
        no_delegation,
        "{jump}'s WinRM logon delegates no credentials (its ansible_winrm_transport is neither "
        "credssp nor kerberos with delegation), so {jump} reaches {remote} as ANONYMOUS LOGON and "
        "is refused: the double hop.",
        "Set ansible_winrm_transport: credssp for {jump} and enable CredSSP on it "
        "(Enable-WSManCredSSP -Role Server).",
    ),
    HopSignature(
        "hop_name_unresolved",
        name_unresolved,
        "{jump} cannot resolve the name {remote} (ping could not find the host).",
        "Set {host}'s ansible_host to a name {jump} resolves (through WINS, DNS or an LMHOSTS "
        "entry) or to {remote}'s IP address.",
    ),
    HopSignature(
        "jump_smb1_client_missing",
        smb1_client_missing,
        "{jump} has no SMB 1.0 client (no MRxSmb10 among the Workstation service's "
        "dependencies), and NT 4.0 and Windows 2000 speak only SMB 1 (KB 4034314).",
        "Install the 'SMB 1.0/CIFS Client' feature on {jump} (absent by default from Windows "
        "Server 2019 on), or use a jump host that has it.",
    ),
    HopSignature(
        "jump_netbios_off",
        netbios_off,
        "NetBIOS over TCP/IP is off on {jump} (no NetBT_Tcpip transport), and Windows NT 4.0 is "
        "reached only over it, on TCP 139: it has no SMB on port 445 (KB 204279).",
        "Enable NetBIOS over TCP/IP on {jump}'s network adapter (Advanced TCP/IP settings, "
        "WINS tab), and let TCP 139 through to {remote}.",
    ),
    HopSignature(
        "hop_remote_registry_stopped",
        remote_registry_stopped,
        "the Remote Registry service is stopped on {remote}, so {jump} cannot read its registry "
        "(its service control manager answers).",
        "Start it: sc \\\\{remote} start RemoteRegistry (and set it to start automatically).",
    ),
    HopSignature(
        "hop_not_administrator",
        not_administrator,
        "{remote} refused the registry read of the account {jump} passes on, while its service "
        "control manager answers: the account is not an administrator on {remote}.",
        "Make the account an administrator on {remote}: through a trust between {remote}'s "
        "domain and {jump}'s, or a local account of the same name and password on {remote}.",
    ),
    HopSignature(
        "hop_logon_refused",
        logon_refused,
        "{remote} refused the logon of the account {jump} passes on (the user name or password "
        "is incorrect there). An NT 4.0 server below Service Pack 4 also refuses the NTLMv2 a "
        "modern jump host sends (KB Q236414).",
        "Check that the account exists on {remote} (or its domain) with the same password; on an "
        "NT 4.0 server install Service Pack 4 or later.",
    ),
    HopSignature(
        "hop_wmi_unreachable",
        wmi_unreachable,
        "WMI on {remote} does not answer {jump} ({reason}): Kmserver.exe's and Store.exe's "
        "versions and the KMS events cannot be read, and the gate cannot judge the pair. NT 4.0 "
        "has WMI only when WMI core is installed (KB Q219378); DCOM needs TCP 135 and the "
        "dynamic RPC ports.",
        "Install WMI core on an NT 4.0 server, or open DCOM from {jump} to {remote}; else check "
        "Kmserver.exe's version on {remote} by hand.",
    ),
    HopSignature(
        "hop_unreadable",
        unexplained,
        "{jump} could not read {remote}'s registry ({text}), for no cause the doctor can tell.",
        "Run the reg query above on {jump} by hand and fix what it says.",
    ),
)


def describe(findings: HopFindings) -> str | None:
    """The one line that says the second hop works, or None when it does not."""
    if findings.registry_error is not None:
        return None
    windows = WINDOWS_NAMES.get(
        str(findings.windows_version), f"Windows {findings.windows_version}"
    )
    wmi = "answers" if findings.wmi_error is None else "does not answer"
    return (
        f"{findings.host}: {findings.jump} reads {findings.remote} ({windows}) with the "
        f"credentials its logon carries; WMI {wmi}."
    )
