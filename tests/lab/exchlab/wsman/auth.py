# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-connection authentication (Negotiate/NTLM, Basic) and WinRM message encryption.

NTLM authenticates the TCP connection, not a request, so one ``ConnectionAuth`` lives per
accepted connection and is never shared. The acceptor is pyspnego's Negotiate acceptor: it takes
both raw NTLM tokens (requests-ntlm, pypsrp auth='ntlm') and SPNEGO-wrapped ones (pypsrp
auth='negotiate'). Credentials come from the file named by NTLM_USER_FILE.
Message encryption framing follows MS-WSMV 2.2.9.1.1.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import base64
import binascii
import logging
import re
import struct
from dataclasses import dataclass, field

import spnego
from spnego.channel_bindings import GssChannelBindings

from .backend import Backend, LogonSession

log = logging.getLogger("exchlab.wsman")

ENCRYPTION_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_BOUNDARY = "Encrypted Boundary"
# Quoted and without spaces: pywinrm substring-matches protocol="...", pypsrp needs the
# "multipart/encrypted;" prefix.
ENCRYPTED_CONTENT_TYPE = (
    f'multipart/encrypted;protocol="{ENCRYPTION_PROTOCOL}";boundary="{ENCRYPTED_BOUNDARY}"'
)
_OCTET_STREAM_LINE = b"\tContent-Type: application/octet-stream\r\n"
_LENGTH = re.compile(rb"Length=(\d+)")
_BOUNDARY = re.compile(r'boundary\s*=\s*"?([^";]+)"?', re.IGNORECASE)

_NTLM_NEGOTIATE = b"NTLMSSP\x00\x01\x00\x00\x00"
_SPNEGO_INIT_TAG = 0x60


class EncryptionError(ValueError):
    """An encrypted body that cannot be parsed or unsealed (answered with 400)."""


@dataclass(frozen=True)
class AuthDecision:
    """What the listener does with one request after looking at its credentials."""

    allowed: bool
    # Who logged on and how: the shells created on this request run in this session.
    session: LogonSession | None = None
    # Extra response headers: the challenge on a 401, the final SPNEGO token on a 200.
    headers: list[tuple[str, str]] = field(default_factory=list)


