"""HTTP behaviour: keep-alive, pipelining, routing errors, introspection, latency, pacing,
failure injection, and the CLI entry points."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import socket
import time
from collections import Counter

import openai
import orjson
import pytest

from fastgw.mockllm import build_parser, main, serve
from fastgw.mockllm.app import IncomingRequest, MockApp, MockSettings
from fastgw.testing.mock_llm import running_mock

CHAT_BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "ping"}]})


def _raw_request(path: str, body: bytes = b"", method: str = "POST", extra: bytes = b"") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n".encode()
        + extra
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )


def _read_response(reader) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response (Content-Length or chunked) from a socket file."""
    status = int(reader.readline().split()[1])
    headers = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        return status, headers, reader.read(int(headers["content-length"]))
    chunks = []
    while (size := int(reader.readline().strip(), 16)) > 0:
        chunks.append(reader.read(size))
        reader.readline()
    reader.readline()
    return status, headers, b"".join(chunks)


def test_keep_alive_serves_two_requests_on_one_connection(mock_llm):
    with socket.create_connection((mock_llm.host, mock_llm.port), timeout=5) as sock:
        reader = sock.makefile("rb")
        sock.sendall(_raw_request("/v1/chat/completions", CHAT_BODY))
        first = _read_response(reader)
        sock.sendall(_raw_request("/v1/chat/completions", CHAT_BODY))
        second = _read_response(reader)
    for status, headers, body in (first, second):
        assert status == 200 and headers["connection"] == "keep-alive"
        assert orjson.loads(body)["object"] == "chat.completion"
    assert orjson.loads(first[2])["id"] != orjson.loads(second[2])["id"]


def test_pipelined_requests_are_answered_in_order_even_behind_a_stream(mock_llm):
    stream_body = orjson.dumps({**orjson.loads(CHAT_BODY), "stream": True})
    with socket.create_connection((mock_llm.host, mock_llm.port), timeout=5) as sock:
        reader = sock.makefile("rb")
        sock.sendall(
            _raw_request("/v1/chat/completions", stream_body)
            + _raw_request("/v1/models", method="GET")
            + _raw_request("/_mock/health", method="GET")
        )
        streamed = _read_response(reader)
        models = _read_response(reader)
        health = _read_response(reader)
    assert streamed[1]["transfer-encoding"] == "chunked" and streamed[2].endswith(
        b"data: [DONE]\n\n"
    )
    assert orjson.loads(models[2])["object"] == "list"
    assert orjson.loads(health[2]) == {"status": "ok"}


def test_connection_close_is_honoured(mock_llm):
    with socket.create_connection((mock_llm.host, mock_llm.port), timeout=5) as sock:
        sock.sendall(_raw_request("/_mock/health", method="GET", extra=b"connection: close\r\n"))
        status, headers, _ = _read_response(sock.makefile("rb"))
        assert (status, headers["connection"]) == (200, "close")
        assert sock.recv(1) == b""  # the server closed its side


def test_malformed_http_gets_400_and_close(mock_llm):
    with socket.create_connection((mock_llm.host, mock_llm.port), timeout=5) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        status, headers, _ = _read_response(sock.makefile("rb"))
    assert (status, headers["connection"]) == (400, "close")


def test_expect_100_continue(mock_llm):
    with socket.create_connection((mock_llm.host, mock_llm.port), timeout=5) as sock:
        head, _, body = _raw_request(
            "/v1/chat/completions", CHAT_BODY, extra=b"expect: 100-continue\r\n"
        ).partition(b"\r\n\r\n")
        sock.sendall(head + b"\r\n\r\n")
        reader = sock.makefile("rb")
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n" and reader.readline() == b"\r\n"
        sock.sendall(body)
        assert _read_response(reader)[0] == 200


def test_unknown_path_and_wrong_method_use_the_provider_error_shape(call_mock):
    unknown = call_mock("GET", "/v1/nothing-here")
    assert unknown.status == 404 and unknown.json()["error"]["type"] == "invalid_request_error"
    wrong_method = call_mock("GET", "/v1/messages")
    assert wrong_method.status == 405 and wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["type"] == "error"  # Anthropic shape for an Anthropic path
    assert call_mock("GET", "/api/nothing").json() == {"error": "Unknown path: GET /api/nothing"}
    bad_control = call_mock(
        "POST", "/v1/chat/completions", raw_body=CHAT_BODY, headers={"x-mock-status": "abc"}
    )
    assert bad_control.status == 400


def test_request_log_records_and_clears(mock_llm, call_mock):
    mock_llm.clear_requests()
    call_mock(
        "POST", "/v1/chat/completions?trace=1", raw_body=CHAT_BODY, headers={"x-custom": "yes"}
    )
    call_mock("GET", "/_mock/health")  # introspection calls are not recorded
    (recorded,) = mock_llm.requests()
    assert (recorded["method"], recorded["path"], recorded["query"]) == (
        "POST",
        "/v1/chat/completions",
        "trace=1",
    )
    assert ["x-custom", "yes"] in [[name.lower(), value] for name, value in recorded["headers"]]
    assert orjson.loads(recorded["body"]) == orjson.loads(CHAT_BODY)
    for _ in range(105):
        call_mock("GET", "/v1/models")
    assert len(mock_llm.requests()) == 100
    assert call_mock("DELETE", "/_mock/requests").json() == {"cleared": 100}
    assert mock_llm.requests() == []


