"""Keys and certificates written in a declarative document: parsed once, at
validation, so that a file with a bad key is refused by ``fastgw check``
rather than at the first request that needs it."""

from __future__ import annotations

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_pem_public_key,
)
from jwt import PyJWK
from jwt.exceptions import PyJWKError


def jwk_error(text: str, kid: str | None) -> str | None:
    """Why a ``keys[].jwk`` string is not a usable JSON Web Key (Kong's checks)."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "could not json decode jwk string"
    if not isinstance(document, dict):
        return "could not json decode jwk string"
    if document.get("kid") != kid:
        return "kid in jwk.kid must be equal to keys.kid"
    try:
        PyJWK(document)
    except (PyJWKError, ValueError, TypeError, KeyError) as exc:
        return f"could not load JWK: {exc}"
    return None


def private_key_error(text: str) -> str | None:
    try:
        load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError) as exc:
        return f"invalid key: {_first_line(exc)}"
    return None


def public_key_error(text: str) -> str | None:
    try:
        load_pem_public_key(text.encode())
    except (ValueError, TypeError) as exc:
        return f"invalid key: {_first_line(exc)}"
    return None


def certificate_error(text: str) -> str | None:
    try:
        certificates = x509.load_pem_x509_certificates(text.encode())
    except ValueError as exc:
        return f"invalid certificate: {_first_line(exc)}"
    if not certificates:
        return "invalid certificate: no PEM certificate found"
    return None


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def pair_error(cert: str, key: str) -> str | None:
    """Whether a PEM certificate (its first one: the leaf) and a PEM private
    key belong together; both parse (checked separately)."""
    try:
        leaf = x509.load_pem_x509_certificates(cert.encode())[0]
        private = load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError, IndexError):
        return None  # the fields' own checks report it
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.PEM
    if leaf.public_key().public_bytes(encoding, public) != \
            private.public_key().public_bytes(encoding, public):
        return "does not match key"
    return None


def single_certificate_error(text: str) -> str | None:
    message = certificate_error(text)
    if message is None and text.count("-----BEGIN CERTIFICATE-----") > 1:
        return "please submit only one certificate at a time"
    return message
