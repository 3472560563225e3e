# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for exchops.kms.exchange_service (documentation in plugins/modules)."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.utils.display import Display

from ..plugin_utils._action import WinrsAction
from ..plugin_utils._probe import ProbeError
from ..plugin_utils._service import ServiceControl, ServiceError, check_arguments
from ..plugin_utils._winout import ParseError
from ..plugin_utils._winrs import (
    WinrsError,
    WinrsShell,
    mask,
    target_from_options,
)

display = Display()

# Mirrors DOCUMENTATION in plugins/modules/exchange_service.py (a unit test keeps them equal).
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "name": {"type": "str", "required": True},
    "state": {"type": "str", "required": True, "choices": ["started", "stopped", "restarted"]},
    # no_log here only: the documentation schema has no no_log key (validate-modules rejects it).
    # The password is also masked by this plugin (WinrsShell secrets, mask()) wherever text leaves.
    "startup_password": {"type": "str", "no_log": True},
    "watch": {"type": "int", "default": 15},
    "timeout": {"type": "int", "default": 300},
}


class ActionModule(WinrsAction):
    MODULE_NAME = "exchops.kms.exchange_service"
    WINRM_PURPOSE = "controls the service"

    def run(
        self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None
    ) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        host = self._task_host(task_vars)
        arguments = self._validated_arguments(host, ARGUMENT_SPEC)
        name, wanted = arguments["name"], arguments["state"]
        password = arguments["startup_password"]
        secrets = (password,) if password else ()
        try:
            warnings = check_arguments(
                name, wanted, password, arguments["watch"], arguments["timeout"]
            )
        except ValueError as exc:
            raise AnsibleActionFail(mask(f"{host}: {exc}", secrets)) from None
        self._require_winrm(host)

        def log(message: str) -> None:
            display.vv(mask(f"{host}: {message}", secrets), host=host)

        control: ServiceControl | None = None
        try:
            target = target_from_options(host, self._connection.get_option, arguments["timeout"])
            with WinrsShell(target, secrets=secrets) as shell:
                control = ServiceControl(
                    shell.run,
                    name,
                    startup_password=password,
                    watch=arguments["watch"],
                    timeout=arguments["timeout"],
                    log=log,
                )
                changed = control.ensure(wanted, check_mode=bool(self._task.check_mode))
        except WinrsError as exc:
            acted = bool(control and control.acted)
            if exc.unreachable:
                return {
                    **result,
                    "unreachable": True,
                    "msg": mask(str(exc), secrets),
                    "changed": acted,
                }
            # from None: Ansible would append each chained cause to msg; the message is complete.
            raise AnsibleActionFail(mask(str(exc), secrets), result={"changed": acted}) from None
        except ServiceError as exc:
            acted = bool(control and control.acted)
            details = {**exc.result, "changed": acted}
            if control is not None:
                details["warnings"] = self._warnings(
                    host, warnings + control.progress.warnings, secrets
                )
            raise AnsibleActionFail(mask(f"{host}: {exc}", secrets), result=details) from None
        except (ParseError, ProbeError) as exc:
            acted = bool(control and control.acted)
            nothing = "" if acted else " Nothing was changed."
            raise AnsibleActionFail(
                mask(
                    f"{host}: could not read the answer about service {name}: {to_text(exc)}. "
                    "The host answered in an unexpected form; run with -vvvv to see the commands "
                    f"and report it.{nothing}",
                    secrets,
                ),
                result={"changed": acted},
            ) from None

        progress = control.progress
        outcome = {
            **result,
            **progress.result(),
            "changed": changed,
            "warnings": self._warnings(host, warnings + progress.warnings, secrets),
        }
        if self._task.diff:
            outcome["diff"] = {
                "before": {"name": name, "state": progress.previous_state},
                "after": {"name": name, "state": progress.state},
            }
        return outcome

    @staticmethod
    def _warnings(host: str, warnings: list[str], secrets: tuple[str, ...]) -> list[str]:
        return [mask(f"{host}: {warning}", secrets) for warning in warnings]
