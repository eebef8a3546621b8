"""Anthropic Messages shapes, checked with the official `anthropic` SDK."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from fastgw.mockllm.textgen import count_tokens

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
        "required": ["city"],
    },
}
QUESTION = [{"role": "user", "content": "Tell me about the weather in Lyon"}]


def test_messages_json(anthropic_client):
    message = anthropic_client.messages.create(
        model="claude-sonnet-4-6", max_tokens=256, system="You are terse.", messages=QUESTION
    )
    assert (
        message.type == "message"
        and message.role == "assistant"
        and message.model == "claude-sonnet-4-6"
    )
    (block,) = message.content
    assert block.type == "text" and block.text.startswith(
        "Mock answer to: Tell me about the weather in Lyon"
    )
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens == count_tokens("You are terse.") + count_tokens(
        QUESTION[0]["content"]
    )
    assert message.usage.output_tokens == count_tokens(block.text) == 16


def test_messages_stream_event_sequence(anthropic_client):
    whole = anthropic_client.messages.create(model="c", max_tokens=256, messages=QUESTION)
    with anthropic_client.messages.stream(model="c", max_tokens=256, messages=QUESTION) as stream:
        events = list(stream)
        final = stream.get_final_message()
    raw_types = [event.type for event in events if event.type != "text"]
    assert raw_types[:2] == ["message_start", "content_block_start"]
    assert raw_types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert final.content[0].text == whole.content[0].text
    assert final.usage.output_tokens == 16 and final.stop_reason == "end_turn"


def test_raw_stream_includes_ping(mock_llm, call_mock):
    response = call_mock(
        "POST",
        "/v1/messages",
        {"model": "c", "max_tokens": 5, "stream": True, "messages": QUESTION},
    )
    event_names = [
        line[len(b"event: ") :] for line in response.lines() if line.startswith(b"event: ")
    ]
    assert event_names == [
        b"message_start",
        b"content_block_start",
        b"ping",
        *[b"content_block_delta"] * 5,
        b"content_block_stop",
        b"message_delta",
        b"message_stop",
    ]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["transfer-encoding"] == "chunked"


def test_max_tokens_and_stop_sequences(anthropic_client):
    limited = anthropic_client.messages.create(model="c", max_tokens=3, messages=QUESTION)
    assert limited.content[0].text == "Mock answer to"
    assert limited.stop_reason == "max_tokens" and limited.usage.output_tokens == 3
    stopped = anthropic_client.messages.create(
        model="c", max_tokens=100, messages=QUESTION, stop_sequences=["weather"]
    )
    assert stopped.content[0].text == "Mock answer to: Tell me about the "
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "weather")


def test_tool_use_json_and_stream(anthropic_client):
    message = anthropic_client.messages.create(
        model="c", max_tokens=100, messages=QUESTION, tools=[WEATHER_TOOL]
    )
    (tool_use,) = message.content
    assert message.stop_reason == "tool_use"
    assert (
        tool_use.type == "tool_use"
        and tool_use.name == "get_weather"
        and tool_use.id.startswith("toolu_")
    )
    assert tool_use.input == {"city": "Paris"}
    with anthropic_client.messages.stream(
        model="c", max_tokens=100, messages=QUESTION, tools=[WEATHER_TOOL]
    ) as stream:
        json_deltas = [
            e
            for e in stream
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
        final = stream.get_final_message()
    assert len(json_deltas) > 3
    assert final.content[0].input == {"city": "Paris"} and final.stop_reason == "tool_use"


def test_tool_choice_none_and_tool_result(anthropic_client):
    plain = anthropic_client.messages.create(
        model="c",
        max_tokens=100,
        messages=QUESTION,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "none"},
    )
    assert plain.content[0].type == "text"
    first = anthropic_client.messages.create(
        model="c", max_tokens=100, messages=QUESTION, tools=[WEATHER_TOOL]
    )
    tool_use = first.content[0]
    follow_up = [
        *QUESTION,
        {"role": "assistant", "content": [tool_use.model_dump(exclude_none=True)]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool_use.id, "content": "Sunny, 24 C"}
            ],
        },
    ]
    answer = anthropic_client.messages.create(
        model="c", max_tokens=100, messages=follow_up, tools=[WEATHER_TOOL]
    )
    assert answer.stop_reason == "end_turn"
    assert '"Sunny, 24 C"' in answer.content[0].text


def test_missing_max_tokens_is_a_400_in_anthropic_shape(call_mock):
    response = call_mock("POST", "/v1/messages", {"model": "c", "messages": QUESTION})
    assert response.status == 400
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.InternalServerError, "overloaded_error"),
    ],
)
def test_injected_status_raises_matching_exception(
    anthropic_client, status, error_class, error_type
):
    with pytest.raises(error_class) as caught:
        anthropic_client.messages.create(
            model="c",
            max_tokens=10,
            messages=QUESTION,
            extra_headers={"x-mock-status": str(status)},
        )
    assert caught.value.status_code == status
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == error_type


def test_cut_stream_raises_in_sdk(anthropic_client):
    received = []
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        with anthropic_client.messages.stream(
            model="c", max_tokens=100, messages=QUESTION, extra_headers={"x-mock-cut-after": "4"}
        ) as stream:
            for event in stream:
                received.append(event.type)
    # message_start, content_block_start and one text delta got through (ping is dropped).
    assert "message_start" in received and "message_stop" not in received


def test_models_list_in_anthropic_shape(anthropic_client):
    models = list(anthropic_client.models.list())
    assert models and all(model.type == "model" for model in models)
    assert any(model.id.startswith("claude") for model in models)
