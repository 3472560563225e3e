# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for exchops.kms.exchange_facts (documentation in plugins/modules)."""

from __future__ import annotations

import typing as t

from ..plugin_utils._action import READ_MINIMUMS, Task, WinrsAction

# Mirrors DOCUMENTATION in plugins/modules/exchange_facts.py (a unit test keeps them equal).
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "kms_event_count": {"type": "int", "default": 10},
    "timeout": {"type": "int", "default": 120},
}


class ActionModule(WinrsAction):
    MODULE_NAME = "exchops.kms.exchange_facts"
    WINRM_PURPOSE = "reads the host"
    ARGUMENT_SPEC = ARGUMENT_SPEC
    MINIMUMS = READ_MINIMUMS

    def _work(self, task: Task, options: t.Any) -> dict[str, t.Any]:
        arguments = task.arguments
        read = self._read_exchange(
            task.host,
            self._connection.get_option,
            self._task_host_vars(task),
            arguments["kms_event_count"],
            arguments["timeout"],
        )
        if "msg" in read:
            # Returned, never raised: failed_when / ignore_errors apply (see _read_exchange).
            read["msg"] = self._said(task, read["msg"])
        return {"changed": False, **read}
