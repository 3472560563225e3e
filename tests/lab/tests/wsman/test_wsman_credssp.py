# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CredSSP on the lab's listener, as pywinrm's transport='credssp' (requests-credssp) and
pypsrp's auth='credssp' speak it: the delegated credentials reach the shell's logon session."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests
from requests_credssp.exceptions import AuthenticationException, NTStatusException
from wsman_support import (
    DOMAIN_USER,
    PASSWORD,
    USER,
    DummyBackend,
    ServerFactory,
    credssp_exchange,
    http_url,
    https_url,
    large_output,
    pypsrp_client,
    pywinrm_protocol,
    pywinrm_session,
)

from exchlab.wsman import Delegated, LabCA, LogonSession

STATUS_LOGON_FAILURE = 0xC000006D


@pytest.mark.parametrize("user", [USER, DOMAIN_USER], ids=["user", "DOMAIN\\user"])
def test_pywinrm_credssp_over_http_delegates_the_password_to_the_shell(
    backend: DummyBackend, user: str
) -> None:
    session = pywinrm_session(backend, "credssp", user=user)

    result = session.run_cmd("logon")

    assert (result.std_out, result.status_code) == (f"{user} credssp {user}\r\n".encode(), 0)
    assert backend.sessions == [LogonSession(user, "credssp", Delegated(user, PASSWORD))]
    delegated = backend.sessions[0].delegated  # type: ignore[union-attr]
    assert delegated is not None and delegated.password == PASSWORD
    # anonymous 401; ClientHello, TLS finish, NTLM NEGOTIATE, AUTHENTICATE with the public key
    # echo (each 401 with the server's next token); the credentials -> 200 (the empty POST that
    # sets up encryption); then Create, Command, Receive, Signal, Delete, all encrypted.
    assert backend.counts == {"http": 11, "shells": 1, "commands": 1}


@pytest.mark.parametrize("message_encryption", ["auto", "always"])
def test_pywinrm_credssp_over_https_works_with_and_without_message_encryption(
    backend: DummyBackend, lab_ca: LabCA, message_encryption: str
) -> None:
    # auto: TLS alone protects the SOAP (pywinrm encrypts only on http); always: CredSSP
    # sealing inside TLS as well.
    session = pywinrm_session(
        backend, "credssp", lab_ca, user=DOMAIN_USER, message_encryption=message_encryption
    )

    assert session.run_cmd("logon").std_out == b"LAB\\labadmin credssp LAB\\labadmin\r\n"
    assert backend.sessions == [
        LogonSession(DOMAIN_USER, "credssp", Delegated(DOMAIN_USER, PASSWORD))
    ]


def test_every_command_of_a_credssp_shell_runs_with_the_delegated_credentials(
    backend: DummyBackend,
) -> None:
    protocol = pywinrm_protocol(backend, "credssp", user=DOMAIN_USER)
    shell_id = protocol.open_shell()
    outputs = []
    for line in ("logon", "ver", "logon"):
        command_id = protocol.run_command(shell_id, line)
        outputs.append(protocol.get_command_output(shell_id, command_id))
    protocol.close_shell(shell_id)

    assert outputs[2] == (b"LAB\\labadmin credssp LAB\\labadmin\r\n", b"", 0)
    assert (
        backend.sessions
        == [LogonSession(DOMAIN_USER, "credssp", Delegated(DOMAIN_USER, PASSWORD))] * 3
    )


def test_credssp_messages_over_16_kib_travel_in_sealed_pieces_both_ways(
    backend: DummyBackend,
) -> None:
    protocol = pywinrm_protocol(backend, "credssp")
    content_types: list[str] = []

    def record(response: requests.Response, **_kwargs: Any) -> None:
        content_types.append(response.headers.get("Content-Type", ""))

    protocol.transport.build_session().hooks["response"].append(record)
    shell_id = protocol.open_shell()
    sent = large_output(40_000).encode("ascii")
    command_id = protocol.run_command(shell_id, "stdin", ["10"])
    protocol.send_command_input(shell_id, command_id, sent, end=True)  # one 40 KB request
    echoed = protocol.get_command_output(shell_id, command_id)
    command_id = protocol.run_command(shell_id, "big", ["100000"])
    output = protocol.get_command_output(shell_id, command_id)
    protocol.close_shell(shell_id)

    assert backend.stdin_reads == [sent]
    assert echoed == (b"40000 bytes: " + sent, b"", 0)
    assert output == (large_output(100_000).encode("ascii"), b"", 0)
    # Receives of 64 KiB of output are sealed as several 16 KiB pieces (MS-WSMV 2.2.9.1.3).
    multi = 'multipart/x-multi-encrypted;protocol="application/HTTP-CredSSP-session-encrypted"'
    assert any(value.startswith(multi) for value in content_types)
    assert all("HTTP-CredSSP-session-encrypted" in value for value in content_types if value)


