# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Service-pack parity of a KM Server move: one verdict per (target, source) pair.

KB Q259906: after KM Server moves to a new server, MSExchangeKMS exits with event 5389 when the KM
database was last run by a later Exchange build than the new server's; the fix is the same version
and SP on both servers, and reapplying the SP after installing KM Server from the CD. So a pair
matches only when the target runs the source's version and SP AND the target's Kmserver.exe is not
older than the build that last ran the KM database AND the target's service pack completed: its
Store.exe, whose file version shows the service pack installed (KB Q278518), is not on an earlier
service pack than its registry's build. That build is read where it shows (_kms):
the source's Kmserver.exe; when the source cannot be read, the Kmserver.exe that kms_backup
recorded there (`backup_manifest`) or the operator's `kms_database_build`; only without any of
them the source's Exchange build, which the verdict calls the weaker evidence
(`database_build_from`). Builds compare as integer tuples (_builds.py), never as strings or floats.

judge_pair(target, source, target_read, source_read, *, allow_newer_target, source_in_inventory,
recorded) takes the registered exchange_facts results and returns a PairVerdict. PAIR_RULES are
tried in order and the first whose predicate returns values decides the status; PAIR_MESSAGES
words its reason and fix from those values. Adding an outcome is adding one row to each and one
predicate.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import typing as t
from dataclasses import asdict, dataclass, field
from functools import cached_property

from ._builds import Build, name_build, on_earlier_service_pack, service_pack_release
from ._facts import store_version_of
from ._kms import (
    DATABASE_BUILD_FROM,
    EVENTS,
    from_the_cd,
    is_hotfix_build,
    kms_hotfix,
    older_than_database,
    q259906_for,
)
from ._rules import Values, first_rule

STATUSES = ("match", "mismatch", "unreachable", "error")
REMEDIES = ("reapply_sp", "install_hotfix")
REMEDIATE = "playbook exchops.kms.remediate_kms_move"


@dataclass(frozen=True)
class PairVerdict:
    target: str
    source: str
    status: str
    target_build: str | None
    source_build: str | None
    kms_binary_build: str | None
    reason: str
    fix: str
    target_release: str | None = None
    source_release: str | None = None
    findings: tuple[str, ...] = field(default=())
    # What fixes a mismatch, for the remediation (REMEDIES): "reapply_sp" (install
    # `remedy_build`, the source's build, on the target), "install_hotfix" (the KM Server hotfix
    # whose Kmserver.exe is `remedy_build`; the remediation refuses it), or None.
    remedy: str | None = None
    remedy_build: str | None = None
    # The build that last ran the KM database, major.minor.build, and which reading gave it
    # (_kms.DATABASE_BUILD_FROM); None for verdicts decided before any facts.
    database_build: str | None = None
    database_build_from: str | None = None

    def to_dict(self) -> dict[str, t.Any]:
        data = asdict(self)
        data["findings"] = list(self.findings)
        return data


def _short(build: str | None) -> str:
    """5.5.2650.0 -> 5.5.2650: the fourth part differs per file within one SP (Q243604)."""
    if not build:
        return "unknown"
    return Build.parse(build).short


def _release_name(release: str | None) -> str:
    # Facts name releases the way Microsoft does ("Exchange Server 5.5 SP3"); messages say
    # "Exchange 5.5 SP3", as admins do.
    return (release or "an unknown release").replace("Exchange Server ", "Exchange ")


def _event_findings(events: t.Iterable[t.Mapping[str, t.Any]]) -> list[str]:
    findings = []
    ids = set()
    for event in events:
        if str(event.get("source", "")).lower() != "msexchangekms":
            continue
        known = EVENTS.get(int(event.get("id", 0)))
        if known:
            meaning = known.meaning
            ids.add(int(event["id"]))
            findings.append(f"event {event['id']} at {event.get('time', '?')}: {meaning}")
    if 5389 in ids and 5015 in ids:
        findings.append(
            "events 5389 and 5015 together point to KB Q274321 (service account rights), not "
            "only to a version mismatch: check the account before reapplying the SP"
        )
    return findings


def _as_history(finding: str) -> str:
    """A 5389 finding on a pair that now matches with KMS running: from before the fix."""
    if not finding.startswith("event 5389 at "):
        return finding
    when = finding.split(": ", 1)[0]
    return (
        f"{when}: MSExchangeKMS exited then (KB Q259906); its Kmserver.exe is no longer older "
        "than the build that last ran the KM database and it runs, so this event is from before "
        "the fix"
    )