def test_latency_header_overrides_per_request(call_mock):
    started = time.perf_counter()
    call_mock(
        "POST", "/v1/chat/completions", raw_body=CHAT_BODY, headers={"x-mock-latency-ms": "200"}
    )
    assert time.perf_counter() - started >= 0.2


def test_latency_and_token_pacing_options():
    with running_mock(latency_ms=150, tokens_per_s=100) as mock:
        client = openai.OpenAI(base_url=mock.openai_base_url, api_key="k", max_retries=0)
        started = time.perf_counter()
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert time.perf_counter() - started >= 0.15
        started = time.perf_counter()
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        next(iter(stream))
        first_chunk_s = time.perf_counter() - started
        list(stream)
        total_s = time.perf_counter() - started
        # 16 tokens at 100/s: 15 gaps of 10 ms after the first token.
        assert first_chunk_s >= 0.15 and total_s >= 0.15 + 0.14
        fast = time.perf_counter()
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-mock-latency-ms": "0"},
        )
        assert time.perf_counter() - fast < 0.15
        client.close()


def test_fail_rate_is_roughly_honoured():
    with running_mock(fail_rate=0.3, seed=42) as mock:
        connection = http.client.HTTPConnection(mock.host, mock.port, timeout=5)
        statuses = Counter()
        for _ in range(300):
            connection.request("POST", "/v1/chat/completions", body=CHAT_BODY)
            response = connection.getresponse()
            body = orjson.loads(response.read())
            statuses[response.status] += 1
            if response.status != 200:
                assert body["error"]["message"]  # OpenAI error shape
        connection.close()
    failures = 300 - statuses[200]
    assert 0.2 * 300 < failures < 0.4 * 300
    assert set(statuses) == {200, 429, 500, 503}


def test_failures_are_reproducible_with_a_seed():
    def draw(seed):
        app = MockApp(MockSettings(fail_rate=0.5, seed=seed))
        request = IncomingRequest()
        request.method, request.url, request.body = b"POST", b"/v1/chat/completions", CHAT_BODY
        request.finish_url()
        return [app.plan(request).reply.status for _ in range(40)]

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)


def test_serve_in_process_on_a_free_port():
    async def scenario() -> bytes:
        server = await serve(port=0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /_mock/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        answer = await reader.read()
        writer.close()
        server.close()
        await server.wait_closed()
        return answer

    answer = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b'{"status":"ok"}')


def test_cli_subcommand_and_option_checks():
    parser = argparse.ArgumentParser(prog="fastgw")
    build_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["mock-llm", "--port", "0", "--fail-rate", "0.25", "--seed", "5"])
    assert (args.command, args.host, args.port, args.fail_rate, args.seed) == (
        "mock-llm",
        "127.0.0.1",
        0,
        0.25,
        5,
    )
    assert (args.latency_ms, args.tokens_per_s) == (0, 0) and callable(args.func)
    with pytest.raises(SystemExit) as exited:
        main(["--fail-rate", "1.5"])
    assert exited.value.code == 2


def test_large_stream_to_a_slow_reader_arrives_whole(mock_llm):
    # ~12 MB of events: more than the socket buffers hold, so the server must wait for the reader.
    body = orjson.dumps({**orjson.loads(CHAT_BODY), "stream": True})
    with socket.create_connection((mock_llm.host, mock_llm.port), timeout=10) as sock:
        sock.sendall(
            _raw_request("/v1/chat/completions", body, extra=b"x-mock-output-tokens: 50000\r\n")
        )
        time.sleep(0.3)
        status, _, streamed = _read_response(sock.makefile("rb"))
    events = [line for line in streamed.split(b"\n\n") if line]
    assert status == 200 and events[-1] == b"data: [DONE]"
    assert len(events) == 50000 + 3  # role chunk, tokens, finish chunk, [DONE]


def test_output_tokens_header_sets_answer_length(call_mock):
    response = call_mock(
        "POST", "/v1/chat/completions", raw_body=CHAT_BODY, headers={"x-mock-output-tokens": "40"}
    )
    assert response.json()["usage"]["completion_tokens"] == 40
    too_many = call_mock(
        "POST",
        "/v1/chat/completions",
        raw_body=CHAT_BODY,
        headers={"x-mock-output-tokens": "10000000"},
    )
    assert too_many.status == 400


def test_bodies_split_across_reads_and_chunked_bodies(mock_llm, call_mock):
    long_text = "lorem ipsum " * 30000  # ~360 kB: arrives in many reads
    embedded = call_mock("POST", "/v1/embeddings", {"model": "e", "input": long_text})
    assert embedded.status == 200 and embedded.json()["usage"]["prompt_tokens"] == 60000
    half = len(CHAT_BODY) // 2
    chunked = b"".join(
        b"%x\r\n%b\r\n" % (len(part), part) for part in (CHAT_BODY[:half], CHAT_BODY[half:])
    )
    with socket.create_connection((mock_llm.host, mock_llm.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
            + chunked
            + b"0\r\n\r\n"
        )
        status, _, body = _read_response(sock.makefile("rb"))
    assert status == 200 and orjson.loads(body)["choices"][0]["message"]["content"].startswith(
        "Mock answer to: ping"
    )
