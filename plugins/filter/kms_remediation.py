# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters behind the remediate_kms_move report (docs: kms_remediation_*.yml beside this)."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ..plugin_utils._report import (
    build_remediation_report,
    remediation_junit,
    remediation_markdown,
    remediation_outcome,
)


def kms_remediation_report(
    hostvars: t.Mapping[str, t.Any],
    targets: t.Sequence[str],
    generated: str,
    check_mode: bool = False,
) -> dict[str, t.Any]:
    if isinstance(targets, str):
        raise AnsibleFilterError("kms_remediation_report: targets must be a list of host names")
    rows = [
        remediation_outcome(
            target, hostvars[target] if target in hostvars else None, bool(check_mode)
        )
        for target in targets
    ]
    return build_remediation_report(rows, generated, bool(check_mode))


def kms_remediation_markdown(report: t.Mapping[str, t.Any]) -> str:
    return remediation_markdown(report)


def kms_remediation_junit(report: t.Mapping[str, t.Any]) -> str:
    return remediation_junit(report)


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            "kms_remediation_report": kms_remediation_report,
            "kms_remediation_markdown": kms_remediation_markdown,
            "kms_remediation_junit": kms_remediation_junit,
        }
