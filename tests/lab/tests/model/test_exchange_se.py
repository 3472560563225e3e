# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exchange Server Subscription Edition in the lab: 2019's v15 registry layout, told apart from
2019 only by its build (15.2.2562 and later, CSS-Exchange's rule)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from exchlab.exchange import build_exchange_host
from exchlab.state import HostState
from exchlab.windows.shell import CommandResult

Run = Callable[[HostState, str], CommandResult]
Make = Callable[..., HostState]


def test_an_se_host_has_the_2019_registry_layout_with_an_se_build(
    run: Run, make_host: Make
) -> None:
    se = make_host("EXSE", "SE", build="15.2.2562.37")
    setup = run(se, r"reg query HKLM\SOFTWARE\Microsoft\ExchangeServer\v15\Setup").stdout
    assert "    MsiProductMajor    REG_DWORD    0xf\r\n" in setup
    assert "    MsiProductMinor    REG_DWORD    0x2\r\n" in setup
    assert "    MsiBuildMajor    REG_DWORD    0xa02\r\n" in setup
    assert "    MsiBuildMinor    REG_DWORD    0x25\r\n" in setup
    shown = se.to_show()["exchange"]
    assert (shown["product"], shown["build"]) == (
        "Exchange Server Subscription Edition",
        "15.2.2562.37",
    )


def test_an_se_host_defaults_to_se_rtm_and_a_2019_host_stays_2019(make_host: Make) -> None:
    assert make_host("EXSE", "SE").to_show()["exchange"]["build"] == "15.2.2562.17"
    shown = make_host("EX2019", "2019", build="15.2.1748.43").to_show()["exchange"]
    assert (shown["product"], shown["build"]) == ("Exchange Server 2019", "15.2.1748.43")


@pytest.mark.parametrize(
    ("version", "build"),
    [
        ("SE", "15.2.1748.43"),
        ("2019", "15.2.2562.17"),
        ("SE", "15.1.2507.6"),
        ("2016", "15.2.1748.10"),
    ],
)
def test_a_build_of_another_product_is_refused(version: str, build: str) -> None:
    with pytest.raises(ValueError, match=f"build {build} is not an Exchange {version} build"):
        build_exchange_host("EX", "127.0.0.1", version, build=build)
