"""Conformance with the official openai and anthropic SDKs.

Each SDK talks, through httpx's in-process MockTransport (no sockets), to a
handler that does what the ai-proxy plugin will do: translate the client's
request for the provider, then translate the provider's recorded answer
(a golden fixture) back. If the SDK parses the result into its own types,
the shapes are right.
"""

from __future__ import annotations

import anthropic
import httpx2
import openai
import orjson
import pytest
from ai_testkit import FIXTURES, awkward_pieces, load

from fastgw.ai import (
    OPENAI_DONE,
    ROUTE_CHAT,
    ROUTE_EMBEDDINGS,
    ModelConfig,
    StreamError,
    encode_openai_chunk,
    encode_openai_stream_error,
    get_translator,
)
from fastgw.ai.anthropic_format import (
    AnthropicStreamEncoder,
    anthropic_to_openai_request,
    openai_error_to_anthropic,
    openai_to_anthropic_response,
)

MODELS = {
    "openai": ModelConfig(provider="openai", name="gpt-4o-mini"),
    "azure": ModelConfig.from_kong(
        {"provider": "azure", "name": "gpt-4o", "options": {"azure_instance": "contoso"}}
    ),
    "anthropic": ModelConfig(provider="anthropic", name="claude-sonnet-4-5"),
    "gemini": ModelConfig(provider="gemini", name="gemini-2.0-flash"),
    "mistral": ModelConfig(provider="mistral", name="mistral-small-latest"),
    "ollama": ModelConfig(provider="ollama", name="llama3.2"),
}
STREAMS = {
    "openai": "stream_chat_tools",
    "azure": "stream_prompt_filter",
    "anthropic": "stream_tool_use",
    "gemini": "stream_function_call",
    "mistral": "stream_chat",
    "ollama": "stream_chat",
}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]


class RecordedUpstream:
    """A provider that answers every request with one recorded body or stream."""

    def __init__(
        self, provider: str, answer: bytes = b"", stream: bytes = b"", cut_at: int | None = None
    ):
        self.model = MODELS[provider]
        self.translator = get_translator(self.model)
        self.answer = answer
        self.stream = stream[:cut_at]
        self.sent: list[dict] = []  # the provider requests, as built

    def call(self, route_type: str, body: dict):
        """(answer, usage) or (stream translator, translated chunks), as the plugin gets them."""
        upstream = self.translator.build_request(route_type, body, self.model)
        self.sent.append(orjson.loads(upstream.body))
        name = self.model.name
        if not upstream.stream:
            return self.translator.parse_response(
                route_type, 200, self.answer, body, model_name=name
            )
        translator = self.translator.stream_translator(route_type, name, body)
        chunks = [
            c for piece in awkward_pieces(self.stream, seed=9) for c in translator.feed(piece)
        ]
        return translator, chunks


