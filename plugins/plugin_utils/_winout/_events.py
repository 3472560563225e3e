# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The event-log record that both event readers return: `wmic ntevent` (`wmic.parse_wmic_events`)
and `wevtutil qe /f:text` (`wevtutil.parse_wevtutil_text`).
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class EventRecord:
    """One event-log record. `record` is the log's record number (None from wevtutil's text
    format, which does not print it); `time` is aware; `source` is verbatim (compare it
    case-insensitively); `type` is wmic's Type or wevtutil's Level ("Information", "Error")."""

    record: int | None
    event_id: int
    source: str
    time: datetime
    type: str
    message: str
