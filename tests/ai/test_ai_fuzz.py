"""Property-based fuzzing of the AI layer: whatever a client or a provider
sends, translation raises nothing but the gateway's own errors (which answer
400 or 502 in the client's API), and the SSE parser neither raises nor
depends on how the bytes were split."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from ai_testkit import case_files, model_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastgw.ai import StreamError, get_translator
from fastgw.ai.errors import TranslationError, UpstreamFormatError
from fastgw.ai.front_doors import FRONT_DOORS
from fastgw.ai.sse import SSEParser

FUZZ = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Keys that the translators look at, so that generated objects reach deep code.
KEYS = ["model", "messages", "role", "content", "type", "text", "image_url", "url", "tools",
        "tool_calls", "tool_call_id", "function", "name", "arguments", "parameters",
        "tool_choice", "stream", "stream_options", "include_usage", "max_tokens", "stop",
        "n", "temperature", "response_format", "json_schema", "system", "input", "prompt",
        "choices", "delta", "message", "finish_reason", "usage", "prompt_tokens",
        "completion_tokens", "input_tokens", "output_tokens", "candidates", "parts",
        "data", "embedding", "index", "id", "source", "media_type", "tool_use", "input_schema",
        "stop_sequences", "thinking", "cache_control", "error", "done", "response",
        "encoding_format", "dimensions", "candidatesTokenCount", "usageMetadata", "functionCall"]
ROLES = ["system", "user", "assistant", "tool", "developer", "function"]
SCALARS = (st.none() | st.booleans() | st.integers(-5, 2**40) | st.floats(allow_nan=False)
           | st.sampled_from(ROLES + KEYS + ["", "text", "image", "tool_use", "tool_result",
                                             "data:image/png;base64,AAAA", "auto", "required"])
           | st.text(max_size=12))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5), max_leaves=30)
OBJECTS = st.dictionaries(st.sampled_from(KEYS), JSON, max_size=8)


def _models() -> dict[str, Any]:
    models = {}
    for path in case_files("request"):
        case = orjson.loads(path.read_bytes())
        if case.get("route_type") == "llm/v1/chat" and "config" in case:
            models.setdefault(case["config"]["model"]["provider"], model_config(case))
    return models


MODELS = _models()
PROVIDERS = sorted(MODELS)


def test_every_provider_is_fuzzed():
    assert {"anthropic", "azure", "gemini", "mistral", "ollama", "openai"} <= set(PROVIDERS)


@pytest.mark.parametrize("door", sorted(FRONT_DOORS))
@pytest.mark.parametrize("provider", PROVIDERS)
@FUZZ
@given(body=OBJECTS)
def test_client_requests_translate_or_raise_a_translation_error(door, provider, body):
    translator = get_translator(MODELS[provider])
    try:
        canonical = FRONT_DOORS[door].canonical_request(body, "llm/v1/chat")
        translator.build_request("llm/v1/chat", canonical, MODELS[provider])
    except TranslationError:
        pass


@pytest.mark.parametrize("provider", PROVIDERS)
@FUZZ
@given(answer=JSON | OBJECTS, raw=st.binary(max_size=40), as_raw=st.booleans())
def test_provider_answers_translate_or_raise_a_format_error(provider, answer, raw, as_raw):
    translator = get_translator(MODELS[provider])
    body = raw if as_raw else orjson.dumps(answer)
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    try:
        translator.parse_response("llm/v1/chat", 200, body, request, model_name="m")
    except UpstreamFormatError:
        pass
    error = translator.parse_error(500, body)
    assert isinstance(error.get("error"), dict)


@pytest.mark.parametrize("provider", PROVIDERS)
@FUZZ
@given(frames=st.lists(JSON | OBJECTS, max_size=5), junk=st.binary(max_size=20),
       sse=st.booleans())
def test_provider_streams_translate_or_end_in_a_stream_error(provider, frames, junk, sse):
    translator = get_translator(MODELS[provider])
    request = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    stream = translator.stream_translator("llm/v1/chat", "m", request)
    if sse:
        data = b"".join(b"data: " + orjson.dumps(f) + b"\n\n" for f in frames)
    else:
        data = b"".join(orjson.dumps(f) + b"\n" for f in frames)
    try:
        for piece in (data[: len(data) // 2], data[len(data) // 2:], junk):
            for chunk in stream.feed(piece):
                assert isinstance(chunk, dict)
        stream.finish()
    except (StreamError, UpstreamFormatError):
        pass


@FUZZ
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=6))
def test_sse_parser_never_raises_and_ignores_how_bytes_are_split(data, cuts):
    whole = SSEParser().feed(data)
    parser = SSEParser()
    split: list = []
    start = 0
    for cut in sorted(set(c for c in cuts if c <= len(data))) + [len(data)]:
        split.extend(parser.feed(data[start:cut]))
        start = cut
    assert split == whole


@FUZZ
@given(events=st.lists(st.tuples(st.text(max_size=10).filter(lambda t: "\n" not in t and "\r" not in t),
                                 st.binary(max_size=30).filter(lambda b: b"\n" not in b and b"\r" not in b)),
                       max_size=5))
def test_sse_parser_reads_back_what_it_is_given(events):
    wire = b"".join((b"event: " + name.encode() + b"\n" if name else b"") + b"data: " + data + b"\n\n"
                    for name, data in events)
    got = SSEParser().feed(wire)
    assert [(e.event, e.data) for e in got] == [
        (name or "message", data.decode("utf-8", "replace")) for name, data in events]
