# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the host-state and KB-model tests."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

try:
    import exchlab.state  # noqa: F401 pylint: disable=unused-import # only probes importability
except ImportError:
    # tests/lab holds the exchlab package; the lead puts it on sys.path, this covers the rest.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from exchlab.exchange import build_exchange_host  # noqa: E402
from exchlab.state import HostState  # noqa: E402
from exchlab.windows.shell import CommandResult, run_command  # noqa: E402


@pytest.fixture
def run() -> Callable[[HostState, str], CommandResult]:
    def runner(host: HostState, line: str) -> CommandResult:
        return run_command(host, line)

    return runner


@pytest.fixture
def make_host() -> Callable[..., HostState]:
    """build_exchange_host with a frozen clock and an instant update.exe unless told otherwise."""

    def factory(
        name: str = "KMS-NEW", version: str | None = "5.5", sp: int = 3, **options: object
    ) -> HostState:
        options.setdefault("clock", "2001-03-14T09:12:40")
        faults = dict(options.pop("faults", None) or {})  # type: ignore[call-overload]
        faults.setdefault("update_duration_s", 0)
        return build_exchange_host(
            name, "127.0.0.2", version, sp, faults=faults, **options  # type: ignore[arg-type]
        )

    return factory


@pytest.fixture
def kb(make_host: Callable[..., HostState]) -> HostState:
    """The KB Q259906 target (registry SP3, Kmserver.exe 5.5.1960.8, database stamp 5.5.2650)."""
    return make_host(
        km_binary_build="5.5.1960.8",
        database_stamp="5.5.2650",
        events=[5389],
        media={"D:\\EXCH55SP3": "5.5.2650"},
    )
