# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Refused logins look like Windows' to the clients: HTTP 401, which pywinrm reports as bad
credentials whatever the cause."""

from __future__ import annotations

import pytest
import requests
from pypsrp.exceptions import AuthenticationError
from winrm.exceptions import InvalidCredentialsError
from wsman_support import (
    HTTP_PORT,
    PASSWORD,
    USER,
    DummyBackend,
    ServerFactory,
    http_url,
    pypsrp_client,
    pywinrm_session,
)

from exchlab.wsman import LabCA


@pytest.mark.parametrize("transport", ["ntlm", "basic"])
def test_a_wrong_password_is_reported_as_invalid_credentials(
    backend: DummyBackend, lab_ca: LabCA, transport: str
) -> None:
    sessions = [pywinrm_session(backend, transport, lab_ca, password="not-the-password")]
    if transport == "ntlm":
        sessions.append(pywinrm_session(backend, password="not-the-password"))

    for session in sessions:
        with pytest.raises(InvalidCredentialsError):
            session.run_cmd("hostname")
    assert backend.command_lines == []
    assert backend.counts["shells"] == 0


def test_pypsrp_reports_a_wrong_password_as_an_authentication_error(backend: DummyBackend) -> None:
    client = pypsrp_client(backend, password="nope")
    with pytest.raises(AuthenticationError):
        client.execute_cmd("hostname")


def test_basic_over_http_is_refused_like_allow_unencrypted_false(backend: DummyBackend) -> None:
    session = pywinrm_session(backend, "basic")
    with pytest.raises(InvalidCredentialsError):
        session.run_cmd("hostname")

    response = requests.post(http_url(backend), auth=(USER, PASSWORD), data=b"<x/>", timeout=5)
    assert response.status_code == 401
    # Basic is not offered on HTTP; CredSSP is (it seals every message).
    assert response.headers["WWW-Authenticate"] == "Negotiate, CredSSP"
    assert backend.command_lines == []


def test_clear_text_soap_over_http_is_refused_even_after_ntlm(backend: DummyBackend) -> None:
    session = pywinrm_session(backend, message_encryption="never")
    with pytest.raises(InvalidCredentialsError):
        session.run_cmd("hostname")
    assert backend.command_lines == []


def test_basic_over_http_works_when_the_lab_allows_it(make_server: ServerFactory) -> None:
    _server, (backend,) = make_server(allow_basic_over_http=True)
    session = pywinrm_session(backend, "basic")

    assert session.run_cmd("hostname").std_out == b"ran hostname\r\n"


@pytest.mark.parametrize("transport", ["ntlm", "basic"])
def test_the_auth_refused_fault_rejects_good_credentials(
    backend: DummyBackend, lab_ca: LabCA, transport: str
) -> None:
    backend.faults.auth_refused = True
    with pytest.raises(InvalidCredentialsError):
        pywinrm_session(backend, transport, lab_ca).run_cmd("hostname")

    backend.faults.auth_refused = False
    result = pywinrm_session(backend, transport, lab_ca).run_cmd("hostname")
    assert result.std_out == b"ran hostname\r\n"


def test_only_post_to_wsman_is_served(backend: DummyBackend) -> None:
    assert requests.get(http_url(backend), timeout=5).status_code == 405
    other = f"http://{backend.address}:{HTTP_PORT}/other"
    assert requests.post(other, timeout=5).status_code == 404
    assert requests.post(http_url(backend), timeout=5).status_code == 401
    assert backend.counts["http"] == 3
