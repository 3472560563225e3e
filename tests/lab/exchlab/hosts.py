# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""From a fleet's planned hosts to host state and to the Ansible inventory that reaches them."""

from __future__ import annotations

from typing import Any

from .exchange import fleet_server_build, from_fleet_spec
from .fleet import Fleet, PlannedHost
from .layout import StateLayout
from .reach import make_jump_host, make_legacy_host
from .state import HostState

# Exchange 5.5 SP kits keep update.exe here under the media root (KB Q191013, Q198347).
SP_SETUP_SUBFOLDER_55 = r"ENG\SERVER\SETUP\I386"
# Exchange 2000 / 2003 SP kits keep it in i386 (2003 SP2: D:\i386\update.exe; assumed for 2000).
SP_SETUP_SUBFOLDER_2000 = "I386"


def build_host_state(planned: PlannedHost, lab: dict[str, Any]) -> HostState:
    spec = planned.spec
    host = from_fleet_spec(
        planned.name,
        planned.address,
        spec,
        os=planned.os,
        domain=lab["domain"],
        kms_startup_password=lab["kms_startup_password"],
    )
    if planned.role == "jump":
        make_jump_host(
            host,
            smb1_client=spec.get("smb1_client"),
            netbios=spec.get("netbios", True),
            lm_compatibility=spec.get("lm_compatibility"),
            wmic=spec.get("wmic", True),
        )
    elif not planned.listens:
        make_legacy_host(
            host,
            # SP6a and SP4: the last service packs of NT 4.0 and Windows 2000 [lab defaults].
            service_pack=str(spec.get("sp", "6a" if planned.os == "nt4" else "4")),
            admins=spec.get("admins") or [f"{lab['domain']}\\{lab['user']}"],
            wmi=planned.os == "2000" or bool(spec.get("wmi_core", False)),
            remote_registry=spec.get("remote_registry", "running") == "running",
            admin_shares=spec.get("admin_shares", True),
        )
    return host


def _connection_vars(connection: str, lab: dict[str, Any], layout: StateLayout) -> dict[str, Any]:
    if connection in ("ntlm_http", "credssp_http"):
        # Message encryption protects NTLM (and CredSSP) over plain HTTP, as Windows requires by
        # default.
        return {
            "ansible_port": lab["http_port"],
            "ansible_winrm_scheme": "http",
            "ansible_winrm_transport": connection.split("_")[0],
            "ansible_user": f"{lab['domain']}\\{lab['user']}",
        }
    https = {
        "ansible_port": lab["https_port"],
        "ansible_winrm_scheme": "https",
        "ansible_winrm_server_cert_validation": "validate",
        "ansible_winrm_ca_trust_path": str(layout.ca_file),
    }
    if connection == "ntlm_https":
        return {
            **https,
            "ansible_winrm_transport": "ntlm",
            "ansible_user": f"{lab['domain']}\\{lab['user']}",
        }
    if connection == "credssp_https":
        return {
            **https,
            "ansible_winrm_transport": "credssp",
            "ansible_user": f"{lab['domain']}\\{lab['user']}",
        }
    return {**https, "ansible_winrm_transport": "basic", "ansible_user": lab["user"]}


def sp_media_folder(root: str, build: str) -> str:
    """The folder holding update.exe inside an SP kit extracted at `root`."""
    subfolder = SP_SETUP_SUBFOLDER_55 if build.startswith("5.5.") else SP_SETUP_SUBFOLDER_2000
    return f"{root.rstrip(chr(92))}\\{subfolder}"


def _server_build(spec: dict[str, Any]) -> str | None:
    return fleet_server_build(spec)


def inventory_for(fleet: Fleet, layout: StateLayout) -> dict[str, Any]:
    """An inventory with every variable the playbooks need, so they run with no `-e`."""
    groups: dict[str, dict[str, Any]] = {
        "kms_targets": {},
        "kms_sources": {},
        "exchange_hosts": {},
        "jump_hosts": {},
    }
    by_name = {host.name: host for host in fleet.hosts}
    for host in fleet.hosts:
        variables: dict[str, Any]
        if host.listens:
            variables = {"ansible_host": host.address}
            variables.update(_connection_vars(host.connection, fleet.lab, layout))
        else:
            # A legacy server: the name its jump host reaches it by, and that jump host, whose
            # own settings open the shell (exchange_jump_auth stays at its default, delegated).
            variables = {"ansible_host": host.reach_name, "exchange_jump_host": host.via}
        if host.role == "target":
            variables["kms_source_host"] = host.source
            wanted = _server_build(by_name[host.source].spec) if host.source else None
            for root, build in (host.spec.get("media") or {}).items():
                if wanted is not None and build.split(".")[:3] == wanted.split(".")[:3]:
                    variables["kms_remediate_sp_media"] = sp_media_folder(root, build)
                    # The operator's statement of the kit's build (no source reads it from a kit).
                    variables["kms_remediate_sp_build"] = build
        group = {"target": "kms_targets", "source": "kms_sources", "jump": "jump_hosts"}.get(
            host.role, "exchange_hosts"
        )
        groups[group][host.name] = variables
    variables = {
        "ansible_connection": "winrm",
        "ansible_password": fleet.lab["password"],
        "ansible_winrm_read_timeout_sec": 30,
        "ansible_winrm_operation_timeout_sec": 20,
    }
    if any(_types_password(host.spec) for host in fleet.hosts):
        variables["kms_startup_password"] = fleet.lab["kms_startup_password"]
    return {
        "all": {
            "vars": variables,
            "children": {name: {"hosts": hosts} for name, hosts in groups.items() if hosts},
        }
    }


def _types_password(spec: dict[str, Any]) -> bool:
    """Whether a host's KMS takes a typed startup password: every host with KM Server but a
    startup disk (KB Q196129), and hosts without Exchange 5.5 / 2000, for the tests that point
    modules at them. A fleet whose KM servers all read a disk gets no kms_startup_password."""
    kms = spec.get("kms") or {}
    return not (kms.get("installed", True) and kms.get("startup_disk", False))
