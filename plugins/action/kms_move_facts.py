# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for exchops.kms.kms_move_facts (documentation in plugins/modules).

One task per KM Server move: the target is read with its own connection options, the source with
the options of its inventory entry (as delegate_to would resolve them), both at once, and the pair
is judged here. The gate used to spend three tasks per target (read source, read target, judge),
and Ansible's cost per task and host dominated it at a few hundred pairs (benchmarks/).
"""

from __future__ import annotations

import typing as t
from concurrent.futures import ThreadPoolExecutor

import yaml

from ..plugin_utils._action import NOTHING_CHANGED, READ_MINIMUMS, Task, WinrsAction
from ..plugin_utils._parity import (
    DatabaseBuild,
    judge_pair,
    recorded_builds,
    refuse_listed_twice,
)
from ..plugin_utils._winrs import WinrsConfigError, inventory_host_options

# Mirrors DOCUMENTATION in plugins/modules/kms_move_facts.py (a unit test keeps them equal).
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "source_host": {"type": "str", "default": ""},
    "allow_newer_target": {"type": "bool", "default": False},
    "kms_event_count": {"type": "int", "default": 10},
    "timeout": {"type": "int", "default": 120},
    "fail_on_mismatch": {"type": "bool", "default": False},
    "backup_manifest": {"type": "raw"},
    "database_build": {"type": "str", "default": ""},
    "listed_twice": {
        "type": "dict",
        "options": {
            "reason": {"type": "str", "required": True},
            "fix": {"type": "str", "required": True},
        },
    },
}


class MoveOptions(t.NamedTuple):
    source: str | None  # the source's inventory name
    recorded: tuple[DatabaseBuild, ...]  # the build that last ran the KM database, as recorded


class ActionModule(WinrsAction):
    MODULE_NAME = "exchops.kms.kms_move_facts"
    WINRM_PURPOSE = "reads the host"
    ARGUMENT_SPEC = ARGUMENT_SPEC
    MINIMUMS = READ_MINIMUMS

    def _options(self, task: Task) -> MoveOptions:
        """The source's inventory name: source_host, else the collection's inventory convention
        (README.md, examples/inventory.yml): each target names its source in kms_source_host.
        The recorded builds: the options, else the host variables kms_backup_manifest and
        kms_database_build."""
        source = task.arguments["source_host"] or self._host_variable(task, "kms_source_host")
        if source is not None and not isinstance(source, str):
            raise ValueError(
                f"kms_source_host is {source!r}; it must be the inventory name of the server KM "
                "Server moved from."
            )
        database_build = task.arguments["database_build"] or self._host_variable(
            task, "kms_database_build"
        )
        if database_build is not None and not isinstance(database_build, str):
            raise ValueError(
                f"kms_database_build is {database_build!r}; it must be the file version of the "
                "Kmserver.exe that last ran the KM database, such as 5.5.2650.12."
            )
        manifest = self._manifest(
            task.arguments["backup_manifest"] or self._host_variable(task, "kms_backup_manifest")
        )
        return MoveOptions(source, recorded_builds(manifest, database_build or "", source))

    def _host_variable(self, task: Task, name: str) -> t.Any:
        return self._templar.template(task.task_vars.get(name)) or None

    def _manifest(self, given: t.Any) -> t.Mapping[str, t.Any] | None:
        """The backup manifest: kms_backup's registered result, or a JSON or YAML file on the
        controller that holds it."""
        if not given or isinstance(given, dict):
            return given or None
        if not isinstance(given, str):
            raise ValueError(
                f"backup_manifest is {given!r}; give the registered result of "
                "exchops.kms.kms_backup, or the path of a file on the controller that holds it."
            )
        path = self._loader.path_dwim(given)
        try:
            with open(path, encoding="utf-8") as handle:
                loaded = yaml.safe_load(handle)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ValueError(
                f"backup_manifest {given} cannot be read on the controller ({exc}). Give the "
                "file that holds the result of exchops.kms.kms_backup taken on the old KM Server."
            ) from None
        if not isinstance(loaded, dict):
            raise ValueError(
                f"backup_manifest {given} does not hold a kms_backup result (a mapping with "
                "kms_binary_build)."
            )
        return loaded

    def _work(self, task: Task, options: MoveOptions) -> dict[str, t.Any]:
        target, source, arguments = task.host, options.source, task.arguments
        hostvars = task.task_vars.get("hostvars") or {}
        source_in_inventory = source is not None and source in hostvars
        count, timeout = arguments["kms_event_count"], arguments["timeout"]
        target_vars = self._task_host_vars(task)
        source_read: dict[str, t.Any] | None = None
        source_options: t.Callable[[str], t.Any] | None = None
        if source_in_inventory and source != target:
            try:
                source_options = inventory_host_options(
                    source,
                    hostvars[source],
                    self._connection,
                    self._play_context,
                    self._task,
                    purpose=f"{self.MODULE_NAME} reads the KM source server",
                )
            except WinrsConfigError as exc:
                source_read = {"failed": True, "msg": f"{exc} {NOTHING_CHANGED}"}
        if source_options is None:
            target_read = self._read_exchange(
                target, self._connection.get_option, target_vars, count, timeout
            )
        else:
            # Both servers at once: a pair then takes as long as its slower server, not the sum.
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="kms_move_facts") as pool:
                reading_source = pool.submit(
                    self._read_exchange, source, source_options, hostvars[source], 0, timeout
                )
                target_read = self._read_exchange(
                    target, self._connection.get_option, target_vars, count, timeout
                )
                source_read = reading_source.result()
        verdict = judge_pair(
            target,
            source,
            target_read,
            source_read,
            allow_newer_target=arguments["allow_newer_target"],
            source_in_inventory=source_in_inventory,
            recorded=options.recorded,
        ).to_dict()
        if arguments["listed_twice"]:
            verdict = refuse_listed_twice(verdict, arguments["listed_twice"])
        reads = {target: target_read, **({source: source_read} if source and source_read else {})}
        answer: dict[str, t.Any] = {
            "changed": False,
            **verdict,
            "source_facts": (source_read or {}).get("ansible_facts", {}).get("exchange"),
            "unreachable_servers": [
                name for name, read in reads.items() if read.get("unreachable")
            ],
            "warnings": [
                warning for read in reads.values() for warning in read.get("warnings", ())
            ],
        }
        if "ansible_facts" in target_read:
            answer["ansible_facts"] = target_read["ansible_facts"]
        if arguments["fail_on_mismatch"] and verdict["status"] != "match":
            return self._failed(answer)
        return answer

    @staticmethod
    def _failed(answer: dict[str, t.Any]) -> dict[str, t.Any]:
        """The verdict as a failure of the target, or as unreachable when a server of the pair
        could not be reached (exit code 4 of ansible-playbook). Facts are left out: Ansible
        prints a failed result whole, and the verdict is what the reader needs."""
        findings = answer["findings"]
        failed = {
            key: value
            for key, value in answer.items()
            if key not in ("ansible_facts", "source_facts")
        }
        if answer["status"] == "unreachable":
            # The reason is WinRM's error, which says already what to change.
            return {**failed, "unreachable": True, "msg": answer["reason"]}
        failed["msg"] = " ".join(
            [answer["reason"], answer["fix"]]
            + ([f"Also: {'; '.join(findings)}."] if findings else [])
        )
        return {**failed, "failed": True}
