# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for exchops.kms.kms_backup (documentation in plugins/modules)."""

from __future__ import annotations

import typing as t
from datetime import datetime, timezone

from ..plugin_utils._action import Minimum, Task, WinrsAction
from ..plugin_utils._kms import check_startup_password_for_command_line
from ..plugin_utils._kmsbackup import BackupFailed, KmsBackup, Run
from ..plugin_utils._kmsbackup_plan import (
    BackupError,
    BackupOutcome,
    check_host_path,
    kms_binary_record,
    manifest_from_option,
    outcome_result,
    plan_result,
)
from ..plugin_utils._kmsmove import RestoreCheck, controller_folder, fetch_backup
from ..plugin_utils._winrs import WinrsError

# Mirrors DOCUMENTATION in plugins/modules/kms_backup.py (a unit test keeps them equal).
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "database_path": {"type": "str", "default": ""},
    "destination": {"type": "str", "default": ""},
    # no_log here only: the documentation schema has no no_log key (validate-modules rejects it).
    # The password is also masked by the base class and the shell wherever text leaves.
    "startup_password": {"type": "str", "no_log": True},
    "timeout": {"type": "int", "default": 600},
    "verify_against": {"type": "list", "elements": "dict"},
    "copy_to": {"type": "str", "default": ""},
}
# Options a verification never uses: it copies nothing and never starts MSExchangeKMS.
_NOT_WITH_VERIFY = ("destination", "startup_password", "copy_to")


class ActionModule(WinrsAction):
    MODULE_NAME = "exchops.kms.kms_backup"
    READING = "the KM database folder or the state of MSExchangeKMS"
    ARGUMENT_SPEC = ARGUMENT_SPEC
    MINIMUMS = {"timeout": Minimum(1, "seconds")}
    SECRET_OPTIONS = ("startup_password",)

    def _options(self, task: Task) -> dict[str, t.Any]:
        arguments = task.arguments
        if arguments["verify_against"] is not None:
            return self._verify_options(arguments)
        paths = {
            name: check_host_path(name, arguments[name]) if arguments[name] else ""
            for name in ("database_path", "destination")
        }
        if arguments["startup_password"]:
            check_startup_password_for_command_line(arguments["startup_password"])
        return paths

    def _work(self, task: Task, options: dict[str, t.Any]) -> dict[str, t.Any]:
        if "manifest" in options:
            return self._verify(task, options)
        timeout = task.arguments["timeout"]
        reach = self._task_reach(task, timeout)
        with self._shell(reach, timeout, task.secrets) as shell:
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
                reach=reach,
            )
            plan = backup.plan()
            copy_to = task.arguments["copy_to"]
            if task.check_mode:
                return self._predicted(plan_result(plan), copy_to, task.host)
            # execute() turns failures after a change into BackupFailed (changed=True).
            outcome = backup.execute(plan)
            result = {**outcome_result(outcome)}
            warnings = list(outcome.warnings)
            if copy_to:
                result["controller_copy"], fetched = self._copy(
                    task, shell.run, outcome, copy_to, reach.remote
                )
                warnings += fetched
        return {**result, "warnings": [f"{task.host}: {warning}" for warning in warnings]}

    # -- verify only ------------------------------------------------------------------------------

    @staticmethod
    def _verify_options(arguments: dict[str, t.Any]) -> dict[str, t.Any]:
        given = [name for name in _NOT_WITH_VERIFY if arguments[name]]
        if given:
            raise ValueError(
                f"verify_against only checks the KM database folder against a backup's manifest: "
                f"it copies nothing and never starts MSExchangeKMS, so {' and '.join(given)} "
                "cannot be used with it. Start MSExchangeKMS afterwards with "
                "exchops.kms.exchange_service"
            )
        database_path = arguments["database_path"]
        return {
            "database_path": (
                check_host_path("database_path", database_path) if database_path else ""
            ),
            "manifest": manifest_from_option(arguments["verify_against"]),
        }

    def _verify(self, task: Task, options: dict[str, t.Any]) -> dict[str, t.Any]:
        """Read-only, so the same in check mode: changed=false, or RestoreMismatch."""
        timeout = task.arguments["timeout"]
        reach = self._task_reach(task, timeout)
        with self._shell(reach, timeout, task.secrets) as shell:
            check = RestoreCheck(
                shell.run,
                options["manifest"],
                database_path=options["database_path"],
                log=task.progress,
                reach=reach,
            )
            result, warnings = check.check()
        return {**result, "warnings": [f"{task.host}: {warning}" for warning in warnings]}

    # -- the controller copy ----------------------------------------------------------------------

    @staticmethod
    def _predicted(result: dict[str, t.Any], copy_to: str, host: str) -> dict[str, t.Any]:
        if not copy_to:
            return result
        folder = controller_folder(copy_to, host, result["backup_path"])
        return {
            **result,
            "msg": f"{result['msg'][:-1]}, then fetch the copy to {folder} on the controller "
            "and verify its SHA256 there.",
            "controller_copy": {"path": str(folder)},
        }

    def _copy(
        self, task: Task, run: Run, outcome: BackupOutcome, copy_to: str, remote: str | None
    ) -> tuple[dict[str, t.Any], tuple[str, ...]]:
        """The second, verified copy on the controller; BackupFailed (the backup on the host
        stays, complete and verified) when it cannot be made."""
        plan = outcome.plan
        folder = controller_folder(copy_to, task.host, plan.destination)
        record = {
            "host": task.host,
            "database_path": plan.database_path,
            "backup_path": plan.destination,
            "fetched": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "files": len(outcome.manifest),
            "bytes": plan.bytes,
            "verification": outcome.verification,
            **kms_binary_record(plan),
        }
        try:
            if outcome.verification != "sha256":
                raise BackupError(
                    "the backup was verified by sizes only (no certutil on the host), and "
                    "certutil is also what fetches it"
                )
            return fetch_backup(run, outcome, folder, record, log=task.progress, remote=remote)
        except (BackupError, ValueError, WinrsError, OSError) as exc:
            result = outcome_result(outcome)
            del result["msg"]
            raise BackupFailed(
                f"the backup in {plan.destination} is complete and verified ({plan.summary()}, "
                f"same SHA256) and MSExchangeKMS is {outcome.kms_state_after}, but its copy to "
                f"the controller failed: {exc}. Nothing was left in {folder}. Run again, or copy "
                f"{plan.destination} off the host with your backup tools",
                result,
            ) from None
