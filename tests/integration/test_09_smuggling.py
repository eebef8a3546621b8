"""Request smuggling: every vector runs against a recording origin that
asserts exactly which requests arrived, through a gateway that reuses its
upstream connections (pooled) and one that opens a new one for each request
(fresh).

The config has a public route and a private one behind key-auth: a vector
"works" for an attacker when a request for /private reaches the origin without
the key, when another client receives an answer meant for someone else, or when
the origin reads a body as a request. The vectors are written for this project;
their shapes follow the public lists (CL.TE, TE.CL, TE.TE, hop-by-hop abuse,
upgrades, absolute-form targets, Expect, pipelining).
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from fastgw.testing import (
    GatewayProcess,
    UpstreamServer,
    parse_responses,
    raw_exchange,
    read_until_closed,
)

SMUGGLED_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nX-Smuggled: yes\r\n\r\nsmuggled!"


async def origin(req, writer: asyncio.StreamWriter) -> None:
    """Answers by path; some paths answer with framing an upstream must not
    be trusted with."""
    path = req.target.split("?")[0]
    if path == "/public/204-with-body":
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n" + SMUGGLED_ANSWER)
    elif path == "/public/304-with-body":
        writer.write(b"HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n" + SMUGGLED_ANSWER)
    elif path == "/public/extra-bytes":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + SMUGGLED_ANSWER)
    elif path == "/public/head-with-body":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n" + b"smuggled!")
    elif path == "/public/switch":
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\n\r\n")
    elif path == "/public/switch-h2c":
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
                     b"Connection: Upgrade\r\n\r\n")
    else:
        body = req.method.encode() + b" " + req.target.encode() + b" " + req.body
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode()
                     + b"\r\n\r\n" + body)


def smuggle_doc(port: int, pool_size: int) -> dict:
    url = f"http://127.0.0.1:{port}"
    return {
        "_format_version": "3.0",
        "_gateway": {"upstream_keepalive_pool_size": pool_size, "max_body_bytes": 100000},
        "services": [{"name": "origin", "url": url, "retries": 0, "routes": [
            {"name": "public", "paths": ["/public"], "strip_path": False},
            {"name": "private", "paths": ["/private"], "strip_path": False,
             "plugins": [{"name": "key-auth"}]},
        ]}],
        "consumers": [{"username": "ops", "keyauth_credentials": [{"key": "the-key"}]}],
    }


@pytest.fixture(scope="module", params=["pooled", "fresh"])
def rig(request):
    with UpstreamServer(origin) as up:
        pool_size = 16 if request.param == "pooled" else 0
        with GatewayProcess(smuggle_doc(up.port, pool_size)) as gw:
            gw.pooled = request.param == "pooled"
            yield gw, up


def arrivals(up, before: int, settle: float = 0.15) -> list[str]:
    time.sleep(settle)
    return [f"{r.method} {r.target}" for r in up.requests[before:]]


def exchange(gw, payload: bytes, timeout: float = 3.0) -> bytes:
    if gw.pooled:
        # Put an idle connection in the pool so the vector goes over a reused one.
        assert gw.request("GET", "/public/warm")[0] == 200
    return raw_exchange(gw.port, payload, timeout=timeout)


def assert_no_private(up) -> None:
    leaked = [r.target for r in up.requests if r.target.startswith("/private")
              and r.header("apikey") != "the-key"]
    assert leaked == []


def follow_up_is_clean(gw, up) -> None:
    # Another client, likely on the same pooled upstream connection, gets its
    # own answer and nothing left over from the vector.
    status, headers, body = gw.request("GET", "/public/after")
    assert (status, body) == (200, b"GET /public/after "), (status, headers, body)
    assert "x-smuggled" not in headers


SMUGGLE = b"GET /private/x HTTP/1.1\r\nHost: gw\r\n\r\n"

# (request bytes, statuses the client gets in order, requests the origin gets)
REQUEST_VECTORS = {
    "connection-names-content-length": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n"
        b"Connection: content-length, close\r\n\r\n" % len(SMUGGLE) + SMUGGLE,
        [200], ["POST /public/a"]),
    "connection-names-transfer-encoding": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: transfer-encoding, close\r\n\r\n%x\r\n" % len(SMUGGLE) + SMUGGLE
        + b"\r\n0\r\n\r\n",
        [200], ["POST /public/a"]),
    "connection-names-host": (
        b"GET /public/a HTTP/1.1\r\nHost: gw\r\nConnection: host, x-request-id, close\r\n"
        b"X-Request-Id: abc\r\n\r\n",
        [200], ["GET /public/a"]),
    "cl-te": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 6\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLE,
        [400], []),
    "te-cl": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 4\r\n\r\n5c\r\n" + SMUGGLE + b"\r\n0\r\n\r\n",
        [400], []),
    "te-te-second-coding": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\n" + SMUGGLE,
        [400], []),
    "te-obfuscated-value": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: xchunked\r\n\r\n"
        b"0\r\n\r\n" + SMUGGLE,
        [400], []),
    "te-space-before-colon": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding : chunked\r\n\r\n"
        b"0\r\n\r\n" + SMUGGLE,
        [400], []),
    "te-vertical-tab": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding:\x0bchunked\r\n\r\n"
        b"0\r\n\r\n" + SMUGGLE,
        [400], []),
    "te-chunked-then-other": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
        b"0\r\n\r\n" + SMUGGLE,
        [400], []),
    "duplicate-cl": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nContent-Length: 38\r\n\r\n"
        + SMUGGLE,
        [400], []),
    "cl-with-sign": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nContent-Length: +38\r\n\r\n" + SMUGGLE,
        [400], []),
    "cl-past-signed-range": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 9223372036854775800\r\n\r\n"
        + SMUGGLE,
        [413], []),
    "cl-max-unsigned": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 18446744073709551615\r\n\r\n"
        + SMUGGLE,
        [413], []),
    "pipelined-body-then-private": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello" + SMUGGLE
        + b"GET /public/z HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        [200, 401, 200], ["POST /public/a", "GET /public/z"]),
    "upgrade-refused-then-pipelined": (
        b"GET /public/b HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        + SMUGGLE,
        [200], ["GET /public/b"]),
    "upgrade-with-body": (
        b"POST /public/b HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Content-Length: %d\r\n\r\n" % len(SMUGGLE) + SMUGGLE,
        [400], []),
    "bare-upgrade-header": (
        b"GET /public/b HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\n\r\n" + SMUGGLE
        + b"GET /public/z HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        [200, 401, 200], ["GET /public/b", "GET /public/z"]),
    "connect-method": (
        b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n" + SMUGGLE,
        [405], []),
    "absolute-form-private-with-public-host": (
        b"GET http://gw/private/x HTTP/1.1\r\nHost: gw\r\nX-Original-URL: /public/a\r\n"
        b"Connection: close\r\n\r\n",
        [401], []),
    "absolute-form-public-forwarded-in-origin-form": (
        b"GET http://evil.example/public/a HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        [200], ["GET /public/a"]),
    "malformed-escape-in-path": (
        b"GET /public/%%32%65%%32%65/private/x HTTP/1.1\r\nHost: gw\r\n\r\n" + SMUGGLE,
        [400], []),
    "raw-byte-above-0x7f-refused": (
        b"GET /public/\xff%41 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        [400], []),
    "escaped-byte-above-0x7f-forwarded-encoded": (
        b"GET /public/%ff%41 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        [200], ["GET /public/%FFA"]),
    "expect-unknown": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue-x\r\n"
        b"Content-Length: %d\r\n\r\n" % len(SMUGGLE) + SMUGGLE,
        [417], []),
    # The whole body came with the head: no 100 Continue is due (RFC 9110
    # 10.1.1 lets a server that has the content omit it), and the body is
    # never read as a request of its own.
    "expect-with-body-sent-early": (
        b"POST /public/a HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\n\r\n" % len(SMUGGLE) + SMUGGLE
        + b"GET /public/z HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        [200, 200], ["POST /public/a", "GET /public/z"]),
}


@pytest.mark.parametrize("name", sorted(REQUEST_VECTORS))
def test_request_vector(rig, name):
    gw, up = rig
    payload, statuses, expected = REQUEST_VECTORS[name]
    before = len(up.requests) + (1 if gw.pooled else 0)
    raw = exchange(gw, payload)
    answers = parse_responses(raw)
    assert [a[0] for a in answers] == statuses, raw[:400]
    assert arrivals(up, before) == expected
    assert_no_private(up)
    if statuses[-1] in (400, 405, 413, 417):
        assert "close" in answers[-1][1].get("connection", "").lower()
    follow_up_is_clean(gw, up)


def test_framing_headers_reach_the_origin_as_framed(rig):
    gw, up = rig
    before = len(up.requests) + (1 if gw.pooled else 0)
    raw = exchange(gw, REQUEST_VECTORS["connection-names-content-length"][0])
    assert parse_responses(raw)[0][2] == b"POST /public/a " + SMUGGLE
    req = up.requests[before]
    assert req.header("content-length") == str(len(SMUGGLE))
    assert req.body == SMUGGLE
    raw = exchange(gw, REQUEST_VECTORS["connection-names-host"][0])
    req = up.requests[-1]
    assert req.header("x-request-id") == "abc" and req.header("host")


# (request bytes, the methods in order, statuses the client gets, origin arrivals)
ANSWER_VECTORS = {
    "204-with-body": ("/public/204-with-body", "GET", 204),
    "304-with-body": ("/public/304-with-body", "GET", 304),
    "bytes-past-content-length": ("/public/extra-bytes", "GET", 200),
    "head-answer-with-body": ("/public/head-with-body", "HEAD", 200),
    "unrequested-101": ("/public/switch", "GET", 502),
}


@pytest.mark.parametrize("name", sorted(ANSWER_VECTORS))
def test_upstream_answer_is_framed_by_the_gateway(rig, name):
    gw, up = rig
    path, method, status = ANSWER_VECTORS[name]
    before = len(up.requests) + (1 if gw.pooled else 0)
    payload = (f"{method} {path} HTTP/1.1\r\nHost: gw\r\n\r\n".encode() + SMUGGLE
               + b"GET /public/next HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
    raw = exchange(gw, payload)
    answers = parse_responses(raw, [method, "GET", "GET"])
    assert [a[0] for a in answers] == [status, 401, 200], raw[:600]
    assert b"smuggled" not in raw
    assert answers[2][2] == b"GET /public/next "
    if name == "bytes-past-content-length":
        assert answers[0][2] == b"ok"
    assert arrivals(up, before) == [f"{method} {path}", "GET /public/next"]
    assert_no_private(up)
    follow_up_is_clean(gw, up)


def test_upgrade_to_another_protocol_than_asked_is_502(rig):
    gw, up = rig
    before = len(up.requests) + (1 if gw.pooled else 0)
    raw = exchange(gw, b"GET /public/switch-h2c HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\n"
                       b"Upgrade: websocket\r\n\r\n" + SMUGGLE)
    answers = parse_responses(raw)
    assert [a[0] for a in answers] == [502]
    assert arrivals(up, before) == ["GET /public/switch-h2c"]
    assert_no_private(up)
    follow_up_is_clean(gw, up)


def test_bytes_after_an_upgrade_request_wait_for_the_answer(rig):
    # Sent after the head but before any answer: not forwarded, not parsed.
    gw, up = rig
    before = len(up.requests) + (1 if gw.pooled else 0)
    if gw.pooled:
        assert gw.request("GET", "/public/warm")[0] == 200
    with socket.create_connection(("127.0.0.1", gw.port), 3) as s:
        s.sendall(b"GET /public/b HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\n"
                  b"Upgrade: websocket\r\n\r\n")
        time.sleep(0.05)
        s.sendall(SMUGGLE)
        s.settimeout(3)
        raw = read_until_closed(s)
    assert [a[0] for a in parse_responses(raw)] == [200]
    assert arrivals(up, before) == ["GET /public/b"]
    assert_no_private(up)


MALFORMED = {
    "header-without-colon": b"GET /public/bad HTTP/1.1\r\nHost: gw\r\nNoColonHere\r\n\r\n",
    "garbage-request-line": b"\x01\x02 garbage\r\n\r\n",
    "bad-version": b"GET /public/bad HTTP/9.Z\r\nHost: gw\r\n\r\n",
    "cl-and-te": b"POST /public/bad HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("split", ["one-write", "tail-later"])
@pytest.mark.parametrize("bad", sorted(MALFORMED))
def test_requests_before_a_malformed_one_are_answered_in_order(rig, bad, split):
    gw, up = rig
    before = len(up.requests) + (1 if gw.pooled else 0)
    good = [f"GET /public/n{i} HTTP/1.1\r\nHost: gw\r\n\r\n".encode() for i in range(49)]
    after = [f"GET /public/after{i} HTTP/1.1\r\nHost: gw\r\n\r\n".encode() for i in range(50)]
    head = b"".join(good)
    tail = MALFORMED[bad] + b"".join(after)
    if gw.pooled:
        assert gw.request("GET", "/public/warm")[0] == 200
    with socket.create_connection(("127.0.0.1", gw.port), 5) as s:
        if split == "one-write":
            s.sendall(head + tail)
        else:
            s.sendall(head)
            time.sleep(0.05)
            s.sendall(tail)
        s.settimeout(5)
        raw = read_until_closed(s)
    answers = parse_responses(raw)
    assert [a[0] for a in answers] == [200] * 49 + [400], raw[-300:]
    assert [a[2] for a in answers[:49]] == [f"GET /public/n{i} ".encode() for i in range(49)]
    assert answers[-1][2] == b'{"message":"Bad request"}'
    assert answers[-1][1]["connection"] == "close"
    assert arrivals(up, before) == [f"GET /public/n{i}" for i in range(49)]
