# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WinRM doctor: why a host cannot be reached or read, and the one fix for each cause.

Two halves. `examine()` looks at the host's connection settings and the controller's Python,
then tries the connection one step at a time (TCP, TLS with and without validation, an
unauthenticated WS-Man Identify, the real logon, a shell, `chcp`, a PATH lookup of reg and wmic)
and writes down what each step saw in a `Findings`. `SIGNATURES` is the table of known causes:
each row's detector reads the Findings and, when its cause is present, returns the values its
message and fix are written with. Adding a cause is adding one row.

Nothing here changes the host: the only commands run are `chcp` (without an argument, which
only shows the code page) and a FOR loop that prints where reg.exe and wmic.exe are.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import email.utils
import hashlib
import http.client
import re
import socket
import ssl
import time
import typing as t
from dataclasses import dataclass, field

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.utils.display import Display

from ._rules import Values
from ._winrs import (
    CA_TRUST_PATH_FIX,
    DEFAULT_CODEPAGE,
    DEFAULT_OPERATION_TIMEOUT_SEC,
    DEFAULT_READ_TIMEOUT_SEC,
    HAS_WINRM,
    WinrsAuthError,
    WinrsConfigError,
    WinrsError,
    WinrsFault,
    WinrsShell,
    WinrsTlsError,
    ca_trust_path_problem,
    missing_auth_library,
    read_winrm_settings,
    target_from_options,
    whole_number,
)

display = Display()

# Windows' WS-Man quota faults (wsmerror.h).
QUOTA_MAX_SHELLS = 2150859173
QUOTA_MAX_OPERATIONS = 2150859174
# Kerberos refuses tickets whose clocks differ by more than this (the default MaxClockSkew).
KERBEROS_MAX_SKEW_S = 300
# Code pages whose output our parsers read right: the one we ask for, and en-US OEM.
GOOD_CODEPAGES = (65001, 437)
# cmd.exe's FOR with %~$PATH: finds a program along PATH on every Windows since NT 4.0;
# where.exe only exists from Windows Server 2003 on.
TOOLS = ("reg.exe", "wmic.exe")
TOOLS_COMMAND = f"for %I in ({' '.join(TOOLS)}) do @echo %I=%~$PATH:I"
_IDENTIFY = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">'
    "<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>"
)


