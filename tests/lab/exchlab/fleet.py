# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet files: which simulated servers a lab runs, validated with the line of every mistake.

A fleet lists KM Server move `pairs` (a `target`, the new server, and its `source`, the old one;
`count: N` replicates a pair N times for benchmarks) and standalone `hosts`. The schema is JSON
Schema (checked by the jsonschema library); YAML node positions turn its errors into
"FILE line N: where: what".

Real KM servers run Windows NT 4.0 or 2000, which run no WinRM: a fleet declares `jump_hosts`
(Windows Server 2012 R2 to 2022, each with `smb1_client`, `netbios`, `wmic`, `lm_compatibility`)
and gives each legacy host (`os: nt4` or `"2000"`) `reach: {via: JUMP, name: NETBIOSNAME}` and
its own knobs (`sp`, `wmi_core`, `remote_registry`, `admin_shares`, `admins`); what each knob
models, with its source, is exchlab.reach's. A legacy host listens nowhere: only its jump host
reaches it, by that name.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

# credssp_*: CredSSP, the transport that hands the jump host credentials to use onwards.
CONNECTIONS = ("ntlm_http", "ntlm_https", "basic_https", "credssp_http", "credssp_https")
OS_ERAS = ("nt4", "2000", "2003", "2008", "2012", "2016", "2019", "2022")
JUMP_CONNECTION = "credssp_http"
# A jump host's Windows when its entry names none [lab default].
JUMP_DEFAULT_OS = "2016"
# Knobs only a host behind a jump host takes.
LEGACY_KEYS = ("sp", "wmi_core", "remote_registry", "admin_shares", "admins")
# Windows service packs people name: NT 4.0 SP1 to SP6a, Windows 2000 SP0 (none) to SP4.
NT4_SERVICE_PACKS = ("1", "2", "3", "4", "5", "6", "6a")
W2000_SERVICE_PACKS = ("0", "1", "2", "3", "4")

