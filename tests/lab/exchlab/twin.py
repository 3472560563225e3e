# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rehearsal twins: a fleet document built from what was gathered on real servers.

`exchlab twin` reads either exchops.kms.exchange_facts results or a check_kms_move report.json,
turns them into a fleet in fleet.py's format (written beside the lab's state, so it can be read
and started again with `exchlab up`), and starts it like any other fleet. The conversion is
below, in pure functions; reading files is kept to `read_input` and `read_pairs`.

Rules (also in `exchlab twin --help` and docs/runbook.md):
- Nothing is guessed: a missing or contradictory fact refuses the whole twin with the host, the
  field and what to do; a fact the lab cannot model is dropped with a warning line.
- The KM database stamp (the build that last ran Kmsdata): on a target of a pair it is the
  source's server build, because the KM Server moved from the source (KB Q259906); if the
  target's MSExchangeKMS is running with later binaries, they ran it since and the stamp is
  theirs. On any other host it is the host's own Kmserver.exe build.
- Each target gets its source's service pack kit at D:\\EXCH55SP<n> (5.5) or D:\\E2KSP<n>
  (2000), so the twin's inventory sets kms_remediate_sp_media and the remediation can run.
- Credentials are the lab's, never anything from the input (facts carry none).
- A server whose facts were read through a jump host (`reach.via`) sits behind a jump host of
  that name in the twin, declared once under `jump_hosts`, on the Windows its facts' `windows`
  names (`os`, `sp`), with WMI core as its facts show WMI answering (`wmi_core`), so the twin is
  read the same way. The jump host's own Windows is in no fact: the lab's default for a jump host
  (Windows Server 2016), said in a warning line. Directly read hosts run the lab's Windows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .exchange import RELEASES, release
from .fleet import JUMP_DEFAULT_OS, NT4_SERVICE_PACKS, W2000_SERVICE_PACKS
from .reach import LEGACY_OS, NT4_NTLMV2_FROM_SP, NTLM_RESPONSES_LEVEL
from .windows.formats import era_of

FACTS = "facts"
REPORT = "report"

# Events the fleet format can hold (fleet.py); others are dropped with a warning.
MODELLED_EVENTS = (5389, 5015, 5057, 5058, 5085)
KMS_EVENT_SOURCE = "msexchangekms"
# Where the lab installs each product (exchange.py), to say when a real server differs.
LAB_INSTALL_PATHS = {"5.5": r"C:\EXCHSRVR", "2000": r"C:\Program Files\Exchsrvr"}
# Exchange 2019 ends where Subscription Edition starts (microsoft/CSS-Exchange,
# Shared/Get-ExchangeBuildVersionInformation.ps1: 15.2 from build 2562 on is SE).
_SE_FIRST_BUILD = 2562
_COMPUTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,14}$")
# Behind a jump host: the lab's Windows by the CurrentVersion its facts give (the lab writes
# docs/registry.md#windows-version's values), the service packs it runs of each (fleet.py).
_OS_BY_CURRENT_VERSION = {era_of(os).current_version: os for os in LEGACY_OS}
_SERVICE_PACKS = {"nt4": NT4_SERVICE_PACKS, "2000": W2000_SERVICE_PACKS}
_WINDOWS_NAMES = {"nt4": "Windows NT 4.0", "2000": "Windows 2000"}
# CSDVersion as Windows writes it for a service pack (KB Q222507).
_CSD_VERSION = re.compile(r"^Service Pack ([0-9]+)$")
# How exchange_facts' `sources` say a CSDVersion is not there, a reading WMI did not give, wmic
# missing, and a reading WMI gave (plugins/plugin_utils/_facts.py: WINDOWS_NOT_THERE,
# _why_unread, the *_version and events entries).
SOURCE_CSD_NOT_THERE = "CSDVersion (not there)"
SOURCE_WMI_FAILED = "unavailable (WMI: "
SOURCE_WMIC_MISSING = "unavailable (wmic missing)"
SOURCE_READ_BY_WMIC = ("(wmic datafile)", "(wmic ntevent)")
_BUILD = re.compile(r"^([0-9]+)\.([0-9]+)\.([0-9]+)(?:\.([0-9]+))?$")


class TwinError(ValueError):
    """Input a twin cannot be built from; the message names the host, the field and the fix."""


class _NotModelled(TwinError):
    """A host the lab cannot replicate at all (an Exchange version it does not run)."""


@dataclass(frozen=True)
class TwinInput:
    """What `exchlab twin --facts` was given, read and classified."""

    kind: str  # FACTS or REPORT
    origin: str  # the file or folder name, for messages
    facts: dict[str, dict[str, Any]]  # FACTS: host -> its ansible_facts.exchange
    sources: dict[str, str]  # FACTS: target -> kms_source_host found beside the facts
    report: dict[str, Any] | None  # REPORT: the report itself
    notes: tuple[str, ...] = ()  # how the input was read, when it involved a choice


@dataclass(frozen=True)
class Twin:
    fleet: dict[str, Any]  # a fleet document (fleet.py's schema)
    warnings: tuple[str, ...]

    @property
    def host_count(self) -> int:
        return (
            2 * len(self.fleet.get("pairs", []))
            + len(self.fleet.get("hosts", []))
            + len(self.fleet.get("jump_hosts", []))
        )


@dataclass(frozen=True)
class _Server:
    """An Exchange server build as a twin needs it."""

    product: str  # "5.5", "2000", "2016", "2019", "SE"
    service_pack: int | None
    build3: tuple[int, int, int]
    # A modern build's fourth part names its security update (15.1.2507.6 is CU23, .66 an SU).
    revision: int | None = None

    @property
    def build_text(self) -> str:
        return ".".join(str(part) for part in self.build3)

    @property
    def fleet_exchange(self) -> dict[str, Any]:
        if self.service_pack is None:
            full = self.build3 + ((self.revision,) if self.revision is not None else ())
            return {"version": self.product, "build": ".".join(str(part) for part in full)}
        spec: dict[str, Any] = {"version": self.product, "sp": self.service_pack}
        if self.build3[2] != release(self.product, self.service_pack).build:
            spec["build"] = self.build_text  # a post-SP rollup keeps its own build number
        return spec


