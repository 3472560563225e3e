# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`parse_certutil_hash`, `parse_certutil_encode` and `decode_certutil_base64` (plugins/plugin_utils/_winout/certutil.py) on the certutil_hashfile
fixtures and on output written inline.
"""

from __future__ import annotations

import base64

import pytest
from conftest import load

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    CommandFailed,
    ParseError,
    ToolMissing,
    decode_certutil_base64,
    parse_certutil_encode,
    parse_certutil_hash,
)

DIGEST = "41598bd7f011d612dac42bedd01f9567a335aac8843dce54d3efe58c39542565"


@pytest.mark.parametrize("case", ["sha256", "sha256_spaced_pairs_windows7"])
def test_certutil_digests_are_lower_case_hex(case: str) -> None:
    assert parse_certutil_hash(*load("certutil_hashfile", case)) == DIGEST


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


@pytest.mark.parametrize(
    ("stdout", "code", "error", "match"),
    [
        # A failure in words no source gives: the exit code decides, the text is quoted.
        ("Fichier introuvable.\r\n", 2147942402, CommandFailed, r"\): Fichier introuvable\.$"),
        # The success layout with a failing exit code is no digest.
        (
            f"SHA256 hash of C:\\x:\r\n{DIGEST}\r\n"
            "CertUtil: -hashfile command completed successfully.\r\n",
            1,
            CommandFailed,
            "exit code 1",
        ),
        # Failure wording with exit code 0: not the success layout, so no digest either.
        ("CertUtil: -hashfile command FAILED: 0x80070002\r\n", 0, ParseError, "expected 3 lines"),
    ],
)
def test_certutil_gives_a_digest_only_from_the_success_layout_and_exit_code_0(
    stdout: str, code: int, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        parse_certutil_hash(stdout, "", code)


# certutil -encode: the console answer, and the Base64 file read back with `type`.
ENCODE_DONE = "CertUtil: -encode command completed successfully.\r\n"


def encoded_file(data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii")
    lines = "".join(text[index : index + 64] + "\r\n" for index in range(0, len(text), 64))
    return f"-----BEGIN CERTIFICATE-----\r\n{lines}-----END CERTIFICATE-----\r\n"


def test_certutil_encode_reports_the_input_length_it_printed() -> None:
    answer = f"Input Length = 6\r\nOutput Length = 66\r\n{ENCODE_DONE}"
    assert parse_certutil_encode(answer, "", 0) == 6
    assert parse_certutil_encode(ENCODE_DONE, "", 0) == -1


@pytest.mark.parametrize(
    "stdout",
    ["Input Length = 6\r\n", f"Bytes = 6\r\n{ENCODE_DONE}", "", "Encodage terminé.\r\n"],
)
def test_certutil_encode_words_decide_nothing_when_it_exits_0(stdout: str) -> None:
    # No source gives -encode's console wording: the file read back is proven by its size and
    # SHA256 (_kmsmove), so an answer cut short or in other words is not judged here.
    assert parse_certutil_encode(stdout, "", 0) in (6, -1)


@pytest.mark.parametrize(
    ("stdout", "stderr", "code", "error", "match"),
    [
        pytest.param(
            "CertUtil: -encode command FAILED: 0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)\r\n"
            "CertUtil: The system cannot find the file specified.\r\n",
            "",
            -2147024894,
            CommandFailed,
            "ERROR_FILE_NOT_FOUND",
            id="file missing",
        ),
        pytest.param(
            "",
            "'certutil' is not recognized as an internal or external command,\r\n"
            "operable program or batch file.\r\n",
            1,
            ToolMissing,
            "'certutil' is missing",
            id="no certutil (Windows 2000)",
        ),
        pytest.param(
            "Le fichier est introuvable.\r\n",
            "",
            2147942402,
            CommandFailed,
            r"exit code 2147942402\): Le fichier est introuvable\.$",
            id="failure in other words: decided by the exit code",
        ),
        pytest.param("", "", 1, ParseError, "certutil exited 1 without a message", id="silent"),
    ],
)
def test_certutil_encode_failures_raise(
    stdout: str, stderr: str, code: int, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        parse_certutil_encode(stdout, stderr, code)


@pytest.mark.parametrize("data", [b"\x00\x1a\r\n\xff" * 100, bytes(range(256)) * 9, b"x"])
def test_certutil_base64_files_decode_to_the_exact_bytes(data: bytes) -> None:
    assert decode_certutil_base64(encoded_file(data), "", 0, "encoded") == data


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param(
            encoded_file(b"abc").replace("-----END CERTIFICATE-----\r\n", ""),
            "cut short",
            id="no END",
        ),
        pytest.param(encoded_file(b"abc")[29:], "expected '-----BEGIN", id="no BEGIN"),
        pytest.param(
            encoded_file(b"abcd").replace("YWJjZA==", "YW Jj"), "not a line of Base64", id="space"
        ),
        pytest.param(
            encoded_file(b"abcd").replace("YWJjZA==", "YWJjZA"), "does not decode", id="padding"
        ),
        pytest.param("", "expected '-----BEGIN", id="empty"),
    ],
)
def test_certutil_base64_files_that_are_not_whole_raise(text: str, match: str) -> None:
    with pytest.raises(ParseError, match=match):
        decode_certutil_base64(text, "", 0, "encoded")


def test_types_own_error_is_a_command_failure() -> None:
    with pytest.raises(CommandFailed, match="cannot find the file"):
        decode_certutil_base64("", "The system cannot find the file specified.\r\n", 1, "encoded")
