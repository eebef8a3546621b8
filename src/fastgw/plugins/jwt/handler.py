"""jwt: the consumer is the owner of the jwt secret that signed the token.

The token is looked for in the configured query arguments, cookies and
``Bearer`` headers; finding none answers 401 ``Unauthorized``, finding two
different ones answers ``Multiple tokens provided``. The claim named by
``key_claim_name`` (``iss`` by default, else the token header's field of that
name) selects a consumer's ``jwt_secrets`` entry, whose algorithm the token
must use and whose secret or public key must verify its signature. Then the
claims in ``claims_to_verify`` and ``maximum_expiration`` are checked; their
failures answer a JSON object naming each failing claim, as Kong does.

Signatures are checked by the stdlib's HMAC (HS*) and by PyJWT's algorithm
objects over ``cryptography`` (RS*, PS*, ES*, EdDSA). Parsed public keys are
cached per config version, because parsing a PEM costs far more than
verifying with it.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import time
from base64 import b64decode
from typing import Any, TypeGuard

import orjson
from jwt.algorithms import get_default_algorithms
from jwt.exceptions import InvalidKeyError

from fastgw.config.checks import JWT_ALGORITHMS
from fastgw.plugins.base import PluginError
from fastgw.plugins.context import RequestContext
from fastgw.plugins.credentials import CredentialPlugin, challenge
from fastgw.plugins.state import ConfigState

_BEARER = re.compile(r"\s*[Bb]earer\s+(.+)")
_HMAC_DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_PUBLIC_KEY_ALGORITHMS = {name: algorithm for name, algorithm in get_default_algorithms().items()
                          if name in JWT_ALGORITHMS and name not in _HMAC_DIGESTS}
_SUPPORTED = frozenset(JWT_ALGORITHMS)


class BadToken(Exception):
    """A token that cannot be parsed; the message is Kong's reason."""


def base64url_decode(text: str) -> bytes | None:
    """Kong's lenient decoding: padding optional, either base64 alphabet."""
    padded = text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)
    try:
        return b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _json_object(part: str) -> dict | None:
    decoded = base64url_decode(part)
    if decoded is None:
        return None
    try:
        value = orjson.loads(decoded)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


class Token:
    """A parsed, not yet verified, compact JWS."""

    __slots__ = ("text", "header", "claims", "signature", "signing_input")

    def __init__(self, text: str) -> None:
        parts = text.split(".", 2)
        if len(parts) != 3:
            raise BadToken("invalid JSON")
        header_64, claims_64, signature_64 = parts
        header = _json_object(header_64)
        if header is None:
            raise BadToken("invalid JSON")
        alg = header.get("alg")
        if type(alg) is not str or alg not in _SUPPORTED:
            raise BadToken("invalid alg")
        claims = _json_object(claims_64)
        if claims is None:
            raise BadToken("invalid claims")
        signature = base64url_decode(signature_64)
        if signature is None:
            raise BadToken("invalid signature")
        self.text = text
        self.header = header
        self.claims = claims
        self.signature = signature
        self.signing_input = f"{header_64}.{claims_64}".encode("latin-1")


def _is_number(value: Any) -> TypeGuard[float]:
    kind = type(value)
    return kind is int or kind is float


def claim_errors(claims: dict, claims_to_verify: tuple[str, ...], maximum_expiration: float,
                 now: int) -> dict[str, str]:
    """Kong's checks of the registered claims, by claim name."""
    errors: dict[str, str] = {}
    for name in claims_to_verify:
        value = claims.get(name)
        if not _is_number(value):
            errors[name] = "must be a number"
        elif name == "exp" and value <= now:
            errors[name] = "token expired"
        elif name == "nbf" and value > now:
            errors[name] = "token not valid yet"
    if not errors and maximum_expiration > 0:
        exp = claims.get("exp")
        if not _is_number(exp) or exp - now > maximum_expiration:
            errors["exp"] = "exceeds maximum allowed expiration"
    return errors


