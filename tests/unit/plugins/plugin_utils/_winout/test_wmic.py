# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wmic parsers (plugins/plugin_utils/_winout/wmic.py): `/value` records, datafile
versions, ntevent records and CIM datetimes, and services' StartMode.

Inputs: the wmic_datafile and wmic_ntevent fixtures (docs/windows-output.md#e11, #e12,
#wmic-ntevent) and `/value` output written inline with wmic's CR CR LF line ends (#wmic-value).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from conftest import load
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    EventRecord,
    ParseError,
    ToolMissing,
    parse_cim_datetime,
    parse_wmic_events,
    parse_wmic_file_version,
    parse_wmic_service_start_modes,
    parse_wmic_values,
)

UTC = timezone.utc
PLUS_ONE = timezone(timedelta(hours=1))
MINUS_FIVE = timezone(timedelta(hours=-5))
KMS_EXIT = "KMS is exiting with error 0."
MAPI = "Microsoft Exchange Key Management service failed logging on as a MAPI client."
NOT_RECOGNIZED = (
    "'wmic' is not recognized as an internal or external command,\r\n"
    "operable program or batch file.\r\n"
)


# ---------------------------------------------------------------------------------------------
# wmic datafile


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("e11_store_sp3", "5.5.2650.23"),
        ("e12_no_instance", None),
        ("no_instance_on_stdout", None),
        ("no_version_resource", None),
        ("empty_version_value", None),
        ("trailing_lone_cr", "5.5.1960.8"),
    ],
)
def test_wmic_file_versions_are_read_or_none(case: str, expected: str | None) -> None:
    assert parse_wmic_file_version(*load("wmic_datafile", case)) == expected


# ---------------------------------------------------------------------------------------------
# wmic /value


@pytest.mark.parametrize(
    ("stdout", "stderr", "exit_code", "expected"),
    [
        (
            "\r\r\n\r\r\nCaption=a=b==c\r\r\nName=x\r\r\n\r\r\n",
            "",
            0,
            [{"Caption": "a=b==c", "Name": "x"}],
        ),
        ("Version=\r\r\n", "", 0, [{"Version": ""}]),
        (
            "A=1\r\r\nB=2\r\r\n\r\r\n\r\r\nA=3\r\r\nB=4\r\r\n",
            "",
            0,
            [{"A": "1", "B": "2"}, {"A": "3", "B": "4"}],
        ),
        (
            "A=first line\r\r\nsecond line\r\r\nB=2\r\r\n",
            "",
            0,
            [{"A": "first line\nsecond line", "B": "2"}],
        ),
        ("A=1\n\nA=2\n", "", 0, [{"A": "1"}, {"A": "2"}]),
        ("", "", 0, []),
        ("\r", "", 0, []),
        ("", "No Instance(s) Available.\r\n", 0, []),
        ("No Instance(s) Available.\r\n", "", 0, []),
    ],
)
def test_wmic_values_split_records_and_names_on_the_first_equals_sign(
    stdout: str, stderr: str, exit_code: int, expected: list[dict[str, str]]
) -> None:
    assert parse_wmic_values(stdout, stderr, exit_code) == expected


@pytest.mark.parametrize(
    ("stdout", "stderr", "exit_code", "message"),
    [
        ("A=1\r\r\nA=2\r\r\n", "", 0, "property A printed twice in one record"),
        ("just text\r\r\n", "", 0, "expected Name=Value"),
        ("A=1\r\r\n", "No Instance(s) Available.\r\n", 0, "output besides 'No Instance"),
        ("No Instance(s) Available.\r\nA=1\r\n", "", 0, "output besides 'No Instance"),
        ("", "", 5, r"the command failed \(exit code 5\): the command printed nothing"),
        ("", "ERROR:\r\nDescription = Access denied\r\n", 1, "Description = Access denied"),
    ],
)
def test_wmic_values_refuse_ambiguous_output(
    stdout: str, stderr: str, exit_code: int, message: str
) -> None:
    with pytest.raises(ParseError, match=message):
        parse_wmic_values(stdout, stderr, exit_code)


def test_wmic_values_with_named_properties_keep_value_text_that_looks_like_a_property() -> None:
    stdout = (
        "\r\r\n\r\r\nEventCode=1\r\r\nMessage=line one\r\r\n\r\r\nEventCode=2 is text here\r\r\n"
        "Other=also text\r\r\n\r\r\n\r\r\nType=Error\r\r\n\r\r\n\r\r\n"
        "eventcode=3\r\r\nMessage=\r\r\nType=Warning\r\r\n\r\r\n"
    )
    assert parse_wmic_values(stdout, "", 0, properties=("EventCode", "Message", "Type")) == [
        {
            "EventCode": "1",
            "Message": "line one\n\nEventCode=2 is text here\nOther=also text",
            "Type": "Error",
        },
        {"EventCode": "3", "Message": "", "Type": "Warning"},
    ]


@given(
    records=st.lists(
        st.dictionaries(
            st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
            st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
            min_size=1,
            max_size=5,
        ),
        max_size=4,
    ),
    blank_lines=st.integers(min_value=1, max_value=3),
)
def test_any_wmic_value_records_round_trip(records: list[dict[str, str]], blank_lines: int) -> None:
    gap = "\r\r\n" * blank_lines
    stdout = gap + gap.join(
        "".join(f"{name}={value}\r\r\n" for name, value in record.items()) for record in records
    )
    assert parse_wmic_values(stdout, "", 0) == records