@dataclass(frozen=True)
class Problem:
    id: str
    host: str
    message: str
    fix: str

    @property
    def line(self) -> str:
        """The one line an operator reads: what is wrong, then the fix."""
        return f"{self.host}: {self.message} Fix: {self.fix}"

    def as_result(self) -> dict[str, str]:
        return {"id": self.id, "host": self.host, "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class Settings:
    """The host's connection settings as the winrm connection resolves them (never the
    password itself: only whether there is one)."""

    address: str
    port: int | None
    scheme: str
    transport: str
    user: str
    has_password: bool
    cert_validation: str
    ca_trust_path: str | None
    message_encryption: str
    operation_timeout_sec: int | None
    read_timeout_sec: int | None
    send_cbt: bool
    ca_trust_path_problem: str | None  # as the modules refuse it, before any connection


@dataclass
class Findings:
    """What each step saw; None where a step did not run."""

    host: str
    settings: Settings
    has_winrm: bool = True
    missing_library: str | None = None
    md4_available: bool = True
    tcp_error: str | None = None
    tls_verify_error: str | None = None  # the reason validation failed
    tls_verify_code: int | None = None  # OpenSSL's X509 verify code
    tls_error: str | None = None  # TLS failed even without validation
    offered_schemes: tuple[str, ...] | None = None
    server_clock_skew_s: float | None = None
    settings_error: WinrsConfigError | None = None
    logon_error: WinrsError | None = None
    logon_works_with_cbt: bool = False
    command_error: WinrsError | None = None
    codepage: int | None = None
    missing_tools: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Reading the settings


def read_settings(host: str, get_option: t.Callable[[str], t.Any]) -> Settings:
    """The settings as every module reads them (`read_winrm_settings`), but never refusing: the
    doctor must see a wrong setting to name it. The password itself is not kept."""
    shared = read_winrm_settings(host, get_option)
    try:
        send_cbt = boolean(shared.send_cbt, strict=False)
    except TypeError:
        send_cbt = True
    return Settings(
        address=shared.address,
        port=whole_number(shared.port),
        scheme=shared.scheme,
        transport=shared.transport,
        user=str(shared.user or ""),
        has_password=shared.password not in (None, ""),
        cert_validation=shared.cert_validation,
        ca_trust_path=shared.ca_trust_path,
        message_encryption=shared.message_encryption,
        operation_timeout_sec=whole_number(shared.operation_timeout_sec),
        read_timeout_sec=whole_number(shared.read_timeout_sec),
        send_cbt=send_cbt,
        ca_trust_path_problem=ca_trust_path_problem(shared),
    )


def _probe_options(
    get_option: t.Callable[[str], t.Any], settings: Settings
) -> t.Callable[[str], t.Any]:
    """get_option with the timeouts put right, so that a timeout mistake (reported on its own)
    does not stop the doctor from trying the connection."""
    operation = settings.operation_timeout_sec or DEFAULT_OPERATION_TIMEOUT_SEC
    read = settings.read_timeout_sec or DEFAULT_READ_TIMEOUT_SEC
    if read > operation:
        return get_option

    def options(name: str) -> t.Any:
        value = get_option(name)
        if name == "_extras":
            return {**(value or {}), "ansible_winrm_read_timeout_sec": operation + 10}
        return value

    return options


# ---------------------------------------------------------------------------------------------
# The controller


def ntlm_hash_available() -> bool:
    """Whether this Python can compute NTLM's MD4 hash: OpenSSL's md4 (only in its legacy
    provider since OpenSSL 3), else pyspnego's own MD4 (pyspnego 0.5.2 and later)."""
    try:
        hashlib.new("md4", b"")
        return True
    except ValueError:
        pass
    try:
        # pyspnego's NTLM hash, the one requests-ntlm 1.2+ uses; private but stable since 0.5.
        from spnego._ntlm_raw.crypto import ntowfv1  # pylint: disable=import-outside-toplevel

        ntowfv1("exchops")
        return True
    except Exception:  # pylint: disable=broad-exception-caught # any failure means no MD4
        return False


# ---------------------------------------------------------------------------------------------
# The network, one step at a time


def _tls_context(verify: bool, ca_trust_path: str | None) -> ssl.SSLContext:
    if not verify:
        # Only for the handshake test and the Identify, which carry no credentials.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_trust_path)


def _check_network(findings: Findings, timeout: float) -> None:
    settings = findings.settings
    port = settings.port or (5985 if settings.scheme == "http" else 5986)
    try:
        with socket.create_connection((settings.address, port), timeout=timeout):
            pass
    except OSError as exc:
        findings.tcp_error = exc.strerror or type(exc).__name__
        return
    display.vvv(f"exchops.kms doctor: TCP {settings.address}:{port} connects", host=findings.host)

    https = settings.scheme == "https"
    # An unusable CA path is its own row, and the modules refuse it before connecting.
    if https and settings.cert_validation == "validate" and not settings.ca_trust_path_problem:
        try:
            context = _tls_context(True, settings.ca_trust_path)
            with socket.create_connection((settings.address, port), timeout=timeout) as sock:
                with context.wrap_socket(sock, server_hostname=settings.address):
                    pass
        except ssl.SSLCertVerificationError as exc:
            findings.tls_verify_error = str(exc.verify_message).rstrip(".")
            findings.tls_verify_code = exc.verify_code
        except (ssl.SSLError, OSError) as exc:
            findings.tls_verify_error = str(exc)[:200]

    try:
        if https:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                settings.address, port, timeout=timeout, context=_tls_context(False, None)
            )
        else:
            connection = http.client.HTTPConnection(settings.address, port, timeout=timeout)
        # No credentials go out: the 401 lists the schemes the listener accepts.
        connection.request(
            "POST",
            "/wsman",
            body=_IDENTIFY.encode(),
            headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
        )
        before = time.time()
        answer = connection.getresponse()
        answer.read()
        schemes = [
            value.split()[0].lower()
            for value in answer.headers.get_all("WWW-Authenticate") or []
            if value.strip()
        ]
        if answer.status == 401:  # only a refusal lists the schemes; a 200 says nothing of them
            findings.offered_schemes = tuple(schemes)
        date = answer.headers.get("Date")
        if date:
            findings.server_clock_skew_s = (
                email.utils.parsedate_to_datetime(date).timestamp() - before
            )
        connection.close()
    except ssl.SSLError as exc:
        findings.tls_error = str(exc)[:200]
    except (OSError, http.client.HTTPException, ValueError, TypeError) as exc:
        findings.notes.append(f"WS-Man Identify failed: {type(exc).__name__}")


