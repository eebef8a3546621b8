"""balancer.stream_continuation through the real gateway: a streamed answer
whose provider breaks off (the connection cut, its own error event) is
finished by the next target in the same client stream, read by the official
SDKs; the continuation request says where to go on from (Anthropic: a
prefill; others: the text and an instruction); usage and cost add up both
calls and the log names both attempts. Off, or when nothing can continue,
the stream ends with its error event as before."""

import asyncio
import socket

import anthropic
import openai
import orjson
import pytest

from fastgw.plugins.ai_proxy_advanced.continuation import CONTINUE_INSTRUCTION
from fastgw.testing import GatewayProcess, UpstreamServer, log_entries, raw_exchange

QUESTION = [{"role": "user", "content": "What is six times seven?"}]
FIRST_TEXT = "The answer is "


def sse(*events: dict) -> bytes:
    return b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events)


def chunk(delta: dict, finish: str | None = None, chunk_id: str = "chatcmpl-first") -> dict:
    return {"id": chunk_id, "object": "chat.completion.chunk", "created": 111,
            "model": "gpt-x", "choices": [{"index": 0, "delta": delta,
                                           "finish_reason": finish}]}


def head(writer) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")


def send_chunked(writer, data: bytes) -> None:
    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def anthropic_event(kind: str, fields: dict) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **fields}) \
        + b"\n\n"


