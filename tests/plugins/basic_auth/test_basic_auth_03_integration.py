"""basic-auth in the real gateway: what the client gets back and what the
upstream receives, one gateway for the whole module."""

from base64 import b64encode

import orjson
import pytest

ROUTES = [
    {"name": "plain", "paths": ["/plain"], "plugins": [{"name": "basic-auth"}]},
    {"name": "hidden", "paths": ["/hidden"], "plugins": [
        {"name": "basic-auth", "config": {"hide_credentials": True, "realm": "Orders API"}}]},
]


def basic(user_password: str) -> dict:
    return {"Authorization": "Basic " + b64encode(user_password.encode()).decode()}


@pytest.fixture(scope="module")
def gateway_routes():
    return ROUTES


def test_valid_credentials_reach_the_upstream(gateway, upstream):
    credentials = basic("alice-login:s3cret:with:colons")
    status, _, _ = gateway.request("GET", "/plain/x", headers=credentials)
    assert status == 200
    sent = upstream.requests[-1]
    assert sent.header("x-consumer-username") == "alice"
    assert sent.header("x-credential-identifier") == "alice-login"
    assert sent.header("authorization").startswith("Basic ")


def test_hidden_credentials_do_not_reach_the_upstream(gateway, upstream):
    status, _, _ = gateway.request("GET", "/hidden", headers=basic("bob:p\u00e4ss"))
    assert status == 200
    sent = upstream.requests[-1]
    assert sent.header("authorization") is None
    assert sent.header("x-consumer-custom-id") == "bob-crm"


@pytest.mark.parametrize(("path", "headers", "challenge"), [
    ("/plain", {}, 'Basic realm="service"'),
    ("/plain", basic("alice-login:wrong"), 'Basic realm="service"'),
    ("/hidden", basic("nobody:x"), 'Basic realm="Orders API"'),
])
def test_rejections(gateway, upstream, path, headers, challenge):
    before = len(upstream.requests)
    status, response_headers, body = gateway.request("GET", path, headers=headers)
    assert status == 401
    assert orjson.loads(body) == {"message": "Unauthorized"}
    assert response_headers["www-authenticate"] == challenge
    assert len(upstream.requests) == before
