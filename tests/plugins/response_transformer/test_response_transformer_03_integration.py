"""response-transformer in the real gateway: headers and JSON bodies as the
client sees them, with correct framing on a kept-alive connection."""

import http.client

import orjson
import pytest

from fastgw.testing import GatewayProcess, UpstreamServer, service_doc

DOCUMENT = orjson.dumps({"id": 7, "secret": "s", "name": "widget"})


async def answer(req, writer):
    if req.target.startswith("/chunked"):
        half = len(DOCUMENT) // 2
        pieces = [DOCUMENT[:half], DOCUMENT[half:]]
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\nServer: upstream\r\n\r\n"
                     + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n")
        return
    kind = b"text/plain" if req.target.startswith("/text") else b"application/json"
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"\r\nServer: upstream\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(DOCUMENT) + DOCUMENT)


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer(answer) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream):
    config = {
        "remove": {"headers": ["Server"], "json": ["secret"]},
        "add": {"headers": ["X-Served-By:fastgw"], "json": ["version:2"],
                "json_types": ["number"]},
        "rename": {"json": ["name:title"]},
    }
    doc = service_doc(upstream.port, routes=[{
        "name": "all", "paths": ["/"], "strip_path": False,
        "plugins": [{"name": "response-transformer", "config": config}]}])
    with GatewayProcess(doc) as gw:
        yield gw


EXPECTED = {"id": 7, "title": "widget", "version": 2}


@pytest.mark.parametrize("path", ["/json", "/chunked"])
def test_json_bodies_and_headers_are_transformed(gateway, path):
    status, headers, body = gateway.request("GET", path)
    assert status == 200
    assert orjson.loads(body) == EXPECTED
    assert "server" not in headers
    assert headers["x-served-by"] == "fastgw"
    assert headers.get("content-length") in (None, str(len(body)))


def test_other_content_types_keep_body_and_length(gateway):
    status, headers, body = gateway.request("GET", "/text")
    assert status == 200
    assert body == DOCUMENT
    assert headers["content-length"] == str(len(DOCUMENT))
    assert headers["x-served-by"] == "fastgw"


def test_a_kept_alive_connection_reads_each_transformed_body_whole(gateway):
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        for path in ("/json", "/chunked", "/json"):
            conn.request("GET", path, headers={"Host": "localhost"})
            response = conn.getresponse()
            assert orjson.loads(response.read()) == EXPECTED
            assert not response.will_close
    finally:
        conn.close()
