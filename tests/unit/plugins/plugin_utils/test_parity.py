# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verdicts on KM Server move pairs (plugins/plugin_utils/_parity.py) and the report formats."""

from __future__ import annotations

import typing as t
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._parity import (
    PAIR_MESSAGES,
    PAIR_RULES,
    Pair,
    PairVerdict,
    decide_pair,
    judge_pair,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._report import (
    build_report,
    to_junit,
    to_markdown,
)

SCHEMA = "kms_report.schema.json"
RELEASES = {
    "5.5.1960.8": "Exchange Server 5.5 RTM",
    "5.5.2448.0": "Exchange Server 5.5 SP2",
    "5.5.2650.0": "Exchange Server 5.5 SP3",
    "5.5.2650.12": "Exchange Server 5.5 SP3",
    "5.5.2653.0": "Exchange Server 5.5 SP4",
    "5.5.2653.12": "Exchange Server 5.5 SP4",
    "6.0.4417.0": "Exchange 2000 Server RTM",
    "6.0.5762.0": "Exchange 2000 Server SP2",
    "6.0.6249.0": "Exchange 2000 Server SP3",
}


def read(
    build: str | None = "5.5.2650.0",
    kms_binary: str | None = "5.5.2650.12",
    kms: bool = True,
    events: list[dict[str, t.Any]] | None = None,
) -> dict[str, t.Any]:
    exchange: dict[str, t.Any] = {
        "installed": build is not None,
        "kms": {"installed": kms, "events": events or []},
    }
    if build:
        exchange.update(build=build, release=RELEASES[build])
    if kms and kms_binary:
        exchange["kms"].update(binary_build=kms_binary, binary_release=RELEASES[kms_binary])
    exchange["kms"]["service"] = {"state": "stopped" if kms else "absent"}
    return {"changed": False, "ansible_facts": {"exchange": exchange}}


EVENT_5389 = {"id": 5389, "source": "MSExchangeKMS", "time": "2001-03-14T09:12:40+00:00"}
UNREACHABLE = {"unreachable": True, "msg": "kms-new (http://x): unreachable: connection refused"}
NOT_TRUSTED = {"unreachable": True, "msg": "kms-old: TLS certificate not trusted"}
REFUSED = {"failed": False, "msg": "kms-old: refused the credentials"}


def judge(
    target: t.Mapping[str, t.Any] | None,
    source: t.Mapping[str, t.Any] | None,
    allow_newer: bool = False,
    *,
    source_name: str | None = "kms-old",
    in_inventory: bool = True,
) -> PairVerdict:
    return judge_pair(
        "kms-new",
        source_name,
        target,
        source,
        allow_newer_target=allow_newer,
        source_in_inventory=in_inventory,
    )


def rule_of(
    target: t.Mapping[str, t.Any] | None,
    source: t.Mapping[str, t.Any] | None,
    allow_newer: bool = False,
    *,
    source_name: str | None = "kms-old",
    in_inventory: bool = True,
) -> str:
    pair = Pair("kms-new", source_name, target, source, allow_newer, in_inventory)
    rule, _values = decide_pair(pair)
    return rule.id


@pytest.mark.parametrize(
    ("target", "source", "allow_newer", "rule", "status"),
    [
        (read(), read(), False, "match", "match"),
        (read(kms_binary="5.5.1960.8"), read(), False, "binary_behind", "mismatch"),
        (read("5.5.2448.0", "5.5.2448.0"), read(), False, "sp_behind", "mismatch"),
        (read("5.5.2653.0", "5.5.2653.12"), read(), False, "newer_target", "mismatch"),
        (read("5.5.2653.0", "5.5.2653.12"), read(), True, "newer_target_allowed", "match"),
        (read("6.0.6249.0", None, kms=False), read(), False, "target_without_kms", "error"),
        (read("6.0.6249.0", "6.0.6249.0"), read(), False, "different_family", "mismatch"),
        (read(None), read(), False, "target_without_exchange", "error"),
        (read(), read(None), False, "source_without_exchange", "error"),
        (read(), read(kms=False), False, "source_without_kms", "error"),
        (read(kms_binary=None), read(), False, "binary_unknown", "error"),
        (UNREACHABLE, read(), False, "target_unreachable", "unreachable"),
        (read(), NOT_TRUSTED, False, "source_unreachable", "unreachable"),
        (read(), REFUSED, False, "source_not_read", "error"),
        (read(), {"skipped": True}, False, "source_not_read", "error"),
        (None, read(), False, "target_not_read", "error"),
        # The order of the rules decides when more than one would apply.
        ({"failed": True}, NOT_TRUSTED, False, "target_not_read", "error"),
        (read(None), read(kms=False), False, "source_without_kms", "error"),
        (read("6.0.6249.0", "5.5.1960.8"), read(), False, "different_family", "mismatch"),
        (read("5.5.2448.0", None), read(), False, "sp_behind", "mismatch"),
        (read("5.5.2653.0", "5.5.1960.8"), read(), True, "binary_behind", "mismatch"),
        (read("5.5.2653.0", None), read(), True, "binary_unknown", "error"),
    ],
)
def test_each_kind_of_pair_is_decided_by_its_rule(
    target: dict, source: dict, allow_newer: bool, rule: str, status: str
) -> None:
    assert rule_of(target, source, allow_newer) == rule
    assert judge(target, source, allow_newer).status == status


def test_kms_binaries_the_server_calls_mismatched_are_behind_whatever_their_build() -> None:
    target = read()
    target["ansible_facts"]["exchange"]["kms"]["matches_server"] = False
    assert rule_of(target, read()) == "binary_behind"
    assert judge(target, read()).remedy == "reapply_sp"


@pytest.mark.parametrize(
    ("source_name", "in_inventory", "rule", "message"),
    [
        (None, True, "no_source", "kms-new has no kms_source_host"),
        ("", True, "no_source", "kms-new has no kms_source_host"),
        ("kms-new", True, "own_source", "kms-new is its own kms_source_host"),
        (
            "kms-gone",
            False,
            "source_not_in_inventory",
            "kms_source_host 'kms-gone' is not a host of this inventory",
        ),
    ],
)
def test_a_bad_source_is_an_error_naming_the_variable(
    source_name: str | None, in_inventory: bool, rule: str, message: str
) -> None:
    assert rule_of(read(), None, source_name=source_name, in_inventory=in_inventory) == rule
    verdict = judge(read(), None, source_name=source_name, in_inventory=in_inventory)
    assert verdict.status == "error"
    assert message in verdict.reason
    assert (verdict.target_build, verdict.findings, verdict.remedy) == (None, (), None)


# One pair per rule, with the reason and fix it gives, word for word.
WORDING: dict[str, tuple[dict[str, t.Any], tuple[str, str]]] = {
    "no_source": (
        {"target": read(), "source": None, "source_name": None},
        (
            "kms-new has no kms_source_host: the gate cannot tell which server it must match.",
            "Set the host variable kms_source_host of kms-new to its old KM Server.",
        ),
    ),
    "source_not_in_inventory": (
        {"target": read(), "source": None, "source_name": "kms-gone", "in_inventory": False},
        (
            "kms-new's kms_source_host 'kms-gone' is not a host of this inventory.",
            "Add kms-gone to the inventory (group kms_sources) with its WinRM settings, or fix "
            "kms_source_host of kms-new.",
        ),
    ),
    "own_source": (
        {"target": read(), "source": None, "source_name": "kms-new"},
        (
            "kms-new is its own kms_source_host.",
            "Set kms_source_host of kms-new to the old KM Server it replaces.",
        ),
    ),
    "target_unreachable": (
        {"target": UNREACHABLE, "source": read()},
        (
            "kms-new (http://x): unreachable: connection refused",
            "Make kms-new reachable over WinRM (see the message), then run again.",
        ),
    ),
    "target_not_read": (
        {"target": {"failed": True, "msg": "kms-new: refused the credentials"}, "source": read()},
        (
            "kms-new: refused the credentials",
            "Fix what the message says on kms-new, then run again.",
        ),
    ),
    "source_unreachable": (
        {"target": read(), "source": NOT_TRUSTED},
        (
            "kms-old: TLS certificate not trusted",
            "Make kms-old reachable over WinRM (see the message), then run again.",
        ),
    ),
    "source_not_read": (
        {"target": read(), "source": REFUSED},
        (
            "kms-old: refused the credentials",
            "Fix what the message says on kms-old, then run again.",
        ),
    ),
    "source_without_exchange": (
        {"target": read(), "source": read(None)},
        (
            "kms-old has no Exchange installed, so there is nothing to compare.",
            "Check that kms_source_host of kms-new names the old KM Server, and that kms-old is "
            "the right host.",
        ),
    ),
    "source_without_kms": (
        {"target": read(), "source": read(kms=False)},
        (
            "kms-old runs Exchange 5.5 SP3 but has no KM Server installed (MSExchangeKMS absent).",
            "Check that kms_source_host of kms-new names the server KM Server moved from.",
        ),
    ),
    "target_without_exchange": (
        {"target": read(None), "source": read()},
        (
            "kms-new has no Exchange installed, so there is nothing to compare.",
            "Check that kms_source_host of kms-new names the old KM Server, and that kms-new is "
            "the right host.",
        ),
    ),
    "target_without_kms": (
        {"target": read("6.0.6249.0", None, kms=False), "source": read()},
        (
            "kms-new runs Exchange 2000 Server SP3 but has no KM Server installed (MSExchangeKMS "
            "absent).",
            "Install KM Server on kms-new from the Exchange CD, then reapply Exchange 5.5 SP3 "
            "(KB Q192044).",
        ),
    ),
    "different_family": (
        {"target": read("6.0.6249.0", "6.0.6249.0"), "source": read()},
        (
            "kms-new runs Exchange 2000 Server SP3 (6.0.6249) but kms-old runs Exchange 5.5 SP3 "
            "(5.5.2650): they are different Exchange versions, and a KM database moves only "
            "between servers of the same version and service pack (KB Q259906, Q155216).",
            "Move KM Server to a server that runs Exchange 5.5 SP3 (KB Q154531).",
        ),
    ),
    "sp_behind": (
        {"target": read("5.5.2448.0", "5.5.2448.0"), "source": read()},
        (
            "kms-new runs Exchange 5.5 SP2 (5.5.2448) but kms-old runs Exchange 5.5 SP3 "
            "(5.5.2650) and last ran the KM database on 5.5.2650: KMS will exit with event 5389 "
            "(KB Q259906).",
            "Reapply Exchange 5.5 SP3 on kms-new (playbook exchops.kms.remediate_kms_move).",
        ),
    ),
    "binary_unknown": (
        {"target": read(kms_binary=None), "source": read()},
        (
            "kms-new runs Exchange 5.5 SP3 but the version of its Kmserver.exe could not be "
            "read, so the KM binaries cannot be checked against the service pack.",
            "Check Kmserver.exe's version on kms-new by hand (file properties); if it is older "
            "than 5.5.2650, reapply Exchange 5.5 SP3 on kms-new (playbook "
            "exchops.kms.remediate_kms_move).",
        ),
    ),
    "binary_behind": (
        {"target": read(kms_binary="5.5.1960.8"), "source": read()},
        (
            "kms-new runs Exchange 5.5 SP3 (5.5.2650) but its KM Server binaries are Exchange "
            "5.5 RTM (5.5.1960) while kms-old last ran the KM database on 5.5.2650: KMS will exit "
            "with event 5389 (KB Q259906).",
            "Reapply Exchange 5.5 SP3 on kms-new (playbook exchops.kms.remediate_kms_move).",
        ),
    ),
    "newer_target_allowed": (
        {"target": read("5.5.2653.0", "5.5.2653.12"), "source": read(), "allow_newer": True},
        (
            "kms-new runs Exchange 5.5 SP4 (5.5.2653), later than kms-old's Exchange 5.5 SP3 "
            "(5.5.2650), which is allowed; its KM binaries (5.5.2653) match its service pack.",
            "Nothing to do.",
        ),
    ),
    "newer_target": (
        {"target": read("5.5.2653.0", "5.5.2653.12"), "source": read()},
        (
            "kms-new runs Exchange 5.5 SP4 (5.5.2653), later than kms-old's Exchange 5.5 SP3 "
            "(5.5.2650). KB Q259906 asks for the same version and service pack on both servers.",
            "Apply Exchange 5.5 SP4 on kms-old too, or set sp_parity_allow_newer_target: true if "
            "a later service pack on the new server is intended.",
        ),
    ),
    "match": (
        {"target": read(), "source": read()},
        (
            "kms-new and kms-old both run Exchange 5.5 SP3 (5.5.2650), and kms-new's KM Server "
            "binaries (5.5.2650) are on that service pack.",
            "Nothing to do.",
        ),
    ),
}


def test_every_rule_has_its_wording_and_a_pair_here_that_shows_it() -> None:
    assert [rule.id for rule in PAIR_RULES] == list(PAIR_MESSAGES) == list(WORDING)


@pytest.mark.parametrize("rule", list(WORDING))
def test_each_rule_gives_its_reason_and_fix_word_for_word(rule: str) -> None:
    case, (reason, fix) = WORDING[rule]
    assert rule_of(**case) == rule
    verdict = judge(**case)
    assert (verdict.reason, verdict.fix) == (reason, fix)


@pytest.mark.parametrize(
    ("target", "source", "reason"),
    [
        (
            read("6.0.6249.0", "6.0.4417.0"),
            read("6.0.6249.0", "6.0.6249.0"),
            "kms-new runs Exchange 2000 Server SP3 (6.0.6249) but its KM Server binaries are "
            "Exchange 2000 Server RTM (6.0.4417) while kms-old last ran the KM database on "
            "6.0.6249: KMS will exit with event 5389 (KB Q259906, written for Exchange 5.5; for "
            "Exchange 2000 the link is inferred).",
        ),
        (
            read("6.0.5762.0", "6.0.5762.0"),
            read("6.0.6249.0", "6.0.6249.0"),
            "kms-new runs Exchange 2000 Server SP2 (6.0.5762) but kms-old runs Exchange 2000 "
            "Server SP3 (6.0.6249) and last ran the KM database on 6.0.6249: KMS will exit with "
            "event 5389 (KB Q259906, written for Exchange 5.5; for Exchange 2000 the link is "
            "inferred).",
        ),
    ],
)
def test_on_exchange_2000_the_5389_link_to_q259906_is_said_to_be_inferred(
    target: dict, source: dict, reason: str
) -> None:
    assert judge(target, source).reason == reason


def test_a_newer_target_that_is_allowed_says_so_in_its_findings() -> None:
    verdict = judge(read("5.5.2653.0", "5.5.2653.12"), read(), True)
    assert verdict.findings == (
        "kms-new runs a later build (5.5.2653) than kms-old (5.5.2650); allowed by "
        "sp_parity_allow_newer_target",
    )


@pytest.mark.parametrize(
    ("target", "source", "reason", "fix"),
    [
        ({"unreachable": True}, read(), "kms-new could not be reached", "Make kms-new reachable"),
        (read(), {"skipped": True}, "kms-old: no Exchange facts were read", "on kms-old,"),
        (read(), {"changed": False}, "kms-old: no Exchange facts were read", "on kms-old,"),
        (None, read(), "kms-new: not read", "on kms-new,"),
    ],
)
def test_a_read_without_a_message_is_explained_all_the_same(
    target: dict | None, source: dict | None, reason: str, fix: str
) -> None:
    verdict = judge(target, source)
    assert verdict.reason == reason
    assert fix in verdict.fix


def test_events_on_the_target_are_explained_and_5015_points_to_q274321() -> None:
    events = [
        EVENT_5389,
        {"id": 5015, "source": "MSExchangeKMS", "time": "t"},
        {"id": 5057, "source": "msexchangekms", "time": "t"},
    ]
    verdict = judge(read(kms_binary="5.5.1960.8", events=events), read())
    text = " ".join(verdict.findings)
    assert "event 5389 at 2001-03-14T09:12:40+00:00" in text
    assert "KB Q274321" in text and "KB Q184420" in text


def test_an_old_5389_on_a_fixed_pair_with_kms_running_is_called_history() -> None:
    fixed = read(events=[EVENT_5389])
    fixed["ansible_facts"]["exchange"]["kms"]["service"]["state"] = "running"
    verdict = judge(fixed, read())
    assert verdict.status == "match"
    (finding,) = verdict.findings
    assert finding.startswith("event 5389 at 2001-03-14T09:12:40+00:00: MSExchangeKMS exited then")
    assert "from before the fix" in finding and "reapply" not in finding
    # Matched but KMS not running: the 5389 keeps its full meaning.
    stopped = judge(read(events=[EVENT_5389]), read())
    assert "reapply the SP" in stopped.findings[0]


def test_builds_are_compared_as_integers_not_strings() -> None:
    # As strings, "5.5.2650" < "5.5.999" would call SP3 older than a (made-up) build 999.
    target = read("5.5.2650.0")
    source = read("5.5.2650.0")
    source["ansible_facts"]["exchange"]["build"] = "5.5.999.0"
    verdict = judge(target, source)
    assert verdict.status == "mismatch"
    assert "later than kms-old's" in verdict.reason


def report_for(*statuses: str | None) -> dict[str, t.Any]:
    verdicts: list[dict[str, t.Any] | None] = []
    for index, status in enumerate(statuses):
        if status is None:
            verdicts.append(None)
            continue
        target = read() if status == "match" else read(kms_binary="5.5.1960.8")
        if status == "unreachable":
            target = {"unreachable": True, "msg": "down"}
        verdict = judge_pair(
            f"new-{index}",
            f"old-{index}",
            target,
            read(),
            allow_newer_target=False,
            source_in_inventory=True,
        )
        verdicts.append(verdict.to_dict())
    return build_report(
        verdicts, [f"new-{index}" for index in range(len(statuses))], "2026-11-27T05:00:00Z"
    )


def test_a_report_has_one_valid_pair_per_target_and_fails_unless_all_match(
    report_schema: t.Callable[[str], dict[str, t.Any]],
) -> None:
    report = report_for("match", "mismatch", "unreachable")
    jsonschema.validate(report, report_schema(SCHEMA))
    assert [pair["target"] for pair in report["pairs"]] == ["new-0", "new-1", "new-2"]
    assert report["counts"] == {"match": 1, "mismatch": 1, "unreachable": 1, "error": 0}
    assert report["result"] == "fail"
    assert build_report([], [], "2026-11-27T05:00:00Z")["result"] == "fail"
    assert report_for("match", "match")["result"] == "pass"


def test_a_target_without_a_verdict_is_an_error_row_and_marks_the_report_partial(
    report_schema: t.Callable[[str], dict[str, t.Any]],
) -> None:
    report = report_for("match", None)
    jsonschema.validate(report, report_schema(SCHEMA))
    assert report["partial"] is True
    assert report["pairs"][1]["status"] == "error"
    assert "did not finish" in report["pairs"][1]["reason"]


def test_markdown_has_one_row_per_pair_and_escapes_pipes() -> None:
    report = report_for("match", "mismatch")
    report["pairs"][0]["reason"] = "a | b\nc"
    markdown = to_markdown(report)
    rows = [line for line in markdown.splitlines() if line.startswith("| new-")]
    assert len(rows) == 2
    assert "a \\| b c" in rows[0]
    assert "Result: **FAIL**" in markdown


def test_junit_has_a_testcase_per_pair_with_failures_and_errors() -> None:
    root = ET.fromstring(to_junit(report_for("match", "mismatch", "unreachable")))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == [
        "new-0 matches old-0",
        "new-1 matches old-1",
        "new-2 matches old-2",
    ]
    assert cases[1].find("failure") is not None and cases[2].find("error") is not None


@pytest.mark.parametrize(
    ("target", "remedy", "remedy_build"),
    [
        (read(kms_binary="5.5.1960.8"), "reapply_sp", "5.5.2650"),
        (read("5.5.2448.0", "5.5.2448.0"), "reapply_sp", "5.5.2650"),
        (read("5.5.2653.0", "5.5.2653.12"), None, None),
        (read("6.0.6249.0", "6.0.6249.0"), None, None),
        (read(), None, None),
    ],
)
def test_only_mismatches_a_service_pack_fixes_carry_a_remedy(
    target: dict, remedy: str | None, remedy_build: str | None
) -> None:
    verdict = judge(target, read())
    assert (verdict.remedy, verdict.remedy_build) == (remedy, remedy_build)
