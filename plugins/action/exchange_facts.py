# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for exchops.kms.exchange_facts (documentation in plugins/modules)."""
from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

# Mirrors DOCUMENTATION in plugins/modules/exchange_facts.py (a unit test keeps them equal).
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "kms_event_count": {"type": "int", "default": 10},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(
        self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None
    ) -> dict[str, t.Any]:
        super().run(tmp, task_vars)
        del tmp

        _validation, arguments = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        host = self._task.delegate_to or (task_vars or {}).get("inventory_hostname", "this host")
        if arguments["kms_event_count"] < 0:
            raise AnsibleActionFail(
                f"{host}: kms_event_count is {arguments['kms_event_count']}, it must be 0 or more. "
                "Set kms_event_count to how many MSExchangeKMS events to read (0 skips the event log)."
            )
        raise AnsibleActionFail(
            f"{host}: exchops.kms.exchange_facts is not implemented yet in this development version "
            "of exchops.kms. Nothing was read or changed."
        )
