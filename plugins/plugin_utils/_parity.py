# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Service-pack parity of a KM Server move: one verdict per (target, source) pair.

KB Q259906: after KM Server moves to a new server, MSExchangeKMS exits with event 5389 when the KM
database was last run by a later Exchange build than the new server's; the fix is the same version
and SP on both servers, and reapplying the SP after installing KM Server from the CD. So a pair
matches only when the target runs the source's version and SP AND the target's Kmserver.exe is on
that SP too. Builds compare as integer tuples (_builds.py), never as strings or floats.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import typing as t
from dataclasses import asdict, dataclass, field

from ._builds import Build, name_build
from ._kms import EVENTS

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


def _read_problem(name: str, read: t.Mapping[str, t.Any]) -> tuple[str, str] | None:
    if read.get("unreachable"):
        return "unreachable", str(read.get("msg") or f"{name} could not be reached")
    if read.get("failed") or read.get("skipped") or "ansible_facts" not in read:
        return "error", str(read.get("msg") or f"{name}: no Exchange facts were read")
    return None


def judge_pair(
    target: str,
    source: str | None,
    target_read: t.Mapping[str, t.Any] | None,
    source_read: t.Mapping[str, t.Any] | None,
    allow_newer_target: bool = False,
    source_in_inventory: bool = True,
) -> PairVerdict:
    """Compare what exchange_facts read on a target and on its source (the registered results,
    unreachable and failed ones included) and say whether the KM Server move is safe."""
    source_name = source or "(no kms_source_host)"

    def verdict(status: str, reason: str, fix: str, **extra: t.Any) -> PairVerdict:
        return PairVerdict(target, source_name, status, reason=reason, fix=fix, **extra)

    if not source:
        return verdict(
            "error",
            f"{target} has no kms_source_host: the gate cannot tell which server it must match.",
            f"Set the host variable kms_source_host of {target} to its old KM Server.",
            target_build=None,
            source_build=None,
            kms_binary_build=None,
        )
    if not source_in_inventory:
        return verdict(
            "error",
            f"{target}'s kms_source_host {source!r} is not a host of this inventory.",
            f"Add {source} to the inventory (group kms_sources) with its WinRM settings, or fix "
            f"kms_source_host of {target}.",
            target_build=None,
            source_build=None,
            kms_binary_build=None,
        )
    if source == target:
        return verdict(
            "error",
            f"{target} is its own kms_source_host.",
            f"Set kms_source_host of {target} to the old KM Server it replaces.",
            target_build=None,
            source_build=None,
            kms_binary_build=None,
        )
    for name, read in ((target, target_read), (source, source_read)):
        problem = _read_problem(name, read or {"failed": True, "msg": f"{name}: not read"})
        if problem:
            status, message = problem
            fix = (
                f"Make {name} reachable over WinRM (see the message), then run again."
                if status == "unreachable"
                else f"Fix what the message says on {name}, then run again."
            )
            return verdict(
                status, message, fix, target_build=None, source_build=None, kms_binary_build=None
            )

    # Both reads passed _read_problem above, so both hold facts.
    target_facts = (target_read or {})["ansible_facts"]["exchange"]
    source_facts = (source_read or {})["ansible_facts"]["exchange"]
    target_kms = target_facts.get("kms") or {}
    source_kms = source_facts.get("kms") or {}
    builds = {
        "target_build": target_facts.get("build"),
        "source_build": source_facts.get("build"),
        "kms_binary_build": target_kms.get("binary_build"),
        "target_release": target_facts.get("release"),
        "source_release": source_facts.get("release"),
    }
    findings = _event_findings(target_kms.get("events") or [])
    for side, facts in ((target, target_facts), (source, source_facts)):
        for inconsistency in facts.get("inconsistent") or []:
            findings.append(
                f"{side}: {inconsistency.get('what')} readings disagree: {inconsistency.get('readings')}"
            )

    def judged(status: str, reason: str, fix: str, remedy: str | None = None) -> PairVerdict:
        remedy_build = Build.parse(source_facts["build"]).short if remedy else None
        return verdict(
            status,
            reason,
            fix,
            findings=tuple(findings),
            remedy=remedy,
            remedy_build=remedy_build,
            **builds,
        )

    for name, facts, kms in (
        (source, source_facts, source_kms),
        (target, target_facts, target_kms),
    ):
        if not facts.get("installed"):
            return judged(
                "error",
                f"{name} has no Exchange installed, so there is nothing to compare.",
                f"Check that kms_source_host of {target} names the old KM Server, and that "
                f"{name} is the right host.",
            )
        if not kms.get("installed"):
            return judged(
                "error",
                f"{name} runs {_release_name(facts.get('release'))} but has no KM Server installed "
                f"(MSExchangeKMS {kms.get('service', {}).get('state', 'absent')}).",
                (
                    f"Install KM Server on {name} from the Exchange CD, then reapply "
                    f"{_release_name(source_facts.get('release'))} (KB Q192044)."
                    if name == target
                    else f"Check that kms_source_host of {target} names the server KM Server moved from."
                ),
            )

    target_build = Build.parse(target_facts["build"])
    source_build = Build.parse(source_facts["build"])
    target_release = _release_name(target_facts.get("release"))
    source_release = _release_name(source_facts.get("release"))
    # The build that last ran the KM database: the source's running Kmserver.exe when known.
    database_build = _short(source_kms.get("binary_build") or source_facts["build"])
    reapply = f"Reapply {source_release} on {target} ({REMEDIATE})."

    if target_build.family != source_build.family:
        return judged(
            "mismatch",
            f"{target} runs {target_release} ({target_build.short}) but {source} runs "
            f"{source_release} ({source_build.short}): they are different Exchange versions, and "
            "a KM database moves only between servers of the same version and service pack "
            "(KB Q259906, Q155216).",
            f"Move KM Server to a server that runs {source_release} (KB Q154531).",
        )
    if target_build.sp_key < source_build.sp_key:
        return judged(
            "mismatch",
            f"{target} runs {target_release} ({target_build.short}) but {source} runs "
            f"{source_release} ({source_build.short}) and last ran the KM database on "
            f"{database_build}: KMS will exit with event 5389 (KB Q259906).",
            reapply,
            remedy="reapply_sp",
        )
    binary = target_kms.get("binary_build")
    if not binary:
        return judged(
            "error",
            f"{target} runs {target_release} but the version of its Kmserver.exe could not be "
            "read, so the KM binaries cannot be checked against the service pack.",
            f"Check Kmserver.exe's version on {target} by hand (file properties); if it is older "
            f"than {target_build.short}, {reapply[0].lower()}{reapply[1:]}",
        )
    binary_build = Build.parse(binary)
    binary_name = name_build(binary_build)
    binary_behind = binary_build.family != target_build.family or (
        binary_name.service_pack < name_build(target_build).service_pack
    )
    if target_kms.get("matches_server") is False or binary_behind:
        return judged(
            "mismatch",
            f"{target} runs {target_release} ({target_build.short}) but its KM Server binaries "
            f"are {_release_name(binary_name.release)} ({binary_build.short}) while {source} last "
            f"ran the KM database on {database_build}: KMS will exit with event 5389 "
            "(KB Q259906).",
            reapply,
            remedy="reapply_sp",
        )
    if target_build.sp_key > source_build.sp_key:
        if allow_newer_target:
            findings.append(
                f"{target} runs a later build ({target_build.short}) than {source} "
                f"({source_build.short}); allowed by sp_parity_allow_newer_target"
            )
            return judged(
                "match",
                f"{target} runs {target_release} ({target_build.short}), later than {source}'s "
                f"{source_release} ({source_build.short}), which is allowed; its KM binaries "
                f"({binary_build.short}) match its service pack.",
                "Nothing to do.",
            )
        return judged(
            "mismatch",
            f"{target} runs {target_release} ({target_build.short}), later than {source}'s "
            f"{source_release} ({source_build.short}). KB Q259906 asks for the same version and "
            "service pack on both servers.",
            f"Apply {target_release} on {source} too, or set sp_parity_allow_newer_target: true "
            "if a later service pack on the new server is intended.",
        )
    if (target_kms.get("service") or {}).get("state") == "running":
        # After the fix the old 5389s are still in the log: say they are history, not a cue to
        # reapply the service pack again.
        findings[:] = [_as_history(finding) for finding in findings]
    return judged(
        "match",
        f"{target} and {source} both run {target_release} ({target_build.short}), and {target}'s "
        f"KM Server binaries ({binary_build.short}) are on that service pack.",
        "Nothing to do.",
    )


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
