# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each action plugin's ARGUMENT_SPEC must say what its doc stub documents.

ansible-test's validate-modules skips argument-spec checks for a doc-only stub whose action plugin
does the work, so nothing else would catch a default or a choice that drifted apart.
"""

from __future__ import annotations

import importlib
import pkgutil
import typing as t

import pytest
import yaml

from ansible_collections.exchops.kms.plugins import action as action_package

ACTION_NAMES = sorted(info.name for info in pkgutil.iter_modules(action_package.__path__))
# no_log is not compared: ansible-test refuses it in documentation; see the password test below.
COMPARED_KEYS = ("type", "default", "choices", "required", "elements", "aliases")
# What Ansible assumes when a key is absent, so "absent" and "explicit default" compare equal.
IMPLIED = {
    "type": "str",
    "default": None,
    "choices": None,
    "required": False,
    "elements": None,
    "aliases": None,
}


def normalise(options: dict[str, dict[str, t.Any]]) -> dict[str, dict[str, t.Any]]:
    normalised = {}
    for name, spec in options.items():
        entry = {key: spec.get(key, IMPLIED[key]) for key in COMPARED_KEYS}
        # Argument specs nest with `options`, documentation with `suboptions`.
        nested = spec.get("options") or spec.get("suboptions")
        if nested:
            entry["options"] = normalise(nested)
        normalised[name] = entry
    return normalised


def test_there_is_at_least_one_action_plugin() -> None:
    assert "exchange_facts" in ACTION_NAMES


@pytest.mark.parametrize("name", ACTION_NAMES)
def test_action_argument_spec_matches_its_documentation(name: str) -> None:
    action = importlib.import_module(f"ansible_collections.exchops.kms.plugins.action.{name}")
    stub = importlib.import_module(f"ansible_collections.exchops.kms.plugins.modules.{name}")
    documented = yaml.safe_load(stub.DOCUMENTATION).get("options") or {}
    assert normalise(action.ARGUMENT_SPEC) == normalise(documented)


@pytest.mark.parametrize("name", ACTION_NAMES)
def test_every_documented_option_has_a_description(name: str) -> None:
    stub = importlib.import_module(f"ansible_collections.exchops.kms.plugins.modules.{name}")
    documented = yaml.safe_load(stub.DOCUMENTATION).get("options") or {}
    undocumented = [option for option, spec in documented.items() if not spec.get("description")]
    assert undocumented == []


@pytest.mark.parametrize("name", ACTION_NAMES)
def test_every_stubs_examples_and_returns_are_yaml(name: str) -> None:
    # ansible-doc refuses a stub whose RETURN does not parse (a ": " inside a plain scalar).
    stub = importlib.import_module(f"ansible_collections.exchops.kms.plugins.modules.{name}")
    assert isinstance(yaml.safe_load(stub.RETURN), dict)
    assert isinstance(yaml.safe_load(stub.EXAMPLES), list)


@pytest.mark.parametrize("name", ACTION_NAMES)
def test_every_password_option_is_no_log(name: str) -> None:
    action = importlib.import_module(f"ansible_collections.exchops.kms.plugins.action.{name}")
    specs = [
        getattr(action, attribute)
        for attribute in dir(action)
        if attribute.endswith("ARGUMENT_SPEC")
    ]
    for spec in specs:
        for option, details in spec.items():
            if "password" in option:
                assert details.get("no_log") is True, f"{name}.{option} must be no_log"
