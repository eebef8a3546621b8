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
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import xxhash

from fastgw.identity.errors import ProviderUnavailable, TokenRefused
from fastgw.identity.provider import KEY_KINDS, Provider, VerifyKey

_SELF_KEYED = ("jku", "x5u", "jwk", "x5c")
_MAX_HEADERS = 256


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


_URL_ALPHABET = bytes.maketrans(b"-_", b"+/")


def _b64(part: str) -> bytes:
    # PERF: binascii directly (urlsafe_b64decode costs three calls more), and
    # bytes.translate (a table lookup, where str.translate with a dict costs
    # some 4 µs for a token's claims). A character outside the alphabet is
    # skipped, as binascii does: harmless, since the signature covers the
    # segments as sent.
    try:
        data = part.encode("ascii").translate(_URL_ALPHABET)
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise TokenRefused("malformed token (base64url)") from exc


def _json_object(part: str, what: str) -> dict[str, Any]:
    """A token segment's JSON object; TokenRefused when it is not one."""
    try:
        value = orjson.loads(_b64(part))
    except orjson.JSONDecodeError as exc:
        raise TokenRefused(f"malformed token ({what}: not JSON)") from exc
    if not isinstance(value, dict):
        raise TokenRefused(f"malformed token ({what}: not a JSON object)")
    return value


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

    __slots__ = ("provider", "policy", "cache", "cache_ttl", "headers")

    def __init__(self, provider: Provider, policy: TokenPolicy, cache_ttl: float,
                 max_entries: int = 10000) -> None:
        self.provider = provider
        self.policy = policy
        self.cache = TokenCache(max_entries)
        self.cache_ttl = cache_ttl
        # Header segments already read (an issuer's tokens share a few):
        # segment -> (header, alg), only for headers that passed the checks.
        self.headers: dict[str, tuple[dict[str, Any], str]] = {}

    def check_now(self, token: str, fetched: bool = False) -> dict[str, Any] | None:
        """The token's claims, from the cache or checked now; None when the
        keys must be fetched first (none yet, or an unknown ``kid``) unless
        ``fetched`` says they just were. Raises ``TokenRefused``, or
        ``ProviderUnavailable`` when no key is known at all after a fetch.
        Synchronous: the common case costs no task."""
        now = time.time()
        key = TokenCache.key(token)
        cached = self.cache.get(key, now)
        # A token stays good while the key that signed it is published.
        if cached is not None and (cached[1] is None or id(cached[1]) in self.provider.key_ids):
            return cached[0]
        checked = self._check(token, now, fetched)
        if checked is None:
            return None
        claims, signer = checked
        exp = claims.get("exp")
        until = now + self.cache_ttl
        if isinstance(exp, (int, float)):
            until = min(until, exp + (self.policy.leeway if self.policy.verify_claims else 0))
        self.cache.put(key, (claims, signer), until)
        return claims

    def standing(self, token: str) -> tuple[float, VerifyKey | None] | None:
        """Until when (time.time()) a checked token stands, and the key that
        signed it (it stands only while that key is published)."""
        entry = self.cache.entries.get(TokenCache.key(token))
        return None if entry is None else (entry[0], entry[1][1])

    async def verify(self, token: str) -> dict[str, Any]:
        """``check_now``, fetching the provider's keys when it needs them
        (at most once per ``refetch_interval``)."""
        claims = self.check_now(token)
        if claims is not None:
            return claims
        provider = self.provider
        await (provider.ready() if provider.fetched_at == 0.0 else provider.refresh())
        claims = self.check_now(token, fetched=True)
        assert claims is not None  # with fetched, a missing key is an error
        return claims

    def _check(self, token: str, now: float,
               fetched: bool) -> tuple[dict[str, Any], VerifyKey | None] | None:
        header_part, payload_part, signature_part = token.split(".")
        known = self.headers.get(header_part)
        if known is None:
            known = self._header(header_part)
        header, alg = known
        claims = _json_object(payload_part, "claims")
        signer = None
        if self.policy.verify_signature:
            signer = self._signer(header, alg, fetched)
            if signer is None:
                return None
            signing_input = token[:token.rindex(".")].encode()
            if not signer.verify(alg, signing_input, _b64(signature_part)):
                raise TokenRefused("bad signature")
        check_claims(claims, self.policy, self.provider.issuer, now)
        return claims, signer

    def _header(self, part: str) -> tuple[dict[str, Any], str]:
        header = _json_object(part, "header")
        alg = header.get("alg")
        if alg not in KEY_KINDS:
            raise TokenRefused(f"algorithm {alg!r} is not accepted")
        for name in _SELF_KEYED:
            if name in header:
                raise TokenRefused(f"the token names its own key ({name})")
        if len(self.headers) >= _MAX_HEADERS:
            self.headers.clear()
        self.headers[part] = (header, alg)
        return header, alg

    def _signer(self, header: dict[str, Any], alg: str, fetched: bool) -> VerifyKey | None:
        """The key the token names; None when fetching the keys could find it."""
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenRefused("the token's kid is not a string")
        provider = self.provider
        candidates = provider.keys_for(kid, alg)
        if not candidates:
            # No keys yet, or a new key may have been published: ask again.
            if not fetched and (not provider.keys or kid is not None):
                return None
            if not provider.keys:
                raise ProviderUnavailable("no signing keys from the identity provider")
            raise TokenRefused(f"no key {kid!r} for {alg}" if kid else f"no key for {alg}")
        if kid is None and len(candidates) > 1:
            raise TokenRefused("the token has no kid and several keys could have signed it")
        return candidates[0]
