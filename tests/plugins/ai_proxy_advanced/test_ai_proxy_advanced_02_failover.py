"""ai-proxy-advanced through the real gateway, against a chaos upstream: each
target is a path that answers one way (ok, 429 with Retry-After, 500, 503, a
reset before the head, a stall past the read timeout, a stream cut short),
and every test counts what each target received."""

import asyncio
import socket
from collections import Counter

import orjson
import pytest

from fastgw.testing import (
    GatewayProcess,
    UpstreamServer,
    log_entries,
    metric_sum,
    raw_exchange,
)

KEY_A = "provider-key-a"
KEY_ANTHROPIC = "provider-key-anthropic"
CHAT = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}
OPENAI_OK = orjson.dumps({
    "id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-x",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "from openai"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
})
ANTHROPIC_OK = orjson.dumps({
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
    "content": [{"type": "text", "text": "from anthropic"}],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 4, "output_tokens": 3},
})


def sse(*events: dict) -> bytes:
    return b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events)


def chunk(content: str) -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}


def respond(writer, status: str, body: bytes, content_type: str = "application/json",
            extra: bytes = b"") -> None:
    writer.write(b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: " + content_type.encode()
                 + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" + extra
                 + b"\r\n" + body)


async def chaos(req, writer):
    # /<behaviour>/<target>/...: the behaviour, and a name to count by.
    behaviour = req.target.split("/")[1]
    streamed = orjson.loads(req.body or b"{}").get("stream") is True
    if behaviour == "ok":
        if streamed:
            body = sse(chunk("from "), chunk("openai")) + b"data: [DONE]\n\n"
            respond(writer, "200 OK", body, "text/event-stream")
        else:
            respond(writer, "200 OK", OPENAI_OK)
    elif behaviour == "slow":
        await asyncio.sleep(0.15)
        respond(writer, "200 OK", OPENAI_OK)
    elif behaviour == "big":
        answer = orjson.loads(OPENAI_OK)
        answer["usage"] = {"prompt_tokens": 300, "completion_tokens": 200, "total_tokens": 500}
        respond(writer, "200 OK", orjson.dumps(answer))
    elif behaviour == "anthropic":
        respond(writer, "200 OK", ANTHROPIC_OK)
    elif behaviour == "429":
        respond(writer, "429 Too Many Requests",
                b'{"error": {"message": "slow down", "type": "rate_limit"}}',
                extra=b"Retry-After: 30\r\n")
    elif behaviour in ("500", "503"):
        respond(writer, f"{behaviour} Oops", b'{"error": {"message": "down", "type": "server"}}')
    elif behaviour == "reset":
        writer.transport.abort()
    elif behaviour == "stall":
        await asyncio.sleep(1.5)
        respond(writer, "200 OK", OPENAI_OK)
    elif behaviour == "cut":
        # A streamed answer's head and first event, then the connection drops.
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        event = sse(chunk("partial"))
        writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.transport.abort()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openai_target(base: str, behaviour: str, name: str, **extra) -> dict:
    return {
        "route_type": "llm/v1/chat",
        "model": {"provider": "openai", "name": "gpt-x",
                  "options": {"upstream_url": f"{base}/{behaviour}/{name}/v1/chat/completions",
                              "input_cost": 1.0, "output_cost": 2.0}},
        "auth": {"header_name": "Authorization", "header_value": f"Bearer {KEY_A}"},
        "logging": {"log_statistics": True},
        **extra,
    }


def anthropic_target(base: str, name: str, **extra) -> dict:
    return {
        "route_type": "llm/v1/chat",
        "model": {"provider": "anthropic", "name": "claude-x",
                  "options": {"upstream_url": f"{base}/anthropic/{name}/v1/messages",
                              "anthropic_version": "2023-06-01"}},
        "auth": {"header_name": "x-api-key", "header_value": KEY_ANTHROPIC},
        "logging": {"log_statistics": True},
        **extra,
    }


EVERYTHING = ["error", "timeout", "http_429", "http_500", "http_503", "non_idempotent"]


