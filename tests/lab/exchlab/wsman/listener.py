# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP and HTTPS listeners for many simulated hosts in one process.

One accept thread watches every listening socket through ``selectors`` (400 hosts are 800
listeners; a thread each would be 800 idle threads), then each accepted connection gets its own
thread, because NTLM authenticates the connection and its context must live exactly as long.
Responses go out in one ``sendall`` with TCP_NODELAY: headers and body in two sends cost 40 ms
per request through Nagle and delayed ACK (13x slower run_cmd, measured). Nothing here resolves
names: http.server's reverse-DNS lookup in server_bind made 400 listeners take 40 s to start.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import BinaryIO

from .auth import MULTI_PART, SINGLE_PART, ConnectionAuth, EncryptionError
from .backend import Backend, LogonSession, WsmanFaults
from .soap import ERROR_INTERNAL_ERROR, WsmanFault, envelope, fault_envelope, parse_request
from .tls import LabCA, ServerCertificate
from .winrs import ShellManager

log = logging.getLogger("exchlab.wsman")

# HTTP.sys keeps an idle connection about 120 s. Shorter made long-lived pywinrm Protocol and
# pypsrp Client objects reconnect and replay a body sealed with the old NTLM key.
KEEP_ALIVE_IDLE_S = 120.0
TLS_HANDSHAKE_TIMEOUT_S = 10.0
# How often the accept loop looks for idle shells to reap.
REAP_INTERVAL_S = 1.0
MAX_LINE = 65536
MAX_HEADERS = 100
MAX_BODY = 64 * 1024 * 1024
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    501: "Not Implemented",
}


class ListenerBindError(OSError):
    """A listener could not bind its address:port (usually: already taken)."""


@dataclass
class _Host:
    backend: Backend
    manager: ShellManager
    certificate: ServerCertificate
    ssl_context: ssl.SSLContext
    channel_binding_data: bytes
    sockets: list[socket.socket] = field(default_factory=list)


@dataclass(frozen=True)
class _Listener:
    host: _Host
    tls: bool
    port: int


@dataclass(frozen=True)
class _HttpRequest:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class _Drop(Exception):
    """Close the connection without answering (fault injection)."""


class _BadRequest(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _read_request(rfile: BinaryIO) -> _HttpRequest | None:
    """Read one HTTP/1.x request; None when the client closed the connection cleanly."""
    line = rfile.readline(MAX_LINE + 1)
    while line in (b"\r\n", b"\n"):
        # RFC 9112 2.2: ignore empty lines before a request line.
        line = rfile.readline(MAX_LINE + 1)
    if not line:
        return None
    if len(line) > MAX_LINE:
        raise _BadRequest(400)
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400)
    method, target, version = parts

    headers: dict[str, str] = {}
    for _header_number in range(MAX_HEADERS + 1):
        raw = rfile.readline(MAX_LINE + 1)
        if not raw:
            return None
        if len(raw) > MAX_LINE:
            raise _BadRequest(400)
        if raw in (b"\r\n", b"\n"):
            break
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep:
            raise _BadRequest(400)
        key = name.strip().lower()
        # Repeated headers are joined, as RFC 9110 5.3 allows for list-valued ones.
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    else:
        raise _BadRequest(400)

    if "transfer-encoding" in headers:
        # Neither pywinrm nor pypsrp sends chunked bodies.
        raise _BadRequest(501)
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit():
        raise _BadRequest(400)
    length = int(length_text)
    if length > MAX_BODY:
        raise _BadRequest(413)
    body = rfile.read(length) if length else b""
    if len(body) < length:
        return None
    return _HttpRequest(method, target, version, headers, body)


