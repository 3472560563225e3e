# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Service-pack parity of a KM Server move: one verdict per (target, source) pair.

KB Q259906: after KM Server moves to a new server, MSExchangeKMS exits with event 5389 when the KM
database was last run by a later Exchange build than the new server's; the fix is the same version
and SP on both servers, and reapplying the SP after installing KM Server from the CD. So a pair
matches only when the target runs the source's version and SP AND the target's Kmserver.exe is on
that SP too. Builds compare as integer tuples (_builds.py), never as strings or floats.

judge_pair(target, source, target_read, source_read, *, allow_newer_target, source_in_inventory)
takes the registered exchange_facts results and returns a PairVerdict. PAIR_RULES are tried in
order and the first whose predicate returns values decides the status; PAIR_MESSAGES words its
reason and fix from those values. Adding an outcome is adding one row to each and one predicate.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import typing as t
from dataclasses import asdict, dataclass, field
from functools import cached_property

from ._builds import Build, name_build
from ._kms import EVENTS, q259906_for

STATUSES = ("match", "mismatch", "unreachable", "error")
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
    # What fixes a mismatch, for the remediation: "reapply_sp" (install `remedy_build`, the
    # source's build, on the target) or None when reapplying a service pack cannot help.
    remedy: str | None = None
    remedy_build: str | None = None

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
        f"{when}: MSExchangeKMS exited then (KB Q259906); its KM binaries now match the service "
        "pack and it runs, so this event is from before the fix"
    )


# ---------------------------------------------------------------------------------------------
# What the rules read: the pair as the inventory names it, each server's registered read, and
# what follows from them, worked out on first use (a rule that never asks parses nothing).

Values = dict[str, t.Any]


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


@dataclass(frozen=True)
class Pair:
    """One (target, source) pair as the rules see it: names, reads and the gate's settings."""

    target: str
    source: str | None
    target_read: t.Mapping[str, t.Any] | None
    source_read: t.Mapping[str, t.Any] | None
    allow_newer_target: bool
    source_in_inventory: bool

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
    def binary_behind(self) -> bool:
        """The target's KM binaries are not on the target's own service pack (a known binary)."""
        binary, target_build = self.binary_build, self.target_side.build
        if binary is None:
            return False
        return (
            self.target_side.kms.get("matches_server") is False
            or binary.family != target_build.family
            or name_build(binary).service_pack < name_build(target_build).service_pack
        )

    @cached_property
    def builds_seen(self) -> Values:
        """The builds every rule on facts words its verdict with."""
        source = self.source_side
        return {
            "target_release": self.target_side.release,
            "target_build": self.target_side.build.short,
            "source_release": source.release,
            "source_build": source.build.short,
            # The build that last ran the KM database: the source's running Kmserver.exe when known.
            "database_build": _short(source.kms.get("binary_build") or source.facts["build"]),
            # KB Q259906 is for 5.5: on another version its 5389 is inferred (_kms.q259906_for).
            "q259906": q259906_for(name_build(self.target_side.build).version),
        }


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
            "source_release": pair.source_side.release,
        }

    return applies


def different_family(pair: Pair) -> Values | None:
    if pair.target_side.build.family == pair.source_side.build.family:
        return None
    return pair.builds_seen


def sp_behind(pair: Pair) -> Values | None:
    if pair.target_side.build.sp_key >= pair.source_side.build.sp_key:
        return None
    return pair.builds_seen


def binary_unknown(pair: Pair) -> Values | None:
    return pair.builds_seen if pair.binary_build is None else None


def binary_behind(pair: Pair) -> Values | None:
    if pair.binary_build is None or not pair.binary_behind:
        return None
    return {
        **pair.builds_seen,
        "binary_release": _release_name(name_build(pair.binary_build).release),
        "binary_build": pair.binary_build.short,
    }


def _binary_on_sp(pair: Pair) -> Values | None:
    """The target's KM binaries are known and on its service pack: the values saying so."""
    if pair.binary_build is None or pair.binary_behind:
        return None
    return {**pair.builds_seen, "binary_build": pair.binary_build.short}


def newer_target_allowed(pair: Pair) -> Values | None:
    newer = pair.target_side.build.sp_key > pair.source_side.build.sp_key
    return _binary_on_sp(pair) if newer and pair.allow_newer_target else None


def newer_target(pair: Pair) -> Values | None:
    newer = pair.target_side.build.sp_key > pair.source_side.build.sp_key
    return pair.builds_seen if newer and not pair.allow_newer_target else None


def same_service_pack(pair: Pair) -> Values | None:
    same = pair.target_side.build.sp_key == pair.source_side.build.sp_key
    return _binary_on_sp(pair) if same else None


# ---------------------------------------------------------------------------------------------
# The rules, in the order they are tried: the first whose predicate returns values decides the
# pair. Adding an outcome is adding one row here, its predicate above and its wording below.


