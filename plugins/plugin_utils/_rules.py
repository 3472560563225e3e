# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ordered rule tables: how every decision of the collection is written.

A decision (a pair's verdict, a host's fleet parity, the backup's plan, whether update.exe may
run and how its run ended) is a table of rules tried in order. Each rule has an `id` and a
predicate `applies(case)` that returns None when the rule does not apply, or the values its
wording needs when it does; the first rule that applies decides. The wording lives in a table
beside the rules, keyed by the same id, so that a decision reads as a list and a message is
found by its id (the model is `_doctor.SIGNATURES`).
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import typing as t

Values = dict[str, t.Any]
CaseT = t.TypeVar("CaseT")


class RuleRow(t.Protocol[CaseT]):
    """What `first_rule` needs of a row: its id and its predicate."""

    @property
    def id(self) -> str:
        """The rule's id."""

    @property
    def applies(self) -> t.Callable[[CaseT], Values | None]:
        """The rule's predicate: its values when it applies to a case, else None."""


RowT = t.TypeVar("RowT", bound=RuleRow[t.Any])


def first_rule(rules: t.Iterable[RowT], case: t.Any, table: str) -> tuple[RowT, Values]:
    """The first row of `table` (its name, for the error) whose predicate returns values for
    `case`, with those values. Every table ends with a rule that always applies; a case that
    meets none is a bug in the table, raised as AssertionError naming it."""
    for rule in rules:
        values = rule.applies(case)
        if values is not None:
            return rule, values
    raise AssertionError(f"no rule of {table} applies; every case must meet one")
