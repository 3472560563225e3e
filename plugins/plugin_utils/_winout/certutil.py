# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse `certutil -hashfile FILE SHA256`: `parse_certutil_hash` -> the digest in lower-case hex.

docs/windows-output.md has no section on it: the layout is Windows' "<ALG> hash of <file>:", the
digest, "CertUtil: -hashfile command completed successfully."; Windows 7 / 2008 R2 say "hash of file
<file>:" and space the byte pairs. certutil's "FAILED" text (file missing, in use) raises
`CommandFailed`; cmd's "is not recognized" `ToolMissing`; anything else `ParseError`.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

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
_CERTUTIL_FAILED = re.compile(r"^CertUtil: -hashfile command FAILED")


def parse_certutil_hash(
    stdout: str, stderr: str, exit_code: int, section: str = "certutil", algorithm: str = "SHA256"
) -> str:
    """Parse `certutil -hashfile FILE SHA256`: the digest in lower-case hex. Older Windows print
    the byte pairs separated by spaces and "hash of file FILE:". certutil's "FAILED" text (file
    missing, in use) raises `CommandFailed` with that text."""
    expected = algorithm.upper()
    if expected not in _HASH_LENGTHS:
        raise ValueError(f"certutil: unknown hash algorithm {algorithm!r}")
    _raise_if_missing(section, stderr, exit_code)
    lines = _nonblank(stdout, "stdout") + _nonblank(stderr, "stderr")
    if any(_CERTUTIL_FAILED.match(line.text.strip()) for line in lines):
        raise _command_failed(section, exit_code, lines)
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
