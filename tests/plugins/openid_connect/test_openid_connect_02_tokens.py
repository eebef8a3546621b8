"""The identity module against a real provider on loopback: which JWTs
pass, key rotation and its rate limit, the provider down, introspection."""

import asyncio
import base64
import hashlib
import hmac
import time

import jwt as pyjwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization

from fastgw.identity.errors import ProviderUnavailable, TokenRefused
from fastgw.identity.introspection import Introspector
from fastgw.identity.provider import Provider
from fastgw.identity.tokens import BearerVerifier, TokenPolicy
from fastgw.testing.oidc_provider import CLIENT_ID, CLIENT_SECRET


def verifier(idp, refetch_interval=30.0, **policy) -> BearerVerifier:
    provider = Provider(idp.issuer, timeout=2.0, refetch_interval=refetch_interval)
    return BearerVerifier(provider, TokenPolicy(**policy), cache_ttl=60)


def check(v: BearerVerifier, token: str):
    return asyncio.run(v.verify(token))


def refused(v: BearerVerifier, token: str) -> TokenRefused:
    with pytest.raises(TokenRefused) as caught:
        check(v, token)
    return caught.value


@pytest.mark.parametrize(("kid", "alg"), [
    ("rsa-1", "RS256"), ("rsa-1", "RS512"), ("rsa-1", "PS256"), ("rsa-1", "PS384"),
    ("ec-1", "ES256"), ("ed-1", "EdDSA"),
])
def test_tokens_signed_by_a_published_key_pass(idp, kid, alg):
    claims = check(verifier(idp), idp.token(kid=kid, alg=alg, sub="alice"))
    assert claims["sub"] == "alice" and claims["iss"] == idp.issuer


