"""Bodies stream through both ways; special statuses and methods."""

import asyncio
import socket
import threading
import time

from fastgw.testing import service_doc


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed before the head"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def test_slow_upstream_first_bytes_arrive_before_it_finishes(upstream, gateway_for):
    release = threading.Event()

    async def handler(req, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        while not release.is_set():
            await asyncio.sleep(0.01)
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")

    upstream.handler = handler
    gw = gateway_for(service_doc(upstream.port))
    with socket.create_connection(("127.0.0.1", gw.port), 5) as s:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        head, rest = read_head(s)
        while b"first" not in rest:
            rest += s.recv(65536)
        # The upstream has not finished: it is waiting for us.
        assert not release.is_set()
        assert b"transfer-encoding: chunked" in head.lower()
        release.set()
        while not rest.endswith(b"0\r\n\r\n"):
            rest += s.recv(65536)
    assert rest == b"5\r\nfirst\r\n6\r\nsecond\r\n0\r\n\r\n"


def test_request_body_streams_to_upstream_before_client_finishes(upstream, gateway_for):
    got_first = threading.Event()

    async def handler(req, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    upstream.handler = handler
    gw = gateway_for(service_doc(upstream.port))
    with socket.create_connection(("127.0.0.1", gw.port), 5) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"4\r\npart\r\n")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if b"4\r\npart\r\n" in upstream.raw:
                got_first.set()
                break
            time.sleep(0.01)
        assert got_first.is_set(), "first chunk did not reach the upstream"
        s.sendall(b"5\r\nmore!\r\n0\r\n\r\n")
        head, rest = read_head(s)
        assert head.startswith(b"HTTP/1.1 200")
    assert upstream.requests[-1].body == b"partmore!"


def test_head_204_304_have_no_body_and_keep_the_connection(upstream, gateway_for):
    async def handler(req, writer):
        if req.target == "/204":
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        elif req.target == "/304":
            writer.write(b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")
            if req.method != "HEAD":
                writer.write(b"hello world")

    upstream.handler = handler
    gw = gateway_for(service_doc(upstream.port))
    with socket.create_connection(("127.0.0.1", gw.port), 5) as s:
        for target, method, status in (("/h", "HEAD", b"200"), ("/204", "GET", b"204"),
                                       ("/304", "GET", b"304"), ("/g", "GET", b"200")):
            s.sendall(f"{method} {target} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            head, rest = read_head(s)
            assert head.split(b" ")[1] == status
            if target == "/h":
                assert b"content-length: 11" in head.lower()
                assert rest == b""
            if target == "/g":
                while len(rest) < 11:
                    rest += s.recv(100)
                assert rest == b"hello world"
    assert [r.method for r in upstream.requests] == ["HEAD", "GET", "GET", "GET"]


def test_expect_100_continue_is_answered_by_the_gateway(upstream, gateway_for):
    gw = gateway_for(service_doc(upstream.port))
    with socket.create_connection(("127.0.0.1", gw.port), 5) as s:
        s.sendall(b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        interim, rest = read_head(s)
        assert interim == b"HTTP/1.1 100 Continue"
        s.sendall(b"data")
        data = rest
        while b"body_len" not in data:
            data += s.recv(65536)
        assert b"HTTP/1.1 200 OK" in data
    req = upstream.requests[-1]
    assert req.body == b"data"
    assert req.header("expect") is None


def test_mock_llm_sse_events_arrive_one_by_one(gateway_for):
    from fastgw.testing.mock_llm import running_mock

    with running_mock(tokens_per_s=20) as mock:
        gw = gateway_for(service_doc(mock.port))
        body = (b'{"model":"m","stream":true,"max_tokens":8,'
                b'"messages":[{"role":"user","content":"count to eight"}]}')
        with socket.create_connection(("127.0.0.1", gw.port), 10) as s:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body))
            head, rest = read_head(s)
            assert b"text/event-stream" in head.lower()
            arrivals = []
            data = rest
            while b"[DONE]" not in data:
                chunk = s.recv(65536)
                assert chunk
                arrivals.append((time.monotonic(), chunk.count(b"data: ")))
                data += chunk
    # Events were paced at 20 tokens/s by the upstream: they must arrive
    # spread out, not in one burst at the end.
    times = [t for t, n in arrivals if n]
    assert len(times) >= 4
    assert times[-1] - times[0] > 0.15
