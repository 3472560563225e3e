# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Another inventory host's variables -> its winrm connection options
(`inventory_host_options` in plugins/plugin_utils/_winrs.py), read by the real winrm connection
plugin; only the running task's connection, task and play context are stand-ins."""

from __future__ import annotations

import typing as t
from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleUndefinedVariable
from ansible.playbook.play_context import PlayContext

from ansible_collections.exchops.kms.plugins.plugin_utils._winrs import (
    WinrsConfigError,
    inventory_host_options,
    target_from_options,
)

SECRET = "S0urce-Pa55"
PURPOSE = "exchops.kms.kms_move_facts reads the KM source server"
SOURCE = {
    "ansible_connection": "winrm",
    "ansible_host": "10.0.0.1",
    "ansible_port": 5985,
    "ansible_user": "CORP\\kmsadmin",
    "ansible_password": SECRET,
}


class _UndefinedPassword(dict[str, t.Any]):
    """Host variables whose ansible_password names an undefined variable, as Ansible's
    hostvars raise it when the value is templated."""

    def __getitem__(self, name: str) -> t.Any:
        if name == "ansible_password":
            raise AnsibleUndefinedVariable("'kms_admin_password' is undefined")
        return super().__getitem__(name)


def options_of(
    host_vars: t.Mapping[str, t.Any], password: str | None = None
) -> t.Callable[[str], t.Any]:
    """kms01's options, resolved while a task on another host runs with the winrm connection
    (`password` as given with -k)."""
    connection = MagicMock()
    connection._load_name = "winrm"  # pylint: disable=protected-access
    task = MagicMock()
    task.dump_attrs.return_value = {}
    play_context = PlayContext()
    play_context.password = password
    return inventory_host_options("kms01", host_vars, connection, play_context, task, PURPOSE)


def test_the_host_s_own_variables_and_winrm_extras_make_its_target() -> None:
    get_option = options_of(
        {
            **SOURCE,
            "ansible_winrm_read_timeout_sec": 40,
            "ansible_winrm_server_cert_validation": "ignore",
            "kms_source_host": "kms00",
        }
    )
    target = target_from_options("kms01", get_option)
    assert (target.endpoint, target.user, target.password) == (
        "http://10.0.0.1:5985/wsman",
        "CORP\\kmsadmin",
        SECRET,
    )
    assert (target.read_timeout_sec, target.server_cert_validation) == (40, "ignore")
    assert get_option("_extras") == {
        "ansible_winrm_read_timeout_sec": 40,
        "ansible_winrm_server_cert_validation": "ignore",
    }


def test_a_password_given_with_dash_k_serves_a_host_without_one() -> None:
    host_vars = {key: value for key, value in SOURCE.items() if key != "ansible_password"}
    assert options_of(host_vars, password="Ask-Pa55")("remote_password") == "Ask-Pa55"


@pytest.mark.parametrize(
    ("host_vars", "message"),
    [
        pytest.param(
            {**SOURCE, "ansible_connection": "ssh"},
            f"kms01: {PURPOSE} over WinRM and needs ansible_connection=winrm for it (its "
            "inventory entry says 'ssh'). Set ansible_connection: winrm and the ansible_winrm_* "
            "settings for it.",
            id="another connection",
        ),
        pytest.param(
            {key: value for key, value in SOURCE.items() if key != "ansible_connection"},
            f"kms01: {PURPOSE} over WinRM and needs ansible_connection=winrm for it (its "
            "inventory entry says None). Set ansible_connection: winrm and the ansible_winrm_* "
            "settings for it.",
            id="no connection",
        ),
        pytest.param(
            _UndefinedPassword(SOURCE),
            "kms01: its WinRM settings in the inventory cannot be read: 'kms_admin_password' is "
            "undefined. Fix them (ansible-inventory --host NAME shows them).",
            id="undefined variable",
        ),
        pytest.param(
            {**SOURCE, "ansible_port": "five"},
            "kms01: its WinRM settings in the inventory cannot be read: ansible_port is 'five'; "
            "it must be an integer. Fix them (ansible-inventory --host NAME shows them).",
            id="not a port",
        ),
        pytest.param(
            {**SOURCE, "ansible_winrm_port": "5986/tcp"},
            "kms01: its WinRM settings in the inventory cannot be read: ansible_winrm_port is "
            "'5986/tcp'; it must be an integer. Fix them (ansible-inventory --host NAME shows "
            "them).",
            id="not a port, by the winrm name",
        ),
    ],
)
def test_an_entry_that_cannot_give_winrm_settings_is_refused_naming_the_host(
    host_vars: t.Mapping[str, t.Any], message: str
) -> None:
    with pytest.raises(WinrsConfigError) as caught:
        options_of(host_vars)
    assert str(caught.value) == message
    assert SECRET not in str(caught.value)
