# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the WinRM doctor asks a host: chcp's code page and %~$PATH: lookups of reg and wmic."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from exchlab.state import HostState
from exchlab.windows.shell import run_command

TOOLS_LINE = "for %I in (reg.exe wmic.exe) do @echo %I=%~$PATH:I"


@pytest.mark.parametrize("codepage", [437, 850, 65001])
def test_chcp_prints_the_consoles_code_page(kb: HostState, codepage: int) -> None:
    result = run_command(kb, "chcp", codepage=codepage)

    assert (result.stdout, result.exit_code) == (f"Active code page: {codepage}\r\n", 0)


def test_a_path_lookup_finds_reg_and_wmic_on_windows_2003(
    make_kb: Callable[..., HostState],
) -> None:
    result = run_command(make_kb(os="2003"), TOOLS_LINE)

    assert result.stdout == (
        "reg.exe=C:\\WINDOWS\\system32\\reg.exe\r\n"
        "wmic.exe=C:\\WINDOWS\\system32\\wbem\\WMIC.exe\r\n"
    )


def test_a_path_lookup_finds_no_wmic_on_windows_2000(make_kb: Callable[..., HostState]) -> None:
    result = run_command(make_kb(os="2000"), TOOLS_LINE)

    assert result.stdout.splitlines() == ["reg.exe=C:\\WINNT\\system32\\reg.exe", "wmic.exe="]