_CODEPAGE = re.compile(r"(\d{3,5})\.?\s*$")


def _check_winrs(
    findings: Findings, host: str, get_option: t.Callable[[str], t.Any], timeout: int
) -> None:
    settings = findings.settings
    try:
        target = target_from_options(host, _probe_options(get_option, settings), timeout)
    except WinrsConfigError as exc:
        findings.settings_error = exc
        return
    try:
        with WinrsShell(target, send_cbt=settings.send_cbt) as shell:
            try:
                chcp = shell.run("chcp")
                match = _CODEPAGE.search(chcp.stdout.strip())
                findings.codepage = int(match.group(1)) if match else None
                tools = shell.run(TOOLS_COMMAND)
                found = dict(
                    line.strip().partition("=")[::2]
                    for line in tools.stdout.splitlines()
                    if "=" in line
                )
                findings.missing_tools = tuple(
                    name for name in TOOLS if not found.get(name, "").strip()
                )
            except WinrsError as exc:
                findings.command_error = exc
    except WinrsError as exc:
        findings.logon_error = exc
        if (
            isinstance(exc, WinrsAuthError)
            and not settings.send_cbt
            and settings.scheme == "https"
            and settings.transport in ("ntlm", "kerberos")
        ):
            # Would the same logon pass with a channel binding token?
            try:
                with WinrsShell(target, send_cbt=True):
                    findings.logon_works_with_cbt = True
            except WinrsError:
                pass


def examine(host: str, get_option: t.Callable[[str], t.Any], timeout: int) -> Findings:
    """Look at the settings, the controller and each step of the connection."""
    settings = read_settings(host, get_option)
    findings = Findings(host=host, settings=settings, has_winrm=HAS_WINRM)
    findings.missing_library = missing_auth_library(settings.transport)
    if settings.transport in ("ntlm", "credssp"):
        findings.md4_available = ntlm_hash_available()
    _check_network(findings, float(timeout))
    if findings.tcp_error or findings.tls_error:
        return findings
    if findings.missing_library or not findings.md4_available:
        return findings  # pywinrm could not log on from this controller
    if found(basic_over_http, findings) or findings.tls_verify_error:
        return findings  # refused before sending, or TLS would fail the same way
    _check_winrs(findings, host, get_option, timeout)
    return findings


# ---------------------------------------------------------------------------------------------
# Detectors: Findings -> the values of the row's message and fix, or None when absent.


def found(detect: t.Callable[[Findings], Values | None], findings: Findings) -> bool:
    """Whether a detector sees its cause (an empty dict of values still means yes)."""
    return detect(findings) is not None


def basic_over_http(f: Findings) -> Values | None:
    s = f.settings
    return {} if s.transport in ("basic", "ssl") and s.scheme == "http" else None


def basic_domain_account(f: Findings) -> Values | None:
    s = f.settings
    if s.transport in ("basic", "ssl") and ("\\" in s.user or "@" in s.user):
        return {"user": s.user}
    return None


def unencrypted_http(f: Findings) -> Values | None:
    s = f.settings
    if (
        s.scheme == "http"
        and s.transport not in ("basic", "ssl")
        and s.message_encryption == "never"
    ):
        return {}
    return None


def ntlm_without_md4(f: Findings) -> Values | None:
    return {} if not f.md4_available else None


def missing_winrm(f: Findings) -> Values | None:
    return {} if not f.has_winrm else None


def missing_auth_extra(f: Findings) -> Values | None:
    if f.has_winrm and f.missing_library:
        return {"requirement": f.missing_library, "transport": f.settings.transport}
    return None


def tcp_unreachable(f: Findings) -> Values | None:
    s = f.settings
    if f.tcp_error:
        port = s.port or (5985 if s.scheme == "http" else 5986)
        return {"reason": f.tcp_error.lower(), "address": s.address, "port": port}
    return None


def _verify_code(f: Findings, codes: tuple[int, ...]) -> Values | None:
    if f.tls_verify_error and f.tls_verify_code in codes:
        return {"reason": f.tls_verify_error, "address": f.settings.address}
    return None


def ca_not_trusted(f: Findings) -> Values | None:
    # 18 self-signed, 19 self-signed in chain, 20 no local issuer, 21 leaf only.
    return _verify_code(f, (18, 19, 20, 21))


def name_mismatch(f: Findings) -> Values | None:
    # 62 host name mismatch, 64 IP address mismatch (OpenSSL 1.1+).
    return _verify_code(f, (62, 64))


