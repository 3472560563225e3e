# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for exchops.kms.kms_backup (documentation in plugins/modules)."""

from __future__ import annotations

import typing as t
from datetime import datetime, timezone

from ..plugin_utils._action import Minimum, Task, WinrsAction
from ..plugin_utils._kms import check_startup_password_for_command_line
from ..plugin_utils._kmsbackup import KmsBackup
from ..plugin_utils._kmsbackup_plan import check_host_path, outcome_result, plan_result

# Mirrors DOCUMENTATION in plugins/modules/kms_backup.py (a unit test keeps them equal).
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "database_path": {"type": "str", "default": ""},
    "destination": {"type": "str", "default": ""},
    # no_log here only: the documentation schema has no no_log key (validate-modules rejects it).
    # The password is also masked by the base class and the shell wherever text leaves.
    "startup_password": {"type": "str", "no_log": True},
    "timeout": {"type": "int", "default": 600},
}


class ActionModule(WinrsAction):
    MODULE_NAME = "exchops.kms.kms_backup"
    READING = "the KM database folder or the state of MSExchangeKMS"
    ARGUMENT_SPEC = ARGUMENT_SPEC
    MINIMUMS = {"timeout": Minimum(1, "seconds")}
    SECRET_OPTIONS = ("startup_password",)

    def _options(self, task: Task) -> dict[str, str]:
        arguments = task.arguments
        paths = {
            name: check_host_path(name, arguments[name]) if arguments[name] else ""
            for name in ("database_path", "destination")
        }
        if arguments["startup_password"]:
            check_startup_password_for_command_line(arguments["startup_password"])
        return paths

    def _work(self, task: Task, options: dict[str, str]) -> dict[str, t.Any]:
        with self._shell(task, task.arguments["timeout"]) as shell:
            backup = KmsBackup(
                shell.run,
                database_path=options["database_path"],
                destination=options["destination"],
                startup_password=task.arguments["startup_password"] or "",
                timeout=task.arguments["timeout"],
                # The controller's clock names the folder, in UTC: hosts' clocks and zones
                # differ, the controller's run is what the operator knows.
                now=datetime.now(timezone.utc),
                log=task.progress,
            )
            plan = backup.plan()
            if task.check_mode:
                return plan_result(plan)
            # execute() turns failures after a change into BackupFailed (changed=True).
            outcome = backup.execute(plan)
        return {
            **outcome_result(outcome),
            "warnings": [f"{task.host}: {warning}" for warning in outcome.warnings],
        }
