# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters behind the exchange_parity role and the check_exchange_parity playbook (docs:
exchange_parity*.yml beside this).

The whole group is judged in Python, once per run (plugin_utils/_fleet.py): a template would
compare builds as strings, and a task per host per check would cost Ansible ~10 ms per host each.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ..plugin_utils._fleet import (
    PolicyError,
    failures,
    judge_group,
    parse_policy,
    to_junit,
    to_markdown,
)


def exchange_parity_problems(
    group: t.Any,
    policy: t.Any,
    max_behind: t.Any = None,
    groups: t.Mapping[str, t.Any] | None = None,
) -> list[str]:
    """Every problem with the check's settings, each naming what was wrong and what to do; an
    empty list when they can be used. Never raises, so the role can fail with the messages."""
    if not isinstance(group, str) or not group.strip():
        return [
            f"exchange_parity_group is {group!r}; it must name the inventory group whose Exchange "
            "servers must run the same build. Set exchange_parity_group. Nothing was read or changed."
        ]
    problems = []
    if groups is not None and group not in groups:
        problems.append(
            f"{group}: the inventory has no group named {group}, so there is no server to check. "
            "Set exchange_parity_group to the group of a site, an organisation or a DAG "
            "(ansible-inventory --graph lists them). Nothing was read or changed."
        )
    try:
        parse_policy(policy, max_behind, group)
    except PolicyError as exc:
        problems.append(str(exc))
    return problems


def exchange_parity_report(
    hostvars: t.Mapping[str, t.Any],
    hosts: t.Sequence[str],
    group: str,
    policy: t.Any,
    max_behind: t.Any,
    generated: str,
    result_name: str = "exchange_parity_read",
    play_hosts: t.Sequence[str] | None = None,
) -> dict[str, t.Any]:
    try:
        chosen = parse_policy(policy, max_behind, group)
    except PolicyError as exc:
        raise AnsibleFilterError(str(exc)) from None
    # In inventory order; hosts of the group that --limit left out of the play are listed apart.
    in_play = set(play_hosts) if play_hosts is not None else set(hosts)
    judged = [host for host in hosts if host in in_play]
    left_out = [host for host in hosts if host not in in_play]
    # Jinja cannot ask hostvars for a variable a host may lack (a host cut short before its
    # read) without failing; here a missing one becomes an `error` row.
    results = {
        host: (hostvars[host].get(result_name) if host in hostvars else None) for host in judged
    }
    return judge_group(group, judged, results, chosen, generated, left_out)


def exchange_parity_failures(report: t.Mapping[str, t.Any]) -> dict[str, str]:
    return failures(report)


def exchange_parity_markdown(report: t.Mapping[str, t.Any]) -> str:
    return to_markdown(report)


def exchange_parity_junit(report: t.Mapping[str, t.Any]) -> str:
    return to_junit(report)


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            "exchange_parity_problems": exchange_parity_problems,
            "exchange_parity_report": exchange_parity_report,
            "exchange_parity_failures": exchange_parity_failures,
            "exchange_parity_markdown": exchange_parity_markdown,
            "exchange_parity_junit": exchange_parity_junit,
        }
