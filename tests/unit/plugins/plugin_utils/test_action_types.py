# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the wrong type, in the collection's words on every ansible-core line
(`type_problems` in plugins/plugin_utils/_action.py)."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._action import type_problems

SPEC: dict[str, dict[str, t.Any]] = {
    "timeout": {"type": "int", "default": 120},
    "pin": {"type": "int", "no_log": True},
    "codes": {"type": "list", "elements": "int", "default": [0]},
    "listed_twice": {"type": "dict"},
    "name": {"type": "str", "default": ""},
}


@pytest.mark.parametrize(
    ("arguments", "problems"),
    [
        pytest.param({"timeout": "120", "codes": ["0", 3010], "name": 5}, [], id="convertible"),
        pytest.param({"listed_twice": None, "timeout": None}, [], id="None for not set"),
        pytest.param({"unknown": "x"}, [], id="unknown options are said apart"),
        pytest.param(
            {"listed_twice": ""},
            ["listed_twice is ''; it must be a mapping of names to values"],
            id="empty text for a mapping",
        ),
        pytest.param(
            {"codes": [0, "zero", "one"]},
            ["codes holds 'zero'; each of its elements must be an integer"],
            id="first wrong element",
        ),
        pytest.param(
            {"pin": "S3cret!"}, ["pin is ********; it must be an integer"], id="no_log value"
        ),
    ],
)
def test_an_option_of_the_wrong_type_is_named_with_its_value_and_its_type(
    arguments: dict[str, t.Any], problems: list[str]
) -> None:
    assert type_problems(arguments, SPEC) == problems
