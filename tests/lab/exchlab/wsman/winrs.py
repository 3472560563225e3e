# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WinRS shells and commands of one host: Create, Command, Receive, Signal, Send, Delete.

One ``ShellManager`` per simulated host. Each shell keeps the ``LogonSession`` it was created in
(who, how they authenticated, what they may delegate), and each command runs
``Backend.run_command`` as that session in a worker thread, with a ``CommandStdin`` that WinRS
Send fills. Receive long-polls for at most the request's OperationTimeout (capped at Windows'
MaxTimeoutms, 60 s) and answers the TimedOut fault when nothing came, as MS-WSMV 3.1.4.1.6 says.
Every command has a lifetime, so a client that retries TimedOut forever (pywinrm does) still ends.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import base64
import binascii
import codecs
import logging
import threading
import time
from dataclasses import dataclass, field

from .backend import Backend, CommandResult, LogonSession
from .soap import (
    ERROR_INVALID_PARAMETER,
    ERROR_WSMAN_ACTION_NOT_SUPPORTED,
    ERROR_WSMAN_OPERATION_TIMEDOUT,
    ERROR_WSMAN_QUOTA_MAX_SHELLS,
    ERROR_WSMAN_RESOURCE_NOT_FOUND,
    ERROR_WSMAN_UNEXPECTED_SELECTORS,
    NS_SHELL,
    RESOURCE_CMD,
    WsmanFault,
    WsmanRequest,
    attr,
    format_duration,
    new_message_id,
    parse_duration,
    text_node,
)

log = logging.getLogger("exchlab.wsman")

# Windows' MaxTimeoutms default: no single operation blocks longer than this (no source cited
# for the 60 s [lab]).
MAX_OPERATION_TIMEOUT_S = 60.0
# Windows' Shell IdleTimeout default (PT7200S; no source cited [lab]).
DEFAULT_IDLE_TIMEOUT_S = 7200.0
# Raw output bytes per Receive response. 1,000,000 bytes take 16 Receives; base64 of 64 KiB
# plus the envelope stays well under the clients' default MaxEnvelopeSize (153600).
MAX_CHUNK_BYTES = 64 * 1024
# NTSTATUS STATUS_CONTROL_C_EXIT (0xC000013A): the exit code of a process ended by ctrl_c.
EXIT_CONTROL_C = 3221225786
# Exit code of a command killed at the end of its lifetime [lab].
EXIT_KILLED = 1

_STATE_PREFIX = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/"
_SIGNAL_PREFIX = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/"
_SHELL_NOT_FOUND = (
    "The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell "
    "was not found on the server. Possible causes are: the specified ShellId is incorrect or the "
    "shell no longer exists on the server. Provide the correct ShellId or create a new shell and "
    "retry the operation."
)


def _q(tag: str) -> str:
    return f"{{{NS_SHELL}}}{tag}"


def codec_for_codepage(codepage: str) -> str:
    """The Python codec for a WINRS_CODEPAGE value (437 when absent, like an en-US host)."""
    number = codepage.strip() or "437"
    if not number.isdigit():
        raise WsmanFault(ERROR_INVALID_PARAMETER, f"Invalid WINRS_CODEPAGE {codepage}")
    name = "utf-8" if number == "65001" else f"cp{number}"
    try:
        codecs.lookup(name)
    except LookupError as exc:
        raise WsmanFault(ERROR_INVALID_PARAMETER, f"Unsupported code page {number}") from exc
    return name


