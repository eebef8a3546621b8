"""Ambiguous or oversized requests are refused and never forwarded.

Each case checks the status, that the gateway closed the connection, and
that the upstream received no byte at all.
"""

import socket
import time

import pytest

from fastgw.testing import raw_exchange, read_until_closed, service_doc

AMBIGUOUS = {
    "cl-and-te": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "repeated-cl": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "cl-list": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
    "malformed-cl": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\nhello",
    "negative-cl": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\nhello",
    "te-gzip": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nhello",
    "te-gzip-chunked": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "te-repeated": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n",
    "bare-lf": b"GET / HTTP/1.1\nHost: a\n\n",
    "bare-cr": b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n",
    "nul-in-header": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    "repeated-host": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "missing-host": b"GET / HTTP/1.1\r\nX: y\r\n\r\n",
    "bad-request-line": b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    "bad-chunk-size": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
}


@pytest.fixture(scope="module")
def strict_gateway():
    from fastgw.testing import GatewayProcess, UpstreamServer

    with UpstreamServer() as up:
        doc = service_doc(up.port)
        doc["_gateway"] = {"max_header_bytes": 2048, "max_body_bytes": 1000,
                           "client_header_timeout": 0.5}
        with GatewayProcess(doc) as gw:
            yield gw, up


def assert_refused(raw: bytes, status: bytes) -> None:
    assert raw.startswith(b"HTTP/1.1 " + status), raw[:80]
    head = raw.split(b"\r\n\r\n")[0].lower()
    assert b"connection: close" in head


@pytest.mark.parametrize("case", sorted(AMBIGUOUS))
def test_ambiguous_request_is_refused_with_400(strict_gateway, case):
    gw, up = strict_gateway
    before = len(up.raw)
    # raw_exchange reads until the server closes: a hang would fail on timeout.
    raw = raw_exchange(gw.port, AMBIGUOUS[case])
    assert_refused(raw, b"400")
    assert len(up.raw) == before, "the upstream received bytes"


def test_headers_too_large_is_431(strict_gateway):
    gw, up = strict_gateway
    before = len(up.raw)
    raw = raw_exchange(gw.port, b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n")
    assert_refused(raw, b"431")
    assert len(up.raw) == before


def test_body_too_large_by_content_length_is_413(strict_gateway):
    gw, up = strict_gateway
    before = len(up.raw)
    raw = raw_exchange(gw.port, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n"
                       + b"x" * 5000)
    assert_refused(raw, b"413")
    assert len(up.raw) == before


def test_chunked_body_growing_too_large_never_completes_upstream(strict_gateway):
    gw, up = strict_gateway
    before = len(up.requests)
    payload = (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"3e8\r\n" + b"y" * 1000 + b"\r\n" + b"10\r\n" + b"z" * 16 + b"\r\n0\r\n\r\n")
    raw = raw_exchange(gw.port, payload)
    assert b" 413 " in raw.split(b"\r\n")[0] or raw == b""
    time.sleep(0.2)
    # The upstream may have seen the start of the body, but never a whole request.
    assert len(up.requests) == before


def test_slow_head_is_408(strict_gateway):
    gw, up = strict_gateway
    before = len(up.raw)
    with socket.create_connection(("127.0.0.1", gw.port), 5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        t0 = time.monotonic()
        data = read_until_closed(s)
        elapsed = time.monotonic() - t0
    assert_refused(data, b"408")
    assert 0.3 < elapsed < 3
    assert len(up.raw) == before


def test_worker_survives_bad_input(strict_gateway):
    gw, _ = strict_gateway
    for payload in AMBIGUOUS.values():
        raw_exchange(gw.port, payload)
    status, _, _ = gw.request("GET", "/fine")
    assert status == 200


def test_stalled_body_is_408():
    from fastgw.testing import GatewayProcess, UpstreamServer

    with UpstreamServer() as up:
        doc = service_doc(up.port)
        doc["_gateway"] = {"client_body_timeout": 0.5}
        with GatewayProcess(doc) as gw:
            with socket.create_connection(("127.0.0.1", gw.port), 5) as s:
                s.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
                t0 = time.monotonic()
                data = read_until_closed(s)
                elapsed = time.monotonic() - t0
            # A body sent at a steady pace is fine, however long it takes.
            with socket.create_connection(("127.0.0.1", gw.port), 5) as s:
                s.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\n")
                for piece in (b"ab", b"cd", b"ef"):
                    time.sleep(0.3)
                    s.sendall(piece)
                slow_ok = s.recv(4096)
    assert_refused(data, b"408")
    assert 0.3 < elapsed < 3
    assert slow_ok.startswith(b"HTTP/1.1 200")
    # The stalled request never completed upstream.
    assert [r.body for r in up.requests] == [b"abcdef"]
