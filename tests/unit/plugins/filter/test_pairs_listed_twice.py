# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finding the KM Server moves an inventory lists twice (plugins/filter/kms_parity.py)."""

from __future__ import annotations

from ansible_collections.exchops.kms.plugins.filter.kms_parity import kms_pairs_listed_twice


def test_one_server_under_two_names_and_two_targets_of_one_source_are_found() -> None:
    hostvars = {
        "a": {"ansible_host": "10.0.0.1", "kms_source_host": "old-a"},
        "a-alias": {"ansible_host": "10.0.0.1", "kms_source_host": "old-x"},
        "b": {"ansible_host": "10.0.0.2", "kms_source_host": "old-b"},
        "c": {"ansible_host": "10.0.0.3", "kms_source_host": "old-b"},
        "d": {"kms_source_host": "old-d"},  # no ansible_host: its name is its address
        "e": {"ansible_host": "10.0.0.5"},  # no source: not a twin for that
        "f": {"ansible_host": "10.0.0.6"},
    }
    twins = kms_pairs_listed_twice(hostvars, list(hostvars))
    assert sorted(twins) == ["a", "a-alias", "b", "c"]
    assert twins["a"]["reason"].startswith("a and a-alias are the same server (10.0.0.1)")
    assert twins["c"]["reason"].startswith("c and b both name old-b as their kms_source_host")
    assert "correct kms_source_host of the others" in twins["b"]["fix"]


def test_a_target_missing_from_hostvars_and_an_empty_inventory_give_no_twins() -> None:
    assert kms_pairs_listed_twice({}, []) == {}
    assert kms_pairs_listed_twice({"a": {"ansible_host": "10.0.0.1"}}, ["a", "ghost"]) == {}
