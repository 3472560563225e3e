# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse `certutil -hashfile FILE SHA256`: `parse_certutil_hash` -> the digest in lower-case hex.
Parse `certutil -f -encode FILE OUT` (`parse_certutil_encode`) and the Base64 file it wrote, read
back with `type OUT` (`decode_certutil_base64` -> the file's bytes): how kms_backup fetches a
backup to the controller, binary-safe over a text stream.

The layouts and their sources are in docs/windows-output.md (the certutil rows of its table of
tool messages, #certutil-encode and #certutil-failures): "<ALG> hash of <file>:", the digest,
"CertUtil: -hashfile command completed successfully."; Windows 7 / 2008 R2 say "hash of file
<file>:" and space the byte pairs. No source gives certutil's failure wording, so no decision
reads it: a digest is taken only from the success layout; a non-zero exit code raises
`CommandFailed` quoting whatever certutil printed; cmd's "is not recognized" `ToolMissing`;
anything else `ParseError`. `-encode`'s console answer decides nothing beyond its exit code: the
fetched file's size and SHA256 against the backup's manifest prove the copy (_kmsmove).
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import base64
import binascii
import re

from ._base import _command_failed, _nonblank, _parse_error, _raise_if_missing

_HASH_LENGTHS = {
    "MD2": 32,
    "MD4": 32,
    "MD5": 32,
    "SHA1": 40,
    "SHA256": 64,
    "SHA384": 96,
    "SHA512": 128,
}
_CERTUTIL_HEADER = re.compile(r"^(?P<algorithm>[A-Z0-9]+) hash of (?:file )?(?P<path>.+):\s*$")
_CERTUTIL_DIGEST = re.compile(r"^[0-9A-Fa-f]{2}(?: ?[0-9A-Fa-f]{2})*$")
_CERTUTIL_DONE = "CertUtil: -hashfile command completed successfully."


def _raise_if_failed(section: str, stdout: str, stderr: str, exit_code: int) -> None:
    """cmd's "is not recognized" raises ToolMissing; a non-zero exit code CommandFailed with
    certutil's own text, whatever its words (docs/windows-output.md#certutil-failures)."""
    _raise_if_missing(section, stderr, exit_code)
    if exit_code != 0:
        lines = _nonblank(stdout, "stdout") + _nonblank(stderr, "stderr")
        if not lines:
            raise _parse_error(section, f"certutil exited {exit_code} without a message")
        raise _command_failed(section, exit_code, lines)


def parse_certutil_hash(
    stdout: str, stderr: str, exit_code: int, section: str = "certutil", algorithm: str = "SHA256"
) -> str:
    """Parse `certutil -hashfile FILE SHA256`: the digest in lower-case hex. Older Windows print
    the byte pairs separated by spaces and "hash of file FILE:". A non-zero exit code (file
    missing, in use) raises `CommandFailed` with certutil's text; only the whole success layout
    gives a digest."""
    expected = algorithm.upper()
    if expected not in _HASH_LENGTHS:
        raise ValueError(f"certutil: unknown hash algorithm {algorithm!r}")
    _raise_if_failed(section, stdout, stderr, exit_code)
    lines = _nonblank(stdout, "stdout") + _nonblank(stderr, "stderr")
    if len(lines) != 3:
        extra = lines[3] if len(lines) > 3 else None
        raise _parse_error(
            section,
            f"expected 3 lines (header, digest, completion), got {len(lines)} "
            f"(exit code {exit_code})",
            extra,
        )
    header, digest, done = lines
    match = _CERTUTIL_HEADER.match(header.text.strip())
    if not match or match.group("algorithm").upper() != expected:
        raise _parse_error(section, f"expected '{expected} hash of FILE:'", header)
    if not _CERTUTIL_DIGEST.match(digest.text.strip()):
        raise _parse_error(section, "the digest is not hexadecimal byte pairs", digest)
    hex_digest = digest.text.strip().replace(" ", "").lower()
    if len(hex_digest) != _HASH_LENGTHS[expected]:
        raise _parse_error(
            section, f"a {expected} digest has {_HASH_LENGTHS[expected]} hex digits", digest
        )
    if done.text.strip() != _CERTUTIL_DONE:
        raise _parse_error(section, f"expected '{_CERTUTIL_DONE}'", done)
    return hex_digest


# -encode (docs/windows-output.md#certutil-encode): the file it writes holds the Base64 text
# between "-----BEGIN CERTIFICATE-----" and "-----END CERTIFICATE-----", 64 characters a line
# [S]. Its console answer ("Input Length = N", "Output Length = N", a completion line) is [I]:
# read for the input length when printed, never to decide.
_ENCODE_INPUT_LENGTH = re.compile(r"^Input Length = (?P<length>\d+)$")
_BASE64_BEGIN = "-----BEGIN CERTIFICATE-----"
_BASE64_END = "-----END CERTIFICATE-----"
_BASE64_LINE = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


def parse_certutil_encode(stdout: str, stderr: str, exit_code: int, section: str = "encode") -> int:
    """Check `certutil [-f] -encode FILE OUT`'s console answer; returns the input length it
    printed (-1 when it printed none). A non-zero exit code (file missing, in use) raises
    `CommandFailed` with certutil's text; cmd's "is not recognized" `ToolMissing`. Its words
    decide nothing else: the file read back from OUT is proven by its size and SHA256."""
    _raise_if_failed(section, stdout, stderr, exit_code)
    for line in _nonblank(stdout, "stdout"):
        match = _ENCODE_INPUT_LENGTH.match(line.text.strip())
        if match:
            return int(match.group("length"))
    return -1


def decode_certutil_base64(stdout: str, stderr: str, exit_code: int, section: str) -> bytes:
    """The bytes of a file that `certutil -encode` wrote, from `type OUT`'s answer: the lines
    between the BEGIN and END lines, Base64-decoded. A missing END line (the answer cut short),
    any other text or invalid Base64 raises ParseError; `type`'s own error CommandFailed."""
    lines = _nonblank(stdout, "stdout")
    errors = _nonblank(stderr, "stderr")
    if errors or exit_code != 0:
        if errors:
            raise _command_failed(section, exit_code, errors)
        raise _parse_error(section, f"type exited {exit_code} without a message")
    if not lines or lines[0].text.strip() != _BASE64_BEGIN:
        raise _parse_error(section, f"expected '{_BASE64_BEGIN}'", lines[0] if lines else None)
    if lines[-1].text.strip() != _BASE64_END or len(lines) < 2:
        raise _parse_error(section, f"expected '{_BASE64_END}' last: the answer was cut short")
    body = []
    for line in lines[1:-1]:
        text = line.text.strip()
        if not _BASE64_LINE.match(text):
            raise _parse_error(section, "not a line of Base64", line)
        body.append(text)
    try:
        return base64.b64decode("".join(body), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _parse_error(section, f"the Base64 text does not decode ({exc})") from None
