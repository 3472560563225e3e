# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers of Windows command output (plugins/plugin_utils/_winout.py).

Fed the byte-exact fixtures in tests/unit/fixtures (see its README.md: examples E1-E15 of
windows-output.md, variants its rules allow, and garbage), decoded as `_winrs.py` would.
"""

from __future__ import annotations

import copy
import json
import pickle
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    CommandFailed,
    DirEntry,
    DirListing,
    EventRecord,
    ParseError,
    RegKey,
    RegQuery,
    ScFailure,
    ServiceConfig,
    ServiceStatus,
    ToolMissing,
    mask_image_path,
    parse_certutil_hash,
    parse_cim_datetime,
    parse_dir,
    parse_not_recognized,
    parse_reg_query,
    parse_sc_qc,
    parse_sc_query,
    parse_wevtutil_text,
    parse_wmic_events,
    parse_wmic_file_version,
    parse_wmic_values,
    split_image_path,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PASSWORD = "HZGYYHACWLQACTI"  # the example KM Server startup password of KB Q184420
SETUP = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup"
KMSERVER = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\KMServer"
KMS_SERVICE = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeKMS"
KMS_KEY = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeKMS"
UTC = timezone.utc


def meta_of(command: str, case: str) -> dict[str, Any]:
    return json.loads((FIXTURES / command / f"{case}.meta.json").read_text(encoding="utf-8"))


def load(command: str, case: str) -> tuple[str, str, int]:
    """(stdout, stderr, exit_code) of a fixture, decoded with its code page."""
    meta = meta_of(command, case)
    text = (FIXTURES / command / f"{case}.bin").read_bytes().decode(meta["encoding"])
    stdout, stderr = (text, "") if meta["stream"] == "stdout" else ("", text)
    if "stderr_file" in meta:
        stderr = (FIXTURES / command / meta["stderr_file"]).read_bytes().decode(meta["encoding"])
    return stdout, stderr, meta["exit_code"]


def all_cases() -> list[tuple[str, str]]:
    return sorted(
        (meta.parent.name, meta.name[: -len(".meta.json")])
        for meta in FIXTURES.glob("*/*.meta.json")
    )


# ---------------------------------------------------------------------------------------------
# The fixtures themselves


def test_there_are_at_least_forty_fixtures_each_with_its_meta() -> None:
    cases = all_cases()
    assert len(cases) >= 40
    for command, case in cases:
        assert (FIXTURES / command / f"{case}.bin").is_file()
        meta = meta_of(command, case)
        assert meta["stream"] in ("stdout", "stderr")
        assert isinstance(meta["exit_code"], int)
        assert meta["source"]


@pytest.mark.parametrize(("command", "case"), all_cases())
def test_fixtures_keep_windows_line_ends(command: str, case: str) -> None:
    data = (FIXTURES / command / f"{case}.bin").read_bytes()
    # Every LF ends a CRLF; a checkout that converts line ends would break this.
    assert data.count(b"\n") == data.count(b"\r\n")
    # wmic's own stdout ends every line with CR CR LF (windows-output.md §0).
    if command.startswith("wmic") and meta_of(command, case)["stream"] == "stdout":
        assert data.count(b"\n") == data.count(b"\r\r\n")


# ---------------------------------------------------------------------------------------------
# reg query


@pytest.mark.parametrize(
    ("case", "key", "name", "expected"),
    [
        ("e1_setup_vista", SETUP, "Services", "C:\\EXCHSRVR"),
        ("e1_setup_vista", SETUP, "Services Version", 55),
        ("e1_setup_vista", SETUP, "ServicePackNumber", 3),
        ("e1_setup_vista", SETUP, "NewestBuild", 2650),
        ("e1_setup_vista", SETUP, "Build", 1960),
        ("e2_empty_reg_sz_vista", KMSERVER, "MasterPasswordPath", ""),
        ("e3_services_version_xp", SETUP, "services version", 55),
        ("empty_reg_sz_trailing_spaces_trimmed", KMSERVER, "MasterPasswordPath", ""),
        ("empty_reg_sz_trailing_spaces_trimmed", KMSERVER, "BackupPasswordPath", "A:\\"),
        ("setup_recursive_vista", SETUP + "\\Web Connector", "Installed", 1),
        ("xp_no_name_default", KMSERVER, "", "KM Server"),
        ("xp_no_name_default", KMSERVER, "MasterPasswordPath", "A:\\"),
        ("xp_no_name_default", KMSERVER, "BackupPasswordPath", ""),
        ("xp_no_name_default", KMSERVER, "LogLevel", 0x18),
        ("xp_setup_with_subkey", SETUP, "NewestBuild", 2650),
        ("win2000_reg2_header", SETUP, "ServicePackNumber", 3),
        (
            "upper_hex_and_other_case",
            "hklm\\software\\microsoft\\exchange\\setup\\",
            "NEWESTBUILD",
            2653,
        ),
        (
            "upper_hex_and_other_case",
            "HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup",
            "ServicePackNumber",
            4,
        ),
        ("upper_hex_and_other_case", SETUP, "Services Version", 55),
        ("extra_empty_lines", SETUP, "Build", 1960),
        ("default_value_set_vista", SETUP + "\\Key Management Server", "", "KM Server"),
        ("kms_service_key_password_in_imagepath", KMS_SERVICE, "Start", 3),
        ("kms_service_key_password_in_imagepath", KMS_SERVICE, "Type", 0x10),
        (
            "kms_service_key_password_in_imagepath",
            KMS_SERVICE,
            "ImagePath",
            f"C:\\Exchsrvr\\Bin\\Kmserver.exe {PASSWORD}",
        ),
        (
            "kms_service_key_password_in_imagepath",
            KMS_SERVICE,
            "DependOnService",
            ("MSExchangeDS",),
        ),
        ("kms_service_key_password_in_imagepath", KMS_SERVICE, "DependOnGroup", ()),
        ("kms_service_key_password_in_imagepath", KMS_SERVICE, "ObjectName", "EXCHDOM\\ExchSvc"),
        (
            "value_types_vista",
            KMSERVER,
            "FailureActions",
            bytes.fromhex("80510100000000000000000003000000"),
        ),
        ("value_types_vista", KMSERVER, "Flags", b""),
        ("value_types_vista", KMSERVER, "InstallTime", 0x1C0AC3C2B8E4000),
        ("value_types_vista", KMSERVER, "DependOnService", ("MSExchangeDS", "MSExchangeIS")),
        ("value_types_vista", KMSERVER, "LogPath", "%SystemRoot%\\system32\\kms.log"),
        ("value_types_vista", KMSERVER, "Swapped", 1),
        ("value_types_vista", KMSERVER, "Comment", "a  b    c "),
    ],
)
def test_reg_values_are_read_with_their_types(
    case: str, key: str, name: str, expected: object
) -> None:
    query = parse_reg_query(*load("reg_query", case))
    assert query.found
    value = query.value(key, name)
    assert value is not None
    assert value.data == expected
    assert isinstance(value.data, type(expected))
    assert value.is_default == (name == "")


@pytest.mark.parametrize(
    ("case", "keys"),
    [
        ("e1_setup_vista", (SETUP, SETUP + "\\Key Management Server")),
        ("e2_empty_reg_sz_vista", (KMSERVER,)),
        (
            "setup_recursive_vista",
            (
                SETUP,
                SETUP + "\\Key Management Server",
                SETUP + "\\Web Connector",
                SETUP + "\\Web Connector\\Parts",
            ),
        ),
        ("xp_setup_with_subkey", (SETUP, SETUP + "\\Key Management Server")),
        ("e4_missing_key", ()),
        ("missing_value_leading_empty_line", ()),
    ],
)
def test_reg_key_lines_are_kept_in_output_order(case: str, keys: tuple[str, ...]) -> None:
    assert tuple(key.path for key in parse_reg_query(*load("reg_query", case)).keys) == keys


def test_reg_subkeys_are_the_direct_children_printed() -> None:
    recursive = parse_reg_query(*load("reg_query", "setup_recursive_vista"))
    assert recursive.subkeys("hklm\\software\\microsoft\\exchange\\setup") == (
        "Key Management Server",
        "Web Connector",
    )
    assert recursive.subkeys(SETUP + "\\Web Connector") == ("Parts",)
    assert recursive.subkeys(SETUP + "\\Key Management Server") == ()
    listing = parse_reg_query(*load("reg_query", "e1_setup_vista"))
    assert listing.subkeys(SETUP) == ("Key Management Server",)
    key = listing.key("HKLM\\SOFTWARE\\MICROSOFT\\EXCHANGE\\SETUP\\KEY MANAGEMENT SERVER")
    assert key is not None and key.values == ()


def test_a_key_without_values_is_listed_when_the_caller_names_it() -> None:
    exchange = "HKLM\\SOFTWARE\\Microsoft\\Exchange"
    listing = parse_reg_query(*load("reg_query", "key_without_values_lists_subkeys"))
    assert listing.found and listing.key(exchange) is None
    assert listing.subkeys(exchange) == ("KMServer", "Setup")
    named = parse_reg_query(*load("reg_query", "key_without_values_lists_subkeys"), key=exchange)
    assert [key.path for key in named.keys] == [exchange, KMSERVER, SETUP]
    assert named.key(exchange) == RegKey(exchange)
    empty = parse_reg_query(*load("reg_query", "empty_key"), key=exchange)
    assert empty == RegQuery(found=True, keys=(RegKey(exchange),))
    assert parse_reg_query(*load("reg_query", "empty_key")) == RegQuery(found=True, keys=())
    with pytest.raises(ParseError, match=r"^reg: no key line in the output \(exit code 1\)$"):
        parse_reg_query("\r\n", "", 1)


def test_reg_skips_the_end_of_search_line() -> None:
    stdout = (
        f"\r\n{SETUP}\r\n    Build    REG_DWORD    0x7a8\r\n\r\n"
        "End of search: 1 match(es) found.\r\n"
    )
    value = parse_reg_query(stdout, "", 0).value(SETUP, "Build")
    assert value is not None and value.data == 1960


@pytest.mark.parametrize("case", ["e4_missing_key", "missing_value_leading_empty_line"])
def test_a_missing_registry_key_is_an_answer_not_an_error(case: str) -> None:
    query = parse_reg_query(*load("reg_query", case))
    assert query == RegQuery(found=False, keys=())
    assert query.value(SETUP, "Services") is None
    assert query.key(SETUP) is None


def test_a_missing_value_is_none_and_value_not_set_is_no_value() -> None:
    query = parse_reg_query(*load("reg_query", "value_types_vista"))
    assert query.value(KMSERVER, "") is None  # "(Default)    REG_SZ    (value not set)"
    assert query.value(KMSERVER, "NoSuchValue") is None
    assert query.value(SETUP, "FailureActions") is None
    assert [value.name for value in query.keys[0].values][0] == "FailureActions"


def test_reg_accepts_a_remote_key_line() -> None:
    remote_key = "\\\\KMSOLD\\HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup"
    stdout = f"\r\n{remote_key}\r\n    NewestBuild    REG_DWORD    0xa5a\r\n\r\n"
    query = parse_reg_query(stdout, "", 0)
    assert query.keys[0].path == remote_key
    value = query.value(remote_key, "newestbuild")
    assert value is not None and value.data == 2650


def test_reg_trusts_the_text_over_the_exit_code() -> None:
    # XP's reg.exe may exit 1 for `/ve` and `/v name /s` queries that succeed (§1.2).
    stdout, stderr, _code = load("reg_query", "e3_services_version_xp")
    value = parse_reg_query(stdout, stderr, 1).value(SETUP, "Services Version")
    assert value is not None and value.data == 55


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        (
            "garbage_single_spaces",
            ParseError,
            r"^reg: line 4: cannot read '    Services Version REG_DWORD 0x37': expected NAME, a "
            r"REG_ type and data$",
        ),
        (
            "garbage_value_before_key",
            ParseError,
            r"^reg: line 2: .*a value line before any key line",
        ),
        ("garbage_bad_dword", ParseError, r"^reg: line 3: .*0xa5g.*REG_DWORD data is not 0x"),
        ("garbage_unknown_type", ParseError, r"^reg: line 3: .*unknown registry type REG_FOO"),
        ("garbage_powershell_list", ParseError, r"^reg: line 3: .*expected a key line"),
        (
            "access_denied",
            CommandFailed,
            r"^reg: the command failed \(exit code 1\): ERROR: Access is denied\.$",
        ),
    ],
)
def test_reg_output_that_is_not_an_answer_raises(
    case: str, error: type[ParseError], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        parse_reg_query(*load("reg_query", case))
    assert caught.type is error
    assert caught.value.section == "reg"


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("", "no key line in the output"),
        ("\r\n! REG.EXE VERSION three\r\n", "expected '! REG.EXE VERSION n.n'"),
        (f"\r\n{SETUP}\r\n    Build    REG_DWORD    0x100000000\r\n", "in range"),
        (f"\r\n{SETUP}\r\n    Build    REG_DWORD    \r\n", "REG_DWORD data"),
        (f"\r\n{SETUP}\r\n    Blob    REG_BINARY    ABC\r\n", "pairs of hexadecimal digits"),
        (f"\r\n{SETUP}\r\n    A    REG_SZ    x\r\n    a    REG_SZ    y\r\n", "printed twice"),
        (f"\r\n{SETUP}\r\n\r\n{SETUP.upper()}\r\n", "the same key is printed twice"),
        (f"\r\n{SETUP}\r\n\tBuild\tREG_DWORD\t0x7a8\r\n", "expected NAME, a REG_ type"),
    ],
)
def test_reg_edge_output_is_refused_with_a_reason(stdout: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_reg_query(stdout, "", 0)


def test_the_section_name_is_the_callers() -> None:
    with pytest.raises(ParseError, match=r"^setup key: line 4: "):
        parse_reg_query(*load("reg_query", "garbage_single_spaces"), section="setup key")


@given(number=st.integers(min_value=0, max_value=0xFFFFFFFF), upper=st.booleans(), xp=st.booleans())
def test_any_dword_printed_as_windows_does_round_trips(number: int, upper: bool, xp: bool) -> None:
    digits = f"{number:X}" if upper else f"{number:x}"
    if xp:
        stdout = (
            f"\r\n! REG.EXE VERSION 3.0\r\n\r\n{SETUP}\r\n"
            f"    NewestBuild\tREG_DWORD\t0x{digits}\r\n\r\n"
        )
    else:
        stdout = f"\r\n{SETUP}\r\n    NewestBuild    REG_DWORD    0x{digits}\r\n\r\n"
    value = parse_reg_query(stdout, "", 0).value(SETUP, "NewestBuild")
    assert value is not None and value.data == number


NAME_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20
).filter(lambda name: name.casefold() not in ("(default)", "<no", "<no name>"))


@given(
    words=st.lists(NAME_TEXT, min_size=1, max_size=3),
    data=st.text(
        alphabet=st.characters(
            blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x85"
        ),
        max_size=60,
    ),
)
def test_any_reg_sz_name_with_single_spaces_and_any_data_round_trip(
    words: list[str], data: str
) -> None:
    name = " ".join(words)
    stdout = f"\r\n{SETUP}\r\n    {name}    REG_SZ    {data}\r\n\r\n"
    value = parse_reg_query(stdout, "", 0).value(SETUP, name)
    assert value is not None
    assert (value.name, value.data) == (name, data)


# ---------------------------------------------------------------------------------------------
# sc query / queryex / start / stop

RUNNING_CONTROLS = ("STOPPABLE", "NOT_PAUSABLE", "ACCEPTS_SHUTDOWN")
PENDING_CONTROLS = ("NOT_STOPPABLE", "NOT_PAUSABLE", "IGNORES_SHUTDOWN")


def status(state: str, code: int, controls: tuple[str, ...], **changes: Any) -> ServiceStatus:
    fields: dict[str, Any] = {
        "name": "MSExchangeKMS",
        "service_type": 0x10,
        "state": state,
        "state_code": code,
        "controls": controls,
        "win32_exit_code": 0,
        "service_exit_code": 0,
        "checkpoint": 0,
        "wait_hint": 0,
    }
    fields.update(changes)
    return ServiceStatus(**fields)


MISSING = "The specified service does not exist as an installed service."
E5 = load("sc_query", "e5_kms_running")[0]


@pytest.mark.parametrize(
    ("command", "case", "expected"),
    [
        ("sc_query", "e5_kms_running", status("running", 4, RUNNING_CONTROLS)),
        (
            "sc_query",
            "kms_stopped_no_controls_line",
            status("stopped", 1, (), win32_exit_code=1077),
        ),
        (
            "sc_query",
            "kms_stopped_service_specific_error",
            status("stopped", 1, PENDING_CONTROLS, win32_exit_code=1066, service_exit_code=1),
        ),
        (
            "sc_query",
            "queryex_running_pid_flags",
            status("running", 4, RUNNING_CONTROLS, pid=1320, flags=""),
        ),
        (
            "sc_query",
            "queryex_flags_trimmed_interactive",
            status("running", 4, RUNNING_CONTROLS, pid=1320, flags="", service_type=0x110),
        ),
        ("sc_query", "reactos_tab_indent", status("running", 4, RUNNING_CONTROLS)),
        (
            "sc_query",
            "missing_service_1060",
            ScFailure("EnumQueryServicesStatus:OpenService", 1060, MISSING),
        ),
        ("sc_query", "access_denied_5", ScFailure("OpenSCManager", 5, "Access is denied.")),
        (
            "sc_start",
            "e6_start_pending",
            status("start_pending", 2, PENDING_CONTROLS, wait_hint=2000, pid=1320, flags=""),
        ),
        (
            "sc_start",
            "already_running_1056",
            ScFailure("StartService", 1056, "An instance of the service is already running."),
        ),
        (
            "sc_start",
            "already_running_exit_cut_to_8_bits",
            ScFailure("StartService", 1056, "An instance of the service is already running."),
        ),
        (
            "sc_start",
            "timeout_1053",
            ScFailure(
                "StartService",
                1053,
                "The service did not respond to the start or control request in a timely fashion.",
            ),
        ),
        ("sc_start", "missing_service_1060", ScFailure("StartService: OpenService", 1060, MISSING)),
        (
            "sc_stop",
            "e9_not_started_1062",
            ScFailure("ControlService", 1062, "The service has not been started."),
        ),
        (
            "sc_stop",
            "not_started_no_final_line_exit_38",
            ScFailure("ControlService", 1062, "The service has not been started."),
        ),
        ("sc_stop", "stop_pending", status("stop_pending", 3, PENDING_CONTROLS, wait_hint=2000)),
        (
            "sc_stop",
            "dependent_services_1051",
            ScFailure(
                "ControlService",
                1051,
                "A stop control has been sent to a service that other running services are "
                "dependent on.",
            ),
        ),
    ],
)
def test_sc_status_blocks_and_failures_are_answers(
    command: str, case: str, expected: ServiceStatus | ScFailure
) -> None:
    assert parse_sc_query(*load(command, case)) == expected


def test_the_sc_error_number_comes_from_the_text_not_the_exit_code() -> None:
    stdout, stderr, exit_code = load("sc_stop", "not_started_no_final_line_exit_38")
    assert exit_code == 38
    result = parse_sc_query(stdout, stderr, exit_code)
    assert isinstance(result, ScFailure) and result.error == 1062 and not result.service_missing
    missing = parse_sc_query(*load("sc_query", "missing_service_1060"))
    assert isinstance(missing, ScFailure) and missing.service_missing
    # The [SC] text on stderr instead of stdout (the stream is not established, §0).
    stdout, stderr, exit_code = load("sc_qc", "e8_missing_1060")
    assert parse_sc_qc(stderr, stdout, exit_code) == parse_sc_qc(stdout, stderr, exit_code)


def test_sc_query_enumeration_form_keeps_the_display_name() -> None:
    stdout = (
        "\r\nSERVICE_NAME: MSExchangeKMS\r\n"
        "DISPLAY_NAME: Microsoft Exchange Key Management Server\r\n"
        "        TYPE               : 10  WIN32_OWN_PROCESS  \r\n"
        "        STATE              : 1  STOPPED \r\n"
        "        WIN32_EXIT_CODE    : -2147024891  (0x80070005)\r\n"
        "        SERVICE_EXIT_CODE  : 0  (0x0)\r\n"
        "        CHECKPOINT         : 0x0\r\n        WAIT_HINT          : 0x0\r\n\r\n"
    )
    result = parse_sc_query(stdout, "", 0)
    assert isinstance(result, ServiceStatus)
    assert result.display_name == "Microsoft Exchange Key Management Server"
    assert result.win32_exit_code == 0x80070005


@pytest.mark.parametrize(
    ("command", "case", "message"),
    [
        (
            "sc_query",
            "garbage_usage_text",
            r"^sc query: line 1: cannot read 'DESCRIPTION:': expected SERVICE_NAME",
        ),
        (
            "sc_query",
            "garbage_state_mismatch",
            r"^sc query: line 4: .*STATE: unknown state number or name",
        ),
        (
            "sc_query",
            "garbage_truncated",
            r"^sc query: service MSExchangeKMS: missing field\(s\) WIN32_EXIT_CODE, "
            r"SERVICE_EXIT_CODE, CHECKPOINT, WAIT_HINT$",
        ),
        (
            "net_stop",
            "e10_kms_stopped",
            r"^sc query: line 1: cannot read 'The Microsoft Exchange Key Management Server "
            r"service is stopping\.'",
        ),
        ("sc_qc", "e7_kms", r"^sc query: line 5: .*unknown field START_TYPE"),
    ],
)
def test_sc_query_refuses_what_is_not_a_status_block(command: str, case: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_sc_query(*load(command, case))


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("", r"no output \(exit code 0\)"),
        ("\r\n\r\n", "no output"),
        ("SERVICE_NAME: A\r\nSERVICE_NAME: B\r\n", "a second SERVICE_NAME"),
        ("SERVICE_NAME: A\r\n        TYPE : 10  X\r\n        TYPE : 10  X\r\n", "printed twice"),
        (
            E5.replace("10  WIN32_OWN_PROCESS", "WIN32_OWN_PROCESS"),
            "line 3: .*TYPE is not a number",
        ),
        (
            E5.replace("0x7d0", "2000").replace(
                "WAIT_HINT          : 0x0", "WAIT_HINT          : 20"
            ),
            "line 9: .*WAIT_HINT is not 0x",
        ),
        (
            E5.replace("(STOPPABLE", "(STOPPABLE)\r\n        (STOPPABLE"),
            "line 6: .*expected an indented",
        ),
        ("[SC] OpenService FAILED 1060:\r\n[SC] OpenService FAILED 1060:\r\n", "a second"),
        ("        TYPE : 10  X\r\n", "expected SERVICE_NAME"),
        ("SERVICE_NAME: A\r\n    (STOPPABLE)\r\n", "expected an indented"),
    ],
)
def test_sc_edge_output_is_refused_with_a_reason(stdout: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_sc_query(stdout, "", 0)


def test_sc_exit_codes_must_agree_in_decimal_and_hex() -> None:
    stdout, stderr, exit_code = load("sc_query", "kms_stopped_no_controls_line")
    with pytest.raises(ParseError, match="WIN32_EXIT_CODE: the decimal and hexadecimal"):
        parse_sc_query(stdout.replace("(0x435)", "(0x436)"), stderr, exit_code)


# ---------------------------------------------------------------------------------------------
# sc qc, ImagePath and the KM Server password


def config(**changes: Any) -> ServiceConfig:
    fields: dict[str, Any] = {
        "name": "MSExchangeKMS",
        "service_type": 0x10,
        "start_type": "manual",
        "start_code": 3,
        "delayed": False,
        "error_control": 1,
        "binary_path": "C:\\Exchsrvr\\Bin\\Kmserver.exe",
        "load_order_group": "",
        "tag": 0,
        "display_name": "Microsoft Exchange Key Management Server",
        "dependencies": ("MSExchangeDS",),
        "account": "EXCHDOM\\ExchSvc",
    }
    fields.update(changes)
    return ServiceConfig(**fields)


TRANSPORT = '"C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Bin\\MSExchangeTransport.exe"'


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("e7_kms", config()),
        ("e8_missing_1060", ScFailure("OpenService", 1060, MISSING)),
        ("two_dependencies", config(dependencies=("MSExchangeDS", "MSExchangeSA"))),
        (
            "image_path_with_password",
            config(binary_path=f"C:\\Exchsrvr\\Bin\\Kmserver.exe {PASSWORD}"),
        ),
        (
            "quoted_path_delayed_auto",
            config(
                name="MSExchangeTransport",
                start_type="auto",
                start_code=2,
                delayed=True,
                binary_path=TRANSPORT,
                display_name="Microsoft Exchange Transport",
                dependencies=("MSExchangeADTopology",),
                account="LocalSystem",
            ),
        ),
        (
            "empty_fields_without_trailing_space",
            config(start_type="disabled", start_code=4, dependencies=(), account="LocalSystem"),
        ),
    ],
)
def test_sc_qc_reads_the_service_configuration(
    case: str, expected: ServiceConfig | ScFailure
) -> None:
    assert parse_sc_qc(*load("sc_qc", case)) == expected


@pytest.mark.parametrize(
    ("command", "case", "message"),
    [
        (
            "sc_qc",
            "garbage_unknown_start_type",
            r"^sc qc: line 5: .*START_TYPE: unknown start number or name",
        ),
        (
            "sc_qc",
            "garbage_truncated",
            r"^sc qc: service MSExchangeKMS: missing field\(s\) ERROR_CONTROL, ",
        ),
        ("sc_query", "e5_kms_running", r"^sc qc: line 4: .*unknown field STATE"),
        ("net_stop", "e10_kms_stopped", r"^sc qc: line 1: "),
    ],
)
def test_sc_qc_refuses_what_is_not_a_configuration(command: str, case: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_sc_qc(*load(command, case))


def test_a_password_in_the_image_path_is_never_shown() -> None:
    result = parse_sc_qc(*load("sc_qc", "image_path_with_password"))
    assert isinstance(result, ServiceConfig)
    assert split_image_path(result.binary_path) == ("C:\\Exchsrvr\\Bin\\Kmserver.exe", PASSWORD)
    assert result.masked_binary_path == "C:\\Exchsrvr\\Bin\\Kmserver.exe ********"
    assert PASSWORD not in repr(result)
    assert PASSWORD not in str(result)
    registry = parse_reg_query(*load("reg_query", "kms_service_key_password_in_imagepath"))
    image_path = registry.value(KMS_SERVICE, "imagepath")
    assert image_path is not None and isinstance(image_path.data, str)
    assert mask_image_path(image_path.data) == "C:\\Exchsrvr\\Bin\\Kmserver.exe ********"


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


@pytest.mark.parametrize(
    ("image_path", "split", "masked"),
    [
        (
            "C:\\Exchsrvr\\Bin\\Kmserver.exe",
            ("C:\\Exchsrvr\\Bin\\Kmserver.exe", ""),
            "C:\\Exchsrvr\\Bin\\Kmserver.exe",
        ),
        (
            f"C:\\Exchsrvr\\Bin\\Kmserver.exe {PASSWORD}",
            ("C:\\Exchsrvr\\Bin\\Kmserver.exe", PASSWORD),
            "C:\\Exchsrvr\\Bin\\Kmserver.exe ********",
        ),
        (
            f"C:\\Exchsrvr\\Bin\\KMSERVER.EXE\t{PASSWORD}",
            ("C:\\Exchsrvr\\Bin\\KMSERVER.EXE", PASSWORD),
            "C:\\Exchsrvr\\Bin\\KMSERVER.EXE ********",
        ),
        (
            f"C:\\Program Files\\Exchsrvr\\bin\\kmserver.exe  {PASSWORD} -x",
            ("C:\\Program Files\\Exchsrvr\\bin\\kmserver.exe", f"{PASSWORD} -x"),
            "C:\\Program Files\\Exchsrvr\\bin\\kmserver.exe ********",
        ),
        (
            f'"C:\\Program Files\\Exchsrvr\\bin\\kmserver.exe" {PASSWORD}',
            ("C:\\Program Files\\Exchsrvr\\bin\\kmserver.exe", PASSWORD),
            '"C:\\Program Files\\Exchsrvr\\bin\\kmserver.exe" ********',
        ),
        (TRANSPORT, (TRANSPORT.strip('"'), ""), TRANSPORT),
        (
            f'"C:\\Exchsrvr\\Bin\\Kmserver.exe {PASSWORD}"',
            (f"C:\\Exchsrvr\\Bin\\Kmserver.exe {PASSWORD}", ""),
            "********",
        ),
        (
            f'"C:\\Exchsrvr\\Bin\\Kmserver.exe {PASSWORD}',
            ("C:\\Exchsrvr\\Bin\\Kmserver.exe", PASSWORD),
            '"C:\\Exchsrvr\\Bin\\Kmserver.exe" ********',
        ),
        (
            f"C:\\Exchsrvr\\Bin\\Kmserver.exe{PASSWORD}",
            (f"C:\\Exchsrvr\\Bin\\Kmserver.exe{PASSWORD}", ""),
            "********",
        ),
        (
            f"C:\\Exchsrvr\\Bin\\Kmserver {PASSWORD}",
            ("C:\\Exchsrvr\\Bin\\Kmserver", PASSWORD),
            "********",
        ),
        (
            "system32\\DRIVERS\\kmsflt.sys",
            ("system32\\DRIVERS\\kmsflt.sys", ""),
            "system32\\DRIVERS\\kmsflt.sys",
        ),
        (
            "C:\\Windows\\system32\\svchost.exe -k netsvcs",
            ("C:\\Windows\\system32\\svchost.exe", "-k netsvcs"),
            "C:\\Windows\\system32\\svchost.exe ********",
        ),
        ("", ("", ""), ""),
    ],
)
def test_image_paths_split_into_executable_and_masked_arguments(
    image_path: str, split: tuple[str, str], masked: str
) -> None:
    assert split_image_path(image_path) == split
    assert mask_image_path(image_path) == masked


@given(
    password=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!$%", min_size=8, max_size=20),
    folder=st.sampled_from(["C:\\Exchsrvr\\Bin", "D:\\Program Files\\Exchsrvr\\bin", "c:\\exch"]),
    executable=st.sampled_from(["Kmserver.exe", "KMSERVER.EXE", "kmserver"]),
    separator=st.sampled_from([" ", "  ", "\t", ""]),
    quoted=st.booleans(),
)
def test_masking_never_leaks_a_password_appended_to_the_image_path(
    password: str, folder: str, executable: str, separator: str, quoted: bool
) -> None:
    path = f"{folder}\\{executable}"
    image_path = (f'"{path}"' if quoted else path) + separator + password
    assert password not in mask_image_path(image_path)


# ---------------------------------------------------------------------------------------------
# wmic /value, wmic datafile


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


@pytest.mark.parametrize(
    ("command", "case", "error", "message"),
    [
        (
            "wmic_datafile",
            "garbage_table_format",
            ParseError,
            r"^wmic datafile: line 1: cannot read 'Version      ': expected Name=Value$",
        ),
        (
            "wmic_datafile",
            "garbage_two_files",
            ParseError,
            r"^wmic datafile: 2 files matched; expected one \(second at line 6\)$",
        ),
        (
            "wmic_datafile",
            "invalid_query_error",
            CommandFailed,
            r"^wmic datafile: the command failed \(exit code 2147749911\): "
            r"Node - KMSNEW ERROR: Description = Invalid query$",
        ),
        (
            "cmd",
            "wmic_not_recognized",
            ToolMissing,
            r"^wmic datafile: 'wmic' is missing on this host",
        ),
        (
            "wmic_ntevent",
            "three_events",
            ParseError,
            r"^wmic datafile: 4 files matched; expected one \(second at line 11\)$",
        ),
    ],
)
def test_wmic_datafile_refuses_what_is_not_one_version(
    command: str, case: str, error: type[ParseError], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        parse_wmic_file_version(*load(command, case))
    assert caught.type is error


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
# Event records: wmic ntevent and wevtutil

PLUS_ONE = timezone(timedelta(hours=1))
MINUS_FIVE = timezone(timedelta(hours=-5))
KMS_EXIT = "KMS is exiting with error 0."
MAPI = "Microsoft Exchange Key Management service failed logging on as a MAPI client."


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
    ("command", "case", "error", "message"),
    [
        (
            "wmic_ntevent",
            "garbage_csv_format",
            ParseError,
            r"^wmic ntevent: line 2: cannot read 'Node,EventCode,Message,TimeGenerated': "
            r"expected one of EventCode, Message",
        ),
        (
            "wmic_ntevent",
            "garbage_bad_time",
            ParseError,
            r"^wmic ntevent: line 7: cannot read 'TimeGenerated=2001031409124\.000000\+060': "
            r"not a CIM datetime",
        ),
        (
            "wmic_ntevent",
            "garbage_missing_property",
            ParseError,
            r"^wmic ntevent: line 3: .*the record starting here has no TimeGenerated, Type$",
        ),
        (
            "wmic_datafile",
            "e11_store_sp3",
            ParseError,
            r"^wmic ntevent: line 3: .*expected one of EventCode",
        ),
        (
            "cmd",
            "wmic_not_recognized",
            ToolMissing,
            r"^wmic ntevent: 'wmic' is missing on this host",
        ),
    ],
)
def test_wmic_ntevent_refuses_what_is_not_an_event_list(
    command: str, case: str, error: type[ParseError], message: str
) -> None:
    with pytest.raises(error, match=message):
        parse_wmic_events(*load(command, case))


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


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "e13_kms_5389",
            [
                EventRecord(
                    None,
                    5389,
                    "MSExchangeKMS",
                    datetime(2001, 3, 14, 9, 12, 40, tzinfo=UTC),
                    "Information",
                    KMS_EXIT,
                )
            ],
        ),
        (
            "two_events_multiline",
            [
                EventRecord(
                    None,
                    5389,
                    "MSExchangeKMS",
                    datetime(2001, 3, 14, 9, 12, 40, tzinfo=UTC),
                    "Information",
                    KMS_EXIT,
                ),
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
    ("command", "case", "error", "message"),
    [
        (
            "wevtutil_qe",
            "garbage_date_without_zone",
            ParseError,
            r"^wevtutil: line 4: cannot read '  Date: 2011-06-13T10:56:22\.880': "
            r"Date has no UTC offset$",
        ),
        (
            "wevtutil_qe",
            "garbage_xml_format",
            ParseError,
            r"^wevtutil: line 1: cannot read '<Event xmlns=",
        ),
        (
            "wevtutil_qe",
            "channel_not_found",
            CommandFailed,
            r"^wevtutil: the command failed \(exit code 15007\): Failed to read events\.",
        ),
        (
            "cmd",
            "e15_wevtutil_not_recognized",
            ToolMissing,
            r"^wevtutil: 'wevtutil' is missing on this host: cmd\.exe does not recognize it "
            r"\(exit code 9009\)$",
        ),
    ],
)
def test_wevtutil_refuses_what_is_not_a_text_event_list(
    command: str, case: str, error: type[ParseError], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        parse_wevtutil_text(*load(command, case))
    assert caught.type is error


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


# ---------------------------------------------------------------------------------------------
# dir /-c

E14_ENTRIES = (
    DirEntry(".", None, True, "14/03/2001", "09:12"),
    DirEntry("..", None, True, "14/03/2001", "09:12"),
    DirEntry("edb.chk", 8192, False, "14/03/2001", "09:12"),
    DirEntry("edb.log", 1048576, False, "14/03/2001", "09:12"),
    DirEntry("Kmsmdb.edb", 2105344, False, "14/03/2001", "09:12"),
)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "e14_kmsdata",
            DirListing(
                found=True,
                directory="C:\\EXCHSRVR\\KMSDATA",
                entries=E14_ENTRIES,
                file_count=3,
                total_bytes=3162112,
                dir_count=2,
                free_bytes=1234567890,
                volume_label="EXCHANGE",
                serial_number="1A2B-3C4D",
            ),
        ),
        (
            "us_12_hour_no_label",
            DirListing(
                found=True,
                directory="C:\\Exchsrvr\\KMSDATA",
                entries=(
                    DirEntry(".", None, True, "03/14/2001", "09:12 AM"),
                    DirEntry("..", None, True, "03/14/2001", "09:12 AM"),
                    DirEntry("edb.chk", 8192, False, "03/14/2001", "09:12 AM"),
                    DirEntry("Kmsmdb.edb", 2105344, False, "03/14/2001", "01:47 PM"),
                ),
                file_count=2,
                total_bytes=2113536,
                dir_count=2,
                free_bytes=1234567890,
                volume_label="",
                serial_number="1A2B-3C4D",
            ),
        ),
        (
            "iso_date_subdirectory",
            DirListing(
                found=True,
                directory="C:\\EXCHSRVR",
                entries=tuple(
                    DirEntry(name, None, True, "2001-03-14", "09:12")
                    for name in (".", "..", "KMSDATA", "Program Files Backup")
                ),
                file_count=0,
                total_bytes=0,
                dir_count=4,
                free_bytes=1234567890,
                volume_label="EXCHANGE",
                serial_number="1A2B-3C4D",
            ),
        ),
        (
            "file_not_found",
            DirListing(
                found=False,
                directory="C:\\EXCHSRVR\\KMSDATA",
                volume_label="EXCHANGE",
                serial_number="1A2B-3C4D",
            ),
        ),
        ("path_not_found", DirListing(found=False, directory=None)),
    ],
)
def test_dir_listings_are_read_with_sizes_and_totals(case: str, expected: DirListing) -> None:
    assert parse_dir(*load("dir", case)) == expected


def test_dir_entries_are_found_case_insensitively() -> None:
    listing = parse_dir(*load("dir", "e14_kmsdata"))
    assert listing.entry("KMSMDB.EDB") == E14_ENTRIES[4]
    assert listing.entry("missing.edb") is None
    assert [entry.name for entry in listing.files] == ["edb.chk", "edb.log", "Kmsmdb.edb"]


@pytest.mark.parametrize(
    ("command", "case", "error", "message"),
    [
        (
            "dir",
            "garbage_grouped_sizes",
            ParseError,
            r"^dir: line 7: .*sizes carry digit grouping: run dir with /-c$",
        ),
        (
            "dir",
            "garbage_totals_mismatch",
            ParseError,
            r"^dir: line 9: .*the totals \(3 files, 3162112 bytes, 2 dirs\) do not match the "
            r"entries \(1 files, 2105344 bytes, 2 dirs\)$",
        ),
        (
            "dir",
            "garbage_powershell",
            ParseError,
            r"^dir: line 3: cannot read '    Directory: C:\\EXCHSRVR\\KMSDATA'",
        ),
        ("reg_query", "e1_setup_vista", ParseError, r"^dir: line 2: "),
        ("cmd", "wmic_not_recognized", ToolMissing, r"^dir: 'wmic' is missing"),
    ],
)
def test_dir_refuses_what_is_not_one_directory_listing(
    command: str, case: str, error: type[ParseError], message: str
) -> None:
    with pytest.raises(error, match=message):
        parse_dir(*load(command, case))


@pytest.mark.parametrize(
    ("stdout", "stderr", "message"),
    [
        ("", "", "no ' Directory of', File"),
        (" Directory of C:\\X\r\n\r\n", "", "no ' Directory of', File"),
        (
            "",
            "The device is not ready.\r\n",
            r"the command failed \(exit code 0\): The device is not ready\.",
        ),
        (
            " Directory of C:\\X\r\n\r\n14/03/2001  09:12              8192 edb.chk\r\n",
            "File Not Found\r\n",
            "a listing and 'File Not Found' together",
        ),
    ],
)
def test_dir_edge_output_is_refused_with_a_reason(stdout: str, stderr: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_dir(stdout, stderr, 0)


# ---------------------------------------------------------------------------------------------
# certutil -hashfile

DIGEST = "41598bd7f011d612dac42bedd01f9567a335aac8843dce54d3efe58c39542565"


@pytest.mark.parametrize("case", ["sha256", "sha256_spaced_pairs_windows7"])
def test_certutil_digests_are_lower_case_hex(case: str) -> None:
    assert parse_certutil_hash(*load("certutil_hashfile", case)) == DIGEST


@pytest.mark.parametrize(
    ("command", "case", "error", "message"),
    [
        (
            "certutil_hashfile",
            "file_not_found",
            CommandFailed,
            r"^certutil: the command failed \(exit code 2147942402\): CertUtil: -hashfile "
            r"command FAILED: 0x80070002 \(WIN32: 2 ERROR_FILE_NOT_FOUND\) CertUtil: The system "
            r"cannot find the file specified\.$",
        ),
        (
            "certutil_hashfile",
            "garbage_wrong_algorithm",
            ParseError,
            r"^certutil: line 1: .*expected 'SHA256 hash of FILE:'$",
        ),
        (
            "certutil_hashfile",
            "garbage_truncated",
            ParseError,
            r"^certutil: expected 3 lines \(header, digest, completion\), got 2",
        ),
        (
            "dir",
            "e14_kmsdata",
            ParseError,
            r"^certutil: line 6: .*expected 3 lines \(header, digest, completion\), got 10",
        ),
    ],
)
def test_certutil_refuses_what_is_not_one_digest(
    command: str, case: str, error: type[ParseError], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        parse_certutil_hash(*load(command, case))
    assert caught.type is error


def test_certutil_checks_the_digest_length_and_the_completion_line() -> None:
    good = (
        f"SHA256 hash of C:\\x:\r\n{DIGEST}\r\n"
        "CertUtil: -hashfile command completed successfully.\r\n"
    )
    assert (
        parse_certutil_hash(
            good.replace("SHA256", "SHA1").replace(DIGEST, DIGEST[:40]), "", 0, algorithm="sha1"
        )
        == DIGEST[:40]
    )
    with pytest.raises(ParseError, match="a SHA256 digest has 64 hex digits"):
        parse_certutil_hash(good.replace(DIGEST, DIGEST[:62]), "", 0)
    with pytest.raises(ParseError, match="expected 'CertUtil: -hashfile command completed"):
        parse_certutil_hash(good.replace("completed successfully", "done"), "", 0)
    with pytest.raises(ParseError, match="not hexadecimal byte pairs"):
        parse_certutil_hash(good.replace(DIGEST[:2], "zz"), "", 0)
    with pytest.raises(ValueError, match="unknown hash algorithm"):
        parse_certutil_hash(good, "", 0, algorithm="CRC32")


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
# ParseError itself, and garbage in general


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