# ---------------------------------------------------------------------------------------------
# wmic ntevent and CIM datetimes


@pytest.mark.parametrize(
    ("command", "case", "expected"),
    [
        (
            "wmic_ntevent",
            "three_events",
            [
                EventRecord(
                    1207,
                    5389,
                    "MSExchangeKMS",
                    datetime(2001, 3, 14, 9, 12, 40, tzinfo=PLUS_ONE),
                    "Information",
                    KMS_EXIT,
                ),
                EventRecord(
                    1206,
                    5015,
                    "MSExchangeKMS",
                    datetime(2001, 3, 14, 9, 12, 39, 500000, tzinfo=PLUS_ONE),
                    "Error",
                    f"{MAPI}\n\nError=0x80040111, profile=KMS, retries=3",
                ),
                EventRecord(
                    1205,
                    101,
                    "ESE97",
                    datetime(2001, 3, 14, 3, 12, 38, tzinfo=MINUS_FIVE),
                    "Information",
                    "MSExchangeKMS (2480) The database engine stopped.",
                ),
            ],
        ),
        (
            "wmic_ntevent",
            "cp437_message",
            [
                EventRecord(
                    88,
                    5057,
                    "MSExchangeKMS",
                    datetime(2001, 3, 14, 9, 12, 40, 123456, tzinfo=UTC),
                    "Error",
                    "The supplied password is not valid. Serveur: café-01.",
                )
            ],
        ),
        ("wmic_ntevent", "no_instance", []),
    ],
)
def test_wmic_ntevent_records_are_read_in_output_order(
    command: str, case: str, expected: list[EventRecord]
) -> None:
    assert parse_wmic_events(*load(command, case)) == expected


def test_event_times_are_aware_and_comparable_across_offsets() -> None:
    events = parse_wmic_events(*load("wmic_ntevent", "three_events"))
    assert all(event.time.utcoffset() is not None for event in events)
    # 03:12:38 at UTC-5 is 08:12:38 UTC, one hour before 09:12:39 at UTC+1.
    assert events[1].time - events[2].time == timedelta(seconds=1, microseconds=500000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20010314091240.000000+000", datetime(2001, 3, 14, 9, 12, 40, tzinfo=UTC)),
        ("20010314091240.000000+060", datetime(2001, 3, 14, 9, 12, 40, tzinfo=PLUS_ONE)),
        ("20010314091240.000001-300", datetime(2001, 3, 14, 9, 12, 40, 1, tzinfo=MINUS_FIVE)),
        (
            "20010314091240.000000+330",
            datetime(2001, 3, 14, 9, 12, 40, tzinfo=timezone(timedelta(minutes=330))),
        ),
    ],
)
def test_cim_datetimes_carry_their_offset_in_minutes(text: str, expected: datetime) -> None:
    assert parse_cim_datetime(text) == expected
    assert parse_cim_datetime(text).utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "20010314091240",
        "20010314091240.000000",
        "20010314091240.000000+60",
        "2001031409124*.000000+000",
        "20011314091240.000000+000",
        "20010314091240.000000+999x",
        "20010314091240.000000+1440",
        "20010314251240.000000+000",
        "２００１0314091240.000000+000",
    ],
)
def test_anything_but_a_cim_datetime_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="CIM datetime"):
        parse_cim_datetime(text)


@given(
    moment=st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2099, 12, 31)),
    offset=st.integers(min_value=-720, max_value=840),
)
def test_any_cim_datetime_round_trips(moment: datetime, offset: int) -> None:
    text = f"{moment:%Y%m%d%H%M%S.%f}{'+' if offset >= 0 else '-'}{abs(offset):03d}"
    expected = moment.replace(tzinfo=timezone(timedelta(minutes=offset)))
    parsed = parse_cim_datetime(text)
    assert parsed == expected and parsed.utcoffset() == expected.utcoffset()


# ---------------------------------------------------------------------------------------------
# wmic service get Name,StartMode /value


def test_wmic_service_start_modes_are_named_as_sc_names_them() -> None:
    stdout = (
        "\r\r\n\r\r\nName=MSExchangeDS\r\r\nStartMode=Auto\r\r\n\r\r\n"
        "\r\r\nName=MSExchangeKMS\r\r\nStartMode=Manual\r\r\n\r\r\n"
        "\r\r\nName=Tlntsvr\r\r\nStartMode=Disabled\r\r\n\r\r\n\r\r\n\r\r\n"
    )
    assert parse_wmic_service_start_modes(stdout, "", 0) == {
        "MSExchangeDS": "auto",
        "MSExchangeKMS": "manual",
        "Tlntsvr": "disabled",
    }


def test_wmic_service_without_instances_is_empty() -> None:
    assert parse_wmic_service_start_modes("", "No Instance(s) Available.\r\n", 0) == {}


def test_wmic_service_with_an_unknown_start_mode_names_the_line() -> None:
    stdout = "\r\r\nName=Odd\r\r\nStartMode=Unknown\r\r\n\r\r\n"
    with pytest.raises(ParseError, match="line 3: cannot read 'StartMode=Unknown'"):
        parse_wmic_service_start_modes(stdout, "", 0)


def test_wmic_service_missing_on_the_host_raises_tool_missing() -> None:
    stderr = NOT_RECOGNIZED
    with pytest.raises(ToolMissing, match="'wmic' is missing"):
        parse_wmic_service_start_modes("", stderr, 9009)