@dataclass(frozen=True)
class PairRule:
    id: str
    status: str  # one of STATUSES
    applies: t.Callable[[Pair], Values | None]
    # What fixes the mismatch (PairVerdict.remedy): "reapply_sp" installs the source's build on
    # the target; None when reapplying a service pack cannot help.
    remedy: str | None = None
    # False for rules decided before any facts: their verdict carries no builds or findings.
    on_facts: bool = True
    # The pair is fixed and KMS runs: a 5389 still in the log is history, not a cue to reapply.
    settles_5389: bool = False


PAIR_RULES: tuple[PairRule, ...] = (
    # The inventory names a pair, and both servers were read.
    PairRule("no_source", "error", no_source, on_facts=False),
    PairRule("source_not_in_inventory", "error", source_not_in_inventory, on_facts=False),
    PairRule("own_source", "error", own_source, on_facts=False),
    PairRule("target_unreachable", "unreachable", unreachable("target"), on_facts=False),
    PairRule("target_not_read", "error", not_read("target"), on_facts=False),
    PairRule("source_unreachable", "unreachable", unreachable("source"), on_facts=False),
    PairRule("source_not_read", "error", not_read("source"), on_facts=False),
    # Both servers run Exchange with KM Server.
    PairRule("source_without_exchange", "error", without_exchange("source")),
    PairRule("source_without_kms", "error", without_kms("source")),
    PairRule("target_without_exchange", "error", without_exchange("target")),
    PairRule("target_without_kms", "error", without_kms("target")),
    # Their builds, and the target's KM binaries (KB Q259906).
    PairRule("different_family", "mismatch", different_family),
    PairRule("sp_behind", "mismatch", sp_behind, remedy="reapply_sp"),
    PairRule("binary_unknown", "error", binary_unknown),
    PairRule("binary_behind", "mismatch", binary_behind, remedy="reapply_sp"),
    PairRule("newer_target_allowed", "match", newer_target_allowed),
    PairRule("newer_target", "mismatch", newer_target),
    PairRule("match", "match", same_service_pack, settles_5389=True),
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
_REAPPLY = "Reapply {source_release} on {target} (" + REMEDIATE + ")."

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
    "source_unreachable": _UNREACHABLE,
    "source_not_read": _NOT_READ,
    "source_without_exchange": _WITHOUT_EXCHANGE,
    "source_without_kms": Wording(
        _WITHOUT_KMS,
        "Check that kms_source_host of {target} names the server KM Server moved from.",
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
    "sp_behind": Wording(
        "{target} runs {target_release} ({target_build}) but {source} runs {source_release} "
        "({source_build}) and last ran the KM database on {database_build}: KMS will exit with "
        "event 5389 ({q259906}).",
        _REAPPLY,
    ),
    "binary_unknown": Wording(
        "{target} runs {target_release} but the version of its Kmserver.exe could not be read, "
        "so the KM binaries cannot be checked against the service pack.",
        "Check Kmserver.exe's version on {target} by hand (file properties); if it is older than "
        "{target_build}, reapply {source_release} on {target} (" + REMEDIATE + ").",
    ),
    "binary_behind": Wording(
        "{target} runs {target_release} ({target_build}) but its KM Server binaries are "
        "{binary_release} ({binary_build}) while {source} last ran the KM database on "
        "{database_build}: KMS will exit with event 5389 ({q259906}).",
        _REAPPLY,
    ),
    "newer_target_allowed": Wording(
        "{target} runs {target_release} ({target_build}), later than {source}'s {source_release} "
        "({source_build}), which is allowed; its KM binaries ({binary_build}) match its service "
        "pack.",
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
        "{target} and {source} both run {target_release} ({target_build}), and {target}'s KM "
        "Server binaries ({binary_build}) are on that service pack.",
        "Nothing to do.",
    ),
}


def decide_pair(pair: Pair) -> tuple[PairRule, Values]:
    """The first rule that applies to the pair, with the values its wording needs."""
    for rule in PAIR_RULES:
        values = rule.applies(pair)
        if values is not None:
            return rule, values
    raise AssertionError(f"{pair.target}: no rule of PAIR_RULES applies; every pair must meet one")


def judge_pair(
    target: str,
    source: str | None,
    target_read: t.Mapping[str, t.Any] | None,
    source_read: t.Mapping[str, t.Any] | None,
    *,
    allow_newer_target: bool,
    source_in_inventory: bool,
) -> PairVerdict:
    """Compare what exchange_facts read on a target and on its source (the registered results,
    unreachable and failed ones included) and say whether the KM Server move is safe."""
    pair = Pair(target, source, target_read, source_read, allow_newer_target, source_in_inventory)
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
    return PairVerdict(
        pair.target,
        pair.source_name,
        rule.status,
        target_build=target.facts.get("build"),
        source_build=source.facts.get("build"),
        kms_binary_build=target.kms.get("binary_build"),
        reason=reason,
        fix=fix,
        target_release=target.facts.get("release"),
        source_release=source.facts.get("release"),
        findings=tuple(findings),
        remedy=rule.remedy,
        remedy_build=source.build.short if rule.remedy else None,
    )


def _findings(pair: Pair) -> list[str]:
    """What the target's KMS events and each server's disagreeing readings say."""
    findings = _event_findings(pair.target_side.kms.get("events") or [])
    for side in (pair.target_side, pair.source_side):
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