# ---------------------------------------------------------------------------------------------
# The build that last ran the KM database, as the operator recorded it for a source that cannot
# be read (the move removes KM Server from the old server, KB Q154531, which is often gone).


@dataclass(frozen=True)
class DatabaseBuild:
    """The build that last ran the KM database, which reading gave it (DATABASE_BUILD_FROM) and
    that reading in words, for the reason."""

    build: Build
    read_from: str
    evidence: str

    def __post_init__(self) -> None:
        if self.read_from not in DATABASE_BUILD_FROM:
            raise ValueError(
                f"{self.read_from!r} is not a reading of the KM database's build; one of "
                f"{', '.join(DATABASE_BUILD_FROM)}"
            )


def recorded_builds(
    backup_manifest: t.Mapping[str, t.Any] | None, database_build: str, source: str | None
) -> tuple[DatabaseBuild, ...]:
    """The recorded builds, strongest first: the Kmserver.exe version in a kms_backup result
    (`kms_binary_build`, taken on the source), then the operator's `kms_database_build`.
    ValueError (a sentence without its period) on a record that names no build."""
    recorded = []
    if backup_manifest:
        binary = backup_manifest.get("kms_binary_build")
        if not isinstance(binary, str) or not binary.strip():
            raise ValueError(
                f"the backup manifest has no kms_binary_build (it holds {binary!r}): give the "
                "registered result of exchops.kms.kms_backup taken on the old KM Server, or set "
                "kms_database_build to the file version of the Kmserver.exe that last ran the KM "
                "database"
            )
        taken_on = backup_manifest.get("host") or source or "the old KM Server"
        recorded.append(
            DatabaseBuild(
                _recorded_build("kms_binary_build of the backup manifest", binary),
                "backup_manifest",
                f"Kmserver.exe {binary.strip()} recorded by kms_backup on {taken_on}",
            )
        )
    if database_build.strip():
        recorded.append(
            DatabaseBuild(
                _recorded_build("kms_database_build", database_build),
                "kms_database_build",
                f"kms_database_build {database_build.strip()}",
            )
        )
    return tuple(recorded)


def _recorded_build(what: str, text: str) -> Build:
    try:
        return Build.parse(text.strip())
    except ValueError as exc:
        raise ValueError(
            f"{what} is {text!r}: {exc}. Give Kmserver.exe's file version, such as 5.5.2650.12"
        ) from None


# ---------------------------------------------------------------------------------------------
# What the rules read: the pair as the inventory names it, each server's registered read, and
# what follows from them, worked out on first use (a rule that never asks parses nothing).


@dataclass(frozen=True)
class Side:
    """One server of the pair and what exchange_facts read on it."""

    name: str
    read: t.Mapping[str, t.Any]

    @property
    def problem(self) -> tuple[str, str] | None:
        """("unreachable" or "error", the read's message) when the read gave no facts."""
        read = self.read
        if read.get("unreachable"):
            return "unreachable", str(read.get("msg") or f"{self.name} could not be reached")
        if read.get("failed") or read.get("skipped") or "ansible_facts" not in read:
            return "error", str(read.get("msg") or f"{self.name}: no Exchange facts were read")
        return None

    @property
    def facts(self) -> t.Mapping[str, t.Any]:
        return self.read["ansible_facts"]["exchange"]

    @property
    def kms(self) -> t.Mapping[str, t.Any]:
        return self.facts.get("kms") or {}

    @property
    def release(self) -> str:
        return _release_name(self.facts.get("release"))

    @cached_property
    def build(self) -> Build:
        return Build.parse(self.facts["build"])

    @cached_property
    def store_version(self) -> Build | None:
        """Store.exe's file version where the facts carry it (only when it disagrees with the
        registry's service pack, _facts.store_version_of); None when unknown or unreadable."""
        text = store_version_of(self.facts)
        try:
            return Build.parse(text) if text else None
        except ValueError:
            return None


