# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for exchops.kms.exchange_facts (documentation in plugins/modules)."""
from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.utils.display import Display

from ..plugin_utils._action import WinrsAction
from ..plugin_utils._facts import FactsError, assemble
from ..plugin_utils._probe import ProbeError, facts_probe, files_sections, split_sections
from ..plugin_utils._winrs import (
    WinrsError,
    WinrsShell,
    target_from_options,
)

display = Display()

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
        if arguments["kms_event_count"] < 0:
            raise AnsibleActionFail(
                f"{host}: kms_event_count is {arguments['kms_event_count']}, it must be 0 or more. "
                "Set kms_event_count to how many MSExchangeKMS events to read (0 skips the event log)."
            )
        if arguments["timeout"] <= 0:
            raise AnsibleActionFail(
                f"{host}: timeout is {arguments['timeout']}, it must be more than 0 seconds."
            )
        self._require_winrm(host)

        try:
            target = target_from_options(host, self._connection.get_option, arguments["timeout"])
            with WinrsShell(target) as shell:
                output = shell.run(facts_probe(arguments["kms_event_count"]))
                sections = split_sections(output.stdout)
                readings = assemble(sections, arguments["kms_event_count"])
                if readings.needs_files_of:
                    # Exchange lives outside the default paths: read its binaries there.
                    display.vv(f"{host}: reading Exchange binaries under {readings.needs_files_of}")
                    extra = shell.run(" & ".join(files_sections((readings.needs_files_of,))))
                    sections.update(split_sections(extra.stdout))
                    readings = assemble(sections, arguments["kms_event_count"], files_index=0)
        # A host that cannot be read is a failed result, not an exception: ansible-core 2.19
        # applies failed_when / ignore_errors only to results, and the gate reads every pair
        # with failed_when: false so that one bad host cannot hide the others' verdicts.
        except WinrsError as exc:
            if exc.unreachable:
                return {**result, "unreachable": True, "msg": str(exc), "changed": False}
            return {**result, "failed": True, "msg": str(exc), "changed": False}
        except (ProbeError, FactsError) as exc:
            return {
                **result,
                "failed": True,
                "changed": False,
                "msg": f"{host}: could not read the Exchange facts: {to_text(exc)}. The host "
                "answered in an unexpected form; run with -vvvv to see the command and report it. "
                "Nothing was changed.",
            }

        return {
            **result,
            "changed": False,
            "ansible_facts": {"exchange": readings.facts},
            "warnings": [f"{host}: {warning}" for warning in readings.warnings],
        }
