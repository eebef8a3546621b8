"""ip-restriction in the real gateway: refused clients never reach the upstream."""

import orjson
import pytest

from fastgw.testing import GatewayProcess, UpstreamServer, service_doc


def restricted(path: str, config: dict) -> dict:
    return {"name": path.strip("/"), "paths": [path],
            "plugins": [{"name": "ip-restriction", "config": config}]}


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream):
    doc = service_doc(upstream.port, routes=[
        restricted("/loopback-allowed", {"allow": ["127.0.0.0/8", "::1"]}),
        restricted("/loopback-denied", {"deny": ["127.0.0.1"], "status": 401,
                                        "message": "Go away"}),
        restricted("/others-only", {"allow": ["10.0.0.0/8"]}),
    ])
    with GatewayProcess(doc) as gw:
        yield gw


def test_an_allowed_client_is_proxied(gateway, upstream):
    status, _, _ = gateway.request("GET", "/loopback-allowed/x")
    assert status == 200
    assert upstream.requests[-1].target == "/x"


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/loopback-denied", 401, "Go away"),
    ("/others-only", 403, "IP address not allowed"),
])
def test_a_refused_client_gets_kongs_answer_and_the_upstream_nothing(gateway, upstream, path,
                                                                      status, message):
    seen = len(upstream.requests)
    got, headers, body = gateway.request("POST", path, body=b"payload")
    assert got == status
    assert orjson.loads(body) == {"message": message}
    assert headers["content-type"].startswith("application/json")
    assert len(upstream.requests) == seen