def route(name: str, targets: list, **balancer) -> dict:
    return {"name": name, "paths": [f"/{name}"], "plugins": [{
        "name": "ai-proxy-advanced",
        "config": {"targets": targets, "balancer": {"read_timeout": 400, **balancer}}}]}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("ai-advanced") / "access.log"
    with UpstreamServer(chaos) as up:
        base = f"http://127.0.0.1:{up.port}"
        dead = f"http://127.0.0.1:{closed_port()}"
        routes = [
            route("retry-after", [openai_target(base, "429", "ra1"),
                                  openai_target(base, "ok", "ra2", priority=2)],
                  algorithm="priority", failover_criteria=EVERYTHING),
            route("http500", [openai_target(base, "500", "h1"),
                              openai_target(base, "ok", "h2", priority=2)],
                  algorithm="priority", failover_criteria=EVERYTHING),
            route("no-non-idempotent", [openai_target(base, "503", "n1"),
                                        openai_target(base, "ok", "n2", priority=2)],
                  algorithm="priority", failover_criteria=["error", "timeout", "http_503"]),
            route("reset", [openai_target(base, "reset", "r1"),
                            openai_target(base, "ok", "r2", priority=2)],
                  algorithm="priority", failover_criteria=EVERYTHING),
            route("refused", [openai_target(dead, "ok", "d1"),
                              openai_target(base, "ok", "d2", priority=2)],
                  algorithm="priority"),  # Kong's default criteria: error, timeout
            route("stall", [openai_target(base, "stall", "s1"),
                            openai_target(base, "ok", "s2", priority=2)],
                  algorithm="priority", failover_criteria=EVERYTHING),
            route("cut", [openai_target(base, "cut", "c1"),
                          openai_target(base, "ok", "c2", priority=2)],
                  algorithm="priority", failover_criteria=EVERYTHING),
            route("to-anthropic", [openai_target(base, "500", "x1"),
                                   anthropic_target(base, "x2", priority=2)],
                  algorithm="priority", failover_criteria=EVERYTHING),
            route("breaker", [openai_target(base, "500", "b1"), openai_target(base, "ok", "b2")],
                  failover_criteria=EVERYTHING, max_fails=2, fail_timeout=30000),
            route("all-down", [openai_target(base, "503", "a1"),
                               openai_target(base, "500", "a2")],
                  failover_criteria=EVERYTHING, retries=3),
            route("no-retries", [openai_target(base, "500", "z1"),
                                 openai_target(base, "ok", "z2", priority=2)],
                  algorithm="priority", failover_criteria=EVERYTHING, retries=0),
            route("next-refuses", [
                openai_target(base, "500", "f1"),
                {"route_type": "llm/v1/chat", "priority": 2,
                 "model": {"provider": "gemini", "name": "gemini-x",
                           "options": {"upstream_url": f"{base}/ok/f2"}},
                 "auth": {"param_name": "key", "param_value": "k", "param_location": "query"}}],
                  algorithm="priority", failover_criteria=EVERYTHING),
            route("weighted", [openai_target(base, "ok", "w1", weight=300),
                               openai_target(base, "ok", "w2", weight=100)]),
            route("hashing", [openai_target(base, "ok", f"k{i}") for i in range(3)],
                  algorithm="consistent-hashing", hash_on_header="X-Session"),
            route("latency", [openai_target(base, "slow", "l1"), openai_target(base, "ok", "l2")],
                  algorithm="lowest-latency", latency_strategy="e2e"),
            route("usage", [openai_target(base, "big", "u1"), openai_target(base, "ok", "u2")],
                  algorithm="lowest-usage"),
        ]
        doc = {
            "_format_version": "3.0",
            "services": [{"name": "llm", "url": base, "routes": routes}],
            "plugins": [{"name": "file-log", "config": {"path": str(log_path)}},
                        {"name": "prometheus", "config": {"ai_metrics": True}}],
        }
        with GatewayProcess(doc) as gw:
            yield gw, up, log_path


def received(up, *names: str) -> dict:
    counts = Counter(req.target.split("/")[2] for req in up.requests)
    return {name: counts.get(name, 0) for name in names}


