# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-connection authentication (Negotiate/NTLM, CredSSP, Basic) and WinRM message encryption.

NTLM and CredSSP authenticate the TCP connection, not a request, so one ``ConnectionAuth`` lives
per accepted connection and is never shared. Both acceptors are pyspnego's, and both read the
accepted users from the file named by NTLM_USER_FILE:

- Negotiate takes raw NTLM tokens (requests-ntlm, pypsrp auth='ntlm') and SPNEGO-wrapped ones
  (pypsrp auth='negotiate').
- CredSSP (MS-CSSP, https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-cssp/)
  runs a TLS handshake inside the HTTP exchange, an NTLM logon inside that TLS channel, then
  takes the credentials the client delegates (TSCredentials). They become the logon session's
  ``Delegated``: the only way a lab shell gets credentials it may use on other computers.

Message encryption framing follows MS-WSMV 2.2.9.1.1 (SPNEGO) and 2.2.9.1.3 (CredSSP).
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import ssl
import struct
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any

import spnego
import spnego.tls
from spnego.channel_bindings import GssChannelBindings
from spnego.exceptions import InvalidCredentialError, SpnegoError

from .backend import Backend, Delegated, LogonSession

log = logging.getLogger("exchlab.wsman")

SPNEGO_ENCRYPTION = "application/HTTP-SPNEGO-session-encrypted"
CREDSSP_ENCRYPTION = "application/HTTP-CredSSP-session-encrypted"
ENCRYPTED_BOUNDARY = "Encrypted Boundary"
SINGLE_PART = "multipart/encrypted"
MULTI_PART = "multipart/x-multi-encrypted"
# MS-WSMV 2.2.9.1.3 (https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-wsmv/
# 81cb66ef-3a22-4714-a9bf-221ac2f7797f): a CredSSP-encrypted message over 16 KiB goes as
# multipart/x-multi-encrypted, in 16 KiB pieces each sealed on its own (pywinrm and pypsrp
# send and read it so).
CREDSSP_CHUNK_BYTES = 16 * 1024
_OCTET_STREAM_LINE = b"\tContent-Type: application/octet-stream\r\n"
_LENGTH = re.compile(rb"Length=(\d+)")
_BOUNDARY = re.compile(r'boundary\s*=\s*"?([^";]+)"?', re.IGNORECASE)

_NTLM_NEGOTIATE = b"NTLMSSP\x00\x01\x00\x00\x00"
_SPNEGO_INIT_TAG = 0x60
# A CredSSP exchange opens with a TLS ClientHello: a handshake record (type 22) whose first
# message is of type 1 (RFC 8446 5.1 and 4), after the 5-byte record header.
_TLS_HANDSHAKE_RECORD = 0x16
_TLS_CLIENT_HELLO = 0x01


def encrypted_content_type(kind: str, protocol: str) -> str:
    """The Content-Type of an encrypted body. Quoted and without spaces: pywinrm
    substring-matches protocol="...", pypsrp needs the "multipart/encrypted;" prefix."""
    return f'{kind};protocol="{protocol}";boundary="{ENCRYPTED_BOUNDARY}"'


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


_credssp_tls_lock = threading.Lock()
_credssp_tls: spnego.tls.CredSSPTLSContext | None = None


def credssp_tls_context() -> spnego.tls.CredSSPTLSContext:
    """The TLS side of every CredSSP acceptor in this process, made on first use.

    The certificate is pyspnego's self-signed one, modelled on the one the WinRM service makes
    for CredSSP; the client does not validate it but proves it talks to its holder (the
    pubKeyAuth echo of MS-CSSP 3.1.5). It is made once: a 2048-bit RSA key per handshake would
    cost more than the rest of the exchange. TLS stops at 1.2, as in SChannel on the Windows
    Server 2012 R2 to 2019 jump hosts (TLS 1.3 came with Server 2022,
    https://learn.microsoft.com/en-us/windows/win32/secauthn/protocols-in-tls-ssl--schannel-ssp-).
    """
    global _credssp_tls  # pylint: disable=global-statement # one per process, made lazily
    with _credssp_tls_lock:
        if _credssp_tls is None:
            context = spnego.tls.default_tls_context(usage="accept")
            context.context.maximum_version = ssl.TLSVersion.TLSv1_2
            certificate, key, public_key = spnego.tls.generate_tls_certificate()
            # load_cert_chain reads only files: a private folder, removed right after.
            with tempfile.TemporaryDirectory(prefix="exchlab-credssp-") as folder:
                path = os.path.join(folder, "credssp.pem")
                with open(path, "wb") as pem:
                    pem.write(certificate + key)
                context.context.load_cert_chain(path)
            context.public_key = public_key
            _credssp_tls = context
        return _credssp_tls


