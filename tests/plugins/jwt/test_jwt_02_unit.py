"""jwt handler on unit contexts: where tokens are found, every algorithm,
Kong's answer for each failure, claims checks and the anonymous fallback."""

import base64
import time

import orjson
import pytest

from fastgw.plugins.base import PluginError
from fastgw.plugins.context import make_context


class Since:
    """A time claim ``offset`` seconds from when the token is signed (a
    parameter list is built at collection, possibly minutes earlier)."""

    def __init__(self, offset: float) -> None:
        self.offset = offset


def at_signing(claims: dict) -> dict:
    now = int(time.time())
    return {k: now + v.offset if isinstance(v, Since) else v for k, v in claims.items()}



def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def authenticate(handler, **parts):
    ctx = make_context(**parts)
    assert handler.access(ctx) is None  # jwt never needs an await
    return ctx


def assert_rejected(ctx, body, challenge='Bearer error="invalid_token"'):
    assert ctx.exit_status == 401
    assert orjson.loads(ctx.exit_body) == body
    assert ctx.exit_headers["WWW-Authenticate"] == challenge
    assert ctx.consumer is None


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# --- success ------------------------------------------------------------------------


def test_hs256_token_in_the_authorization_header(jwt_auth, sign):
    token = sign({"iss": "alice-issuer", "sub": "42"})
    ctx = authenticate(jwt_auth(), headers=bearer(token))
    assert not ctx.exited
    assert ctx.consumer.username == "alice"
    assert ctx.credential["key"] == "alice-issuer"
    headers = ctx.request.headers
    assert headers.get("X-Consumer-Username") == "alice"
    assert headers.get("X-Consumer-Custom-ID") == "alice-crm"
    assert headers.get("X-Consumer-ID") == ctx.consumer.id
    assert headers.get("X-Credential-Identifier") == "alice-issuer"
    assert headers.get("X-Anonymous-Consumer") is None
    assert ctx.shared["authenticated_jwt_token"] == token


@pytest.mark.parametrize("algorithm", ["RS256", "PS256", "ES256", "EdDSA"])
def test_public_key_algorithms(jwt_auth, sign, algorithm):
    handler = jwt_auth()
    token = sign({"iss": f"{algorithm.lower()}-issuer"}, algorithm)
    for _ in range(2):  # the second request uses the cached public key
        ctx = authenticate(handler, headers=bearer(token))
        assert ctx.consumer.username == f"user-{algorithm.lower()}"
    # Claims of another token under this token's signature.
    header, _, signature = token.split(".")
    other_claims = sign({"iss": f"{algorithm.lower()}-issuer", "admin": True}, algorithm)
    tampered = f"{header}.{other_claims.split('.')[1]}.{signature}"
    assert_rejected(authenticate(handler, headers=bearer(tampered)),
                    {"message": "Invalid signature"})


def test_hs512_credential(jwt_auth, sign):
    ctx = authenticate(jwt_auth(), headers=bearer(sign({"iss": "alice-hs512"}, "HS512")))
    assert ctx.consumer.username == "alice"


def test_base64_secrets(jwt_auth, sign, secrets):
    token = sign({"iss": "binary-issuer"}, key=secrets["binary-issuer"])
    assert authenticate(jwt_auth(secret_is_base64=True),
                        headers=bearer(token)).consumer.username == "binary"
    # The same secret taken literally does not verify.
    assert_rejected(authenticate(jwt_auth(), headers=bearer(token)),
                    {"message": "Invalid signature"})


def test_token_in_the_query_and_in_cookies(jwt_auth, sign):
    token = sign({"iss": "alice-issuer"})
    ctx = authenticate(jwt_auth(), url=f"/orders?page=1&jwt={token}")
    assert ctx.consumer.username == "alice"
    handler = jwt_auth(cookie_names=["session"], uri_param_names=["token"])
    ctx = authenticate(handler, headers={"Cookie": f"theme=dark; session={token}"})
    assert ctx.consumer.username == "alice"
    ctx = authenticate(handler, url=f"/?token={token}")
    assert ctx.consumer.username == "alice"


def test_custom_header_names(jwt_auth, sign):
    token = sign({"iss": "alice-issuer"})
    handler = jwt_auth(header_names=["X-Token"])
    assert authenticate(handler, headers={"x-token": f"bearer {token}"}).consumer is not None
    assert_rejected(authenticate(handler, headers=bearer(token)), {"message": "Unauthorized"},
                    "Bearer")