class CommandStdin:
    """The standard input of one command: WinRS Send feeds it, the backend reads it.

    Send carries base64 chunks of the stream, the last one marked End="true" (MS-WSMV 3.1.4.13
    and 3.1.4.1.31.1, https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-wsmv/
    af694324-e034-404d-a61d-de57c8cba74f). Its contents may be a password, so nothing here logs
    or shows them; the repr gives only lengths.
    """

    def __init__(self) -> None:
        self._arrived = threading.Condition()
        self._pending = bytearray()
        self._ended = False
        self._received = 0

    def __repr__(self) -> str:
        return f"CommandStdin(received={self._received} bytes, ended={self._ended})"

    def feed(self, data: bytes, end: bool) -> bool:
        """Add DATA from one Send, and mark the end when END; False once the stream has ended
        (the data is then dropped, as nothing reads a closed pipe)."""
        with self._arrived:
            if self._ended:
                return False
            self._pending += data
            self._received += len(data)
            self._ended = end
            self._arrived.notify_all()
            return True

    def close(self) -> None:
        """The command ended or was discarded: wake any reader, whatever the client sends."""
        with self._arrived:
            self._ended = True
            self._arrived.notify_all()

    def read(self, timeout_s: float) -> bytes:
        """Everything sent and not yet read, once the client marks the stream's end or when
        TIMEOUT_S ends, whichever comes first (b"" when nothing was sent)."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._arrived:
            while not self._ended:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.wait(remaining)
            data = bytes(self._pending)
            self._pending.clear()
            return data


@dataclass(eq=False)
class _Command:
    command_id: str
    command_line: str
    deadline: float
    hung: bool
    stdin: CommandStdin = field(default_factory=CommandStdin)
    running: bool = True
    exit_code: int | None = None
    # Once a command is killed, signalled or deleted, a late backend result is dropped.
    discarded: bool = False
    buffers: dict[str, bytearray] = field(
        default_factory=lambda: {"stdout": bytearray(), "stderr": bytearray()}
    )


@dataclass(eq=False)
class _Shell:
    shell_id: str
    session: LogonSession
    client_ip: str
    codec: str
    environment: dict[str, str]
    idle_timeout_s: float
    input_streams: str
    output_streams: str
    created: float
    last_activity: float
    commands: dict[str, _Command] = field(default_factory=dict)
    receiving: int = 0


def _iso_elapsed(seconds: float) -> str:
    """Windows' ShellRunTime/ShellInactivity form, P0DT0H0M5S."""
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"P{days}DT{hours}H{minutes}M{secs}S"


