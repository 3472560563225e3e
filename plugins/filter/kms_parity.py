# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters behind the sp_parity role and the check_kms_move gate (docs: kms_*.yml beside this).

They keep the comparison of builds and the report formats in Python (plugin_utils), so the role
holds no logic a template could get wrong (a build is never compared as a string).
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ..plugin_utils._parity import judge_pair, recorded_builds, refuse_listed_twice
from ..plugin_utils._report import build_report, to_junit, to_markdown


def kms_parity(
    target_read: t.Mapping[str, t.Any] | None,
    source_read: t.Mapping[str, t.Any] | None,
    target: str,
    source: str | None,
    allow_newer_target: bool = False,
    source_in_inventory: bool = True,
    listed_twice: t.Mapping[str, str] | None = None,
    backup_manifest: t.Mapping[str, t.Any] | None = None,
    database_build: str | None = "",
) -> dict[str, t.Any]:
    if not isinstance(target, str) or not target:
        raise AnsibleFilterError("kms_parity: the target host name must be a non-empty string")
    try:
        allow_newer = boolean(allow_newer_target, strict=True)
    except TypeError:
        raise AnsibleFilterError(
            f"kms_parity: allow_newer_target is {allow_newer_target!r}, not true or false"
        ) from None
    # The same records as kms_move_facts's options, read by the same function (_parity), so the
    # two judge a pair alike. A filter has no loader: the manifest comes as data, not as a path.
    if backup_manifest is not None and not isinstance(backup_manifest, t.Mapping):
        raise AnsibleFilterError(
            f"kms_parity: backup_manifest is {backup_manifest!r}; give the registered result of "
            "exchops.kms.kms_backup taken on the old KM Server, or a file holding it read with "
            "lookup('ansible.builtin.file', PATH) | from_yaml"
        )
    if database_build is not None and not isinstance(database_build, str):
        raise AnsibleFilterError(
            f"kms_parity: database_build is {database_build!r}; it must be the file version of "
            "the Kmserver.exe that last ran the KM database, such as 5.5.2650.12"
        )
    source = source or None
    try:
        recorded = recorded_builds(backup_manifest or None, database_build or "", source)
    except ValueError as exc:
        raise AnsibleFilterError(f"kms_parity: {exc}") from None
    verdict = judge_pair(
        target,
        source,
        target_read,
        source_read,
        allow_newer_target=allow_newer,
        source_in_inventory=bool(source_in_inventory),
        recorded=recorded,
    )
    judged = verdict.to_dict()
    return refuse_listed_twice(judged, listed_twice) if listed_twice else judged


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


def kms_pairs_listed_twice(
    hostvars: t.Mapping[str, t.Any], targets: t.Sequence[str]
) -> dict[str, dict[str, str]]:
    """{target: {reason, fix}} for each target the inventory lists twice: one server under two
    names (same ansible_host, or inventory name where there is none), or two targets naming the
    same kms_source_host. One pass over the targets, in Python: Jinja cannot ask hostvars for a
    variable some hosts lack without failing, and a comparison per pair of targets in a template
    costs seconds at a few hundred targets."""
    by_address: dict[str, list[str]] = {}
    by_source: dict[str, list[str]] = {}
    for target in targets:
        host_vars = hostvars[target] if target in hostvars else {}
        by_address.setdefault(str(host_vars.get("ansible_host") or target), []).append(target)
        source = host_vars.get("kms_source_host")
        if source:
            by_source.setdefault(str(source), []).append(target)
    twins: dict[str, dict[str, str]] = {}
    for address, names in by_address.items():
        for name in names if len(names) > 1 else ():
            others = " and ".join(other for other in names if other != name)
            twins[name] = {
                "reason": f"{name} and {others} are the same server ({address}) listed twice in "
                "kms_targets: its KM Server move would be checked, and remediated, twice at once.",
                "fix": "List each new KM Server once in kms_targets (remove its other name).",
            }
    for source, names in by_source.items():
        for name in names if len(names) > 1 else ():
            others = " and ".join(other for other in names if other != name)
            twins.setdefault(
                name,
                {
                    "reason": f"{name} and {others} both name {source} as their kms_source_host, but KM "
                    "Server moves from one old server to one new server: the inventory does not say "
                    "which move is meant.",
                    "fix": "Keep one new KM Server per kms_source_host in kms_targets: correct "
                    "kms_source_host of the others.",
                },
            )
    return twins


def kms_report_markdown(report: t.Mapping[str, t.Any]) -> str:
    return to_markdown(report)


def kms_report_junit(report: t.Mapping[str, t.Any]) -> str:
    return to_junit(report)


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            "kms_parity": kms_parity,
            "kms_report": kms_report,
            "kms_pairs_listed_twice": kms_pairs_listed_twice,
            "kms_report_markdown": kms_report_markdown,
            "kms_report_junit": kms_report_junit,
        }
