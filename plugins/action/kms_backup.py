# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for exchops.kms.kms_backup (documentation in plugins/modules)."""

from __future__ import annotations

import typing as t
from datetime import datetime, timezone

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.utils.display import Display

from ..plugin_utils._action import WinrsAction
from ..plugin_utils._kms import check_startup_password_for_command_line
from ..plugin_utils._kmsbackup import (
    BackupFailed,
    BackupRefused,
    KmsBackup,
    check_host_path,
    outcome_result,
    plan_result,
)
from ..plugin_utils._probe import ProbeError
from ..plugin_utils._winout import ParseError
from ..plugin_utils._winrs import (
    WinrsError,
    WinrsShell,
    mask,
    target_from_options,
)

display = Display()

# Mirrors DOCUMENTATION in plugins/modules/kms_backup.py (a unit test keeps them equal).
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "database_path": {"type": "str", "default": ""},
    "destination": {"type": "str", "default": ""},
    # no_log here only: the documentation schema has no no_log key (validate-modules rejects it).
    # The password is also masked by this plugin (WinrsShell secrets, mask()) wherever text leaves.
    "startup_password": {"type": "str", "no_log": True},
    "timeout": {"type": "int", "default": 600},
}


def _nothing_changed(message: str) -> str:
    return message if "Nothing was changed." in message else f"{message} Nothing was changed."


class ActionModule(WinrsAction):
    MODULE_NAME = "exchops.kms.kms_backup"
    WINRM_PURPOSE = "works on the host"

    def run(
        self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None
    ) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        host = self._task_host(task_vars)
        arguments = self._validated_arguments(host, ARGUMENT_SPEC)
        password = arguments["startup_password"] or ""
        secrets = (password,) if password else ()
        try:
            database_path = arguments["database_path"] or ""
            if database_path:
                database_path = check_host_path("database_path", database_path)
            destination = arguments["destination"] or ""
            if destination:
                destination = check_host_path("destination", destination)
            if password:
                check_startup_password_for_command_line(password)
            if arguments["timeout"] <= 0:
                raise ValueError(
                    f"timeout is {arguments['timeout']}, it must be more than 0 seconds"
                )
        except ValueError as exc:
            raise AnsibleActionFail(mask(f"{host}: {exc}. Nothing was changed.", secrets)) from None
        self._require_winrm(host)

        def log(message: str) -> None:
            display.vv(mask(f"{host}: {message}", secrets), host=host)

        try:
            target = target_from_options(host, self._connection.get_option, arguments["timeout"])
            with WinrsShell(target, secrets=secrets) as shell:
                backup = KmsBackup(
                    shell.run,
                    database_path=database_path,
                    destination=destination,
                    startup_password=password,
                    timeout=arguments["timeout"],
                    # The controller's clock names the folder, in UTC: hosts' clocks and zones
                    # differ, the controller's run is what the operator knows.
                    now=datetime.now(timezone.utc),
                    log=log,
                )
                plan = backup.plan()
                if self._task.check_mode:
                    return {**result, **plan_result(plan)}
                outcome = backup.execute(plan)
        except WinrsError as exc:
            # Raised only before anything changed: execute() turns later ones into BackupFailed.
            if exc.unreachable:
                return {
                    **result,
                    "unreachable": True,
                    "msg": mask(_nothing_changed(str(exc)), secrets),
                    "changed": False,
                }
            # from None: Ansible would append each chained cause to msg; the message is complete.
            raise AnsibleActionFail(mask(_nothing_changed(str(exc)), secrets)) from None
        except BackupRefused as exc:
            raise AnsibleActionFail(mask(f"{host}: {exc}", secrets)) from None
        except BackupFailed as exc:
            raise AnsibleActionFail(
                mask(f"{host}: {exc}", secrets),
                result={
                    key: mask(value, secrets) if isinstance(value, str) else value
                    for key, value in exc.result.items()
                },
            ) from None
        except (ParseError, ProbeError) as exc:
            raise AnsibleActionFail(
                mask(
                    f"{host}: could not read the KM database folder or the state of "
                    f"MSExchangeKMS: {to_text(exc)}. The host answered in an unexpected form; run "
                    "with -vvvv to see the commands and report it. Nothing was changed.",
                    secrets,
                )
            ) from None

        return {
            **result,
            **outcome_result(outcome),
            "warnings": [mask(f"{host}: {warning}", secrets) for warning in outcome.warnings],
        }
