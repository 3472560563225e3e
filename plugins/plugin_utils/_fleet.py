# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet-wide build parity: are all Exchange servers of a group (a site, an organisation, a DAG)
on the same build? The check_exchange_parity report (report.json, report.md, junit.xml).

The whole group is judged once, on the controller, from each host's exchange_facts reading, so
a run costs one task per host whatever the group's size. Builds are compared as integer tuples
(_builds.py); servers of different products are never compared, only named.

judge_group(group, hosts, results, policy, generated, left_out) takes each host's registered
exchange_facts result and returns the report. HOST_RULES are tried in order under the group's
policy and the first whose predicate returns values decides a host's row; HOST_MESSAGES words its
reason and fix from those values. Adding an outcome is adding one row to each and one predicate.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import typing as t
from collections import Counter
from dataclasses import dataclass
from functools import cached_property

from ._builds import RELEASES, Build, BuildName, name_build, on_earlier_service_pack
from ._facts import store_version_of
from ._report import JunitCase, junit_xml, markdown_cell
from ._rules import Values, first_rule

POLICIES = ("exact", "equal_to_max", "max_behind")
STATUSES = ("ok", "outlier", "unreachable", "error")
_POLICY_WORDS = {
    "exact": "every host on the same build",
    "equal_to_max": "every host on the newest build in the group",
    "max_behind": "no host more than N releases behind the newest build",
}
_ICONS = {
    "ok": "✅ ok",
    "outlier": "❌ outlier",
    "unreachable": "⚠️ unreachable",
    "error": "❌ error",
}
# Exchange 2003 and earlier record the SP in the build's third part; the fourth differs from file
# to file within one SP (KB Q243604), so it must not split servers of one SP.
_LEGACY_MAJOR_LIMIT = 8
# Exchange SE installs in place over 2019 CU14 or CU15 (Microsoft's SE upgrade guidance).
_SE_PRODUCT = "Exchange Server Subscription Edition"
_SE_UPGRADES_FROM = "Exchange Server 2019"


class PolicyError(ValueError):
    """The policy settings cannot be used; the message says what was wrong and what to do."""


@dataclass(frozen=True)
class Policy:
    name: str  # one of POLICIES
    max_behind: int | None = None

    def describe(self) -> str:
        if self.name == "max_behind":
            return f"max_behind {self.max_behind} (no host more than {self.max_behind} releases behind the newest build)"
        return f"{self.name} ({_POLICY_WORDS[self.name]})"


_FIX_POLICY = (
    "Set exchange_parity_policy to exact (the default: every host on the same build), "
    "equal_to_max (every host on the newest build in the group) or max_behind with "
    "exchange_parity_max_behind: N (no host more than N releases behind the newest build)."
)


def _count(value: t.Any, where: str) -> int:
    if isinstance(value, bool):
        raise PolicyError(f"{where} is {value!r}, not a number of releases")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit() and value.isascii():
        number = int(value.strip())  # -e gives strings
    else:
        raise PolicyError(f"{where} is {value!r}, not a whole number of releases")
    if number < 0:
        raise PolicyError(f"{where} is {number}; it must be 0 or more")
    return number


def parse_policy(policy: t.Any, max_behind: t.Any = None, group: str = "the group") -> Policy:
    """The policy from exchange_parity_policy (a name, or a mapping {max_behind: N}) and
    exchange_parity_max_behind, or PolicyError naming the group, the value and the fix."""
    try:
        if isinstance(policy, t.Mapping):
            if set(policy) != {"max_behind"}:
                raise PolicyError(
                    f"exchange_parity_policy is the mapping {dict(policy)!r}; the only mapping "
                    "form is {max_behind: N}"
                )
            if max_behind is not None:
                raise PolicyError(
                    "exchange_parity_policy {max_behind: N} and exchange_parity_max_behind are "
                    "both set; set one of them"
                )
            return Policy(
                "max_behind", _count(policy["max_behind"], "exchange_parity_policy.max_behind")
            )
        if not isinstance(policy, str) or policy.strip() not in POLICIES:
            raise PolicyError(f"exchange_parity_policy is {policy!r}, which is not a policy")
        name = policy.strip()
        if name == "max_behind":
            if max_behind is None or max_behind == "":
                raise PolicyError(
                    "exchange_parity_policy is max_behind but exchange_parity_max_behind is not "
                    "set, so the number of releases allowed is unknown"
                )
            return Policy(name, _count(max_behind, "exchange_parity_max_behind"))
        if max_behind is not None and max_behind != "":
            raise PolicyError(
                f"exchange_parity_max_behind is {max_behind!r} but exchange_parity_policy is "
                f"{name}, which ignores it"
            )
        return Policy(name)
    except PolicyError as exc:
        raise PolicyError(f"{group}: {exc}. {_FIX_POLICY} Nothing was read or changed.") from None


