"""A small OpenID provider on a free 127.0.0.1 port, for tests: discovery,
a JWKS whose keys can be rotated, RFC 7662 introspection and a token
endpoint (client credentials), with counters of what was asked and switches
to make it slow or down.

Tokens are signed with PyJWT over ``cryptography`` keys made at start: two
RSA keys (``rsa-1``, ``rsa-2``), one EC P-256 (``ec-1``) and one Ed25519
(``ed-1``); the JWKS publishes the ones in ``published``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

CLIENT_ID, CLIENT_SECRET = "fastgw", "fastgw-secret"
_ALGORITHMS = {"rsa-1": "RS256", "rsa-2": "RS256", "ec-1": "ES256", "ed-1": "EdDSA"}


def _public_jwk(kid: str, key: Any) -> dict[str, Any]:
    public = key.public_key()
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = json.loads(RSAAlgorithm.to_jwk(public))
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        jwk = json.loads(ECAlgorithm.to_jwk(public))
    else:
        jwk = json.loads(OKPAlgorithm.to_jwk(public))
    return {**jwk, "kid": kid, "use": "sig"}


class OIDCProvider:
    """``with OIDCProvider() as idp: idp.token(sub="alice")``."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {
            "rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "rsa-2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec-1": ec.generate_private_key(ec.SECP256R1()),
            "ed-1": ed25519.Ed25519PrivateKey.generate(),
        }
        self.published = ["rsa-1", "ec-1", "ed-1"]
        # Introspection: token -> the answer (active or not).
        self.introspected: dict[str, dict[str, Any]] = {}
        self.counts = {"discovery": 0, "jwks": 0, "introspection": 0, "token": 0}
        self.delay = 0.0  # seconds every answer waits
        self.down = False  # answer 503 to everything
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/realms/test"

    @property
    def discovery_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"

    def token(self, kid: str = "rsa-1", alg: str | None = None, lifetime: float = 300,
              headers: dict[str, Any] | None = None, **claims: Any) -> str:
        """A signed access token: ``iss`` is this provider, ``exp`` in
        ``lifetime`` seconds, unless ``claims`` say otherwise."""
        now = int(time.time())
        body = {"iss": self.issuer, "sub": "alice", "aud": "api", "iat": now,
                "exp": now + int(lifetime), "jti": uuid.uuid4().hex, **claims}
        return jwt.encode(body, self.keys[kid], algorithm=alg or _ALGORITHMS[kid],
                          headers={"kid": kid, **(headers or {})})

    def rotate(self, *published: str) -> None:
        """Publish these keys from now on (the JWKS changes, nothing else)."""
        self.published = list(published)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [_public_jwk(kid, self.keys[kid]) for kid in self.published]}

    def _discovery(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "jwks_uri": self.issuer + "/protocol/certs",
                "introspection_endpoint": self.issuer + "/protocol/introspect",
                "token_endpoint": self.issuer + "/protocol/token",
                "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"]}

    def _client_ok(self, headers: Any, form: dict[str, str]) -> bool:
        basic = headers.get("Authorization", "")
        if basic.startswith("Basic "):
            user, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            return (user, secret) == (CLIENT_ID, CLIENT_SECRET)
        return (form.get("client_id"), form.get("client_secret")) == (CLIENT_ID, CLIENT_SECRET)

    def _answer(self, method: str, path: str, headers: Any,
                body: bytes) -> tuple[int, dict[str, Any]]:
        prefix = "/realms/test"
        path = path.split("?", 1)[0].removeprefix(prefix)
        form = {name: values[0] for name, values in parse_qs(body.decode()).items()}
        if method == "GET" and path == "/.well-known/openid-configuration":
            self.counts["discovery"] += 1
            return 200, self._discovery()
        if method == "GET" and path == "/protocol/certs":
            self.counts["jwks"] += 1
            return 200, self.jwks()
        if method == "POST" and path == "/protocol/introspect":
            self.counts["introspection"] += 1
            if not self._client_ok(headers, form):
                return 401, {"error": "invalid_client"}
            return 200, self.introspected.get(form.get("token", ""), {"active": False})
        if method == "POST" and path == "/protocol/token":
            self.counts["token"] += 1
            if form.get("grant_type") != "client_credentials" or not self._client_ok(headers,
                                                                                     form):
                return 400, {"error": "invalid_grant"}
            return 200, {"access_token": self.token(sub=CLIENT_ID), "token_type": "Bearer",
                         "expires_in": 300}
        return 404, {"error": "not_found"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if provider.delay:
                    time.sleep(provider.delay)
                if provider.down:
                    status, answer = 503, {"error": "unavailable"}
                else:
                    status, answer = provider._answer(self.command, self.path, self.headers, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> OIDCProvider:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> OIDCProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
