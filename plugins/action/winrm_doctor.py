# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for exchops.kms.winrm_doctor (documentation in plugins/modules)."""

from __future__ import annotations

import typing as t

from ..plugin_utils._action import Minimum, Task, WinrsAction
from ..plugin_utils._doctor import Problem, diagnose

# Mirrors DOCUMENTATION in plugins/modules/winrm_doctor.py (a unit test keeps them equal).
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "timeout": {"type": "int", "default": 15},
    "fail_on_problems": {"type": "bool", "default": True},
}


class ActionModule(WinrsAction):
    MODULE_NAME = "exchops.kms.winrm_doctor"
    WINRM_PURPOSE = "diagnoses the host's WinRM connection"
    ARGUMENT_SPEC = ARGUMENT_SPEC
    MINIMUMS = {"timeout": Minimum(1, "seconds")}

    def _ready(self, task: Task) -> None:
        """Nothing: a missing pywinrm or another connection is what the doctor reports."""

    def _work(self, task: Task, options: t.Any) -> dict[str, t.Any]:
        host = task.host
        if not self._uses_winrm_connection():
            problems = [
                Problem(
                    "not_winrm_connection",
                    host,
                    f"the host uses ansible_connection={self._connection.transport}, not winrm.",
                    "Set ansible_connection: winrm and the host's ansible_winrm_* settings.",
                )
            ]
        else:
            problems = diagnose(host, self._connection.get_option, task.arguments["timeout"])
        lines = [problem.line for problem in problems]
        shaped: dict[str, t.Any] = {
            "changed": False,
            "ok": not problems,
            "problems": [problem.as_result() for problem in problems],
            "lines": lines,
        }
        if problems and task.arguments["fail_on_problems"]:
            shaped.update(failed=True, msg="\n".join(lines))
        elif not problems:
            shaped["msg"] = f"{host}: WinRM connection, logon, shell and tools are fine."
        return shaped
