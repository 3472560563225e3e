# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/architecture.md names every Python module under plugins/, so the map stays true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAP = (ROOT / "docs/architecture.md").read_text(encoding="utf-8")
MODULES = sorted(
    path.relative_to(ROOT / "plugins")
    for path in (ROOT / "plugins").rglob("*.py")
    if "__pycache__" not in path.parts
)


def named_in_map(module: Path) -> bool:
    """A module is named as `name` in a table row or list of its folder's section."""
    return re.search(rf"`{re.escape(module.stem)}`", MAP) is not None


def test_there_are_modules_to_map() -> None:
    assert Path("plugin_utils/_kms.py") in MODULES


@pytest.mark.parametrize("module", MODULES, ids=str)
def test_every_module_under_plugins_is_on_the_map(module: Path) -> None:
    assert named_in_map(module), f"docs/architecture.md does not name plugins/{module}"


def test_the_map_names_no_module_that_is_gone() -> None:
    stems = {module.stem for module in MODULES}
    mapped = set(re.findall(r"^\| `(_[a-z_]+)`", MAP, flags=re.MULTILINE))
    assert mapped <= stems, f"the map names modules that do not exist: {sorted(mapped - stems)}"
