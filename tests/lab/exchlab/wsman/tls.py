# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab certificate authority and the server certificates of the HTTPS listeners.

The CA key stays in the state directory, so ``ca.pem`` keeps validating the listeners'
certificates across lab restarts; server certificates are issued afresh at each start (cheap:
ECDSA P-256) and written next to it, because ``ssl.SSLContext.load_cert_chain`` only reads files.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERTIFICATE_VARIANTS = ("ok", "expired", "wrong_name")

# A name and an address no lab host uses, for the "wrong_name" variant. 192.0.2.0/24 is
# TEST-NET-1 (RFC 5737): it only ever appears inside the certificate, nothing connects to it.
_WRONG_DNS_SUFFIX = ".wrong-name.invalid"
_WRONG_IP = ipaddress.ip_address("192.0.2.10")


@dataclass(frozen=True)
class ServerCertificate:
    """A server certificate on disk and what channel binding needs from it."""

    cert_path: Path
    key_path: Path
    der: bytes
    variant: str

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side TLS context presenting this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.cert_path), str(self.key_path))
        return context

    def channel_binding_data(self) -> bytes:
        """RFC 5929 tls-server-end-point application data, as clients compute it for CBT."""
        cert = x509.load_der_x509_certificate(self.der)
        algorithm = cert.signature_hash_algorithm
        # RFC 5929 4.1: MD5 and SHA-1 signatures are bound with SHA-256 instead.
        if algorithm is None or algorithm.name in ("md5", "sha1"):
            algorithm = hashes.SHA256()
        digest = hashes.Hash(algorithm)
        digest.update(self.der)
        return b"tls-server-end-point:" + digest.finalize()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, replacing any previous one atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """A private key as unencrypted PKCS#8 PEM, readable by its owner only."""
    _write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _key_usage(signs_certificates: bool) -> x509.KeyUsage:
    """Digital signature (ECDHE key exchange) for every certificate; certificate and CRL signing
    for the CA's own."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


class LabCA:
    """A persistent test CA that issues per-host server certificates."""

    CA_CERT_NAME = "ca.pem"
    CA_KEY_NAME = "ca-key.pem"
    CERT_DIR_NAME = "certs"

    def __init__(
        self, state_dir: Path, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
    ) -> None:
        self.state_dir = state_dir
        self._ca_cert = ca_cert
        self._ca_key = ca_key

    @property
    def ca_path(self) -> Path:
        """The PEM file clients trust (pywinrm ca_trust_path, pypsrp cert_validation)."""
        return self.state_dir / self.CA_CERT_NAME

    @classmethod
    def load_or_create(cls, state_dir: Path) -> LabCA:
        """Load the CA kept in state_dir, or create it there (ca.pem and ca-key.pem)."""
        state_dir = Path(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        cert_path = state_dir / cls.CA_CERT_NAME
        key_path = state_dir / cls.CA_KEY_NAME
        if cert_path.is_file() and key_path.is_file():
            ca_cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            ca_key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_path}: not the lab CA's EC private key")
            return cls(state_dir, ca_cert, ca_key)

        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "exchops.kms lab"),
                x509.NameAttribute(NameOID.COMMON_NAME, "exchlab test CA"),
            ]
        )
        now = _now()
        ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(signs_certificates=True), critical=True)
            .add_extension(ski, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_key(key_path, ca_key)
        _write_public(cert_path, ca_cert.public_bytes(serialization.Encoding.PEM))
        return cls(state_dir, ca_cert, ca_key)

    def issue_server_certificate(
        self, name: str, address: str, variant: str = "ok"
    ) -> ServerCertificate:
        """Issue a certificate for host ``name`` at ``address`` and write it to certs/.

        ``ok``: DNS SAN = name in lower case, IP SAN = address, valid now.
        ``expired``: same names, notAfter yesterday.
        ``wrong_name``: valid now, but for another name and address.
        """
        if variant not in CERTIFICATE_VARIANTS:
            raise ValueError(
                f"unknown certificate variant {variant!r}; expected one of "
                f"{', '.join(CERTIFICATE_VARIANTS)}"
            )
        dns_name = name.lower()
        ip = ipaddress.ip_address(address)
        now = _now()
        not_before = now - datetime.timedelta(hours=1)
        not_after = now + datetime.timedelta(days=825)
        if variant == "expired":
            not_before = now - datetime.timedelta(days=400)
            not_after = now - datetime.timedelta(days=1)
        elif variant == "wrong_name":
            dns_name = f"not-{dns_name}{_WRONG_DNS_SUFFIX}"
            ip = _WRONG_IP

        key = ec.generate_private_key(ec.SECP256R1())
        ca_ski = self._ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)]))
            .issuer_name(self._ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signs_certificates=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(dns_name), x509.IPAddress(ip)]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski.value),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(self._ca_key, hashes.SHA256())
        )
        cert_dir = self.state_dir / self.CERT_DIR_NAME
        cert_dir.mkdir(exist_ok=True)
        stem = f"{name.lower()}-{address}-{variant}"
        cert_path = cert_dir / f"{stem}.pem"
        key_path = cert_dir / f"{stem}-key.pem"
        _write_key(key_path, key)
        _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return ServerCertificate(
            cert_path=cert_path,
            key_path=key_path,
            der=cert.public_bytes(serialization.Encoding.DER),
            variant=variant,
        )
