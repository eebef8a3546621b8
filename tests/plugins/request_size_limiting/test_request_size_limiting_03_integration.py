"""request-size-limiting in the real gateway: Content-Length and chunked bodies."""

import http.client

import orjson
import pytest

from fastgw.testing import GatewayProcess, UpstreamServer, service_doc

TOO_LARGE = {"message": "Request size limit exceeded"}


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream):
    doc = service_doc(upstream.port, routes=[
        {"name": "small", "paths": ["/small"], "plugins": [{
            "name": "request-size-limiting",
            "config": {"allowed_payload_size": 10, "size_unit": "bytes"}}]},
        {"name": "strict", "paths": ["/strict"], "plugins": [{
            "name": "request-size-limiting", "config": {"require_content_length": True}}]},
    ])
    with GatewayProcess(doc) as gw:
        yield gw


def send_chunked(gateway, path: str, pieces: list[bytes]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        # An iterable body without Content-Length goes out chunked.
        conn.request("POST", path, body=iter(pieces), headers={"Host": "localhost"},
                     encode_chunked=True)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_body_within_the_limit_reaches_the_upstream(gateway, upstream):
    status, _, _ = gateway.request("POST", "/small", body=b"0123456789")
    assert status == 200
    assert upstream.requests[-1].body == b"0123456789"


def test_a_declared_length_over_the_limit_is_refused(gateway, upstream):
    seen = len(upstream.requests)
    status, _, body = gateway.request("POST", "/small", body=b"0123456789A")
    assert status == 413
    assert orjson.loads(body) == TOO_LARGE
    assert len(upstream.requests) == seen


def test_chunked_bodies_are_measured(gateway, upstream):
    status, _ = send_chunked(gateway, "/small", [b"01234", b"5678"])
    assert status == 200
    assert upstream.requests[-1].body == b"012345678"
    seen = len(upstream.requests)
    status, body = send_chunked(gateway, "/small", [b"01234", b"56789", b"A"])
    assert status == 413
    assert orjson.loads(body) == TOO_LARGE
    assert len(upstream.requests) == seen


def test_requests_without_a_body_pass(gateway, upstream):
    status, _, _ = gateway.request("GET", "/small/items")
    assert status == 200
    assert upstream.requests[-1].target == "/items"


def test_require_content_length(gateway):
    status, _, body = gateway.request("GET", "/strict")
    assert status == 411
    assert orjson.loads(body) == {"message": "A valid Content-Length header is required"}
    assert gateway.request("POST", "/strict", body=b"abc")[0] == 200
    assert send_chunked(gateway, "/strict", [b"abc"])[0] == 200