_BUILD = {"type": "string", "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+(\.[0-9]+)?$"}
_HOST_NAME = {
    "type": "string",
    # A Windows computer (NetBIOS) name: 15 characters, letters, digits and hyphens.
    "pattern": r"^[A-Za-z0-9][A-Za-z0-9-]{0,14}$",
}
_FAULTS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "auth_refused": {"type": "boolean"},
        # The WinRM service's Auth/CredSSP (exchlab.wsman.backend.WsmanFaults): false, a jump
        # host whose CredSSP was never enabled (Enable-WSManCredSSP -Role Server).
        "credssp_enabled": {"type": "boolean"},
        "latency_ms": {"type": "integer", "minimum": 0, "maximum": 60000},
        "drop_connection_on": {"enum": ["Create", "Command", "Receive", "Signal", "Delete", None]},
        "drop_connection_count": {"type": "integer", "minimum": 0},
        "drop_receive_for": {"type": ["string", "null"], "minLength": 1},
        "wsman_fault_on": {"enum": ["Create", "Command", "Receive", "Signal", "Delete", None]},
        "wsman_fault_code": {"type": "integer", "minimum": 0},
        "operation_timeout": {"type": "boolean"},
        "command_lifetime_s": {"type": "number", "exclusiveMinimum": 0},
        "max_shells_per_user": {"type": "integer", "minimum": 1},
        "tls_certificate": {"enum": ["ok", "expired", "wrong_name"]},
        "shell_codepage": {
            "type": ["integer", "null"],
            "enum": [437, 850, 852, 866, 932, 1252, 65001, None],
        },
        "clock_skew_s": {"type": "integer", "minimum": -86400, "maximum": 86400},
        "sp_installer_fails": {"type": "boolean"},
        "disk_full": {"type": "boolean"},
        "disk_fills_after_bytes": {"type": "integer"},
        "service_wont_stop": {"type": "array", "items": {"type": "string"}},
        "update_duration_s": {"type": "number", "minimum": 0},
        "update_waits_for_input_s": {"type": "number", "minimum": 0},
        "wrong_kms_password": {"type": "boolean"},
        # A server behind a jump host (exchlab.reach, apply_faults).
        "schedule_stopped": {"type": "boolean"},
        "admin_shares_off": {"type": "boolean"},
        "scm_access_denied": {"type": "boolean"},
    },
}
_HOST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": _HOST_NAME,
        "os": {"enum": list(OS_ERAS)},
        "connection": {"enum": list(CONNECTIONS)},
        "exchange": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["version"],
                    "properties": {
                        "version": {"enum": ["5.5", "2000", "2016", "2019", "SE"]},
                        "sp": {"type": "integer", "minimum": 0, "maximum": 4},
                        "build": _BUILD,
                        # Store.exe's file version when it is not the service pack's: a service
                        # pack that did not complete (KB Q278518), [lab] how it got there.
                        "store_build": _BUILD,
                    },
                },
            ]
        },
        "kms": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "installed": {"type": "boolean"},
                "binary_build": _BUILD,
                "state": {"enum": ["running", "stopped"]},
                "database_stamp": _BUILD,
                "image_path_password": {"type": "boolean"},
                "database_corrupt": {"type": "boolean"},
                # KB Q196129: the startup password on a disk in A: (MasterPasswordPath "A:\\").
                "startup_disk": {"type": "boolean"},
            },
        },
        "events": {
            "type": "array",
            "items": {"type": "integer", "enum": [5389, 5015, 5057, 5058, 5085]},
        },
        "media": {
            "type": "object",
            "additionalProperties": _BUILD,
            "propertyNames": {"pattern": r"^[A-Za-z]:\\"},
        },
        "faults": _FAULTS,
        # Behind a jump host (exchlab.reach): how it is reached, and what it runs.
        "reach": {
            "type": "object",
            "additionalProperties": False,
            "required": ["via"],
            "properties": {"via": _HOST_NAME, "name": _HOST_NAME},
        },
        "sp": {"type": ["string", "integer"], "enum": [*NT4_SERVICE_PACKS, 0, 1, 2, 3, 4, 5, 6]},
        "wmi_core": {"type": "boolean"},
        "remote_registry": {"enum": ["running", "stopped"]},
        "admin_shares": {"type": "boolean"},
        "admins": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "string",
                "pattern": r"^([A-Za-z0-9-]{1,15}\\)?[A-Za-z0-9._ -]{1,20}$",
            },
        },
    },
}
_JUMP_HOST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": _HOST_NAME,
        "os": {"enum": ["2012", "2016", "2019", "2022"]},
        "connection": {"enum": list(CONNECTIONS)},
        "smb1_client": {"type": "boolean"},
        "netbios": {"type": "boolean"},
        "wmic": {"type": "boolean"},
        "lm_compatibility": {"type": "integer", "minimum": 0, "maximum": 5},
        "faults": _FAULTS,
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "anyOf": [{"required": ["pairs"]}, {"required": ["hosts"]}],
    "properties": {
        "description": {"type": "string"},
        "lab": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "domain": {"type": "string", "pattern": r"^[A-Za-z0-9-]{1,15}$"},
                "user": {"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,20}$"},
                "password": {"type": "string", "minLength": 1},
                "kms_startup_password": {"type": "string", "minLength": 1},
                "base_address": {"type": "string", "pattern": r"^127\.[0-9]+\.[0-9]+\.[0-9]+$"},
                "http_port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "https_port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "connection": {"enum": list(CONNECTIONS)},
                "os": {"enum": list(OS_ERAS)},
            },
        },
        "pairs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["target", "source"],
                "properties": {
                    "count": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "target": _HOST,
                    "source": _HOST,
                },
            },
        },
        "hosts": {"type": "array", "minItems": 1, "items": _HOST},
        "jump_hosts": {"type": "array", "minItems": 1, "items": _JUMP_HOST},
    },
}

LAB_DEFAULTS: dict[str, Any] = {
    "domain": "LAB",
    "user": "labadmin",
    "password": "Lab-Passw0rd!",
    "kms_startup_password": "HZGYYHACWLQACTI",  # the example startup password of KB Q184420
    "base_address": "127.0.10.1",
    "http_port": 5985,
    "https_port": 5986,
    "connection": "ntlm_http",
    "os": "2003",
}

# Every lab password, with what it is, for the test suite's secret scans (the secret is never
# shown, only what it is).
LAB_SECRETS: dict[str, str] = {
    LAB_DEFAULTS["password"]: "the lab's account password",
    LAB_DEFAULTS["kms_startup_password"]: "the lab's KMS startup password",
}


