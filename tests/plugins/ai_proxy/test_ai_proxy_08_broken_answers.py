"""Provider answers that break their API's promise, through the real gateway:
each is a 502 (a stall a 504) in the client's own error shape, never a 200
with an error inside, and the log records the failure."""

import asyncio

import orjson
import pytest
from ai_proxy_kit import ANTHROPIC_VERSION, PROVIDER_KEY, wait_for_log_lines

from fastgw.testing import GatewayProcess, UpstreamServer

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
ANTHROPIC_CHAT = {"model": "gpt-test", "max_tokens": 16,
                  "messages": [{"role": "user", "content": "hi"}]}
GOOD = orjson.dumps({
    "id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-test",
    "system_fingerprint": "fp_1", "service_tier": "default",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4,
              "prompt_tokens_details": {"cached_tokens": 2},
              "completion_tokens_details": {"reasoning_tokens": 1}},
}, option=orjson.OPT_INDENT_2)  # as written: re-encoding would change it
# What each path of the chaos upstream answers: (content type, body).
ANSWERS = {
    "ok": ("application/json", GOOD),
    "empty": ("application/json", b""),
    "malformed": ("application/json", b'{"choices": ['),
    "error-body": ("application/json",
                   b'{"error": {"message": "quota exceeded", "type": "insufficient_quota"}}'),
    "html": ("text/html", b"<html><body>502 Bad Gateway</body></html>"),
    "not-object": ("application/json", b"[1, 2, 3]"),
}


async def chaos(req, writer):
    kind = req.target.split("/")[1]
    if kind == "stall":
        # The head and part of the body, then nothing past the read timeout.
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 400\r\n\r\n" + GOOD[:20])
        await writer.drain()
        await asyncio.sleep(1)
        return
    if kind == "until-close":
        # No length, no chunks: the body ends with the connection.
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\n\r\n" + GOOD)
        await writer.drain()
        writer.close()
        return
    content_type, body = ANSWERS[kind]
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type.encode()
                 + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def ai_route(name: str, upstream: str, **extra) -> dict:
    config = {
        "route_type": "llm/v1/chat",
        "model": {"provider": "openai", "name": "gpt-test",
                  "options": {"upstream_url": upstream + "/v1/chat/completions",
                              "input_cost": 10.0, "output_cost": 20.0,
                              "cache_read_cost": 1.0}},
        "auth": {"header_name": "Authorization", "header_value": f"Bearer {PROVIDER_KEY}"},
        "logging": {"log_statistics": True},
        **extra,
    }
    return {"name": name, "paths": [f"/{name}"],
            "plugins": [{"name": "ai-proxy", "config": config}]}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("broken-answers") / "access.log"
    with UpstreamServer(chaos) as up:
        base = f"http://127.0.0.1:{up.port}"
        routes = [ai_route(kind, f"{base}/{kind}")
                  for kind in [*ANSWERS, "stall", "until-close"]]
        routes.append(ai_route("anthropic-malformed", f"{base}/malformed",
                               llm_format="anthropic"))
        routes.append(ai_route("anthropic-stall", f"{base}/stall", llm_format="anthropic"))
        doc = {
            "_format_version": "3.0",
            "services": [{"name": "llm", "url": base, "read_timeout": 400, "routes": routes}],
            "plugins": [{"name": "file-log", "config": {"path": str(log_path)}}],
        }
        with GatewayProcess(doc) as gw:
            yield gw, log_path


def post(gw, path: str, body: dict, headers: dict | None = None):
    return gw.request("POST", path, orjson.dumps(body),
                      {"Content-Type": "application/json", **(headers or {})})


@pytest.mark.parametrize("path", ["/ok", "/until-close"])
def test_a_good_answer_still_arrives_whole(gateway, path):
    gw, _ = gateway
    status, headers, body = post(gw, path, CHAT)
    assert status == 200
    answer = orjson.loads(body)
    assert answer["choices"][0]["message"]["content"] == "hello"
    assert int(headers["content-length"]) == len(body)
    # OpenAI client, OpenAI-format provider: the answer as the provider wrote it.
    assert body == GOOD


