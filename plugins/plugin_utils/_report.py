# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The check_kms_move report: report.json (schema docs/schemas/kms_report.schema.json), report.md
for people and junit.xml for CI systems, one row / testcase per pair, unreachable ones included.

Ansible's own junit callback drops unreachable hosts; here every target of the inventory gets a
row, and a target that produced no verdict (its play was cut short) is an `error` row and marks
the whole report `partial`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import typing as t
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ._parity import STATUSES

PAIR_KEYS = (
    "target",
    "source",
    "status",
    "target_build",
    "source_build",
    "kms_binary_build",
    "reason",
    "fix",
)
OPTIONAL_PAIR_KEYS = (
    "target_release",
    "source_release",
    "findings",
    "remedy",
    "remedy_build",
    "database_build",
    "database_build_from",
)
# What each remedy of _parity.REMEDIES asks for, in the reports.
REMEDY_WORDS = {
    "reapply_sp": "reapply the service pack {build} on the target (playbook "
    "exchops.kms.remediate_kms_move)",
    "install_hotfix": "install the KM Server hotfix whose Kmserver.exe is {build}, named in the "
    "fix (the remediation refuses it: it reapplies service packs only)",
}
_ICONS = {
    "match": "✅ match",
    "mismatch": "❌ mismatch",
    "unreachable": "⚠️ unreachable",
    "error": "❌ error",
}


def build_report(
    verdicts: t.Iterable[t.Mapping[str, t.Any] | None],
    targets: t.Sequence[str],
    generated: str,
    sources: t.Mapping[str, str | None] | None = None,
) -> dict[str, t.Any]:
    """One pair per target, in inventory order. `verdicts` line up with `targets`; None means the
    target produced none (its run was cut short)."""
    pairs = []
    partial = False
    for target, verdict in zip(targets, verdicts):
        if not verdict or "status" not in verdict:
            # No verdict, or the task failed before judging (wrong options): its message says why.
            partial = True
            failure = (
                f": {verdict['msg']}"
                if verdict and verdict.get("msg")
                else " (the run was cut short or the host failed before it was compared)"
            )
            verdict = {
                "target": target,
                "source": (sources or {}).get(target) or "(unknown)",
                "status": "error",
                "target_build": None,
                "source_build": None,
                "kms_binary_build": None,
                "reason": f"{target}: the check did not finish{failure}; see the Ansible output for "
                "this host.",
                "fix": "Fix what the Ansible output says for this host, then run the gate again.",
            }
        pair = {key: verdict.get(key) for key in PAIR_KEYS}
        for key in OPTIONAL_PAIR_KEYS:
            if key in verdict:
                pair[key] = verdict[key]
        pairs.append(pair)
    counts = {status: sum(1 for pair in pairs if pair["status"] == status) for status in STATUSES}
    return {
        "generated": generated,
        "partial": partial,
        "result": "pass" if pairs and counts["match"] == len(pairs) and not partial else "fail",
        "counts": counts,
        "pairs": pairs,
    }