def parity_key(build: Build) -> tuple[int, int, int, int]:
    """What makes two servers' builds the same: major.minor.build up to Exchange 2003 (the fourth
    part differs per file within one SP), the full build from 2007 on (security updates change
    only the fourth part: 15.2.1748.10 and .43 are CU15 and CU15 Feb26SU)."""
    if build.major < _LEGACY_MAJOR_LIMIT:
        return (build.major, build.minor, build.build, 0)
    return (build.major, build.minor, build.build, build.revision)


def releases_behind(build: Build, newest: Build) -> int:
    """How many releases of the build table lie after `build` up to `newest` (same product),
    counting `newest` itself when the table does not list it. 0 when on or past it."""
    product = name_build(newest).product
    mine, top = parity_key(build), parity_key(newest)
    if mine >= top:
        return 0
    steps = {
        parity_key(release.build)
        for release in RELEASES
        if release.product == product and mine < parity_key(release.build) <= top
    }
    steps.add(top)
    return len(steps)


@dataclass(frozen=True)
class Reading:
    """What one host's exchange_facts task gave: a build, or why there is none."""

    host: str
    status: str  # "read", "unreachable" or "error"
    build: Build | None = None
    name: BuildName | None = None
    kms_binary_build: str | None = None
    kms_binary_release: str | None = None
    problem: str = ""
    finished: bool = True
    # Store.exe's file version where the facts carry it (_facts.store_version_of: only when it
    # is on another service pack than the registry's build); None otherwise.
    store_version: Build | None = None


def read_result(host: str, result: t.Mapping[str, t.Any] | None) -> Reading:
    """A host's registered exchange_facts result as a Reading; never raises for its content."""
    if not isinstance(result, t.Mapping) or not result:
        return Reading(
            host,
            "error",
            problem=f"{host}: the read did not finish (the run was cut short or the host failed "
            "before it was read); see the Ansible output for this host.",
            finished=False,
        )
    message = str(result.get("msg") or "").strip()
    if result.get("unreachable"):
        return Reading(
            host, "unreachable", problem=message or f"{host}: the host could not be reached."
        )
    if result.get("skipped"):
        return Reading(
            host, "error", problem=f"{host}: its read was skipped, so it was not judged."
        )
    facts = (result.get("ansible_facts") or {}).get("exchange")
    if result.get("failed") or not isinstance(facts, t.Mapping):
        return Reading(
            host,
            "error",
            problem=message or f"{host}: exchange_facts returned no Exchange facts for this host.",
        )
    if not facts.get("installed"):
        return Reading(
            host,
            "error",
            problem=f"{host}: no Exchange server is installed (neither Exchange Setup key is in the "
            "registry), so its build cannot be judged",
        )
    try:
        build = Build.parse(str(facts.get("build")))
    except ValueError as exc:
        return Reading(host, "error", problem=f"{host}: its Exchange build cannot be judged: {exc}")
    kms = facts.get("kms") or {}
    kms_build, kms_release = None, None
    if kms.get("installed") and kms.get("binary_build"):
        kms_build = str(kms["binary_build"])
        kms_release = kms.get("binary_release")
    store_text = store_version_of(facts)
    try:
        store = Build.parse(store_text) if store_text else None
    except ValueError:
        store = None
    return Reading(
        host, "read", build, name_build(build), kms_build, kms_release, store_version=store
    )