@dataclass(frozen=True)
class Pair:
    """One (target, source) pair as the rules see it: names, reads and the gate's settings."""

    target: str
    source: str | None
    target_read: t.Mapping[str, t.Any] | None
    source_read: t.Mapping[str, t.Any] | None
    allow_newer_target: bool
    source_in_inventory: bool
    recorded: tuple[DatabaseBuild, ...] = ()

    @property
    def source_name(self) -> str:
        return self.source or "(no kms_source_host)"

    def side(self, which: str) -> Side:
        """`which` is "target" or "source"; a read that never happened counts as failed."""
        return self.target_side if which == "target" else self.source_side

    @cached_property
    def target_side(self) -> Side:
        return _side(self.target, self.target_read)

    @cached_property
    def source_side(self) -> Side:
        return _side(self.source_name, self.source_read)

    @cached_property
    def binary_build(self) -> Build | None:
        """The target's Kmserver.exe build, None when it could not be read."""
        binary = self.target_side.kms.get("binary_build")
        return Build.parse(binary) if binary else None

    @cached_property
    def source_facts(self) -> bool:
        """The source was read and runs Exchange: its builds can be compared."""
        source = self.source_side
        return source.problem is None and bool(source.facts.get("installed"))

    @cached_property
    def database(self) -> DatabaseBuild | None:
        """The build that last ran the KM database, from the strongest reading there is (_kms)."""
        source = self.source_side
        binary = source.kms.get("binary_build") if self.source_facts else None
        if binary:
            return DatabaseBuild(
                Build.parse(binary), "source_kmserver", f"from {source.name}'s Kmserver.exe"
            )
        if self.recorded:
            return self.recorded[0]
        if self.source_facts:
            return DatabaseBuild(
                source.build,
                "source_server_build",
                f"from {source.name}'s Exchange build, the weaker evidence: its Kmserver.exe "
                "could not be read and neither a backup manifest nor kms_database_build was given",
            )
        return None

    @cached_property
    def binary_behind(self) -> bool:
        """KB Q259906's cause: the target's Kmserver.exe (known) is older than the build that
        last ran the KM database (known)."""
        binary, database = self.binary_build, self.database
        return (
            binary is not None
            and database is not None
            and older_than_database(binary, database.build)
        )

    @cached_property
    def sp_remedy(self) -> Build:
        """The service pack to reapply on the target: the source's build; with the source not
        read, the service pack of the recorded build, or the target's own when that is later."""
        target, database = self.target_side.build, self.database
        if self.source_facts or database is None:
            return self.source_side.build if self.source_facts else target
        release = service_pack_release(
            database.build.family, name_build(database.build).service_pack
        )
        wanted = release.build if release else database.build
        return max(wanted, target) if wanted.family == target.family else wanted

    @cached_property
    def builds_seen(self) -> Values:
        """The builds every rule on facts words its verdict with."""
        database, remedy = self.database, self.sp_remedy
        values: Values = {
            "target_release": self.target_side.release,
            "target_build": self.target_side.build.short,
            "database_build": database.build.short if database else "unknown",
            "database_evidence": database.evidence if database else "not known",
            # KB Q259906 is for 5.5: on another version its 5389 is inferred (_kms.q259906_for).
            "q259906": q259906_for(name_build(self.target_side.build).version),
            "remedy_build": remedy.short,
            "remedy_release": _release_name(name_build(remedy).release),
        }
        if self.source_facts:
            source = self.source_side
            values.update(
                source_release=source.release,
                source_build=source.build.short,
                remedy_release=source.release,
            )
        return values


def _side(name: str, read: t.Mapping[str, t.Any] | None) -> Side:
    return Side(name, read or {"failed": True, "msg": f"{name}: not read"})


# ---------------------------------------------------------------------------------------------
# The rules' predicates: each returns the values its wording needs when its rule decides the
# pair, or None. Rules that judge facts run after the rules that make sure both servers were read
# and run Exchange with KM Server.


def no_source(pair: Pair) -> Values | None:
    return {} if not pair.source else None


def source_not_in_inventory(pair: Pair) -> Values | None:
    return {} if not pair.source_in_inventory else None


def own_source(pair: Pair) -> Values | None:
    return {} if pair.source == pair.target else None


def _read_problem_is(status: str, which: str) -> t.Callable[[Pair], Values | None]:
    def applies(pair: Pair) -> Values | None:
        side = pair.side(which)
        problem = side.problem
        if problem is None or problem[0] != status:
            return None
        return {"host": side.name, "message": problem[1]}

    return applies


