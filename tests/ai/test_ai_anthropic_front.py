"""The Anthropic front door: requests in, answers, streams and errors out, in Anthropic's shapes."""

from __future__ import annotations

import copy

import orjson
import pytest
from ai_testkit import FIXTURES, awkward_pieces, client_request, load, run_stream
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from fastgw.ai import ROUTE_CHAT, ModelConfig, get_translator
from fastgw.ai.anthropic_format import (
    AnthropicStreamEncoder,
    anthropic_error,
    anthropic_to_openai_request,
    openai_error_to_anthropic,
    openai_to_anthropic_response,
)
from fastgw.ai.sse import SSEParser
from fastgw.ai.usage import Usage

FRONT = load(FIXTURES / "anthropic_front" / "front_request_tools.json")
ANTHROPIC_MODEL = ModelConfig(provider="anthropic", name="claude-sonnet-4-5")
STREAM_EVENT = TypeAdapter(RawMessageStreamEvent)


def to_anthropic_provider(openai_request: dict) -> dict:
    upstream = get_translator(ANTHROPIC_MODEL).build_request(
        ROUTE_CHAT, openai_request, ANTHROPIC_MODEL
    )
    return orjson.loads(upstream.body)


def test_request_translation():
    assert anthropic_to_openai_request(FRONT["anthropic"]) == FRONT["expected_openai"]


def test_anthropic_request_survives_the_trip_through_the_canonical_format():
    original = copy.deepcopy(FRONT["anthropic"])
    del original["system"][0]["cache_control"]
    del original["messages"][1]["content"][0]  # the thinking block
    assert to_anthropic_provider(anthropic_to_openai_request(FRONT["anthropic"])) == original


def as_parts(content):
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def test_openai_request_survives_the_trip_through_anthropic():
    original = client_request({"request": "chat_tools"})
    back = anthropic_to_openai_request(to_anthropic_provider(original))
    # Anthropic keeps neither the string/parts distinction nor the arguments' JSON spacing.
    for message in (*original["messages"], *back["messages"]):
        if message["role"] != "assistant":
            message["content"] = as_parts(message["content"])
        for call in message.get("tool_calls") or ():
            call["function"]["arguments"] = orjson.loads(call["function"]["arguments"])
    original["model"] = "claude-sonnet-4-5"
    assert back == original


def test_answer_translation_matches_the_sdk_message_type():
    upstream = load(FIXTURES / "anthropic" / "response_tool_use.json")["upstream"]
    completion, usage = get_translator("anthropic").parse_response(
        ROUTE_CHAT, 200, orjson.dumps(upstream)
    )

    message = openai_to_anthropic_response(completion, usage)

    Message.model_validate(message)
    assert message["id"] == upstream["id"]
    assert message["stop_reason"] == "tool_use"
    assert [block["type"] for block in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["content"][1:] == upstream["content"][1:]
    # Cache reads and writes come back apart from input, as the provider said.
    assert message["usage"] == upstream["usage"] == {
        "input_tokens": 472,
        "output_tokens": 89,
        "cache_creation_input_tokens": 20,
        "cache_read_input_tokens": 100,
    }
    assert usage.prompt_tokens == 592 and usage.cached_tokens == 100
    assert usage.cache_write_tokens == 20


def test_answer_from_another_provider_gets_an_anthropic_id_and_stop_reason():
    completion = {
        "id": "chatcmpl-1",
        "model": "gemini-2.0-flash",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi"},
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    message = openai_to_anthropic_response(completion)
    Message.model_validate(message)
    assert message["id"].startswith("msg_")
    assert (message["stop_reason"], message["usage"]) == (
        "max_tokens",
        {"input_tokens": 3, "output_tokens": 1},
    )


def encoded_stream(provider: str, stream_file: str, model: str) -> list:
    raw = (FIXTURES / provider / stream_file).read_bytes()
    translator = get_translator(provider).stream_translator(ROUTE_CHAT, model, {"stream": True})
    encoder = AnthropicStreamEncoder(model, input_tokens=7)
    wire = b""
    for piece in awkward_pieces(raw, seed=11):
        for chunk in translator.feed(piece):
            wire += encoder.encode(chunk)
    _, error = run_stream(translator, [])
    assert error is None
    wire += encoder.finish(translator.usage)
    return SSEParser().feed(wire)


@pytest.mark.parametrize(
    ("provider", "stream_file", "blocks"),
    [
        ("anthropic", "stream_tool_use.sse", ["thinking", "text", "tool_use"]),
        ("gemini", "stream_function_call.sse", ["text", "tool_use"]),
        ("ollama", "stream_chat.ndjson", ["thinking", "text", "tool_use"]),
        ("openai", "stream_chat_tools.sse", ["text", "tool_use"]),
    ],
)
def test_stream_events_follow_anthropic_framing_and_validate_as_sdk_types(
    provider, stream_file, blocks
):
    events = encoded_stream(provider, stream_file, "claude-via-gateway")
    for event in events:
        validated = STREAM_EVENT.validate_python(orjson.loads(event.data))
        assert validated.type == event.event

    names = [event.event for event in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    starts = [orjson.loads(e.data) for e in events if e.event == "content_block_start"]
    assert [start["content_block"]["type"] for start in starts] == blocks
    assert [start["index"] for start in starts] == list(range(len(blocks)))
    # Every block is closed, in order, before the next opens.
    opened = [
        e.event
        for e in events
        if e.event.startswith("content_block_") and e.event != "content_block_delta"
    ]
    assert opened == ["content_block_start", "content_block_stop"] * len(blocks)
    final = orjson.loads(events[-2].data)
    assert final["delta"]["stop_reason"] == "tool_use"


def test_stream_usage_comes_from_the_translator():
    events = encoded_stream("anthropic", "stream_tool_use.sse", "claude")
    assert orjson.loads(events[0].data)["message"]["usage"] == {
        "input_tokens": 7,
        "output_tokens": 0,
    }
    assert orjson.loads(events[-2].data)["usage"] == {
        "input_tokens": 472,
        "output_tokens": 89,
        "cache_read_input_tokens": 0,
    }


def test_an_empty_answer_still_opens_and_closes_the_message():
    encoder = AnthropicStreamEncoder("m")
    names = [event.event for event in SSEParser().feed(encoder.finish(Usage.of(1, 0)))]
    assert names == ["message_start", "message_delta", "message_stop"]


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_openai_errors_take_anthropic_types_by_status(status, error_type):
    error = {"error": {"message": "boom", "type": "some_openai_type", "param": None, "code": None}}
    assert openai_error_to_anthropic(error, status) == {
        "type": "error",
        "error": {"type": error_type, "message": "boom"},
    }


def test_an_anthropic_error_type_from_the_upstream_is_kept():
    error = {"error": {"message": "Overloaded", "type": "overloaded_error"}}
    assert openai_error_to_anthropic(error, 502)["error"]["type"] == "overloaded_error"
    assert anthropic_error("x", "made_up_type", status=403)["error"]["type"] == "permission_error"