def _unsigned(claims: dict, header: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()
    return f"{part(header)}.{part(claims)}."


def test_dangerous_tokens_are_refused(idp):
    v = verifier(idp)
    claims = {"iss": idp.issuer, "sub": "mallory", "exp": time.time() + 60}
    assert "algorithm 'none'" in str(refused(v, _unsigned(claims, {"alg": "none",
                                                                    "kid": "rsa-1"})))
    # HS256 keyed with the RSA public key (the classic confusion attack).
    public_pem = idp.keys["rsa-1"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    unsigned = _unsigned(claims, {"alg": "HS256", "kid": "rsa-1"})[:-1]
    mac = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
    forged = unsigned + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert "algorithm 'HS256'" in str(refused(v, forged))
    for name in ("jku", "x5u"):
        token = idp.token(headers={name: "http://127.0.0.1:1/keys"})
        assert f"names its own key ({name})" in str(refused(v, token))
    # No kid: an RSA token has only one RSA key to be checked with, but after
    # a second one is published it could be either.
    no_kid = pyjwt.encode({**claims, "sub": "x"}, idp.keys["rsa-1"], algorithm="RS256")
    assert check(v, no_kid)["sub"] == "x"
    idp.rotate("rsa-1", "rsa-2", "ec-1", "ed-1")
    try:
        v2 = verifier(idp)
        assert "several keys" in str(refused(v2, no_kid))
    finally:
        idp.rotate("rsa-1", "ec-1", "ed-1")
    assert "bad signature" in str(refused(v, idp.token(kid="rsa-1")[:-4] + "AAAA"))


def test_time_issuer_audience_and_scopes(idp):
    now = time.time()
    v = verifier(idp, leeway=30)
    assert check(v, idp.token(exp=int(now) - 10))  # within the leeway
    assert "expired" in str(refused(v, idp.token(exp=int(now) - 60)))
    assert "not valid yet" in str(refused(v, idp.token(nbf=int(now) + 60)))
    assert "issuer" in str(refused(v, idp.token(iss="https://evil.example")))
    allowed = verifier(idp, issuers_allowed=("https://other.example",))
    assert check(allowed, idp.token(iss="https://other.example"))
    audience = verifier(idp, audience_required=("api", "other"))
    assert check(audience, idp.token(aud=["x", "other"]))
    assert "audience" in str(refused(audience, idp.token(aud="web")))
    nested = verifier(idp, scopes_required=("read write", "admin"),
                      scopes_claim=("realm_access", "scopes"))
    assert check(nested, idp.token(realm_access={"scopes": ["write", "read"]}))
    assert check(nested, idp.token(realm_access={"scopes": "admin"}))
    lacking = refused(nested, idp.token(realm_access={"scopes": "read"}))
    assert (lacking.status, lacking.error) == (403, "insufficient_scope")


def test_rotation_refetches_once_per_interval_and_removed_keys_stop(idp):
    v = verifier(idp, refetch_interval=1.0)
    check(v, idp.token(kid="rsa-1"))
    fetches = idp.counts["jwks"]
    new = idp.token(kid="rsa-2")
    assert "no key 'rsa-2'" in str(refused(v, new))
    assert idp.counts["jwks"] == fetches  # fetched at start: under the interval

    async def flood():
        return await asyncio.gather(*(v.verify(idp.token(headers={"kid": f"random-{n}"}))
                                      for n in range(200)), return_exceptions=True)

    time.sleep(1.05)
    answers = asyncio.run(flood())
    assert all(isinstance(answer, TokenRefused) for answer in answers)
    assert idp.counts["jwks"] == fetches + 1  # 200 unknown kids, one fetch
    idp.rotate("rsa-2")
    try:
        time.sleep(1.05)
        old = idp.token(kid="rsa-1", sub="cached")
        # A key removed from the JWKS stops working once the JWKS is fetched
        # again, even for a token that passed before.
        assert check(v, new)["sub"] == "alice"  # unknown kid: refetched, rsa-2 is there
        assert "no key 'rsa-1'" in str(refused(v, old))
    finally:
        idp.rotate("rsa-1", "ec-1", "ed-1")


def test_the_provider_down_keeps_the_keys_and_a_new_one_is_unavailable(idp):
    v = verifier(idp, refetch_interval=0.0)
    check(v, idp.token(kid="rsa-1"))
    idp.down = True
    try:
        assert check(v, idp.token(kid="rsa-1", sub="later"))["sub"] == "later"
        fresh = verifier(idp)
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable):
            check(fresh, idp.token(kid="rsa-1"))
        assert time.monotonic() - started < 2.5
    finally:
        idp.down = False


def test_repeated_tokens_are_served_from_the_cache(idp):
    v = verifier(idp)
    token = idp.token(kid="ec-1", alg="ES256")
    check(v, token)
    assert len(v.cache.entries) == 1
    assert check(v, token) is check(v, token)


def introspector(idp, **options) -> Introspector:
    return Introspector(idp.issuer + "/protocol/introspect", CLIENT_ID, CLIENT_SECRET,
                        timeout=2.0, **options)


def test_introspection_active_inactive_cached_and_shared(idp):
    idp.introspected["opaque-1"] = {"active": True, "sub": "bob", "scope": "read",
                                    "exp": int(time.time()) + 300}
    i = introspector(idp)
    before = idp.counts["introspection"]

    async def together():
        return await asyncio.gather(*(i.introspect("opaque-1") for _ in range(20)))

    answers = asyncio.run(together())
    assert {answer["sub"] for answer in answers} == {"bob"}
    assert idp.counts["introspection"] == before + 1  # 20 concurrent calls, one request
    asyncio.run(i.introspect("opaque-1"))
    assert idp.counts["introspection"] == before + 1  # cached
    with pytest.raises(TokenRefused):
        asyncio.run(i.introspect("opaque-unknown"))
    post = introspector(idp, client_auth="client_secret_post")
    assert asyncio.run(post.introspect("opaque-1"))["sub"] == "bob"
    # Never cached past the token's own exp.
    idp.introspected["short"] = {"active": True, "exp": int(time.time()) + 1}
    asyncio.run(i.introspect("short"))
    idp.introspected["short"] = {"active": False}
    time.sleep(1.1)
    with pytest.raises(TokenRefused):
        asyncio.run(i.introspect("short"))
    wrong = Introspector(idp.issuer + "/protocol/introspect", CLIENT_ID, "wrong", timeout=2.0)
    with pytest.raises(ProviderUnavailable, match="answered 401"):
        asyncio.run(wrong.introspect("opaque-1"))
