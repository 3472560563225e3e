# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What benchmarks/fleet.py decides from a run, apart from the timing: whether a gate run judged
the bench fleet as it should (else it is not timed), and `make bench`'s last line."""

from __future__ import annotations

import json
from pathlib import Path

# What the gate must find in every bench pair (tests/lab/fleets/bench.yml: the KB case, whose
# target's Kmserver.exe is older than the build that last ran the KM database).
EXPECTED_PAIR_STATUS = "mismatch"


def misjudged_pairs(report_file: Path, pairs: int) -> str:
    """What is wrong with the gate's report.json for a bench of PAIRS pairs; '' when it judged
    every pair, each EXPECTED_PAIR_STATUS."""
    if not report_file.is_file():
        return f"no report at {report_file}"
    judged = json.loads(report_file.read_text(encoding="utf-8")).get("pairs", [])
    if len(judged) != pairs:
        return f"{len(judged)} pairs judged, not {pairs}"
    wrong = [pair for pair in judged if pair.get("status") != EXPECTED_PAIR_STATUS]
    if wrong:
        first = wrong[0]
        return (
            f"{len(wrong)} of {pairs} pairs not {EXPECTED_PAIR_STATUS!r}, e.g. "
            f"{first.get('target')}: {first.get('status')}: {first.get('reason')}"
        )
    return ""


def summary_line(figures: dict, jump: dict | None = None) -> str:
    """make bench's last line: the gate's figures at one size (the old keys first, unchanged),
    then, when JUMP holds the jump run's, the gate's behind one jump host."""
    line = (
        f"ratio_vs_floor={figures['ratio_vs_floor']['gate']:.2f} "
        f"requests_per_host={figures['requests_per_host']['gate']:.0f} "
        f"hosts={figures['hosts']} "
        f"ratio_vs_targets_floor={figures['ratio_vs_targets_floor']['gate']:.2f} "
        f"max_requests_per_host={figures['max_requests_per_host']['gate']} "
        f"controller_peak_mib={figures['controller_peak_pss_mib']['gate']:.0f}"
    )
    if jump is None:
        return line
    return (
        f"{line} "
        f"jump_ratio_vs_floor={jump['ratio_vs_floor']['gate']:.2f} "
        f"jump_ratio_vs_targets_floor={jump['ratio_vs_targets_floor']['gate']:.2f} "
        f"jump_requests_per_legacy_host={jump['requests_per_legacy_host']:.1f} "
        f"jump_shells_peak={jump['jump_shells_peak']}"
    )
