# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the cmd.exe emulation tests: hosts built by exchlab.exchange, run in-process."""

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

# E13's event time (E14's folder time is 09:12).
CLOCK = "2001-03-14T09:12:40"

Run = Callable[[HostState, str], CommandResult]


@pytest.fixture
def run() -> Run:
    def runner(host: HostState, line: str) -> CommandResult:
        return run_command(host, line)

    return runner


def kb_host(**changes: object) -> HostState:
    """The KB Q259906 target: registry SP3, Kmserver.exe 5.5.1960.8 from the CD, database last
    run by 5.5.2650, MSExchangeKMS stopped after a 5389, SP3 kit extracted at D:\\EXCH55SP3."""
    options: dict[str, object] = {
        "km_binary_build": "5.5.1960.8",
        "kms_state": "stopped",
        "database_stamp": "5.5.2650",
        "events": [5389],
        "media": {"D:\\EXCH55SP3": "5.5.2650"},
        "clock": CLOCK,
        "faults": {"update_duration_s": 0},
    }
    options.update(changes)
    return build_exchange_host(
        "KMS-NEW", "127.0.0.2", "5.5", 3, **options  # type: ignore[arg-type]
    )


@pytest.fixture
def kb() -> HostState:
    return kb_host()


@pytest.fixture
def make_kb() -> Callable[..., HostState]:
    """kb_host with changes: make_kb(os="2003"), make_kb(faults={...}) ..."""
    return kb_host


@pytest.fixture
def sp3() -> HostState:
    """A matched 5.5 SP3 KM Server with MSExchangeKMS stopped (never started since boot)."""
    return build_exchange_host("KMS-OLD", "127.0.0.3", "5.5", 3, clock=CLOCK)


@pytest.fixture
def sp3_running() -> HostState:
    return build_exchange_host("KMS-OLD", "127.0.0.3", "5.5", 3, kms_state="running", clock=CLOCK)