def certificate_expired(f: Findings) -> Values | None:
    return _verify_code(f, (10,))


def tls_failed(f: Findings) -> Values | None:
    if f.tls_error:
        return {"reason": f.tls_error}
    if f.tls_verify_error and not any(
        found(detect, f) for detect in (ca_not_trusted, name_mismatch, certificate_expired)
    ):
        return {"reason": f.tls_verify_error}
    return None


def credssp_not_enabled(f: Findings) -> Values | None:
    s = f.settings
    if s.transport == "credssp" and f.offered_schemes is not None:
        if "credssp" not in f.offered_schemes:
            return {"offered": ", ".join(f.offered_schemes) or "none"}
    return None


def scheme_not_offered(f: Findings) -> Values | None:
    s = f.settings
    if f.offered_schemes is None or found(basic_over_http, f) or found(credssp_not_enabled, f):
        return None
    wanted = {
        "basic": ("basic",),
        "ssl": ("basic",),
        "ntlm": ("negotiate", "ntlm"),
        "kerberos": ("negotiate", "kerberos"),
        "credssp": ("credssp",),
    }.get(s.transport)
    if wanted and not set(wanted) & set(f.offered_schemes):
        return {"transport": s.transport, "offered": ", ".join(f.offered_schemes) or "none"}
    return None


def cbt_refused(f: Findings) -> Values | None:
    return {} if f.logon_works_with_cbt else None


def clock_skew(f: Findings) -> Values | None:
    skew = f.server_clock_skew_s
    if f.settings.transport == "kerberos" and skew is not None and abs(skew) > KERBEROS_MAX_SKEW_S:
        return {"skew": round(skew), "ahead": "ahead of" if skew > 0 else "behind"}
    return None


def timeouts_inverted(f: Findings) -> Values | None:
    s = f.settings
    operation = s.operation_timeout_sec or 20
    read = s.read_timeout_sec or 30
    return (
        {"read": read, "operation": operation, "fixed": operation + 10}
        if read <= operation
        else None
    )


def ca_trust_path_unusable(f: Findings) -> Values | None:
    problem = f.settings.ca_trust_path_problem
    return {"problem": problem} if problem else None


def _fault_code(error: WinrsError | None) -> int | None:
    return error.code if isinstance(error, WinrsFault) else None


def shell_quota(f: Findings) -> Values | None:
    if QUOTA_MAX_SHELLS in (_fault_code(f.logon_error), _fault_code(f.command_error)):
        return {"code": QUOTA_MAX_SHELLS, "user": f.settings.user}
    return None


def operation_quota(f: Findings) -> Values | None:
    if QUOTA_MAX_OPERATIONS in (_fault_code(f.logon_error), _fault_code(f.command_error)):
        return {"code": QUOTA_MAX_OPERATIONS, "user": f.settings.user}
    return None


def wrong_codepage(f: Findings) -> Values | None:
    if f.codepage is not None and f.codepage not in GOOD_CODEPAGES:
        return {"codepage": f.codepage, "asked": DEFAULT_CODEPAGE}
    return None


def missing_tool(name: str) -> t.Callable[[Findings], Values | None]:
    def detect(f: Findings) -> Values | None:
        return {"tool": name} if name in f.missing_tools else None

    return detect


def _explained_logon_failure(f: Findings) -> bool:
    return any(
        found(detect, f)
        for detect in (
            basic_domain_account,
            unencrypted_http,
            cbt_refused,
            scheme_not_offered,
            credssp_not_enabled,
        )
    )


def logon_refused(f: Findings) -> Values | None:
    if isinstance(f.logon_error, WinrsAuthError) and not _explained_logon_failure(f):
        return {"user": f.settings.user, "transport": f.settings.transport}
    return None


def settings_refused(f: Findings) -> Values | None:
    if f.settings_error is None or found(basic_over_http, f) or found(timeouts_inverted, f):
        return None
    problem = f.settings.ca_trust_path_problem
    if problem and problem in str(f.settings_error):
        return None  # its own row, ca_trust_path_unusable
    return {"reason": str(f.settings_error).split(": ", 1)[-1]}


def other_winrm_error(f: Findings) -> Values | None:
    """Any failure no row above explains, so that no failure goes unreported."""
    for error in (f.logon_error, f.command_error):
        if error is None or isinstance(error, (WinrsAuthError, WinrsTlsError)):
            continue
        if _fault_code(error) in (QUOTA_MAX_SHELLS, QUOTA_MAX_OPERATIONS):
            continue
        return {"reason": str(error).split(": ", 1)[-1]}
    return None


