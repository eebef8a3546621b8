"""One identity provider as the gateway knows it: its discovery document
(issuer, jwks_uri, introspection_endpoint) and its signing keys.

Keys are fetched at start and kept. A token whose ``kid`` is not among them
makes the provider fetch the JWKS again, but at most once per
``refetch_interval`` seconds and one fetch at a time, whatever the traffic:
a flood of tokens with random ``kid``s costs the provider one request per
interval. A fetch that fails keeps the keys already known (the issuer being
down does not stop tokens it signed before), and a fetch that succeeds
replaces them, so a key removed from the JWKS stops working.

Providers live for the process, shared by every plugin and config version
that names the same issuer, so a reload does not refetch anything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
from jwt.algorithms import get_default_algorithms
from jwt.exceptions import InvalidKeyError

from fastgw.identity.errors import ProviderUnavailable
from fastgw.outbound import EXCHANGE_ERRORS, exchange

log = logging.getLogger("fastgw.identity")

DISCOVERY_SUFFIX = "/.well-known/openid-configuration"

# The algorithms a bearer token may use, by the kind of key each needs. No
# HMAC ("HS*": a public key would serve as its secret) and never "none".
KEY_KINDS = {
    "RS256": ("RSA", None), "RS384": ("RSA", None), "RS512": ("RSA", None),
    "PS256": ("RSA", None), "PS384": ("RSA", None), "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"), "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", None),
}
_ALGORITHMS = {name: algorithm for name, algorithm in get_default_algorithms().items()
               if name in KEY_KINDS}
# Which PyJWT object parses a JWK of each key type.
_PARSERS = {"RSA": _ALGORITHMS["RS256"], "EC": _ALGORITHMS["ES256"],
            "OKP": _ALGORITHMS["EdDSA"]}


@dataclass(frozen=True, slots=True)
class VerifyKey:
    kid: str | None
    kty: str
    crv: str | None
    alg: str | None  # the JWK's own "alg", when it names one
    key: Any  # a cryptography public key

    def serves(self, alg: str) -> bool:
        """Whether a token signed with ``alg`` may be checked with this key."""
        kind = KEY_KINDS.get(alg)
        if kind is None or kind[0] != self.kty or (kind[1] and kind[1] != self.crv):
            return False
        return self.alg is None or self.alg == alg

    def verify(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        return bool(_ALGORITHMS[alg].verify(signing_input, self.key, signature))


def parse_jwks(document: Any) -> list[VerifyKey]:
    """The signature keys of a JWKS document (encryption keys and keys of
    other types are left out); raises ValueError when it is not a JWKS."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document (no 'keys' list)")
    keys = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        parser = _PARSERS.get(str(jwk.get("kty")))
        if parser is None:
            continue
        try:
            key = parser.from_jwk(jwk)
        except (InvalidKeyError, ValueError, KeyError, TypeError):
            continue
        if hasattr(key, "public_key") and not hasattr(key, "public_numbers"):
            key = key.public_key()  # a private JWK: only its public half is used
        kid = jwk.get("kid")
        keys.append(VerifyKey(kid if isinstance(kid, str) else None, jwk["kty"],
                              jwk.get("crv"), jwk.get("alg"), key))
    return keys


def discovery_url(issuer: str) -> str:
    """Kong accepts the issuer or its discovery URL."""
    issuer = issuer.rstrip("/")
    return issuer if issuer.endswith(DISCOVERY_SUFFIX) else issuer + DISCOVERY_SUFFIX


