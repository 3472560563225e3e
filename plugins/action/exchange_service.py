# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for exchops.kms.exchange_service (documentation in plugins/modules)."""

from __future__ import annotations

import typing as t

from ..plugin_utils._action import Minimum, Task, WinrsAction
from ..plugin_utils._errors import StepError
from ..plugin_utils._service import ServiceControl, check_service_arguments

# Mirrors DOCUMENTATION in plugins/modules/exchange_service.py (a unit test keeps them equal).
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "name": {"type": "str", "required": True},
    "state": {"type": "str", "required": True, "choices": ["started", "stopped", "restarted"]},
    # no_log here only: the documentation schema has no no_log key (validate-modules rejects it).
    # The password is also masked by the base class and the shell wherever text leaves.
    "startup_password": {"type": "str", "no_log": True},
    "watch": {"type": "int", "default": 15},
    "timeout": {"type": "int", "default": 300},
}


class ActionModule(WinrsAction):
    MODULE_NAME = "exchops.kms.exchange_service"
    WINRM_PURPOSE = "controls the service"
    READING = "the answer about the service"
    ARGUMENT_SPEC = ARGUMENT_SPEC
    MINIMUMS = {
        "watch": Minimum(0, "seconds", "0 checks once, right after the start"),
        "timeout": Minimum(1, "seconds"),
    }
    SECRET_OPTIONS = ("startup_password",)

    def _options(self, task: Task) -> list[str]:
        """The warnings about options that will be ignored."""
        arguments = task.arguments
        return check_service_arguments(
            arguments["name"], arguments["state"], arguments["startup_password"]
        )

    def _work(self, task: Task, options: list[str]) -> dict[str, t.Any]:
        arguments = task.arguments
        name = arguments["name"]
        control: ServiceControl | None = None
        reach = self._task_reach(task, arguments["timeout"])
        try:
            with self._shell(reach, arguments["timeout"], task.secrets) as shell:
                control = ServiceControl(
                    shell.run,
                    name,
                    startup_password=arguments["startup_password"],
                    watch=arguments["watch"],
                    timeout=arguments["timeout"],
                    log=task.progress,
                    reach=reach,
                )
                changed = control.ensure(arguments["state"], check_mode=task.check_mode)
        except StepError as exc:
            if control is not None:
                exc.result["warnings"] = self._warnings(task, options + control.progress.warnings)
            raise
        finally:
            # A command that changes the host was sent: a failure after it must say so.
            self._changed = bool(control and control.acted)
        progress = control.progress
        outcome = {
            **progress.result(),
            "changed": changed,
            "warnings": self._warnings(task, options + progress.warnings),
        }
        if task.diff:
            outcome["diff"] = {
                "before": {"name": name, "state": progress.previous_state},
                "after": {"name": name, "state": progress.state},
            }
        return outcome

    @staticmethod
    def _warnings(task: Task, warnings: list[str]) -> list[str]:
        return [f"{task.host}: {warning}" for warning in warnings]
