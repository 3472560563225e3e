# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for exchops.kms.exchange_facts (documentation in plugins/modules)."""

from __future__ import annotations

import typing as t

from ..plugin_utils._action import WinrsAction

# Mirrors DOCUMENTATION in plugins/modules/exchange_facts.py (a unit test keeps them equal).
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "kms_event_count": {"type": "int", "default": 10},
    "timeout": {"type": "int", "default": 120},
}


class ActionModule(WinrsAction):
    MODULE_NAME = "exchops.kms.exchange_facts"
    WINRM_PURPOSE = "reads the host"

    def run(
        self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None
    ) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        host = self._task_host(task_vars)
        arguments = self._validated_arguments(host, ARGUMENT_SPEC)
        self._check_read_arguments(host, arguments)
        self._require_winrm(host)

        read = self._read_exchange(
            host, self._connection.get_option, arguments["kms_event_count"], arguments["timeout"]
        )
        return {**result, "changed": False, **read}
