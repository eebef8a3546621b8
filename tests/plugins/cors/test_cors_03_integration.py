"""cors in the real gateway: preflights answered by the gateway, headers on
proxied responses and on other plugins' refusals."""

import orjson
import pytest

from fastgw.testing import GatewayProcess, UpstreamServer, service_doc

ORIGIN = "https://app.example.com"
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "PUT",
             "Access-Control-Request-Headers": "X-Token"}
CORS = {"origins": [ORIGIN, r"https://.*\.partner\.example"], "credentials": True,
        "exposed_headers": ["X-Total"], "max_age": 300}


def route(name: str, *plugins: dict) -> dict:
    return {"name": name, "paths": [f"/{name}"], "plugins": list(plugins)}


@pytest.fixture(scope="module")
def upstream():
    async def handler(req, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nVary: Accept-Encoding\r\n"
                     b"Access-Control-Allow-Origin: https://upstream.example\r\n"
                     b"Content-Length: 2\r\n\r\nok")

    with UpstreamServer(handler) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream):
    doc = service_doc(upstream.port, routes=[
        route("cors", {"name": "cors", "config": CORS}),
        route("continue", {"name": "cors", "config": {"preflight_continue": True}}),
        route("guarded", {"name": "cors", "config": CORS},
              {"name": "ip-restriction", "config": {"deny": ["127.0.0.1"]}}),
    ])
    with GatewayProcess(doc) as gw:
        yield gw


def test_the_gateway_answers_a_preflight(gateway, upstream):
    seen = len(upstream.requests)
    status, headers, body = gateway.request("OPTIONS", "/cors/items", headers=PREFLIGHT)
    assert status == 200 and body == b""
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-allow-headers"] == "X-Token"
    assert headers["access-control-allow-methods"] == \
        "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"
    assert headers["access-control-max-age"] == "300"
    assert headers["vary"] == "Origin"
    assert len(upstream.requests) == seen


def test_preflight_continue_proxies_the_preflight(gateway, upstream):
    status, headers, _ = gateway.request("OPTIONS", "/continue", headers=PREFLIGHT)
    assert status == 200
    assert upstream.requests[-1].method == "OPTIONS"
    assert upstream.requests[-1].header("access-control-request-method") == "PUT"
    assert headers["access-control-allow-origin"] == "https://upstream.example"


@pytest.mark.parametrize(("origin", "allowed"), [
    (ORIGIN, ORIGIN),
    ("https://eu.partner.example", "https://eu.partner.example"),
    ("https://evil.example", None),
])
def test_proxied_responses_carry_cors_headers(gateway, origin, allowed):
    status, headers, body = gateway.request("GET", "/cors", headers={"Origin": origin})
    assert status == 200 and body == b"ok"
    assert headers.get("access-control-allow-origin") == allowed
    assert headers["access-control-expose-headers"] == "X-Total"
    assert headers["vary"] == "Accept-Encoding, Origin"


def test_a_refusal_by_another_plugin_still_carries_cors_headers(gateway, upstream):
    seen = len(upstream.requests)
    status, headers, body = gateway.request("GET", "/guarded", headers={"Origin": ORIGIN})
    assert status == 403
    assert orjson.loads(body) == {"message": "IP address not allowed"}
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-credentials"] == "true"
    assert len(upstream.requests) == seen
