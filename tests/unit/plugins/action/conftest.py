# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared pieces of the action plugins' unit tests.

Each test builds a real ActionModule around a mocked Task and a mocked winrm connection whose
`get_option` answers the host's WinRM settings (as ansible.windows' action tests do), and meets
the host at one seam only: `WinrsShell`, replaced in every loaded module of the collection that
holds it by a shell of the scripted host (tests/unit/conftest.py). The real
`target_from_options` still reads the settings, so the shell is opened with the target the
action would use. No test here can reach a network: the replacement is in place for all of them.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import typing as t
from dataclasses import dataclass
from unittest.mock import MagicMock

import pytest
import requests.exceptions
from ansible.errors import AnsibleActionFail
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.plugins.action import ActionBase
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)

from ansible_collections.exchops.kms.plugins import action as action_package
from ansible_collections.exchops.kms.plugins.plugin_utils import _winrs

PLUGINS = "ansible_collections.exchops.kms.plugins"
ACTION_NAMES = sorted(info.name for info in pkgutil.iter_modules(action_package.__path__))
# Every action module is loaded before the seam is patched, with whatever it imports.
ACTIONS = {name: importlib.import_module(f"{PLUGINS}.action.{name}") for name in ACTION_NAMES}
REAL_WINRS_SHELL = _winrs.WinrsShell

HOST = "kms02"
# The password of the winrm connection (ansible_password), not a task option.
CONNECTION_PASSWORD = "C0nnection-Pa55"
WINRM_OPTIONS: dict[str, t.Any] = {
    "remote_addr": "10.0.0.2",
    "port": 5986,
    "scheme": None,
    "path": "/wsman",
    "transport": None,
    "remote_user": "CORP\\ops",
    "remote_password": CONNECTION_PASSWORD,
    "_extras": {},
}

# What pywinrm and requests raise, one of each kind `_winrs.translate_error` tells apart. The
# texts follow what the libraries print (the WS-Man fault reasons are those the lab's faults
# tests see); `translate_error` turns each into the WinrsError the real shell would raise.
_CAUSES: dict[str, t.Callable[[str], BaseException]] = {
    "connection_refused": lambda extra: requests.exceptions.ConnectionError(
        "HTTPSConnectionPool(host='10.0.0.2', port=5986): Max retries exceeded with url: /wsman "
        "(Caused by NewConnectionError('<urllib3.connection.HTTPSConnection object>: Failed to "
        f"establish a new connection: [Errno 111] Connection refused{extra}'))"
    ),
    "connection_reset": lambda extra: requests.exceptions.ConnectionError(
        "('Connection aborted.', RemoteDisconnected('Remote end closed connection without "
        f"response{extra}'))"
    ),
    "tls_untrusted": lambda extra: requests.exceptions.SSLError(
        "HTTPSConnectionPool(host='10.0.0.2', port=5986): Max retries exceeded with url: /wsman "
        "(Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] "
        f"certificate verify failed: self-signed certificate in certificate chain{extra}')))"
    ),
    "credentials": lambda extra: InvalidCredentialsError(
        f"the specified credentials were rejected by the server{extra}"
    ),
    "read_timeout": lambda extra: requests.exceptions.ReadTimeout(
        f"HTTPSConnectionPool(host='10.0.0.2', port=5986): Read timed out.{extra}"
    ),
    "wsman_fault": lambda extra: WSManFaultError(
        500,
        "Bad HTTP response returned from server. Code 500",
        "",
        f"The client cannot connect to the destination specified in the request.{extra}",
        wsman_fault_code=2150858770,
    ),
    "shell_quota": lambda extra: WSManFaultError(
        500,
        "Bad HTTP response returned from server. Code 500",
        "",
        "The WS-Management service cannot process the request. This user is allowed a maximum "
        f"number of 5 concurrent shells, which has been exceeded.{extra}",
        wsman_fault_code=2150859173,
    ),
    "http_error": lambda extra: WinRMTransportError(
        "http", 500, f"Bad HTTP response returned from server. Code 500{extra}"
    ),
    "winrm_error": lambda extra: WinRMError(f"the shell could not be created{extra}"),
    "unexpected": lambda extra: RuntimeError(f"the session broke{extra}"),
}
WINRS_FAILURES = tuple(_CAUSES)


@dataclass(frozen=True)
class Outcome:
    """What Ansible records for the task: the returned result, or the result of the
    AnsibleActionFail the action raised (`raised`)."""

    result: dict[str, t.Any]
    raised: bool

    @property
    def msg(self) -> str:
        return str(self.result.get("msg", ""))

    @property
    def seen(self) -> tuple[bool, bool, t.Any]:
        """(unreachable, failed, changed) as the play recap counts them."""
        return (
            bool(self.result.get("unreachable")),
            bool(self.result.get("failed")),
            self.result.get("changed"),
        )

    def strings(self) -> list[str]:
        """Every string in the result, keys included, at any depth."""
        found: list[str] = []
        pending: list[t.Any] = [self.result]
        while pending:
            value = pending.pop()
            if isinstance(value, str):
                found.append(value)
            elif isinstance(value, dict):
                pending += [*value.keys(), *value.values()]
            elif isinstance(value, (list, tuple)):
                pending += list(value)
        return found

    def shows(self, secret: str) -> list[str]:
        return [text for text in self.strings() if secret in text]


