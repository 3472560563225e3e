# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for exchops.kms.winrm_doctor (documentation in plugins/modules)."""

from __future__ import annotations

import typing as t

from ..plugin_utils._action import WinrsAction
from ..plugin_utils._doctor import Problem, diagnose

# Mirrors DOCUMENTATION in plugins/modules/winrm_doctor.py (a unit test keeps them equal).
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "timeout": {"type": "int", "default": 15},
    "fail_on_problems": {"type": "bool", "default": True},
}


class ActionModule(WinrsAction):
    MODULE_NAME = "exchops.kms.winrm_doctor"
    WINRM_PURPOSE = "diagnoses the host's WinRM connection"

    def run(
        self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None
    ) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        host = self._task_host(task_vars)
        arguments = self._validated_arguments(host, ARGUMENT_SPEC)
        self._check_timeout(host, arguments["timeout"])
        # Not _require_winrm: a missing pywinrm is one of the problems the doctor reports.
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
            problems = diagnose(host, self._connection.get_option, arguments["timeout"])
        lines = [problem.line for problem in problems]
        shaped: dict[str, t.Any] = {
            **result,
            "changed": False,
            "ok": not problems,
            "problems": [problem.as_result() for problem in problems],
            "lines": lines,
        }
        if problems and arguments["fail_on_problems"]:
            shaped.update(failed=True, msg="\n".join(lines))
        elif not problems:
            shaped["msg"] = f"{host}: WinRM connection, logon, shell and tools are fine."
        return shaped