def unreachable(which: str) -> t.Callable[[Pair], Values | None]:
    return _read_problem_is("unreachable", which)


def not_read(which: str) -> t.Callable[[Pair], Values | None]:
    return _read_problem_is("error", which)


def without_exchange(which: str) -> t.Callable[[Pair], Values | None]:
    def applies(pair: Pair) -> Values | None:
        side = pair.side(which)
        return None if side.facts.get("installed") else {"host": side.name}

    return applies


def without_kms(which: str) -> t.Callable[[Pair], Values | None]:
    def applies(pair: Pair) -> Values | None:
        side = pair.side(which)
        if side.kms.get("installed"):
            return None
        return {
            "host": side.name,
            "release": side.release,
            "state": side.kms.get("service", {}).get("state", "absent"),
            "source_release": (
                pair.source_side.release
                if pair.source_facts
                else pair.builds_seen["remedy_release"]
            ),
        }

    return applies


def unless_recorded(
    applies: t.Callable[[Pair], Values | None],
) -> t.Callable[[Pair], Values | None]:
    """A rule on the source that a recorded build makes moot: with the build that last ran the
    KM database recorded, a source that cannot be read (or no longer runs KM Server, removed by
    the move, KB Q154531) does not stop the pair from being judged."""

    def applies_unless_recorded(pair: Pair) -> Values | None:
        return None if pair.recorded else applies(pair)

    return applies_unless_recorded


def different_family(pair: Pair) -> Values | None:
    if not pair.source_facts or pair.target_side.build.family == pair.source_side.build.family:
        return None
    return pair.builds_seen


def recorded_other_family(pair: Pair) -> Values | None:
    database = pair.database
    if pair.source_facts or database is None:
        return None
    if database.build.family == pair.target_side.build.family:
        return None
    return {
        **pair.builds_seen,
        "database_product": name_build(database.build).product.replace(
            "Exchange Server ", "Exchange "
        ),
        "database_from": database.read_from,
    }


def sp_behind(pair: Pair) -> Values | None:
    if not pair.source_facts or pair.target_side.build.sp_key >= pair.source_side.build.sp_key:
        return None
    return pair.builds_seen


def binary_unknown(pair: Pair) -> Values | None:
    return pair.builds_seen if pair.binary_build is None else None


def _binary_values(pair: Pair, binary: Build) -> Values:
    return {
        **pair.builds_seen,
        "binary_release": _release_name(name_build(binary).release),
        "binary_build": binary.short,
    }


def hotfix_behind(pair: Pair) -> Values | None:
    """Kmserver.exe older than a KM Server hotfix build that last ran the KM database: only that
    hotfix (or the next service pack) brings it up, so reapplying the source's SP cannot help."""
    binary, database = pair.binary_build, pair.database
    if binary is None or database is None or not pair.binary_behind:
        return None
    if not is_hotfix_build(database.build):
        return None
    hotfix = kms_hotfix(database.build)
    named = name_build(database.build)
    following = service_pack_release(database.build.family, named.service_pack + 1)
    return {
        **_binary_values(pair, binary),
        "remedy_build": database.build.short,
        "hotfix": (
            f"the KM Server hotfix of KB {hotfix.kb} ({hotfix.summary}), whose Kmserver.exe is "
            f"{hotfix.kmserver.short}"
            if hotfix
            else f"the KM Server hotfix whose Kmserver.exe is {database.build.short} (no KB in "
            "this collection's table names that build; ask Microsoft which hotfix installs it)"
        ),
        "database_release": _release_name(named.release),
        "next_sp": _release_name(following.name) if following else "a later service pack",
    }


def store_behind(pair: Pair) -> Values | None:
    """KB Q278518: Store.exe's file version shows the service pack installed. A target whose
    Store.exe is on an earlier service pack than its registry's build is half-patched: the service
    pack did not complete, whatever the registry says. The remedy completes it: the service pack
    the pair needs (as sp_behind's), or the target's own when its registry names a later one."""
    target = pair.target_side
    store = target.store_version
    if store is None or not on_earlier_service_pack(store, target.build):
        return None
    values = {
        **pair.builds_seen,
        "store_build": str(store),
        "store_release": _release_name(name_build(store).release),
    }
    if target.build.sp_key > pair.sp_remedy.sp_key:
        values.update(remedy_build=target.build.short, remedy_release=target.release)
    return values


