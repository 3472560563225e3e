# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unmodified pywinrm and pypsrp clients against the lab: auth modes, TLS, request counts."""

from __future__ import annotations

import pytest
import requests
import winrm
from pypsrp.shell import WinRS
from pypsrp.wsman import WSMan
from winrm.exceptions import InvalidCredentialsError
from wsman_support import (
    DOMAIN_USER,
    HTTP_PORT,
    PASSWORD,
    USER,
    DummyBackend,
    ServerFactory,
    https_url,
    pypsrp_client,
    pywinrm_protocol,
    pywinrm_session,
)

from exchlab.wsman import LabCA, WsmanServer


def test_pywinrm_ntlm_over_http_returns_exact_output_with_message_encryption(
    backend: DummyBackend,
) -> None:
    session = pywinrm_session(backend)

    result = session.run_cmd("fail", ["--now"])

    assert result.std_out == b"partial\r\n"
    assert result.std_err == b"boom: it failed\r\n"
    assert result.status_code == 3
    assert backend.command_lines == ["fail --now"]
    # anonymous 401, NEGOTIATE -> 401, AUTHENTICATE -> 200, Create, Command, Receive, Signal,
    # Delete: what a Windows host sees from pywinrm's run_cmd.
    assert backend.counts == {"http": 8, "shells": 1, "commands": 1}


def test_pywinrm_protocol_runs_three_commands_in_one_shell(
    host: tuple[WsmanServer, DummyBackend],
) -> None:
    server, backend = host
    protocol = pywinrm_protocol(backend, user=DOMAIN_USER)
    shell_id = protocol.open_shell()
    outputs = []
    for line in ("reg query HKLM", "sc query MSExchangeKMS", "ver"):
        command_id = protocol.run_command(shell_id, line)
        outputs.append(protocol.get_command_output(shell_id, command_id))
        protocol.cleanup_command(shell_id, command_id)
    assert server.shell_manager(backend.name).open_shells() == 1
    protocol.close_shell(shell_id)

    assert outputs == [
        (b"ran reg query HKLM\r\n", b"", 0),
        (b"ran sc query MSExchangeKMS\r\n", b"", 0),
        (b"ran ver\r\n", b"", 0),
    ]
    assert server.shell_manager(backend.name).open_shells() == 0
    # 3 auth + Create + 3 x (Command, Receive, Signal) + Delete
    assert backend.counts == {"http": 14, "shells": 1, "commands": 3}


def test_pywinrm_basic_over_https_validates_the_lab_certificate(
    backend: DummyBackend, lab_ca: LabCA
) -> None:
    session = pywinrm_session(backend, "basic", lab_ca)

    result = session.run_cmd("hostname")

    assert (result.std_out, result.std_err, result.status_code) == (b"ran hostname\r\n", b"", 0)
    # Basic is pre-emptive: Create, Command, Receive, Signal, Delete and no 401 at all.
    assert backend.counts == {"http": 5, "shells": 1, "commands": 1}


def test_pywinrm_ntlm_over_https_passes_channel_binding(
    backend: DummyBackend, lab_ca: LabCA
) -> None:
    session = pywinrm_session(backend, "ntlm", lab_ca, user=DOMAIN_USER)

    result = session.run_cmd("hostname")

    assert result.std_out == b"ran hostname\r\n"
    # The Create rides on the AUTHENTICATE request: 2 x 401 + 5 operations.
    assert backend.counts["http"] == 7


def test_ntlm_over_https_without_channel_binding_is_refused(
    backend: DummyBackend, lab_ca: LabCA
) -> None:
    session = pywinrm_session(backend, "ntlm", lab_ca, send_cbt=False)

    with pytest.raises(InvalidCredentialsError):
        session.run_cmd("hostname")
    assert backend.command_lines == []


def test_https_with_a_ca_that_did_not_issue_the_certificate_fails_validation(
    backend: DummyBackend, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other_ca = LabCA.load_or_create(tmp_path_factory.mktemp("other-ca"))
    for trust in (str(other_ca.ca_path), None):
        session = winrm.Session(
            https_url(backend),
            auth=(USER, PASSWORD),
            transport="basic",
            server_cert_validation="validate",
            ca_trust_path=trust,  # None: requests' default bundle, which lacks the lab CA
        )
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            session.run_cmd("hostname")
    assert backend.command_lines == []


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ("expired", "certificate has expired"),
        ("wrong_name", "IP address mismatch"),
    ],
)
def test_https_with_a_bad_certificate_fails_validation(
    make_server: ServerFactory, lab_ca: LabCA, variant: str, message: str
) -> None:
    def configure(backend: DummyBackend) -> None:
        backend.faults.tls_certificate = variant

    _server, (backend,) = make_server(configure=configure)
    session = pywinrm_session(backend, "basic", lab_ca)

    with pytest.raises(requests.exceptions.SSLError, match=message):
        session.run_cmd("hostname")
    # The same listener still works for a client that does not validate.
    insecure = winrm.Session(
        https_url(backend),
        auth=(USER, PASSWORD),
        transport="basic",
        server_cert_validation="ignore",
    )
    assert insecure.run_cmd("hostname").std_out == b"ran hostname\r\n"


def test_pypsrp_negotiate_over_http_reuses_one_authenticated_connection(
    backend: DummyBackend,
) -> None:
    client = pypsrp_client(backend, auth="negotiate")

    first = client.execute_cmd("fail")
    second = client.execute_cmd("hostname", environment={"KMS_ROLE": "target"})

    assert first == ("partial\r\n", "boom: it failed\r\n", 3)
    assert second == ("ran hostname\r\n", "", 0)
    # 3 auth requests once, then Create, Command, Receive, Signal(ctrl_c), Delete per command.
    assert backend.counts == {"http": 13, "shells": 2, "commands": 2}


def test_pypsrp_basic_over_https_validates_the_lab_certificate(
    backend: DummyBackend, lab_ca: LabCA
) -> None:
    client = pypsrp_client(backend, lab_ca, auth="basic")

    assert client.execute_cmd("ver") == ("ran ver\r\n", "", 0)
    assert backend.counts == {"http": 5, "shells": 1, "commands": 1}


def test_create_answers_a_windows_shaped_shell_block(backend: DummyBackend) -> None:
    wsman = WSMan(backend.address, port=HTTP_PORT, username=USER, password=PASSWORD, ssl=False)
    with wsman, WinRS(wsman, idle_time_out=600) as shell:
        assert shell.id is not None and shell.id == shell.id.upper()
        assert shell.owner == USER
        assert shell.client_ip is not None and shell.client_ip.startswith("127.")
        assert shell.idle_time_out == "PT600.000S"
        assert shell.resource_uri == "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