@dataclass(frozen=True)
class _Reference:
    product: str
    build: Build  # the build hosts are judged against (prevailing for exact, else newest)
    newest: Build  # the newest build of `product` in the group: what to install
    hosts_on_build: int


def _newest_of(readings: t.Sequence[Reading], product: str) -> Build:
    return max((r.build for r in readings if r.name.product == product), key=parity_key)  # type: ignore[union-attr,arg-type]


def _reference(readings: t.Sequence[Reading], policy: Policy) -> _Reference:
    """exact: the build most hosts run, of the product most hosts run (ties go to the newer), so
    a single early or late host is the one named. equal_to_max and max_behind: the newest build
    of the newest product."""
    if policy.name == "exact":
        by_product = Counter(r.name.product for r in readings)  # type: ignore[union-attr]
        product = max(
            by_product, key=lambda p: (by_product[p], parity_key(_newest_of(readings, p)))
        )
        by_build = Counter(parity_key(r.build) for r in readings if r.name.product == product)  # type: ignore[union-attr,arg-type]
        key = max(by_build, key=lambda k: (by_build[k], k))
    else:
        newest = max((r.build for r in readings), key=parity_key)  # type: ignore[arg-type]
        product = name_build(newest).product
        key = parity_key(newest)
    build = max(
        (r.build for r in readings if r.name.product == product and parity_key(r.build) == key),  # type: ignore[union-attr,arg-type]
    )
    hosts_on_build = sum(
        1 for r in readings if r.name.product == product and parity_key(r.build) == key  # type: ignore[union-attr,arg-type]
    )
    return _Reference(product, build, _newest_of(readings, product), hosts_on_build)


def _show(build: Build) -> str:
    return f"{name_build(build).release} ({build})"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# ---------------------------------------------------------------------------------------------
# What the rules read: one host's reading, the group's reference build and the policy.


@dataclass(frozen=True)
class HostCase:
    """One host of the group as the rules see it."""

    reading: Reading
    reference: _Reference | None  # None when no host of the group was read
    policy: Policy
    group: str
    judged: int  # how many hosts of the group were read

    @property
    def product(self) -> str | None:
        return self.reading.name.product if self.reading.name else None

    @property
    def build(self) -> Build:
        if self.reading.build is None:
            raise ValueError(
                f"{self.reading.host}: judged without a build; only readings with a build are judged"
            )
        return self.reading.build

    @property
    def name(self) -> BuildName:
        if self.reading.name is None:
            raise ValueError(f"{self.reading.host}: judged without a name for its build")
        return self.reading.name

    @property
    def ref(self) -> _Reference:
        """The reference build, which every group with a host that was read has."""
        if self.reference is None:
            raise ValueError(f"{self.reading.host}: judged without a reference build")
        return self.reference

    @property
    def same_product(self) -> bool:
        return self.product is not None and self.product == self.ref.product

    @property
    def other_product(self) -> bool:
        return self.product is not None and self.product != self.ref.product

    @cached_property
    def behind(self) -> int | None:
        """Releases behind the newest build of the reference product; None when not comparable."""
        return releases_behind(self.build, self.ref.newest) if self.same_product else None

    @property
    def on_newest(self) -> bool:
        return parity_key(self.build) == parity_key(self.ref.newest)

    @property
    def against_reference(self) -> int:
        """-1 behind the reference build, 0 on it, 1 ahead of it."""
        key, reference = parity_key(self.build), parity_key(self.ref.build)
        return (key > reference) - (key < reference)

    @property
    def install(self) -> str:
        """What to install on a host behind: the newest release of the reference product."""
        return name_build(self.ref.newest).release

    def seen(self, **more: t.Any) -> Values:
        """The values a read host's row is worded with: its build, what to install, and `more`."""
        return {"build": _show(self.build), "install": self.install, **more}


# ---------------------------------------------------------------------------------------------
# The rules' predicates: each returns the values its wording needs when its rule decides the
# host's row, or None.