def binary_behind(pair: Pair) -> Values | None:
    if pair.binary_build is None or not pair.binary_behind:
        return None
    return _binary_values(pair, pair.binary_build)


def _binary_not_behind(pair: Pair) -> Values | None:
    """The target's Kmserver.exe is known and not older than the build that last ran the KM
    database: the values saying so."""
    if pair.binary_build is None or pair.binary_behind:
        return None
    return {**pair.builds_seen, "binary_build": pair.binary_build.short}


def newer_target_allowed(pair: Pair) -> Values | None:
    if not pair.source_facts:
        return None
    newer = pair.target_side.build.sp_key > pair.source_side.build.sp_key
    return _binary_not_behind(pair) if newer and pair.allow_newer_target else None


def newer_target(pair: Pair) -> Values | None:
    if not pair.source_facts:
        return None
    newer = pair.target_side.build.sp_key > pair.source_side.build.sp_key
    return pair.builds_seen if newer and not pair.allow_newer_target else None


def same_service_pack(pair: Pair) -> Values | None:
    if not pair.source_facts:
        return None
    same = pair.target_side.build.sp_key == pair.source_side.build.sp_key
    return _binary_not_behind(pair) if same else None


def recorded_match(pair: Pair) -> Values | None:
    """The source was not read, and the target's Kmserver.exe is not older than the recorded
    build: KB Q259906's cause is absent; the service packs could not be compared."""
    if pair.source_facts:
        return None
    values = _binary_not_behind(pair)
    if values is None:
        return None
    source = pair.source_side
    problem = source.problem
    seen = problem[1] if problem else f"{source.name} shows no Exchange installed"
    return {**values, "source_problem": seen.rstrip(". ")}


# ---------------------------------------------------------------------------------------------
# The rules, in the order they are tried: the first whose predicate returns values decides the
# pair. Adding an outcome is adding one row here, its predicate above and its wording below.


@dataclass(frozen=True)
class PairRule:
    id: str
    status: str  # one of STATUSES
    applies: t.Callable[[Pair], Values | None]
    # What fixes the mismatch (PairVerdict.remedy, one of REMEDIES): "reapply_sp" installs the
    # service pack `remedy_build` on the target; "install_hotfix" needs a KM Server hotfix,
    # which the remediation refuses; None when neither can help.
    remedy: str | None = None
    # False for rules decided before any facts: their verdict carries no builds or findings.
    on_facts: bool = True
    # The pair is fixed and KMS runs: a 5389 still in the log is history, not a cue to reapply.
    settles_5389: bool = False


PAIR_RULES: tuple[PairRule, ...] = (
    # The inventory names a pair, and both servers were read (the source need not be, when the
    # build that last ran the KM database is recorded).
    PairRule("no_source", "error", no_source, on_facts=False),
    PairRule("source_not_in_inventory", "error", source_not_in_inventory, on_facts=False),
    PairRule("own_source", "error", own_source, on_facts=False),
    PairRule("target_unreachable", "unreachable", unreachable("target"), on_facts=False),
    PairRule("target_not_read", "error", not_read("target"), on_facts=False),
    PairRule(
        "source_unreachable", "unreachable", unless_recorded(unreachable("source")), on_facts=False
    ),
    PairRule("source_not_read", "error", unless_recorded(not_read("source")), on_facts=False),
    # Both servers run Exchange with KM Server.
    PairRule("source_without_exchange", "error", unless_recorded(without_exchange("source"))),
    PairRule("source_without_kms", "error", unless_recorded(without_kms("source"))),
    PairRule("target_without_exchange", "error", without_exchange("target")),
    PairRule("target_without_kms", "error", without_kms("target")),
    # Their builds, and the target's Kmserver.exe against the build that last ran the KM
    # database (KB Q259906).
    PairRule("different_family", "mismatch", different_family),
    PairRule("recorded_other_family", "mismatch", recorded_other_family),
    PairRule("sp_behind", "mismatch", sp_behind, remedy="reapply_sp"),
    PairRule("binary_unknown", "error", binary_unknown),
    PairRule("hotfix_behind", "mismatch", hotfix_behind, remedy="install_hotfix"),
    # A service pack that did not complete on the target (KB Q278518): never a match.
    PairRule("store_behind", "mismatch", store_behind, remedy="reapply_sp"),
    PairRule("binary_behind", "mismatch", binary_behind, remedy="reapply_sp"),
    PairRule("newer_target_allowed", "match", newer_target_allowed),
    PairRule("newer_target", "mismatch", newer_target),
    PairRule("match", "match", same_service_pack, settles_5389=True),
    PairRule("recorded_match", "match", recorded_match, settles_5389=True),
)


