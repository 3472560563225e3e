# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remediate_kms_move report (plugins/plugin_utils/_report.py): one row per target, whatever
happened to it, from what its host recorded."""

from __future__ import annotations

import json
import typing as t
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._report import (
    build_remediation_report,
    remediation_junit,
    remediation_markdown,
    remediation_outcome,
)

SCHEMA = "kms_remediation.schema.json"
MISMATCH = {
    "source": "kms-old",
    "status": "mismatch",
    "reason": "kms-new runs RTM KM binaries.",
    "kms_binary_build": "5.5.1960.8",
}
MATCH = {
    "source": "kms-old",
    "status": "match",
    "reason": "both on 5.5 SP3.",
    "kms_binary_build": "5.5.2650.12",
}
DONE = {
    "reason": "Reapplied the service pack.",
    "backup_path": "C:\\EXCHSRVR\\KMSDATA.backup-20261127-073531",
    "build_before": "5.5.2650.0",
    "build_after": "5.5.2650.0",
    "kms_binary_before": "5.5.1960.8",
    "kms_binary_after": "5.5.2650.12",
}
WAITING = {
    "step": "Reapply the source's service pack on the new KM Server",
    "reason": "kms-new: update.exe still runs and made no progress for 900 s.",
    "backup_path": "C:\\EXCHSRVR\\KMSDATA.backup-20261127-073531",
    "sp_outcome": "waiting_for_input",
    "decided_by": [
        "tasklist: update.exe running (PID 1324)",
        "setup log and Exchange BIN folder: unchanged for 900 s",
    ],
}
STOPPED_KMS = {"exchange": {"kms": {"installed": True, "service": {"state": "stopped"}}}}
FAILED = {
    "step": "Back up the KM database before anything changes",
    "reason": "kms-new: drive C: is full.  ",
    "backup_path": None,
}


@pytest.mark.parametrize(
    ("host_vars", "check_mode", "outcome"),
    [
        pytest.param(
            {"sp_parity_result": MATCH, "kms_remediate_result": DONE},
            False,
            "remediated",
            id="fixed",
        ),
        pytest.param({"sp_parity_result": MATCH}, False, "unchanged", id="matched already"),
        pytest.param(
            {"sp_parity_result": MATCH, "ansible_facts": STOPPED_KMS},
            True,
            "planned",
            id="check mode, KMS stopped",
        ),
        pytest.param(
            {"sp_parity_result": MATCH, "ansible_facts": STOPPED_KMS},
            False,
            "unchanged",
            id="KMS left stopped",
        ),
        pytest.param({"sp_parity_result": MISMATCH}, True, "planned", id="check mode"),
        pytest.param(
            {"sp_parity_result": MISMATCH, "kms_remediate_failure": FAILED},
            False,
            "failed",
            id="failed",
        ),
        pytest.param(
            {"sp_parity_result": MISMATCH, "kms_remediate_failure": WAITING},
            False,
            "waiting_for_input",
            id="update.exe waits at a prompt",
        ),
        pytest.param(
            {"sp_parity_result": MISMATCH}, False, "not_run", id="cut short after the check"
        ),
        pytest.param({"kms_source_host": "kms-old"}, False, "not_run", id="never checked"),
        pytest.param(None, False, "not_run", id="not in hostvars"),
    ],
)
def test_every_target_gets_one_outcome(
    host_vars: dict | None, check_mode: bool, outcome: str
) -> None:
    row = remediation_outcome("kms-new", host_vars, check_mode)
    assert row["target"] == "kms-new" and row["outcome"] == outcome
    assert row["source"] == ("kms-old" if host_vars else "(unknown)")
    assert row["reason"], "every row says why"


def test_a_failure_keeps_its_step_and_a_trimmed_reason_and_a_fix_keeps_its_builds() -> None:
    failed = remediation_outcome(
        "kms-new", {"sp_parity_result": MISMATCH, "kms_remediate_failure": FAILED}, False
    )
    assert (failed["step"], failed["reason"]) == (FAILED["step"], "kms-new: drive C: is full.")
    fixed = remediation_outcome(
        "kms-new", {"sp_parity_result": MATCH, "kms_remediate_result": DONE}, False
    )
    assert (fixed["kms_binary_before"], fixed["kms_binary_after"]) == ("5.5.1960.8", "5.5.2650.12")
    assert fixed["backup_path"] == DONE["backup_path"]


def test_a_failure_recorded_before_ansible_core_2_19_gives_the_same_row() -> None:
    # ansible-core 2.16 to 2.18 render None as '' in the role's set_fact templates.
    recorded = {**FAILED, "sp_outcome": None}
    rendered = {**FAILED, "backup_path": "", "sp_outcome": ""}
    assert remediation_outcome(
        "kms-new", {"sp_parity_result": MISMATCH, "kms_remediate_failure": rendered}, False
    ) == remediation_outcome(
        "kms-new", {"sp_parity_result": MISMATCH, "kms_remediate_failure": recorded}, False
    )


def test_the_report_passes_only_when_every_pair_is_fixed_unchanged_or_planned(
    report_schema: t.Callable[[str], dict[str, t.Any]],
) -> None:
    rows = [
        remediation_outcome("a", {"sp_parity_result": MATCH, "kms_remediate_result": DONE}, False),
        remediation_outcome("b", {"sp_parity_result": MATCH}, False),
    ]
    assert build_remediation_report(rows, "2026-11-27T07:00:00Z", False)["result"] == "pass"
    rows.append(remediation_outcome("c", {"sp_parity_result": MISMATCH}, False))
    report = build_remediation_report(rows, "2026-11-27T07:00:00Z", False)
    assert report["result"] == "fail"
    assert report["counts"] == {
        "remediated": 1,
        "unchanged": 1,
        "planned": 0,
        "failed": 0,
        "waiting_for_input": 0,
        "not_run": 1,
    }
    assert build_remediation_report([], "2026-11-27T07:00:00Z", False)["result"] == "fail"
    jsonschema.validate(json.loads(json.dumps(report)), report_schema(SCHEMA))


def test_markdown_and_junit_show_every_pair_with_failures_as_failures() -> None:
    rows = [
        remediation_outcome(
            "a|b", {"sp_parity_result": MATCH, "kms_remediate_result": DONE}, False
        ),
        remediation_outcome(
            "c", {"sp_parity_result": MISMATCH, "kms_remediate_failure": FAILED}, False
        ),
        remediation_outcome("d", None, False),
        remediation_outcome(
            "e", {"sp_parity_result": MISMATCH, "kms_remediate_failure": WAITING}, False
        ),
    ]
    report = build_remediation_report(rows, "2026-11-27T07:00:00Z", False)
    markdown = remediation_markdown(report)
    assert (
        "1 remediated, 0 unchanged, 0 planned, 1 failed, 1 waiting for input, 1 not run" in markdown
    )
    assert "| a\\|b | kms-old | ✅ remediated |" in markdown
    assert (
        "| e | kms-old | ⏸️ waiting for input | Reapply the source's service pack on the new KM "
        "Server | waiting_for_input (tasklist: update.exe running (PID 1324); setup log and "
        "Exchange BIN folder: unchanged for 900 s) |" in markdown
    )
    assert len([line for line in markdown.splitlines() if line.startswith("| ")]) == 5  # header + 4
    suite = ET.fromstring(remediation_junit(report)).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "2", "1")
    failure = suite.find("testcase[@name='c remediated against kms-old']/failure")
    assert failure is not None and failure.get("type") == FAILED["step"]
    waiting = suite.find("testcase[@name='e remediated against kms-old']/failure")
    assert waiting is not None and waiting.get("type") == "waiting_for_input"
    assert "Decided by: tasklist: update.exe running (PID 1324)" in (waiting.text or "")
