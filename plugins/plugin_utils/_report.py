# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The check_kms_move report: report.json (DESIGN.md "Contracts"), report.md for people and
junit.xml for CI systems, one row / testcase per pair, unreachable ones included.

Ansible's own junit callback drops unreachable hosts; here every target of the inventory gets a
row, and a target that produced no verdict (its play was cut short) is an `error` row and marks
the whole report `partial`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import typing as t
import xml.etree.ElementTree as ET

from ._parity import STATUSES

PAIR_KEYS = (
    "target", "source", "status", "target_build", "source_build", "kms_binary_build", "reason", "fix",
)
_ICONS = {"match": "✅ match", "mismatch": "❌ mismatch", "unreachable": "⚠️ unreachable", "error": "❌ error"}


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
        if not verdict:
            partial = True
            verdict = {
                "target": target,
                "source": (sources or {}).get(target) or "(unknown)",
                "status": "error",
                "target_build": None,
                "source_build": None,
                "kms_binary_build": None,
                "reason": f"{target}: the check did not finish (the run was cut short or the host "
                "failed before it was compared); see the Ansible output for this host.",
                "fix": "Fix what the Ansible output says for this host, then run the gate again.",
            }
        pair = {key: verdict.get(key) for key in PAIR_KEYS}
        for key in ("target_release", "source_release", "findings", "remedy", "remedy_build"):
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


def _cell(value: t.Any) -> str:
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
                _cell(value)
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
    findings = [(pair["target"], finding) for pair in report["pairs"] for finding in pair.get("findings") or []]
    if findings:
        lines += ["", "## Findings", ""]
        lines += [f"- **{_cell(target)}**: {_cell(finding)}" for target, finding in findings]
    return "\n".join(lines) + "\n"


def to_junit(report: t.Mapping[str, t.Any]) -> str:
    counts = report["counts"]
    failures = counts["mismatch"]
    errors = counts["unreachable"] + counts["error"]
    suites = ET.Element("testsuites", name="exchops.kms.check_kms_move")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="KM Server move service-pack parity (KB Q259906)",
        tests=str(len(report["pairs"])),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        timestamp=str(report["generated"]),
    )
    for pair in report["pairs"]:
        case = ET.SubElement(
            suite,
            "testcase",
            classname="exchops.kms.check_kms_move",
            name=f"{pair['target']} matches {pair['source']}",
        )
        detail = f"{pair['reason']}\nFix: {pair['fix']}"
        if pair.get("findings"):
            detail += "\n" + "\n".join(f"- {finding}" for finding in pair["findings"])
        if pair["status"] == "mismatch":
            ET.SubElement(case, "failure", message=pair["reason"], type="mismatch").text = detail
        elif pair["status"] in ("unreachable", "error"):
            ET.SubElement(case, "error", message=pair["reason"], type=pair["status"]).text = detail
        else:
            ET.SubElement(case, "system-out").text = detail
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
