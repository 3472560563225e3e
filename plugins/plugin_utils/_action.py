# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of exchops.kms's action plugins: each works on the task's host over WinRM itself.

Keeps the checks every action makes before it talks to a host in one place: the task's options
against the module's spec, which host the task names (the delegated one under delegate_to), that
pywinrm is installed on the controller, and that the host is reached with the winrm connection
(whose options name the endpoint and credentials).
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import difflib
import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ._facts import FactsError, read_facts
from ._probe import ProbeError, facts_probe
from ._winrs import HAS_WINRM, WINRM_IMPORT_ERROR, WinrsError, WinrsShell, target_from_options

display = Display()

WINRM_CONNECTIONS = ("winrm", "ansible.builtin.winrm")


class WinrsAction(ActionBase):
    TRANSFERS_FILES = False
    # The plugins open their own WinRS shell; Ansible's connection only supplies its options.
    _requires_connection = False
    #: The module's full name, for messages.
    MODULE_NAME = "exchops.kms"
    #: What the module does over WinRM, for messages: "reads the host", "controls the service".
    WINRM_PURPOSE = "works on the host"

    def _task_host(self, task_vars: dict[str, t.Any] | None) -> str:
        """The host the task works on: the delegated one under delegate_to."""
        return self._task.delegate_to or (task_vars or {}).get("inventory_hostname", "this host")

    def _validated_arguments(
        self, host: str, argument_spec: dict[str, dict[str, t.Any]]
    ) -> dict[str, t.Any]:
        """The task's options checked and converted, or a failure that names the host, every
        option that is wrong, and the options there are.

        Replaces ActionBase.validate_argument_spec, whose failure names neither the host nor
        the module's public name and carries the task's arguments as the error's object, so
        Ansible prints them, a startup password included.
        """
        validation = ArgumentSpecValidator(argument_spec).validate(self._task.args)
        errors = validation.errors.errors
        if not errors:
            return validation.validated_parameters
        problems = []
        for name in sorted(validation.unsupported_parameters):
            # A typo of a real option is the usual cause: name it.
            close = difflib.get_close_matches(name, argument_spec, n=1)
            problems.append(
                f"unknown option {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            )
        problems += [error.msg for error in errors if not isinstance(error, UnsupportedError)]
        raise AnsibleActionFail(
            f"{host}: {self.MODULE_NAME}: {'; '.join(problems)}. Its options are "
            f"{', '.join(sorted(argument_spec))} (ansible-doc {self.MODULE_NAME}); fix the task "
            "and run it again. Nothing was changed."
        )

    def _require_winrm(self, host: str) -> None:
        """Fail, before anything is sent, when pywinrm or a winrm connection is missing."""
        if not HAS_WINRM:
            raise AnsibleActionFail(
                f"{host}: {missing_required_lib('pywinrm')}", orig_exc=WINRM_IMPORT_ERROR
            )
        if not self._uses_winrm_connection():
            raise AnsibleActionFail(
                f"{host}: {self.MODULE_NAME} {self.WINRM_PURPOSE} over WinRM and needs "
                f"ansible_connection=winrm (this host uses {self._connection.transport!r}). "
                "Set ansible_connection: winrm and the ansible_winrm_* settings for it. "
                "Nothing was changed."
            )

    def _uses_winrm_connection(self) -> bool:
        """Whether the task's host is reached with the winrm connection, whose options name the
        endpoint and credentials."""
        return getattr(self._connection, "_load_name", None) in WINRM_CONNECTIONS

    @staticmethod
    def _check_timeout(host: str, timeout: int) -> None:
        if timeout <= 0:
            raise AnsibleActionFail(
                f"{host}: timeout is {timeout}, it must be more than 0 seconds."
            )

    def _check_read_arguments(self, host: str, arguments: t.Mapping[str, t.Any]) -> None:
        """The limits of the options every reading action shares (kms_event_count, timeout)."""
        if arguments["kms_event_count"] < 0:
            raise AnsibleActionFail(
                f"{host}: kms_event_count is {arguments['kms_event_count']}, it must be 0 or more. "
                "Set kms_event_count to how many MSExchangeKMS events to read (0 skips the event log)."
            )
        self._check_timeout(host, arguments["timeout"])

    def _read_exchange(
        self, host: str, get_option: t.Callable[[str], t.Any], kms_event_count: int, timeout: int
    ) -> dict[str, t.Any]:
        """Read one host's Exchange facts with its winrm connection options, as a task result:
        `ansible_facts` (and `warnings`) when read, else `unreachable` or `failed` with a `msg`
        that names the host. Never raises for the host's answers: ansible-core 2.19 applies
        failed_when / ignore_errors only to results, and a gate must judge every pair even when
        one host refuses."""
        try:
            target = target_from_options(host, get_option, timeout)
            with WinrsShell(target) as shell:
                _sections, readings = read_facts(
                    shell.run,
                    facts_probe(kms_event_count),
                    kms_event_count,
                    progress=lambda message: display.vv(f"{host}: {message}"),
                )
        except WinrsError as exc:
            return (
                {"unreachable": True, "msg": str(exc)}
                if exc.unreachable
                else {"failed": True, "msg": str(exc)}
            )
        except (ProbeError, FactsError) as exc:
            return {
                "failed": True,
                "msg": f"{host}: could not read the Exchange facts: {to_text(exc)}. The host "
                "answered in an unexpected form; run with -vvvv to see the command and report it. "
                "Nothing was changed.",
            }
        return {
            "ansible_facts": {"exchange": readings.facts},
            "warnings": [f"{host}: {warning}" for warning in readings.warnings],
        }