class Jwt(CredentialPlugin):
    name = "jwt"
    PRIORITY = 1450

    __slots__ = ("uri_param_names", "cookie_names", "header_names", "credential_headers",
                 "key_claim_name",
                 "secret_is_base64", "claims_to_verify", "maximum_expiration",
                 "www_authenticate", "www_authenticate_invalid", "keys")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.uri_param_names = tuple(config["uri_param_names"])
        self.cookie_names = frozenset(config["cookie_names"])
        self.header_names = tuple(config["header_names"])
        self.credential_headers = frozenset(name.lower().encode("latin-1")
                                            for name in self.header_names)
        self.key_claim_name = config["key_claim_name"]
        self.secret_is_base64 = config["secret_is_base64"]
        self.claims_to_verify = tuple(config["claims_to_verify"] or ())
        self.maximum_expiration = config["maximum_expiration"]
        self.www_authenticate = challenge("Bearer", config["realm"])
        # RFC 6750 section 3.1: a token was sent but is not acceptable.
        self.www_authenticate_invalid = self.www_authenticate + ' error="invalid_token"'
        # (credential key, secret_is_base64) -> verification key, per config version.
        self.keys: dict[tuple[str, bool], Any] = state.shared.setdefault("jwt", {})

    def access(self, ctx: RequestContext) -> None:
        ctx.note_credentials(self.credential_headers)
        if self.skips(ctx):
            return
        tokens = self._tokens(ctx)
        if not tokens:
            self.reject(ctx, 401, {"message": "Unauthorized"}, self.www_authenticate)
            return
        if len(tokens) > 1:
            self._invalid(ctx, "Multiple tokens provided")
            return
        try:
            token = Token(tokens[0])
        except BadToken as exc:
            self._invalid(ctx, f"Bad token; {exc}")
            return
        claim_name = self.key_claim_name
        secret_key = token.claims.get(claim_name)
        if secret_key is None or secret_key is False:  # Lua's `or` falls through both
            secret_key = token.header.get(claim_name)
        if secret_key is None or secret_key is False:
            self._invalid(ctx, f"No mandatory '{claim_name}' in claims")
            return
        if secret_key == "":
            self._invalid(ctx, f"Invalid '{claim_name}' in claims")
            return
        found = self.state.jwt.get(secret_key) if type(secret_key) is str else None
        if found is None:
            self._invalid(ctx, f"No credentials found for given '{claim_name}'")
            return
        consumer, credential = found
        algorithm = credential.get("algorithm") or "HS256"
        if token.header["alg"] != algorithm:
            self._invalid(ctx, "Invalid algorithm")
            return
        key = self._verification_key(credential, algorithm)
        if key is None:
            self._invalid(ctx, "Invalid key/secret")
            return
        if not _signature_matches(token, algorithm, key):
            self._invalid(ctx, "Invalid signature")
            return
        errors = claim_errors(token.claims, self.claims_to_verify, self.maximum_expiration,
                              int(time.time()))
        if errors:
            self.reject(ctx, 401, errors, self.www_authenticate_invalid)
            return
        ctx.authenticate(consumer, credential, credential["key"])
        # Where Kong leaves the token for later plugins (kong.ctx.shared).
        ctx.shared["authenticated_jwt_token"] = token.text

    def _invalid(self, ctx: RequestContext, message: str) -> None:
        self.reject(ctx, 401, {"message": message}, self.www_authenticate_invalid)

    def _tokens(self, ctx: RequestContext) -> list[str]:
        """Every distinct non-empty token the request carries, in Kong's
        order: query arguments, cookies, then headers."""
        request = ctx.request
        found: dict[str, None] = {}
        if self.uri_param_names and request.query_string:
            query = request.query()
            for name in self.uri_param_names:
                for value in query.get(name, ()):
                    if value:
                        found[value] = None
        headers = request.headers
        if self.cookie_names:
            for value in _cookies(headers.get_all("cookie"), self.cookie_names):
                found[value] = None
        for name in self.header_names:
            header_value = headers.get(name)
            if header_value is not None:
                bearer = _BEARER.search(header_value)
                if bearer is not None:
                    found[bearer.group(1)] = None
        return list(found)

    def _verification_key(self, credential: dict[str, Any], algorithm: str) -> Any:
        """The credential's HMAC secret (bytes) or parsed public key, or None
        when ``secret_is_base64`` is set and the secret is not base64."""
        cache_key = (credential["key"], self.secret_is_base64)
        if cache_key in self.keys:
            return self.keys[cache_key]
        hmac_secret = algorithm in _HMAC_DIGESTS
        material = credential["secret"] if hmac_secret else credential["rsa_public_key"]
        if material is None:
            key = None
        elif self.secret_is_base64:
            key = base64url_decode(material)
        else:
            key = material.encode()
        if key is not None and not hmac_secret:
            try:
                key = _PUBLIC_KEY_ALGORITHMS[algorithm].prepare_key(key)
            except (InvalidKeyError, ValueError, TypeError) as exc:
                # Kong also fails the request (500) on an unusable public key.
                raise PluginError(
                    f"jwt: the public key of jwt credential '{credential['key']}' is invalid: "
                    f"{exc}"
                ) from None
        self.keys[cache_key] = key
        return key


def _signature_matches(token: Token, algorithm: str, key: Any) -> bool:
    digest = _HMAC_DIGESTS.get(algorithm)
    if digest is not None:
        expected = hmac.new(key, token.signing_input, digest).digest()
        return hmac.compare_digest(expected, token.signature)
    return _PUBLIC_KEY_ALGORITHMS[algorithm].verify(token.signing_input, key, token.signature)


def _cookies(header_values: list[str], names: frozenset[str]) -> list[str]:
    """Non-empty values of the wanted cookies, first occurrence of each name."""
    values: dict[str, str] = {}
    for header in header_values:
        for pair in header.split(";"):
            name, sep, value = pair.partition("=")
            name = name.strip()
            if sep and name in names and name not in values:
                value = value.strip()
                if value:
                    values[name] = value
    return list(values.values())


HANDLER = Jwt