def unreachable(case: HostCase) -> Values | None:
    return {"problem": case.reading.problem} if case.reading.status == "unreachable" else None


def not_judged(case: HostCase) -> Values | None:
    return {"problem": case.reading.problem} if case.reading.status == "error" else None


def _product_values(case: HostCase) -> Values:
    chosen = _PRODUCT_CHOSEN[case.policy.name].format(group=case.group)
    return case.seen(product=case.ref.product, chosen=chosen)


def upgrade_to_se(case: HostCase) -> Values | None:
    if not case.other_product:
        return None
    upgrades = (case.product, case.ref.product) == (_SE_UPGRADES_FROM, _SE_PRODUCT)
    return _product_values(case) if upgrades else None


def other_product(case: HostCase) -> Values | None:
    return _product_values(case) if case.other_product else None


def service_pack_incomplete(case: HostCase) -> Values | None:
    """KB Q278518: Store.exe's file version shows the service pack installed. A 4.0 - 2003 host
    whose Store.exe is on an earlier service pack than its registry's build does not run the
    build it reports, whatever the policy."""
    store = case.reading.store_version
    if store is None or not on_earlier_service_pack(store, case.build):
        return None
    return case.seen(store=_show(store), release=case.name.release)


def _reference_values(case: HostCase, against: int) -> Values | None:
    if not case.same_product or case.against_reference != against:
        return None
    return case.seen(
        reference=_show(case.ref.build),
        hosts_on_build=case.ref.hosts_on_build,
        judged=case.judged,
    )


def on_reference(case: HostCase) -> Values | None:
    return _reference_values(case, 0)


def ahead_of_reference(case: HostCase) -> Values | None:
    return _reference_values(case, 1)


def behind_reference(case: HostCase) -> Values | None:
    return _reference_values(case, -1)


def _behind_newest(case: HostCase) -> Values:
    return case.seen(
        newest=_show(case.ref.newest),
        behind=_plural(case.behind or 0, "release"),
        max_behind=case.policy.max_behind,
    )


def on_newest(case: HostCase) -> Values | None:
    return case.seen() if case.same_product and case.on_newest else None


def within_allowed(case: HostCase) -> Values | None:
    if not case.same_product or case.on_newest:
        return None
    return _behind_newest(case) if (case.behind or 0) <= (case.policy.max_behind or 0) else None


def not_newest(case: HostCase) -> Values | None:
    return _behind_newest(case) if case.same_product and not case.on_newest else None


def too_far_behind(case: HostCase) -> Values | None:
    if not case.same_product:
        return None
    return _behind_newest(case) if (case.behind or 0) > (case.policy.max_behind or 0) else None


# ---------------------------------------------------------------------------------------------
# The rules, in the order they are tried: the first that holds under the group's policy and whose
# predicate returns values decides the host's row. Adding an outcome is adding one row here, its
# predicate above and its wording below.


@dataclass(frozen=True)
class HostRule:
    id: str
    status: str  # one of STATUSES
    applies: t.Callable[[HostCase], Values | None]
    policies: tuple[str, ...] = POLICIES  # the policies under which the rule is tried
    installs: bool = False  # the row names the newest release of the group as what to install


_NEWEST = ("equal_to_max", "max_behind")

HOST_RULES: tuple[HostRule, ...] = (
    # A host that was not read is reported, not judged.
    HostRule("unreachable", "unreachable", unreachable),
    HostRule("not_judged", "error", not_judged),
    # Builds of different products are never compared.
    HostRule("upgrade_to_se", "outlier", upgrade_to_se, installs=True),
    HostRule("other_product", "outlier", other_product),
    # A service pack that did not complete: the registry's build is not the one the host runs.
    HostRule("service_pack_incomplete", "outlier", service_pack_incomplete),
    # exact: every host on the build most hosts run.
    HostRule("on_reference", "ok", on_reference, policies=("exact",)),
    HostRule("ahead_of_reference", "outlier", ahead_of_reference, policies=("exact",)),
    HostRule("behind_reference", "outlier", behind_reference, policies=("exact",), installs=True),
    # equal_to_max and max_behind: measured from the newest build.
    HostRule("on_newest", "ok", on_newest, policies=_NEWEST),
    HostRule("within_allowed", "ok", within_allowed, policies=("max_behind",)),
    HostRule("not_newest", "outlier", not_newest, policies=("equal_to_max",), installs=True),
    HostRule("too_far_behind", "outlier", too_far_behind, policies=("max_behind",), installs=True),
)

