"""request-transformer in the real gateway: what the upstream receives."""

import http.client
from urllib.parse import parse_qs

import orjson
import pytest

from fastgw.testing import GatewayProcess, UpstreamServer, service_doc

JSON = {"Content-Type": "application/json"}


def route(name: str, config: dict) -> dict:
    return {"name": name, "paths": [f"/{name}"],
            "plugins": [{"name": "request-transformer", "config": config}]}


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream):
    doc = service_doc(upstream.port, routes=[
        route("headers", {
            "remove": {"headers": ["X-Secret"], "querystring": ["debug"]},
            "rename": {"headers": ["X-Old:X-New"]},
            "replace": {"headers": ["Host:api.internal"]},
            "add": {"headers": ["X-Caller:$(headers.x_user or \"anonymous\")"],
                    "querystring": ["source:gateway"]},
            "append": {"headers": ["X-Trace:gw"]},
        }),
        route("rewrite", {"http_method": "PUT", "replace": {"uri": "/v2/items"}}),
        route("body", {"remove": {"body": ["password"]}, "add": {"body": ["role:user"]}}),
    ])
    with GatewayProcess(doc) as gw:
        yield gw


def test_headers_query_and_host(gateway, upstream):
    status, _, _ = gateway.request("GET", "/headers/list?debug=1&page=2", headers={
        "X-Secret": "s", "X-Old": "o", "X-User": "ann", "X-Trace": "client"})
    assert status == 200
    seen = upstream.requests[-1]
    assert seen.header("x-secret") is None and seen.header("x-old") is None
    assert seen.header("x-new") == "o"
    assert seen.header("x-caller") == "ann"
    assert seen.header_all("x-trace") == ["client", "gw"]
    assert seen.header_all("host") == ["api.internal"]
    path, _, query = seen.target.partition("?")
    assert path == "/list"
    assert parse_qs(query) == {"page": ["2"], "source": ["gateway"]}


def test_method_and_path(gateway, upstream):
    gateway.request("POST", "/rewrite/anything?id=3", body=b"raw")
    seen = upstream.requests[-1]
    assert (seen.method, seen.target, seen.body) == ("PUT", "/v2/items?id=3", b"raw")


def test_json_body_with_content_length(gateway, upstream):
    body = orjson.dumps({"user": "ann", "password": "hunter2"})
    status, _, _ = gateway.request("POST", "/body", body=body, headers=JSON)
    assert status == 200
    seen = upstream.requests[-1]
    assert orjson.loads(seen.body) == {"user": "ann", "role": "user"}
    assert seen.header("content-length") == str(len(seen.body))


def test_chunked_json_body_goes_upstream_with_its_new_length(gateway, upstream):
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        conn.request("POST", "/body", body=iter([b'{"password": "x", ', b'"keep": 1}']),
                     headers={"Host": "localhost", **JSON}, encode_chunked=True)
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    seen = upstream.requests[-1]
    assert orjson.loads(seen.body) == {"keep": 1, "role": "user"}
    assert seen.header("transfer-encoding") is None
    assert seen.header("content-length") == str(len(seen.body))


def test_other_bodies_stream_through_untouched(gateway, upstream):
    gateway.request("POST", "/body", body=b"password=1", headers={"Content-Type": "text/plain"})
    assert upstream.requests[-1].body == b"password=1"
