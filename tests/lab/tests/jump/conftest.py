# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the jump host's remote calls (the helpers are jump_support's)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

try:
    import exchlab.state  # noqa: F401 pylint: disable=unused-import # only probes importability
except ImportError:
    # tests/lab holds the exchlab package; the lead puts it on sys.path, this covers the rest.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
# jump_support sits next to this file; importlib import mode would not add this folder.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from jump_support import JumpLab, jump_host, legacy_host  # noqa: E402


@pytest.fixture
def kb_lab() -> JumpLab:
    """jump01 (2016) and the KB target KMSNEW (NT 4.0 SP6a, WMI core, Exchange 5.5 SP3)."""
    return JumpLab(jump_host(), legacy_host())
