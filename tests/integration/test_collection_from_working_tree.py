# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The working tree is the collection exchops.kms for Ansible's own tools (DESIGN.md contract)."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import REPO, run_tool


def test_ansible_doc_reads_exchange_facts_from_the_working_tree(
    ansible_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_tool(["ansible-doc", "--json", "exchops.kms.exchange_facts"], ansible_env, tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)["exchops.kms.exchange_facts"]
    assert Path(doc["doc"]["filename"]).resolve() == REPO / "plugins/modules/exchange_facts.py"
    assert doc["doc"]["options"]["kms_event_count"]["default"] == 10
    assert "exchange" in doc["return"]["ansible_facts"]["contains"]


def test_an_unfinished_exchange_facts_fails_cleanly_naming_the_host(
    ansible_env: dict[str, str], tmp_path: Path
) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        "all:\n  hosts:\n    kms-new:\n      ansible_host: 127.0.0.1\n"
        "      ansible_connection: winrm\n      ansible_user: labadmin\n"
        "      ansible_password: not-used-yet\n",
        encoding="utf-8",
    )
    playbook = tmp_path / "facts.yml"
    playbook.write_text(
        "- name: Read facts\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Read Exchange facts\n      exchops.kms.exchange_facts:\n",
        encoding="utf-8",
    )
    result = run_tool(["ansible-playbook", "-i", str(inventory), str(playbook)], ansible_env, tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "kms-new: exchops.kms.exchange_facts is not implemented yet" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "not-used-yet" not in result.stdout + result.stderr


def test_a_negative_event_count_is_refused_with_what_to_do(
    ansible_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_tool(
        ["ansible", "localhost", "-m", "exchops.kms.exchange_facts", "-a", "kms_event_count=-1"],
        ansible_env,
        tmp_path,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "localhost: kms_event_count is -1, it must be 0 or more" in result.stdout


def test_an_unknown_option_is_refused_by_the_argument_spec(
    ansible_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_tool(
        ["ansible", "localhost", "-m", "exchops.kms.exchange_facts", "-a", "kms_events=3"],
        ansible_env,
        tmp_path,
    )
    assert result.returncode == 2
    assert "Unsupported parameters" in result.stdout and "kms_events" in result.stdout
