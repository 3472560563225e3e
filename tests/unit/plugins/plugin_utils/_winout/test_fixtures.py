# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fixtures themselves (tests/unit/fixtures): each with its meta, all with Windows line
ends.
"""

from __future__ import annotations

import pytest
from conftest import FIXTURES, all_cases, meta_of


def test_there_are_at_least_forty_fixtures_each_with_its_meta() -> None:
    cases = all_cases()
    assert len(cases) >= 40
    for command, case in cases:
        assert (FIXTURES / command / f"{case}.bin").is_file()
        meta = meta_of(command, case)
        assert meta["stream"] in ("stdout", "stderr")
        assert isinstance(meta["exit_code"], int)
        assert meta["source"]


@pytest.mark.parametrize(("command", "case"), all_cases())
def test_fixtures_keep_windows_line_ends(command: str, case: str) -> None:
    data = (FIXTURES / command / f"{case}.bin").read_bytes()
    # Every LF ends a CRLF; a checkout that converts line ends would break this.
    assert data.count(b"\n") == data.count(b"\r\n")
    # wmic's own stdout ends every line with CR CR LF (docs/windows-output.md#every-command).
    if command.startswith("wmic") and meta_of(command, case)["stream"] == "stdout":
        assert data.count(b"\n") == data.count(b"\r\r\n")