# How the policy chose the reference product, as the product rules' reasons say it.
_PRODUCT_CHOSEN = {
    "exact": "most hosts of {group} run",
    "equal_to_max": "is the newest product in {group}",
    "max_behind": "is the newest product in {group}",
}
_OTHER_PRODUCT = (
    "{host} runs {build}, a different product from {product}, which {chosen}: builds of different "
    "products are never compared, and no update turns one product into another."
)
_NOT_ON_REFERENCE = (
    "{host} runs {build}, but {hosts_on_build} of {judged} hosts of {group} run {reference}: "
    "policy exact wants every host on the same build"
)
_BEHIND_NEWEST = "{host} runs {build}, {behind} behind the newest build in {group}, {newest}: "

# (reason, fix) per rule: str.format templates over the predicate's values, {host} and {group}.
HOST_MESSAGES: dict[str, tuple[str, str]] = {
    "unreachable": (
        "{problem}",
        "Make {host} reachable over WinRM (the reason says what failed), then run the check "
        "again: the group cannot pass while a host is not judged.",
    ),
    "not_judged": (
        "{problem}",
        "Fix what the reason says for {host} (or take it out of the group), then run the check "
        "again.",
    ),
    "upgrade_to_se": (
        _OTHER_PRODUCT,
        "Upgrade {host} in place to {install} (Subscription Edition installs over Exchange 2019 "
        "CU14 or CU15), or check it in a group of its own.",
    ),
    "other_product": (
        _OTHER_PRODUCT,
        "Check {host} in a group of its own product (exchange_parity_group), or replace it with "
        "a server on {install}.",
    ),
    "service_pack_incomplete": (
        "{host}'s Store.exe is {store} while its registry says {build}: the service pack did "
        "not complete on {host} (KB Q278518: Store.exe's file version shows the service pack "
        "installed), so it does not run the build it reports.",
        "Reapply {release} on {host} (exchops.kms.exchange_service_pack), then run the check "
        "again.",
    ),
    "on_reference": ("{host} runs {build}, the build of {hosts_on_build} of {judged} hosts.", ""),
    "ahead_of_reference": (
        _NOT_ON_REFERENCE + " (this host is ahead of them).",
        "Install {install} on the hosts behind {host} (policy equal_to_max names them), or keep "
        "them and set exchange_parity_policy to max_behind if the difference is intended.",
    ),
    "behind_reference": (
        _NOT_ON_REFERENCE + ".",
        "Install {install} on {host} (the newest build in {group}).",
    ),
    "on_newest": ("{host} runs {build}, the newest build in {group}.", ""),
    "within_allowed": (
        "{host} runs {build}, {behind} behind {newest}, within the {max_behind} allowed.",
        "",
    ),
    "not_newest": (
        _BEHIND_NEWEST + "policy equal_to_max wants every host on it.",
        "Install {install} on {host}.",
    ),
    "too_far_behind": (
        _BEHIND_NEWEST + "policy max_behind allows {max_behind}.",
        "Install {install} on {host}.",
    ),
}


def decide_host(case: HostCase) -> tuple[HostRule, Values]:
    """The first rule that applies to the host under the group's policy, with its values."""
    rules = (rule for rule in HOST_RULES if case.policy.name in rule.policies)
    return first_rule(rules, case, f"HOST_RULES for {case.reading.host}")


