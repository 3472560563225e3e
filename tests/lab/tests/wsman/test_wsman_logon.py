# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each shell runs in the logon session of its Create: who, how they authenticated, and what
they may delegate onwards (nothing, for NTLM and Basic)."""

from __future__ import annotations

import pytest
from winrm.exceptions import WSManFaultError
from wsman_support import (
    DOMAIN_USER,
    USER,
    DummyBackend,
    ServerFactory,
    pypsrp_client,
    pywinrm_protocol,
    pywinrm_session,
)

from exchlab.wsman import LabCA, LogonSession


def test_every_command_of_an_ntlm_shell_runs_in_its_logon_session(backend: DummyBackend) -> None:
    protocol = pywinrm_protocol(backend, user=DOMAIN_USER)
    shell_id = protocol.open_shell()
    outputs = []
    for line in ("logon", "ver"):
        command_id = protocol.run_command(shell_id, line)
        outputs.append(protocol.get_command_output(shell_id, command_id))
    protocol.close_shell(shell_id)

    assert outputs[0] == (b"LAB\\labadmin ntlm -\r\n", b"", 0)
    assert backend.sessions == [LogonSession(DOMAIN_USER, "ntlm", None)] * 2


@pytest.mark.parametrize(
    ("transport", "https", "expected"),
    [
        ("ntlm", False, LogonSession(USER, "ntlm")),
        ("ntlm", True, LogonSession(USER, "ntlm")),
        ("basic", True, LogonSession(USER, "basic")),
    ],
    ids=["ntlm over http", "ntlm over https", "basic over https"],
)
def test_ntlm_and_basic_logons_delegate_nothing(
    backend: DummyBackend,
    lab_ca: LabCA,
    transport: str,
    https: bool,
    expected: LogonSession,
) -> None:
    session = pywinrm_session(backend, transport, lab_ca if https else None)

    assert session.run_cmd("logon").std_out == f"{expected.user} {expected.auth} -\r\n".encode()
    assert backend.sessions == [expected]


def test_pypsrp_negotiate_logs_on_as_ntlm(backend: DummyBackend) -> None:
    client = pypsrp_client(backend, auth="negotiate")

    assert client.execute_cmd("logon") == ("labadmin ntlm -\r\n", "", 0)


def test_shells_of_one_user_count_against_its_quota_however_it_logged_on(
    make_server: ServerFactory, lab_ca: LabCA
) -> None:
    _server, (backend,) = make_server(
        configure=lambda b: setattr(b.faults, "max_shells_per_user", 3)
    )
    ntlm = pywinrm_protocol(backend)
    basic = pywinrm_protocol(backend, "basic", lab_ca)
    credssp = pywinrm_protocol(backend, "credssp")
    shells = [(protocol, protocol.open_shell()) for protocol in (ntlm, basic, credssp)]

    for protocol in (ntlm, basic, credssp):
        with pytest.raises(WSManFaultError, match="maximum number of 3 concurrent shells"):
            protocol.open_shell()
    for protocol, shell_id in shells:
        protocol.close_shell(shell_id)