class Wording(t.NamedTuple):
    """str.format templates over the predicate's values, plus {target} and {source}."""

    reason: str
    fix: str
    finding: str | None = None  # added to the verdict's findings


_UNREACHABLE = Wording(
    "{message}", "Make {host} reachable over WinRM (see the message), then run again."
)
_NOT_READ = Wording("{message}", "Fix what the message says on {host}, then run again.")
_WITHOUT_EXCHANGE = Wording(
    "{host} has no Exchange installed, so there is nothing to compare.",
    "Check that kms_source_host of {target} names the old KM Server, and that {host} is the "
    "right host.",
)
_WITHOUT_KMS = "{host} runs {release} but has no KM Server installed (MSExchangeKMS {state})."
_REAPPLY = "Reapply {remedy_release} on {target} (" + REMEDIATE + ")."
_LAST_RAN = "{database_build}, the build that last ran the KM database ({database_evidence})"

PAIR_MESSAGES: dict[str, Wording] = {
    "no_source": Wording(
        "{target} has no kms_source_host: the gate cannot tell which server it must match.",
        "Set the host variable kms_source_host of {target} to its old KM Server.",
    ),
    "source_not_in_inventory": Wording(
        "{target}'s kms_source_host {source!r} is not a host of this inventory.",
        "Add {source} to the inventory (group kms_sources) with its WinRM settings, or fix "
        "kms_source_host of {target}.",
    ),
    "own_source": Wording(
        "{target} is its own kms_source_host.",
        "Set kms_source_host of {target} to the old KM Server it replaces.",
    ),
    "target_unreachable": _UNREACHABLE,
    "target_not_read": _NOT_READ,
    "source_unreachable": Wording(
        _UNREACHABLE.reason,
        _UNREACHABLE.fix[:-1] + "; or, if {host} is gone, give the build that last ran the KM "
        "database: sp_parity_backup_manifest (the result of exchops.kms.kms_backup taken on "
        "{host}) or kms_database_build.",
    ),
    "source_not_read": _NOT_READ,
    "source_without_exchange": _WITHOUT_EXCHANGE,
    "source_without_kms": Wording(
        _WITHOUT_KMS,
        "Check that kms_source_host of {target} names the server KM Server moved from; if KM "
        "Server was removed from it, give the build that last ran the KM database "
        "(sp_parity_backup_manifest or kms_database_build).",
    ),
    "target_without_exchange": _WITHOUT_EXCHANGE,
    "target_without_kms": Wording(
        _WITHOUT_KMS,
        "Install KM Server on {target} from the Exchange CD, then reapply {source_release} "
        "(KB Q192044).",
    ),
    "different_family": Wording(
        "{target} runs {target_release} ({target_build}) but {source} runs {source_release} "
        "({source_build}): they are different Exchange versions, and a KM database moves only "
        "between servers of the same version and service pack (KB Q259906, Q155216).",
        "Move KM Server to a server that runs {source_release} (KB Q154531).",
    ),
    "recorded_other_family": Wording(
        "{target} runs {target_release} ({target_build}) but the KM database was last run by "
        + _LAST_RAN
        + ", another Exchange version: a KM database moves only between servers of the same "
        "version and service pack (KB Q259906, Q155216).",
        "Move KM Server to a server that runs {database_product} (KB Q154531), or correct "
        "{database_from} if it names the wrong build.",
    ),
    "sp_behind": Wording(
        "{target} runs {target_release} ({target_build}) but {source} runs {source_release} "
        "({source_build}) and last ran the KM database on {database_build}: KMS will exit with "
        "event 5389 ({q259906}).",
        _REAPPLY,
    ),
    "binary_unknown": Wording(
        "{target} runs {target_release} but the version of its Kmserver.exe could not be read, "
        "so it cannot be checked against " + _LAST_RAN + ".",
        "Check Kmserver.exe's version on {target} by hand (file properties); if it is older than "
        "{database_build}, reapply {remedy_release} on {target} (" + REMEDIATE + ").",
    ),
    "hotfix_behind": Wording(
        "{target}'s KM Server binaries (Kmserver.exe) are {binary_release} ({binary_build}), "
        "older than " + _LAST_RAN + ", a KM Server hotfix build ({database_release}): KMS is "
        "expected to exit with event 5389. {q259906} speaks of service packs; that a hotfix "
        "build does the same is inferred.",
        "On {target}, install {hotfix}, as on the server that last ran the KM database; "
        "the remediation reapplies service packs only and refuses this pair. Or apply "
        "{next_sp}, which first carried the hotfix's fix, on both servers.",
    ),
    "store_behind": Wording(
        "{target}'s Store.exe is {store_build} ({store_release}) while its registry says "
        "{target_release} ({target_build}): the service pack did not complete on {target} (KB "
        "Q278518: Store.exe's file version shows the service pack installed), and MSExchangeKMS "
        "must not be started on a half-installed service pack.",
        "Reapply {remedy_release} on {target} (" + REMEDIATE + "); it starts MSExchangeKMS only "
        "once Store.exe and the registry both show the service pack.",
    ),
    "binary_behind": Wording(
        "{target} runs {target_release} ({target_build}) but its KM Server binaries "
        "(Kmserver.exe) are {binary_release} ({binary_build}), older than " + _LAST_RAN + ": "
        "KMS will exit with event 5389 ({q259906}).",
        _REAPPLY,
    ),
    "newer_target_allowed": Wording(
        "{target} runs {target_release} ({target_build}), later than {source}'s {source_release} "
        "({source_build}), which is allowed; its Kmserver.exe ({binary_build}) is not older "
        "than " + _LAST_RAN + ".",
        "Nothing to do.",
        finding="{target} runs a later build ({target_build}) than {source} ({source_build}); "
        "allowed by sp_parity_allow_newer_target",
    ),
    "newer_target": Wording(
        "{target} runs {target_release} ({target_build}), later than {source}'s {source_release} "
        "({source_build}). KB Q259906 asks for the same version and service pack on both servers.",
        "Apply {target_release} on {source} too, or set sp_parity_allow_newer_target: true if a "
        "later service pack on the new server is intended.",
    ),
    "match": Wording(
        "{target} and {source} both run {target_release} ({target_build}), and {target}'s "
        "Kmserver.exe ({binary_build}) is not older than " + _LAST_RAN + ".",
        "Nothing to do.",
    ),
    "recorded_match": Wording(
        "{target} runs {target_release} ({target_build}) and its Kmserver.exe ({binary_build}) "
        "is not older than " + _LAST_RAN + ". {source} was not read ({source_problem}), so "
        "the two servers' service packs were not compared.",
        "Nothing to do for KB Q259906. Compare {target}'s service pack with the old server's "
        "records by hand if the old server still exists.",
    ),
}