def host_cases(
    group: str,
    hosts: t.Sequence[str],
    results: t.Mapping[str, t.Mapping[str, t.Any] | None],
    policy: Policy,
) -> list[HostCase]:
    """Each host's reading (in inventory order) against the reference build of the hosts read."""
    readings = [read_result(host, results.get(host)) for host in hosts]
    judged = [reading for reading in readings if reading.status == "read"]
    reference = _reference(judged, policy) if judged else None
    return [HostCase(reading, reference, policy, group, len(judged)) for reading in readings]


def _row(case: HostCase) -> dict[str, t.Any]:
    rule, values = decide_host(case)
    reason, fix = HOST_MESSAGES[rule.id]
    values = {"host": case.reading.host, "group": case.group, **values}
    reading = case.reading
    return {
        "host": reading.host,
        "status": rule.status,
        "build": str(reading.build) if reading.build else None,
        "release": reading.name.release if reading.name else None,
        "product": reading.name.product if reading.name else None,
        "behind": case.behind,
        "kms_binary_build": reading.kms_binary_build,
        "kms_binary_release": reading.kms_binary_release,
        "install": case.install if rule.installs else None,
        "reason": reason.format(**values),
        "fix": fix.format(**values),
    }


def judge_group(
    group: str,
    hosts: t.Sequence[str],
    results: t.Mapping[str, t.Mapping[str, t.Any] | None],
    policy: Policy,
    generated: str,
    left_out: t.Sequence[str] = (),
) -> dict[str, t.Any]:
    """The report of one group: a row per host (in inventory order), the builds in the group, the
    outliers with what to install, and pass only when every host is on the policy's build."""
    cases = host_cases(group, hosts, results, policy)
    rows = [_row(case) for case in cases]
    judged = [case for case in cases if case.reading.status == "read"]
    reference = cases[0].reference if cases else None
    counts = {status: sum(1 for row in rows if row["status"] == status) for status in STATUSES}
    products = Counter(case.name.product for case in judged)
    report: dict[str, t.Any] = {
        "generated": generated,
        "group": group,
        "policy": {"name": policy.name, "max_behind": policy.max_behind},
        "partial": any(not case.reading.finished for case in cases),
        "result": "pass" if rows and counts["ok"] == len(rows) else "fail",
        "counts": counts,
        "reference": _reference_entry(reference) if reference else None,
        "products": [
            {"product": product, "hosts": count} for product, count in products.most_common()
        ],
        "builds": _builds_in_group(judged),
        "outliers": [
            {key: row[key] for key in ("host", "build", "install", "reason", "fix")}
            for row in rows
            if row["status"] == "outlier"
        ],
        "left_out": list(left_out),
        "hosts": rows,
    }
    report["summary"] = _summary(report, policy, len(judged))
    return report


def _reference_entry(reference: _Reference) -> dict[str, str]:
    return {
        "product": reference.product,
        "build": str(reference.build),
        "release": name_build(reference.build).release,
        "newest_build": str(reference.newest),
        "newest_release": name_build(reference.newest).release,
    }


def _builds_in_group(judged: t.Sequence[HostCase]) -> list[dict[str, t.Any]]:
    """Each build the hosts read run, newest first, with its hosts."""
    builds: dict[tuple[str, tuple[int, ...]], dict[str, t.Any]] = {}
    for case in sorted(judged, key=lambda case: parity_key(case.build), reverse=True):
        name = case.name
        entry = builds.setdefault(
            (name.product, parity_key(case.build)),
            {
                "build": str(case.build),
                "release": name.release,
                "product": name.product,
                "hosts": [],
            },
        )
        entry["hosts"].append(case.reading.host)
    return list(builds.values())