def _response(
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    keep_alive: bool,
    clock_skew_s: int = 0,
) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        "Server: Microsoft-HTTPAPI/2.0",
        # HTTP.sys stamps the host's own clock: a skewed host shows here first.
        f"Date: {formatdate(time.time() + clock_skew_s, usegmt=True)}",
    ]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append(f"Content-Length: {len(body)}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Connection:
    """One accepted TCP connection: its thread, socket and authentication state."""

    def __init__(
        self, server: WsmanServer, listener: _Listener, sock: socket.socket, peer: str
    ) -> None:
        self.server = server
        self.listener = listener
        self.host = listener.host
        self.sock = sock
        self.peer = peer
        self.auth = ConnectionAuth(
            tls=listener.tls,
            channel_binding_data=self.host.channel_binding_data if listener.tls else None,
            allow_basic_over_http=server.allow_basic_over_http,
        )
        scheme = "https" if listener.tls else "http"
        self.endpoint = f"{scheme}://{self.host.backend.address}:{listener.port}/wsman"
        self.thread = threading.Thread(
            target=self.run,
            name=f"exchlab-wsman-conn-{self.host.backend.address}:{listener.port}",
            daemon=True,
        )

    def close_socket(self) -> None:
        """Wake the thread from any blocking read (used by stop())."""
        try:
            # socket.socket.shutdown, not SSLSocket.shutdown: the latter tears down the TLS
            # object under the reading thread's feet.
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def run(self) -> None:
        rfile: BinaryIO | None = None
        try:
            if self.listener.tls:
                self.sock = self.host.ssl_context.wrap_socket(
                    self.sock, server_side=True, do_handshake_on_connect=False
                )
                if self.server.stopping:
                    return
                self.sock.settimeout(TLS_HANDSHAKE_TIMEOUT_S)
                self.sock.do_handshake()
            self.sock.settimeout(KEEP_ALIVE_IDLE_S)
            rfile = self.sock.makefile("rb")
            while not self.server.stopping:
                try:
                    request = _read_request(rfile)
                except _BadRequest as bad:
                    self.host.backend.count("http")
                    self._send(bad.status, [], b"", keep_alive=False)
                    return
                if request is None or not self._handle(request):
                    return
        except (OSError, ssl.SSLError, ValueError) as exc:
            # Client went away, TLS handshake refused (the certificate fault tests do this),
            # idle timeout, or stop() shut the socket down.
            log.debug("%s %s: connection ended: %s", self.endpoint, self.peer, exc)
        except Exception:  # noqa: BLE001 - the thread's edge: log a lab bug, drop the connection
            log.exception("%s %s: connection failed", self.endpoint, self.peer)
        finally:
            if rfile is not None:
                try:
                    rfile.close()
                except OSError:
                    pass
            try:
                self.sock.close()
            except OSError:
                pass
            self.server._forget(self)

    def _send(
        self, status: int, headers: list[tuple[str, str]], body: bytes, keep_alive: bool
    ) -> None:
        # One sendall for headers and body (see the module docstring: Nagle).
        skew = int(self.host.backend.faults.clock_skew_s)
        self.sock.sendall(_response(status, headers, body, keep_alive, skew))

    def _handle(self, request: _HttpRequest) -> bool:
        """Answer one request; return whether to keep the connection open."""
        backend = self.host.backend
        backend.count("http")
        faults: WsmanFaults = backend.faults
        if faults.latency_ms > 0 and self.server.wait_stopping(faults.latency_ms / 1000.0):
            return False

        connection = (request.header("connection") or "").lower()
        if request.version == "HTTP/1.0":
            keep_alive = "keep-alive" in connection
        else:
            keep_alive = "close" not in connection

        path = request.target.split("?", 1)[0]
        if path.lower() != "/wsman":
            self._send(404, [], b"", keep_alive)
            return keep_alive
        if request.method != "POST":
            self._send(405, [("Allow", "POST")], b"", keep_alive)
            return keep_alive

        decision = self.auth.authenticate(request.header("authorization"), backend)
        session = decision.session
        if not decision.allowed or session is None:
            self._send(401, decision.headers, b"", keep_alive)
            return keep_alive
        if not request.body:
            # Both clients send an empty authenticated POST before the first encrypted
            # message and call raise_for_status() on it: answer 200.
            self._send(200, decision.headers, b"", keep_alive)
            return keep_alive

        content_type = request.header("content-type") or ""
        encrypted = content_type.lower().startswith((SINGLE_PART, MULTI_PART))
        if encrypted:
            try:
                plain = self.auth.unwrap(content_type, request.body)
            except EncryptionError as exc:
                # The NTLM sequence numbers (or the CredSSP TLS records) have moved on: this
                # connection is unusable.
                log.debug("%s %s: %s", self.endpoint, self.peer, exc)
                self.auth.reset()
                self._send(400, [], b"", keep_alive=False)
                return False
        elif content_type.lower().startswith("multipart/"):
            # No other multipart body is WS-Management.
            self._send(415, [], b"", keep_alive)
            return keep_alive
        elif not self.listener.tls and not self.server.allow_basic_over_http:
            # AllowUnencrypted=false: Windows keeps answering 401 to clear-text SOAP on HTTP.
            self.auth.reset()
            self._send(401, self.auth.challenge(backend), b"", keep_alive)
            return keep_alive
        else:
            plain = request.body

        try:
            status, reply = self._dispatch(plain, session)
        except _Drop:
            log.info("%s %s: dropping the connection (fault injection)", self.endpoint, self.peer)
            return False

        headers = list(decision.headers)
        if encrypted:
            content_type_out, reply = self.auth.wrap(reply)
        else:
            content_type_out = SOAP_CONTENT_TYPE
        headers.append(("Content-Type", content_type_out))
        self._send(status, headers, reply, keep_alive)
        return keep_alive

    def _dispatch(self, plain: bytes, session: LogonSession) -> tuple[int, bytes]:
        backend = self.host.backend
        try:
            request = parse_request(plain)
        except WsmanFault as fault:
            return 500, fault_envelope(fault, "", backend.name)
        faults = backend.faults
        operation = request.operation
        if operation is not None and faults.drop_connection_on == operation:
            if self.server.take_drop(faults):
                raise _Drop()
        if operation == "Receive" and faults.drop_receive_for:
            line = self.host.manager.command_line_of(request)
            if line is not None and faults.drop_receive_for.lower() in line.lower():
                if self.server.take_drop(faults):
                    raise _Drop()
        try:
            if operation is not None and faults.wsman_fault_on == operation:
                raise WsmanFault(int(faults.wsman_fault_code))
            action, body = self.host.manager.handle(request, session, self.peer, self.endpoint)
        except WsmanFault as fault:
            log.debug("%s: %s answered with %s", backend.name, operation, fault)
            return 500, fault_envelope(fault, request.message_id, backend.name)
        except Exception as exc:  # noqa: BLE001 - a lab bug becomes a fault the client can show
            log.exception("%s: %s failed", backend.name, operation)
            fault = WsmanFault(ERROR_INTERNAL_ERROR, f"exchlab internal error: {exc}")
            return 500, fault_envelope(fault, request.message_id, backend.name)
        return 200, envelope(action, request.message_id, body)


class WsmanServer:
    """WS-Management listeners (HTTP and HTTPS) for many simulated Windows hosts.

    Each backend gets ``address:http_port`` (Negotiate/NTLM or CredSSP, message encryption
    required) and ``address:https_port`` (Basic, Negotiate/NTLM with channel binding checked, or
    CredSSP), presenting the certificate chosen by ``faults.tls_certificate`` at start() (or
    renew_certificate()). CredSSP is offered while ``faults.credssp_enabled``.
    ``ntlm_user_file`` is put in the NTLM_USER_FILE environment variable at start() (pyspnego's
    acceptors read it, CredSSP's NTLM logon included; it is process-wide).
    ``allow_basic_over_http`` models AllowUnencrypted=true with Basic enabled: clear-text SOAP
    and Basic are then accepted on HTTP too.
    The server can be stopped and started again; shells do not survive that (as with a
    restarted WinRM service).
    """

    def __init__(
        self,
        backends: list[Backend],
        ca: LabCA,
        http_port: int = 5985,
        https_port: int = 5986,
        ntlm_user_file: str | None = None,
        allow_basic_over_http: bool = False,
    ) -> None:
        names = [b.name.lower() for b in backends]
        addresses = [b.address for b in backends]
        if len(set(names)) != len(names) or len(set(addresses)) != len(addresses):
            raise ValueError("every backend needs its own name and its own address")
        self.backends = list(backends)
        self.ca = ca
        self.http_port = http_port
        self.https_port = https_port
        self.ntlm_user_file = ntlm_user_file
        # Models Windows with AllowUnencrypted=true and Basic enabled on the HTTP listener.
        self.allow_basic_over_http = allow_basic_over_http
        self._hosts: dict[str, _Host] = {}
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._drop_lock = threading.Lock()
        self._connections: set[_Connection] = set()
        self._selector: selectors.BaseSelector | None = None
        self._accept_thread: threading.Thread | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._started = False

    # Public API --------------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    def start(self) -> None:
        """Bind every listener and return once all of them listen.

        Raises ListenerBindError (an OSError) naming address:port when one cannot be bound;
        nothing stays bound then.
        """
        if self._started:
            raise RuntimeError("WsmanServer already started")
        if self.ntlm_user_file is not None:
            # pyspnego's NTLM acceptor reads its credentials from this file (process-wide).
            os.environ["NTLM_USER_FILE"] = str(self.ntlm_user_file)
        self._stop_event.clear()
        selector = selectors.DefaultSelector()
        hosts: dict[str, _Host] = {}
        try:
            for backend in self.backends:
                certificate = self.ca.issue_server_certificate(
                    backend.name, backend.address, backend.faults.tls_certificate
                )
                host = _Host(
                    backend=backend,
                    manager=ShellManager(backend),
                    certificate=certificate,
                    ssl_context=certificate.ssl_context(),
                    channel_binding_data=certificate.channel_binding_data(),
                )
                hosts[backend.name.lower()] = host
                for port, tls in ((self.http_port, False), (self.https_port, True)):
                    sock = _bind(backend.address, port)
                    host.sockets.append(sock)
                    selector.register(sock, selectors.EVENT_READ, _Listener(host, tls, port))
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            selector.register(self._wake_r, selectors.EVENT_READ, None)
        except BaseException:
            for host in hosts.values():
                for sock in host.sockets:
                    sock.close()
            selector.close()
            for sock in (self._wake_r, self._wake_w):
                if sock is not None:
                    sock.close()
            self._wake_r = self._wake_w = None
            raise
        self._hosts = hosts
        self._selector = selector
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="exchlab-wsman-accept", daemon=True
        )
        self._started = True
        self._accept_thread.start()
        log.info("listening for %d hosts", len(hosts))

    def stop(self, worker_timeout_s: float = 10.0) -> None:
        """Close listeners and connections and wait for every thread this server started.

        Command threads blocked inside Backend.run_command are waited for up to
        worker_timeout_s (a backend call cannot be interrupted); stragglers are logged.
        """
        if not self._started:
            return
        self._stop_event.set()
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass
        if self._accept_thread is not None:
            self._accept_thread.join()
        if self._selector is not None:
            self._selector.close()
        for host in self._hosts.values():
            for sock in host.sockets:
                sock.close()
            host.sockets.clear()
            host.manager.close()
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._wake_r = self._wake_w = None

        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.close_socket()
        for connection in connections:
            connection.thread.join(timeout=5.0)
            if connection.thread.is_alive():
                log.warning("connection thread %s did not end", connection.thread.name)

        deadline = time.monotonic() + worker_timeout_s
        for host in self._hosts.values():
            for worker in host.manager.workers():
                worker.join(timeout=max(0.0, deadline - time.monotonic()))
                if worker.is_alive():
                    log.warning("%s: command thread still inside the backend", worker.name)
        self._started = False
        self._accept_thread = None
        self._selector = None
        log.info("stopped")

    def shell_manager(self, name: str) -> ShellManager:
        """The shells of host ``name`` (for tests and ``exchlab show``)."""
        return self._hosts[name.lower()].manager

    def certificate(self, name: str) -> ServerCertificate:
        """The certificate the HTTPS listener of host ``name`` presents."""
        return self._hosts[name.lower()].certificate

    def renew_certificate(self, name: str) -> None:
        """Present the certificate ``faults.tls_certificate`` now names on host ``name``'s
        HTTPS listener, from its next TLS connection on (as binding a renewed certificate to a
        Windows listener does; open connections keep the old one)."""
        host = self._hosts[name.lower()]
        certificate = self.ca.issue_server_certificate(
            host.backend.name, host.backend.address, host.backend.faults.tls_certificate
        )
        # Channel binding first: a connection accepted meanwhile must never pair the new
        # certificate with the old binding data.
        host.channel_binding_data = certificate.channel_binding_data()
        host.ssl_context = certificate.ssl_context()
        host.certificate = certificate

    def __enter__(self) -> WsmanServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Internals used by connections ---------------------------------------------------------------

    def wait_stopping(self, seconds: float) -> bool:
        """Sleep (for the latency fault) unless the server stops; True when stopping."""
        return self._stop_event.wait(seconds)

    def take_drop(self, faults: WsmanFaults) -> bool:
        """Use up one of faults.drop_connection_count; False when none is left."""
        with self._drop_lock:
            if faults.drop_connection_count <= 0:
                return False
            faults.drop_connection_count -= 1
            return True

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _accept_loop(self) -> None:
        assert self._selector is not None
        next_reap = time.monotonic() + REAP_INTERVAL_S
        while not self._stop_event.is_set():
            try:
                events = self._selector.select(timeout=REAP_INTERVAL_S)
            except OSError as exc:
                log.error("selector failed: %s", exc)
                return
            for key, _mask in events:
                listener = key.data
                if listener is None:
                    continue  # the wake-up socket: the loop condition sees the stop flag
                self._accept(key.fileobj, listener)  # type: ignore[arg-type]
            now = time.monotonic()
            if now >= next_reap:
                next_reap = now + REAP_INTERVAL_S
                for host in self._hosts.values():
                    host.manager.reap_idle(now)

    def _accept(self, listening: socket.socket, listener: _Listener) -> None:
        try:
            sock, peer = listening.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            # EMFILE and friends: keep serving the other connections.
            log.warning(
                "accept on %s:%d failed: %s", listener.host.backend.address, listener.port, exc
            )
            return
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _Connection(self, listener, sock, peer[0])
        with self._lock:
            if self._stop_event.is_set():
                sock.close()
                return
            self._connections.add(connection)
        connection.thread.start()


def _bind(address: str, port: int) -> socket.socket:
    """A non-blocking listening socket; no name resolution anywhere."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Lets a restarted lab re-bind while old connections sit in TIME_WAIT; on Linux it
        # does not let two listeners share a port, so a taken port still fails.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        code = exc.errno or errno.EADDRINUSE
        raise ListenerBindError(
            code, f"cannot listen on {address}:{port}: {exc.strerror or exc}"
        ) from exc
    return sock
