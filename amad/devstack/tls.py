"""A throw-away certificate authority for the local SeaweedFS stack's gRPC ports.

SeaweedFS protects its gRPC ports (master, volume, filer, S3, admin) only with mutual TLS: each
server presents a certificate signed by the CA in ``security.toml`` and accepts only clients that
present one too. ``weed mini`` talks to itself over those ports, so every component and its
internal clients share one leaf certificate here. ``write_grpc_tls`` makes a fresh CA and leaf
(for ``127.0.0.1``/``localhost``) on every stack start, all files 0600 in the private config
folder; the CA key is discarded, so no one can mint a second client certificate later.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

COMMON_NAME = "amad-seaweed"
GRPC_SECTIONS = ("master", "volume", "filer", "s3", "admin", "worker", "client")
_VALID_FOR = dt.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the PEM files one stack's gRPC servers and clients use."""

    ca: Path
    cert: Path
    key: Path

    def security_sections(self) -> str:
        """The ``[grpc]`` sections of ``security.toml`` that turn on mutual TLS everywhere."""
        body = f'[grpc]\nca = "{self.ca}"\n\n'
        for name in GRPC_SECTIONS:
            body += f'[grpc.{name}]\ncert = "{self.cert}"\nkey = "{self.key}"\n'
            if name != "client":
                body += f'allowed_commonNames = "{COMMON_NAME}"\n'
            body += "\n"
        return body


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(
    subject: str, issuer: str, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALID_FOR)
    )


def make_ca_and_leaf() -> tuple[bytes, bytes, bytes]:
    """PEM bytes of a fresh CA certificate, a leaf certificate it signed, and the leaf's key."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        _builder("amad local stack CA", "amad local stack CA", ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    usage = x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    leaf_cert = (
        _builder(COMMON_NAME, "amad local stack CA", leaf_key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(san, critical=False)
        .add_extension(usage, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pem = serialization.Encoding.PEM
    return ca_cert.public_bytes(pem), leaf_cert.public_bytes(pem), key_pem


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only the owner can read (0600 from the first byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def write_grpc_tls(folder: Path) -> TlsFiles:
    """Write a fresh CA certificate, leaf certificate and leaf key into ``folder``, each 0600."""
    files = TlsFiles(folder / "grpc-ca.crt", folder / "grpc.crt", folder / "grpc.key")
    ca, cert, key = make_ca_and_leaf()
    for path, data in ((files.ca, ca), (files.cert, cert), (files.key, key)):
        write_private(path, data.decode())
    return files
