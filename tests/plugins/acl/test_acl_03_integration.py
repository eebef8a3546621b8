"""acl in the real gateway, behind key-auth and basic-auth: Kong's logical OR
between auth plugins with an anonymous consumer, and the groups header."""

from base64 import b64encode

import orjson
import pytest

KEYS = {"alice": "alice-key", "bob": "bob-key"}
EITHER_AUTH = [
    {"name": "key-auth", "config": {"anonymous": "anonymous", "hide_credentials": True}},
    {"name": "basic-auth", "config": {"anonymous": "anonymous"}},
]
ROUTES = [
    {"name": "gold", "paths": ["/gold"],
     "plugins": [*EITHER_AUTH, {"name": "acl", "config": {"allow": ["gold"]}}]},
    {"name": "public", "paths": ["/public"],
     "plugins": [*EITHER_AUTH, {"name": "acl", "config": {"deny": ["silver"]}}]},
    {"name": "unguarded", "paths": ["/unguarded"],
     "plugins": [{"name": "acl", "config": {"allow": ["gold"]}}]},
]


@pytest.fixture(scope="module")
def gateway_routes():
    return ROUTES


@pytest.fixture(scope="module")
def gateway_consumers(consumers):
    """The acl consumers, alice and bob with keys, and dave with a password."""
    with_credentials = [
        {**consumer, "keyauth_credentials": [{"key": KEYS[consumer["username"]]}]}
        if consumer["username"] in KEYS else consumer
        for consumer in consumers
    ]
    with_credentials.append({"username": "dave", "acls": [{"group": "gold"}],
                             "basicauth_credentials": [{"username": "dave", "password": "pw"}]})
    return with_credentials


def basic(user_password: str) -> dict:
    return {"Authorization": "Basic " + b64encode(user_password.encode()).decode()}


def test_either_credential_passes_the_acl(gateway, upstream):
    assert gateway.request("GET", "/gold", headers={"apikey": "alice-key"})[0] == 200
    sent = upstream.requests[-1]
    assert sent.header("x-consumer-username") == "alice"
    assert sent.header("x-consumer-groups") == "gold, beta"
    assert sent.header("apikey") is None
    # key-auth falls back to anonymous, then basic-auth identifies dave.
    assert gateway.request("GET", "/gold", headers=basic("dave:pw"))[0] == 200
    sent = upstream.requests[-1]
    assert sent.header("x-consumer-username") == "dave"
    assert sent.header("x-anonymous-consumer") is None


@pytest.mark.parametrize("headers", [
    {}, {"apikey": "bob-key"}, {"apikey": "guess"}, basic("dave:wrong"),
])
def test_anonymous_or_wrong_group_is_forbidden(gateway, upstream, headers):
    before = len(upstream.requests)
    status, _, body = gateway.request("GET", "/gold", headers=headers)
    assert status == 403
    assert orjson.loads(body) == {"message": "You cannot consume this service"}
    assert len(upstream.requests) == before


def test_deny_list(gateway, upstream):
    assert gateway.request("GET", "/public", headers={"apikey": "bob-key"})[0] == 403
    assert gateway.request("GET", "/public")[0] == 200
    sent = upstream.requests[-1]
    assert sent.header("x-consumer-username") == "anonymous"
    assert sent.header("x-consumer-groups") == "guest"


def test_acl_without_an_auth_plugin_is_unauthorized(gateway):
    status, _, body = gateway.request("GET", "/unguarded", headers={"apikey": "alice-key"})
    assert status == 401
    assert orjson.loads(body) == {"message": "Unauthorized"}