class FleetError(ValueError):
    """A fleet file that cannot be used; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class PlannedHost:
    """One simulated server the lab will run."""

    name: str
    address: str
    role: str  # "target", "source", "host" or "jump"
    source: str | None  # a target's source host name
    spec: dict[str, Any]  # the host's entry from the fleet file (faults, exchange, kms ...)
    connection: str
    os: str
    # A legacy host's jump host and the name that jump host reaches it by; None: it listens.
    via: str | None = None
    reach_name: str | None = None

    @property
    def listens(self) -> bool:
        return self.via is None


@dataclass(frozen=True)
class Fleet:
    path: Path
    lab: dict[str, Any]
    hosts: tuple[PlannedHost, ...] = field(default=())


class _LineLoader(yaml.SafeLoader):
    """Keeps, for every mapping and sequence, the line of each key or item (1-based)."""


class _Located(dict):
    lines: dict[Any, int]


class _LocatedList(list):
    lines: list[int]


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Located:
    loader.flatten_mapping(node)
    mapping = _Located()
    mapping.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise FleetError(
                f"line {key_node.start_mark.line + 1}: key {key!r} appears twice in one mapping; "
                "keep one"
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = key_node.start_mark.line + 1
    return mapping


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _LocatedList:
    items = _LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    items.lines = [child.start_mark.line + 1 for child in node.value]
    return items


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _line_of(document: Any, path: list[Any]) -> int:
    """The line of the deepest element of `path` that the document locates."""
    line, node = 1, document
    for step in path:
        if isinstance(node, _Located) and step in node.lines:
            line, node = node.lines[step], node[step]
        elif isinstance(node, _LocatedList) and isinstance(step, int) and step < len(node.lines):
            line, node = node.lines[step], node[step]
        else:
            break
    return line


def _where(path: list[Any]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "the file"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def load_fleet(path: Path, lab_overrides: dict[str, Any] | None = None) -> Fleet:
    """Read and validate a fleet file; raise FleetError naming the line and what to change.

    `lab_overrides` replace keys of the file's `lab:` section (e.g. another base_address so two
    labs can run side by side)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FleetError(f"{path}: cannot read the fleet file ({exc.strerror}).") from exc
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except FleetError as exc:
        raise FleetError(f"{path} {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise FleetError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}.") from exc
    if not isinstance(document, dict):
        raise FleetError(f"{path} line 1: a fleet file is a mapping with 'pairs' and/or 'hosts'.")

    fleet = _plain(document)
    if lab_overrides:
        fleet["lab"] = {**fleet.get("lab", {}), **lab_overrides}
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(fleet), key=lambda e: list(e.absolute_path))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        path_list = list(error.absolute_path)
        message = error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(error.schema.get("properties", {}))
            unknown = sorted(key for key in error.instance if key not in allowed)
            path_list.append(unknown[0])
            message = f"unknown key; allowed keys are {', '.join(allowed)}"
        raise FleetError(
            f"{path} line {_line_of(document, path_list)}: {_where(path_list)}: {message}."
        )
    return _plan(path, fleet, document)


def _addresses(base: str) -> Any:
    """Loopback addresses from `base` on, skipping .0 and .255 (network/broadcast look-alikes)."""
    address = ipaddress.IPv4Address(base)
    while True:
        if address not in ipaddress.IPv4Network("127.0.0.0/8"):
            raise FleetError(
                f"the fleet needs more loopback addresses than 127.0.0.0/8 holds after {base}"
            )
        if address.packed[3] not in (0, 255):
            yield str(address)
        address += 1


