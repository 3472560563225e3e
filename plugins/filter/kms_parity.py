# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters behind the sp_parity role and the check_kms_move gate (docs: kms_*.yml beside this).

They keep the comparison of builds and the report formats in Python (plugin_utils), so the role
holds no logic a template could get wrong (a build is never compared as a string).
"""
from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ..plugin_utils._parity import judge_pair
from ..plugin_utils._report import build_report, to_junit, to_markdown


def kms_parity(
    target_read: t.Mapping[str, t.Any] | None,
    source_read: t.Mapping[str, t.Any] | None,
    target: str,
    source: str | None,
    allow_newer_target: bool = False,
    source_in_inventory: bool = True,
) -> dict[str, t.Any]:
    if not isinstance(target, str) or not target:
        raise AnsibleFilterError("kms_parity: the target host name must be a non-empty string")
    try:
        allow_newer = boolean(allow_newer_target, strict=True)
    except TypeError:
        raise AnsibleFilterError(
            f"kms_parity: allow_newer_target is {allow_newer_target!r}, not true or false"
        ) from None
    verdict = judge_pair(
        target,
        source or None,
        target_read,
        source_read,
        allow_newer,
        bool(source_in_inventory),
    )
    return verdict.to_dict()


def kms_report(
    verdicts: t.Sequence[t.Mapping[str, t.Any] | None] | t.Mapping[str, t.Any],
    targets: t.Sequence[str],
    generated: str,
    sources: t.Mapping[str, str | None] | None = None,
) -> dict[str, t.Any]:
    if isinstance(verdicts, t.Mapping):
        # hostvars: each target's sp_parity_result, None where the target has none (a host
        # that failed or was cut short before its verdict: Jinja cannot ask hostvars for a
        # variable a host may lack without failing).
        hostvars = verdicts
        verdicts = [
            (hostvars[target].get("sp_parity_result") if target in hostvars else None)
            for target in targets
        ]
        sources = sources or {
            target: hostvars[target].get("kms_source_host") if target in hostvars else None
            for target in targets
        }
    if len(verdicts) != len(targets):
        raise AnsibleFilterError(
            f"kms_report: {len(verdicts)} verdicts for {len(targets)} targets; give one (or none) per target"
        )
    return build_report(list(verdicts), list(targets), generated, sources)


def kms_inventory_pairs(
    hostvars: t.Mapping[str, t.Any], targets: t.Sequence[str]
) -> list[list[str]]:
    """[target, its kms_source_host, the address it is reached at] for each target. Read in
    Python: Jinja cannot ask hostvars for a variable some hosts lack without failing."""
    listed = []
    for target in targets:
        host_vars = hostvars[target] if target in hostvars else {}
        source = host_vars.get("kms_source_host") or ""
        address = host_vars.get("ansible_host") or target
        listed.append([target, str(source), str(address)])
    return listed


def kms_report_markdown(report: t.Mapping[str, t.Any]) -> str:
    return to_markdown(report)


def kms_report_junit(report: t.Mapping[str, t.Any]) -> str:
    return to_junit(report)


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            "kms_parity": kms_parity,
            "kms_report": kms_report,
            "kms_inventory_pairs": kms_inventory_pairs,
            "kms_report_markdown": kms_report_markdown,
            "kms_report_junit": kms_report_junit,
        }
