# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every parser of plugins/plugin_utils/_winout shares (_base.py): cmd's "is not
recognized", output a parser cannot read, ParseError itself (masking, quoting, pickling), and
garbage in general.
"""

from __future__ import annotations

import copy
import pickle
from typing import Callable

import pytest
from conftest import PASSWORD, all_cases, load
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    CommandFailed,
    ParseError,
    ToolMissing,
    WmiFailed,
    parse_certutil_hash,
    parse_dir,
    parse_not_recognized,
    parse_reg_query,
    parse_sc_qc,
    parse_sc_query,
    parse_wevtutil_text,
    parse_wmic_events,
    parse_wmic_file_version,
    parse_wmic_values,
)

KMS_KEY = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeKMS"
SETUP = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup"


# ---------------------------------------------------------------------------------------------
# cmd.exe "is not recognized", and what every parser does with it


PARSERS: list[tuple[Callable[..., object], str]] = [
    (parse_reg_query, "reg"),
    (parse_sc_query, "sc query"),
    (parse_sc_qc, "sc qc"),
    (parse_wmic_values, "wmic"),
    (parse_wmic_file_version, "wmic datafile"),
    (parse_wmic_events, "wmic ntevent"),
    (parse_wevtutil_text, "wevtutil"),
    (parse_dir, "dir"),
    (parse_certutil_hash, "certutil"),
]


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (load("cmd", "e15_wevtutil_not_recognized")[1], "wevtutil"),
        (load("cmd", "wmic_not_recognized")[1], "wmic"),
        (
            "'C:\\SP4\\update.exe' is not recognized as an internal or external command,\r\n",
            "C:\\SP4\\update.exe",
        ),
        ("", None),
        ("ERROR: Access is denied.\r\n", None),
        ("wmic is not recognized\r\n", None),
    ],
)
def test_the_missing_tool_is_named_from_cmds_message(stderr: str, expected: str | None) -> None:
    assert parse_not_recognized(stderr) == expected


@pytest.mark.parametrize(("parser", "section"), PARSERS)
def test_every_parser_reports_a_missing_tool(parser: Callable[..., object], section: str) -> None:
    with pytest.raises(
        ToolMissing, match=rf"^{section}: 'wevtutil' is missing on this host"
    ) as caught:
        parser(*load("cmd", "e15_wevtutil_not_recognized"))
    assert (caught.value.tool, caught.value.exit_code, caught.value.section) == (
        "wevtutil",
        9009,
        section,
    )
    assert isinstance(caught.value, ParseError)


# ---------------------------------------------------------------------------------------------
# Output a parser cannot read


SECTIONS = dict(PARSERS)
# (parser, fixture command, fixture case, the error it must raise, what its message must match)
REFUSED: list[tuple[Callable[..., object], str, str, type[ParseError], str]] = [
    (
        parse_reg_query,
        "reg_query",
        "garbage_single_spaces",
        ParseError,
        r"^reg: line 4: cannot read '    Services Version REG_DWORD 0x37': expected NAME, a "
        r"REG_ type and data$",
    ),
    (
        parse_reg_query,
        "reg_query",
        "garbage_value_before_key",
        ParseError,
        r"^reg: line 2: .*a value line before any key line",
    ),
    (
        parse_reg_query,
        "reg_query",
        "garbage_bad_dword",
        ParseError,
        r"^reg: line 3: .*0xa5g.*REG_DWORD data is not 0x",
    ),
    (
        parse_reg_query,
        "reg_query",
        "garbage_unknown_type",
        ParseError,
        r"^reg: line 3: .*unknown registry type REG_FOO",
    ),
    (
        parse_reg_query,
        "reg_query",
        "garbage_powershell_list",
        ParseError,
        r"^reg: line 3: .*expected a key line",
    ),
    (
        parse_reg_query,
        "reg_query",
        "access_denied",
        CommandFailed,
        r"^reg: the command failed \(exit code 1\): ERROR: Access is denied\.$",
    ),
    (
        parse_sc_query,
        "sc_query",
        "garbage_usage_text",
        ParseError,
        r"^sc query: line 1: cannot read 'DESCRIPTION:': expected SERVICE_NAME",
    ),
    (
        parse_sc_query,
        "sc_query",
        "garbage_state_mismatch",
        ParseError,
        r"^sc query: line 4: .*STATE: unknown state number or name",
    ),
    (
        parse_sc_query,
        "sc_query",
        "garbage_truncated",
        ParseError,
        r"^sc query: service MSExchangeKMS: missing field\(s\) WIN32_EXIT_CODE, "
        r"SERVICE_EXIT_CODE, CHECKPOINT, WAIT_HINT$",
    ),
    (
        parse_sc_query,
        "sc_enumdepend",
        "no_dependents",
        ParseError,
        r"^sc query: line 1: cannot read 'Enum: entriesRead = 0'",
    ),
    (
        parse_sc_query,
        "sc_qc",
        "e7_kms",
        ParseError,
        r"^sc query: line 5: .*unknown field START_TYPE",
    ),
    (
        parse_sc_qc,
        "sc_qc",
        "garbage_unknown_start_type",
        ParseError,
        r"^sc qc: line 5: .*START_TYPE: unknown start number or name",
    ),
    (
        parse_sc_qc,
        "sc_qc",
        "garbage_truncated",
        ParseError,
        r"^sc qc: service MSExchangeKMS: missing field\(s\) ERROR_CONTROL, ",
    ),
    (
        parse_sc_qc,
        "sc_query",
        "e5_kms_running",
        ParseError,
        r"^sc qc: line 4: .*unknown field STATE",
    ),
    (parse_sc_qc, "sc_enumdepend", "no_dependents", ParseError, r"^sc qc: line 1: "),
    (
        parse_wmic_file_version,
        "wmic_datafile",
        "garbage_table_format",
        ParseError,
        r"^wmic datafile: line 1: cannot read 'Version      ': expected Name=Value$",
    ),
    (
        parse_wmic_file_version,
        "wmic_datafile",
        "garbage_two_files",
        ParseError,
        r"^wmic datafile: 2 files matched; expected one \(second at line 6\)$",
    ),
    (
        parse_wmic_file_version,
        "wmic_datafile",
        "invalid_query_error",
        WmiFailed,
        r"^wmic datafile: the command failed \(exit code 2147749911\): "
        r"Node - KMSNEW ERROR: Description = Invalid query$",
    ),
    (
        parse_wmic_file_version,
        "cmd",
        "wmic_not_recognized",
        ToolMissing,
        r"^wmic datafile: 'wmic' is missing on this host",
    ),
    (
        parse_wmic_file_version,
        "wmic_ntevent",
        "three_events",
        ParseError,
        r"^wmic datafile: 4 files matched; expected one \(second at line 11\)$",
    ),
    (
        parse_wmic_events,
        "wmic_ntevent",
        "garbage_csv_format",
        ParseError,
        r"^wmic ntevent: line 2: cannot read 'Node,EventCode,Message,TimeGenerated': "
        r"expected one of EventCode, Message",
    ),
    (
        parse_wmic_events,
        "wmic_ntevent",
        "garbage_bad_time",
        ParseError,
        r"^wmic ntevent: line 7: cannot read 'TimeGenerated=2001031409124\.000000\+060': "
        r"not a CIM datetime",
    ),
    (
        parse_wmic_events,
        "wmic_ntevent",
        "garbage_missing_property",
        ParseError,
        r"^wmic ntevent: line 3: .*the record starting here has no TimeGenerated, Type$",
    ),
    (
        parse_wmic_events,
        "wmic_datafile",
        "e11_store_sp3",
        ParseError,
        r"^wmic ntevent: line 3: .*expected one of EventCode",
    ),
    (
        parse_wmic_events,
        "cmd",
        "wmic_not_recognized",
        ToolMissing,
        r"^wmic ntevent: 'wmic' is missing on this host",
    ),
    (
        parse_wevtutil_text,
        "wevtutil_qe",
        "garbage_date_without_zone",
        ParseError,
        r"^wevtutil: line 4: cannot read '  Date: 2011-06-13T10:56:22\.880': "
        r"Date has no UTC offset$",
    ),
    (
        parse_wevtutil_text,
        "wevtutil_qe",
        "garbage_xml_format",
        ParseError,
        r"^wevtutil: line 1: cannot read '<Event xmlns=",
    ),
    (
        parse_wevtutil_text,
        "wevtutil_qe",
        "channel_not_found",
        CommandFailed,
        r"^wevtutil: the command failed \(exit code 15007\): Failed to read events\.",
    ),
    (
        parse_wevtutil_text,
        "cmd",
        "e15_wevtutil_not_recognized",
        ToolMissing,
        r"^wevtutil: 'wevtutil' is missing on this host: cmd\.exe does not recognize it "
        r"\(exit code 9009\)$",
    ),
    (
        parse_dir,
        "dir",
        "garbage_grouped_sizes",
        ParseError,
        r"^dir: line 7: .*sizes carry digit grouping: run dir with /-c$",
    ),
    (
        parse_dir,
        "dir",
        "garbage_totals_mismatch",
        ParseError,
        r"^dir: line 9: .*the totals \(3 files, 3162112 bytes, 2 dirs\) do not match the "
        r"entries \(1 files, 2105344 bytes, 2 dirs\)$",
    ),
    (
        parse_dir,
        "dir",
        "garbage_powershell",
        ParseError,
        r"^dir: line 3: cannot read '    Directory: C:\\EXCHSRVR\\KMSDATA'",
    ),
    (parse_dir, "reg_query", "e1_setup_vista", ParseError, r"^dir: line 2: "),
    (parse_dir, "cmd", "wmic_not_recognized", ToolMissing, r"^dir: 'wmic' is missing"),
    (
        parse_certutil_hash,
        "certutil_hashfile",
        "file_not_found",
        CommandFailed,
        r"^certutil: the command failed \(exit code 2147942402\): CertUtil: -hashfile "
        r"command FAILED: 0x80070002 \(WIN32: 2 ERROR_FILE_NOT_FOUND\) CertUtil: The system "
        r"cannot find the file specified\.$",
    ),
    (
        parse_certutil_hash,
        "certutil_hashfile",
        "garbage_wrong_algorithm",
        ParseError,
        r"^certutil: line 1: .*expected 'SHA256 hash of FILE:'$",
    ),
    (
        parse_certutil_hash,
        "certutil_hashfile",
        "garbage_truncated",
        ParseError,
        r"^certutil: expected 3 lines \(header, digest, completion\), got 2",
    ),
    (
        parse_certutil_hash,
        "dir",
        "e14_kmsdata",
        ParseError,
        r"^certutil: line 6: .*expected 3 lines \(header, digest, completion\), got 10",
    ),
]


@pytest.mark.parametrize(
    ("parser", "command", "case", "error", "message"),
    [pytest.param(*row, id=f"{SECTIONS[row[0]]}-{row[1]}-{row[2]}") for row in REFUSED],
)
def test_output_a_parser_cannot_read_raises_the_error_named(
    parser: Callable[..., object], command: str, case: str, error: type[ParseError], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        parser(*load(command, case))
    assert caught.type is error
    assert caught.value.section == SECTIONS[parser]


def test_the_section_name_is_the_callers() -> None:
    with pytest.raises(ParseError, match=r"^setup key: line 4: "):
        parse_reg_query(*load("reg_query", "garbage_single_spaces"), section="setup key")


# ---------------------------------------------------------------------------------------------
# ParseError itself, and garbage in general


@pytest.mark.parametrize(
    ("parser", "text"),
    [
        (
            parse_reg_query,
            f"\r\n{KMS_KEY}\r\n"
            f"    ImagePath    REG_WHAT    C:\\Exchsrvr\\Bin\\Kmserver.exe {PASSWORD}\r\n",
        ),
        (parse_reg_query, f"\r\n{KMS_KEY}\r\n    ImagePath {PASSWORD}\r\n"),
        (parse_reg_query, f"\r\n{KMS_KEY}\r\n    imagepath    REG_DWORD    {PASSWORD}\r\n"),
        (
            parse_sc_qc,
            "SERVICE_NAME: MSExchangeKMS\r\n"
            + f"        BINARY_PATH_NAME   : C:\\Exchsrvr\\Bin\\Kmserver.exe {PASSWORD}\r\n" * 2,
        ),
        (
            parse_sc_qc,
            "SERVICE_NAME: MSExchangeKMS\r\n        BINARY_PATH_NAME   : x\r\n"
            f"        binary_path_name   : {PASSWORD}\r\n",
        ),
    ],
)
def test_parse_errors_never_quote_an_image_path_password(
    parser: Callable[[str, str, int], object], text: str
) -> None:
    with pytest.raises(ParseError) as caught:
        parser(text, "", 0)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in (caught.value.line or "")
    assert "********" in str(caught.value)


def test_parse_errors_carry_their_parts_and_quote_at_most_200_characters() -> None:
    long_line = "    " + "x" * 10_000
    with pytest.raises(ParseError) as caught:
        parse_reg_query(f"\r\n{SETUP}\r\n{long_line}\r\n", "", 0)
    error = caught.value
    assert (error.section, error.line_number, error.stream) == ("reg", 3, "stdout")
    assert error.reason == "expected NAME, a REG_ type and data"
    assert error.line is not None and len(error.line) == 200 and error.line.endswith("...")
    assert len(str(error)) < 300


@pytest.mark.parametrize(
    ("command", "case", "parser"),
    [
        ("reg_query", "garbage_single_spaces", parse_reg_query),
        ("reg_query", "access_denied", parse_reg_query),
        ("cmd", "wmic_not_recognized", parse_wmic_values),
    ],
)
def test_parse_errors_survive_pickling_and_copying(
    command: str, case: str, parser: Callable[..., object]
) -> None:
    with pytest.raises(ParseError) as caught:
        parser(*load(command, case))
    for clone in (pickle.loads(pickle.dumps(caught.value)), copy.deepcopy(caught.value)):
        assert clone.__class__ is caught.type
        assert str(clone) == str(caught.value)
        assert vars(clone) == vars(caught.value)


def test_parse_errors_name_the_stream_and_show_control_characters() -> None:
    with pytest.raises(ParseError, match=r"^sc query: stderr line 1: cannot read 'oops\\tbad': "):
        parse_sc_query("", "oops\tbad\r\n", 1)


FIXTURE_LINES = sorted(
    {
        line
        for command, case in all_cases()
        for text in load(command, case)[:2]
        for line in text.replace("\r", "").split("\n")
    }
)


@pytest.mark.parametrize(("parser", "section"), PARSERS)
@given(
    lines=st.lists(st.one_of(st.sampled_from(FIXTURE_LINES), st.text(max_size=40)), max_size=14),
    on_stderr=st.booleans(),
    exit_code=st.sampled_from([0, 1, 5, 38, 1060, 9009]),
)
def test_garbage_never_raises_anything_but_parse_error(
    parser: Callable[..., object], section: str, lines: list[str], on_stderr: bool, exit_code: int
) -> None:
    text = "\r\n".join(lines)
    stdout, stderr = ("", text) if on_stderr else (text, "")
    try:
        parser(stdout, stderr, exit_code)
    except ParseError as exc:
        assert str(exc).startswith(f"{section}: ")
        assert exc.line is None or len(exc.line) <= 200


def test_exit_9009_in_words_no_parser_knows_says_what_9009_means() -> None:
    # cmd.exe's "is not recognized" in another language (or Server 2003's unsourced words).
    stderr = (
        'Der Befehl "reg" ist entweder falsch geschrieben oder\r\nkonnte nicht gefunden werden.\r\n'
    )
    with pytest.raises(CommandFailed) as raised:
        parse_reg_query("", stderr, 9009, "setup_2013")
    assert str(raised.value).startswith(
        "setup_2013: the command failed (exit code 9009, cmd.exe's code for a command it cannot "
        'find): Der Befehl "reg"'
    )
