"""request-termination in the real gateway: answered by the gateway, the
upstream never reached, auth plugins still first."""

import orjson
import pytest

ROUTES = [
    {"name": "down", "paths": ["/down"], "plugins": [{"name": "request-termination"}]},
    {"name": "teapot", "paths": ["/teapot"], "plugins": [
        {"name": "request-termination",
         "config": {"status_code": 418, "body": "short and stout", "content_type": "text/plain"}}]},
    {"name": "triggered", "paths": ["/triggered"], "plugins": [
        {"name": "request-termination", "config": {"status_code": 403, "trigger": "x-stop"}}]},
    {"name": "echo", "paths": ["/echo"], "plugins": [
        {"name": "request-termination", "config": {"status_code": 200, "echo": True}}]},
    {"name": "keyed", "paths": ["/keyed"], "plugins": [
        {"name": "key-auth"}, {"name": "request-termination", "config": {"message": "later"}}]},
]


@pytest.fixture(scope="module")
def gateway_routes():
    return ROUTES


@pytest.fixture(scope="module")
def gateway_consumers():
    return [{"username": "alice", "keyauth_credentials": [{"key": "alice-key"}]}]


def test_the_default_answer_is_kong_s_503(gateway, upstream):
    before = len(upstream.requests)
    for method in ("GET", "POST"):
        status, headers, body = gateway.request(method, "/down/x", body=b"{}")
        assert status == 503
        assert orjson.loads(body) == {"message": "Service unavailable"}
        assert headers["content-type"].startswith("application/json")
        assert headers.get("x-request-id")
    status, _, body = gateway.request("HEAD", "/down")
    assert (status, body) == (503, b"")
    assert len(upstream.requests) == before


def test_a_raw_body_with_its_content_type(gateway):
    status, headers, body = gateway.request("GET", "/teapot")
    assert (status, body) == (418, b"short and stout")
    assert headers["content-type"] == "text/plain"


def test_only_triggered_requests_are_terminated(gateway, upstream):
    before = len(upstream.requests)
    status, _, _ = gateway.request("GET", "/triggered")
    assert status == 200 and len(upstream.requests) == before + 1
    for path, headers in (("/triggered", {"X-Stop": "1"}), ("/triggered?x-stop", {})):
        status, _, body = gateway.request("GET", path, headers=headers)
        # 403 has no Kong message: an empty body.
        assert (status, body) == (403, b"")
    assert len(upstream.requests) == before + 1


def test_echo(gateway):
    status, _, body = gateway.request("PUT", "/echo/x?q=1", body=b"plain text",
                                      headers={"Content-Type": "text/plain"})
    assert status == 200
    echoed = orjson.loads(body)
    assert echoed["request"]["method"] == "PUT"
    assert echoed["request"]["raw_body"] == "plain text"
    assert echoed["request"]["query"] == {"q": "1"}
    assert echoed["matched_route"]["name"] == "echo"
    assert echoed["matched_service"]["name"] == "svc"


def test_auth_runs_before_termination(gateway):
    status, _, body = gateway.request("GET", "/keyed")
    assert (status, orjson.loads(body)) == (401, {"message": "No API key found in request"})
    status, _, body = gateway.request("GET", "/keyed", headers={"apikey": "alice-key"})
    assert (status, orjson.loads(body)) == (503, {"message": "later"})
