# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of exchops.kms's action plugins: each works on the task's host over WinRM itself.

Keeps the checks every action makes before it talks to a host in one place: the task's options
against the module's spec, which host the task names (the delegated one under delegate_to), that
pywinrm is installed on the controller, and that the host is reached with the winrm connection
(whose options name the endpoint and credentials).
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import difflib
import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError
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

    def _validated_arguments(
        self, host: str, argument_spec: dict[str, dict[str, t.Any]]
    ) -> dict[str, t.Any]:
        """The task's options checked and converted, or a failure that names the host, every
        option that is wrong, and the options there are.

        Replaces ActionBase.validate_argument_spec, whose failure names neither the host nor
        the module's public name and carries the task's arguments as the error's object, so
        Ansible prints them, a startup password included.
        """
        validation = ArgumentSpecValidator(argument_spec).validate(self._task.args)
        errors = validation.errors.errors
        if not errors:
            return validation.validated_parameters
        problems = []
        for name in sorted(validation.unsupported_parameters):
            # A typo of a real option is the usual cause: name it.
            close = difflib.get_close_matches(name, argument_spec, n=1)
            problems.append(
                f"unknown option {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            )
        problems += [error.msg for error in errors if not isinstance(error, UnsupportedError)]
        raise AnsibleActionFail(
            f"{host}: {self.MODULE_NAME}: {'; '.join(problems)}. Its options are "
            f"{', '.join(sorted(argument_spec))} (ansible-doc {self.MODULE_NAME}); fix the task "
            "and run it again. Nothing was changed."
        )

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
