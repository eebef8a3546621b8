"""Consumers and signing keys for the jwt tests; handlers and configs come
from tests/plugins/conftest.py.

Key pairs are generated once per test session; the consumers hold the public
halves, ``sign`` uses the private ones.
"""

import base64

import jwt as pyjwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

# Long enough for HS512 (RFC 7518 section 3.2 wants a key as long as the hash).
HS_SECRET = "alice-shared-secret-" * 4
RAW_SECRET = b"\x00\xffbinary secret\xfe" * 2
ODD_SECRET = "not*base64*" * 3


def _pem_pair(private_key) -> tuple[bytes, str]:
    private = private_key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    public = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public.decode()


@pytest.fixture(scope="session")
def key_pairs():
    """algorithm -> (private PEM, public PEM)."""
    rsa_pair = _pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return {
        "RS256": rsa_pair,
        "PS256": rsa_pair,
        "ES256": _pem_pair(ec.generate_private_key(ec.SECP256R1())),
        "EdDSA": _pem_pair(ed25519.Ed25519PrivateKey.generate()),
    }


@pytest.fixture(scope="session")
def consumers(key_pairs):
    asymmetric = [
        {"username": f"user-{algorithm.lower()}", "jwt_secrets": [
            {"key": f"{algorithm.lower()}-issuer", "algorithm": algorithm,
             "rsa_public_key": public}]}
        for algorithm, (_, public) in key_pairs.items()
    ]
    return [
        {"username": "alice", "custom_id": "alice-crm", "jwt_secrets": [
            {"key": "alice-issuer", "secret": HS_SECRET},
            {"key": "alice-hs512", "algorithm": "HS512", "secret": HS_SECRET}]},
        {"username": "binary", "jwt_secrets": [
            {"key": "binary-issuer",
             "secret": base64.urlsafe_b64encode(RAW_SECRET).decode().rstrip("=")}]},
        {"username": "anonymous"},
        {"username": "odd", "jwt_secrets": [
            {"key": "odd-issuer", "secret": ODD_SECRET},
            {"key": "broken-issuer", "algorithm": "RS256", "rsa_public_key": "not a PEM"}]},
        *asymmetric,
    ]


@pytest.fixture
def secrets():
    """Secrets of the HMAC credentials, as signing keys."""
    return {"binary-issuer": RAW_SECRET, "odd-issuer": ODD_SECRET}


@pytest.fixture
def plugin_name():
    return "jwt"


@pytest.fixture
def jwt_auth(handler):
    """A jwt handler for a config (defaults filled by the real loader)."""
    return handler


@pytest.fixture
def sign(key_pairs):
    """A compact JWS of ``claims``; the key follows the algorithm."""

    def encode(claims: dict, algorithm: str = "HS256", key=None, headers=None) -> str:
        if key is None:
            key = HS_SECRET if algorithm.startswith("HS") else key_pairs[algorithm][0]
        # PyJWS rather than jwt.encode: the latter refuses some bad claims
        # (a numeric iss) that the plugin must be shown.
        return pyjwt.PyJWS().encode(orjson.dumps(claims), key, algorithm, headers=headers)

    return encode
