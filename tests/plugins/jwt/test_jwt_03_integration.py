"""jwt in the real gateway: what the client gets back and what the upstream
receives, one gateway for the whole module."""

import time

import orjson
import pytest

ROUTES = [
    {"name": "api", "paths": ["/api"], "plugins": [
        {"name": "jwt", "config": {"claims_to_verify": ["exp"], "cookie_names": ["session"],
                                   "realm": "api"}}]},
]


@pytest.fixture(scope="module")
def gateway_routes():
    return ROUTES


def later(seconds: int = 600) -> int:
    return int(time.time()) + seconds


@pytest.mark.parametrize(("algorithm", "username"), [
    ("HS256", "alice"), ("RS256", "user-rs256"), ("ES256", "user-es256"),
])
def test_a_valid_token_reaches_the_upstream(gateway, upstream, sign, algorithm, username):
    issuer = "alice-issuer" if algorithm == "HS256" else f"{algorithm.lower()}-issuer"
    token = sign({"iss": issuer, "exp": later()}, algorithm)
    status, _, _ = gateway.request("GET", "/api/orders",
                                   headers={"Authorization": f"Bearer {token}"})
    assert status == 200
    sent = upstream.requests[-1]
    assert sent.header("x-consumer-username") == username
    assert sent.header("x-credential-identifier") == issuer
    assert sent.header("authorization") == f"Bearer {token}"


def test_tokens_in_the_query_and_in_a_cookie(gateway, upstream, sign):
    token = sign({"iss": "alice-issuer", "exp": later()})
    assert gateway.request("GET", f"/api?jwt={token}")[0] == 200
    assert gateway.request("GET", "/api", headers={"Cookie": f"session={token}"})[0] == 200
    assert upstream.requests[-1].header("x-consumer-username") == "alice"


@pytest.mark.parametrize(("claims", "body", "challenge"), [
    (None, {"message": "Unauthorized"}, 'Bearer realm="api"'),
    ({"iss": "alice-issuer", "exp": 1000}, {"exp": "token expired"},
     'Bearer realm="api" error="invalid_token"'),
    ({"iss": "stranger", "exp": 0}, {"message": "No credentials found for given 'iss'"},
     'Bearer realm="api" error="invalid_token"'),
])
def test_rejections(gateway, upstream, sign, claims, body, challenge):
    headers = {} if claims is None else {"Authorization": f"Bearer {sign(claims)}"}
    before = len(upstream.requests)
    status, response_headers, response = gateway.request("GET", "/api", headers=headers)
    assert status == 401
    assert orjson.loads(response) == body
    assert response_headers["www-authenticate"] == challenge
    assert len(upstream.requests) == before
