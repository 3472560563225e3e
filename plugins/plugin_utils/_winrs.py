# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The only code in exchops.kms that speaks WinRM.

It turns a host's ordinary connection settings (the `ansible_winrm_*` variables that
ansible.windows users already have) into a pywinrm Protocol, opens ONE WinRS cmd shell, runs
command lines in it, and always deletes it, even on failure: Windows limits shells per user
(MaxShellsPerUser, 5 on 2008 R2). Failures become one small family of typed errors, each naming
the host, what went wrong and the setting to change. It is also the one place that reads
connection variables: `inventory_host_options` resolves another inventory host's settings (the
KM source server of kms_move_facts) as delegate_to would.

Requests: pywinrm's own `run_cmd` costs 8 HTTP requests over NTLM/HTTP; here the Signal is
skipped (Delete ends the shell's commands, MS-WSMV 3.1.4.11), so one command costs 7.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import os
import time
import typing as t
from dataclasses import dataclass, field

import ansible.constants as C
from ansible.config.manager import ensure_type
from ansible.errors import AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.loader import connection_loader
from ansible.utils.display import Display

from ._errors import TYPE_WORDS

try:
    import requests.exceptions
    import winrm  # pylint: disable=unused-import # only to learn whether pywinrm is installed
    from winrm.exceptions import (
        InvalidCredentialsError,
        WinRMError,
        WinRMOperationTimeoutError,
        WinRMTransportError,
        WSManFaultError,
    )
    from winrm.protocol import Protocol
except ImportError as exc:  # the action reports it with missing_required_lib("pywinrm")
    HAS_WINRM = False
    WINRM_IMPORT_ERROR: ImportError | None = exc
else:
    HAS_WINRM = True
    WINRM_IMPORT_ERROR = None

try:
    # CredSSP's failures (pywinrm[credssp]): a refused logon comes as an NTSTATUS, a listener
    # that does not offer CredSSP as AuthenticationException (pywinrm issue #235).
    from requests_credssp.exceptions import AuthenticationException as CredSSPRefused
    from requests_credssp.exceptions import NTStatusException as CredSSPStatus
except ImportError:  # without it, pywinrm offers no credssp transport: missing_auth_library says so

    class CredSSPRefused(Exception):  # type: ignore[no-redef]
        """Stands in for requests-credssp's AuthenticationException."""

    class CredSSPStatus(Exception):  # type: ignore[no-redef]
        """Stands in for requests-credssp's NTStatusException."""


display = Display()

# The names a task's winrm connection plugin is loaded by.
WINRM_CONNECTIONS = ("winrm", "ansible.builtin.winrm")
TRANSPORTS = ("ntlm", "basic", "ssl", "kerberos", "credssp", "certificate")
# WS-Man fault codes of Windows' quotas (MaxShellsPerUser, MaxConcurrentOperationsPerUser ...).
QUOTA_FAULT_CODES = frozenset({2150859173, 2150859174, 2150859175, 2150859193})
DEFAULT_OPERATION_TIMEOUT_SEC = 20
DEFAULT_READ_TIMEOUT_SEC = 30
DEFAULT_COMMAND_TIMEOUT_SEC = 300
# Ansible's winrm plugin uses UTF-8 shells; cmd tools then write UTF-8 where they can.
DEFAULT_CODEPAGE = 65001
MASK = "********"


# Windows NT 4.0 and 2000 (Exchange 5.5 and 2000 servers) cannot run WinRM: MS-WSMV product
# behavior, https://msdn.microsoft.com/en-us/library/cc251762.
NO_WINRM_BEFORE_2003_R2 = (
    "A server on Windows NT 4.0 or 2000 runs no WinRM: reach it through a Windows jump host by "
    "setting exchange_jump_host to the jump host's inventory name."
)


class WinrsError(Exception):
    """A WinRM failure on one host; the message says what to do and never holds a secret."""

    unreachable = False

    def __init__(self, label: str, message: str) -> None:
        super().__init__(f"{label}: {message}")
        self.label = label


class WinrsConfigError(WinrsError):
    """The host's connection settings cannot work; nothing was sent."""


class WinrsUnreachable(WinrsError):
    unreachable = True


class WinrsAuthError(WinrsError):
    pass


class WinrsTlsError(WinrsError):
    unreachable = True


class WinrsTimeout(WinrsError):
    pass


class WinrsFault(WinrsError):
    def __init__(self, label: str, message: str, code: int | None, reason: str) -> None:
        super().__init__(label, message)
        self.code = code
        self.reason = reason


class WinrsQuotaFault(WinrsFault):
    pass


@dataclass(frozen=True)
class WinrsTarget:
    """Where and how to reach one host, from its connection settings."""

    host: str  # the inventory name, for messages
    address: str
    port: int
    scheme: str
    path: str
    transport: str
    user: str | None
    password: str | None = field(repr=False)
    server_cert_validation: str = "validate"
    ca_trust_path: str | None = None
    message_encryption: str = "auto"
    operation_timeout_sec: int = DEFAULT_OPERATION_TIMEOUT_SEC
    read_timeout_sec: int = DEFAULT_READ_TIMEOUT_SEC
    command_timeout_sec: int = DEFAULT_COMMAND_TIMEOUT_SEC
    codepage: int = DEFAULT_CODEPAGE
    kerberos_delegation: bool = False
    # The jump host's inventory name when the endpoint is the jump host's (_reach).
    via: str | None = None

    @property
    def endpoint(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def label(self) -> str:
        """How messages name the host: `kms02 (https://10.0.0.2:5986/wsman)`, or
        `kms02 (through jump01, https://10.0.0.9:5986/wsman)` behind a jump host."""
        through = f"through {self.via}, " if self.via else ""
        return f"{self.host} ({through}{self.endpoint})"


@dataclass(frozen=True)
class CommandOutput:
    stdout: str
    stderr: str
    exit_code: int
    seconds: float


def _int_setting(label: str, name: str, value: t.Any, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise WinrsConfigError(
            label,
            f"{name} is {value!r}, not a whole number of seconds. Set {name} to e.g. {default}.",
        ) from None
    if number <= 0:
        raise WinrsConfigError(
            label, f"{name} is {number}; it must be more than 0. Set e.g. {default}."
        )
    return number


def whole_number(value: t.Any) -> int | None:
    """`value` as an int, or None when it is not one (settings come as text from -e)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class WinrmSettings:
    """A host's WinRM settings as every exchops.kms plugin reads them from the winrm connection's
    options, normalised but not judged: target_from_options refuses those that cannot work, the
    doctor names them. One reading, so the doctor diagnoses what the modules would use."""

    address: str
    port: t.Any  # as given; target_from_options checks it
    scheme: str
    path: str
    transport: str
    user: t.Any
    password: t.Any = field(repr=False)
    cert_validation: str
    ca_trust_path: str | None
    message_encryption: str
    operation_timeout_sec: t.Any  # as given
    read_timeout_sec: t.Any  # as given
    send_cbt: t.Any  # as given
    kerberos_delegation: bool = False


def read_winrm_settings(host: str, get_option: t.Callable[[str], t.Any]) -> WinrmSettings:
    """The settings from a winrm connection plugin's options (templated and delegate-aware:
    `self._connection.get_option`), with ansible.windows' defaults."""
    extras: dict[str, t.Any] = get_option("_extras") or {}
    port = get_option("port")
    scheme = extras.get("ansible_winrm_scheme") or get_option("scheme")
    if not scheme:
        # ansible.windows' rule: 5985 means HTTP, anything else HTTPS.
        scheme = "http" if whole_number(port) == 5985 else "https"
    transports = get_option("transport") or ["ntlm"]
    if isinstance(transports, str):
        transports = [part.strip() for part in transports.split(",")]
    transport = str(transports[0] or "ntlm").lower()
    if transport == "plaintext":
        transport = "basic"  # pywinrm's old name for Basic
    return WinrmSettings(
        address=str(get_option("remote_addr") or host),
        port=port,
        scheme=str(scheme).lower(),
        path=str(get_option("path") or "/wsman"),
        transport=transport,
        user=get_option("remote_user"),
        password=get_option("remote_password"),
        cert_validation=str(extras.get("ansible_winrm_server_cert_validation", "validate")).lower(),
        ca_trust_path=extras.get("ansible_winrm_ca_trust_path") or None,
        message_encryption=str(extras.get("ansible_winrm_message_encryption", "auto")).lower(),
        operation_timeout_sec=extras.get("ansible_winrm_operation_timeout_sec"),
        read_timeout_sec=extras.get("ansible_winrm_read_timeout_sec"),
        send_cbt=extras.get("ansible_winrm_send_cbt", True),
        kerberos_delegation=boolean(
            extras.get("ansible_winrm_kerberos_delegation", False), strict=False
        ),
    )


def target_from_options(
    host: str,
    get_option: t.Callable[[str], t.Any],
    command_timeout_sec: int = DEFAULT_COMMAND_TIMEOUT_SEC,
) -> WinrsTarget:
    """Build a WinrsTarget from a winrm connection plugin's options (templated and delegate-aware:
    `self._connection.get_option`). Refuses settings that cannot work or would leak the password."""
    settings = read_winrm_settings(host, get_option)
    port = _int_setting(f"{host} ({settings.address})", "ansible_port", settings.port, 5986)
    label = f"{host} ({settings.scheme}://{settings.address}:{port}{settings.path})"
    _refuse_unusable_scheme_or_transport(label, settings)
    _refuse_missing_credentials(label, settings)
    _refuse_unknown_protection(label, settings)
    operation, read = _timeouts(label, settings)
    problem = ca_trust_path_problem(settings)
    if problem:
        raise WinrsConfigError(label, f"{problem} {CA_TRUST_PATH_FIX} Nothing was sent.")
    return WinrsTarget(
        host=host,
        address=settings.address,
        port=port,
        scheme=settings.scheme,
        path=str(settings.path),
        transport=settings.transport,
        user=settings.user,
        password=settings.password,
        server_cert_validation=settings.cert_validation,
        ca_trust_path=settings.ca_trust_path,
        message_encryption=settings.message_encryption,
        operation_timeout_sec=operation,
        read_timeout_sec=read,
        command_timeout_sec=command_timeout_sec,
        kerberos_delegation=settings.kerberos_delegation,
    )


def _refuse_unusable_scheme_or_transport(label: str, settings: WinrmSettings) -> None:
    """A scheme other than HTTP(S), a transport pywinrm lacks, or Basic over plain HTTP."""
    scheme, transport = settings.scheme, settings.transport
    if scheme not in ("http", "https"):
        raise WinrsConfigError(
            label, f"ansible_winrm_scheme is {scheme!r}; set it to http or https."
        )
    if transport not in TRANSPORTS:
        raise WinrsConfigError(
            label,
            f"ansible_winrm_transport is {transport!r}, which pywinrm does not offer. Use one of "
            f"{', '.join(TRANSPORTS)} (ntlm is the usual choice).",
        )
    if transport in ("basic", "ssl") and scheme == "http":
        raise WinrsConfigError(
            label,
            "refusing Basic authentication over plain HTTP: the password would cross the network "
            "unencrypted. Set ansible_winrm_scheme=https or ansible_winrm_transport=ntlm. "
            "Nothing was sent.",
        )


def _refuse_missing_credentials(label: str, settings: WinrmSettings) -> None:
    """A transport that authenticates with a password, without a user or a password."""
    user, password, transport = settings.user, settings.password, settings.transport
    if transport in ("ntlm", "basic", "ssl", "credssp") and (not user or password in (None, "")):
        missing = "ansible_user" if not user else "ansible_password"
        raise WinrsConfigError(
            label, f"{missing} is not set; {transport} authentication needs a user and a password."
        )


def _refuse_unknown_protection(label: str, settings: WinrmSettings) -> None:
    """Certificate validation or message encryption set to a value pywinrm does not know."""
    validation = settings.cert_validation
    if validation not in ("validate", "ignore"):
        raise WinrsConfigError(
            label,
            f"ansible_winrm_server_cert_validation is {validation!r}; set validate (the default) "
            "or ignore.",
        )
    encryption = settings.message_encryption
    if encryption not in ("auto", "always", "never"):
        raise WinrsConfigError(
            label, f"ansible_winrm_message_encryption is {encryption!r}; set auto, always or never."
        )


# What to do about an unusable ansible_winrm_ca_trust_path; the doctor gives the same fix.
CA_TRUST_PATH_FIX = (
    "Set ansible_winrm_ca_trust_path to the PEM file (or a folder of hashed PEM certificates) of "
    "the CA that issued the host's WinRM certificate, as a path on the controller, or remove it "
    "to use the controller's own trust store."
)


def ca_trust_path_problem(settings: WinrmSettings) -> str | None:
    """What is wrong with ansible_winrm_ca_trust_path, or None. pywinrm hands the path to
    requests as `verify=`, which takes a CA bundle file or a folder of hashed certificates
    (https://requests.readthedocs.io/en/latest/user/advanced/#ssl-cert-verification) and, when
    the path does not exist, fails every HTTPS request with a bare OSError ("Could not find a
    suitable TLS CA certificate bundle"). The path is read on the controller, never on the host;
    it matters only for HTTPS with validation on."""
    path = str(settings.ca_trust_path or "")
    if not path or settings.scheme != "https" or settings.cert_validation != "validate":
        return None
    if not os.path.exists(path):
        return f"ansible_winrm_ca_trust_path is {path!r}, which does not exist on the controller."
    if not os.path.isfile(path) and not os.path.isdir(path):
        return (
            f"ansible_winrm_ca_trust_path is {path!r}, which is neither a file nor a folder on "
            "the controller."
        )
    if not os.access(path, os.R_OK):
        return f"ansible_winrm_ca_trust_path is {path!r}, which the controller's user cannot read."
    return None


def _timeouts(label: str, settings: WinrmSettings) -> tuple[int, int]:
    """(operation, read) timeouts in seconds; the read timeout must outlast the operation one."""
    operation = _int_setting(
        label,
        "ansible_winrm_operation_timeout_sec",
        settings.operation_timeout_sec,
        DEFAULT_OPERATION_TIMEOUT_SEC,
    )
    read = _int_setting(
        label,
        "ansible_winrm_read_timeout_sec",
        settings.read_timeout_sec,
        DEFAULT_READ_TIMEOUT_SEC,
    )
    if read <= operation:
        raise WinrsConfigError(
            label,
            f"ansible_winrm_read_timeout_sec ({read}) must be more than "
            f"ansible_winrm_operation_timeout_sec ({operation}): the server may hold each request "
            f"that long. Set ansible_winrm_read_timeout_sec to {operation + 10}.",
        )
    return operation, read


def inventory_host_options(
    host: str,
    host_vars: t.Mapping[str, t.Any],
    connection: t.Any,
    play_context: t.Any,
    task: t.Any,
    purpose: str,
) -> t.Callable[[str], t.Any]:
    """The winrm connection options of another inventory host, resolved from its inventory
    entry (`host_vars`) the way Ansible resolves them for delegate_to: its ansible_* and
    ansible_winrm_* variables (templated in its own context, vaulted values included), over the
    task's keywords. `connection`, `play_context` and `task` are the running task's own (an
    action's `_connection`, `_play_context`, `_task`); `purpose` says in messages who needs the
    host and why ("exchops.kms.kms_move_facts reads the KM source server"). Raises
    WinrsConfigError naming `host` when its entry cannot give WinRM settings."""
    # The task's own plugin, loaded by the name the task's connection was loaded by: by another
    # name, each forked worker would parse the plugin's documentation again for its option
    # definitions (a fifth of the task's CPU in benchmarks/).
    load_name = connection._load_name  # pylint: disable=protected-access
    try:
        connection_name = host_vars.get("ansible_connection")
        if connection_name not in WINRM_CONNECTIONS:
            raise WinrsConfigError(
                host,
                f"{purpose} over WinRM and needs ansible_connection=winrm for it (its inventory "
                f"entry says {connection_name!r}). Set ansible_connection: winrm and the "
                "ansible_winrm_* settings for it.",
            )
        plugin = connection_loader.get(load_name, play_context)
        var_options = _var_options(host_vars, load_name, plugin.extras_prefix)
        plugin.set_options(task_keys=_task_keys(play_context, task), var_options=var_options)
    except AnsibleError as exc:
        # An undefined variable, a bad template or a value of the wrong type in the host's
        # settings. ansible-core words the last differently on each line (2.18 drops the value
        # and the reason): say it ourselves when we can find it.
        wrong = _wrongly_typed(host_vars, load_name)
        raise WinrsConfigError(
            host,
            f"its WinRM settings in the inventory cannot be read: {wrong or exc.message}. Fix "
            "them (ansible-inventory --host NAME shows them).",
        ) from None
    return plugin.get_option


def _wrongly_typed(host_vars: t.Mapping[str, t.Any], load_name: str) -> str | None:
    """'ansible_port is 'five'; it must be an integer' for the first of the host's variables
    that the connection plugin cannot take as its option's type, or None. A password's value
    is never quoted."""
    for option, definition in C.config.get_configuration_definitions(
        "connection", load_name
    ).items():
        wanted = definition.get("type")
        if wanted not in TYPE_WORDS or wanted in ("str", "string"):
            continue  # any value makes a string
        for variable in definition.get("vars") or ():
            name = variable.get("name")
            if name not in host_vars:
                continue
            try:
                value = host_vars[name]
                ensure_type(value, wanted)
            except AnsibleError:
                continue  # undefined, or a bad template: ansible-core's message says it
            except (TypeError, ValueError):
                shown = MASK if "password" in option else repr(value)
                return f"{name} is {shown}; it must be {TYPE_WORDS[wanted]}"
    return None


def _var_options(
    host_vars: t.Mapping[str, t.Any], load_name: str, extras_prefix: str
) -> dict[str, t.Any]:
    """The host's variables the connection plugin reads: its options' variables by name
    (TaskExecutor asks the same registry by the same name), and ansible_<prefix>_* as extras."""
    names = C.config.get_plugin_vars("connection", load_name)
    var_options: dict[str, t.Any] = {"_extras": {}}
    for name in host_vars:
        if name in names:
            var_options[name] = host_vars[name]
        elif name.startswith(f"ansible_{extras_prefix}_"):
            var_options["_extras"][name] = host_vars[name]
    return var_options


def _task_keys(play_context: t.Any, task: t.Any) -> dict[str, t.Any]:
    """The task's keywords as TaskExecutor gives them to a connection plugin."""
    task_keys: dict[str, t.Any] = task.dump_attrs()
    task_keys.pop("retries", None)
    task_keys["timeout"] = play_context.timeout
    if play_context.password:
        task_keys["password"] = play_context.password  # given with -k
    return task_keys


# What pip installs the library pywinrm needs for a transport that ships without it.
_AUTH_EXTRAS = {
    "kerberos": "pywinrm[kerberos]",
    "credssp": "pywinrm[credssp]",
    "ntlm": "requests-ntlm",
}


def missing_auth_library(transport: str) -> str | None:
    """The pip requirement that would give pywinrm `transport`, or None when it is there
    (pywinrm imports its optional auth libraries once and keeps a flag for each)."""
    if not HAS_WINRM:
        return "pywinrm"
    import winrm.transport  # pylint: disable=import-outside-toplevel # pywinrm is present here

    present = {
        "kerberos": winrm.transport.HAVE_KERBEROS,
        "credssp": winrm.transport.HAVE_CREDSSP,
        "ntlm": winrm.transport.HAVE_NTLM,
    }
    return None if present.get(transport, True) else _AUTH_EXTRAS[transport]


def mask(text: str, secrets: t.Iterable[str]) -> str:
    """`text` with every non-empty secret replaced by ********."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class WinrsShell:
    """One WinRS cmd shell on one host; use as a context manager so it is always deleted.

    with WinrsShell(target) as shell:
        output = shell.run("reg query HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup")
    """

    def __init__(
        self, target: WinrsTarget, secrets: t.Sequence[str] = (), send_cbt: bool = True
    ) -> None:
        if not HAS_WINRM:
            raise RuntimeError("pywinrm is not installed")  # actions check HAS_WINRM first
        self.target = target
        self._secrets = tuple(secrets) + ((target.password,) if target.password else ())
        self._protocol = Protocol(
            endpoint=target.endpoint,
            transport=target.transport,  # type: ignore[arg-type]
            username=target.user,
            password=target.password,
            server_cert_validation=target.server_cert_validation,  # type: ignore[arg-type]
            # None: the system's trust store (never requests' environment-dependent "legacy" mode).
            ca_trust_path=target.ca_trust_path,  # type: ignore[arg-type]
            message_encryption=target.message_encryption,  # type: ignore[arg-type]
            operation_timeout_sec=target.operation_timeout_sec,
            read_timeout_sec=target.read_timeout_sec,
            # Off only when the doctor replays ansible_winrm_send_cbt=false.
            send_cbt=send_cbt,
            # Kerberos only: a forwardable ticket the host may use onwards (a jump host's).
            kerberos_delegation=target.kerberos_delegation,
        )
        self._shell_id: str | None = None

    def __enter__(self) -> WinrsShell:
        display.vvv(
            f"exchops.kms: opening a WinRS shell on {self.target.label}", host=self.target.host
        )
        self._shell_id = self._call("opening a shell", self._open_shell)
        return self

    def _open_shell(self) -> str:
        session = self._protocol.transport.build_session()
        # requests would read the environment's proxy variables again for every request (a scan
        # of os.environ each time: a tenth of a worker's CPU in benchmarks/); pywinrm resolved
        # them once for this endpoint when it built the session, and they stay in force.
        session.trust_env = False
        return self._protocol.open_shell(codepage=self.target.codepage)

    def __exit__(self, *exc_info: object) -> None:
        shell_id, self._shell_id = self._shell_id, None
        if shell_id is None:
            return
        try:
            self._protocol.close_shell(shell_id)
            display.vvv(
                f"exchops.kms: deleted the WinRS shell on {self.target.label}",
                host=self.target.host,
            )
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # Deleting is best effort: Windows reaps the shell after its idle timeout. A failure
            # here must not hide the error that may have brought us here.
            display.warning(
                f"{self.target.label}: could not delete the WinRS shell ({type(exc).__name__}); "
                "Windows removes it after its idle timeout (IdleTimeOut, 2 hours by default)."
            )

    def run(self, command_line: str, stdin: str | None = None) -> CommandOutput:
        """Run one command line in the shell and wait for it, within command_timeout_sec.
        STDIN, when given, is the command's whole standard input, sent with WinRS Send and
        closed (MS-WSMV 3.1.4.13): the way a secret reaches a program without appearing on its
        command line, which a process-creation audit records. It is never logged."""
        if self._shell_id is None:
            raise RuntimeError("WinrsShell.run outside its `with` block")
        shell_id = self._shell_id
        display.vvvv(
            f"exchops.kms: running on {self.target.host}: {mask(command_line, self._secrets)}"
            + (" (with standard input)" if stdin is not None else ""),
            host=self.target.host,
        )
        started = time.monotonic()
        command_id = self._call(
            "starting a command", lambda: self._protocol.run_command(shell_id, command_line)
        )
        encoding = "utf-8" if self.target.codepage == 65001 else f"cp{self.target.codepage}"
        if stdin is not None:
            try:
                data = stdin.encode(encoding)
            except UnicodeEncodeError:
                raise WinrsConfigError(
                    self.target.label,
                    "the input for the command holds a character that the shell's code page "
                    f"({self.target.codepage}) cannot carry, so it was not sent. Use a value of "
                    "plain letters and digits.",
                ) from None
            self._call(
                "sending the command's input",
                lambda: self._protocol.send_command_input(shell_id, command_id, data, end=True),
            )
        stdout, stderr = bytearray(), bytearray()
        deadline = started + self.target.command_timeout_sec
        while True:
            try:
                out, err, exit_code, done = self._call(
                    "reading command output",
                    lambda: self._protocol.get_command_output_raw(shell_id, command_id),
                )
            except _OperationTimedOut:
                # MS-WSMV: no output within OperationTimeout is normal; ask again until our own
                # deadline (pywinrm alone would re-poll forever).
                out, err, exit_code, done = b"", b"", 0, False
            stdout += out
            stderr += err
            if done:
                break
            if time.monotonic() > deadline:
                raise WinrsTimeout(
                    self.target.label,
                    f"the command did not finish within {self.target.command_timeout_sec} s. It may "
                    "still be running on the host. Raise the task's timeout option (in the roles: "
                    "sp_parity_timeout for reads, kms_remediate_sp_timeout for the service pack) "
                    "if the host is slow, then run again.",
                )
        seconds = time.monotonic() - started
        # Decoded once, here, with the shell's code page (docs/windows-output.md#code-pages);
        # undecodable bytes stay visible as U+FFFD instead of failing the whole task.
        return CommandOutput(
            stdout.decode(encoding, errors="replace"),
            stderr.decode(encoding, errors="replace"),
            exit_code,
            seconds,
        )

    def _call(self, doing: str, call: t.Callable[[], t.Any]) -> t.Any:
        try:
            return call()
        except WinRMOperationTimeoutError as exc:
            raise _OperationTimedOut() from exc
        except Exception as exc:  # pylint: disable=broad-exception-caught
            error = translate_error(self.target, doing, exc)
            if error.unreachable:
                # The NTLM context (and its message encryption) belonged to the lost TCP
                # connection: without a new session the next request (a listing after the
                # failure, the shell's Delete) would be sent sealed on a new connection that
                # never authenticated, and WinRM answers HTTP 400. The shell itself lives on.
                self._protocol.transport.close_session()
            raise error from exc


class _OperationTimedOut(Exception):
    """A Receive that found no output within OperationTimeout: not an error, ask again."""


def _tls_reason(exc: BaseException) -> str:
    text = str(exc)
    for reason in (
        "self-signed certificate in certificate chain",
        "self signed certificate in certificate chain",
        "unable to get local issuer certificate",
        "certificate has expired",
        "Hostname mismatch",
        "IP address mismatch",
        "self-signed certificate",
    ):
        if reason.lower() in text.lower():
            return reason
    return text.rsplit("(Caused by", maxsplit=1)[-1].strip(" ()")[:200]


def _first_sentences(text: str, limit: int = 300) -> str:
    """Windows' fault text cut to whole sentences within `limit` characters (its long advice
    about WinRM configuration would drown the message)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text if text.endswith(".") else text + "."
    cut = text.rfind(". ", 0, limit)
    return text[: cut + 1] if cut > 0 else text[:limit].rsplit(" ", 1)[0] + "..."


def translate_error(target: WinrsTarget, doing: str, exc: BaseException) -> WinrsError:
    """Turn a pywinrm / requests exception into a WinrsError that says what to do."""
    label = target.label
    if isinstance(exc, (InvalidCredentialsError, CredSSPStatus)):
        return WinrsAuthError(
            label,
            f"the host refused the credentials of '{target.user}' ({target.transport}). Check "
            "ansible_user and ansible_password (for NTLM a domain account is DOMAIN\\user), and "
            "that the account may use WinRM on the host.",
        )
    if isinstance(exc, CredSSPRefused):
        return WinrsAuthError(
            label,
            "the host does not offer CredSSP (ansible_winrm_transport=credssp). Enable it on the "
            "host with Enable-WSManCredSSP -Role Server (or winrm set winrm/config/service/auth "
            '@{CredSSP="true"}), then run again.',
        )
    if isinstance(exc, requests.exceptions.SSLError):
        reason = _tls_reason(exc)
        if "expired" in reason:
            fix = "Renew the host's WinRM HTTPS certificate."
        elif "mismatch" in reason:
            fix = (
                f"Set ansible_host to a name the certificate carries, or reissue the certificate "
                f"for {target.address}."
            )
        else:
            fix = "Set ansible_winrm_ca_trust_path to the PEM file of the issuing CA."
        return WinrsTlsError(label, f"TLS certificate not trusted ({reason}). {fix}")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return WinrsTimeout(
            label,
            f"no answer within ansible_winrm_read_timeout_sec ({target.read_timeout_sec} s) while "
            f"{doing}. If the host is slow, raise ansible_winrm_read_timeout_sec (e.g. to "
            f"{target.read_timeout_sec * 2}) and keep it above ansible_winrm_operation_timeout_sec "
            f"({target.operation_timeout_sec}).",
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        cause = str(exc)
        if "Connection refused" in cause:
            why = f"nothing listens on port {target.port} (connection refused)"
        elif "timed out" in cause.lower():
            why = "the connection timed out"
        elif "RemoteDisconnected" in cause or "Connection aborted" in cause or "reset" in cause:
            why = f"the host closed the connection while {doing}"
        else:
            why = f"cannot connect ({cause.rsplit(':', maxsplit=1)[-1].strip()[:120]})"
        if target.via:
            return WinrsUnreachable(
                label,
                f"its jump host {target.via} is unreachable: {why}. Check {target.via}'s "
                "ansible_host, ansible_port and that the WinRM service runs there and its "
                "listener is enabled (winrm enumerate winrm/config/listener).",
            )
        return WinrsUnreachable(
            label,
            f"unreachable: {why}. Check ansible_host, ansible_port and that the WinRM service "
            "runs and its listener is enabled (winrm enumerate winrm/config/listener). "
            f"{NO_WINRM_BEFORE_2003_R2}",
        )
    if isinstance(exc, WSManFaultError):
        code = exc.wsman_fault_code
        reason = (exc.reason or "").strip()
        if code in QUOTA_FAULT_CODES or "quota" in reason.lower():
            return WinrsQuotaFault(
                label,
                f"the host refused {doing}: a WinRM quota is exhausted (WS-Man fault {code}: "
                f"{reason[:200]}). Close other WinRM sessions of {target.user!r} or raise "
                "MaxShellsPerUser / MaxConcurrentOperationsPerUser in winrm/config/winrs, then "
                "run again.",
                code,
                reason,
            )
        return WinrsFault(
            label,
            f"WS-Man fault {code} while {doing}: {_first_sentences(reason)} Nothing more was run.",
            code,
            reason,
        )
    if isinstance(exc, WinRMTransportError):
        return WinrsFault(
            label,
            f"HTTP {exc.code} from the WinRM service while {doing}. Check ansible_winrm_path "
            f"({target.path}) and ansible_winrm_message_encryption ({target.message_encryption}).",
            None,
            str(exc.code),
        )
    if isinstance(exc, WinRMError):
        return WinrsFault(label, f"WinRM error while {doing}: {str(exc)[:300]}.", None, str(exc))
    return WinrsError(label, f"unexpected {type(exc).__name__} while {doing}: {str(exc)[:300]}.")
