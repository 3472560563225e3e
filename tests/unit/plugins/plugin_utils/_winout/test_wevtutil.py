# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`parse_wevtutil_text` (plugins/plugin_utils/_winout/wevtutil.py) on the wevtutil_qe
fixtures (docs/windows-output.md#wevtutil, #e13) and on output written inline.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from conftest import load

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    EventRecord,
    ParseError,
    parse_wevtutil_text,
)

UTC = timezone.utc
KMS_EXIT = "KMS is exiting with error 0."
MAPI = "Microsoft Exchange Key Management service failed logging on as a MAPI client."
# The event of docs/windows-output.md#e13 (the Q259906 wording).
E13_EVENT = EventRecord(
    None,
    5389,
    "MSExchangeKMS",
    datetime(2001, 3, 14, 9, 12, 40, tzinfo=UTC),
    "Information",
    KMS_EXIT,
)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("e13_kms_5389", [E13_EVENT]),
        (
            "two_events_multiline",
            [
                E13_EVENT,
                EventRecord(
                    None,
                    5015,
                    "MSExchangeKMS",
                    datetime(2001, 3, 14, 9, 12, 39, 500000, tzinfo=UTC),
                    "Error",
                    f"{MAPI}\n\nDetails: error=0x80040111",
                ),
            ],
        ),
        ("no_events", []),
    ],
)
def test_wevtutil_text_events_are_read(case: str, expected: list[EventRecord]) -> None:
    assert parse_wevtutil_text(*load("wevtutil_qe", case)) == expected


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("  Source: MSExchangeKMS\r\n", "expected Event"),
        ("Event[0]:\r\n  Source: A\r\n  Source: B\r\n", "field Source printed twice"),
        ("Event[0]:\r\n  Colour: blue\r\n", "unknown field Colour"),
        (
            "Event[0]:\r\n  Source: A\r\n  Description: \r\nx\r\n",
            "event without Date, Event ID, Level",
        ),
        (
            "Event[0]:\r\n  Source: A\r\n  Date: 2001-02-30T09:12:40Z\r\n  Event ID: 1\r\n"
            "  Level: Error\r\n  Description: \r\n",
            "Date is not a valid date",
        ),
        (
            "Event[0]:\r\n  Source: A\r\n  Date: 2001-03-14T09:12:40Z\r\n  Event ID: x1\r\n"
            "  Level: Error\r\n  Description: \r\n",
            "Event ID is not a decimal number",
        ),
    ],
)
def test_wevtutil_edge_output_is_refused_with_a_reason(stdout: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_wevtutil_text(stdout, "", 0)


def test_wevtutil_accepts_an_offset_date_and_a_header_without_colon() -> None:
    stdout = (
        "Event[3]\r\n  Source: MSExchangeKMS\r\n  Date: 2001-03-14T10:12:40.1234567+01:00\r\n"
        "  Event ID: 5389\r\n  Level: Information\r\n"
        "  Description: KMS is exiting\r\nwith error 0.\r\n\r\n"
    )
    (event,) = parse_wevtutil_text(stdout, "", 0)
    assert event.time == datetime(2001, 3, 14, 9, 12, 40, 123456, tzinfo=UTC)
    assert event.message == "KMS is exiting\nwith error 0."
