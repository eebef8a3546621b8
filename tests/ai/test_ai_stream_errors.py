"""Streams that fail: upstream error events, unreadable events, and how the client hears of it."""

from __future__ import annotations

import orjson
import pytest
from ai_testkit import run_stream

from fastgw.ai import (
    OPENAI_DONE,
    ROUTE_CHAT,
    StreamCut,
    StreamError,
    encode_openai_chunk,
    encode_openai_stream_error,
    get_translator,
)
from fastgw.ai.anthropic_format import encode_anthropic_stream_error
from fastgw.ai.sse import SSEParser

ASK_USAGE = {"stream": True, "stream_options": {"include_usage": True}}

# One answer start, then the provider's own way of reporting an error mid-stream.
FAILING_STREAMS = {
    "openai": (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
        b'[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}\n\n'
        b'data: {"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}\n\n',
        "server_error",
    ),
    "anthropic": (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"claude",'
        b'"usage":{"input_tokens":5,"output_tokens":1}}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"Hel"}}\n\n'
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
        "overloaded_error",
    ),
    "gemini": (
        b'data: {"candidates":[{"content":{"parts":[{"text":"Hel"}],"role":"model"},"index":0}]}\r\n\r\n'
        b'data: {"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}\r\n\r\n',
        "api_error",
    ),
    "ollama": (
        b'{"model":"llama3.2","message":{"role":"assistant","content":"Hel"},"done":false}\n'
        b'{"error":"an error was encountered while running the model: unexpected EOF"}\n',
        "api_error",
    ),
}


@pytest.mark.parametrize("provider", sorted(FAILING_STREAMS))
def test_an_upstream_error_event_fails_the_stream_after_the_text_before_it(provider):
    raw, error_type = FAILING_STREAMS[provider]
    translator = get_translator(provider).stream_translator(ROUTE_CHAT, "m", ASK_USAGE)

    chunks = translator.feed(raw)

    assert translator.failed
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hel"
    assert translator.feed(b"data: more\n\n") == []  # nothing counts after the failure
    with pytest.raises(StreamError) as failure:
        translator.finish()
    assert not isinstance(failure.value, StreamCut)
    assert failure.value.error["error"]["type"] == error_type


@pytest.mark.parametrize(
    ("provider", "raw"),
    [
        ("openai", b"data: {not json}\n\n"),
        ("anthropic", b"event: message_start\ndata: [1, 2]\n\n"),
        ("gemini", b'data: {"candidates": \r\n\r\n'),
        ("ollama", b'{"model": \n{}\n'),
    ],
)
def test_an_unreadable_event_fails_the_stream_instead_of_raising_into_the_gateway(provider, raw):
    translator = get_translator(provider).stream_translator(ROUTE_CHAT, "m")
    chunks, error = run_stream(translator, [raw])
    assert chunks == []
    assert error is not None and error.error["error"]["type"] == "api_error"


def test_ollama_stream_ending_without_a_final_newline_is_complete():
    raw = b'{"message":{"content":"Hi"},"done":false}\n{"message":{"content":""},"done":true,"eval_count":1}'
    translator = get_translator("ollama").stream_translator(ROUTE_CHAT, "m")
    chunks, error = run_stream(translator, [raw])
    assert error is None
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_a_cut_is_reported_to_an_openai_client_as_an_error_event_without_done():
    translator = get_translator("anthropic").stream_translator(ROUTE_CHAT, "claude", ASK_USAGE)
    sent = [encode_openai_chunk(c) for c in translator.feed(FAILING_STREAMS["anthropic"][0][:200])]
    with pytest.raises(StreamCut) as cut:
        translator.finish()
    sent.append(encode_openai_stream_error(cut.value.error))

    events = SSEParser().feed(b"".join(sent))
    assert OPENAI_DONE not in b"".join(sent)
    last = orjson.loads(events[-1].data)
    assert last == {
        "error": {
            "message": "upstream closed the stream before the answer was complete",
            "type": "api_error",
            "param": None,
            "code": "stream_cut",
        }
    }


def test_a_cut_is_reported_to_an_anthropic_client_as_an_error_event():
    wire = encode_anthropic_stream_error(
        StreamCut({"error": {"message": "cut", "type": "api_error"}}).error
    )
    [event] = SSEParser().feed(wire)
    assert event.event == "error"
    assert orjson.loads(event.data) == {
        "type": "error",
        "error": {"type": "api_error", "message": "cut"},
    }


def test_no_usage_chunk_unless_the_client_asked_but_usage_is_always_known():
    raw = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
        b'[{"index":0,"delta":{"content":"abcdefgh"},"finish_reason":"stop"}]}\n\n'
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],'
        b'"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\ndata: [DONE]\n\n'
    )
    quiet = get_translator("openai").stream_translator(ROUTE_CHAT, "m", {"stream": True})
    chunks, _ = run_stream(quiet, [raw])
    assert all(chunk["choices"] for chunk in chunks)
    assert (quiet.usage.total_tokens, quiet.usage.estimated) == (5, False)

    asked = get_translator("openai").stream_translator(ROUTE_CHAT, "m", ASK_USAGE)
    chunks, _ = run_stream(asked, [raw])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 5


def test_usage_is_estimated_when_the_upstream_reports_none():
    raw = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
        b'[{"index":0,"delta":{"content":"abcdefgh"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    )
    request = {"messages": [{"role": "user", "content": "abcd"}], **ASK_USAGE}
    translator = get_translator("openai").stream_translator(ROUTE_CHAT, "m", request)
    chunks, _ = run_stream(translator, [raw])
    assert chunks[-1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    assert translator.usage.estimated


def test_first_token_is_the_first_content_not_the_role_announcement():
    translator = get_translator("anthropic").stream_translator(ROUTE_CHAT, "claude")
    start, text = FAILING_STREAMS["anthropic"][0].split(b"\n\n")[:2]
    assert translator.feed(start + b"\n\n") and not translator.first_token_seen
    translator.feed(text + b"\n\n")
    assert translator.first_token_seen
