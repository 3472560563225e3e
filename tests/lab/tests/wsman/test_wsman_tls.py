# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab CA survives restarts and issues the certificates the fault variants promise."""

from __future__ import annotations

import datetime
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from wsman_support import ServerFactory, pywinrm_session

from exchlab.wsman import LabCA


def _sans(cert_path: Path) -> tuple[list[str], list[str]]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), [
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    ]


def test_the_ca_is_kept_in_the_state_directory_and_reloaded(tmp_path: Path) -> None:
    first = LabCA.load_or_create(tmp_path)
    ca_pem = first.ca_path.read_bytes()
    key_mode = stat.S_IMODE((tmp_path / "ca-key.pem").stat().st_mode)

    second = LabCA.load_or_create(tmp_path)
    issued = second.issue_server_certificate("KMS-NEW", "127.77.0.5")

    assert second.ca_path.read_bytes() == ca_pem
    assert key_mode == 0o600
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    x509.load_der_x509_certificate(issued.der).verify_directly_issued_by(ca_cert)


def test_server_certificates_name_the_host_and_its_address(tmp_path: Path) -> None:
    ca = LabCA.load_or_create(tmp_path)
    now = datetime.datetime.now(datetime.timezone.utc)

    ok = ca.issue_server_certificate("KMS-NEW", "127.77.0.5", "ok")
    expired = ca.issue_server_certificate("KMS-NEW", "127.77.0.5", "expired")
    wrong = ca.issue_server_certificate("KMS-NEW", "127.77.0.5", "wrong_name")

    assert _sans(ok.cert_path) == (["kms-new"], ["127.77.0.5"])
    assert _sans(expired.cert_path) == (["kms-new"], ["127.77.0.5"])
    wrong_dns, wrong_ips = _sans(wrong.cert_path)
    assert wrong_dns != ["kms-new"] and wrong_ips != ["127.77.0.5"]
    assert not ipaddress.ip_address(wrong_ips[0]).is_loopback
    not_after = x509.load_der_x509_certificate(expired.der).not_valid_after_utc
    assert not_after < now
    with pytest.raises(ValueError, match="unknown certificate variant"):
        ca.issue_server_certificate("KMS-NEW", "127.77.0.5", "self_signed")


def test_a_changed_certificate_fault_takes_effect_at_the_next_start(
    make_server: ServerFactory, lab_ca: LabCA
) -> None:
    server, (backend,) = make_server()

    backend.faults.tls_certificate = "expired"
    # Still the certificate it started with.
    assert pywinrm_session(backend, "basic", lab_ca).run_cmd("ver").status_code == 0

    server.stop()
    server.start()
    assert server.certificate(backend.name).variant == "expired"
    with pytest.raises(Exception, match="certificate has expired"):
        pywinrm_session(backend, "basic", lab_ca).run_cmd("ver")


def test_a_renewed_certificate_is_presented_to_the_next_connection(
    make_server: ServerFactory, lab_ca: LabCA
) -> None:
    server, (backend,) = make_server()

    def run_ver() -> int:
        return pywinrm_session(backend, "basic", lab_ca).run_cmd("ver").status_code

    backend.faults.tls_certificate = "wrong_name"
    server.renew_certificate(backend.name)
    with pytest.raises(Exception, match="mismatch"):
        run_ver()

    # `exchlab fault HOST tls_certificate=ok` does this: the fault cleared, no restart.
    backend.faults.tls_certificate = "ok"
    server.renew_certificate(backend.name)
    assert server.certificate(backend.name).variant == "ok"
    assert run_ver() == 0
