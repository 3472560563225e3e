# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by the tests of plugins/plugin_utils/_winout: the byte-exact fixtures in
tests/unit/fixtures (see its README.md), read as `_winrs.py` would decode them.

The test modules import these helpers (`from conftest import load`): parametrize grids need
them when the module is collected, before any pytest fixture exists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
PASSWORD = "HZGYYHACWLQACTI"  # the example KM Server startup password of KB Q184420


def meta_of(command: str, case: str) -> dict[str, Any]:
    return json.loads((FIXTURES / command / f"{case}.meta.json").read_text(encoding="utf-8"))


def load(command: str, case: str) -> tuple[str, str, int]:
    """(stdout, stderr, exit_code) of a fixture, decoded with its code page."""
    meta = meta_of(command, case)
    text = (FIXTURES / command / f"{case}.bin").read_bytes().decode(meta["encoding"])
    stdout, stderr = (text, "") if meta["stream"] == "stdout" else ("", text)
    if "stderr_file" in meta:
        stderr = (FIXTURES / command / meta["stderr_file"]).read_bytes().decode(meta["encoding"])
    return stdout, stderr, meta["exit_code"]


def all_cases() -> list[tuple[str, str]]:
    return sorted(
        (meta.parent.name, meta.name[: -len(".meta.json")])
        for meta in FIXTURES.glob("*/*.meta.json")
    )
