# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""certutil.exe -hashfile FILE [ALGORITHM]: how a KM database backup is verified (KB Q190713
step 3: "verify that all files have been copied").

`certutil [-f] -encode FILE OUT` (how kms_backup fetches a backup to the controller) writes the
file's Base64 into OUT between "-----BEGIN CERTIFICATE-----" and "-----END CERTIFICATE-----",
64 characters a line (ss64.org forum, "certutil - decode/encode BASE64/HEX strings"; Microsoft's
Windows Server 2003 PKI "Appendix 6", cc782874), and prints "Input Length = N", "Output Length =
N" and "CertUtil: -encode command completed successfully." [lab: no Microsoft page shows -encode's
console answer]. An existing OUT without -f fails with ERROR_FILE_EXISTS [lab: the wording of
that failure].

On a jump host FILE and OUT may be `\\\\NAME\\C$\\path` on a legacy server (the remote-call
layer, exchlab.windows.remote): certutil runs on the jump host and reads (or writes) through the
admin share. A refusal is a failure like the others, with the HRESULT of its Win32 error
(0x80070035 for 53, 0x80070043 for 67, 0x80070005 for 5, 0x8007052e for 1326) [lab].

[lab], no Microsoft source (docs/windows-output.md#certutil-failures; third-party pastes show the
same words): the failure lines ("CertUtil: -hashfile command FAILED: 0x... (...)",
"CertUtil: <message>"), "CertUtil: Unknown arg:", the HRESULT as exit code, and SHA1 as the
default algorithm. The collection decides a failure from the exit code and reads no failure
wording. The Windows 7-era "hash of file" form with spaced bytes is [I]
(docs/windows-output.md#tool-messages).

Windows 10 / Server 2016 and later print `<ALG> hash of <FILE>:`, the hash as contiguous
lower-case hex, then `CertUtil: -hashfile command completed successfully.`. Earlier certutil
(Windows 7 / Server 2008-2012 era) prints `<ALG> hash of file <FILE>:` and hex bytes separated
by spaces. FILE is echoed as typed. The default algorithm is SHA1. Failures print the HRESULT and
exit with it (as the unsigned 32-bit process exit code).
"""

from __future__ import annotations

import base64
import hashlib

from ...state import FileSystemError
from ..formats import CRLF, SYSTEM_MESSAGES
from ..remote import Refusal, path_error_code
from . import Invocation, Located, Output, Tool, located_pair

_ALGORITHMS = {
    "MD5": "md5",
    "SHA1": "sha1",
    "SHA256": "sha256",
    "SHA384": "sha384",
    "SHA512": "sha512",
}
# The Win32 errors the remote-call layer gives a file tool, by their winerror.h names.
_WIN32_NAMES = {
    5: "ERROR_ACCESS_DENIED",
    53: "ERROR_BAD_NETPATH",
    67: "ERROR_BAD_NET_NAME",
    1326: "ERROR_LOGON_FAILURE",
}
_DONE = f"CertUtil: -hashfile command completed successfully.{CRLF}"


def _failed(
    output: Output, hresult: int, detail: str, message: str, verb: str = "-hashfile"
) -> int:
    output.out(
        f"CertUtil: {verb} command FAILED: 0x{hresult:08x} ({detail}){CRLF}"
        f"CertUtil: {message}{CRLF}"
    )
    return hresult


def certutil(invocation: Invocation, output: Output) -> int:
    argv = invocation.argv
    verbs = [arg.lower() for arg in argv if arg.lower() not in ("-f", "/f")]
    if verbs and verbs[0] in ("-encode", "/encode"):
        return _encode(invocation, output)
    if not argv or argv[0].lower() not in ("-hashfile", "/hashfile"):
        verb = argv[0] if argv else ""
        output.out(f"CertUtil: Unknown arg: {verb}{CRLF}")
        return 0x80070057
    if len(argv) < 2:
        return _failed(
            output, 0x80070057, "WIN32: 87 ERROR_INVALID_PARAMETER", "The parameter is incorrect."
        )
    shown = argv[1]
    algorithm = argv[2].upper() if len(argv) > 2 else "SHA1"
    if algorithm not in _ALGORITHMS:
        return _failed(
            output, 0x80090008, "-2146893816 NTE_BAD_ALGID", "Invalid algorithm specified."
        )
    with invocation.located(shown) as located:
        if isinstance(located, Refusal):
            return _refused(output, located)
        return _hash(located, output, shown, algorithm)


def _refused(output: Output, refusal: Refusal, verb: str = "-hashfile") -> int:
    """A file behind a share the remote-call layer refused: the Win32 error as certutil words
    every other failure [lab]."""
    code = path_error_code(refusal)
    return _failed(
        output,
        0x80070000 | code,
        f"WIN32: {code} {_WIN32_NAMES[code]}",
        SYSTEM_MESSAGES[code],
        verb,
    )


def _hash(located: Located, output: Output, shown: str, algorithm: str) -> int:
    try:
        path = located.path()
    except FileSystemError:
        return _failed(
            output,
            0x80070003,
            "WIN32: 3 ERROR_PATH_NOT_FOUND",
            "The system cannot find the path specified.",
        )
    fs = located.host.fs
    if fs.is_dir(path):
        return _failed(output, 0x80070005, "WIN32: 5 ERROR_ACCESS_DENIED", "Access is denied.")
    entry = fs.file_entry(path)
    if entry is None:
        return _failed(
            output,
            0x80070002,
            "WIN32: 2 ERROR_FILE_NOT_FOUND",
            "The system cannot find the file specified.",
        )
    if algorithm == "SHA256":
        digest = entry.sha256()
    else:
        digest = hashlib.new(_ALGORITHMS[algorithm], entry.content()).hexdigest()
    if located.invocation.era.certutil == "plain":
        output.out(f"{algorithm} hash of {shown}:{CRLF}{digest}{CRLF}{_DONE}")
    else:
        spaced = " ".join(digest[index : index + 2] for index in range(0, len(digest), 2))
        output.out(f"{algorithm} hash of file {shown}:{CRLF}{spaced}{CRLF}{_DONE}")
    return 0


def _encode_failed(output: Output, hresult: int, detail: str, message: str) -> int:
    return _failed(output, hresult, detail, message, verb="-encode")


def _encode(invocation: Invocation, output: Output) -> int:
    force = any(arg.lower() in ("-f", "/f") for arg in invocation.argv)
    names = [arg for arg in invocation.argv if arg.lower() not in ("-f", "/f")][1:]
    if len(names) != 2:
        return _encode_failed(
            output, 0x80070057, "WIN32: 87 ERROR_INVALID_PARAMETER", "The parameter is incorrect."
        )
    with located_pair(invocation, names[0], names[1]) as (source_at, target_at):
        for refused in (source_at, target_at):
            if isinstance(refused, Refusal):
                return _refused(output, refused, "-encode")
        assert isinstance(source_at, Located) and isinstance(target_at, Located)
        return _encode_to(output, source_at, target_at, force)


def _encode_to(output: Output, source_at: Located, target_at: Located, force: bool) -> int:
    try:
        source, target = source_at.path(), target_at.path()
    except FileSystemError:
        return _encode_failed(
            output,
            0x80070003,
            "WIN32: 3 ERROR_PATH_NOT_FOUND",
            "The system cannot find the path specified.",
        )
    entry = source_at.host.fs.file_entry(source)
    if entry is None:
        return _encode_failed(
            output,
            0x80070002,
            "WIN32: 2 ERROR_FILE_NOT_FOUND",
            "The system cannot find the file specified.",
        )
    if target_at.host.fs.exists(target) and not force:
        return _encode_failed(output, 0x80070050, "WIN32: 80 ERROR_FILE_EXISTS", "The file exists.")
    data = entry.content()
    text = base64.b64encode(data).decode("ascii")
    lines = "".join(text[index : index + 64] + CRLF for index in range(0, len(text), 64))
    encoded = f"-----BEGIN CERTIFICATE-----{CRLF}{lines}-----END CERTIFICATE-----{CRLF}"
    try:
        target_at.host.write_file(target, data=encoded.encode("ascii"))
    except FileSystemError as exc:
        return _encode_failed(
            output, 0x80070000 | exc.winerror, f"WIN32: {exc.winerror}", exc.message
        )
    output.out(
        f"Input Length = {len(data)}{CRLF}Output Length = {len(encoded)}{CRLF}"
        f"CertUtil: -encode command completed successfully.{CRLF}"
    )
    return 0


TOOLS = (Tool(("certutil",), certutil, file_name="certutil.exe"),)