class ConnectionAuth:
    """Authentication and sealing state of one TCP connection."""

    def __init__(
        self, tls: bool, channel_binding_data: bytes | None, allow_basic_over_http: bool
    ) -> None:
        self.tls = tls
        self._channel_binding_data = channel_binding_data
        # Windows with AllowUnencrypted=false refuses Basic on HTTP (the password would
        # cross the network in clear text).
        self.basic_allowed = tls or allow_basic_over_http
        self._context: spnego.ContextProxy | None = None
        self._context_session: LogonSession | None = None

    @property
    def negotiated(self) -> bool:
        """Whether a Negotiate handshake completed on this connection."""
        return self._context is not None and self._context.complete

    def reset(self) -> None:
        """Forget the NTLM context: after any failure its sequence numbers are unusable."""
        self._context = None
        self._context_session = None

    def challenge(self) -> list[tuple[str, str]]:
        """The WWW-Authenticate headers of a 401, as Windows sends them."""
        headers = [("WWW-Authenticate", "Negotiate")]
        if self.basic_allowed:
            headers.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
        return headers

    def _deny(self) -> AuthDecision:
        return AuthDecision(allowed=False, headers=self.challenge())

    def authenticate(self, authorization: str | None, backend: Backend) -> AuthDecision:
        """Decide on one request from its Authorization header (None when absent)."""
        if authorization is None:
            if self.negotiated:
                return AuthDecision(allowed=True, session=self._context_session)
            return self._deny()

        scheme, _separator, value = authorization.strip().partition(" ")
        if scheme.lower() in ("negotiate", "ntlm"):
            return self._negotiate(scheme, value.strip(), backend)
        if scheme.lower() == "basic":
            return self._basic(value.strip(), backend)
        return self._deny()

    def _negotiate(self, scheme: str, value: str, backend: Backend) -> AuthDecision:
        try:
            token = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self.reset()
            return self._deny()
        if not token:
            self.reset()
            return self._deny()

        # A new NTLM NEGOTIATE or SPNEGO NegTokenInit restarts the handshake on this
        # connection; anything else continues the one under way.
        if token.startswith(_NTLM_NEGOTIATE) or token[0] == _SPNEGO_INIT_TAG:
            self.reset()
            bindings = None
            if self._channel_binding_data is not None:
                bindings = GssChannelBindings(application_data=self._channel_binding_data)
            self._context = spnego.server(protocol="negotiate", channel_bindings=bindings)
        elif self._context is None or self._context.complete:
            self.reset()
            return self._deny()

        try:
            out_token = self._context.step(token)
        except (
            Exception
        ) as exc:  # noqa: BLE001 - any bad token must end in a 401, not a dead thread
            log.debug("%s: Negotiate authentication failed: %s", backend.name, exc)
            self.reset()
            return self._deny()

        # Answer with the scheme the client used: requests-ntlm looks for "<scheme> <token>".
        if not self._context.complete:
            encoded = base64.b64encode(out_token or b"").decode("ascii")
            return AuthDecision(
                allowed=False, headers=[("WWW-Authenticate", f"{scheme} {encoded}")]
            )

        if backend.faults.auth_refused:
            # Refuse where a wrong password is refused: after the AUTHENTICATE message, so
            # the client first gets its challenge (requests-ntlm raises PermissionError
            # rather than reporting bad credentials when the challenge is missing).
            self.reset()
            return self._deny()
        # NTLM delegates nothing: this logon's calls to other computers go out as ANONYMOUS
        # LOGON (the double hop, https://github.com/diyan/pywinrm/issues/303).
        self._context_session = LogonSession(self._context.client_principal or "", "ntlm")
        headers: list[tuple[str, str]] = []
        if out_token:
            # SPNEGO's accept-complete token carries the mechListMIC; without it pypsrp's
            # sealing state diverges (BadMICError on the first encrypted reply).
            encoded = base64.b64encode(out_token).decode("ascii")
            headers.append(("WWW-Authenticate", f"{scheme} {encoded}"))
        return AuthDecision(allowed=True, session=self._context_session, headers=headers)

    def _basic(self, value: str, backend: Backend) -> AuthDecision:
        if not self.basic_allowed or backend.faults.auth_refused:
            return self._deny()
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return self._deny()
        user, sep, password = decoded.partition(":")
        if not sep or not backend.check_credentials(user, password):
            return self._deny()
        # Basic delegates nothing either (Ansible's auth matrix: credential delegation only with
        # Kerberos and CredSSP, https://docs.ansible.com/ansible/latest/os_guide/windows_winrm.html).
        return AuthDecision(allowed=True, session=LogonSession(user, "basic"))

    # Message encryption ----------------------------------------------------------------------

    def unwrap(self, content_type: str, body: bytes) -> bytes:
        """The SOAP text of a multipart/encrypted request body."""
        if not self.negotiated or self._context is None:
            raise EncryptionError("encrypted body on a connection without a Negotiate context")
        if ENCRYPTION_PROTOCOL.lower() not in content_type.lower():
            raise EncryptionError(f"unsupported encryption protocol in {content_type!r}")
        match = _BOUNDARY.search(content_type)
        boundary = ("--" + (match.group(1) if match else ENCRYPTED_BOUNDARY)).encode("ascii")

        start = boundary + b"\r\n"
        if not body.startswith(start):
            raise EncryptionError("encrypted body does not open with its boundary")
        header_end = body.find(start, len(start))
        if header_end < 0:
            raise EncryptionError("encrypted body has no payload part")
        length_match = _LENGTH.search(body[len(start) : header_end])
        if not length_match:
            raise EncryptionError("encrypted body has no OriginalContent Length")
        length = int(length_match.group(1))

        pos = header_end + len(start)
        if body.startswith(_OCTET_STREAM_LINE, pos):
            pos += len(_OCTET_STREAM_LINE)
        if len(body) < pos + 4:
            raise EncryptionError("encrypted payload is truncated")
        (signature_length,) = struct.unpack_from("<I", body, pos)
        pos += 4
        signature = body[pos : pos + signature_length]
        sealed = body[pos + signature_length : pos + signature_length + length]
        trailer = body[pos + signature_length + length :]
        if len(sealed) != length or not trailer.startswith(boundary + b"--"):
            raise EncryptionError("encrypted payload length does not match OriginalContent")
        try:
            plain = self._context.unwrap_winrm(signature, sealed)
        except Exception as exc:  # noqa: BLE001 - a bad seal is a client error, answered 400
            raise EncryptionError(f"cannot unseal the request: {exc}") from exc
        if len(plain) != length:
            raise EncryptionError("unsealed length does not match OriginalContent")
        return plain

    def wrap(self, plain: bytes) -> tuple[str, bytes]:
        """Seal a SOAP response: (Content-Type, body)."""
        if self._context is None:
            raise EncryptionError("no Negotiate context to seal with")
        result = self._context.wrap_winrm(plain)
        boundary = f"--{ENCRYPTED_BOUNDARY}".encode("ascii")
        head = (
            boundary + b"\r\n"
            b"\tContent-Type: " + ENCRYPTION_PROTOCOL.encode("ascii") + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
            + str(len(plain) + result.padding_length).encode("ascii")
            + b"\r\n"
            + boundary
            + b"\r\n"
            + _OCTET_STREAM_LINE
        )
        body = (
            head
            + struct.pack("<I", len(result.header))
            + result.header
            + result.data
            + boundary
            + b"--\r\n"
        )
        return ENCRYPTED_CONTENT_TYPE, body