# ---------------------------------------------------------------------------------------------
# The table of known causes. Messages and fixes are str.format templates over the detector's
# values; {host} is always there.


@dataclass(frozen=True)
class Signature:
    id: str
    detect: t.Callable[[Findings], Values | None]
    message: str
    fix: str


EE_NOTE = (
    "(in an execution environment: add it to the Python requirements of execution-environment.yml)"
)

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "pywinrm_missing",
        missing_winrm,
        "pywinrm is not installed in the Python that runs Ansible on the controller.",
        f"Run pip install pywinrm {EE_NOTE}.",
    ),
    Signature(
        "auth_library_missing",
        missing_auth_extra,
        "ansible_winrm_transport={transport} needs {requirement}, which is not installed in the "
        "Python that runs Ansible on the controller.",
        f"Run pip install '{{requirement}}' {EE_NOTE}, or use ansible_winrm_transport=ntlm.",
    ),
    Signature(
        "ntlm_md4_missing",
        ntlm_without_md4,
        "NTLM needs an MD4 hash, and neither this controller's OpenSSL (hashlib md4) nor its "
        "pyspnego can compute one.",
        "Run pip install 'pyspnego>=0.5.2' 'requests-ntlm>=1.2' (they carry their own MD4), or "
        "enable OpenSSL's legacy provider in openssl.cnf ([provider_sect] legacy = legacy_sect, "
        "[legacy_sect] activate = 1).",
    ),
    Signature(
        "basic_over_http",
        basic_over_http,
        "ansible_winrm_transport=basic over ansible_winrm_scheme=http would send the password "
        "in clear text; exchops.kms refuses it and Windows refuses it by default "
        "(AllowUnencrypted=false).",
        "Set ansible_winrm_scheme=https (port 5986), or ansible_winrm_transport=ntlm.",
    ),
    Signature(
        "basic_domain_account",
        basic_domain_account,
        "ansible_user is the domain account '{user}', but Windows' Basic authentication only "
        "accepts local accounts.",
        "Set ansible_winrm_transport=ntlm for the domain account, or ansible_user to a local "
        "administrator (user name without DOMAIN\\ or @domain).",
    ),
    Signature(
        "unencrypted_http",
        unencrypted_http,
        "ansible_winrm_message_encryption=never over plain HTTP: Windows refuses unencrypted "
        "messages (AllowUnencrypted=false) and answers 401.",
        "Set ansible_winrm_message_encryption=auto (or always), or use ansible_winrm_scheme=https.",
    ),
    Signature(
        "timeouts_inverted",
        timeouts_inverted,
        "ansible_winrm_read_timeout_sec ({read}) is not more than "
        "ansible_winrm_operation_timeout_sec ({operation}): the host may hold each request that "
        "long, so reads time out.",
        "Set ansible_winrm_read_timeout_sec={fixed} (always above the operation timeout).",
    ),
    Signature(
        "ca_trust_path_unusable",
        ca_trust_path_unusable,
        "{problem}",
        CA_TRUST_PATH_FIX,
    ),
    Signature(
        "port_unreachable",
        tcp_unreachable,
        "cannot open a TCP connection to {address}:{port} ({reason}).",
        "Check ansible_host and ansible_port, and on the host that WinRM runs and listens "
        "(winrm enumerate winrm/config/listener; winrm quickconfig creates the HTTP listener).",
    ),
    Signature(
        "ca_not_trusted",
        ca_not_trusted,
        "the host's WinRM certificate is not trusted by the controller ({reason}).",
        "Set ansible_winrm_ca_trust_path to the PEM file of the CA that issued it.",
    ),
    Signature(
        "certificate_name_mismatch",
        name_mismatch,
        "the host's WinRM certificate is not issued to {address} ({reason}).",
        "Set ansible_host to a name the certificate carries, or reissue the certificate for "
        "{address} and rebind the HTTPS listener.",
    ),
    Signature(
        "certificate_expired",
        certificate_expired,
        "the host's WinRM certificate has expired.",
        "Renew the certificate and rebind the HTTPS listener (winrm set "
        'winrm/config/listener?Address=*+Transport=HTTPS @{{CertificateThumbprint="NEW"}}).',
    ),
    Signature(
        "tls_failed",
        tls_failed,
        "the TLS handshake with the WinRM listener failed ({reason}).",
        "Check that the port is the HTTPS listener's (5986) and its certificate binding "
        "(winrm enumerate winrm/config/listener).",
    ),
    Signature(
        "credssp_not_enabled",
        credssp_not_enabled,
        "ansible_winrm_transport=credssp, but CredSSP is not enabled on the host's WinRM service "
        "(it offers only: {offered}).",
        "On the host: Enable-WSManCredSSP -Role Server (or winrm set winrm/config/service/auth "
        '@{{CredSSP="true"}}).',
    ),
    Signature(
        "auth_scheme_not_offered",
        scheme_not_offered,
        "ansible_winrm_transport={transport}, but the WinRM listener offers only: {offered}.",
        "Choose a transport the host offers, or enable it on the host (e.g. winrm set "
        'winrm/config/service/auth @{{Basic="true"}} for Basic over HTTPS).',
    ),
    Signature(
        "channel_binding_refused",
        cbt_refused,
        "the host requires a channel binding token (CbtHardeningLevel=Strict), and "
        "ansible_winrm_send_cbt=false leaves it out, so the logon is refused.",
        "Remove ansible_winrm_send_cbt (or set it to true).",
    ),
    Signature(
        "kerberos_clock_skew",
        clock_skew,
        "the host's clock is {skew} s {ahead} the controller's; Kerberos refuses tickets beyond "
        "300 s of skew.",
        "Synchronise both clocks with the domain's time source (on the host: w32tm /resync).",
    ),
    Signature(
        "logon_refused",
        logon_refused,
        "the host refused the logon of '{user}' ({transport}).",
        "Check ansible_user and ansible_password (NTLM domain accounts as DOMAIN\\user), and "
        "that the account is an administrator or in Remote Management Users on the host.",
    ),
    Signature(
        "shell_quota",
        shell_quota,
        "the host refused a new shell: '{user}' has used up MaxShellsPerUser (WS-Man fault {code}).",
        "Close that account's idle shells, or on the host: winrm set winrm/config/winrs "
        '@{{MaxShellsPerUser="30"}}.',
    ),
    Signature(
        "operation_quota",
        operation_quota,
        "the host refused a command: '{user}' has used up MaxConcurrentOperationsPerUser "
        "(WS-Man fault {code}).",
        "Wait for that account's other operations to end, or on the host: winrm set "
        'winrm/config/service @{{MaxConcurrentOperationsPerUser="1500"}}.',
    ),
    Signature(
        "settings_refused",
        settings_refused,
        "the connection settings cannot work: {reason}",
        "Correct the ansible_winrm_* setting named above.",
    ),
    Signature(
        "winrm_error",
        other_winrm_error,
        "{reason}",
        "Run the task with -vvv for the WinRM exchange, and fix what the message names.",
    ),
    Signature(
        "wrong_codepage",
        wrong_codepage,
        "the host's shells run in code page {codepage} although WinRS asked for {asked}: "
        "names outside ASCII in reg, sc and wmic output come out garbled.",
        "On the host, remove the chcp from the AutoRun value of HKLM\\SOFTWARE\\Microsoft\\"
        "Command Processor (and HKCU's), which overrides the code page WinRS sets.",
    ),
    Signature(
        "reg_missing",
        missing_tool("reg.exe"),
        "reg.exe is not on the host's PATH, so registry values (Exchange build, service pack) "
        "cannot be read.",
        "Install the Windows 2000 Support Tools (SUPPORT\\TOOLS\\SETUP.EXE on the Windows CD), "
        "which carry reg.exe, or add its folder to the system PATH.",
    ),
    Signature(
        "wmic_missing",
        missing_tool("wmic.exe"),
        "wmic.exe is not on the host's PATH (Windows 2000 and NT 4.0 have none), so file "
        "versions such as Kmserver.exe's and the event log cannot be read.",
        "Read the host from a Windows XP/2003-or-later machine (wmic /node:HOST), or check "
        "Kmserver.exe's version in its file properties by hand.",
    ),
)


def diagnose(host: str, get_option: t.Callable[[str], t.Any], timeout: int) -> list[Problem]:
    """Every known cause found on `host`, in the table's order."""
    findings = examine(host, get_option, timeout)
    problems = []
    for signature in SIGNATURES:
        values = signature.detect(findings)
        if values is None:
            continue
        values = {**values, "host": host}
        problems.append(
            Problem(
                signature.id,
                host,
                signature.message.format(**values),
                signature.fix.format(**values),
            )
        )
    return problems