def test_the_same_token_in_several_places_counts_once(jwt_auth, sign):
    token = sign({"iss": "alice-issuer"})
    ctx = authenticate(jwt_auth(cookie_names=["session"]), url=f"/?jwt={token}",
                       headers={**bearer(token), "Cookie": f"session={token}"})
    assert ctx.consumer.username == "alice"


def test_the_key_claim_may_come_from_the_token_header(jwt_auth, sign):
    token = sign({"sub": "42"}, headers={"kid": "alice-issuer"})
    assert authenticate(jwt_auth(key_claim_name="kid"),
                        headers=bearer(token)).consumer.username == "alice"


# --- failures -------------------------------------------------------------------------


def test_no_token(jwt_auth):
    assert_rejected(authenticate(jwt_auth()), {"message": "Unauthorized"}, "Bearer")
    assert_rejected(authenticate(jwt_auth(realm="orders"), headers={"Authorization": "Basic x"}),
                    {"message": "Unauthorized"}, 'Bearer realm="orders"')


def test_several_different_tokens(jwt_auth, sign):
    ctx = authenticate(jwt_auth(), url=f"/?jwt={sign({'iss': 'alice-issuer'})}",
                       headers=bearer(sign({"iss": "alice-hs512"}, "HS512")))
    assert_rejected(ctx, {"message": "Multiple tokens provided"})


def test_the_realm_is_in_every_challenge(jwt_auth):
    ctx = authenticate(jwt_auth(realm="orders"), headers=bearer("abc"))
    assert ctx.exit_headers["WWW-Authenticate"] == 'Bearer realm="orders" error="invalid_token"'


HS256 = b'{"alg":"HS256","typ":"JWT"}'
ISSUER = b'{"iss":"alice-issuer"}'


def unsigned(header: bytes, claims: bytes, signature: str = "c2ln") -> str:
    return f"{b64(header)}.{b64(claims)}.{signature}"


@pytest.mark.parametrize(("token", "reason"), [
    ("abc", "invalid JSON"),
    ("abc.def", "invalid JSON"),
    (unsigned(b"not json", ISSUER), "invalid JSON"),
    (unsigned(b"[1]", ISSUER), "invalid JSON"),
    (unsigned(b"{}", ISSUER), "invalid alg"),
    (unsigned(b'{"alg":"none"}', ISSUER), "invalid alg"),
    (unsigned(b'{"alg":7}', ISSUER), "invalid alg"),
    (unsigned(HS256, b"[]"), "invalid claims"),
    (unsigned(HS256, b"not json"), "invalid claims"),
    (unsigned(HS256, ISSUER, "not*base64"), "invalid signature"),
])
def test_unparsable_tokens(jwt_auth, token, reason):
    assert_rejected(authenticate(jwt_auth(), headers=bearer(token)),
                    {"message": f"Bad token; {reason}"})


@pytest.mark.parametrize(("claims", "message"), [
    ({"sub": "42"}, "No mandatory 'iss' in claims"),
    ({"iss": ""}, "Invalid 'iss' in claims"),
    ({"iss": "stranger"}, "No credentials found for given 'iss'"),
    ({"iss": 12}, "No credentials found for given 'iss'"),
])
def test_key_claim_failures(jwt_auth, sign, claims, message):
    assert_rejected(authenticate(jwt_auth(), headers=bearer(sign(claims))), {"message": message})


def test_wrong_algorithm_or_secret(jwt_auth, sign):
    handler = jwt_auth()
    # alice-hs512 expects HS512: an HS256 token is refused before its signature.
    assert_rejected(authenticate(handler, headers=bearer(sign({"iss": "alice-hs512"}))),
                    {"message": "Invalid algorithm"})
    forged = sign({"iss": "alice-issuer"}, key="guessed-secret" * 4)
    assert_rejected(authenticate(handler, headers=bearer(forged)),
                    {"message": "Invalid signature"})
    # An RS256 credential never accepts an HMAC token signed with its public key.
    assert_rejected(authenticate(handler, headers=bearer(sign({"iss": "rs256-issuer"}))),
                    {"message": "Invalid algorithm"})


