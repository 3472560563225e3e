# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet-wide build parity (plugins/plugin_utils/_fleet.py) and its report formats."""

from __future__ import annotations

import json
import typing as t
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from ansible_collections.exchops.kms.plugins.filter.exchange_parity import (
    exchange_parity_problems,
    exchange_parity_report,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._builds import Build
from ansible_collections.exchops.kms.plugins.plugin_utils._fleet import (
    HOST_MESSAGES,
    HOST_RULES,
    Policy,
    PolicyError,
    decide_host,
    failures,
    host_cases,
    judge_group,
    parse_policy,
    releases_behind,
    to_junit,
    to_markdown,
)

SCHEMA = json.loads(
    (
        Path(__file__).resolve().parents[4] / "docs/schemas/exchange_parity_report.schema.json"
    ).read_text(encoding="utf-8")
)
WHEN = "2026-03-01T10:00:00Z"


def read(build: str, kms: str | None = None) -> dict[str, t.Any]:
    facts: dict[str, t.Any] = {"installed": True, "build": build, "kms": {"installed": bool(kms)}}
    if kms:
        facts["kms"].update(binary_build=kms, binary_release="Exchange Server 5.5 SP3")
    return {"changed": False, "ansible_facts": {"exchange": facts}}


def results_of(builds: dict[str, t.Any]) -> dict[str, t.Any]:
    return {
        host: (read(value) if isinstance(value, str) else value) for host, value in builds.items()
    }


def judge(builds: dict[str, t.Any], policy: Policy) -> dict[str, t.Any]:
    report = judge_group("dag1", list(builds), results_of(builds), policy, WHEN)
    jsonschema.validate(report, SCHEMA)
    return report


def status(report: dict[str, t.Any]) -> dict[str, str]:
    return {row["host"]: row["status"] for row in report["hosts"]}


def decided(builds: dict[str, t.Any], policy: Policy) -> dict[str, tuple[str, str]]:
    """{host: (rule id, row status)}"""
    cases = host_cases("dag1", list(builds), results_of(builds), policy)
    rules = {case.reading.host: decide_host(case)[0].id for case in cases}
    return {host: (rules[host], row) for host, row in status(judge(builds, policy)).items()}


DAG = {"d1": "15.2.1748.43", "d2": "15.2.1748.43", "d4": "15.2.1748.10", "d6": "15.2.1544.4"}
CANARY = {"s1": "15.1.2507.6", "s2": "15.1.2507.6", "s3": "15.1.2507.6", "canary": "15.1.2507.66"}
MIXED = {"e55": "5.5.2650.0", "a": "15.2.1748.43", "b": "15.2.1748.43"}
SE = {"se1": "15.2.2562.37", "se2": "15.2.2562.37", "old": "15.2.1748.43"}


def half_patched(build: str = "5.5.2650.0", store: str = "5.5.2448.8") -> dict[str, t.Any]:
    """A 5.5 host whose registry names `build` over a Store.exe on another service pack, as
    exchange_facts records it (`inconsistent`, KB Q278518)."""
    result = read(build, "5.5.2650.12")
    result["ansible_facts"]["exchange"]["inconsistent"] = [
        {"what": "server build", "readings": {"Store.exe": store}, "disagree": ["Store.exe"]}
    ]
    return result


SITE55 = {"k1": "5.5.2650.0", "k2": "5.5.2650.0", "half": half_patched()}
UNREAD = {
    "ok": "15.2.1748.43",
    "dark": {"unreachable": True, "msg": "dark: connection refused"},
    "refused": {"failed": True, "msg": "refused: authentication refused"},
    "gone": None,
}
# (rule id, row status)
ON_REFERENCE, AHEAD = ("on_reference", "ok"), ("ahead_of_reference", "outlier")
BEHIND_REFERENCE = ("behind_reference", "outlier")
ON_NEWEST, WITHIN = ("on_newest", "ok"), ("within_allowed", "ok")
NOT_NEWEST, TOO_FAR = ("not_newest", "outlier"), ("too_far_behind", "outlier")
OTHER_PRODUCT, UPGRADE = ("other_product", "outlier"), ("upgrade_to_se", "outlier")


@pytest.mark.parametrize(
    ("builds", "policy", "expected"),
    [
        (
            CANARY,
            Policy("exact"),
            {"s1": ON_REFERENCE, "s2": ON_REFERENCE, "s3": ON_REFERENCE, "canary": AHEAD},
        ),
        (
            CANARY,
            Policy("equal_to_max"),
            {"s1": NOT_NEWEST, "s2": NOT_NEWEST, "s3": NOT_NEWEST, "canary": ON_NEWEST},
        ),
        (
            DAG,
            Policy("exact"),
            {
                "d1": ON_REFERENCE,
                "d2": ON_REFERENCE,
                "d4": BEHIND_REFERENCE,
                "d6": BEHIND_REFERENCE,
            },
        ),
        (
            DAG,
            Policy("max_behind", 1),
            {"d1": ON_NEWEST, "d2": ON_NEWEST, "d4": WITHIN, "d6": TOO_FAR},
        ),
        (
            DAG,
            Policy("max_behind", 0),
            {"d1": ON_NEWEST, "d2": ON_NEWEST, "d4": TOO_FAR, "d6": TOO_FAR},
        ),
        (MIXED, Policy("exact"), {"e55": OTHER_PRODUCT, "a": ON_REFERENCE, "b": ON_REFERENCE}),
        (MIXED, Policy("equal_to_max"), {"e55": OTHER_PRODUCT, "a": ON_NEWEST, "b": ON_NEWEST}),
        (SE, Policy("max_behind", 3), {"se1": ON_NEWEST, "se2": ON_NEWEST, "old": UPGRADE}),
        (
            UNREAD,
            Policy("exact"),
            {
                "ok": ON_REFERENCE,
                "dark": ("unreachable", "unreachable"),
                "refused": ("not_judged", "error"),
                "gone": ("not_judged", "error"),
            },
        ),
    ],
)
def test_each_host_is_decided_by_its_rule_under_each_policy(
    builds: dict[str, t.Any], policy: Policy, expected: dict[str, tuple[str, str]]
) -> None:
    assert decided(builds, policy) == expected


# One host per rule (two for other_product, whose reason names how the policy chose the
# reference product), with the reason and fix of its row, word for word.
WORDING: list[tuple[str, dict[str, t.Any], Policy, str, str, str]] = [
    (
        "unreachable",
        UNREAD,
        Policy("exact"),
        "dark",
        "dark: connection refused",
        "Make dark reachable over WinRM (the reason says what failed), then run the check again: "
        "the group cannot pass while a host is not judged.",
    ),
    (
        "not_judged",
        UNREAD,
        Policy("exact"),
        "refused",
        "refused: authentication refused",
        "Fix what the reason says for refused (or take it out of the group), then run the check "
        "again.",
    ),
    (
        "upgrade_to_se",
        SE,
        Policy("equal_to_max"),
        "old",
        "old runs Exchange Server 2019 CU15 Feb26SU (15.2.1748.43), a different product from "
        "Exchange Server Subscription Edition, which is the newest product in dag1: builds of "
        "different products are never compared, and no update turns one product into another.",
        "Upgrade old in place to Exchange Server Subscription Edition Feb26SU (Subscription "
        "Edition installs over Exchange 2019 CU14 or CU15), or check it in a group of its own.",
    ),
    (
        "other_product",
        MIXED,
        Policy("equal_to_max"),
        "e55",
        "e55 runs Exchange Server 5.5 SP3 (5.5.2650.0), a different product from Exchange Server "
        "2019, which is the newest product in dag1: builds of different products are never "
        "compared, and no update turns one product into another.",
        "Check e55 in a group of its own product (exchange_parity_group), or replace it with a "
        "server on Exchange Server 2019 CU15 Feb26SU.",
    ),
    (
        "other_product",
        MIXED,
        Policy("exact"),
        "e55",
        "e55 runs Exchange Server 5.5 SP3 (5.5.2650.0), a different product from Exchange Server "
        "2019, which most hosts of dag1 run: builds of different products are never compared, "
        "and no update turns one product into another.",
        "Check e55 in a group of its own product (exchange_parity_group), or replace it with a "
        "server on Exchange Server 2019 CU15 Feb26SU.",
    ),
    (
        "service_pack_incomplete",
        SITE55,
        Policy("exact"),
        "half",
        "half's Store.exe is Exchange Server 5.5 SP2 (5.5.2448.8) while its registry says "
        "Exchange Server 5.5 SP3 (5.5.2650.0): the service pack did not complete on half (KB "
        "Q278518: Store.exe's file version shows the service pack installed), so it does not run "
        "the build it reports.",
        "Reapply Exchange Server 5.5 SP3 on half (exchops.kms.exchange_service_pack), then run "
        "the check again.",
    ),
    (
        "on_reference",
        CANARY,
        Policy("exact"),
        "s1",
        "s1 runs Exchange Server 2016 CU23 (15.1.2507.6), the build of 3 of 4 hosts.",
        "",
    ),
    (
        "ahead_of_reference",
        CANARY,
        Policy("exact"),
        "canary",
        "canary runs Exchange Server 2016 CU23 Feb26SU (15.1.2507.66), but 3 of 4 hosts of dag1 "
        "run Exchange Server 2016 CU23 (15.1.2507.6): policy exact wants every host on the same "
        "build (this host is ahead of them).",
        "Install Exchange Server 2016 CU23 Feb26SU on the hosts behind canary (policy "
        "equal_to_max names them), or keep them and set exchange_parity_policy to max_behind if "
        "the difference is intended.",
    ),
    (
        "behind_reference",
        DAG,
        Policy("exact"),
        "d6",
        "d6 runs Exchange Server 2019 CU14 (15.2.1544.4), but 2 of 4 hosts of dag1 run Exchange "
        "Server 2019 CU15 Feb26SU (15.2.1748.43): policy exact wants every host on the same build.",
        "Install Exchange Server 2019 CU15 Feb26SU on d6 (the newest build in dag1).",
    ),
    (
        "on_newest",
        DAG,
        Policy("equal_to_max"),
        "d1",
        "d1 runs Exchange Server 2019 CU15 Feb26SU (15.2.1748.43), the newest build in dag1.",
        "",
    ),
    (
        "within_allowed",
        DAG,
        Policy("max_behind", 1),
        "d4",
        "d4 runs Exchange Server 2019 CU15 (15.2.1748.10), 1 release behind Exchange Server 2019 "
        "CU15 Feb26SU (15.2.1748.43), within the 1 allowed.",
        "",
    ),
    (
        "not_newest",
        CANARY,
        Policy("equal_to_max"),
        "s1",
        "s1 runs Exchange Server 2016 CU23 (15.1.2507.6), 1 release behind the newest build in "
        "dag1, Exchange Server 2016 CU23 Feb26SU (15.1.2507.66): policy equal_to_max wants every "
        "host on it.",
        "Install Exchange Server 2016 CU23 Feb26SU on s1.",
    ),
    (
        "too_far_behind",
        DAG,
        Policy("max_behind", 1),
        "d6",
        "d6 runs Exchange Server 2019 CU14 (15.2.1544.4), 2 releases behind the newest build in "
        "dag1, Exchange Server 2019 CU15 Feb26SU (15.2.1748.43): policy max_behind allows 1.",
        "Install Exchange Server 2019 CU15 Feb26SU on d6.",
    ),
]


def test_every_rule_has_its_wording_and_a_host_here_that_shows_it() -> None:
    ids = [rule.id for rule in HOST_RULES]
    assert ids == list(HOST_MESSAGES)
    assert ids == list(dict.fromkeys(entry[0] for entry in WORDING))


@pytest.mark.parametrize(("rule", "builds", "policy", "host", "reason", "fix"), WORDING)
def test_each_rule_gives_its_reason_and_fix_word_for_word(
    rule: str, builds: dict[str, t.Any], policy: Policy, host: str, reason: str, fix: str
) -> None:
    assert decided(builds, policy)[host][0] == rule
    row = next(row for row in judge(builds, policy)["hosts"] if row["host"] == host)
    assert (row["reason"], row["fix"]) == (reason, fix)


@pytest.mark.parametrize(
    ("builds", "policy", "host", "install", "behind"),
    [
        (SE, Policy("equal_to_max"), "old", "Exchange Server Subscription Edition Feb26SU", None),
        (MIXED, Policy("equal_to_max"), "e55", None, None),
        (CANARY, Policy("exact"), "canary", None, 0),
        (DAG, Policy("exact"), "d6", "Exchange Server 2019 CU15 Feb26SU", 2),
        (DAG, Policy("max_behind", 1), "d4", None, 1),
        (DAG, Policy("max_behind", 1), "d6", "Exchange Server 2019 CU15 Feb26SU", 2),
        (UNREAD, Policy("exact"), "dark", None, None),
    ],
)
def test_only_outliers_an_update_fixes_name_what_to_install(
    builds: dict[str, t.Any], policy: Policy, host: str, install: str | None, behind: int | None
) -> None:
    row = next(row for row in judge(builds, policy)["hosts"] if row["host"] == host)
    assert (row["install"], row["behind"]) == (install, behind)


@pytest.mark.parametrize(
    ("policy", "max_behind", "expected"),
    [
        ("exact", None, Policy("exact")),
        ("equal_to_max", None, Policy("equal_to_max")),
        ("max_behind", 2, Policy("max_behind", 2)),
        ("max_behind", "0", Policy("max_behind", 0)),  # -e gives a string
        ({"max_behind": 1}, None, Policy("max_behind", 1)),
    ],
)
def test_policies_that_can_be_used(policy: t.Any, max_behind: t.Any, expected: Policy) -> None:
    assert parse_policy(policy, max_behind, "dag1") == expected


@pytest.mark.parametrize(
    ("policy", "max_behind", "message"),
    [
        (
            "newest",
            None,
            r"dag1: exchange_parity_policy is 'newest', which is not a policy\. Set exchange_parity_policy to exact",
        ),
        ("max_behind", None, "exchange_parity_max_behind is not set"),
        ("max_behind", -1, "exchange_parity_max_behind is -1; it must be 0 or more"),
        ("max_behind", "-1", "exchange_parity_max_behind is -1; it must be 0 or more"),
        ("max_behind", "two", "exchange_parity_max_behind is 'two', not a whole number"),
        ("max_behind", True, "exchange_parity_max_behind is True, not a number"),
        (
            "exact",
            2,
            "exchange_parity_max_behind is 2 but exchange_parity_policy is exact, which ignores it",
        ),
        ({"max_behind": 1, "x": 2}, None, "the only mapping form is"),
        ({"max_behind": 1}, 1, "both set"),
        (None, None, "exchange_parity_policy is None"),
    ],
)
def test_bad_policies_are_refused_naming_the_group_the_value_and_the_fix(
    policy: t.Any, max_behind: t.Any, message: str
) -> None:
    with pytest.raises(PolicyError, match=message) as raised:
        parse_policy(policy, max_behind, "dag1")
    assert str(raised.value).startswith("dag1: ")
    assert str(raised.value).endswith("Nothing was read or changed.")


def test_settings_problems_name_a_missing_group_and_a_bad_policy_together() -> None:
    problems = exchange_parity_problems("dag9", "newest", None, {"dag1": ["a"]})
    assert len(problems) == 2
    assert problems[0].startswith("dag9: the inventory has no group named dag9")
    assert "'newest', which is not a policy" in problems[1]
    assert exchange_parity_problems("dag1", "exact", None, {"dag1": ["a"]}) == []
    assert "must name the inventory group" in exchange_parity_problems("", "exact")[0]


@pytest.mark.parametrize(
    ("build", "newest", "behind"),
    [
        ("15.2.1748.43", "15.2.1748.43", 0),
        ("15.2.1748.10", "15.2.1748.43", 1),  # CU15 -> CU15 Feb26SU
        ("15.2.1544.4", "15.2.1748.43", 2),  # CU14 -> CU15 -> CU15 Feb26SU
        ("15.2.1544.4", "15.2.1748.10", 1),
        ("15.2.1748.43", "15.2.1748.50", 1),  # a newer build the table does not list counts once
        ("5.5.2650.0", "5.5.2653.0", 1),  # SP3 -> SP4
        ("5.5.1960.8", "5.5.2653.0", 4),
        ("5.5.2650.23", "5.5.2650.0", 0),  # same SP: the fourth part differs per file (Q243604)
        ("6.0.5762.0", "6.0.6249.0", 1),
        # As strings "15.2.922.13" >= "15.2.1118.7" (CSS-Exchange #1374); as builds it is behind.
        ("15.2.922.13", "15.2.1118.7", 1),
    ],
)
def test_releases_behind_count_rows_of_the_build_table_as_integer_tuples(
    build: str, newest: str, behind: int
) -> None:
    assert releases_behind(Build.parse(build), Build.parse(newest)) == behind


def test_a_group_on_one_build_passes_under_every_policy() -> None:
    builds = {"a": "15.2.1748.43", "b": "15.2.1748.43"}
    summaries = {}
    for policy in (Policy("max_behind", 0), Policy("equal_to_max"), Policy("exact")):
        report = judge(builds, policy)
        assert report["result"] == "pass" and report["outliers"] == []
        summaries[policy.name] = report["summary"]
    assert "within 0 releases of Exchange Server 2019 CU15 Feb26SU" in summaries["max_behind"]
    assert (
        "All 2 hosts of dag1 run Exchange Server 2019 CU15 Feb26SU (15.2.1748.43)."
        in summaries["exact"]
    )


def test_legacy_servers_on_one_sp_are_the_same_build_whatever_their_fourth_part() -> None:
    report = judge({"a": "5.5.2650.0", "b": "5.5.2650.23"}, Policy("exact"))
    assert report["result"] == "pass"


def test_exact_names_the_canary_and_equal_to_max_names_the_others() -> None:
    builds = {
        "s1": "15.1.2507.6",
        "s2": "15.1.2507.6",
        "s3": "15.1.2507.6",
        "canary": "15.1.2507.66",
    }
    exact = judge(builds, Policy("exact"))
    assert [o["host"] for o in exact["outliers"]] == ["canary"]
    assert "this host is ahead of them" in exact["outliers"][0]["reason"]
    assert exact["outliers"][0]["install"] is None
    to_max = judge(builds, Policy("equal_to_max"))
    assert [o["host"] for o in to_max["outliers"]] == ["s1", "s2", "s3"]
    assert {o["install"] for o in to_max["outliers"]} == {"Exchange Server 2016 CU23 Feb26SU"}
    assert to_max["outliers"][0]["fix"] == "Install Exchange Server 2016 CU23 Feb26SU on s1."


@pytest.mark.parametrize(("allowed", "outliers"), [(0, ["d4", "d5", "d6"]), (1, ["d6"]), (2, [])])
def test_max_behind_fails_only_the_hosts_further_behind(allowed: int, outliers: list[str]) -> None:
    builds = {
        "d1": "15.2.1748.43",
        "d2": "15.2.1748.43",
        "d3": "15.2.1748.43",
        "d4": "15.2.1748.10",
        "d5": "15.2.1748.10",
        "d6": "15.2.1544.4",
    }
    report = judge(builds, Policy("max_behind", allowed))
    assert [o["host"] for o in report["outliers"]] == outliers
    assert report["result"] == ("pass" if not outliers else "fail")
    if "d6" in outliers:
        assert "d6 runs Exchange Server 2019 CU14 (15.2.1544.4)" in report["outliers"][-1]["reason"]
        assert "2 releases behind" in report["outliers"][-1]["reason"]


def test_different_products_are_named_never_compared() -> None:
    builds = {"e55": "5.5.2650.0", "a": "15.2.1748.43", "b": "15.2.1748.43", "e2k": "6.0.6249.0"}
    report = judge(builds, Policy("equal_to_max"))
    rows = {row["host"]: row for row in report["hosts"]}
    assert status(report) == {"e55": "outlier", "a": "ok", "b": "ok", "e2k": "outlier"}
    assert "a different product from Exchange Server 2019" in rows["e55"]["reason"]
    assert rows["e55"]["behind"] is None and rows["e55"]["install"] is None
    assert "The group mixes 3 products" in report["summary"]
    assert "only a migration, not an update" in report["summary"]


def test_a_2019_host_in_an_se_group_is_told_to_upgrade_in_place() -> None:
    report = judge(
        {"se1": "15.2.2562.37", "se2": "15.2.2562.37", "old": "15.2.1748.43"},
        Policy("equal_to_max"),
    )
    row = next(row for row in report["hosts"] if row["host"] == "old")
    assert row["status"] == "outlier"
    assert row["fix"].startswith(
        "Upgrade old in place to Exchange Server Subscription Edition Feb26SU"
    )


def test_unreachable_failed_missing_and_exchange_less_hosts_are_reported_not_dropped() -> None:
    builds = {
        "ok": "15.2.1748.43",
        "dark": {"unreachable": True, "msg": "dark: connection refused"},
        "refused": {"failed": True, "msg": "refused: authentication refused"},
        "gone": None,
        "bare": {"ansible_facts": {"exchange": {"installed": False}}},
        "odd": {"ansible_facts": {"exchange": {"installed": True, "build": "15.2.x"}}},
    }
    report = judge(builds, Policy("exact"))
    assert status(report) == {
        "ok": "ok",
        "dark": "unreachable",
        "refused": "error",
        "gone": "error",
        "bare": "error",
        "odd": "error",
    }
    assert report["partial"] is True and report["result"] == "fail"
    assert "no Exchange server is installed" in failures(report)["bare"]
    assert "not an Exchange build" in failures(report)["odd"]
    assert set(failures(report)) == {"refused", "gone", "bare", "odd"}


def test_an_empty_group_fails_with_a_summary_that_says_why() -> None:
    report = judge({}, Policy("exact"))
    assert report["result"] == "fail" and report["reference"] is None
    assert "has no host in this run" in report["summary"]


def test_the_filter_keeps_inventory_order_and_lists_hosts_left_out_by_limit() -> None:
    hostvars = {
        "b": {"exchange_parity_read": read("15.2.1748.43")},
        "a": {"exchange_parity_read": read("15.2.1748.43")},
    }
    report = exchange_parity_report(
        hostvars, ["b", "a", "c"], "dag1", "exact", None, WHEN, play_hosts=["a", "b"]
    )
    assert [row["host"] for row in report["hosts"]] == ["b", "a"]
    assert report["left_out"] == ["c"] and report["result"] == "pass"


def test_markdown_and_junit_show_every_host_and_the_fix() -> None:
    builds = {
        "d1": "15.2.1748.43",
        "d2": "15.2.1544.4",
        "dark": {"unreachable": True, "msg": "dark: refused"},
    }
    report = judge(builds, Policy("equal_to_max"))
    markdown = to_markdown(report)
    assert "| d2 | ❌ outlier | 15.2.1544.4 | Exchange Server 2019 CU14 | 2 |" in markdown
    assert "- **d2**: Install Exchange Server 2019 CU15 Feb26SU on d2." in markdown
    suite = ET.fromstring(to_junit(report).split("\n", 1)[1]).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")


@pytest.mark.parametrize(
    "policy", [Policy("exact"), Policy("equal_to_max"), Policy("max_behind", 1)]
)
def test_a_half_installed_service_pack_is_an_outlier_under_every_policy(policy: Policy) -> None:
    assert decided(SITE55, policy)["half"] == ("service_pack_incomplete", "outlier")
    assert decided(SITE55, policy)["k1"][1] == "ok"
    # Store.exe on a later service pack than the registry is exchange_facts' finding, not this.
    later = {**SITE55, "half": half_patched(store="5.5.2653.23")}
    assert decided(later, policy)["half"][1] == "ok"