@pytest.fixture(autouse=True)
def fake_winrs(scripted_host: t.Any, monkeypatch: pytest.MonkeyPatch) -> t.Any:
    """The scripted host, reached through WinrsShell wherever the collection holds that name.
    Each shell's `details` keep the target, secrets and send_cbt it was opened with."""

    class FakeWinrsShell:  # pylint: disable=too-few-public-methods
        def __new__(
            cls,
            target: _winrs.WinrsTarget,
            secrets: t.Sequence[str] = (),
            send_cbt: bool = True,
        ) -> t.Any:
            return scripted_host.open(
                target.host, target=target, secrets=tuple(secrets), send_cbt=send_cbt
            )

    holders = []
    for module_name, module in list(sys.modules.items()):
        if module is None or not module_name.startswith(PLUGINS):
            continue
        for attribute, value in list(vars(module).items()):
            if value is REAL_WINRS_SHELL:
                monkeypatch.setattr(module, attribute, FakeWinrsShell)
                holders.append(module_name)
    # The seam must be found outside _winrs too, or the actions would reach the network.
    assert set(holders) - {_winrs.__name__}, "no module of the collection holds WinrsShell"
    return scripted_host


@pytest.fixture
def make_action() -> t.Callable[..., ActionBase]:
    """make_action(name, args, check_mode=, diff=, connection=, options=, delegate_to=): a real
    ActionModule with a mocked Task and connection. `connection` is the name the connection
    plugin was loaded by; `options` change the winrm settings its get_option answers."""

    def make(
        name: str,
        args: dict[str, t.Any] | None = None,
        *,
        check_mode: bool = False,
        diff: bool = False,
        connection: str = "winrm",
        options: dict[str, t.Any] | None = None,
        delegate_to: str | None = None,
    ) -> ActionBase:
        task = MagicMock(Task)
        task.args = dict(args or {})
        task.check_mode = check_mode
        task.diff = diff
        task.async_val = 0
        task.delegate_to = delegate_to
        task.action = f"exchops.kms.{name}"
        task.dump_attrs.return_value = {}
        settings = {**WINRM_OPTIONS, **(options or {})}
        plugin = MagicMock()
        plugin._load_name = connection  # pylint: disable=protected-access
        plugin.transport = connection.rsplit(".", 1)[-1]
        plugin.get_option.side_effect = settings.get
        templar = MagicMock()
        templar.template.side_effect = lambda value: value
        return ACTIONS[name].ActionModule(
            task,
            plugin,
            PlayContext(),
            loader=MagicMock(),
            templar=templar,
            shared_loader_obj=None,
        )

    return make


@pytest.fixture
def task_vars() -> t.Callable[..., dict[str, t.Any]]:
    """task_vars(host="kms02", **variables): the variables Ansible hands to run()."""

    def build(host: str = HOST, **variables: t.Any) -> dict[str, t.Any]:
        return {"inventory_hostname": host, **variables}

    return build


@pytest.fixture
def run_action(
    make_action: t.Callable[..., ActionBase], task_vars: t.Callable[..., dict[str, t.Any]]
) -> t.Callable[..., Outcome]:
    """run_action(name, args, variables=None, **make_action options) -> Outcome."""

    def run(
        name: str,
        args: dict[str, t.Any] | None = None,
        variables: dict[str, t.Any] | None = None,
        **options: t.Any,
    ) -> Outcome:
        action = make_action(name, args, **options)
        try:
            result = action.run(task_vars=variables or task_vars())
        except AnsibleActionFail as exc:
            return Outcome(exc.result, raised=True)
        return Outcome(result, raised=False)

    return run


@pytest.fixture
def refused(
    make_action: t.Callable[..., ActionBase],
    task_vars: t.Callable[..., dict[str, t.Any]],
    fake_winrs: t.Any,
) -> t.Callable[..., str]:
    """refused(name, args, match, secret=None, variables=None, **make_action options) -> the
    message of the AnsibleActionFail raised before any shell opened; `secret` appears nowhere in
    its result."""

    def refuse(
        name: str,
        args: dict[str, t.Any],
        match: str,
        secret: str | None = None,
        variables: dict[str, t.Any] | None = None,
        **options: t.Any,
    ) -> str:
        action = make_action(name, args, **options)
        with pytest.raises(AnsibleActionFail, match=match) as caught:
            action.run(task_vars=variables or task_vars())
        assert fake_winrs.shells == [], "nothing may be sent before the options are checked"
        if secret is not None:
            assert Outcome(caught.value.result, raised=True).shows(secret) == []
        return str(caught.value)

    return refuse


def winrs_error(
    kind: str,
    extra: str = "",
    doing: str = "starting a command",
    host: str = HOST,
    **options: t.Any,
) -> Exception:
    """The WinrsError the real shell on `host` (reached with WINRM_OPTIONS changed by `options`)
    raises for a failure of `kind` (WINRS_FAILURES) while `doing`; `extra` is appended to the
    library's own text (to carry a secret, say)."""
    target = _winrs.target_from_options(host, {**WINRM_OPTIONS, **options}.get)
    return _winrs.translate_error(target, doing, _CAUSES[kind](extra))


@pytest.fixture(name="winrs_error")
def winrs_error_fixture() -> t.Callable[..., Exception]:
    """winrs_error(kind, extra="", doing="starting a command", host="kms02", **options)."""
    return winrs_error


@pytest.fixture(params=WINRS_FAILURES)
def shell_failure(request: pytest.FixtureRequest) -> Exception:
    """Each kind of WinrsError the shell raises, in turn."""
    return winrs_error(request.param)