async def providers(req, writer):
    # /<behaviour>/<name>/...: how this target answers, and a name to count by.
    behaviour = req.target.split("/")[1]
    if behaviour in ("cut", "error", "tool-cut"):
        head(writer)
        if behaviour == "tool-cut":
            call = {"index": 0, "id": "call_1", "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "six'}}
            send_chunked(writer, sse(chunk({"role": "assistant", "tool_calls": [call]})))
        else:
            send_chunked(writer, sse(chunk({"role": "assistant", "content": ""}),
                                     chunk({"content": FIRST_TEXT})))
        await writer.drain()
        await asyncio.sleep(0.05)
        if behaviour == "error":
            # The provider's own error event mid-answer, then a clean end.
            send_chunked(writer, sse({"error": {"message": "overloaded", "type": "server"}}))
            writer.write(b"0\r\n\r\n")
            return
        writer.transport.abort()
    elif behaviour == "rest":
        body = sse(chunk({"role": "assistant", "content": ""}, chunk_id="chatcmpl-second"),
                   chunk({"content": " forty-two."}, chunk_id="chatcmpl-second"),
                   chunk({}, "stop", chunk_id="chatcmpl-second"),
                   {"id": "chatcmpl-second", "object": "chat.completion.chunk", "created": 222,
                    "model": "gpt-x", "choices": [],
                    "usage": {"prompt_tokens": 30, "completion_tokens": 4,
                              "total_tokens": 34}}) + b"data: [DONE]\n\n"
        head(writer)
        send_chunked(writer, body)
        writer.write(b"0\r\n\r\n")
    elif behaviour == "anthropic-rest":
        body = b"".join((
            anthropic_event("message_start", {"message": {
                "id": "msg_2", "type": "message", "role": "assistant", "model": "claude-x",
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 25, "output_tokens": 1}}}),
            anthropic_event("content_block_start", {"index": 0, "content_block": {
                "type": "text", "text": ""}}),
            anthropic_event("content_block_delta", {"index": 0, "delta": {
                "type": "text_delta", "text": " forty-two."}}),
            anthropic_event("content_block_stop", {"index": 0}),
            anthropic_event("message_delta", {"delta": {"stop_reason": "end_turn",
                                                        "stop_sequence": None},
                                              "usage": {"output_tokens": 4}}),
            anthropic_event("message_stop", {}),
        ))
        head(writer)
        send_chunked(writer, body)
        writer.write(b"0\r\n\r\n")
    elif behaviour == "slow-rest":
        # The rest begins, then takes its time: the client leaves meanwhile.
        head(writer)
        send_chunked(writer, sse(chunk({"content": " forty"})))
        await writer.drain()
        await asyncio.sleep(1.0)
        send_chunked(writer, sse(chunk({"content": "-two."}, "stop")) + b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
    elif behaviour == "down":
        writer.write(b"HTTP/1.1 503 Unavailable\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 40\r\n\r\n" + b'{"error": {"message": "down", "x": 1}} ')


def target(base: str, behaviour: str, name: str, provider: str = "openai", **extra) -> dict:
    if provider == "anthropic":
        model = {"provider": "anthropic", "name": "claude-x",
                 "options": {"upstream_url": f"{base}/{behaviour}/{name}/v1/messages",
                             "anthropic_version": "2023-06-01",
                             "input_cost": 3.0, "output_cost": 15.0}}
        auth = {"header_name": "x-api-key", "header_value": "provider-key-b"}
    else:
        model = {"provider": "openai", "name": "gpt-x",
                 "options": {"upstream_url": f"{base}/{behaviour}/{name}/v1/chat/completions",
                             "input_cost": 1.0, "output_cost": 2.0}}
        auth = {"header_name": "Authorization", "header_value": "Bearer provider-key-a"}
    return {"route_type": "llm/v1/chat", "model": model, "auth": auth,
            "logging": {"log_statistics": True, "log_payloads": True}, **extra}


def route(name: str, targets: list, llm_format: str = "openai", **balancer) -> dict:
    return {"name": name, "paths": [f"/{name}"], "plugins": [{
        "name": "ai-proxy-advanced",
        "config": {"targets": targets, "llm_format": llm_format,
                   "balancer": {"algorithm": "priority", "read_timeout": 2000,
                                "stream_continuation": True, **balancer}}}]}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("continuation") / "access.log"
    with UpstreamServer(providers) as up:
        base = f"http://127.0.0.1:{up.port}"
        routes = [
            route("to-openai", [target(base, "cut", "o1"),
                                target(base, "rest", "o2", priority=2)]),
            route("to-anthropic", [target(base, "cut", "a1"),
                                   target(base, "anthropic-rest", "a2", "anthropic",
                                          priority=2)], llm_format="anthropic"),
            route("error-event", [target(base, "error", "e1"),
                                  target(base, "down", "e2", priority=2),
                                  target(base, "rest", "e3", priority=3)]),
            route("off", [target(base, "cut", "f1"), target(base, "rest", "f2", priority=2)],
                  stream_continuation=False),
            route("nothing-left", [target(base, "cut", "n1"),
                                   target(base, "down", "n2", priority=2)]),
            route("tool-call", [target(base, "tool-cut", "t1"),
                                target(base, "rest", "t2", priority=2)]),
            route("client-leaves", [target(base, "cut", "l1"),
                                    target(base, "slow-rest", "l2", priority=2)]),
        ]
        budgeted = route("budgeted", [target(base, "cut", "b1"),
                                      target(base, "anthropic-rest", "b2", "anthropic",
                                             priority=2)])
        budgeted["plugins"] += [
            {"name": "key-auth", "config": {}},
            {"name": "ai-rate-limiting-advanced", "config": {
                "llm_providers": [], "budget": {"day": 10.0}}}]
        doc = {
            "_format_version": "3.0",
            "services": [{"name": "llm", "url": base, "routes": [*routes, budgeted]}],
            "consumers": [{"username": "ann", "keyauth_credentials": [{"key": "ann-key"}]}],
            "plugins": [{"name": "file-log", "config": {"path": str(log_path)}}],
        }
        with GatewayProcess(doc) as gw:
            yield gw, up, log_path


def bodies(up, name: str) -> list[dict]:
    return [orjson.loads(r.body) for r in up.requests if r.target.split("/")[2] == name]


def logged(log_path, path: str) -> dict:
    [entry] = log_entries(log_path, lambda e: e["request"]["uri"].startswith(path))
    return entry["ai"]["proxy"]


def raw_stream(gw, path: str, body: dict) -> bytes:
    data = orjson.dumps(body)
    return raw_exchange(gw.port, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        f"application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                        + data)


def test_an_openai_client_reads_one_stream_finished_by_the_next_target(gateway):
    gw, up, log_path = gateway
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{gw.port}/to-openai/v1", api_key="x",
                           max_retries=0)
    stream = client.chat.completions.create(model="gpt-x", messages=QUESTION, stream=True,
                                            max_tokens=50,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The answer is forty-two."  # no doubled space where the two calls meet
    assert {c.id for c in chunks} == {"chatcmpl-first"}  # one stream, as the client sees it
    assert [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role] \
        == ["assistant"]
    assert [c.choices[0].finish_reason for c in chunks
            if c.choices and c.choices[0].finish_reason] == ["stop"]
    # The usage chunk counts both calls: the cut one estimated, the second as reported.
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 4 and usage.prompt_tokens > 30

    # The second target was asked to go on from the text sent, with the
    # instruction (OpenAI has no prefill), and a ceiling less what was sent.
    [continued] = bodies(up, "o2")
    assert continued["messages"][:-2] == QUESTION
    assert continued["messages"][-2] == {"role": "assistant", "content": FIRST_TEXT}
    assert continued["messages"][-1] == {"role": "user", "content": CONTINUE_INSTRUCTION}
    assert continued["stream"] is True and 40 < continued["max_tokens"] < 50

    section = logged(log_path, "/to-openai")
    assert [(t["target"], t["outcome"], t.get("continuation", False))
            for t in section["tries"]] == [("openai/gpt-x", "stream_cut", False),
                                           ("openai/gpt-x#2", "ok", True)]
    assert section["continuation"]["method"] == "instruction"
    assert section["usage"]["total_tokens"] == usage.total_tokens
    assert section["usage"]["estimated"] is True  # the cut call's share is an estimate
    # Cost: each call at its own target's prices (here the same: 1 and 2 a token).
    expected = (usage.prompt_tokens * 1.0 + usage.completion_tokens * 2.0) / 1e6
    assert section["usage"]["cost"] == pytest.approx(expected)
    assert "forty-two" in section["payload"]["response"]


def test_an_anthropic_client_gets_the_rest_from_anthropic_by_prefill(gateway):
    gw, up, log_path = gateway
    client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{gw.port}/to-anthropic",
                                 api_key="x", max_retries=0)
    with client.messages.stream(model="claude-x", max_tokens=50, messages=QUESTION) as stream:
        events = list(stream)
        final = stream.get_final_message()
    kinds = [e.type for e in events]
    assert kinds.count("message_start") == 1 and kinds.count("message_stop") == 1
    assert "error" not in kinds
    assert final.content[0].text == "The answer is forty-two."
    assert final.stop_reason == "end_turn"
    [continued] = bodies(up, "a2")
    # Anthropic continues the assistant message given last (without its
    # trailing space, which Anthropic refuses in a prefill).
    assert continued["messages"][-1] == {"role": "assistant", "content": "The answer is"}
    assert continued["messages"][:-1] == QUESTION
    section = logged(log_path, "/to-anthropic")
    assert section["continuation"]["method"] == "prefill"
    assert [t["outcome"] for t in section["tries"]] == ["stream_cut", "ok"]
    # Prices differ: the Anthropic call's tokens at its own (3 and 15 a token).
    assert section["usage"]["cost"] > (25 * 3.0 + 4 * 15.0) / 1e6


def test_a_provider_error_event_is_continued_past_a_target_that_is_down(gateway):
    gw, up, log_path = gateway
    raw = raw_stream(gw, "/error-event", {"model": "gpt-x", "messages": QUESTION,
                                          "stream": True})
    events = raw.partition(b"\r\n\r\n")[2]
    assert b"overloaded" not in events and b'"error"' not in events
    assert b"forty-two" in events and b"[DONE]" in events and events.endswith(b"0\r\n\r\n")
    assert len(bodies(up, "e2")) == 1 and len(bodies(up, "e3")) == 1
    section = logged(log_path, "/error-event")
    assert [(t["outcome"], t["status"]) for t in section["tries"]] == [
        ("stream_error", None), ("http_503", 503), ("ok", 200)]


@pytest.mark.parametrize(("path", "second"), [
    ("/off", "f2"),            # stream_continuation: false (the default)
    ("/nothing-left", "n2"),   # the only other target answers 503
    ("/tool-call", "t2"),      # cut inside a tool call: its arguments are not continued
])
def test_a_stream_that_cannot_be_continued_ends_with_its_error_event(gateway, path, second):
    gw, up, _ = gateway
    raw = raw_stream(gw, path, {"model": "gpt-x", "messages": QUESTION, "stream": True})
    head, _, events = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b'"error"' in events and b"[DONE]" not in events
    assert not events.endswith(b"0\r\n\r\n")  # no clean end: the client can tell
    assert len(bodies(up, second)) == (1 if path == "/nothing-left" else 0)


def test_a_budget_is_charged_each_call_at_its_own_price(gateway):
    gw, up, log_path = gateway
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{gw.port}/budgeted/v1", api_key="x",
                           max_retries=0, default_headers={"apikey": "ann-key"})
    text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="gpt-x", messages=QUESTION, stream=True, max_tokens=50) if c.choices)
    assert text == "The answer is forty-two."
    section = logged(log_path, "/budgeted")
    assert section["continuation"]["to"] == "anthropic/claude-x"
    status, _, body = gw.admin("GET", "/ai/budgets/ann")
    assert status == 200, body
    [day] = orjson.loads(body)["data"]
    # What the budget holds is what the log says both calls cost, nothing reserved.
    assert day["reserved"] == 0
    assert day["spent"] == pytest.approx(section["usage"]["cost"], abs=1e-6)
    assert section["usage"]["cost"] > (25 * 3.0 + 4 * 15.0) / 1e6


def test_a_client_that_leaves_during_the_continuation_is_logged_and_released(gateway):
    gw, up, log_path = gateway
    data = orjson.dumps({"model": "gpt-x", "messages": QUESTION, "stream": True})
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
        sock.sendall(b"POST /client-leaves HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: " + str(len(data)).encode()
                     + b"\r\n\r\n" + data)
        received = b""
        while b"forty" not in received:
            piece = sock.recv(65536)
            assert piece, received
            received += piece
    section = logged(log_path, "/client-leaves")
    assert [(t["outcome"], t.get("continuation", False)) for t in section["tries"]] == [
        ("stream_cut", False), ("client_closed", True)]
    assert section["usage"]["completion_tokens"] > 0  # both calls' words are counted
    # The worker goes on serving.
    assert gw.request("POST", "/to-openai", data, {"Content-Type": "application/json"})[0] \
        == 200