@pytest.mark.parametrize("kind", ["empty", "malformed", "error-body", "html", "not-object"])
def test_an_answer_that_breaks_the_api_is_a_502_in_the_openai_shape(gateway, kind):
    gw, _ = gateway
    status, headers, body = post(gw, f"/{kind}", CHAT)
    assert status == 502, body
    error = orjson.loads(body)["error"]
    assert error["type"] == "api_error" and error["message"]
    assert headers["content-type"].startswith("application/json")


def test_the_anthropic_front_door_gets_its_own_error_shape(gateway):
    gw, _ = gateway
    status, _, body = post(gw, "/anthropic-malformed", ANTHROPIC_CHAT,
                           {"anthropic-version": ANTHROPIC_VERSION})
    assert status == 502
    answer = orjson.loads(body)
    assert answer["type"] == "error" and answer["error"]["message"]


@pytest.mark.parametrize(("path", "body", "shape"), [
    ("/stall", CHAT, "openai"),
    ("/anthropic-stall", ANTHROPIC_CHAT, "anthropic"),
])
def test_a_body_stalled_past_read_timeout_is_a_504_in_the_front_doors_shape(
        gateway, path, body, shape):
    gw, _ = gateway
    status, _, raw = post(gw, path, body, {"anthropic-version": ANTHROPIC_VERSION})
    assert status == 504, raw
    answer = orjson.loads(raw)
    if shape == "openai":
        assert answer["error"]["message"]
    else:
        assert answer["type"] == "error" and answer["error"]["message"]


def test_the_log_counts_a_broken_answer_as_a_failure(gateway):
    gw, log_path = gateway
    post(gw, "/malformed", CHAT)
    lines = wait_for_log_lines(log_path, 1)
    malformed = [line for line in lines if line["request"]["uri"].startswith("/malformed")]
    assert malformed and all(line["response"]["status"] == 502 for line in malformed)
    assert all(line["ai"]["proxy"]["usage"]["total_tokens"] == 0 for line in malformed)


def test_an_answer_past_max_response_buffer_bytes_is_a_502_not_a_cut_body():
    with UpstreamServer(chaos) as up:
        doc = {"_format_version": "3.0",
               "_gateway": {"max_response_buffer_bytes": 64},
               "services": [{"name": "llm", "url": f"http://127.0.0.1:{up.port}",
                             "routes": [ai_route("ok", f"http://127.0.0.1:{up.port}/ok")]}]}
        with GatewayProcess(doc) as gw:
            status, _, body = post(gw, "/ok", CHAT)
    assert status == 502
    assert orjson.loads(body)["error"]["message"]


def test_the_log_prices_cached_prompt_tokens_apart_and_keeps_them_apart(gateway):
    gw, log_path = gateway
    assert post(gw, "/ok", CHAT)[0] == 200
    lines = wait_for_log_lines(log_path, 1)
    ok = [line for line in lines if line["request"]["uri"] == "/ok"]
    usage = ok[-1]["ai"]["proxy"]["usage"]
    assert (usage["prompt_tokens"], usage["cached_tokens"], usage["reasoning_tokens"]) == (3, 2, 1)
    # 1 plain prompt token at 10, 2 cached at 1, 1 completion token at 20, per 1M.
    assert usage["cost"] == pytest.approx(32 / 1_000_000)


def test_a_whole_json_answer_to_a_streamed_request_is_a_502_not_an_empty_stream(gateway):
    gw, _ = gateway
    status, headers, body = post(gw, "/ok", {**CHAT, "stream": True})
    assert status == 502, body
    assert headers["content-type"].startswith("application/json")
    assert "not text/event-stream" in orjson.loads(body)["error"]["message"]
