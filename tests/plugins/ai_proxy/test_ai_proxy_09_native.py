"""A client that speaks the provider's own API (Anthropic's SDK in front of an
Anthropic upstream): its request and the answer pass through with only the
model, the configured defaults and the credential changed, so thinking,
signatures, cache_control and the provider's usage survive, streamed or not."""

import anthropic
import orjson
import pytest
from ai_proxy_kit import ANTHROPIC_VERSION, PROVIDER_KEY, wait_for_log_lines

from fastgw.testing import GatewayProcess, UpstreamServer

USAGE = {"input_tokens": 333, "output_tokens": 12, "cache_creation_input_tokens": 6,
         "cache_read_input_tokens": 2000}
MESSAGE = {
    "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-upstream",
    "content": [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig-abc=="},
        {"type": "text", "text": "Hello", "citations": None},
    ],
    "stop_reason": "end_turn", "stop_sequence": None, "usage": USAGE,
}
EVENTS = [
    ("message_start", {"type": "message_start", "message": {**MESSAGE, "content": [],
                                                            "stop_reason": None,
                                                            "usage": {**USAGE, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "thinking_delta", "thinking": "Let me think."}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "signature_delta", "signature": "sig-abc=="}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1,
                             "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "text_delta", "text": "Hello"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("message_delta", {"type": "message_delta",
                       "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": 12}}),
    ("message_stop", {"type": "message_stop"}),
]
STREAM = b"".join(b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
                  for name, data in EVENTS)
REQUEST = {
    "model": "claude-test",
    "max_tokens": 1024,
    "thinking": {"type": "enabled", "budget_tokens": 512},
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Earlier.", "signature": "sig-old=="},
            {"type": "text", "text": "Earlier answer."}]},
        {"role": "user", "content": [{"type": "text", "text": "Again",
                                      "cache_control": {"type": "ephemeral"}}]},
    ],
    "metadata": {"user_id": "u-1"},
}


async def anthropic_upstream(req, writer):
    body = orjson.loads(req.body)
    if body.get("stream"):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        for piece in (STREAM[:100], STREAM[100:700], STREAM[700:]):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        return
    answer = orjson.dumps(MESSAGE)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                 + str(len(answer)).encode() + b"\r\n\r\n" + answer)


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("native") / "access.log"
    with UpstreamServer(anthropic_upstream) as up:
        config = {
            "route_type": "llm/v1/chat",
            "llm_format": "anthropic",
            "model": {"provider": "anthropic", "name": "claude-test",
                      "options": {"anthropic_version": ANTHROPIC_VERSION,
                                  "upstream_url": f"http://127.0.0.1:{up.port}/v1/messages",
                                  "input_cost": 3.0, "output_cost": 15.0,
                                  "cache_read_cost": 0.3, "cache_write_cost": 3.75}},
            "auth": {"header_name": "x-api-key", "header_value": PROVIDER_KEY},
            "logging": {"log_statistics": True},
        }
        doc = {"_format_version": "3.0",
               "routes": [{"name": "native", "paths": ["/native"],
                           "plugins": [{"name": "ai-proxy", "config": config}]}],
               "plugins": [{"name": "file-log", "config": {"path": str(log_path)}}]}
        with GatewayProcess(doc) as gw:
            yield gw, up, log_path


def post(gw, body: dict):
    return gw.request("POST", "/native/v1/messages", orjson.dumps(body), {
        "Content-Type": "application/json", "anthropic-version": ANTHROPIC_VERSION,
        "anthropic-beta": "interleaved-thinking-2025-05-14", "x-api-key": "client-key"})


def test_the_request_reaches_the_provider_as_the_client_wrote_it(native):
    gw, up, _ = native
    status, _, body = post(gw, REQUEST)
    assert status == 200, body
    sent = up.requests[-1]
    assert orjson.loads(sent.body) == REQUEST
    assert sent.header("x-api-key") == PROVIDER_KEY  # the client's key never leaves
    assert sent.header("anthropic-beta") == "interleaved-thinking-2025-05-14"
    assert sent.header("anthropic-version") == ANTHROPIC_VERSION


def test_the_answer_comes_back_as_the_provider_wrote_it(native):
    gw, _, log_path = native
    status, headers, body = post(gw, REQUEST)
    assert status == 200
    assert orjson.loads(body) == MESSAGE
    entry = [line for line in wait_for_log_lines(log_path, 1)
             if line["request"]["uri"].startswith("/native")][-1]
    usage = entry["ai"]["proxy"]["usage"]
    assert (usage["prompt_tokens"], usage["cached_tokens"], usage["cache_write_tokens"]) == \
        (2339, 2000, 6)
    assert usage["cost"] == pytest.approx((333 * 3.0 + 2000 * 0.3 + 6 * 3.75 + 12 * 15.0) / 1e6)


def test_a_stream_passes_through_event_for_event(native):
    gw, _, _ = native
    status, headers, body = post(gw, {**REQUEST, "stream": True})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert body == STREAM


def test_the_anthropic_sdk_reads_thinking_and_signatures(native):
    gw, _, _ = native
    client = anthropic.Anthropic(api_key="client-key", base_url=f"http://127.0.0.1:{gw.port}/native",
                                 max_retries=0)
    message = client.messages.create(**REQUEST)
    assert message.content[0].type == "thinking" and message.content[0].signature == "sig-abc=="
    assert message.usage.cache_creation_input_tokens == 6
    with client.messages.stream(**REQUEST) as stream:
        final = stream.get_final_message()
    assert final.content[0].signature == "sig-abc==" and final.content[1].text == "Hello"
    assert final.usage.cache_read_input_tokens == 2000
