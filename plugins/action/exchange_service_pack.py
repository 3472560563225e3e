# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for exchops.kms.exchange_service_pack (documentation in plugins/modules)."""

from __future__ import annotations

import dataclasses
import typing as t

from ansible.errors import AnsibleActionFail
from ansible.utils.display import Display

from ..plugin_utils._action import Minimum, Task, WinrsAction
from ..plugin_utils._builds import Build
from ..plugin_utils._servicepack import READ_TIMEOUT_S, Options, ServicePackJob
from ..plugin_utils._servicepack_plan import check_update_arguments, describe
from ..plugin_utils._winrs import WinrsShell

display = Display()

# Mirrors DOCUMENTATION in plugins/modules/exchange_service_pack.py (a unit test keeps them equal).
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "media": {"type": "str", "required": True},
    "build": {"type": "str", "default": ""},
    "kms_database_build": {"type": "str", "default": ""},
    "media_build": {"type": "str", "default": ""},
    "arguments": {"type": "list", "elements": "str", "default": []},
    "success_exit_codes": {"type": "list", "elements": "int", "default": [0]},
    "timeout": {"type": "int", "default": 3600},
    "poll_interval": {"type": "int", "default": 15},
    "progress_interval": {"type": "int", "default": 60},
    "no_progress_timeout": {"type": "int", "default": 900},
    "launch": {"type": "str", "default": "operator", "choices": ["operator", "at_interactive"]},
    "quiet_period": {"type": "int", "default": 120},
    "resume_only": {"type": "bool", "default": False},
}


def _build_option(arguments: dict[str, t.Any], name: str, wanted: str) -> Build | None:
    """The build an option names, None when it is empty; ValueError saying what to set."""
    text = arguments[name].strip()
    if not text:
        return None
    try:
        return Build.parse(text, family=None)
    except ValueError as exc:
        raise ValueError(f"{name} is {arguments[name]!r}: {exc}. Set it to {wanted}.") from None


def _shown(text: str | None) -> str:
    return describe(Build.parse(text)) if text else "not installed or not readable"


def _diff_text(build: str | None, kms_binary: str | None) -> str:
    return f"Exchange build: {_shown(build)}\nKmserver.exe: {_shown(kms_binary)}\n"


def _predicted_text(report: t.Any) -> str:
    """Check mode: the run replaces Kmserver.exe with the media's copy, whose version no source
    gives, so the prediction names the media, not a version."""
    if report.outcome != "not_run" or not report.kms_binary_before or not report.media_build:
        return _diff_text(report.build_after, report.kms_binary_after)
    return (
        f"Exchange build: {_shown(report.build_after)}\nKmserver.exe: replaced by the copy of "
        f"{_shown(report.media_build)} (its version is not documented)\n"
    )


class ActionModule(WinrsAction):
    MODULE_NAME = "exchops.kms.exchange_service_pack"
    ARGUMENT_SPEC = ARGUMENT_SPEC
    MINIMUMS = {
        name: Minimum(1, "seconds")
        for name in (
            "timeout",
            "poll_interval",
            "progress_interval",
            "no_progress_timeout",
            "quiet_period",
        )
    }

    def _options(self, task: Task) -> Options:
        arguments = task.arguments
        if not arguments["media"].strip():
            raise ValueError(
                "media is empty. Set it to the folder on the host that holds the service pack's "
                "update.exe (e.g. D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386)."
            )
        if not arguments["success_exit_codes"]:
            raise ValueError(
                "success_exit_codes is empty, so no run could succeed. Leave it at [0] or list "
                "the exit codes that mean success for this kit."
            )
        wanted = _build_option(
            arguments,
            "build",
            "the build the service pack installs, e.g. 5.5.2650 for Exchange 5.5 SP3",
        )
        database = _build_option(
            arguments,
            "kms_database_build",
            "the file version of the Kmserver.exe that last ran the KM database, e.g. 5.5.2650.12",
        )
        stated = _build_option(
            arguments,
            "media_build",
            "the build the media installs, e.g. 5.5.2650 for Exchange 5.5 SP3",
        )
        try:
            check_update_arguments(arguments["arguments"])
        except ValueError as exc:
            raise ValueError(f"arguments: {exc}") from None
        return Options(
            media=arguments["media"].strip(),
            build=wanted,
            arguments=tuple(arguments["arguments"]),
            success_exit_codes=tuple(arguments["success_exit_codes"]),
            timeout=arguments["timeout"],
            poll_interval=arguments["poll_interval"],
            progress_interval=arguments["progress_interval"],
            check_mode=task.check_mode,
            kms_database_build=database,
            media_build=stated,
            no_progress_timeout=arguments["no_progress_timeout"],
            launch=arguments["launch"],
            quiet_period=arguments["quiet_period"],
            resume_only=arguments["resume_only"],
        )

    def _work(self, task: Task, options: Options) -> dict[str, t.Any]:
        host = task.host
        reach = self._task_reach(task, READ_TIMEOUT_S)

        def open_shell(command_timeout_sec: int) -> t.ContextManager[WinrsShell]:
            target = dataclasses.replace(reach.target, command_timeout_sec=command_timeout_sec)
            return self._shell(dataclasses.replace(reach, target=target), command_timeout_sec)

        job = ServicePackJob(
            host, open_shell, options, say=display.display, verbose=display.vv, reach=reach
        )
        report = job.run()
        shaped = report.result()
        if report.warnings:
            shaped["warnings"] = [f"{host}: {warning}" for warning in report.warnings]
        if task.diff:
            shaped["diff"] = {
                "before_header": f"{host}: before",
                "after_header": f"{host}: after" + (" (predicted)" if task.check_mode else ""),
                "before": _diff_text(report.build_before, report.kms_binary_before),
                "after": (
                    _predicted_text(report)
                    if task.check_mode
                    else _diff_text(report.build_after, report.kms_binary_after)
                ),
            }
        if report.failed:
            raise AnsibleActionFail(f"{host}: {report.message}", result=shaped) from None
        return shaped
