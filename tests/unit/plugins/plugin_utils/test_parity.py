# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verdicts on KM Server move pairs (plugins/plugin_utils/_parity.py) and the report formats."""

from __future__ import annotations

import json
import typing as t
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._parity import judge_pair
from ansible_collections.exchops.kms.plugins.plugin_utils._report import (
    build_report,
    to_junit,
    to_markdown,
)

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[4] / "docs/schemas/kms_report.schema.json").read_text()
)
RELEASES = {
    "5.5.1960.8": "Exchange Server 5.5 RTM",
    "5.5.2448.0": "Exchange Server 5.5 SP2",
    "5.5.2650.0": "Exchange Server 5.5 SP3",
    "5.5.2650.12": "Exchange Server 5.5 SP3",
    "5.5.2653.0": "Exchange Server 5.5 SP4",
    "5.5.2653.12": "Exchange Server 5.5 SP4",
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


@pytest.mark.parametrize(
    ("target", "source", "allow_newer", "status", "reason_part", "fix_part"),
    [
        (read(), read(), False, "match", "both run Exchange 5.5 SP3 (5.5.2650)", "Nothing to do"),
        (
            read(kms_binary="5.5.1960.8"),
            read(),
            False,
            "mismatch",
            "kms-new runs Exchange 5.5 SP3 (5.5.2650) but its KM Server binaries are Exchange 5.5 RTM "
            "(5.5.1960) while kms-old last ran the KM database on 5.5.2650: KMS will exit with event "
            "5389 (KB Q259906).",
            "Reapply Exchange 5.5 SP3 on kms-new (playbook exchops.kms.remediate_kms_move).",
        ),
        (
            read("5.5.2448.0", "5.5.2448.0"),
            read(),
            False,
            "mismatch",
            "kms-new runs Exchange 5.5 SP2 (5.5.2448) but kms-old runs Exchange 5.5 SP3 (5.5.2650)",
            "Reapply Exchange 5.5 SP3 on kms-new",
        ),
        (
            read("5.5.2653.0", "5.5.2653.12"),
            read(),
            False,
            "mismatch",
            "later than kms-old's",
            "sp_parity_allow_newer_target",
        ),
        (
            read("5.5.2653.0", "5.5.2653.12"),
            read(),
            True,
            "match",
            "which is allowed",
            "Nothing to do",
        ),
        (
            read("6.0.6249.0", None, kms=False),
            read(),
            False,
            "error",
            "has no KM Server installed",
            "Install KM Server on kms-new",
        ),
        (
            read("6.0.6249.0", "6.0.6249.0"),
            read(),
            False,
            "mismatch",
            "different Exchange versions",
            "KB Q154531",
        ),
        (
            read(None),
            read(),
            False,
            "error",
            "kms-new has no Exchange installed",
            "kms_source_host",
        ),
        (
            read(),
            read(None),
            False,
            "error",
            "kms-old has no Exchange installed",
            "kms_source_host",
        ),
        (
            read(),
            read(kms=False),
            False,
            "error",
            "kms-old runs Exchange 5.5 SP3 but has no KM Server",
            "names the server KM Server moved from",
        ),
        (read(kms_binary=None), read(), False, "error", "could not be read", "by hand"),
        (
            {"unreachable": True, "msg": "kms-new (http://x): unreachable: connection refused"},
            read(),
            False,
            "unreachable",
            "connection refused",
            "Make kms-new reachable",
        ),
        (
            read(),
            {"unreachable": True, "msg": "kms-old: TLS certificate not trusted"},
            False,
            "unreachable",
            "TLS certificate",
            "Make kms-old reachable",
        ),
        (
            read(),
            {"failed": False, "msg": "kms-old: refused the credentials"},
            False,
            "error",
            "refused the credentials",
            "Fix what the message says on kms-old",
        ),
        (read(), {"skipped": True}, False, "error", "no Exchange facts were read", "kms-old"),
    ],
)
def test_each_kind_of_pair_gets_its_verdict_reason_and_fix(
    target: dict, source: dict, allow_newer: bool, status: str, reason_part: str, fix_part: str
) -> None:
    verdict = judge_pair("kms-new", "kms-old", target, source, allow_newer)
    assert verdict.status == status
    assert reason_part in verdict.reason
    assert fix_part in verdict.fix


@pytest.mark.parametrize(
    ("source", "in_inventory", "message"),
    [
        (None, True, "kms-new has no kms_source_host"),
        ("", True, "kms-new has no kms_source_host"),
        ("kms-new", True, "kms-new is its own kms_source_host"),
        ("kms-gone", False, "kms_source_host 'kms-gone' is not a host of this inventory"),
    ],
)
def test_a_bad_source_is_an_error_naming_the_variable(
    source: str | None, in_inventory: bool, message: str
) -> None:
    verdict = judge_pair("kms-new", source, read(), None, source_in_inventory=in_inventory)
    assert verdict.status == "error"
    assert message in verdict.reason


def test_events_on_the_target_are_explained_and_5015_points_to_q274321() -> None:
    events = [
        EVENT_5389,
        {"id": 5015, "source": "MSExchangeKMS", "time": "t"},
        {"id": 5057, "source": "msexchangekms", "time": "t"},
    ]
    verdict = judge_pair("kms-new", "kms-old", read(kms_binary="5.5.1960.8", events=events), read())
    text = " ".join(verdict.findings)
    assert "event 5389 at 2001-03-14T09:12:40+00:00" in text
    assert "KB Q274321" in text and "KB Q184420" in text


def test_an_old_5389_on_a_fixed_pair_with_kms_running_is_called_history() -> None:
    fixed = read(events=[EVENT_5389])
    fixed["ansible_facts"]["exchange"]["kms"]["service"]["state"] = "running"
    verdict = judge_pair("kms-new", "kms-old", fixed, read())
    assert verdict.status == "match"
    (finding,) = verdict.findings
    assert finding.startswith("event 5389 at 2001-03-14T09:12:40+00:00: MSExchangeKMS exited then")
    assert "from before the fix" in finding and "reapply" not in finding
    # Matched but KMS not running: the 5389 keeps its full meaning.
    stopped = judge_pair("kms-new", "kms-old", read(events=[EVENT_5389]), read())
    assert "reapply the SP" in stopped.findings[0]


def test_builds_are_compared_as_integers_not_strings() -> None:
    # As strings, "5.5.2650" < "5.5.999" would call SP3 older than a (made-up) build 999.
    target = read("5.5.2650.0")
    source = read("5.5.2650.0")
    source["ansible_facts"]["exchange"]["build"] = "5.5.999.0"
    verdict = judge_pair("kms-new", "kms-old", target, source)
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
        verdicts.append(judge_pair(f"new-{index}", f"old-{index}", target, read()).to_dict())
    return build_report(
        verdicts, [f"new-{index}" for index in range(len(statuses))], "2026-11-27T05:00:00Z"
    )


def test_a_report_has_one_valid_pair_per_target_and_fails_unless_all_match() -> None:
    report = report_for("match", "mismatch", "unreachable")
    jsonschema.validate(report, SCHEMA)
    assert [pair["target"] for pair in report["pairs"]] == ["new-0", "new-1", "new-2"]
    assert report["counts"] == {"match": 1, "mismatch": 1, "unreachable": 1, "error": 0}
    assert report["result"] == "fail"
    assert build_report([], [], "2026-11-27T05:00:00Z")["result"] == "fail"
    assert report_for("match", "match")["result"] == "pass"


def test_a_target_without_a_verdict_is_an_error_row_and_marks_the_report_partial() -> None:
    report = report_for("match", None)
    jsonschema.validate(report, SCHEMA)
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
    verdict = judge_pair("kms-new", "kms-old", target, read())
    assert (verdict.remedy, verdict.remedy_build) == (remedy, remedy_build)