def post(gw, path: str, body: dict = CHAT):
    return gw.request("POST", path, orjson.dumps(body), {"Content-Type": "application/json"})


def test_a_429_with_retry_after_fails_over_and_takes_the_target_out(gateway):
    gw, up, _ = gateway
    status, headers, body = post(gw, "/retry-after")
    assert status == 200, body
    assert orjson.loads(body)["choices"][0]["message"]["content"] == "from openai"
    assert received(up, "ra1", "ra2") == {"ra1": 1, "ra2": 1}
    for _ in range(3):  # Retry-After: 30 keeps the first group's only target out
        assert post(gw, "/retry-after")[0] == 200
    assert received(up, "ra1", "ra2") == {"ra1": 1, "ra2": 4}


def test_without_non_idempotent_a_request_that_went_out_is_not_sent_again(gateway):
    gw, up, _ = gateway
    status, _, body = post(gw, "/no-non-idempotent")
    assert status == 503
    assert orjson.loads(body)["error"]["message"]  # the provider's error, in OpenAI's shape
    assert received(up, "n1", "n2") == {"n1": 1, "n2": 0}


@pytest.mark.parametrize(("path", "first", "second"), [
    ("/http500", "h1", "h2"),    # a 500
    ("/reset", "r1", "r2"),      # a reset before the head
    ("/stall", "s1", "s2"),      # a stall past the balancer's read_timeout
    # Nothing went out: even a POST moves on with Kong's default criteria.
    ("/refused", None, "d2"),
])
def test_a_failure_before_the_head_fails_over_to_the_next_group(gateway, path, first, second):
    gw, up, _ = gateway
    status, headers, body = post(gw, path)
    assert status == 200, body
    assert orjson.loads(body)["choices"][0]["message"]["content"] == "from openai"
    assert headers["x-fastgw-llm-model"] == headers["x-kong-llm-model"] == "openai/gpt-x"
    expected = {second: 1} if first is None else {first: 1, second: 1}
    assert received(up, *expected) == expected


def test_a_stream_cut_after_its_first_byte_ends_with_an_error_event(gateway):
    gw, up, _ = gateway
    body = orjson.dumps({**CHAT, "stream": True})
    raw = raw_exchange(gw.port, b"POST /cut HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       b"application/json\r\nContent-Length: " + str(len(body)).encode()
                       + b"\r\n\r\n" + body)
    head, _, events = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head
    assert b"partial" in events
    # An error event, and no clean end: the client can tell the answer is cut.
    assert b'"error"' in events and b"[DONE]" not in events and not events.endswith(b"0\r\n\r\n")
    assert received(up, "c1", "c2") == {"c1": 1, "c2": 0}


def test_a_failover_to_another_provider_is_translated_again(gateway):
    gw, up, _ = gateway
    status, headers, body = post(gw, "/to-anthropic")
    assert status == 200, body
    answer = orjson.loads(body)
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == "from anthropic"
    assert headers["x-fastgw-llm-model"] == "anthropic/claude-x"
    [sent] = [r for r in up.requests if r.target.startswith("/anthropic/x2/")]
    assert sent.header("x-api-key") == KEY_ANTHROPIC
    assert sent.header("authorization") is None  # the first target's credential is gone
    assert sent.header("anthropic-version") == "2023-06-01"
    assert orjson.loads(sent.body)["model"] == "claude-x"
    assert received(up, "x1", "x2") == {"x1": 1, "x2": 1}


def test_max_fails_opens_the_circuit(gateway):
    gw, up, _ = gateway
    for _ in range(8):
        status, _, body = post(gw, "/breaker")
        assert status == 200, body
    # Two failures open b1's circuit for 30 s; b2 takes everything after.
    assert received(up, "b1", "b2") == {"b1": 2, "b2": 8}


def test_when_every_target_fails_the_last_error_reaches_the_client(gateway):
    gw, up, _ = gateway
    status, _, body = post(gw, "/all-down")
    assert status in (500, 503)
    assert orjson.loads(body)["error"]["message"]
    # Each target once: a retry never goes back to a target already tried.
    assert received(up, "a1", "a2") == {"a1": 1, "a2": 1}


