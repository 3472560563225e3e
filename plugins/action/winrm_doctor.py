# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for exchops.kms.winrm_doctor (documentation in plugins/modules)."""

from __future__ import annotations

import typing as t

from ..plugin_utils._action import Minimum, Task, WinrsAction
from ..plugin_utils._doctor import Problem, diagnose
from ..plugin_utils._doctor_hop import HOP_SIGNATURES, describe, read_hop
from ..plugin_utils._reach import delegates, jump_host_of, remote_name
from ..plugin_utils._winrs import (
    WinrsConfigError,
    WinrsError,
    WinrsShell,
    target_from_options,
)

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
            problems, proven = self._diagnose(task)
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
            shaped["msg"] = proven or f"{host}: WinRM connection, logon, shell and tools are fine."
        return shaped

    def _diagnose(self, task: Task) -> tuple[list[Problem], str | None]:
        """The problems of the host's own WinRM connection, or, for a host behind a jump host,
        those of the jump host's and then of the second hop; and the line that says the second
        hop works, when it does."""
        host, timeout = task.host, task.arguments["timeout"]
        try:
            jump = jump_host_of(host, self._task_host_vars(task))
        except WinrsConfigError as exc:
            return [Problem("jump_settings", host, str(exc).split(": ", 1)[-1], _FIX_JUMP)], None
        if jump is None:
            return diagnose(host, self._connection.get_option, timeout), None
        try:
            jump_options = self._jump_options(host, jump)
            remote = remote_name(f"{host} (through {jump})", host, self._connection.get_option)
        except WinrsConfigError as exc:
            return [Problem("jump_settings", host, str(exc).split(": ", 1)[-1], _FIX_JUMP)], None
        problems = diagnose(jump, jump_options, timeout)
        if problems:
            return problems, None  # the second hop cannot be tried before the first works
        target = target_from_options(jump, jump_options, timeout)
        try:
            with WinrsShell(target) as shell:
                findings = read_hop(shell.run, host, jump, remote, delegates(target))
        except WinrsError as exc:
            return [Problem("winrm_error", jump, str(exc).split(": ", 1)[-1], _FIX_RUN)], None
        names = {"host": host, "jump": jump, "remote": remote}
        for signature in HOP_SIGNATURES:
            values = signature.detect(findings)
            if values is not None:
                values = {**values, **names}
                problems.append(
                    Problem(
                        signature.id,
                        host,
                        signature.message.format(**values),
                        signature.fix.format(**values),
                    )
                )
        return problems, describe(findings)


_FIX_JUMP = (
    "Set exchange_jump_host to the inventory name of the Windows jump host that reaches this "
    "server, and its ansible_host to the server's name as the jump host reaches it."
)
_FIX_RUN = "Run the task with -vvv for the WinRM exchange, and fix what the message names."