def decide_pair(pair: Pair) -> tuple[PairRule, Values]:
    """The first rule that applies to the pair, with the values its wording needs."""
    return first_rule(PAIR_RULES, pair, f"PAIR_RULES for {pair.target}")


def judge_pair(
    target: str,
    source: str | None,
    target_read: t.Mapping[str, t.Any] | None,
    source_read: t.Mapping[str, t.Any] | None,
    *,
    allow_newer_target: bool,
    source_in_inventory: bool,
    recorded: tuple[DatabaseBuild, ...] = (),
) -> PairVerdict:
    """Compare what exchange_facts read on a target and on its source (the registered results,
    unreachable and failed ones included) and say whether the KM Server move is safe.
    `recorded`: the build that last ran the KM database as recorded (`recorded_builds`)."""
    pair = Pair(
        target,
        source,
        target_read,
        source_read,
        allow_newer_target,
        source_in_inventory,
        recorded,
    )
    return _verdict(pair, *decide_pair(pair))


def _verdict(pair: Pair, rule: PairRule, values: Values) -> PairVerdict:
    """The rule's outcome in words, with the builds and findings of the facts it judged."""
    wording = PAIR_MESSAGES[rule.id]
    values = {"target": pair.target, "source": pair.source_name, **values}
    reason, fix = wording.reason.format(**values), wording.fix.format(**values)
    if not rule.on_facts:
        return PairVerdict(
            pair.target,
            pair.source_name,
            rule.status,
            target_build=None,
            source_build=None,
            kms_binary_build=None,
            reason=reason,
            fix=fix,
        )
    target, source = pair.target_side, pair.source_side
    findings = _findings(pair)
    if wording.finding:
        findings.append(wording.finding.format(**values))
    if rule.settles_5389 and (target.kms.get("service") or {}).get("state") == "running":
        findings = [_as_history(finding) for finding in findings]
    source_facts = source.facts if pair.source_facts else {}
    database = pair.database
    return PairVerdict(
        pair.target,
        pair.source_name,
        rule.status,
        target_build=target.facts.get("build"),
        source_build=source_facts.get("build"),
        kms_binary_build=target.kms.get("binary_build"),
        reason=reason,
        fix=fix,
        target_release=target.facts.get("release"),
        source_release=source_facts.get("release"),
        findings=tuple(findings),
        remedy=rule.remedy,
        remedy_build=values.get("remedy_build") if rule.remedy else None,
        database_build=database.build.short if database else None,
        database_build_from=database.read_from if database else None,
    )