def markdown_cell(value: t.Any) -> str:
    """`value` as one Markdown table cell (also for the fleet parity report)."""
    text = "" if value is None else str(value)
    # A table cell is one line, and | would end it.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def to_markdown(report: t.Mapping[str, t.Any]) -> str:
    counts = report["counts"]
    lines = [
        "# KM Server move check (KB Q259906)",
        "",
        f"Generated {report['generated']}. Result: **{report['result'].upper()}**"
        + (" (partial: some targets were not checked)" if report["partial"] else "")
        + f" — {counts['match']} match, {counts['mismatch']} mismatch, "
        f"{counts['unreachable']} unreachable, {counts['error']} error.",
        "",
        "| target | source | status | target build | source build | Kmserver.exe | reason | fix |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for pair in report["pairs"]:
        lines.append(
            "| "
            + " | ".join(
                markdown_cell(value)
                for value in (
                    pair["target"],
                    pair["source"],
                    _ICONS.get(pair["status"], pair["status"]),
                    pair["target_build"],
                    pair["source_build"],
                    pair["kms_binary_build"],
                    pair["reason"],
                    pair["fix"],
                )
            )
            + " |"
        )
    findings = [
        (pair["target"], finding)
        for pair in report["pairs"]
        for finding in pair.get("findings") or []
    ]
    remedies = [pair for pair in report["pairs"] if pair.get("remedy")]
    if remedies:
        lines += ["", "## Remedies", ""]
        lines += [
            f"- **{markdown_cell(pair['target'])}**: `{pair['remedy']}`, "
            f"{markdown_cell(remedy_text(pair))}"
            for pair in remedies
        ]
    if findings:
        lines += ["", "## Findings", ""]
        lines += [
            f"- **{markdown_cell(target)}**: {markdown_cell(finding)}"
            for target, finding in findings
        ]
    return "\n".join(lines) + "\n"


def remedy_text(pair: t.Mapping[str, t.Any]) -> str:
    """What a pair's remedy asks for, in words."""
    words = REMEDY_WORDS.get(pair["remedy"], "{build}")
    return words.format(build=pair.get("remedy_build") or "(unknown build)")


def to_junit(report: t.Mapping[str, t.Any]) -> str:
    cases = []
    for pair in report["pairs"]:
        detail = f"{pair['reason']}\nFix: {pair['fix']}"
        if pair.get("remedy"):
            detail += f"\nRemedy: {pair['remedy']}, {remedy_text(pair)}"
        if pair.get("findings"):
            detail += "\n" + "\n".join(f"- {finding}" for finding in pair["findings"])
        outcome = {"mismatch": "failure", "unreachable": "error", "error": "error"}.get(
            pair["status"]
        )
        cases.append(
            JunitCase(
                f"{pair['target']} matches {pair['source']}",
                outcome,
                pair["status"],
                pair["reason"],
                detail,
            )
        )
    return junit_xml(
        "exchops.kms.check_kms_move",
        "KM Server move service-pack parity (KB Q259906)",
        report["generated"],
        cases,
    )


@dataclass(frozen=True)
class JunitCase:
    """One testcase: `outcome` "failure", "error" or None (passed; `detail` goes to system-out)."""

    name: str
    outcome: str | None
    kind: str  # the failure's or error's type attribute
    message: str
    detail: str


def junit_xml(
    suites_name: str, suite_name: str, generated: str, cases: t.Sequence[JunitCase]
) -> str:
    """A JUnit XML document of one testsuite: the gates' and the remediation's junit files, which
    CI systems read for failures (a failed check) and errors (a host that could not be checked)."""
    suites = ET.Element("testsuites", name=suites_name)
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=suite_name,
        tests=str(len(cases)),
        failures=str(sum(1 for case in cases if case.outcome == "failure")),
        errors=str(sum(1 for case in cases if case.outcome == "error")),
        skipped="0",
        timestamp=str(generated),
    )
    for case in cases:
        element = ET.SubElement(suite, "testcase", classname=suites_name, name=case.name)
        if case.outcome:
            ET.SubElement(element, case.outcome, message=case.message, type=case.kind).text = (
                case.detail
            )
        else:
            ET.SubElement(element, "system-out").text = case.detail
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


# ---------------------------------------------------------------------------------------------
# The remediate_kms_move report: how each pair's remediation ended.

# remediated: the SP was reapplied and the pair matches now; unchanged: it matched already;
# planned: check mode wrote its plan; failed: a step stopped it (`step` and `reason` say which
# and why); waiting_for_input: the SP's update.exe still runs but made no progress (an
# interactive prompt, KB Q191013, Q235978): the Exchange services it needs stopped are still
# stopped and KMS was not started; not_run: the host never reached the role's end nor a
# recorded failure. `sp_outcome` and `decided_by` carry the SP step's own outcome and the
# readings that decided it.
REMEDIATION_OUTCOMES = (
    "remediated",
    "unchanged",
    "planned",
    "failed",
    "waiting_for_input",
    "not_run",
)
_REMEDIATION_ICONS = {
    "remediated": "✅ remediated",
    "unchanged": "✅ unchanged",
    "planned": "📝 planned",
    "failed": "❌ failed",
    "waiting_for_input": "⏸️ waiting for input",
    "not_run": "❌ not run",
}


def remediation_outcome(
    target: str,
    host_vars: t.Mapping[str, t.Any] | None,
    check_mode: bool,
) -> dict[str, t.Any]:
    """One pair's row, from what its host recorded: `kms_remediate_result` (the role's end),
    `kms_remediate_failure` (the playbook's rescue) and `sp_parity_result` (its last check)."""
    host_vars = host_vars or {}
    # The role records through templates, where ansible-core before 2.19 renders None as '':
    # an empty value is an unknown one (None), on every line.
    parity = host_vars.get("sp_parity_result") or {}
    done = host_vars.get("kms_remediate_result") or {}
    failure = host_vars.get("kms_remediate_failure") or {}
    row: dict[str, t.Any] = {
        "target": target,
        "source": parity.get("source") or host_vars.get("kms_source_host") or "(unknown)",
        "outcome": "not_run",
        "step": None,
        "reason": "",
        "backup_path": done.get("backup_path") or failure.get("backup_path") or None,
        "build_before": done.get("build_before") or None,
        "build_after": done.get("build_after") or None,
        "kms_binary_before": done.get("kms_binary_before")
        or parity.get("kms_binary_build")
        or None,
        "kms_binary_after": done.get("kms_binary_after") or None,
        "sp_outcome": done.get("sp_outcome") or failure.get("sp_outcome") or None,
        "decided_by": list(done.get("decided_by") or failure.get("decided_by") or []),
    }
    if failure:
        reason = str(failure.get("reason") or "the remediation failed").strip()
        waiting = failure.get("sp_outcome") == "waiting_for_input"
        row.update(
            outcome="waiting_for_input" if waiting else "failed",
            step=failure.get("step"),
            reason=reason,
        )
    elif done:
        row.update(outcome="remediated", reason=done.get("reason") or "")
    elif parity.get("status") == "match" and check_mode and _kms_stopped(host_vars):
        row.update(
            outcome="planned",
            reason=f"{parity.get('reason') or ''} MSExchangeKMS is stopped: a run starts it.".strip(),
        )
    elif parity.get("status") == "match":
        row.update(outcome="unchanged", reason=parity.get("reason") or "")
    elif check_mode and parity:
        row.update(outcome="planned", reason=parity.get("reason") or "")
    else:
        row["reason"] = (
            f"{target}: the remediation did not finish and recorded no failure (the run was cut "
            "short, or the host was left out by --limit); see the Ansible output for this host."
        )
    return row


