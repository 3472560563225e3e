# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for exchops.kms.report_files (documentation in plugins/modules).

Writes the gate's and the remediation's reports on the controller from the action itself:
`ansible.builtin.file` and `copy` start a module process for each folder and each file (about
0.4 s each on the benchmark machine), which was a fifth of a passing gate's time.
"""

from __future__ import annotations

import os
import tempfile
import typing as t

from ansible.module_utils.common.text.converters import to_bytes

from ..plugin_utils._action import ExchopsAction, Task
from ..plugin_utils._errors import StepError

# Mirrors DOCUMENTATION in plugins/modules/report_files.py (a unit test keeps them equal).
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "path": {"type": "path", "required": True},
    "files": {"type": "dict", "default": {}},
}


class ActionModule(ExchopsAction):
    MODULE_NAME = "exchops.kms.report_files"
    ARGUMENT_SPEC = ARGUMENT_SPEC
    NOTHING_DONE = "Nothing was written."

    def _options(self, task: Task) -> t.Any:
        for name in task.arguments["files"]:
            if not name or os.path.basename(name) != name or name in (".", ".."):
                raise ValueError(
                    f"{self.MODULE_NAME}: {name!r} is not a file name; give names such as "
                    "report.json, without a folder."
                )
        return task.arguments

    def _work(self, task: Task, options: t.Any) -> dict[str, t.Any]:
        folder: str = options["path"]
        files: dict[str, t.Any] = options["files"]
        try:
            if os.path.lexists(folder) and not os.path.isdir(folder):
                raise NotADirectoryError(0, "it is a file, not a folder")
            os.makedirs(folder, mode=0o755, exist_ok=True)
            if not os.access(folder, os.W_OK | os.X_OK):
                raise PermissionError("this user may not write in it")
            written = [self._write(folder, name, content) for name, content in files.items()]
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise StepError(
                f"the report folder {folder} cannot be written on the controller ({reason}). The "
                "report of this run goes there. Set kms_report_dir to a folder you can write."
            ) from None
        # Output of the run on the controller, written in check mode too: not a change.
        return {"changed": False, "path": folder, "written": written}

    @staticmethod
    def _write(folder: str, name: str, content: t.Any) -> str:
        """Write one file whole or not at all: a reader (a CI step uploading the report) never
        sees half a report."""
        path = os.path.join(folder, name)
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(to_bytes(content if isinstance(content, str) else str(content)))
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
        return path
