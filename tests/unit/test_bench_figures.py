# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""make bench times a gate only when it judged every bench pair as the fleet makes it, and its
last line carries both ratios, the maximum requests per host and the controller's peak, then
the jump run's gate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
# pylint: disable-next=wrong-import-position
from figures import misjudged_pairs, summary_line  # noqa: E402


def report(tmp_path: Path, statuses: list[str]) -> Path:
    pairs = [
        {"target": f"kms-new-{n:03}", "status": status, "reason": f"why {n}"}
        for n, status in enumerate(statuses, start=1)
    ]
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"pairs": pairs}), encoding="utf-8")
    return path


def test_a_gate_that_judged_every_pair_a_mismatch_is_timed(tmp_path: Path) -> None:
    assert misjudged_pairs(report(tmp_path, ["mismatch"] * 3), 3) == ""


@pytest.mark.parametrize(
    ("statuses", "problem"),
    [
        (["error"] * 3, "3 of 3 pairs not 'mismatch', e.g. kms-new-001: error: why 1"),
        (["mismatch", "unreachable", "mismatch"], "1 of 3 pairs not 'mismatch', e.g. kms-new-002"),
        (["mismatch"] * 2, "2 pairs judged, not 3"),
    ],
)
def test_a_gate_that_judged_otherwise_is_not_timed(
    tmp_path: Path, statuses: list[str], problem: str
) -> None:
    assert misjudged_pairs(report(tmp_path, statuses), 3).startswith(problem)


def test_a_gate_that_wrote_no_report_is_not_timed(tmp_path: Path) -> None:
    assert misjudged_pairs(tmp_path / "report.json", 3) == f"no report at {tmp_path}/report.json"


FIGURES = {
    "hosts": 400,
    "ratio_vs_floor": {"gate": 2.214},
    "ratio_vs_targets_floor": {"gate": 3.657},
    "requests_per_host": {"gate": 7.0},
    "max_requests_per_host": {"gate": 9},
    "controller_peak_pss_mib": {"gate": 612.44},
}
OLD_KEYS = (
    "ratio_vs_floor=2.21 requests_per_host=7 hosts=400 ratio_vs_targets_floor=3.66 "
    "max_requests_per_host=9 controller_peak_mib=612"
)


def test_the_last_line_keeps_the_old_keys_first_and_adds_the_new_ones() -> None:
    assert summary_line(FIGURES) == OLD_KEYS


def test_the_last_line_appends_the_jump_runs_gate_after_the_old_keys() -> None:
    jump = {
        "ratio_vs_floor": {"gate": 3.126},
        "ratio_vs_targets_floor": {"gate": 5.904},
        "requests_per_legacy_host": 10.04,
        "jump_shells_peak": 25,
    }
    line = summary_line(FIGURES, jump)
    assert "\n" not in line
    assert line == (
        f"{OLD_KEYS} jump_ratio_vs_floor=3.13 jump_ratio_vs_targets_floor=5.90 "
        "jump_requests_per_legacy_host=10.0 jump_shells_peak=25"
    )
