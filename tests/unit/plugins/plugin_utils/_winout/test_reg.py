# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`parse_reg_query` (plugins/plugin_utils/_winout/reg.py) on the reg_query fixtures (examples E1-E4
of docs/windows-output.md#reg-examples and the variants its rules allow) and on generated output.
"""

from __future__ import annotations

import pytest
from conftest import PASSWORD, load
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    CommandFailed,
    ParseError,
    RegKey,
    RegQuery,
    parse_reg_query,
)

SETUP = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup"
KMSERVER = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\KMServer"
KMS_SERVICE = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeKMS"


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
        ("e16_missing_key_reg3", ()),
        ("reg3_missing_key_merged_on_stdout", ()),
        ("reg3_missing_value_after_header", ()),
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


@pytest.mark.parametrize(
    "case",
    [
        "e4_missing_key",
        "missing_value_leading_empty_line",
        "e16_missing_key_reg3",
        "reg3_missing_key_merged_on_stdout",
        "reg3_missing_value_after_header",
    ],
)
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
    # XP's reg.exe may exit 1 for `/ve` and `/v name /s` queries that succeed
    # (docs/windows-output.md#reg-xp).
    stdout, stderr, _code = load("reg_query", "e3_services_version_xp")
    value = parse_reg_query(stdout, stderr, 1).value(SETUP, "Services Version")
    assert value is not None and value.data == 55


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


MISSING = "The system was unable to find the specified registry key or value"


@pytest.mark.parametrize(
    "line",
    [
        f"ERROR: {MISSING}.",  # Vista and later (docs/windows-output.md#e4)
        f"Error:  {MISSING}",  # reg.exe 3.0, XP / Server 2003 (docs/windows-output.md#e16)
        f"Error: {MISSING}",  # the same with one space, as a report quoted it
        f"Error:  {MISSING}.",
        f"ERROR:\t{MISSING.upper()}",
        f"error: {MISSING.lower()}.  ",
    ],
)
@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_both_eras_words_for_a_missing_key_are_one_answer_on_either_stream(
    line: str, stream: str
) -> None:
    text = f"{line}\r\n"
    stdout, stderr = (text, "") if stream == "stdout" else ("", text)
    assert parse_reg_query(stdout, stderr, 1, "setup_2013") == RegQuery(found=False, keys=())


@pytest.mark.parametrize(
    ("stdout", "stderr", "message"),
    [
        # Another error in reg.exe 3.0's form: reg's own text, not a ParseError about the line.
        ("Error:  Access is denied\r\n", "", r"failed \(exit code 1\): Error:  Access is denied$"),
        ("", "ERROR: Access is denied.\r\n", r"failed \(exit code 1\): ERROR: Access is denied\.$"),
        # The missing-key words must be the whole message, not a part of it.
        (f"Error:  {MISSING} on KMSOLD\r\n", "", "on KMSOLD$"),
        (f"\r\n{SETUP}\r\n", f"ERROR: {MISSING}.\r\nERROR: Invalid syntax.\r\n", "Invalid"),
    ],
)
def test_other_reg_error_lines_are_the_command_failing_with_regs_text(
    stdout: str, stderr: str, message: str
) -> None:
    with pytest.raises(CommandFailed, match=message) as raised:
        parse_reg_query(stdout, stderr, 1, "setup_2013")
    assert str(raised.value).startswith("setup_2013: the command failed")


def test_a_reg3_missing_key_keeps_the_keys_printed_before_it() -> None:
    stdout = f"\r\n! REG.EXE VERSION 3.0\r\n\r\n{SETUP}\r\n    Build\tREG_DWORD\t0x7a8\r\n"
    query = parse_reg_query(stdout, f"Error:  {MISSING}\r\n", 1)
    assert not query.found
    value = query.value(SETUP, "Build")
    assert value is not None and value.data == 1960
