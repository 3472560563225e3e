# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of exchops.kms's action plugins: each works on the task's host over WinRM itself.

Keeps the checks every action makes before it talks to a host in one place: which host the task
names (the delegated one under delegate_to), that pywinrm is installed on the controller, and that
the host is reached with the winrm connection (whose options name the endpoint and credentials).
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.basic import missing_required_lib
from ansible.plugins.action import ActionBase

from ._winrs import HAS_WINRM, WINRM_IMPORT_ERROR

_WINRM_CONNECTIONS = ("winrm", "ansible.builtin.winrm")


class WinrsAction(ActionBase):
    TRANSFERS_FILES = False
    # The plugins open their own WinRS shell; Ansible's connection only supplies its options.
    _requires_connection = False
    #: The module's full name, for messages.
    MODULE_NAME = "exchops.kms"
    #: What the module does over WinRM, for messages: "reads the host", "controls the service".
    WINRM_PURPOSE = "works on the host"

    def _task_host(self, task_vars: dict[str, t.Any] | None) -> str:
        """The host the task works on: the delegated one under delegate_to."""
        return self._task.delegate_to or (task_vars or {}).get("inventory_hostname", "this host")

    def _require_winrm(self, host: str) -> None:
        """Fail, before anything is sent, when pywinrm or a winrm connection is missing."""
        if not HAS_WINRM:
            raise AnsibleActionFail(
                f"{host}: {missing_required_lib('pywinrm')}", orig_exc=WINRM_IMPORT_ERROR
            )
        if getattr(self._connection, "_load_name", None) not in _WINRM_CONNECTIONS:
            raise AnsibleActionFail(
                f"{host}: {self.MODULE_NAME} {self.WINRM_PURPOSE} over WinRM and needs "
                f"ansible_connection=winrm (this host uses {self._connection.transport!r}). "
                "Set ansible_connection: winrm and the ansible_winrm_* settings for it. "
                "Nothing was changed."
            )
