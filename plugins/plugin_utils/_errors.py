# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one family of errors the step runners raise (service control, backup, service pack).

A StepError's message is whole sentences that follow "<host>: " and never hold a secret; it does
not say "Nothing was changed.": `changed` says whether the step changed the host before it
failed, and only the action edge (`_action.ExchopsAction`) words that, once. `result` holds what
the task result should still carry (states, paths, readings). `TYPE_WORDS`: how a refusal says
what type a value must be, for module options and connection settings alike.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import typing as t


class StepError(Exception):
    """A step on the host failed or was refused (see the module doc)."""

    def __init__(
        self, message: str, result: dict[str, t.Any] | None = None, *, changed: bool = False
    ) -> None:
        super().__init__(message)
        self.result = result or {}
        self.changed = changed


class Refusal(StepError):
    """Refused before anything was sent that changes the host."""

    def __init__(self, message: str, result: dict[str, t.Any] | None = None) -> None:
        super().__init__(message, result, changed=False)


# What a value must be, by its type's name in an argument spec (str, int, ...) or in a plugin's
# option definitions (integer, boolean, ...), as refusals say it: "timeout is 'soon'; it must be
# an integer".
TYPE_WORDS = {
    "str": "a string",
    "string": "a string",
    "int": "an integer",
    "integer": "an integer",
    "float": "a number",
    "bool": "true or false",
    "boolean": "true or false",
    "list": "a list",
    "dict": "a mapping of names to values",
    "path": "a path",
}