def _kms_stopped(host_vars: t.Mapping[str, t.Any]) -> bool:
    """Whether the target's last facts show KM Server installed with its service not running."""
    facts = host_vars.get("ansible_facts") or {}
    kms = (facts.get("exchange") or {}).get("kms") or {}
    state = (kms.get("service") or {}).get("state")
    return bool(kms.get("installed")) and state not in (None, "running", "absent")


def build_remediation_report(
    rows: t.Iterable[t.Mapping[str, t.Any]], generated: str, check_mode: bool
) -> dict[str, t.Any]:
    pairs = [dict(row) for row in rows]
    counts = {
        outcome: sum(1 for pair in pairs if pair["outcome"] == outcome)
        for outcome in REMEDIATION_OUTCOMES
    }
    ok = counts["remediated"] + counts["unchanged"] + counts["planned"]
    return {
        "generated": generated,
        "check_mode": bool(check_mode),
        "result": "pass" if pairs and ok == len(pairs) else "fail",
        "counts": counts,
        "pairs": pairs,
    }


def remediation_markdown(report: t.Mapping[str, t.Any]) -> str:
    counts = report["counts"]
    summary = ", ".join(
        f"{counts[outcome]} {outcome.replace('_', ' ')}" for outcome in REMEDIATION_OUTCOMES
    )
    lines = [
        "# KM Server move remediation (KB Q259906)"
        + (" — check mode" if report["check_mode"] else ""),
        "",
        f"Generated {report['generated']}. Result: **{report['result'].upper()}** — {summary}.",
        "",
        "| target | source | outcome | step | SP outcome | Kmserver.exe before | after | backup "
        "| reason |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for pair in report["pairs"]:
        cells = (
            pair["target"],
            pair["source"],
            _REMEDIATION_ICONS.get(pair["outcome"], pair["outcome"]),
            pair["step"],
            _sp_cell(pair),
            pair["kms_binary_before"],
            pair["kms_binary_after"],
            pair["backup_path"],
            pair["reason"],
        )
        lines.append("| " + " | ".join(markdown_cell(value) for value in cells) + " |")
    return "\n".join(lines) + "\n"


def _sp_cell(pair: t.Mapping[str, t.Any]) -> str | None:
    """The SP step's outcome with the readings that decided it."""
    outcome = pair.get("sp_outcome")
    if not outcome:
        return None
    readings = pair.get("decided_by") or []
    return outcome + (f" ({'; '.join(readings)})" if readings else "")


def remediation_junit(report: t.Mapping[str, t.Any]) -> str:
    cases = []
    for pair in report["pairs"]:
        detail = pair["reason"] + (
            f"\nBackup: {pair['backup_path']}" if pair["backup_path"] else ""
        )
        if pair.get("decided_by"):
            detail += "\nDecided by: " + "; ".join(pair["decided_by"])
        outcome = {"failed": "failure", "waiting_for_input": "failure", "not_run": "error"}.get(
            pair["outcome"]
        )
        kinds = {
            "failure": (
                "waiting_for_input" if pair["outcome"] == "waiting_for_input" else str(pair["step"])
            ),
            "error": "not_run",
        }
        cases.append(
            JunitCase(
                f"{pair['target']} remediated against {pair['source']}",
                outcome,
                kinds.get(outcome or "", ""),
                pair["reason"],
                detail if outcome else f"{pair['outcome']}: {detail}",
            )
        )
    return junit_xml(
        "exchops.kms.remediate_kms_move",
        "KM Server move remediation (KB Q259906)",
        report["generated"],
        cases,
    )