# ---------------------------------------------------------------------------------------------
# Reading the input


def read_input(path: Path) -> TwinInput:
    """Read a facts file or folder, or a report.json, and say which it is."""
    if path.is_dir():
        return _read_tree(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TwinError(f"{path}: cannot read it ({exc.strerror}).") from exc
    except ValueError as exc:
        raise TwinError(
            f"{path.name}: not JSON ({exc}). Give exchange_facts results as JSON (a file, or the "
            "folder `ansible --tree` wrote) or a check_kms_move report.json."
        ) from exc
    return classify(data, path.name, path.stem)


def _read_tree(folder: Path) -> TwinInput:
    """Ansible's tree callback: one file per host, named after the host, holding its result."""
    results: dict[str, Any] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        try:
            results[entry.name] = json.loads(entry.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise TwinError(
                f"{entry.name}: {folder.name}/{entry.name} is not JSON ({exc}); a tree folder "
                "holds only the files `ansible --tree` wrote."
            ) from exc
    if not results:
        raise TwinError(f"{folder.name}: the folder is empty; gather facts into it first.")
    return _facts_input(results, folder.name)


def classify(data: Any, origin: str, stem: str) -> TwinInput:
    """Tell the accepted shapes apart: a report.json, the ansible.posix json callback's output, one
    host's result, or a mapping host -> result."""
    if not isinstance(data, dict) or not data:
        raise TwinError(
            f"{origin}: expected a JSON object (exchange_facts results or a report.json), got "
            f"{type(data).__name__ if data else 'nothing'}."
        )
    if "pairs" in data and "generated" in data:
        if not isinstance(data["pairs"], list):
            raise TwinError(
                f"{origin}: 'pairs' is not a list; is this a check_kms_move report.json?"
            )
        return TwinInput(REPORT, origin, {}, {}, data)
    if "plays" in data:
        return _facts_input(_callback_results(data, origin), origin)
    if "ansible_facts" in data or "exchange" in data:
        note = (
            f"{origin} holds one host's result: the twin names that host {stem!r}, after the file"
        )
        return _facts_input({stem: data}, origin, (note,))
    return _facts_input(data, origin)


def _callback_results(data: dict[str, Any], origin: str) -> dict[str, Any]:
    """Per-host results of the exchange_facts task in `ANSIBLE_STDOUT_CALLBACK=ansible.posix.json`
    output: {"plays": [{"tasks": [{"hosts": {host: result}}]}]}."""
    results: dict[str, Any] = {}
    for play in data.get("plays") or []:
        for task in play.get("tasks") or []:
            for host, result in (task.get("hosts") or {}).items():
                if not _gathered(result):
                    continue
                if host in results:
                    raise TwinError(
                        f"{host}: {origin} holds exchange facts for it from more than one task; the "
                        "twin cannot choose. Gather once per host and give that output."
                    )
                results[host] = result
    if not results:
        raise TwinError(f"{origin}: no exchops.kms.exchange_facts results in its plays.")
    return results


def _gathered(result: Any) -> bool:
    """A result of exchange_facts: its facts, or its failure."""
    if not isinstance(result, dict):
        return False
    facts = result.get("ansible_facts")
    return (isinstance(facts, dict) and "exchange" in facts) or bool(
        result.get("failed") or result.get("unreachable")
    )


def _facts_input(results: Any, origin: str, notes: tuple[str, ...] = ()) -> TwinInput:
    facts: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    for host, result in results.items():
        if not isinstance(result, dict):
            raise TwinError(
                f"{host}: {origin} gives it {type(result).__name__}, not an exchange_facts result. "
                'Give a mapping of host names to results ({"kms-new": {"ansible_facts": ...}}).'
            )
        if result.get("unreachable") or result.get("failed"):
            raise TwinError(
                f"{host}: {origin} holds a failed result for it, not facts "
                f"({result.get('msg', 'no message')}). Gather facts on {host} again once it "
                f"answers, or remove it from {origin} to build the twin without it."
            )
        gathered = result.get("ansible_facts", result)
        exchange = gathered.get("exchange") if isinstance(gathered, dict) else None
        if not isinstance(exchange, dict):
            raise TwinError(
                f"{host}: {origin} has no ansible_facts.exchange for it. Give the output of "
                "exchops.kms.exchange_facts (or a check_kms_move report.json)."
            )
        facts[host] = exchange
        source = result.get("kms_source_host") or gathered.get("kms_source_host")
        if source is not None:
            if not isinstance(source, str) or not source:
                raise TwinError(
                    f"{host}: kms_source_host in {origin} is not a host name: {source!r}."
                )
            sources[host] = source
    return TwinInput(FACTS, origin, facts, sources, None, notes)


class _InventoryLoader(yaml.SafeLoader):
    """YAML that tolerates Ansible's tags: vaulted values are skipped (a twin never reads a
    secret), `!unsafe` strings are read as plain strings."""


def _ansible_tag(loader: _InventoryLoader, suffix: str, node: yaml.Node) -> Any:
    if suffix == "unsafe" and isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    return None


_InventoryLoader.add_multi_constructor("!", _ansible_tag)


def read_pairs(path: Path) -> dict[str, str]:
    """target -> source from a YAML/JSON mapping `{target: source}`, or from the kms_source_host
    host variables of a YAML inventory (those written in the file itself)."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_InventoryLoader)  # noqa: S506
    except OSError as exc:
        raise TwinError(f"{path}: cannot read the pairs file ({exc.strerror}).") from exc
    except yaml.YAMLError as exc:
        raise TwinError(f"{path.name}: not valid YAML or JSON: {exc}.") from exc
    if isinstance(data, dict) and data and all(isinstance(value, str) for value in data.values()):
        return dict(data)
    pairs: dict[str, str] = {}
    if isinstance(data, dict):
        _inventory_pairs(data, pairs, path.name)
    if not pairs:
        raise TwinError(
            f"{path.name}: no pairs in it. Give a mapping of each target to its source "
            "(kms-new: kms-old), or a YAML inventory whose targets carry kms_source_host."
        )
    return pairs


def _inventory_pairs(groups: Mapping[str, Any], pairs: dict[str, str], origin: str) -> None:
    for group in groups.values():
        if not isinstance(group, dict):
            continue
        for host, variables in (group.get("hosts") or {}).items():
            source = (
                (variables or {}).get("kms_source_host") if isinstance(variables, dict) else None
            )
            if isinstance(source, str) and source:
                if pairs.get(host, source) != source:
                    raise TwinError(
                        f"{host}: {origin} gives it two sources, {pairs[host]} and {source}; keep one."
                    )
                pairs[host] = source
        _inventory_pairs(group.get("children") or {}, pairs, origin)


# ---------------------------------------------------------------------------------------------
# Builds


def _parse_build(host: str, field: str, value: Any, fix: str) -> tuple[int, ...]:
    if value is None:
        raise TwinError(f"{host}: {field} is missing. {fix}")
    match = _BUILD.match(str(value)) if isinstance(value, str) else None
    if match is None:
        raise TwinError(
            f"{host}: {field} is {value!r}, not an Exchange build like 5.5.2650.0. {fix}"
        )
    return tuple(int(part) for part in match.groups() if part is not None)


def _sp_of(product: str, number: int) -> int | None:
    """The service pack a build number belongs to: the greatest SP build at or below it."""
    candidates = [r for r in RELEASES if r.product == product and r.build <= number]
    return max(candidates, key=lambda r: r.build).service_pack if candidates else None


def _server(host: str, field: str, build: tuple[int, ...], service_pack: Any, fix: str) -> _Server:
    """The server a build names; refuses builds the lab cannot run and an SP that disagrees."""
    major, minor, number = build[:3]
    product = {(5, 5): "5.5", (6, 0): "2000", (15, 1): "2016", (15, 2): "2019"}.get((major, minor))
    if product == "2019" and number >= _SE_FIRST_BUILD:
        product = "SE"
    if product is None:
        raise _NotModelled(
            f"{host}: {field} {'.'.join(map(str, build))} is an Exchange version the lab does not "
            "model (it runs 5.5, 2000, 2016, 2019 and SE)"
        )
    if product in ("2016", "2019", "SE"):
        return _Server(product, None, (major, minor, number), build[3] if len(build) > 3 else None)
    named = _sp_of(product, number)
    if named is None:
        raise TwinError(
            f"{host}: {field} {'.'.join(map(str, build))} is older than Exchange {product} RTM. {fix}"
        )
    if service_pack is not None and service_pack != named:
        raise TwinError(
            f"{host}: service_pack is {service_pack!r} but {field} {'.'.join(map(str, build))} is "
            f"Exchange {product} SP{named}; the facts contradict each other. Check the server "
            "(runbook step 2) and gather facts again."
        )
    return _Server(product, named, (major, minor, number))


def _sp_kit(server: _Server) -> dict[str, str]:
    """The SP kit that brings a target to `server`'s service pack, as fleet `media`."""
    if not server.service_pack:
        return {}
    kit = release(server.product, server.service_pack)
    prefix = "EXCH55SP" if server.product == "5.5" else "E2KSP"
    return {f"D:\\{prefix}{server.service_pack}": kit.build_text}


# ---------------------------------------------------------------------------------------------
# Host names and pairs


def _computer_names(hosts: list[str], warnings: list[str]) -> dict[str, str]:
    """host -> lab host name. A DNS name becomes its first label (the Windows computer name)."""
    names: dict[str, str] = {}
    taken: dict[str, str] = {}
    for host in hosts:
        name = host.split(".", 1)[0] if "." in host else host
        if not _COMPUTER_NAME.match(name):
            raise TwinError(
                f"{host}: not a Windows computer name the lab can give a host (letters, digits and "
                "hyphens, at most 15). Rename it in the input (the key of its facts, and its pair)."
            )
        if name.lower() in taken:
            raise TwinError(
                f"{host}: its computer name {name!r} is also {taken[name.lower()]}'s; lab host "
                "names must be unique. Rename one of them in the input."
            )
        taken[name.lower()] = host
        if name != host:
            warnings.append(
                f"{host}: the twin names it {name} (its computer name; the lab takes no DNS names)"
            )
        names[host] = name
    return names


def _check_pairs(pairs: Mapping[str, str], known: Mapping[str, Any], origin: str) -> None:
    sources_seen: dict[str, str] = {}
    for target, source in pairs.items():
        for host, role in ((target, "target"), (source, "source")):
            if host not in known:
                raise TwinError(
                    f"{host}: it is the {role} of the pair {target} <- {source} but {origin} has no "
                    f"facts for it. Gather facts on both servers of every pair "
                    "(ansible 'kms_targets:kms_sources' -m exchops.kms.exchange_facts)."
                )
        if target.lower() == source.lower():
            raise TwinError(f"{target}: it is named as its own source; name the old KM Server.")
        if source in sources_seen:
            raise TwinError(
                f"{source}: it is the source of both {sources_seen[source]} and {target}; a KM "
                "Server moves to one new server, and a lab host has one role. Keep one pair."
            )
        sources_seen[source] = target
        if source in pairs:
            raise TwinError(
                f"{source}: it is the target of one pair and the source of another ({target}); a lab "
                "host has one role. Build one twin per move."
            )


# ---------------------------------------------------------------------------------------------
# From exchange_facts


def twin_from_facts(source: TwinInput, pairs: Mapping[str, str] | None = None) -> Twin:
    """A fleet replicating the hosts of exchange_facts results.

    `pairs` (target -> source, from --pairs / --pair) is merged with any kms_source_host found
    beside the facts; the two must agree."""
    warnings: list[str] = list(source.notes)
    pairing = dict(source.sources)
    for target, origin_source in (pairs or {}).items():
        if pairing.get(target, origin_source) != origin_source:
            raise TwinError(
                f"{target}: its facts name kms_source_host {pairing[target]} but the pairs given "
                f"name {origin_source}; the twin cannot choose. Correct one of them."
            )
        pairing[target] = origin_source
    _check_pairs(pairing, source.facts, source.origin)
    in_pairs = set(pairing) | set(pairing.values())
    vias = _jump_hosts_of(source.facts, in_pairs, warnings)

    specs: dict[str, dict[str, Any]] = {}
    servers: dict[str, _Server | None] = {}
    behind: dict[str, _Legacy] = {}
    for host, exchange in source.facts.items():
        if host in vias:
            continue  # a jump host: declared under jump_hosts below
        try:
            specs[host], servers[host] = _host_from_facts(host, exchange, warnings)
        except _NotModelled as exc:
            if host in in_pairs:
                raise TwinError(f"{exc}. Leave this pair out of the input.") from exc
            warnings.append(f"{exc}; left out of the twin")
            continue
        _warn_unread_events(host, exchange, warnings)
        legacy = _legacy_from_facts(host, exchange, warnings)
        if legacy is not None:
            behind[host] = legacy
    names = _computer_names(list(specs) + [via for via in vias if via not in specs], warnings)
    jump_hosts = _jump_host_entries(vias, behind, names, source.facts, warnings)
    for host, legacy in behind.items():
        specs[host] = {**legacy.spec(names[legacy.via]), **specs[host]}

    fleet_pairs = []
    for target, source_host in pairing.items():
        target_spec, source_spec = specs[target], specs[source_host]
        source_server = servers[source_host]
        kms = target_spec.get("kms") or {}
        if "binary_build" in kms:  # a KM Server on Exchange 5.5 / 2000
            if source_server is None or source_server.service_pack is None:
                raise TwinError(
                    f"{source_host}: it is the source of {target} but runs no Exchange 5.5 or "
                    "2000, so nothing says which build last ran the KM database. Check the pair."
                )
            kms["database_stamp"] = _target_stamp(target, kms, source_server, warnings)
        if source_server is not None and source_server.service_pack is not None:
            media = _sp_kit(source_server)
            if (
                media
                and source_server.build3[2]
                != release(source_server.product, source_server.service_pack).build
            ):
                target_spec["media"] = media
                warnings.append(
                    f"{target}: its source {source_host} runs {source_server.build_text}, after "
                    f"SP{source_server.service_pack}; the lab's kits are service packs only, so the "
                    "twin's inventory has no kms_remediate_sp_media"
                )
            elif media:
                target_spec["media"] = media
            else:
                warnings.append(
                    f"{target}: its source {source_host} runs RTM: there is no service pack kit to "
                    "reapply, so the twin's remediation has no media"
                )
        fleet_pairs.append(
            {
                "source": _named(source_spec, names[source_host]),
                "target": _named(target_spec, names[target]),
            }
        )
    standalone = [_named(specs[host], names[host]) for host in specs if host not in in_pairs]
    for spec in standalone:
        kms = spec.get("kms")
        if kms and "binary_build" in kms:
            kms["database_stamp"] = _three(kms["binary_build"])
    if not fleet_pairs:
        warnings.append(
            f"{source.origin} names no source/target pairs: the gate and the remediation have no "
            "target on the twin. Give --pairs (or --pair TARGET=SOURCE)"
        )
    for pair in fleet_pairs:
        kms = pair["source"].get("kms")
        if kms and "binary_build" in kms:
            kms["database_stamp"] = _three(kms["binary_build"])
    origin = f"exchops.kms.exchange_facts results ({source.origin})"
    return Twin(_document(origin, fleet_pairs, standalone, jump_hosts), tuple(warnings))


def _three(build: str) -> str:
    return ".".join(build.split(".")[:3])


def _named(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return {"name": name, **spec}


def _target_stamp(target: str, kms: dict[str, Any], source: _Server, warnings: list[str]) -> str:
    """The build that last ran a target's KM database (this module's docstring)."""
    stamp = source.build3
    km_build = tuple(int(part) for part in kms["binary_build"].split(".")[:3])
    if kms.get("state") == "running":
        if km_build > stamp:
            stamp = km_build  # KMS has since run it with these binaries and raised its stamp
        elif km_build < stamp:
            warnings.append(
                f"{target}: MSExchangeKMS is running with Kmserver.exe {kms['binary_build']}, older "
                f"than its source's build {source.build_text}, which last ran the KM database: the "
                "twin keeps it running, but a restart will exit with event 5389. Check that the KM "
                "database really moved"
            )
    return ".".join(str(part) for part in stamp)


_GATHER_AGAIN = "Gather facts on it again with exchops.kms.exchange_facts."


def _host_from_facts(
    host: str, exchange: Mapping[str, Any], warnings: list[str]
) -> tuple[dict[str, Any], _Server | None]:
    """One host's fleet entry (without its name) from its ansible_facts.exchange."""
    installed = exchange.get("installed")
    kms_facts = exchange.get("kms") if isinstance(exchange.get("kms"), dict) else None
    if not isinstance(installed, bool):
        raise TwinError(f"{host}: exchange.installed is missing or not true/false. {_GATHER_AGAIN}")
    if not installed:
        if kms_facts and kms_facts.get("installed"):
            raise TwinError(
                f"{host}: exchange.installed is false but exchange.kms.installed is true; the facts "
                f"contradict each other. {_GATHER_AGAIN}"
            )
        return {"exchange": None}, None
    build = _parse_build(host, "exchange.build", exchange.get("build"), _GATHER_AGAIN)
    number = exchange.get("build_number")
    if number is not None and number != build[2]:
        raise TwinError(
            f"{host}: exchange.build_number is {number!r} but exchange.build is "
            f"{exchange['build']}; the facts contradict each other. {_GATHER_AGAIN}"
        )
    server = _server(host, "exchange.build", build, exchange.get("service_pack"), _GATHER_AGAIN)
    spec: dict[str, Any] = {"exchange": server.fleet_exchange}
    if server.service_pack is None:
        return spec, server
    if exchange.get("service_pack") is None:
        raise TwinError(f"{host}: exchange.service_pack is missing. {_GATHER_AGAIN}")
    for disagreement in exchange.get("inconsistent") or []:
        raise TwinError(
            f"{host}: exchange.inconsistent: the {disagreement.get('what', 'readings')} readings "
            f"disagree ({disagreement.get('readings')}); the twin will not pick one. Find out which "
            "is right on the server (runbook step 2), fix it, and gather facts again."
        )
    lab_root = LAB_INSTALL_PATHS[server.product]
    install_path = exchange.get("install_path")
    if isinstance(install_path, str) and install_path.rstrip("\\").lower() != lab_root.lower():
        warnings.append(
            f"{host}: Exchange is installed in {install_path}; the lab installs it in {lab_root}, so "
            "paths in the twin's reports (backups, Kmsdata) differ from the real server's"
        )
    if kms_facts is None or not isinstance(kms_facts.get("installed"), bool):
        raise TwinError(f"{host}: exchange.kms.installed is missing. {_GATHER_AGAIN}")
    if not kms_facts["installed"]:
        spec["kms"] = {"installed": False}
    else:
        spec["kms"] = _kms_from_facts(
            host, server, kms_facts, lab_root, warnings, exchange.get("sources")
        )
    events = _events_from_facts(host, kms_facts.get("events") or [], warnings)
    if events:
        spec["events"] = events
    return spec, server


def _kms_from_facts(
    host: str,
    server: _Server,
    kms: Mapping[str, Any],
    lab_root: str,
    warnings: list[str],
    sources: Any = None,
) -> dict[str, Any]:
    service = kms.get("service") if isinstance(kms.get("service"), dict) else {}
    state = service.get("state")
    if state is None:
        raise TwinError(f"{host}: exchange.kms.service.state is missing. {_GATHER_AGAIN}")
    if state == "absent":
        raise TwinError(
            f"{host}: exchange.kms.installed is true but the MSExchangeKMS service is absent; the "
            f"facts contradict each other. {_GATHER_AGAIN}"
        )
    if state not in ("running", "stopped"):
        raise TwinError(
            f"{host}: exchange.kms.service.state is {state!r}; a twin holds MSExchangeKMS running "
            "or stopped. Gather facts again once the service has settled."
        )
    unread = sources.get("file_versions") if isinstance(sources, dict) else None
    fix = (
        (f"It could not be read (sources.file_versions: {unread}). " if unread else "")
        + "Read Kmserver.exe's file version on the server (its Properties, Version tab) and add "
        'it to the host\'s facts as exchange.kms.binary_build ("5.5.1960.8"), then run again.'
    )
    km_build = _parse_build(host, "exchange.kms.binary_build", kms.get("binary_build"), fix)
    if km_build[:2] != server.build3[:2]:
        raise TwinError(
            f"{host}: exchange.kms.binary_build {kms['binary_build']} is not a build of the "
            f"server's Exchange {server.product} ({server.build_text}); the facts contradict each "
            f"other. {_GATHER_AGAIN}"
        )
    spec: dict[str, Any] = {"binary_build": ".".join(map(str, km_build)), "state": state}
    if service.get("image_path_has_arguments"):
        spec["image_path_password"] = True  # KB Q235418: the lab puts its own password there
    if kms.get("password_source") == "disk":
        # KB Q196129: the server reads its startup password from a disk; the twin's is in A:.
        spec["startup_disk"] = True
    database_path = kms.get("database_path")
    lab_data = lab_root + "\\KMSDATA"
    if isinstance(database_path, str) and database_path.rstrip("\\").lower() != lab_data.lower():
        warnings.append(
            f"{host}: the KM database is in {database_path}; the lab keeps it in {lab_data}"
        )
    start_mode = service.get("start_mode")
    if start_mode not in (None, "manual"):
        warnings.append(
            f"{host}: MSExchangeKMS starts {start_mode} on the server; the lab's starts manually "
            "(as after an Exchange 5.5 install, KB Q184420)"
        )
    return spec


def _events_from_facts(host: str, events: list[Any], warnings: list[str]) -> list[int]:
    """Event IDs, oldest first (the facts list them newest first, the fleet oldest first)."""
    kept: list[int] = []
    dropped: list[str] = []
    for event in reversed(events):
        if not isinstance(event, dict) or not isinstance(event.get("id"), int):
            raise TwinError(
                f"{host}: exchange.kms.events holds {event!r}, not an event with an id. {_GATHER_AGAIN}"
            )
        source = str(event.get("source", ""))
        if source.lower() == KMS_EVENT_SOURCE and event["id"] in MODELLED_EVENTS:
            kept.append(event["id"])
        else:
            dropped.append(f"{event['id']} ({source or 'no source'})")
    if dropped:
        warnings.append(
            f"{host}: the lab does not model event(s) {', '.join(dropped)}; left out (it models "
            f"MSExchangeKMS {', '.join(map(str, MODELLED_EVENTS))})"
        )
    return kept


# ---------------------------------------------------------------------------------------------
# Servers read through a jump host


def _via(host: str, exchange: Mapping[str, Any]) -> str | None:
    """The jump host a host's facts were read through (`reach.via`), None when read directly."""
    reach = exchange.get("reach")
    if reach is None:
        return None
    via = reach.get("via") if isinstance(reach, dict) else reach
    if via is None:
        return None
    if not isinstance(reach, dict) or not isinstance(via, str) or not via:
        raise TwinError(
            f"{host}: exchange.reach is {reach!r}; its via is the inventory name of the jump host "
            f"the facts were read through, or null when read directly. {_GATHER_AGAIN}"
        )
    return via


def _jump_hosts_of(
    facts: Mapping[str, Mapping[str, Any]], in_pairs: set[str], warnings: list[str]
) -> list[str]:
    """The jump hosts the facts were read through, in order; a jump host's own facts, when given,
    are left out (the lab's jump hosts run no Exchange)."""
    vias: list[str] = []
    for host, exchange in facts.items():
        via = _via(host, exchange)
        if via is not None and via not in vias:
            vias.append(via)
    for via in vias:
        if via not in facts:
            continue
        users = [host for host, exchange in facts.items() if _via(host, exchange) == via]
        if via in in_pairs:
            raise TwinError(
                f"{via}: it is the jump host {', '.join(users)} were read through, and a server "
                "of a pair; a lab host has one role. Check the pairs and the hosts' "
                "exchange_jump_host."
            )
        if _via(via, facts[via]) is not None:
            raise TwinError(
                f"{via}: it is the jump host of {', '.join(users)} but was itself read through "
                f"{_via(via, facts[via])}; exchops.kms reaches a jump host directly, so the facts "
                f"contradict each other. {_GATHER_AGAIN}"
            )
        if facts[via].get("installed"):
            warnings.append(
                f"{via}: it is the jump host of {', '.join(users)}; the lab's jump hosts run no "
                "Exchange, so its own Exchange is left out of the twin"
            )
    return vias


@dataclass(frozen=True)
class _Legacy:
    """A server behind a jump host, as its facts show it."""

    via: str
    os: str  # "nt4" or "2000"
    service_pack: int
    wmi: str  # how WMI answered through the jump host: one of the _WMI_* below

    def spec(self, via_name: str) -> dict[str, Any]:
        """Its knobs in a fleet host entry (fleet.py), behind the jump host named `via_name`."""
        spec: dict[str, Any] = {"os": self.os, "sp": self.service_pack}
        if self.os == "nt4":
            spec["wmi_core"] = self.wmi in (_WMI_ANSWERED, _WMI_PARTLY)
        spec["reach"] = {"via": via_name}
        return spec


_WMI_ANSWERED = "answered"
_WMI_PARTLY = "answered in part"
_WMI_FAILED = "did not answer"
_WMI_NO_WMIC = "no wmic on the jump host"
_WMI_UNSHOWN = "not shown"


def _wmi_shown(exchange: Mapping[str, Any]) -> tuple[str, str]:
    """How WMI answered when the host was read (file versions and events come through wmic), and
    the `sources` entry that shows a failure: exchange_facts records a version it read
    "(wmic datafile)", and a reading WMI did not give "unavailable (WMI: ...)"."""
    sources = exchange.get("sources") if isinstance(exchange.get("sources"), dict) else {}
    wmi_sources = {
        name: str(text)
        for name, text in sources.items()
        if name in ("file_versions", "events") or name.endswith("_version")
    }
    kms = exchange.get("kms") if isinstance(exchange.get("kms"), dict) else {}
    answered = bool(kms.get("events")) or any(
        text.endswith(SOURCE_READ_BY_WMIC) for text in wmi_sources.values()
    )
    failed = [
        f"sources.{name}: {text}"
        for name, text in wmi_sources.items()
        if text.startswith(SOURCE_WMI_FAILED)
    ]
    missing = [
        f"sources.{name}: {text}"
        for name, text in wmi_sources.items()
        if text == SOURCE_WMIC_MISSING
    ]
    if missing:
        return _WMI_NO_WMIC, missing[0]
    if failed:
        return (_WMI_PARTLY if answered else _WMI_FAILED), failed[0]
    return (_WMI_ANSWERED if answered else _WMI_UNSHOWN), ""


def _legacy_from_facts(
    host: str, exchange: Mapping[str, Any], warnings: list[str]
) -> _Legacy | None:
    """The knobs of a server whose facts were read through a jump host; None when read directly."""
    via = _via(host, exchange)
    if via is None:
        return None
    windows = exchange.get("windows")
    if not isinstance(windows, dict):
        raise TwinError(
            f"{host}: its facts were read through the jump host {via} but carry no windows (the "
            "Windows it runs), so the twin cannot tell Windows NT 4.0 from 2000: they were "
            "gathered before exchange_facts read it. Gather facts on it again with "
            "exchops.kms.exchange_facts."
        )
    sources = exchange.get("sources") if isinstance(exchange.get("sources"), dict) else {}
    read = sources.get("windows")
    said = f" (sources.windows: {read})" if read else ""
    version = windows.get("version")
    if version is None:
        raise TwinError(
            f"{host}: windows.version is missing{said}, so the twin cannot tell Windows NT 4.0 "
            f"from 2000. Read CurrentVersion under HKLM\\SOFTWARE\\Microsoft\\Windows NT\\"
            f'CurrentVersion on the server ("4.0" or "5.0") and put it in its facts as '
            "windows.version, or gather facts again."
        )
    os = _OS_BY_CURRENT_VERSION.get(str(version))
    if os is None:
        raise TwinError(
            f"{host}: windows.version is {version!r}, but its facts were read through the jump "
            f"host {via}: the lab's servers behind a jump host run Windows NT 4.0 (4.0) or "
            "Windows 2000 (5.0) (docs/registry.md#windows-version). A server on later Windows "
            "runs WinRM: read it directly (remove its exchange_jump_host) and gather facts again."
        )
    service_pack = _legacy_service_pack(host, os, windows.get("service_pack"), read, warnings)
    wmi, shown_by = _wmi_shown(exchange)
    if os == "nt4" and wmi == _WMI_UNSHOWN:
        raise TwinError(
            f"{host}: nothing in its facts shows whether WMI answers on it (WMI core on Windows NT "
            "4.0, KB Q219378): no file version and no event was read. Gather facts on it again "
            "with kms_event_count above 0."
        )
    if wmi == _WMI_PARTLY:
        warnings.append(
            f"{host}: WMI gave some readings and not others ({shown_by}); the lab's WMI answers "
            "all or none, so the twin's answers all"
        )
    elif wmi == _WMI_FAILED and os == "2000":
        warnings.append(
            f"{host}: WMI did not answer on it ({shown_by}); Windows 2000 includes WMI and the "
            "lab's always answers"
        )
    elif wmi == _WMI_FAILED:
        warnings.append(
            f"{host}: WMI did not answer on it ({shown_by}); the twin's runs no WMI core, the "
            "lab's one way for WMI on Windows NT 4.0 not to answer"
        )
    elif wmi == _WMI_NO_WMIC and os == "nt4":
        warnings.append(
            f"{host}: whether it runs WMI core is unknown: its jump host {via} has no wmic "
            f"({shown_by}), so nothing read WMI through it; the twin's {host} has none"
        )
    return _Legacy(via, os, service_pack, wmi)


def _legacy_service_pack(host: str, os: str, text: Any, read: Any, warnings: list[str]) -> int:
    """The service pack from CSDVersion as the facts give it (KB Q222507: "Service Pack X")."""
    name = _WINDOWS_NAMES[os]
    if text is None:
        if SOURCE_CSD_NOT_THERE not in str(read or ""):
            raise TwinError(
                f"{host}: windows.service_pack is missing and sources.windows does not say that "
                f"CSDVersion is not there ({read or 'no sources.windows'}), so the twin cannot "
                f"tell which {name} service pack it runs. Gather facts on it again, or read "
                "CSDVersion on the server and put it in its facts as windows.service_pack."
            )
        number = 0  # no CSDVersion: no service pack [I] (docs/registry.md#windows-version)
    else:
        match = _CSD_VERSION.match(str(text))
        if match is None:
            raise TwinError(
                f"{host}: windows.service_pack is {text!r}, not 'Service Pack N': a hotfix can "
                "write such a text (KB Q222507), so it does not say the service pack. Find the "
                "service pack on the server (Q222507 compares the dates of its files with the "
                "service pack's) and put 'Service Pack N' in its facts as windows.service_pack."
            )
        number = int(match.group(1))
    packs = _SERVICE_PACKS[os]
    if str(number) not in packs:
        raise TwinError(
            f"{host}: it runs {name} "
            f"{'without a service pack' if number == 0 else f'SP{number}'}; the lab runs "
            f"{name} SP{packs[0]} to SP{packs[-1]}. A twin of it cannot be built; leave it out "
            "of the input."
        )
    if os == "nt4" and number == 6:
        warnings.append(
            f"{host}: CSDVersion 'Service Pack 6' is Windows NT 4.0 SP6 or SP6a, which keeps SP6's "
            "text (docs/registry.md#windows-version); the twin runs SP6, which the lab models "
            "like SP6a"
        )
    return number


def _jump_host_entries(
    vias: list[str],
    behind: Mapping[str, _Legacy],
    names: Mapping[str, str],
    facts: Mapping[str, Mapping[str, Any]],
    warnings: list[str],
) -> list[dict[str, Any]]:
    """One `jump_hosts` entry per jump host: the lab's default Windows (no fact names it), wmic
    as the reads through it show, and NTLM responses an NT 4.0 below SP4 behind it understands."""
    entries = []
    for via in vias:
        served = {host: legacy for host, legacy in behind.items() if legacy.via == via}
        if not served:
            continue  # its servers were left out of the twin
        entry: dict[str, Any] = {"name": names[via], "os": JUMP_DEFAULT_OS}
        without = sorted(host for host, legacy in served.items() if legacy.wmi == _WMI_NO_WMIC)
        with_wmic = sorted(
            host
            for host, legacy in served.items()
            if legacy.wmi in (_WMI_ANSWERED, _WMI_PARTLY, _WMI_FAILED)
        )
        if without and with_wmic:
            raise TwinError(
                f"{via}: the facts of {', '.join(without)} say it has no wmic, those of "
                f"{', '.join(with_wmic)} were read with its wmic; the facts contradict each "
                f"other. Gather facts on them again in one run."
            )
        if without:
            entry["wmic"] = False
        old_nt4 = sorted(
            host
            for host, legacy in served.items()
            if legacy.os == "nt4" and legacy.service_pack < NT4_NTLMV2_FROM_SP
        )
        if old_nt4:
            entry["lm_compatibility"] = NTLM_RESPONSES_LEVEL
            warnings.append(
                f"{via}: it read {', '.join(old_nt4)} (Windows NT 4.0 below SP4, which has no "
                f"NTLMv2, KB Q236414), so it sends NTLM responses: the twin's has "
                f"LmCompatibilityLevel {NTLM_RESPONSES_LEVEL}"
            )
        own = facts.get(via, {}).get("windows") if isinstance(facts.get(via), dict) else None
        version = own.get("version") if isinstance(own, dict) else None
        seen = (
            f"; its own facts give CurrentVersion {version}, which does not tell 2012 R2 to 2022 "
            "apart"
            if version
            else ""
        )
        warnings.append(
            f"{via}: the jump host of {', '.join(sorted(served))}; no fact names its own Windows, "
            f"so the twin's runs Windows Server {JUMP_DEFAULT_OS}, the lab's default for a jump host (SMB 1 "
            f"client and NetBIOS over TCP/IP on, as the reads through it needed){seen}"
        )
        entries.append(entry)
    return entries


def _warn_unread_events(host: str, exchange: Mapping[str, Any], warnings: list[str]) -> None:
    """Events the facts could not read are none in the twin: say so."""
    sources = exchange.get("sources") if isinstance(exchange.get("sources"), dict) else {}
    unread = sources.get("events")
    if isinstance(unread, str) and unread.startswith("unavailable"):
        warnings.append(
            f"{host}: its MSExchangeKMS events could not be read (sources.events: {unread}); the "
            "twin's Application log holds none of them"
        )


# ---------------------------------------------------------------------------------------------
# From a check_kms_move report.json


def twin_from_report(source: TwinInput) -> Twin:
    """A fleet replicating the pairs of a gate's report.json.

    The report carries builds only (target, source, Kmserver.exe) and each pair's status, so the
    rest is derived, and each derivation is said in a warning: the source's KMS runs on its own
    service pack's binaries; the target's MSExchangeKMS is stopped with event 5389 when its
    Kmserver.exe is older than the database stamp (the KB's outcome), running otherwise."""
    assert source.report is not None
    rows = source.report["pairs"]
    origin = source.origin
    if not rows:
        raise TwinError(f"{origin}: the report has no pairs; run the gate on a fleet with targets.")
    warnings = [
        f"{origin} carries builds only: the twin derives service states and events (one line per "
        "target below), and gives each source its service pack's own KM binaries"
    ]
    pairing: dict[str, str] = {}
    specs: dict[str, dict[str, Any]] = {}
    fleet_rows: list[tuple[str, str]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not row.get("target") or not row.get("source"):
            raise TwinError(
                f"{origin}: pairs[{index}] has no target or source; is it a report.json?"
            )
        target, source_host = str(row["target"]), str(row["source"])
        where = f"{origin} pairs[{index}]"
        status = row.get("status")
        if status in ("unreachable", "error"):
            raise TwinError(
                f"{target}: {where} is {status}: the gate could not judge this pair "
                f"({row.get('reason', 'no reason given')}), so it has no builds to replicate. Fix "
                "what the reason says and run the gate again, or build the twin from "
                "exchange_facts results."
            )
        if target in pairing:
            raise TwinError(f"{target}: {origin} lists it as a target twice; keep one row.")
        fix = f"Run the gate again and give its new report.json (is {origin} edited?)."
        servers = []
        for host, field in ((target, "target_build"), (source_host, "source_build")):
            build = _parse_build(host, f"{where} {field}", row.get(field), fix)
            try:
                servers.append(_server(host, f"{where} {field}", build, None, fix))
            except _NotModelled as exc:
                raise TwinError(f"{exc}. Leave this pair out of the report.") from exc
        target_server, source_server = servers
        km_build = _parse_build(
            target, f"{where} kms_binary_build", row.get("kms_binary_build"), fix
        )
        for host, server, field in (
            (target, target_server, "target_build"),
            (source_host, source_server, "source_build"),
        ):
            if server.service_pack is None:
                raise TwinError(
                    f"{host}: {where} {field} is Exchange {server.product}, which has no KM Server; "
                    "a twin of a KM Server move needs Exchange 5.5 or 2000."
                )
        if km_build[:2] != target_server.build3[:2]:
            raise TwinError(
                f"{target}: {where} kms_binary_build {row['kms_binary_build']} is not a build of "
                f"its Exchange {target_server.product}; the report contradicts itself. {fix}"
            )
        stamp = source_server.build3
        if status == "match" and km_build[:3] < stamp:
            raise TwinError(
                f"{target}: {where} says match but Kmserver.exe {row['kms_binary_build']} is older "
                f"than its source's build {source_server.build_text}; the report contradicts itself. {fix}"
            )
        km_text = ".".join(map(str, km_build))
        if km_build[:3] < stamp:
            state, events = "stopped", [5389]
            warnings.append(
                f"{target}: MSExchangeKMS stopped with event 5389 (derived: Kmserver.exe {km_text} "
                f"is older than {source_server.build_text}, which last ran the KM database, KB Q259906)"
            )
        else:
            state, events = "running", []
            stamp = max(stamp, km_build[:3])
            warnings.append(
                f"{target}: MSExchangeKMS running (derived: Kmserver.exe {km_text} can run a KM "
                f"database last run by {source_server.build_text})"
            )
        target_spec: dict[str, Any] = {
            "exchange": target_server.fleet_exchange,
            "kms": {
                "binary_build": km_text,
                "state": state,
                "database_stamp": ".".join(map(str, stamp)),
            },
        }
        if events:
            target_spec["events"] = events
        media = _sp_kit(source_server)
        if media:
            target_spec["media"] = media
        else:
            warnings.append(
                f"{target}: its source {source_host} runs RTM: there is no service pack kit to "
                "reapply, so the twin's remediation has no media"
            )
        specs[target] = target_spec
        specs[source_host] = {
            "exchange": source_server.fleet_exchange,
            "kms": {"state": "running", "database_stamp": source_server.build_text},
        }
        pairing[target] = source_host
        fleet_rows.append((target, source_host))
    _check_pairs(pairing, specs, origin)
    names = _computer_names(list(specs), warnings)
    fleet_pairs = [
        {"source": _named(specs[s], names[s]), "target": _named(specs[t], names[t])}
        for t, s in fleet_rows
    ]
    return Twin(_document(f"the check_kms_move report {origin}", fleet_pairs, []), tuple(warnings))


# ---------------------------------------------------------------------------------------------
# The fleet document


def _document(
    origin: str,
    pairs: list[dict[str, Any]],
    hosts: list[dict[str, Any]],
    jump_hosts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    if not pairs and not hosts:
        raise TwinError(f"{origin}: no host the lab can replicate; nothing to start.")
    description = (
        f"Rehearsal twin built by `exchlab twin` from {origin}. Credentials are the lab's. "
        "KM database stamp: a target's is its source's server build (raised to its own "
        "Kmserver.exe build when KMS runs with later binaries); any other host's is its own "
        "Kmserver.exe build. Each target has its source's service pack kit under D:\\."
    )
    if jump_hosts:
        description += (
            " Servers read through a jump host sit behind it, on the Windows their facts name; "
            f"the jump host runs the lab's default Windows Server {JUMP_DEFAULT_OS} (no fact names its own)."
        )
    document: dict[str, Any] = {"description": description}
    if jump_hosts:
        document["jump_hosts"] = jump_hosts
    if pairs:
        document["pairs"] = pairs
    if hosts:
        document["hosts"] = hosts
    return document


def fleet_text(twin: Twin) -> str:
    """The fleet file's text, with the warnings as comments so the file explains itself."""
    header = "".join(f"# warning: {line}\n" for line in twin.warnings)
    return "---\n" + header + yaml.safe_dump(twin.fleet, sort_keys=False, width=100)