class Provider:
    __slots__ = ("issuer_setting", "extra_jwks_uris", "verify_tls", "timeout",
                 "refetch_interval", "document", "keys", "key_ids", "fetched_at", "attempted_at",
                 "_fetching")

    def __init__(self, issuer: str | None, extra_jwks_uris: tuple[str, ...] = (),
                 verify_tls: bool = True, timeout: float = 10.0,
                 refetch_interval: float = 30.0) -> None:
        self.issuer_setting = issuer
        self.extra_jwks_uris = extra_jwks_uris
        self.verify_tls = verify_tls
        self.timeout = timeout
        self.refetch_interval = refetch_interval
        self.document: dict[str, Any] = {}
        self.keys: list[VerifyKey] = []
        # The keys by identity: a cached token is good while its key is here
        # (the cache holds the key, so its id is not reused meanwhile).
        self.key_ids: frozenset[int] = frozenset()
        self.fetched_at = 0.0  # the last fetch that succeeded
        self.attempted_at = -1e9  # the last fetch, whatever came of it
        self._fetching: asyncio.Future | None = None

    @property
    def issuer(self) -> str | None:
        """The issuer as its discovery document names it."""
        issuer = self.document.get("issuer")
        return issuer if isinstance(issuer, str) else None

    @property
    def introspection_endpoint(self) -> str | None:
        endpoint = self.document.get("introspection_endpoint")
        return endpoint if isinstance(endpoint, str) else None

    def keys_for(self, kid: str | None, alg: str) -> list[VerifyKey]:
        return [key for key in self.keys if key.kid == kid and key.serves(alg)] \
            if kid is not None else [key for key in self.keys if key.serves(alg)]

    async def ready(self) -> None:
        """Fetched at least once (or tried, within the timeout)."""
        if self.fetched_at == 0.0:
            await self.refresh()

    async def refresh(self) -> None:
        """Fetch discovery and the JWKS again, unless the last try was
        under ``refetch_interval`` ago; concurrent callers share one fetch."""
        if self._fetching is not None:
            await asyncio.shield(self._fetching)
            return
        if time.monotonic() - self.attempted_at < self.refetch_interval:
            return
        self.attempted_at = time.monotonic()
        self._fetching = asyncio.get_running_loop().create_future()
        try:
            await self._fetch()
        except ProviderUnavailable as exc:
            log.error("identity provider %s: %s; %s", self.issuer_setting or "(no issuer)",
                      exc, "keeping the keys fetched before" if self.keys else "no keys yet")
        finally:
            self._fetching.set_result(None)
            self._fetching = None

    async def _fetch(self) -> None:
        uris = list(self.extra_jwks_uris)
        document = self.document
        if self.issuer_setting:
            document = await self._get_json(discovery_url(self.issuer_setting))
            if not isinstance(document, dict):
                raise ProviderUnavailable("the discovery document is not a JSON object")
            jwks_uri = document.get("jwks_uri")
            if isinstance(jwks_uri, str):
                uris.insert(0, jwks_uri)
        keys: list[VerifyKey] = []
        for uri in uris:
            try:
                keys += parse_jwks(await self._get_json(uri))
            except ValueError as exc:
                raise ProviderUnavailable(f"{uri}: {exc}") from exc
        self.document = document
        self.keys = keys
        self.key_ids = frozenset(map(id, keys))
        self.fetched_at = time.monotonic()

    async def _get_json(self, url: str) -> Any:
        try:
            status, body = await exchange("GET", url, [("Accept", "application/json")],
                                          timeout=self.timeout, verify=self.verify_tls)
        except EXCHANGE_ERRORS as exc:
            raise ProviderUnavailable(f"{url}: {exc or type(exc).__name__}") from exc
        if status != 200:
            raise ProviderUnavailable(f"{url} answered {status}")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ProviderUnavailable(f"{url} answered something else than JSON") from exc


_PROVIDERS: dict[tuple, Provider] = {}


def provider(issuer: str | None, extra_jwks_uris: tuple[str, ...] = (), verify_tls: bool = True,
             timeout: float = 10.0, refetch_interval: float = 30.0) -> Provider:
    """The process's provider for these settings (made on first use)."""
    key = (issuer, extra_jwks_uris, verify_tls, timeout, refetch_interval)
    found = _PROVIDERS.get(key)
    if found is None:
        found = _PROVIDERS[key] = Provider(issuer, extra_jwks_uris, verify_tls, timeout,
                                           refetch_interval)
    return found