def test_pypsrp_credssp_over_http_runs_commands_with_delegated_credentials(
    backend: DummyBackend,
) -> None:
    client = pypsrp_client(backend, auth="credssp", username=DOMAIN_USER)

    assert client.execute_cmd("logon") == ("LAB\\labadmin credssp LAB\\labadmin\r\n", "", 0)
    assert client.execute_cmd("big 70000") == (large_output(70_000), "", 0)


def test_a_wrong_password_is_refused_with_a_401_carrying_status_logon_failure(
    backend: DummyBackend,
) -> None:
    with pytest.raises(NTStatusException) as refused:
        pywinrm_session(backend, "credssp", password="not-the-password").run_cmd("hostname")
    responses, _client = credssp_exchange(http_url(backend), password="not-the-password")

    # As Windows reports it to requests-credssp (pywinrm issue #235).
    assert refused.value.status == STATUS_LOGON_FAILURE
    assert "STATUS_LOGON_FAILURE" in str(refused.value)
    assert "not-the-password" not in str(refused.value)
    assert [response.status_code for response in responses] == [401] * len(responses)
    assert responses[-1].headers["WWW-Authenticate"].startswith("CredSSP ")
    assert backend.command_lines == []
    assert backend.counts["shells"] == 0


def test_the_auth_refused_fault_refuses_credssp_like_a_wrong_password(
    backend: DummyBackend,
) -> None:
    backend.faults.auth_refused = True
    with pytest.raises(NTStatusException) as refused:
        pywinrm_session(backend, "credssp").run_cmd("hostname")

    backend.faults.auth_refused = False
    result = pywinrm_session(backend, "credssp").run_cmd("hostname")

    assert refused.value.status == STATUS_LOGON_FAILURE
    assert result.std_out == b"ran hostname\r\n"


def test_credssp_is_offered_beside_negotiate_and_its_tls_is_1_2(
    backend: DummyBackend, lab_ca: LabCA
) -> None:
    anonymous = requests.post(http_url(backend), data=b"", timeout=5)
    responses, client = credssp_exchange(https_url(backend), verify=str(lab_ca.ca_path))

    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Negotiate, CredSSP"
    assert [response.status_code for response in responses][-1] == 200
    assert client.complete
    # SChannel on the Windows Server 2012 R2 to 2019 jump hosts stops at TLS 1.2.
    assert client.get_extra_info("ssl_object").version() == "TLSv1.2"


def test_a_host_without_credssp_enabled_neither_offers_nor_accepts_it(
    make_server: ServerFactory,
) -> None:
    _server, (backend,) = make_server(
        configure=lambda b: setattr(b.faults, "credssp_enabled", False)
    )
    anonymous = requests.post(http_url(backend), data=b"", timeout=5)
    responses, client = credssp_exchange(http_url(backend))

    with pytest.raises(AuthenticationException, match="did not response CredSSP"):
        pywinrm_session(backend, "credssp").run_cmd("hostname")
    assert anonymous.headers["WWW-Authenticate"] == "Negotiate"
    assert [response.status_code for response in responses] == [401]
    assert not client.complete
    # NTLM still works there.
    assert pywinrm_session(backend).run_cmd("logon").std_out == b"labadmin ntlm -\r\n"


def test_the_delegated_password_stays_out_of_the_logs(
    backend: DummyBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    pywinrm_session(backend, "credssp", user=DOMAIN_USER).run_cmd("logon")

    assert "CredSSP logon of LAB\\labadmin, credentials of LAB\\labadmin delegated" in caplog.text
    assert PASSWORD not in caplog.text
    assert PASSWORD not in repr(backend.sessions)