class ShellManager:
    """The shells and commands of one host, shared by all its connections."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        # One condition per host: commands finishing wake the Receives waiting on this host.
        self._changed = threading.Condition(self._lock)
        self._shells: dict[str, _Shell] = {}
        self._workers: set[threading.Thread] = set()
        self._closed = False

    # Entry point ---------------------------------------------------------------------------

    def handle(
        self, request: WsmanRequest, session: LogonSession, client_ip: str, endpoint: str
    ) -> tuple[str, str]:
        """Run one WinRS operation for the connection's logon SESSION: (response Action, Body
        XML); raise WsmanFault. A shell keeps the session of its Create for all its commands."""
        operation = request.operation
        if operation is None:
            raise WsmanFault(
                ERROR_WSMAN_ACTION_NOT_SUPPORTED,
                "The WS-Management service does not support the action specified in the "
                f"request. Action: {request.action}",
            )
        if request.resource_uri.lower() != RESOURCE_CMD:
            raise WsmanFault(ERROR_WSMAN_RESOURCE_NOT_FOUND)
        handler = getattr(self, f"_op_{operation.lower()}")
        body: str = handler(request, session, client_ip, endpoint)
        return request.action + "Response", body

    def command_line_of(self, request: WsmanRequest) -> str | None:
        """The command line a Receive or Signal request is about; None when unknown."""
        found = request.body.find(".//" + _q("DesiredStream")) if request.body is not None else None
        if found is None:
            return None
        with self._lock:
            shell_id = request.selectors.get("ShellId", "")
            shell = self._shells.get(shell_id.upper()) or self._shells.get(shell_id)
            if shell is None:
                return None
            command_id = found.get("CommandId", "")
            command = shell.commands.get(command_id) or shell.commands.get(command_id.upper())
            return command.command_line if command else None

    # Operations ----------------------------------------------------------------------------

    def _op_create(
        self, request: WsmanRequest, session: LogonSession, client_ip: str, endpoint: str
    ) -> str:
        shell_xml = request.body.find(_q("Shell")) if request.body is not None else None
        environment: dict[str, str] = {}
        idle_timeout = DEFAULT_IDLE_TIMEOUT_S
        input_streams, output_streams = "stdin", "stdout stderr"
        if shell_xml is not None:
            for variable in shell_xml.iterfind(f"{_q('Environment')}/{_q('Variable')}"):
                environment[variable.get("Name", "")] = variable.text or ""
            idle_text = shell_xml.findtext(_q("IdleTimeOut"))
            if idle_text:
                try:
                    idle_timeout = parse_duration(idle_text)
                except ValueError as exc:
                    raise WsmanFault(ERROR_INVALID_PARAMETER) from exc
            input_streams = (shell_xml.findtext(_q("InputStreams")) or input_streams).strip()
            output_streams = (shell_xml.findtext(_q("OutputStreams")) or output_streams).strip()
        requested = request.options.get("WINRS_CODEPAGE", "")
        forced = self.backend.faults.shell_codepage
        codec = codec_for_codepage(str(forced) if forced else requested)

        limit = self.backend.faults.max_shells_per_user
        now = time.monotonic()
        shell = _Shell(
            shell_id=new_message_id(),
            session=session,
            client_ip=client_ip,
            codec=codec,
            environment=environment,
            idle_timeout_s=idle_timeout,
            input_streams=input_streams,
            output_streams=output_streams,
            created=now,
            last_activity=now,
        )
        user = session.user
        with self._lock:
            # MaxShellsPerUser counts the shells of the authenticated user, however they logged on.
            owned = sum(1 for s in self._shells.values() if s.session.user.lower() == user.lower())
            if owned >= limit:
                message = (
                    "The WS-Management service cannot process the request. This user is allowed "
                    f"a maximum number of {limit} concurrent shells, which has been exceeded. "
                    "Close existing shells or raise the quota for this user."
                )
                raise WsmanFault(ERROR_WSMAN_QUOTA_MAX_SHELLS, message, reason=message)
            self._shells[shell.shell_id] = shell
            open_now = len(self._shells)
        self.backend.count("shells")
        self.backend.note_open_shells(open_now)
        log.debug(
            "%s: shell %s created for %s (%s%s)",
            self.backend.name,
            shell.shell_id,
            user,
            session.auth,
            ", credentials delegated" if session.delegated is not None else "",
        )
        return (
            "<x:ResourceCreated>"
            f"<a:Address>{text_node(endpoint)}</a:Address>"
            "<a:ReferenceParameters>"
            f"<w:ResourceURI>{RESOURCE_CMD}</w:ResourceURI>"
            f'<w:SelectorSet><w:Selector Name="ShellId">{shell.shell_id}</w:Selector>'
            "</w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
            f'<rsp:Shell xmlns:rsp="{NS_SHELL}">'
            f"<rsp:ShellId>{shell.shell_id}</rsp:ShellId>"
            f"<rsp:ResourceUri>{RESOURCE_CMD}</rsp:ResourceUri>"
            f"<rsp:Owner>{text_node(user)}</rsp:Owner>"
            f"<rsp:ClientIP>{text_node(client_ip)}</rsp:ClientIP>"
            f"<rsp:IdleTimeOut>{format_duration(idle_timeout)}</rsp:IdleTimeOut>"
            f"<rsp:InputStreams>{text_node(input_streams)}</rsp:InputStreams>"
            f"<rsp:OutputStreams>{text_node(output_streams)}</rsp:OutputStreams>"
            "<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>"
            "<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity>"
            "</rsp:Shell>"
        )

    def _op_command(
        self, request: WsmanRequest, session: LogonSession, client_ip: str, endpoint: str
    ) -> str:
        command_xml = request.body.find(_q("CommandLine")) if request.body is not None else None
        if command_xml is None:
            raise WsmanFault(ERROR_INVALID_PARAMETER)
        executable = command_xml.findtext(_q("Command")) or ""
        # WinRS joins Command and each Arguments element with spaces (pywinrm sends one joined
        # Arguments element, pypsrp one element per argument).
        arguments = [a.text or "" for a in command_xml.iterfind(_q("Arguments"))]
        command_line = " ".join([executable, *arguments]) if arguments else executable
        if not command_line.strip():
            raise WsmanFault(ERROR_INVALID_PARAMETER)

        faults = self.backend.faults
        command = _Command(
            command_id=command_xml.get("CommandId") or new_message_id(),
            command_line=command_line,
            deadline=time.monotonic() + max(0.0, float(faults.command_lifetime_s)),
            hung=bool(faults.operation_timeout),
        )
        with self._lock:
            shell = self._shell_locked(request)
            shell.commands[command.command_id] = command
            environment = dict(shell.environment)
            codec = shell.codec
            worker: threading.Thread | None = None
            if not command.hung and not self._closed:
                worker = threading.Thread(
                    target=self._run,
                    args=(command, environment, codec, shell.session),
                    name=f"exchlab-wsman-cmd-{self.backend.name}",
                    daemon=True,
                )
                self._workers.add(worker)
        self.backend.count("commands")
        if worker is not None:
            worker.start()
        log.debug("%s: command %s: %s", self.backend.name, command.command_id, command_line)
        return (
            f"<rsp:CommandResponse><rsp:CommandId>{command.command_id}</rsp:CommandId>"
            "</rsp:CommandResponse>"
        )

    def _op_receive(
        self, request: WsmanRequest, session: LogonSession, client_ip: str, endpoint: str
    ) -> str:
        desired = request.body.find(_q("Receive")) if request.body is not None else None
        stream_xml = desired.find(_q("DesiredStream")) if desired is not None else None
        if stream_xml is None:
            raise WsmanFault(ERROR_INVALID_PARAMETER)
        command_id = stream_xml.get("CommandId", "")
        streams = [s for s in (stream_xml.text or "").split() if s in ("stdout", "stderr")]
        streams = streams or ["stdout", "stderr"]
        timeout = request.operation_timeout_s or MAX_OPERATION_TIMEOUT_S
        deadline = time.monotonic() + min(timeout, MAX_OPERATION_TIMEOUT_S)

        with self._changed:
            shell = self._shell_locked(request)
            shell.receiving += 1
            try:
                while True:
                    command = self._command_locked(request, shell, command_id)
                    has_output = any(command.buffers[name] for name in streams)
                    if has_output or not command.running:
                        break
                    now = time.monotonic()
                    if now >= command.deadline:
                        log.info(
                            "%s: command %s outlived its lifetime; killed",
                            self.backend.name,
                            command.command_id,
                        )
                        self._finish_locked(command, EXIT_KILLED)
                        break
                    if now >= deadline or self._closed:
                        raise WsmanFault(ERROR_WSMAN_OPERATION_TIMEDOUT)
                    self._changed.wait(min(deadline, command.deadline) - now)
                shell.last_activity = time.monotonic()
                return self._receive_body_locked(command, streams, request.max_envelope_size)
            finally:
                shell.receiving -= 1

    def _op_signal(
        self, request: WsmanRequest, session: LogonSession, client_ip: str, endpoint: str
    ) -> str:
        signal_xml = request.body.find(_q("Signal")) if request.body is not None else None
        if signal_xml is None:
            raise WsmanFault(ERROR_INVALID_PARAMETER)
        code = (signal_xml.findtext(_q("Code")) or "").strip()
        with self._changed:
            shell = self._shell_locked(request)
            command = self._command_locked(request, shell, signal_xml.get("CommandId", ""))
            if code == _SIGNAL_PREFIX + "terminate":
                # pywinrm's cleanup_command: the process ends and the command is forgotten.
                self._finish_locked(command, EXIT_KILLED)
                del shell.commands[command.command_id]
            elif code in (_SIGNAL_PREFIX + "ctrl_c", _SIGNAL_PREFIX + "ctrl_break"):
                # pypsrp sends ctrl_c after Done: nothing left to interrupt then.
                self._finish_locked(command, EXIT_CONTROL_C)
            else:
                raise WsmanFault(ERROR_INVALID_PARAMETER, f"Unknown signal code {code}")
            shell.last_activity = time.monotonic()
            self._changed.notify_all()
        return "<rsp:SignalResponse/>"

    def _op_send(
        self, request: WsmanRequest, session: LogonSession, client_ip: str, endpoint: str
    ) -> str:
        # One Send may carry several rsp:Stream blocks, each base64 (MS-WSMV 3.1.4.1.31.1).
        # All are decoded before any is delivered, so a bad one changes nothing.
        send_xml = request.body.find(_q("Send")) if request.body is not None else None
        streams_xml = send_xml.findall(_q("Stream")) if send_xml is not None else []
        if not streams_xml:
            raise WsmanFault(ERROR_INVALID_PARAMETER)
        chunks: list[tuple[str, str, bytes, bool]] = []
        for stream_xml in streams_xml:
            try:
                data = base64.b64decode("".join((stream_xml.text or "").split()), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise WsmanFault(ERROR_INVALID_PARAMETER) from exc
            end = (stream_xml.get("End") or "").strip().lower() == "true"
            name = stream_xml.get("Name", "")
            chunks.append((stream_xml.get("CommandId", ""), name, data, end))

        with self._lock:
            shell = self._shell_locked(request)
            accepted = shell.input_streams.split()
            targets = []
            for command_id, name, data, end in chunks:
                if name not in accepted:
                    # A stream the shell was not created with [lab: the fault Windows sends].
                    raise WsmanFault(ERROR_INVALID_PARAMETER, f"Unknown input stream {name}")
                targets.append((self._command_locked(request, shell, command_id), data, end))
            shell.last_activity = time.monotonic()
        for command, data, end in targets:
            # Lengths only: standard input carries passwords.
            if command.stdin.feed(data, end):
                log.debug(
                    "%s: command %s: %d bytes of standard input%s",
                    self.backend.name,
                    command.command_id,
                    len(data),
                    ", end of stream" if end else "",
                )
            else:
                # Input after End="true" has no pipe left to go to [lab: Windows' answer].
                log.debug(
                    "%s: command %s: %d bytes of standard input after its end, dropped",
                    self.backend.name,
                    command.command_id,
                    len(data),
                )
        return "<rsp:SendResponse/>"

    def _op_delete(
        self, request: WsmanRequest, session: LogonSession, client_ip: str, endpoint: str
    ) -> str:
        with self._changed:
            shell = self._shell_locked(request)
            self._drop_shell_locked(shell)
        log.debug("%s: shell %s deleted", self.backend.name, shell.shell_id)
        return ""

    # Helpers (call with the lock held where named *_locked) -----------------------------------

    def _shell_locked(self, request: WsmanRequest) -> _Shell:
        shell_id = request.selectors.get("ShellId", "")
        shell = self._shells.get(shell_id.upper()) or self._shells.get(shell_id)
        if shell is None:
            raise WsmanFault(
                ERROR_WSMAN_UNEXPECTED_SELECTORS,
                _SHELL_NOT_FOUND.format(shell_id=shell_id),
                fault_detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"
                "UnexpectedSelectors",
            )
        shell.last_activity = time.monotonic()
        return shell

    def _command_locked(self, request: WsmanRequest, shell: _Shell, command_id: str) -> _Command:
        if self._shells.get(shell.shell_id) is not shell:
            # Deleted or reaped while a Receive was waiting.
            raise WsmanFault(
                ERROR_WSMAN_UNEXPECTED_SELECTORS,
                _SHELL_NOT_FOUND.format(shell_id=shell.shell_id),
            )
        command = shell.commands.get(command_id) or shell.commands.get(command_id.upper())
        if command is None:
            raise WsmanFault(ERROR_INVALID_PARAMETER)
        return command

    def _finish_locked(self, command: _Command, exit_code: int) -> None:
        if command.running:
            command.running = False
            command.exit_code = exit_code
            command.discarded = True
        # A backend still waiting for input stops waiting: the process is gone.
        command.stdin.close()
        self._changed.notify_all()

    def _drop_shell_locked(self, shell: _Shell) -> None:
        for command in shell.commands.values():
            self._finish_locked(command, EXIT_KILLED)
        shell.commands.clear()
        self._shells.pop(shell.shell_id, None)
        self._changed.notify_all()

    def _receive_body_locked(
        self, command: _Command, streams: list[str], max_envelope_size: int | None
    ) -> str:
        budget = MAX_CHUNK_BYTES
        if max_envelope_size:
            # base64 inflates by 4/3; keep 4 KiB for the envelope around the data.
            budget = max(1024, min(budget, (max_envelope_size - 4096) * 3 // 4))
        command_id = attr(command.command_id)
        parts = ["<rsp:ReceiveResponse>"]
        for name in streams:
            buffer = command.buffers[name]
            if not buffer or budget <= 0:
                continue
            chunk = bytes(buffer[:budget])
            del buffer[:budget]
            budget -= len(chunk)
            encoded = base64.b64encode(chunk).decode("ascii")
            parts.append(f'<rsp:Stream Name="{name}" CommandId={command_id}>{encoded}</rsp:Stream>')
        drained = not any(command.buffers[name] for name in streams)
        if not command.running and drained:
            # Done only once everything is drained: both clients stop reading at the first
            # Done, and pywinrm needs an ExitCode in it.
            for name in streams:
                parts.append(f'<rsp:Stream Name="{name}" CommandId={command_id} End="true"/>')
            parts.append(
                f'<rsp:CommandState CommandId={command_id} State="{_STATE_PREFIX}Done">'
                f"<rsp:ExitCode>{command.exit_code}</rsp:ExitCode></rsp:CommandState>"
            )
        else:
            parts.append(
                f'<rsp:CommandState CommandId={command_id} State="{_STATE_PREFIX}Running"/>'
            )
        parts.append("</rsp:ReceiveResponse>")
        return "".join(parts)

    def _run(
        self,
        command: _Command,
        environment: dict[str, str],
        codec: str,
        session: LogonSession,
    ) -> None:
        try:
            try:
                codepage = 65001 if codec == "utf-8" else int(codec.removeprefix("cp"))
                result = self.backend.run_command(
                    command.command_line,
                    environment,
                    codepage,
                    session=session,
                    stdin=command.stdin,
                )
            except Exception as exc:  # noqa: BLE001 - a backend bug must not hang the client
                log.exception("%s: backend failed on %r", self.backend.name, command.command_line)
                result = CommandResult("", f"exchlab backend error: {exc}\r\n", 1)
            with self._changed:
                if command.running and not command.discarded:
                    command.buffers["stdout"] += result.stdout.encode(codec, errors="replace")
                    command.buffers["stderr"] += result.stderr.encode(codec, errors="replace")
                    command.exit_code = int(result.exit_code)
                    command.running = False
                self._changed.notify_all()
        finally:
            # Whatever the client sends from now on has no reader.
            command.stdin.close()
            with self._lock:
                self._workers.discard(threading.current_thread())

    # Housekeeping ----------------------------------------------------------------------------

    def reap_idle(self, now: float | None = None) -> int:
        """Delete shells idle longer than their IdleTimeOut; return how many went."""
        now = time.monotonic() if now is None else now
        with self._changed:
            idle = [
                s
                for s in self._shells.values()
                if s.receiving == 0 and now - s.last_activity > s.idle_timeout_s
            ]
            for shell in idle:
                log.info(
                    "%s: shell %s idle for %s; deleted",
                    self.backend.name,
                    shell.shell_id,
                    _iso_elapsed(now - shell.last_activity),
                )
                self._drop_shell_locked(shell)
        return len(idle)

    def open_shells(self) -> int:
        """How many shells are open on this host."""
        with self._lock:
            return len(self._shells)

    def close(self) -> None:
        """Drop every shell and wake every waiting Receive (server stopping)."""
        with self._changed:
            self._closed = True
            for shell in list(self._shells.values()):
                self._drop_shell_locked(shell)
            self._changed.notify_all()

    def workers(self) -> list[threading.Thread]:
        """Command threads still inside Backend.run_command."""
        with self._lock:
            return list(self._workers)