def _findings(pair: Pair) -> list[str]:
    """What the target's KMS events, its Kmserver.exe, the records and each server's
    disagreeing readings say."""
    findings = _event_findings(pair.target_side.kms.get("events") or [])
    findings += _binary_findings(pair) + _record_findings(pair)
    sides = (pair.target_side, pair.source_side) if pair.source_facts else (pair.target_side,)
    for side in sides:
        for inconsistency in side.facts.get("inconsistent") or []:
            findings.append(
                f"{side.name}: {inconsistency.get('what')} readings disagree: "
                f"{inconsistency.get('readings')}"
            )
    return findings


def refuse_listed_twice(
    judged: t.Mapping[str, t.Any], listed_twice: t.Mapping[str, str]
) -> dict[str, t.Any]:
    """A judged pair that the inventory lists twice (kms_pairs_listed_twice's reason and fix):
    whatever the builds say, not a pair to act on."""
    return {
        **judged,
        "status": "error",
        "remedy": None,
        "remedy_build": None,
        "reason": listed_twice["reason"],
        "fix": listed_twice["fix"],
    }


def _binary_findings(pair: Pair) -> list[str]:
    """A target Kmserver.exe that is not older than the KM database's build but not on the
    server's service pack either: the Exchange CD's build (KB Q259906 MORE INFORMATION, Q192044
    ask to reapply the SP), or an earlier SP's, which no source shows to be wrong."""
    if not pair.target_side.facts.get("installed"):
        return []
    binary, server = pair.binary_build, pair.target_side.build
    if binary is None or pair.binary_behind or binary.family != server.family:
        return []
    named = name_build(binary)
    shown = f"{_release_name(named.release)}, {binary}"
    if from_the_cd(binary, server):
        return [
            f"{pair.target}'s Kmserver.exe is the Exchange CD's build ({shown}) on "
            f"{pair.target_side.release}: KB Q259906 and Q192044 ask to reapply the service pack "
            "after installing KM Server from the CD"
        ]
    if named.service_pack < name_build(server).service_pack:
        return [
            f"{pair.target}'s Kmserver.exe carries an earlier service pack's build ({shown}) "
            f"than Exchange ({pair.target_side.release}, {server.short}); no source lists the "
            "Kmserver.exe of each service pack (5.5 SP4 was a collection of fixes, "
            "https://www.itprotoday.com/microsoft-exchange/pros-and-cons-sp4), and it is not "
            "older than the build that last ran the KM database, so it is no mismatch"
        ]
    return []


def _record_findings(pair: Pair) -> list[str]:
    """A source judged from a record, and records that disagree with what decided."""
    database = pair.database
    if database is None or not pair.recorded:
        return []
    findings = []
    source = pair.source_side
    if not pair.source_facts:
        problem = source.problem
        seen = problem[1] if problem else "no Exchange installed"
        findings.append(
            f"{source.name} was not read ({seen.rstrip('. ')}); the build that last ran the KM "
            f"database is {database.build.short}, {database.evidence}"
        )
    for record in pair.recorded:
        if record.build.sp_key != database.build.sp_key:
            findings.append(
                f"{record.evidence} differs from {database.build.short}, which decided "
                f"({database.evidence})"
            )
    return findings
