"""OpenAI shapes, checked with the official `openai` SDK (and raw HTTP where no SDK call fits)."""

from __future__ import annotations

import base64
import json
import math
import struct

import openai
import pytest

from fastgw.mockllm.textgen import count_tokens

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["city", "unit"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
}
QUESTION = [{"role": "user", "content": "What is the weather like in Paris today?"}]


def test_chat_json(openai_client):
    completion = openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Be brief."}, *QUESTION],
    )
    choice = completion.choices[0]
    assert completion.object == "chat.completion" and completion.model == "gpt-4o-mini"
    assert choice.message.role == "assistant"
    assert choice.message.content.startswith("Mock answer to: What is the weather like in Paris")
    assert choice.finish_reason == "stop"
    assert completion.usage.prompt_tokens == count_tokens("Be brief.") + count_tokens(
        QUESTION[0]["content"]
    )
    assert completion.usage.completion_tokens == count_tokens(choice.message.content) == 16
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 16


def test_chat_stream_matches_json_and_reports_usage(openai_client):
    whole = openai_client.chat.completions.create(model="m", messages=QUESTION)
    chunks = list(
        openai_client.chat.completions.create(
            model="m", messages=QUESTION, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage.completion_tokens == 16
    assert usage_chunk.usage.prompt_tokens == whole.usage.prompt_tokens
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_stream_without_include_usage_has_no_usage_chunk(openai_client):
    chunks = list(openai_client.chat.completions.create(model="m", messages=QUESTION, stream=True))
    assert all(chunk.choices for chunk in chunks)


def test_max_tokens_and_stop(openai_client):
    limited = openai_client.chat.completions.create(
        model="m", messages=QUESTION, max_completion_tokens=4
    )
    assert limited.choices[0].message.content == "Mock answer to:"
    assert limited.choices[0].finish_reason == "length" and limited.usage.completion_tokens == 4
    legacy_limit = openai_client.chat.completions.create(model="m", messages=QUESTION, max_tokens=2)
    assert legacy_limit.choices[0].message.content == "Mock answer"
    stopped = openai_client.chat.completions.create(model="m", messages=QUESTION, stop=["Paris"])
    assert stopped.choices[0].message.content == "Mock answer to: What is the weather like in "
    assert stopped.choices[0].finish_reason == "stop"


def test_tool_call_json(openai_client):
    completion = openai_client.chat.completions.create(
        model="m", messages=QUESTION, tools=[WEATHER_TOOL, SEARCH_TOOL]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert (
        call.type == "function"
        and call.function.name == "get_weather"
        and call.id.startswith("call_")
    )
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "c"}


def test_tool_choice_names_the_tool_or_disables_tools(openai_client):
    named = openai_client.chat.completions.create(
        model="m",
        messages=QUESTION,
        tools=[WEATHER_TOOL, SEARCH_TOOL],
        tool_choice={"type": "function", "function": {"name": "search"}},
    )
    call = named.choices[0].message.tool_calls[0]
    assert call.function.name == "search"
    assert json.loads(call.function.arguments) == {"query": QUESTION[0]["content"]}
    disabled = openai_client.chat.completions.create(
        model="m", messages=QUESTION, tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert disabled.choices[0].message.tool_calls is None
    assert disabled.choices[0].finish_reason == "stop"


def test_tool_call_stream_follows_delta_format(openai_client):
    stream = openai_client.chat.completions.create(
        model="m", messages=QUESTION, tools=[WEATHER_TOOL], stream=True
    )
    deltas = [chunk.choices[0] for chunk in stream]
    opening = deltas[0].delta.tool_calls[0]
    assert (opening.index, opening.type, opening.function.name) == (0, "function", "get_weather")
    assert opening.id.startswith("call_")
    arguments = "".join(
        d.delta.tool_calls[0].function.arguments for d in deltas if d.delta.tool_calls
    )
    assert json.loads(arguments) == {"city": "Paris", "unit": "c"}
    assert len([d for d in deltas if d.delta.tool_calls]) > 3  # streamed in pieces
    assert deltas[-1].finish_reason == "tool_calls"


def test_tool_result_is_quoted_in_the_answer(openai_client):
    first = openai_client.chat.completions.create(
        model="m", messages=QUESTION, tools=[WEATHER_TOOL]
    )
    call = first.choices[0].message.tool_calls[0]
    messages = [
        *QUESTION,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21, "sky": "clear"}'},
    ]
    answer = openai_client.chat.completions.create(
        model="m", messages=messages, tools=[WEATHER_TOOL]
    )
    assert answer.choices[0].finish_reason == "stop"
    assert '{"temp_c": 21, "sky": "clear"}' in answer.choices[0].message.content


def test_legacy_completions_json_and_stream(openai_client):
    completion = openai_client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Say hello to the world"
    )
    assert completion.object == "text_completion"
    assert completion.choices[0].text.startswith("Mock answer to: Say hello to the world")
    assert completion.usage.completion_tokens == 16
    several = openai_client.completions.create(model="m", prompt=["one", "two"], max_tokens=3)
    assert [choice.index for choice in several.choices] == [0, 1]
    assert all(choice.finish_reason == "length" for choice in several.choices)
    chunks = list(
        openai_client.completions.create(
            model="m",
            prompt="Say hello to the world",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == completion.choices[0].text
    assert chunks[-1].usage.total_tokens == completion.usage.total_tokens


def test_embeddings_similarity_ordering(openai_client):
    texts = ["How do I reset my password?", "How can I reset my password", "Best pizza in Naples"]
    response = openai_client.embeddings.create(model="text-embedding-3-small", input=texts)
    vectors = [item.embedding for item in response.data]
    assert [item.index for item in response.data] == [0, 1, 2]
    assert all(len(vector) == 256 for vector in vectors)
    assert math.isclose(sum(v * v for v in vectors[0]), 1.0, rel_tol=1e-6)

    def cosine(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(vectors[0], vectors[1]) > 0.7 > 0.2 > cosine(vectors[0], vectors[2])
    assert response.usage.prompt_tokens == sum(count_tokens(text) for text in texts)


def test_embeddings_dimensions_and_base64(openai_client, call_mock):
    floats = openai_client.embeddings.create(model="e", input="hello world", dimensions=64)
    assert len(floats.data[0].embedding) == 64
    raw = call_mock(
        "POST",
        "/v1/embeddings",
        {"model": "e", "input": "hello world", "dimensions": 64, "encoding_format": "base64"},
    ).json()
    decoded = struct.unpack("<64f", base64.b64decode(raw["data"][0]["embedding"]))
    assert decoded == pytest.approx(floats.data[0].embedding, abs=1e-6)


def test_models_list_and_retrieve(openai_client):
    ids = [model.id for model in openai_client.models.list()]
    assert "gpt-4o-mini" in ids and len(ids) >= 3
    assert openai_client.models.retrieve("my-model").id == "my-model"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_injected_status_raises_matching_exception(openai_client, status, error_class):
    with pytest.raises(error_class) as caught:
        openai_client.chat.completions.create(
            model="m", messages=QUESTION, extra_headers={"x-mock-status": str(status)}
        )
    assert caught.value.status_code == status
    assert caught.value.body["message"].endswith("(mock).")


def test_bad_requests_use_openai_error_shape(openai_client, call_mock):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model="m", messages=[])
    assert caught.value.body["param"] == "messages"
    malformed = call_mock("POST", "/v1/chat/completions", raw_body=b'{"model": ')
    assert malformed.status == 400
    assert malformed.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        openai_client.chat.completions.create(model="m", messages=QUESTION, max_tokens=0)


def test_cut_stream_raises_in_sdk(openai_client):
    stream = openai_client.chat.completions.create(
        model="m", messages=QUESTION, stream=True, extra_headers={"x-mock-cut-after": "3"}
    )
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 3


def test_azure_deployment_with_azure_client(mock_llm):
    client = openai.AzureOpenAI(
        azure_endpoint=mock_llm.base_url, api_version="2024-10-21", api_key="k", max_retries=0
    )
    completion = client.chat.completions.create(model="my-deployment", messages=QUESTION)
    assert completion.model == "my-deployment"
    assert completion.choices[0].message.content.startswith("Mock answer to:")
    request = mock_llm.requests()[-1]
    assert request["path"] == "/openai/deployments/my-deployment/chat/completions"
    assert "api-version=2024-10-21" in request["query"]
    client.close()


def test_azure_needs_api_version(call_mock):
    response = call_mock("POST", "/openai/deployments/d/chat/completions", {"messages": QUESTION})
    assert response.status == 404
    assert response.json()["error"]["message"] == "Resource not found"
