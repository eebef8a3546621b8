"""Plain proxying: headers set and removed, latency headers, 404 wording."""

import socket

import orjson

from fastgw.testing import http_request, raw_exchange, service_doc


def test_request_reaches_upstream_with_forwarding_headers(proxied, upstream):
    status, headers, body = proxied.request("POST", "/v1/chat?x=1", body=b"hello",
                                            headers={"Content-Type": "text/plain"})
    assert status == 200
    assert orjson.loads(body) == {"method": "POST", "target": "/v1/chat?x=1", "body_len": 5}
    req = upstream.requests[-1]
    assert req.body == b"hello"
    assert req.header("x-forwarded-for") == "127.0.0.1"
    assert req.header("x-real-ip") == "127.0.0.1"
    assert req.header("x-forwarded-proto") == "http"
    assert req.header("x-forwarded-host") == "localhost"
    assert req.header("x-forwarded-port") == str(proxied.port)
    assert req.header("via") == "1.1 fastgw"
    assert len(req.header("x-request-id")) == 32
    # Host is the service's, as preserve_host defaults to false.
    assert req.header("host") == f"127.0.0.1:{upstream.port}"
    assert headers["via"] == "1.1 fastgw"
    assert int(headers["x-fastgw-upstream-latency"]) >= 0
    assert int(headers["x-fastgw-proxy-latency"]) >= 0


def test_client_forwarding_headers_are_appended_or_replaced(proxied, upstream):
    proxied.request("GET", "/", headers={
        "X-Forwarded-For": "10.1.1.1", "X-Real-IP": "6.6.6.6",
        "X-Forwarded-Proto": "gopher", "X-Request-Id": "abc-123",
    })
    req = upstream.requests[-1]
    assert req.header("x-forwarded-for") == "10.1.1.1, 127.0.0.1"
    assert req.header_all("x-real-ip") == ["127.0.0.1"]
    assert req.header_all("x-forwarded-proto") == ["http"]
    assert req.header_all("x-request-id") == ["abc-123"]


def test_hop_by_hop_headers_are_removed_both_ways(upstream, gateway_for):
    async def handler(req, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n"
                     b"Connection: keep-alive, X-Secret\r\nProxy-Connection: x\r\n"
                     b"X-Kept: yes\r\n\r\nok")

    upstream.handler = handler
    gw = gateway_for(service_doc(upstream.port))
    raw = raw_exchange(gw.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Drop\r\n"
                                b"X-Drop: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\nTrailer: x\r\n"
                                b"Proxy-Connection: keep-alive\r\nX-Stay: 1\r\n\r\n",
                       read_until_close=False)
    req = upstream.requests[-1]
    for name in ("x-drop", "keep-alive", "te", "trailer", "proxy-connection", "connection"):
        assert req.header(name) is None, name
    assert req.header("x-stay") == "1"
    head = raw.split(b"\r\n\r\n")[0].lower()
    assert b"keep-alive:" not in head and b"proxy-connection" not in head
    assert b"x-kept: yes" in head


def test_no_route_is_404_in_kong_wording(upstream, gateway_for):
    gw = gateway_for(service_doc(upstream.port, routes=[{"name": "only", "paths": ["/only"]}]))
    status, headers, body = gw.request("GET", "/elsewhere")
    assert status == 404
    assert orjson.loads(body) == {"message": "no Route matched with those values"}
    assert headers["content-type"].startswith("application/json")
    assert upstream.requests == []


def test_strip_path_and_preserve_host(upstream, gateway_for):
    doc = service_doc(upstream.port, routes=[
        {"name": "strip", "paths": ["/api"], "strip_path": True},
        {"name": "keep", "paths": ["/keep"], "strip_path": False, "preserve_host": True},
    ], path="/base")
    gw = gateway_for(doc)
    gw.request("GET", "/api/items?q=1")
    assert upstream.requests[-1].target == "/base/items?q=1"
    http_request(gw.port, "GET", "/keep/x", host="client.example")
    assert upstream.requests[-1].target == "/base/keep/x"
    assert upstream.requests[-1].header("host") == "client.example"


def test_keepalive_and_pipelined_answers_come_in_order(upstream, gateway_for):
    async def handler(req, writer):
        body = req.target.encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    upstream.handler = handler
    gw = gateway_for(service_doc(upstream.port))
    pipelined = b"".join(b"GET /r%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(10))
    with socket.create_connection(("127.0.0.1", gw.port), 5) as s:
        s.sendall(pipelined)
        data = b""
        while data.count(b"HTTP/1.1 200") < 10 or not data.endswith(b"/r9"):
            chunk = s.recv(65536)
            assert chunk, "connection closed early"
            data += chunk
        # Same connection keeps working afterwards.
        s.sendall(b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
        tail = b""
        while not tail.endswith(b"/after"):
            tail += s.recv(65536)
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in data.split(b"HTTP/1.1 200 OK")[1:]]
    assert bodies == [b"/r%d" % i for i in range(10)]
