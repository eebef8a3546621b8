"""A dead, slow or broken upstream gets Kong's statuses and wording."""

import asyncio
import socket
import time

import orjson

from fastgw.testing import free_port, read_until_closed, service_doc


def test_refused_connection_is_502_after_retries(gateway_for):
    port = free_port()  # nothing listens there
    gw = gateway_for(service_doc(port, retries=2))
    status, _, body = gw.request("GET", "/")
    assert status == 502
    assert orjson.loads(body) == {
        "message": "An invalid response was received from the upstream server"}


def test_read_timeout_is_504(upstream, gateway_for):
    async def handler(req, writer):
        await asyncio.sleep(3)

    upstream.handler = handler
    gw = gateway_for(service_doc(upstream.port, read_timeout=300))
    t0 = time.monotonic()
    status, _, body = gw.request("GET", "/")
    elapsed = time.monotonic() - t0
    assert status == 504
    assert orjson.loads(body) == {"message": "The upstream server is timing out"}
    assert 0.25 < elapsed < 2.0


def test_connect_timeout_is_504(gateway_for):
    # A listening socket whose backlog is full never completes the handshake.
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        fillers = []
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        gw = gateway_for(service_doc(port, connect_timeout=200, retries=0))
        status, _, body = gw.request("GET", "/")
        for s in fillers:
            s.close()
    assert status == 504
    assert orjson.loads(body) == {"message": "The upstream server is timing out"}


def test_failed_connect_is_retried_up_to_retries(gateway_for):
    # Kong counts retries per request: retries=3 means 4 attempts in all.
    port = free_port()
    gw = gateway_for(service_doc(port, retries=3))
    status, _, _ = gw.request("GET", "/")
    assert status == 502
    _, _, body = gw.admin("GET", "/status")
    assert orjson.loads(body)["server"]["upstream_connect_failures"] == 4


def test_garbage_from_upstream_is_502(upstream, gateway_for):
    async def handler(req, writer):
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")

    upstream.handler = handler
    gw = gateway_for(service_doc(upstream.port))
    status, _, body = gw.request("GET", "/")
    assert status == 502
    assert b"invalid response" in body


def test_upstream_dying_mid_answer_never_looks_complete(upstream, gateway_for):
    async def handler(req, writer):
        if req.target == "/cl":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n")
        await writer.drain()
        writer.transport.abort()

    upstream.handler = handler
    gw = gateway_for(service_doc(upstream.port))
    for target in ("/cl", "/chunked"):
        with socket.create_connection(("127.0.0.1", gw.port), 5) as s:
            s.sendall(f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            data = read_until_closed(s)
        head, body = data.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200")
        if target == "/cl":
            assert len(body) < 100
        else:
            assert not body.endswith(b"0\r\n\r\n")
        # The gateway closed the connection instead of finishing the message.


def test_stale_pooled_connection_is_retried_transparently(upstream, gateway_for):
    async def handler(req, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        # Close right after answering, without saying so: the gateway's pooled
        # connection goes stale.
        await asyncio.sleep(0.05)
        writer.transport.close()

    upstream.handler = handler
    gw = gateway_for(service_doc(upstream.port))
    for _ in range(5):
        status, _, body = gw.request("POST", "/", body=b"x" * 10)
        assert (status, body) == (200, b"ok")
        time.sleep(0.1)
