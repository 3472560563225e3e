# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The working tree is the collection exchops.kms for Ansible's own tools (README.md, "Using the
working tree")."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import REPO, RunModule, run_tool

FACTS = "exchops.kms.exchange_facts"


def test_ansible_doc_reads_exchange_facts_from_the_working_tree(
    ansible_env: dict[str, str], tmp_path: Path
) -> None:
    quiet = dict(ansible_env, ANSIBLE_VERBOSITY="0")  # verbose lines would break the JSON
    result = run_tool(["ansible-doc", "--json", "exchops.kms.exchange_facts"], quiet, tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)["exchops.kms.exchange_facts"]
    assert Path(doc["doc"]["filename"]).resolve() == REPO / "plugins/modules/exchange_facts.py"
    assert doc["doc"]["options"]["kms_event_count"]["default"] == 10
    assert "exchange" in doc["return"]["ansible_facts"]["contains"]


def test_a_host_not_reached_over_winrm_is_refused_with_what_to_set(
    ansible_module: RunModule,
) -> None:
    result, _results = ansible_module(None, "localhost", FACTS, "")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "localhost: exchops.kms.exchange_facts reads the host over WinRM" in result.stdout
    assert "Set ansible_connection: winrm" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_negative_event_count_is_refused_with_what_to_do(ansible_module: RunModule) -> None:
    result, _results = ansible_module(None, "localhost", FACTS, "kms_event_count=-1")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "localhost: kms_event_count is -1; it must be 0 or more" in result.stdout


def test_an_unknown_option_is_refused_by_the_argument_spec(ansible_module: RunModule) -> None:
    result, _results = ansible_module(None, "localhost", FACTS, "kms_events=3")
    assert result.returncode == 2
    assert (
        "localhost: exchops.kms.exchange_facts: unknown option 'kms_events' (did you mean "
        "'kms_event_count'?)"
    ) in result.stdout