def openai_client(upstream: RecordedUpstream) -> openai.OpenAI:
    def handle(request: httpx2.Request) -> httpx2.Response:
        body = orjson.loads(request.content)
        route_type = ROUTE_EMBEDDINGS if request.url.path.endswith("/embeddings") else ROUTE_CHAT
        result = upstream.call(route_type, body)
        if not body.get("stream"):
            return httpx2.Response(
                200, content=orjson.dumps(result[0]), headers={"content-type": "application/json"}
            )
        translator, chunks = result
        wire = b"".join(map(encode_openai_chunk, chunks))
        try:
            wire += b"".join(map(encode_openai_chunk, translator.finish())) + OPENAI_DONE
        except StreamError as failure:
            wire += encode_openai_stream_error(failure.error)
        return httpx2.Response(200, content=wire, headers={"content-type": "text/event-stream"})

    transport = httpx2.MockTransport(handle)
    return openai.OpenAI(
        api_key="gateway-key",
        base_url="http://gateway.test/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )


def anthropic_client(upstream: RecordedUpstream) -> anthropic.Anthropic:
    def handle(request: httpx2.Request) -> httpx2.Response:
        anthropic_body = orjson.loads(request.content)
        body = anthropic_to_openai_request(anthropic_body)
        result = upstream.call(ROUTE_CHAT, body)
        if not body.get("stream"):
            message = openai_to_anthropic_response(*result)
            return httpx2.Response(
                200, content=orjson.dumps(message), headers={"content-type": "application/json"}
            )
        translator, chunks = result
        encoder = AnthropicStreamEncoder(anthropic_body["model"])
        wire = b"".join(map(encoder.encode, chunks))
        try:
            translator.finish()
            wire += encoder.finish(translator.usage)
        except StreamError as failure:
            wire += encoder.error(failure.error)
        return httpx2.Response(200, content=wire, headers={"content-type": "text/event-stream"})

    transport = httpx2.MockTransport(handle)
    return anthropic.Anthropic(
        api_key="gateway-key",
        base_url="http://gateway.test",
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )


def recorded_stream(provider: str, cut_at: int | None = None) -> tuple[RecordedUpstream, dict]:
    case = load(FIXTURES / provider / f"{STREAMS[provider]}.json")
    raw = (FIXTURES / provider / case["stream_file"]).read_bytes()
    return RecordedUpstream(provider, stream=raw, cut_at=cut_at), case


@pytest.mark.parametrize("provider", sorted(STREAMS))
def test_openai_sdk_accumulates_every_providers_stream(provider):
    upstream, case = recorded_stream(provider)
    client = openai_client(upstream)

    with client.chat.completions.stream(
        model="any", messages=QUESTION, stream_options={"include_usage": True}
    ) as stream:
        completion = stream.get_final_completion()

    expected_text = "".join(
        chunk["choices"][0]["delta"].get("content") or ""
        for chunk in case["expected_chunks"]
        if chunk["choices"]
    )
    message = completion.choices[0].message
    assert (message.content or "") == expected_text
    assert completion.usage.total_tokens == case["expected_usage"]["total_tokens"]
    if completion.choices[0].finish_reason == "tool_calls":
        [call] = message.tool_calls
        assert call.function.name == "get_weather"
        assert isinstance(orjson.loads(call.function.arguments), dict)


@pytest.mark.parametrize(
    ("provider", "fixture"),
    [
        ("openai", "response_chat_tool_calls"),
        ("anthropic", "response_tool_use"),
        ("gemini", "response_function_call"),
        ("ollama", "response_chat_tool_calls"),
    ],
)
def test_openai_sdk_parses_every_providers_answer(provider, fixture):
    case = load(FIXTURES / provider / f"{fixture}.json")
    client = openai_client(RecordedUpstream(provider, answer=orjson.dumps(case["upstream"])))

    completion = client.chat.completions.create(model="any", messages=QUESTION)

    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert completion.usage.total_tokens == case["expected_usage"]["total_tokens"]


@pytest.mark.parametrize(
    ("provider", "fixture", "vectors"),
    [
        (
            "gemini",
            "response_embeddings",
            [[0.013168523, -0.008711934, 0.5], [0.25, -0.125, 0.0625]],
        ),
        ("ollama", "response_embed", [[0.010071029, -0.0017594862], [0.25, 0.5]]),
        ("mistral", "response_embeddings_base64", [[0.5, -0.25], [0.125, 1.0]]),
    ],
)
def test_openai_sdk_decodes_base64_embeddings_it_asks_for_by_default(provider, fixture, vectors):
    case = load(FIXTURES / provider / f"{fixture}.json")
    upstream = RecordedUpstream(provider, answer=orjson.dumps(case["upstream"]))

    result = openai_client(upstream).embeddings.create(model="any", input=["a", "b"])

    # float32 on the wire: equal to about 7 significant digits
    assert [item.embedding for item in result.data] == [pytest.approx(v, rel=1e-6) for v in vectors]
    assert "encoding_format" not in upstream.sent[0]  # these providers answer floats only


def test_openai_sdk_raises_on_a_cut_stream():
    upstream, _ = recorded_stream("anthropic", cut_at=900)
    stream = openai_client(upstream).chat.completions.create(
        model="any", messages=QUESTION, stream=True
    )
    with pytest.raises(openai.APIError, match="closed the stream"):
        for _ in stream:
            pass


@pytest.mark.parametrize("provider", ["anthropic", "gemini", "ollama", "openai"])
def test_anthropic_sdk_streams_through_the_front_door(provider):
    upstream, case = recorded_stream(provider)
    client = anthropic_client(upstream)

    with client.messages.stream(model="claude-front", max_tokens=100, messages=QUESTION) as stream:
        message = stream.get_final_message()

    assert upstream.sent[0]  # the provider got a request in its own format
    assert message.model == "claude-front"
    assert message.stop_reason == "tool_use"
    tool_use = [block for block in message.content if block.type == "tool_use"]
    assert tool_use[0].name == "get_weather" and tool_use[0].input
    assert message.usage.output_tokens == case["expected_usage"]["completion_tokens"]


@pytest.mark.parametrize(
    ("provider", "fixture"),
    [("gemini", "response_function_call"), ("ollama", "response_chat_tool_calls")],
)
def test_anthropic_sdk_reads_answers_from_the_front_door(provider, fixture):
    case = load(FIXTURES / provider / f"{fixture}.json")
    client = anthropic_client(RecordedUpstream(provider, answer=orjson.dumps(case["upstream"])))

    message = client.messages.create(model="claude-front", max_tokens=100, messages=QUESTION)

    assert message.stop_reason == "tool_use"
    assert message.content[-1].type == "tool_use" and message.content[-1].input == {"city": "Paris"}


def test_anthropic_sdk_raises_on_a_cut_stream():
    upstream, _ = recorded_stream("gemini", cut_at=300)
    with pytest.raises(anthropic.APIStatusError, match="closed the stream"):
        with anthropic_client(upstream).messages.stream(
            model="m", max_tokens=10, messages=QUESTION
        ) as stream:
            stream.get_final_message()


def test_anthropic_error_body_reaches_the_sdk_as_its_own_error_type():
    error = get_translator("gemini").parse_error(
        429, b'{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}'
    )

    def handle(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(429, content=orjson.dumps(openai_error_to_anthropic(error, 429)))

    client = anthropic.Anthropic(
        api_key="k",
        base_url="http://gateway.test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handle)),
    )
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(model="m", max_tokens=10, messages=QUESTION)
    assert raised.value.body["error"] == {"type": "rate_limit_error", "message": "quota"}
