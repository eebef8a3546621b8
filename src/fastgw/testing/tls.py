"""A throw-away certificate authority for tests and benchmarks: it issues
server and client certificates (EC P-256, valid for two days) as PEM files
in a folder."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: Any, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


class CA:
    """``CA(folder)``: its certificate is ``path``; ``issue`` writes a
    certificate and its key beside it, named after the CN. With ``issuer``,
    an intermediate CA that ``issuer`` signed (else a root)."""

    def __init__(self, directory: Path, cn: str = "fastgw test CA",
                 issuer: CA | None = None) -> None:
        self.dir = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        signer = issuer.key if issuer is not None else self.key
        self.cert: x509.Certificate = (x509.CertificateBuilder().subject_name(_name(cn))
                     .issuer_name(issuer.cert.subject if issuer is not None else _name(cn))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(signer, hashes.SHA256()))
        self.path = directory / f"{cn.replace(' ', '_')}.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, cn: str, names: Sequence[str] = (), client: bool = False) -> tuple[str, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=2)))
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH if client else \
            x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path = self.dir / f"{cn}.crt"
        key_path = self.dir / f"{cn}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        return str(cert_path), str(key_path)
