"""Bearer JWTs: signature by the key the token's ``kid`` names, then the
policy's claims (issuer, time, audience, scopes).

Refused whatever the policy: ``alg: none`` and the HMAC algorithms (a
public key must never serve as a shared secret), a header that points at
its own key (``jku``, ``x5u``, ``jwk``, ``x5c``: the token would choose who
vouches for it), and a token without ``kid`` when more than one key could
have signed it.

Checked tokens are cached by a hash of the token, bounded, until the first
of their ``exp`` and ``cache_ttl``: a repeated token costs a lookup.
"""

from __future__ import annotations

import binascii
import time
from base64 import urlsafe_b64decode
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import xxhash

from fastgw.identity.errors import ProviderUnavailable, TokenRefused
from fastgw.identity.provider import KEY_KINDS, Provider, VerifyKey

_SELF_KEYED = ("jku", "x5u", "jwk", "x5c")


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """What a token must say, in Kong's openid-connect terms."""

    issuers_allowed: tuple[str, ...] = ()  # empty: the provider's own issuer
    audience_required: tuple[str, ...] = ()
    audience_claim: tuple[str, ...] = ("aud",)
    scopes_required: tuple[str, ...] = ()  # each: space-separated scopes, all needed
    scopes_claim: tuple[str, ...] = ("scope",)
    leeway: float = 0.0
    verify_claims: bool = True
    verify_signature: bool = True


def claim(claims: dict[str, Any], path: Sequence[str]) -> Any:
    """The value at ``path`` (Kong's nested claim names), or None."""
    value: Any = claims
    for name in path:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def _words(value: Any) -> list[str]:
    """A claim as a list of strings: a JSON list, or a space-separated string."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def check_claims(claims: dict[str, Any], policy: TokenPolicy, issuer: str | None,
                 now: float, issuer_required: bool = True) -> None:
    """Raise ``TokenRefused`` unless ``claims`` satisfy ``policy``; without
    ``issuer_required``, claims without ``iss`` pass the issuer check."""
    if policy.verify_claims:
        leeway = policy.leeway
        exp = claims.get("exp")
        if exp is not None and (not isinstance(exp, (int, float)) or now > exp + leeway):
            raise TokenRefused("the token has expired")
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, (int, float)) or now < nbf - leeway):
            raise TokenRefused("the token is not valid yet (nbf)")
        iat = claims.get("iat")
        if iat is not None and not isinstance(iat, (int, float)):
            raise TokenRefused("the token's iat is not a number")
        allowed = policy.issuers_allowed or ((issuer,) if issuer else ())
        if allowed and claims.get("iss") not in allowed and (
                issuer_required or "iss" in claims):
            raise TokenRefused(f"issuer {claims.get('iss')!r} is not allowed")
    if policy.audience_required:
        audiences = claim(claims, policy.audience_claim)
        audiences = [audiences] if isinstance(audiences, str) else _words(audiences)
        if not any(audience in audiences for audience in policy.audience_required):
            raise TokenRefused("the token is not for a required audience")
    if policy.scopes_required:
        granted = set(_words(claim(claims, policy.scopes_claim)))
        if not any(set(needed.split()) <= granted for needed in policy.scopes_required):
            raise TokenRefused("the token lacks a required scope", 403, "insufficient_scope")


def _b64(part: str) -> bytes:
    try:
        return urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenRefused("malformed token (base64url)") from exc


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


class TokenCache:
    """Checked tokens by a hash of the token, each until its expiry;
    the oldest go first past ``max_entries``."""

    __slots__ = ("entries", "max_entries")

    def __init__(self, max_entries: int = 10000) -> None:
        self.entries: OrderedDict[bytes, tuple[float, Any]] = OrderedDict()
        self.max_entries = max_entries

    @staticmethod
    def key(token: str) -> bytes:
        return xxhash.xxh3_128_digest(token.encode())

    def get(self, key: bytes, now: float) -> Any:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if now >= entry[0]:
            del self.entries[key]
            return None
        return entry[1]

    def put(self, key: bytes, value: Any, until: float) -> None:
        self.entries[key] = (until, value)
        if len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)


class BearerVerifier:
    """Checks bearer JWTs for one plugin config."""

    __slots__ = ("provider", "policy", "cache", "cache_ttl")

    def __init__(self, provider: Provider, policy: TokenPolicy, cache_ttl: float,
                 max_entries: int = 10000) -> None:
        self.provider = provider
        self.policy = policy
        self.cache = TokenCache(max_entries)
        self.cache_ttl = cache_ttl

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; raises ``TokenRefused`` or
        ``ProviderUnavailable`` (no key known and the provider down)."""
        now = time.time()
        key = TokenCache.key(token)
        cached = self.cache.get(key, now)
        # A token stays good while the key that signed it is published.
        if cached is not None and (cached[1] is None or id(cached[1]) in self.provider.key_ids):
            return cached[0]
        claims, signer = await self._check(token, now)
        exp = claims.get("exp")
        until = now + self.cache_ttl
        if isinstance(exp, (int, float)):
            until = min(until, exp + (self.policy.leeway if self.policy.verify_claims else 0))
        self.cache.put(key, (claims, signer), until)
        return claims

    async def _check(self, token: str, now: float) -> tuple[dict[str, Any], VerifyKey | None]:
        header_part, payload_part, signature_part = token.split(".")
        try:
            header = orjson.loads(_b64(header_part))
            claims = orjson.loads(_b64(payload_part))
        except orjson.JSONDecodeError as exc:
            raise TokenRefused("malformed token (JSON)") from exc
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise TokenRefused("malformed token (not JSON objects)")
        alg = header.get("alg")
        if alg not in KEY_KINDS:
            raise TokenRefused(f"algorithm {alg!r} is not accepted")
        for name in _SELF_KEYED:
            if name in header:
                raise TokenRefused(f"the token names its own key ({name})")
        signer = None
        if self.policy.verify_signature:
            signer = await self._verify_signature(header, alg, token, signature_part)
        check_claims(claims, self.policy, self.provider.issuer, now)
        return claims, signer

    async def _verify_signature(self, header: dict[str, Any], alg: str, token: str,
                                signature_part: str) -> VerifyKey:
        """The key that signed the token."""
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenRefused("the token's kid is not a string")
        provider = self.provider
        await provider.ready()
        candidates = provider.keys_for(kid, alg)
        if not candidates and kid is not None:
            # A new key may have been published: ask again (rate-limited).
            await provider.refresh()
            candidates = provider.keys_for(kid, alg)
        if not candidates:
            if not provider.keys:
                raise ProviderUnavailable("no signing keys from the identity provider")
            raise TokenRefused(f"no key {kid!r} for {alg}" if kid else f"no key for {alg}")
        if kid is None and len(candidates) > 1:
            raise TokenRefused("the token has no kid and several keys could have signed it")
        signing_input = token[:token.rindex(".")].encode()
        if not candidates[0].verify(alg, signing_input, _b64(signature_part)):
            raise TokenRefused("bad signature")
        return candidates[0]