class _CredSSPLogon:
    """The NTLM logon inside CredSSP: pyspnego's Negotiate acceptor, failing as Windows does.

    Windows answers a refused CredSSP logon with STATUS_LOGON_FAILURE (0xC000006D) in the
    TSRequest errorCode, which requests-credssp raises as NTStatusException
    (https://github.com/diyan/pywinrm/issues/235). pyspnego's acceptor would send the SSPI code
    of its own error instead, so every failure of this step is reported as that one. The
    auth_refused fault refuses here too, where a wrong password is refused.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._inner = spnego.server(protocol="negotiate")

    def step(self, in_token: bytes | None = None, **kwargs: Any) -> bytes | None:
        try:
            out_token = self._inner.step(in_token, **kwargs)
        except SpnegoError as exc:
            log.debug("%s: CredSSP logon refused: %s", self._backend.name, exc)
            raise InvalidCredentialError(context_msg="CredSSP logon refused") from exc
        if self._inner.complete and self._backend.faults.auth_refused:
            raise InvalidCredentialError(context_msg="CredSSP logon refused (auth_refused)")
        return out_token

    def __getattr__(self, name: str) -> Any:
        # wrap, unwrap, complete, client_principal ...: the NTLM context's own.
        return getattr(self._inner, name)


def _delegated(credential: object) -> Delegated | None:
    """The user and password of a TSPasswordCreds (MS-CSSP 2.2.1.2.1); None for smart-card or
    Remote Guard credentials, which carry no password to use onwards."""
    username = getattr(credential, "username", None)
    password = getattr(credential, "password", None)
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        return None
    domain = getattr(credential, "domain_name", None) or ""
    return Delegated(f"{domain}\\{username}" if domain else username, password)


def _is_client_hello(token: bytes) -> bool:
    return len(token) > 5 and token[0] == _TLS_HANDSHAKE_RECORD and token[5] == _TLS_CLIENT_HELLO


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
        # "negotiate" or "credssp": which acceptor _context is, and so how bodies are sealed.
        self._mechanism: str | None = None
        self._context_session: LogonSession | None = None

    @property
    def negotiated(self) -> bool:
        """Whether a Negotiate or CredSSP logon completed on this connection."""
        return (
            self._context is not None
            and self._context.complete
            and self._context_session is not None
        )

    @property
    def encryption_protocol(self) -> str:
        """The protocol= of this connection's encrypted bodies."""
        return CREDSSP_ENCRYPTION if self._mechanism == "credssp" else SPNEGO_ENCRYPTION

    def reset(self) -> None:
        """Forget the context: after any failure its sequence numbers are unusable."""
        self._context = None
        self._mechanism = None
        self._context_session = None

    def challenge(self, backend: Backend) -> list[tuple[str, str]]:
        """The WWW-Authenticate headers of a 401, as Windows sends them."""
        headers = [("WWW-Authenticate", "Negotiate")]
        if self.basic_allowed:
            headers.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
        if backend.faults.credssp_enabled:
            # Offered once the service's Auth/CredSSP is on (Enable-WSManCredSSP -Role Server);
            # requests-credssp gives up unless a 401 names it.
            headers.append(("WWW-Authenticate", "CredSSP"))
        return headers

    def _deny(self, backend: Backend) -> AuthDecision:
        return AuthDecision(allowed=False, headers=self.challenge(backend))

    def authenticate(self, authorization: str | None, backend: Backend) -> AuthDecision:
        """Decide on one request from its Authorization header (None when absent)."""
        if authorization is None:
            if self.negotiated:
                return AuthDecision(allowed=True, session=self._context_session)
            return self._deny(backend)

        scheme, _separator, value = authorization.strip().partition(" ")
        if scheme.lower() in ("negotiate", "ntlm"):
            return self._negotiate(scheme, value.strip(), backend)
        if scheme.lower() == "credssp":
            return self._credssp(value.strip(), backend)
        if scheme.lower() == "basic":
            return self._basic(value.strip(), backend)
        return self._deny(backend)

    def _token(self, value: str) -> bytes | None:
        try:
            token = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        return token or None

    def _negotiate(self, scheme: str, value: str, backend: Backend) -> AuthDecision:
        token = self._token(value)
        if token is None:
            self.reset()
            return self._deny(backend)

        # A new NTLM NEGOTIATE or SPNEGO NegTokenInit restarts the handshake on this
        # connection; anything else continues the one under way.
        if token.startswith(_NTLM_NEGOTIATE) or token[0] == _SPNEGO_INIT_TAG:
            self.reset()
            bindings = None
            if self._channel_binding_data is not None:
                bindings = GssChannelBindings(application_data=self._channel_binding_data)
            self._context = spnego.server(protocol="negotiate", channel_bindings=bindings)
            self._mechanism = "negotiate"
        elif self._context is None or self._mechanism != "negotiate" or self._context.complete:
            self.reset()
            return self._deny(backend)

        try:
            out_token = self._context.step(token)
        except Exception as exc:  # noqa: BLE001 - any bad token ends in a 401, not a dead thread
            log.debug("%s: Negotiate authentication failed: %s", backend.name, exc)
            self.reset()
            return self._deny(backend)

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
            return self._deny(backend)
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

    def _credssp(self, value: str, backend: Backend) -> AuthDecision:
        """One leg of a CredSSP exchange (MS-WSMV 2.2.9.1.3 headers: "Authorization: CredSSP
        <base64>" until the server answers 200, each 401 carrying the server's next token)."""
        token = self._token(value)
        if token is None or not backend.faults.credssp_enabled:
            self.reset()
            return self._deny(backend)

        if _is_client_hello(token):
            self.reset()
            self._context = spnego.server(
                protocol="credssp",
                credssp_tls_context=credssp_tls_context(),
                credssp_negotiate_context=_CredSSPLogon(backend),
            )
            self._mechanism = "credssp"
        elif self._context is None or self._mechanism != "credssp" or self._context.complete:
            self.reset()
            return self._deny(backend)

        try:
            out_token = self._context.step(token)
        except Exception as exc:  # noqa: BLE001 - any bad token ends in a 401, not a dead thread
            log.debug("%s: CredSSP authentication failed: %s", backend.name, exc)
            self.reset()
            return self._deny(backend)

        if not self._context.complete:
            if not out_token:
                self.reset()
                return self._deny(backend)
            # The token alone: requests-credssp reads it from the end of the header. A refused
            # logon's token carries the TSRequest errorCode (the client raises it).
            encoded = base64.b64encode(out_token).decode("ascii")
            return AuthDecision(allowed=False, headers=[("WWW-Authenticate", f"CredSSP {encoded}")])

        delegated = _delegated(self._context.get_extra_info("client_credential"))
        if delegated is None or not backend.check_credentials(delegated.user, delegated.password):
            # Windows logs the session on with the delegated credentials; when that fails the
            # client gets a 401 with no token after its last step ("Server did not response with
            # a CredSSP token after step Credential exchange",
            # https://github.com/jborean93/pypsrp/issues/168).
            log.debug(
                "%s: CredSSP logon with the delegated credentials of %s failed",
                backend.name,
                delegated.user if delegated else "(none)",
            )
            self.reset()
            return self._deny(backend)
        self._context_session = LogonSession(
            self._context.client_principal or delegated.user, "credssp", delegated
        )
        log.debug(
            "%s: CredSSP logon of %s, credentials of %s delegated",
            backend.name,
            self._context_session.user,
            delegated.user,
        )
        return AuthDecision(allowed=True, session=self._context_session)

    def _basic(self, value: str, backend: Backend) -> AuthDecision:
        if not self.basic_allowed or backend.faults.auth_refused:
            return self._deny(backend)
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return self._deny(backend)
        user, sep, password = decoded.partition(":")
        if not sep or not backend.check_credentials(user, password):
            return self._deny(backend)
        # Basic delegates nothing either: Ansible's auth matrix gives credential delegation only
        # to Kerberos and CredSSP (https://docs.ansible.com/ansible/latest/os_guide/
        # windows_winrm.html).
        return AuthDecision(allowed=True, session=LogonSession(user, "basic"))

    # Message encryption ----------------------------------------------------------------------

    def unwrap(self, content_type: str, body: bytes) -> bytes:
        """The SOAP text of a multipart/encrypted (or, with CredSSP, x-multi-encrypted) body."""
        if not self.negotiated or self._context is None:
            raise EncryptionError("encrypted body on a connection without a logon context")
        protocol = self.encryption_protocol
        lowered = content_type.lower()
        if protocol.lower() not in lowered:
            raise EncryptionError(f"unsupported encryption protocol in {content_type!r}")
        credssp = protocol == CREDSSP_ENCRYPTION
        multi = lowered.startswith(MULTI_PART)
        if multi and not credssp:
            raise EncryptionError("multipart/x-multi-encrypted is CredSSP's alone")
        match = _BOUNDARY.search(content_type)
        boundary = ("--" + (match.group(1) if match else ENCRYPTED_BOUNDARY)).encode("ascii")
        start = boundary + b"\r\n"
        end = boundary + b"--"

        plain_parts: list[bytes] = []
        pos = 0
        while True:
            if not body.startswith(start, pos):
                raise EncryptionError("encrypted part does not open with its boundary")
            header_start = pos + len(start)
            header_end = body.find(start, header_start)
            if header_end < 0:
                raise EncryptionError("encrypted body has no payload part")
            length_match = _LENGTH.search(body[header_start:header_end])
            if not length_match:
                raise EncryptionError("encrypted body has no OriginalContent Length")
            length = int(length_match.group(1))

            pos = header_end + len(start)
            if body.startswith(_OCTET_STREAM_LINE, pos):
                pos += len(_OCTET_STREAM_LINE)
            if len(body) < pos + 4:
                raise EncryptionError("encrypted payload is truncated")
            (header_length,) = struct.unpack_from("<I", body, pos)
            pos += 4
            header = body[pos : pos + header_length]
            pos += header_length
            if credssp:
                # TLS records: they run to the next boundary. The length field only splits
                # them (pywinrm computes it from the cipher name and may be off), so header
                # and data are unsealed together.
                data_end = body.find(boundary, pos)
                if data_end < 0:
                    raise EncryptionError("encrypted payload is truncated")
            else:
                data_end = pos + length
            data = body[pos:data_end]
            pos = data_end
            if len(header) != header_length or (not credssp and len(data) != length):
                raise EncryptionError("encrypted payload length does not match OriginalContent")
            try:
                plain = self._context.unwrap_winrm(header, data)
            except Exception as exc:  # noqa: BLE001 - a bad seal is a client error, answered 400
                raise EncryptionError(f"cannot unseal the request: {exc}") from exc
            if len(plain) != length:
                raise EncryptionError("unsealed length does not match OriginalContent")
            plain_parts.append(plain)
            if body.startswith(end, pos):
                return b"".join(plain_parts)
            if not multi:
                raise EncryptionError("encrypted payload length does not match OriginalContent")

    def wrap(self, plain: bytes) -> tuple[str, bytes]:
        """Seal a SOAP response: (Content-Type, body)."""
        if self._context is None:
            raise EncryptionError("no logon context to seal with")
        protocol = self.encryption_protocol
        if protocol == CREDSSP_ENCRYPTION and len(plain) > CREDSSP_CHUNK_BYTES:
            kind = MULTI_PART
            pieces = [
                plain[offset : offset + CREDSSP_CHUNK_BYTES]
                for offset in range(0, len(plain), CREDSSP_CHUNK_BYTES)
            ]
        else:
            kind = SINGLE_PART
            pieces = [plain]
        boundary = f"--{ENCRYPTED_BOUNDARY}".encode("ascii")
        parts = []
        for piece in pieces:
            result = self._context.wrap_winrm(piece)
            parts.append(
                boundary + b"\r\n"
                b"\tContent-Type: " + protocol.encode("ascii") + b"\r\n"
                b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
                + str(len(piece) + result.padding_length).encode("ascii")
                + b"\r\n"
                + boundary
                + b"\r\n"
                + _OCTET_STREAM_LINE
                + struct.pack("<I", len(result.header))
                + result.header
                + result.data
            )
        return encrypted_content_type(kind, protocol), b"".join(parts) + boundary + b"--\r\n"