def _summary(report: t.Mapping[str, t.Any], policy: Policy, judged: int) -> str:
    group, counts, reference = report["group"], report["counts"], report["reference"]
    total = len(report["hosts"])
    if not total:
        return (
            f"{group} has no host in this run, so no build was compared and the check cannot pass. "
            "Put the Exchange servers in the group (exchange_parity_group names it)."
        )
    parts = []
    if report["result"] == "pass":
        if policy.name == "max_behind":
            parts.append(
                f"All {total} hosts of {group} are within {policy.max_behind} releases of "
                f"{reference['newest_release']} ({reference['newest_build']})."
            )
        else:
            parts.append(
                f"All {total} hosts of {group} run {reference['release']} ({reference['build']})."
            )
    else:
        parts.append(
            f"{group} fails policy {policy.describe()}: {counts['outlier']} of {total} hosts are "
            f"outliers, {counts['unreachable']} unreachable, {counts['error']} could not be judged."
        )
    if len(report["products"]) > 1:
        mix = ", ".join(
            f"{entry['product']} ({_plural(entry['hosts'], 'host')})"
            for entry in report["products"]
        )
        parts.append(
            f"The group mixes {len(report['products'])} products: {mix}. Builds of different "
            f"products are never compared: every host not on {reference['product']} is an outlier, "
            "and only a migration, not an update, changes that; check each product as its own group."
        )
    if reference and report["result"] != "pass" and judged:
        parts.append(
            f"Newest build in the group: {reference['newest_release']} ({reference['newest_build']})."
        )
    if report["left_out"]:
        parts.append(f"Not in this run (--limit): {', '.join(report['left_out'])}.")
    return " ".join(parts)


def failures(report: t.Mapping[str, t.Any]) -> dict[str, str]:
    """{host: message} for each host the run must fail: outliers, and hosts whose reading could
    not be judged (a read that failed or was unreachable has ended its host already)."""
    return {
        row["host"]: f"{row['reason']} {row['fix']}".strip()
        for row in report["hosts"]
        if row["status"] in ("outlier", "error")
    }


def to_markdown(report: t.Mapping[str, t.Any]) -> str:
    counts = report["counts"]
    policy = report["policy"]
    policy_text = policy["name"] + (
        f" {policy['max_behind']}" if policy["name"] == "max_behind" else ""
    )
    lines = [
        f"# Exchange build parity: {report['group']}",
        "",
        f"Generated {report['generated']}. Policy: {policy_text}. Result: **{report['result'].upper()}**"
        + (" (partial: some hosts were not read)" if report["partial"] else "")
        + f" — {counts['ok']} ok, {counts['outlier']} outlier, {counts['unreachable']} unreachable, "
        f"{counts['error']} error.",
        "",
        markdown_cell(report["summary"]),
        "",
        "| host | status | build | release | releases behind | KM binaries | reason | fix |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["hosts"]:
        km = (
            f"{row['kms_binary_build']} ({row['kms_binary_release']})"
            if row["kms_binary_build"]
            else ""
        )
        cells = (
            row["host"],
            _ICONS.get(row["status"], row["status"]),
            row["build"],
            row["release"],
            row["behind"],
            km,
            row["reason"],
            row["fix"],
        )
        lines.append("| " + " | ".join(markdown_cell(value) for value in cells) + " |")
    if report["builds"]:
        lines += ["", "## Builds in the group", "", "| build | release | hosts |", "|---|---|---|"]
        for entry in report["builds"]:
            lines.append(
                f"| {markdown_cell(entry['build'])} | {markdown_cell(entry['release'])} | "
                f"{len(entry['hosts'])}: {markdown_cell(', '.join(entry['hosts']))} |"
            )
    if report["outliers"]:
        lines += ["", "## Outliers", ""]
        lines += [
            f"- **{markdown_cell(o['host'])}**: {markdown_cell(o['fix'])}"
            for o in report["outliers"]
        ]
    return "\n".join(lines) + "\n"


def to_junit(report: t.Mapping[str, t.Any]) -> str:
    cases = [
        JunitCase(
            f"{row['host']} is on the build of {report['group']}",
            {"outlier": "failure", "unreachable": "error", "error": "error"}.get(row["status"]),
            row["status"],
            row["reason"],
            f"{row['reason']}\nFix: {row['fix']}" if row["fix"] else row["reason"],
        )
        for row in report["hosts"]
    ]
    return junit_xml(
        "exchops.kms.check_exchange_parity",
        f"Exchange build parity of {report['group']} (policy {report['policy']['name']})",
        report["generated"],
        cases,
    )