def test_a_secret_that_is_not_base64(jwt_auth, sign, secrets):
    token = sign({"iss": "odd-issuer"}, key=secrets["odd-issuer"])
    assert authenticate(jwt_auth(), headers=bearer(token)).consumer.username == "odd"
    assert_rejected(authenticate(jwt_auth(secret_is_base64=True), headers=bearer(token)),
                    {"message": "Invalid key/secret"})


def test_an_unusable_public_key_fails_the_request(jwt_auth, sign):
    token = sign({"iss": "broken-issuer"}, "RS256")
    with pytest.raises(PluginError, match="broken-issuer"):
        authenticate(jwt_auth(), headers=bearer(token))


# --- claims ---------------------------------------------------------------------------


@pytest.mark.parametrize(("claims", "verify", "errors"), [
    ({"exp": Since(-10)}, ["exp"], {"exp": "token expired"}),
    ({"exp": Since(0)}, ["exp"], {"exp": "token expired"}),
    ({"nbf": Since(300)}, ["nbf"], {"nbf": "token not valid yet"}),
    ({}, ["exp", "nbf"], {"exp": "must be a number", "nbf": "must be a number"}),
    ({"exp": "tomorrow"}, ["exp"], {"exp": "must be a number"}),
    ({"exp": True}, ["exp"], {"exp": "must be a number"}),
    ({"exp": Since(-1), "nbf": Since(60)}, ["exp", "nbf"],
     {"exp": "token expired", "nbf": "token not valid yet"}),
])
def test_failed_claims_answer_one_message_per_claim(jwt_auth, sign, claims, verify, errors):
    token = sign(at_signing({"iss": "alice-issuer", **claims}))
    assert_rejected(authenticate(jwt_auth(claims_to_verify=verify), headers=bearer(token)),
                    errors)


def test_claims_are_only_checked_when_asked(jwt_auth, sign):
    token = sign(at_signing({"iss": "alice-issuer", "exp": Since(-10), "nbf": Since(60)}))
    assert authenticate(jwt_auth(), headers=bearer(token)).consumer is not None
    fresh = sign(at_signing({"iss": "alice-issuer", "exp": Since(60), "nbf": Since(-1.5)}))
    handler = jwt_auth(claims_to_verify=["exp", "nbf"])
    assert authenticate(handler, headers=bearer(fresh)).consumer is not None


def test_maximum_expiration(jwt_auth, sign):
    handler = jwt_auth(claims_to_verify=["exp"], maximum_expiration=3600)
    ok = sign(at_signing({"iss": "alice-issuer", "exp": Since(3000)}))
    assert authenticate(handler, headers=bearer(ok)).consumer is not None
    too_long = sign(at_signing({"iss": "alice-issuer", "exp": Since(7200)}))
    assert_rejected(authenticate(handler, headers=bearer(too_long)),
                    {"exp": "exceeds maximum allowed expiration"})


# --- preflight, anonymous ----------------------------------------------------------------


def test_preflight(jwt_auth):
    assert authenticate(jwt_auth(), method="OPTIONS").exit_status == 401
    ctx = authenticate(jwt_auth(run_on_preflight=False), method="OPTIONS")
    assert not ctx.exited and ctx.consumer is None


@pytest.mark.parametrize("headers", [{}, bearer("abc")])
def test_anonymous_consumer_replaces_the_401(jwt_auth, headers):
    ctx = authenticate(jwt_auth(anonymous="anonymous"), headers=headers)
    assert not ctx.exited
    assert ctx.consumer.username == "anonymous"
    assert ctx.request.headers.get("X-Anonymous-Consumer") == "true"
    assert "authenticated_jwt_token" not in ctx.shared


def test_anonymous_also_replaces_claim_failures(jwt_auth, sign):
    token = sign(at_signing({"iss": "alice-issuer", "exp": Since(-10)}))
    ctx = authenticate(jwt_auth(anonymous="anonymous", claims_to_verify=["exp"]),
                       headers=bearer(token))
    assert ctx.consumer.username == "anonymous" and not ctx.exited


def test_with_anonymous_an_identified_request_is_left_alone(jwt_auth, sign):
    ctx = authenticate(jwt_auth(), headers=bearer(sign({"iss": "alice-issuer"})))
    jwt_auth(anonymous="anonymous", header_names=["x-other"]).access(ctx)
    assert ctx.consumer.username == "alice"
    assert ctx.request.headers.get("X-Anonymous-Consumer") is None
