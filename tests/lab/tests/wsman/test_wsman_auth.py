# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Refused logins look like Windows' to the clients: HTTP 401, which pywinrm reports as bad
credentials whatever the cause."""

from __future__ import annotations

import pytest
import requests
import winrm
from pypsrp.client import Client
from pypsrp.exceptions import AuthenticationError
from winrm.exceptions import InvalidCredentialsError
from wsman_support import (
    HTTP_PORT,
    PASSWORD,
    USER,
    DummyBackend,
    ServerFactory,
    http_url,
    https_url,
)

from exchlab.wsman import LabCA, WsmanServer


def _https_session(
    backend: DummyBackend, ca: LabCA, transport: str, password: str
) -> winrm.Session:
    return winrm.Session(
        https_url(backend),
        auth=(USER, password),
        transport=transport,
        server_cert_validation="validate",
        ca_trust_path=str(ca.ca_path),
    )


@pytest.mark.parametrize("transport", ["ntlm", "basic"])
def test_a_wrong_password_is_reported_as_invalid_credentials(
    host: tuple[WsmanServer, DummyBackend], lab_ca: LabCA, transport: str
) -> None:
    _server, backend = host
    sessions = [_https_session(backend, lab_ca, transport, "not-the-password")]
    if transport == "ntlm":
        sessions.append(
            winrm.Session(http_url(backend), auth=(USER, "not-the-password"), transport="ntlm")
        )

    for session in sessions:
        with pytest.raises(InvalidCredentialsError):
            session.run_cmd("hostname")
    assert backend.command_lines == []
    assert backend.counts["shells"] == 0


def test_pypsrp_reports_a_wrong_password_as_an_authentication_error(
    host: tuple[WsmanServer, DummyBackend],
) -> None:
    _server, backend = host
    client = Client(backend.address, port=HTTP_PORT, username=USER, password="nope", ssl=False)
    with pytest.raises(AuthenticationError):
        client.execute_cmd("hostname")


def test_basic_over_http_is_refused_like_allow_unencrypted_false(
    host: tuple[WsmanServer, DummyBackend],
) -> None:
    _server, backend = host
    session = winrm.Session(http_url(backend), auth=(USER, PASSWORD), transport="basic")
    with pytest.raises(InvalidCredentialsError):
        session.run_cmd("hostname")

    response = requests.post(http_url(backend), auth=(USER, PASSWORD), data=b"<x/>", timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Negotiate"
    assert backend.command_lines == []


def test_clear_text_soap_over_http_is_refused_even_after_ntlm(
    host: tuple[WsmanServer, DummyBackend],
) -> None:
    _server, backend = host
    session = winrm.Session(
        http_url(backend), auth=(USER, PASSWORD), transport="ntlm", message_encryption="never"
    )
    with pytest.raises(InvalidCredentialsError):
        session.run_cmd("hostname")
    assert backend.command_lines == []


def test_basic_over_http_works_when_the_lab_allows_it(make_server: ServerFactory) -> None:
    _server, (backend,) = make_server(allow_basic_over_http=True)
    session = winrm.Session(http_url(backend), auth=(USER, PASSWORD), transport="basic")

    assert session.run_cmd("hostname").std_out == b"ran hostname\r\n"


@pytest.mark.parametrize("transport", ["ntlm", "basic"])
def test_the_auth_refused_fault_rejects_good_credentials(
    host: tuple[WsmanServer, DummyBackend], lab_ca: LabCA, transport: str
) -> None:
    _server, backend = host
    backend.faults.auth_refused = True
    with pytest.raises(InvalidCredentialsError):
        _https_session(backend, lab_ca, transport, PASSWORD).run_cmd("hostname")

    backend.faults.auth_refused = False
    result = _https_session(backend, lab_ca, transport, PASSWORD).run_cmd("hostname")
    assert result.std_out == b"ran hostname\r\n"


def test_only_post_to_wsman_is_served(host: tuple[WsmanServer, DummyBackend]) -> None:
    _server, backend = host
    assert requests.get(http_url(backend), timeout=5).status_code == 405
    other = f"http://{backend.address}:{HTTP_PORT}/other"
    assert requests.post(other, timeout=5).status_code == 404
    assert requests.post(http_url(backend), timeout=5).status_code == 401
    assert backend.counts["http"] == 3
