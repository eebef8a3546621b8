"""fastgw.ai.responses_format: the Responses API to Chat Completions and back."""

import orjson
import pytest

from fastgw.ai import TranslationError, Usage
from fastgw.ai.responses_format import (
    ResponsesStreamEncoder,
    chat_to_response,
    responses_to_chat_request,
)


def test_a_conversation_becomes_chat_messages():
    request = responses_to_chat_request({
        "model": "m", "instructions": "Be brief.", "max_output_tokens": 50,
        "temperature": 0.2, "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"},
                            "strict": True}},
        "input": [
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": [
                {"type": "input_text", "text": "Weather here?"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAA", "detail": "low"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "21C"},
            {"type": "function_call_output", "call_id": "c2", "output": [
                {"type": "input_text", "text": "noon"}]},
        ],
        "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "weather"},
    })
    assert request["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Use metric units."},
        {"role": "user", "content": [
            {"type": "text", "text": "Weather here?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA",
                                                "detail": "low"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "21C"},
        {"role": "tool", "tool_call_id": "c2", "content": "noon"},
    ]
    assert request["max_completion_tokens"] == 50 and request["temperature"] == 0.2
    assert request["reasoning_effort"] == "low"
    assert request["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "w", "schema": {"type": "object"}, "strict": True}}
    assert request["tools"] == [{"type": "function", "function": {
        "name": "weather", "parameters": {"type": "object"}}}]
    assert request["tool_choice"] == {"type": "function", "function": {"name": "weather"}}


@pytest.mark.parametrize(("body", "named"), [
    ({"previous_response_id": "resp_1"}, "previous_response_id:"),
    ({"store": True}, "store:"),
    ({"background": True}, "background:"),
    ({"include": ["file_search_call.results"]}, "include:"),
    ({"truncation": "auto"}, "truncation:"),
    ({"prompt": {"id": "pmpt_1"}}, "prompt:"),
    ({"tools": [{"type": "file_search"}]}, "tools[0].type:"),
    ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice:"),
    ({"text": {"format": {"type": "grammar"}}}, "text.format.type:"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type:"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
     "input[0].content[0].type:"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0].file_id:"),
])
def test_what_cannot_be_translated_is_refused_naming_it(body, named):
    with pytest.raises(TranslationError) as refusal:
        responses_to_chat_request({"model": "m", "input": "hi", **body})
    assert refusal.value.error["error"]["message"].startswith(named)
    assert refusal.value.error["error"]["code"] == "unsupported_parameter"


def test_store_false_and_defaults_are_fine():
    request = responses_to_chat_request({"model": "m", "input": "hi", "store": False,
                                         "truncation": "disabled", "include": []})
    assert request == {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_an_answer_becomes_a_response_object():
    answer = {"model": "m", "created": 7, "choices": [{"index": 0, "finish_reason": "tool_calls",
              "message": {"role": "assistant", "content": "Checking.",
                          "reasoning_content": "thinking",
                          "tool_calls": [{"id": "c1", "type": "function",
                                          "function": {"name": "w", "arguments": "{}"}}]}}]}
    usage = Usage.of(10, 5, reasoning=2, cached=4)
    response = chat_to_response(answer, usage, {"model": "m"}, {"instructions": "x"})
    assert [item["type"] for item in response["output"]] == ["reasoning", "message",
                                                              "function_call"]
    assert response["output"][1]["content"][0]["text"] == "Checking."
    assert response["output"][2]["call_id"] == "c1"
    assert response["status"] == "completed" and response["instructions"] == "x"
    assert response["usage"] == {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
                                 "output_tokens": 5,
                                 "output_tokens_details": {"reasoning_tokens": 2},
                                 "total_tokens": 15}
    cut = chat_to_response({"choices": [{"finish_reason": "length",
                                         "message": {"content": "abc"}}]},
                           usage, {"model": "m"}, None)
    assert cut["status"] == "incomplete"
    assert cut["incomplete_details"] == {"reason": "max_output_tokens"}


def events_of(raw: bytes) -> list[dict]:
    return [orjson.loads(block.split(b"data: ", 1)[1]) for block in raw.split(b"\n\n")
            if block.strip()]


def test_a_stream_opens_fills_and_closes_each_item_in_order():
    encoder = ResponsesStreamEncoder("m", {"model": "m"}, {"input": "hi"})
    raw = encoder.encode({"choices": [{"index": 0, "delta": {"content": "Hel"}}]})
    raw += encoder.encode({"choices": [{"index": 0, "delta": {"content": "lo"}}]})
    raw += encoder.encode({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "c1", "function": {"name": "w", "arguments": "{\"a\""}}]}}]})
    raw += encoder.encode({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": ": 1}"}}]}, "finish_reason": "tool_calls"}]})
    raw += encoder.finish(Usage.of(3, 4))
    events = events_of(raw)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    completed = events[-1]["response"]
    assert completed["output"][0]["content"][0]["text"] == "Hello"
    assert completed["output"][1]["arguments"] == '{"a": 1}'
    assert completed["output"][1]["call_id"] == "c1"
    assert completed["usage"]["output_tokens"] == 4
    assert completed["id"] == events[0]["response"]["id"]


def test_a_failed_stream_ends_with_error_then_response_failed():
    encoder = ResponsesStreamEncoder("m", {"model": "m"}, None)
    raw = encoder.encode({"choices": [{"index": 0, "delta": {"content": "Hi"}}]})
    raw += encoder.error({"error": {"message": "cut", "type": "api_error", "code": "stream_cut"}})
    events = events_of(raw)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["code"] == "stream_cut" and events[-2]["message"] == "cut"
    assert events[-1]["response"]["status"] == "failed"
    # Before anything started (or over the provider's own stream): the error event alone.
    alone = events_of(ResponsesStreamEncoder("m", {}, None).error(
        {"error": {"message": "down", "code": None}}))
    assert [e["type"] for e in alone] == ["error"]
