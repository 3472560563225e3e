# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The suite-wide secret scan (conftest.run_tool) catches a leak, and names it without showing it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from conftest import run_tool

from exchlab.fleet import LAB_DEFAULTS


def test_a_command_printing_the_lab_password_fails_its_test_without_the_password_shown(
    ansible_env: dict[str, str], tmp_path: Path
) -> None:
    secret = LAB_DEFAULTS["password"]
    with pytest.raises(AssertionError) as leaked:
        run_tool(
            ["ansible", "localhost", "-m", "ansible.builtin.debug", "-a", f"msg={secret}"],
            ansible_env,
            tmp_path,
        )
    assert "the lab's account password (La...) in stdout" in str(leaked.value)
    assert secret not in str(leaked.value)


def test_a_password_from_an_inventory_written_to_a_file_by_the_command_is_caught(
    ansible_env: dict[str, str], tmp_path: Path
) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {
                        "localhost": {
                            "vault_like_password": "S3cret-Only-Here",
                            "ansible_python_interpreter": sys.executable,
                        }
                    }
                }
            }
        ),
        encoding="utf-8",
    )
    quiet = dict(ansible_env, ANSIBLE_VERBOSITY="0")
    command = [
        "ansible",
        "localhost",
        "-i",
        str(inventory),
        "-c",
        "local",
        "-m",
        "ansible.builtin.copy",
        "-a",
        f"content={{{{ vault_like_password }}}} dest={tmp_path / 'written.txt'}",
    ]
    with pytest.raises(AssertionError) as leaked:
        run_tool(command, quiet, tmp_path)
    assert "vault_like_password (S3...) in written.txt" in str(leaked.value)
    assert (tmp_path / "written.txt").read_text(encoding="utf-8") == "S3cret-Only-Here"