def test_retries_zero_means_one_attempt(gateway):
    gw, up, _ = gateway
    status, _, _ = post(gw, "/no-retries")
    assert status == 500
    assert received(up, "z1", "z2") == {"z1": 1, "z2": 0}


def test_the_log_line_names_every_attempt(gateway):
    gw, _, log_path = gateway
    post(gw, "/to-anthropic")
    [line, *_] = log_entries(log_path, lambda e: e["route"]["name"] == "to-anthropic")
    tries = line["ai"]["proxy"]["tries"]
    assert [t["target"] for t in tries] == ["openai/gpt-x", "anthropic/claude-x"]
    assert [t["outcome"] for t in tries] == ["http_500", "ok"]
    assert line["ai"]["proxy"]["meta"]["provider_name"] == "anthropic"
    assert line["tries"] == 2  # the core's count of attempts agrees


def test_metrics_count_attempts_failovers_and_open_circuits(gateway):
    gw, _, _ = gateway
    post(gw, "/http500")
    _, _, body = gw.admin("GET", "/metrics")
    text = body.decode()
    assert metric_sum(text, "fastgw_ai_target_attempts_total", plugin="http500",
                  target="openai/gpt-x", outcome="http_500") >= 1
    assert metric_sum(text, "fastgw_ai_target_attempts_total", plugin="http500",
                  target="openai/gpt-x#2", outcome="ok") >= 1
    assert metric_sum(text, "fastgw_ai_target_failovers_total", plugin="http500",
                  target="openai/gpt-x") >= 1
    post(gw, "/retry-after")
    _, _, body = gw.admin("GET", "/metrics")
    assert metric_sum(body.decode(), "fastgw_ai_target_circuit_open", plugin="retry-after",
                  target="openai/gpt-x") == 1


def test_a_streamed_request_fails_over_before_its_head_goes_out(gateway):
    gw, up, _ = gateway
    before = received(up, "h1", "h2")
    status, headers, body = post(gw, "/http500", {**CHAT, "stream": True})
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert b"openai" in body and body.rstrip().endswith(b"data: [DONE]")
    after = received(up, "h1", "h2")
    assert (after["h1"] - before["h1"], after["h2"] - before["h2"]) == (1, 1)


def test_weighted_round_robin_follows_the_weights(gateway):
    gw, up, _ = gateway
    for _ in range(8):
        assert post(gw, "/weighted")[0] == 200
    assert received(up, "w1", "w2") == {"w1": 6, "w2": 2}


def test_consistent_hashing_keeps_a_session_on_one_target(gateway):
    gw, up, _ = gateway
    for session in ("alice", "bob", "carol", "dave"):
        before = received(up, "k0", "k1", "k2")
        for _ in range(4):
            status, _, _ = gw.request("POST", "/hashing", orjson.dumps(CHAT),
                                      {"Content-Type": "application/json", "X-Session": session})
            assert status == 200
        after = received(up, "k0", "k1", "k2")
        moved = sorted(after[k] - before[k] for k in after)
        assert moved == [0, 0, 4], session  # all four on one target


def test_lowest_latency_prefers_the_faster_target(gateway):
    gw, up, _ = gateway
    for _ in range(12):
        assert post(gw, "/latency")[0] == 200
    counts = received(up, "l1", "l2")
    assert counts["l1"] <= 2 and counts["l2"] >= 10, counts


def test_lowest_usage_prefers_the_target_that_used_fewer_tokens(gateway):
    gw, up, _ = gateway
    for _ in range(12):
        assert post(gw, "/usage")[0] == 200
    counts = received(up, "u1", "u2")
    assert counts["u1"] <= 2 and counts["u2"] >= 10, counts


def test_a_next_target_that_cannot_take_the_request_leaves_the_failure_standing(gateway):
    # Gemini has no logprobs: the request is never sent there, and the first
    # target's 500 is the answer.
    gw, up, _ = gateway
    status, _, body = post(gw, "/next-refuses", {**CHAT, "logprobs": True})
    assert status == 500, body
    assert received(up, "f1", "f2") == {"f1": 1, "f2": 0}