def _plan(path: Path, fleet: dict[str, Any], document: Any) -> Fleet:
    lab = {**LAB_DEFAULTS, **fleet.get("lab", {})}
    addresses = _addresses(lab["base_address"])
    planned: list[PlannedHost] = []
    seen: dict[str, list[Any]] = {}
    jumps = {jump["name"].lower(): jump["name"] for jump in fleet.get("jump_hosts", [])}
    reached: dict[tuple[str, str], list[Any]] = {}

    def fail(where: list[Any], what: str) -> FleetError:
        return FleetError(f"{path} line {_line_of(document, where)}: {_where(where)}: {what}")

    def add(
        spec: dict[str, Any],
        name: str,
        role: str,
        source: str | None,
        where: list[Any],
        suffix: str = "",
    ) -> None:
        key = name.lower()
        if key in seen:
            raise fail(
                where,
                f"host name {name!r} is already used at line {_line_of(document, seen[key])}; "
                "host names must be unique (Windows compares them case-insensitively).",
            )
        seen[key] = where
        via, reach_name = (None, None) if role == "jump" else _reach(spec, name, suffix, where[:-1])
        os = spec.get("os", JUMP_DEFAULT_OS if role == "jump" else lab["os"])
        connection = spec.get(
            "connection", JUMP_CONNECTION if role == "jump" else lab["connection"]
        )
        planned.append(
            PlannedHost(
                name=name,
                address=next(addresses),
                role=role,
                source=source,
                spec=spec,
                connection=connection,
                os=os,
                via=via,
                reach_name=reach_name,
            )
        )

    def _reach(
        spec: dict[str, Any], name: str, suffix: str, where: list[Any]
    ) -> tuple[str | None, str | None]:
        """A legacy host's jump host and NetBIOS name, its knobs checked against its Windows."""
        reach = spec.get("reach")
        os = spec.get("os", lab["os"])
        if reach is None:
            if os == "nt4":
                raise fail(
                    [*where, "os"],
                    "Windows NT 4.0 runs no WinRM; reach it through a jump host: add "
                    "reach: {via: JUMP} and declare JUMP under jump_hosts.",
                )
            for knob in LEGACY_KEYS:
                if knob in spec:
                    raise fail(
                        [*where, knob],
                        f"{knob} is a knob of a server behind a jump host; add reach: {{via: "
                        "JUMP}, or remove it.",
                    )
            return None, None
        if reach["via"].lower() not in jumps:
            known = ", ".join(jumps.values()) or "none"
            raise fail(
                [*where, "reach", "via"],
                f"no jump host {reach['via']!r} (declared: {known}); declare it under jump_hosts.",
            )
        if os not in ("nt4", "2000"):
            raise fail(
                [*where, "os"] if "os" in spec else [*where, "reach"],
                f'a host behind a jump host runs Windows NT 4.0 or 2000 (os: nt4 or "2000"), '
                f"not {os!r}; hosts that run WinRM need no jump host.",
            )
        if "connection" in spec:
            raise fail(
                [*where, "connection"],
                "a host behind a jump host has no WinRM listener; its jump host's connection "
                "is used. Remove it.",
            )
        if "wmi_core" in spec and os != "nt4":
            raise fail(
                [*where, "wmi_core"], "wmi_core is NT 4.0's (Windows 2000 includes WMI); remove it."
            )
        if "remote_registry" in spec and os != "2000":
            raise fail(
                [*where, "remote_registry"],
                "on NT 4.0 the remote registry server runs inside Winlogon (KB Q264684) and "
                "cannot be stopped; remove remote_registry.",
            )
        allowed = NT4_SERVICE_PACKS if os == "nt4" else W2000_SERVICE_PACKS
        if "sp" in spec and str(spec["sp"]) not in allowed:
            raise fail(
                [*where, "sp"],
                f"{'NT 4.0' if os == 'nt4' else 'Windows 2000'} service packs are "
                f"{', '.join(allowed)}; not {spec['sp']!r}.",
            )
        # `name` carries the count's suffix already; an explicit reach name gets it too.
        reach_name = (reach["name"] + suffix if reach.get("name") else name).upper()
        if reach.get("name") and len(reach_name) > 15:
            raise fail(
                [*where, "reach", "name"],
                f"with the count the name becomes {reach_name!r}, longer than Windows' 15 "
                "characters; shorten it.",
            )
        via = jumps[reach["via"].lower()]
        earlier = reached.get((via.lower(), reach_name))
        if earlier is not None:
            raise fail(
                [*where, "reach"],
                f"{via} already reaches {reach_name!r} (line {_line_of(document, earlier)}); "
                "give each server behind a jump host its own name.",
            )
        reached[(via.lower(), reach_name)] = [*where, "reach"]
        return via, reach_name

    for index, jump in enumerate(fleet.get("jump_hosts", [])):
        add(jump, jump["name"], "jump", None, ["jump_hosts", index, "name"])
    for index, pair in enumerate(fleet.get("pairs", [])):
        count = pair.get("count", 1)
        for copy in range(1, count + 1):
            suffix = f"-{copy:03d}" if count > 1 else ""
            target = pair["target"]["name"] + suffix
            source = pair["source"]["name"] + suffix
            if len(target) > 15 or len(source) > 15:
                raise FleetError(
                    f"{path} line {_line_of(document, ['pairs', index])}: pairs[{index}]: with "
                    f"count {count} the names become {target!r}/{source!r}, longer than Windows' 15 "
                    "characters; shorten the names."
                )
            if target.lower() == source.lower():
                raise FleetError(
                    f"{path} line {_line_of(document, ['pairs', index, 'source'])}: "
                    f"pairs[{index}]: the target {target!r} cannot be its own source; name the old "
                    "KM Server as source."
                )
            source_where = ["pairs", index, "source", "name"]
            target_where = ["pairs", index, "target", "name"]
            add(pair["source"], source, "source", None, source_where, suffix)
            add(pair["target"], target, "target", source, target_where, suffix)
    for index, host in enumerate(fleet.get("hosts", [])):
        add(host, host["name"], "host", None, ["hosts", index, "name"])
    return Fleet(path=path, lab=lab, hosts=tuple(planned))
