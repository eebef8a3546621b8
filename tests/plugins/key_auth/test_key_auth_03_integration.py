"""key-auth in the real gateway: what the client gets back and what the
upstream receives, one gateway for the whole module."""

import orjson
import pytest

ROUTES = [
    {"name": "plain", "paths": ["/plain"], "plugins": [{"name": "key-auth"}]},
    {"name": "hidden", "paths": ["/hidden"], "plugins": [
        {"name": "key-auth", "config": {"hide_credentials": True, "key_in_body": True,
                                        "realm": "orders"}}]},
    {"name": "open", "paths": ["/open"], "plugins": [
        {"name": "key-auth", "config": {"anonymous": "anonymous"}}]},
    {"name": "underscore", "paths": ["/underscore"], "plugins": [
        {"name": "key-auth", "config": {"key_names": ["api_key"]}}]},
]


@pytest.fixture(scope="module")
def gateway_routes():
    return ROUTES


def test_a_valid_key_reaches_the_upstream_with_the_consumer(gateway, upstream, ids):
    status, _, _ = gateway.request("GET", "/plain/orders", headers={
        "apikey": "alice-key", "X-Consumer-Username": "mallory"})
    assert status == 200
    sent = upstream.requests[-1]
    assert sent.header_all("x-consumer-username") == ["alice"]
    assert len(sent.header("x-consumer-id")) == 36
    assert sent.header("x-credential-identifier") == ids["alice-key"]
    assert sent.header("x-anonymous-consumer") is None
    assert sent.header("apikey") == "alice-key"


@pytest.mark.parametrize(("headers", "message"), [
    ({}, "No API key found in request"),
    ({"apikey": "guess"}, "Unauthorized"),
])
def test_rejections_never_reach_the_upstream(gateway, upstream, headers, message):
    before = len(upstream.requests)
    status, response_headers, body = gateway.request("GET", "/plain", headers=headers)
    assert status == 401
    assert orjson.loads(body) == {"message": message}
    assert response_headers["www-authenticate"] == "Key"
    assert response_headers["content-type"].startswith("application/json")
    assert len(upstream.requests) == before


def test_the_realm_reaches_the_client(gateway):
    _, headers, _ = gateway.request("GET", "/hidden")
    assert headers["www-authenticate"] == 'Key realm="orders"'


def test_a_hidden_key_is_removed_from_the_query(gateway, upstream):
    status, _, _ = gateway.request("GET", "/hidden/list?page=2&apikey=bob-key&sort=asc")
    assert status == 200
    sent = upstream.requests[-1]
    assert sent.target == "/list?page=2&sort=asc"
    assert sent.header("x-consumer-username") == "bob"


def test_a_hidden_key_is_removed_from_a_json_body(gateway, upstream):
    body = orjson.dumps({"apikey": "bob-key", "order": {"id": 7}})
    status, _, _ = gateway.request("POST", "/hidden/orders", body=body,
                                   headers={"Content-Type": "application/json"})
    assert status == 200
    sent = upstream.requests[-1]
    assert orjson.loads(sent.body) == {"order": {"id": 7}}
    assert sent.header("content-length") == str(len(sent.body))
    assert sent.header("x-consumer-username") == "bob"


def test_a_hidden_key_is_removed_from_a_form_body(gateway, upstream):
    status, _, _ = gateway.request("POST", "/hidden/orders", body=b"apikey=alice-key&n=1",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    assert upstream.requests[-1].body == b"n=1"


def test_anonymous_fallback(gateway, upstream):
    status, _, _ = gateway.request("GET", "/open", headers={"apikey": "guess"})
    assert status == 200
    sent = upstream.requests[-1]
    assert sent.header("x-consumer-username") == "anonymous"
    assert sent.header("x-anonymous-consumer") == "true"
    gateway.request("GET", "/open", headers={"apikey": "bob-key"})
    assert upstream.requests[-1].header("x-consumer-username") == "bob"
    assert upstream.requests[-1].header("x-anonymous-consumer") is None


@pytest.mark.parametrize("sent", ["api-key", "api_key"])
def test_key_names_with_underscores_find_either_spelling(gateway, upstream, sent):
    # Kong's key-auth spec: key_names [api_key] finds a key sent as api-key.
    status, _, _ = gateway.request("GET", "/underscore", headers={sent: "alice-key"})
    assert status == 200
    assert upstream.requests[-1].header("x-consumer-username") == "alice"
