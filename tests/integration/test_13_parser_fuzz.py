"""Property-based fuzzing of the request path of a running gateway: byte
sequences built from the pieces of HTTP/1.1 that parsers disagree on. Whatever
arrives, the gateway answers with well-framed responses (or closes), its
worker survives, and it logs no traceback."""

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastgw.testing import (
    GatewayProcess,
    UpstreamServer,
    children_of,
    parse_responses,
    service_doc,
)

LINES = [b"GET / HTTP/1.1", b"POST /a HTTP/1.1", b"HEAD /b HTTP/1.1", b"GET /%2e%2e/x HTTP/1.1",
         b"GET http://h/a HTTP/1.1", b"OPTIONS * HTTP/1.1", b"CONNECT h:1 HTTP/1.1",
         b"GET / HTTP/1.0", b"GET / HTTP/9.Z", b"G\x00T / HTTP/1.1", b"GET /a%zz HTTP/1.1"]
HEADERS = [b"Host: h", b"Host: h", b"Content-Length: 5", b"Content-Length: 0",
           b"Content-Length: 18446744073709551615", b"Content-Length: -1",
           b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip", b"Connection: close",
           b"Connection: keep-alive, content-length", b"Connection: Upgrade",
           b"Upgrade: websocket", b"Expect: 100-continue", b"Expect: nope", b"X: a\x00b",
           b" folded", b"NoColon", b"X-Forwarded-For: 1.2.3.4", b"apikey: k"]
BODIES = [b"", b"hello", b"5\r\nhello\r\n0\r\n\r\n", b"0\r\n\r\n", b"zz\r\n", b"GET / HTTP/1.1\r\n"]
EOLS = [b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"]


@st.composite
def requests(draw):
    eol = draw(st.sampled_from(EOLS))
    head = draw(st.sampled_from(LINES)) + eol
    for header in draw(st.lists(st.sampled_from(HEADERS), max_size=5)):
        head += header + eol
    return head + eol + draw(st.sampled_from(BODIES))


PAYLOADS = st.lists(requests(), min_size=1, max_size=4).map(b"".join) | st.binary(max_size=64)


@pytest.fixture(scope="module")
def fuzz_gateway():
    with UpstreamServer() as up:
        doc = service_doc(up.port)
        doc["_gateway"] = {"client_header_timeout": 1, "client_body_timeout": 1}
        with GatewayProcess(doc) as gw:
            yield gw, children_of(gw.proc.pid, b"fastgw.worker")


def exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), 3) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)  # no more input: the gateway ends the exchange
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        return data


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=PAYLOADS)
def test_any_bytes_get_framed_answers_and_the_worker_survives(fuzz_gateway, payload):
    gw, workers = fuzz_gateway
    raw = exchange(gw.port, payload)
    answers = parse_responses(raw)
    # Every answer is a whole HTTP/1.1 response; at most the last one is cut
    # short (the client gave up first).
    assert all(status >= 100 for status, _, _ in answers[:-1]), raw[:300]
    if answers and answers[-1][0] == 0:
        assert answers[-1][2].startswith(b"HTTP/1.1 ") or answers[-1][2] == b"", raw[:300]


def test_the_fuzzed_gateway_is_still_well(fuzz_gateway):
    gw, workers = fuzz_gateway
    assert gw.request("GET", "/after")[0] == 200
    # No worker died and was replaced.
    assert children_of(gw.proc.pid, b"fastgw.worker") == workers
    assert "Traceback" not in gw.logs()
