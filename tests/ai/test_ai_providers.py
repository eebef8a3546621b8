"""Translator behaviour the golden fixtures do not show: options, auth, URLs, refusals."""

from __future__ import annotations

import orjson
import pytest

from fastgw.ai import (
    PROVIDERS,
    ROUTE_CHAT,
    ROUTE_COMPLETIONS,
    ROUTE_EMBEDDINGS,
    ModelConfig,
    TranslationError,
    UnsupportedRouteType,
    UpstreamFormatError,
    get_translator,
)
from fastgw.ai.config import AuthConfig, GeminiOptions, ModelOptions
from fastgw.ai.providers.gemini import gemini_schema

CHAT = {"model": "client-model", "messages": [{"role": "user", "content": "hi"}]}


def build(provider: str, body: dict, route_type: str = ROUTE_CHAT, **model_fields):
    model = ModelConfig(provider=provider, **model_fields)
    upstream = get_translator(model).build_request(route_type, body, model)
    return upstream, orjson.loads(upstream.body)


def test_from_kong_reads_kong_field_names_and_ignores_the_rest():
    model = ModelConfig.from_kong(
        {
            "provider": "gemini",
            "name": "gemini-2.0-flash",
            "options": {
                "max_tokens": 256,
                "input_cost": 0.1,
                "azure_api_version": None,
                "bedrock": {"aws_region": "eu-west-1"},
                "gemini": {"project_id": "p", "location_id": "l", "api_endpoint": "e"},
            },
        },
        {
            "param_name": "key",
            "param_value": "k",
            "param_location": "query",
            "gcp_use_service_account": False,
        },
    )
    assert model.options == ModelOptions(
        max_tokens=256, input_cost=0.1, gemini=GeminiOptions("e", "p", "l")
    )
    assert model.options.gemini.vertex
    assert model.auth == AuthConfig(param_name="key", param_value="k", param_location="query")


def test_option_defaults_fill_only_what_the_request_left_unset():
    options = ModelOptions(max_tokens=100, temperature=0.5, top_p=0.8)
    _, body = build(
        "openai", {**CHAT, "temperature": 0, "max_completion_tokens": 9}, options=options
    )
    assert (body["temperature"], body["top_p"], body["max_completion_tokens"]) == (0, 0.8, 9)
    assert "max_tokens" not in body
    _, body = build("openai", CHAT, options=options)
    assert body["max_tokens"] == 100


def test_the_configured_model_wins_and_a_missing_model_is_refused():
    _, body = build("openai", CHAT, name="gpt-4o")
    assert body["model"] == "gpt-4o"
    _, body = build("openai", CHAT)
    assert body["model"] == "client-model"
    with pytest.raises(TranslationError) as refused:
        build("openai", {"messages": []})
    assert refused.value.error["error"]["type"] == "invalid_request_error"


def test_auth_parameter_in_the_body_and_in_a_query_that_already_has_one():
    auth = AuthConfig(param_name="api_key", param_value="s3cret", param_location="body")
    upstream, body = build("openai", CHAT, auth=auth)
    assert body["api_key"] == "s3cret" and "?" not in upstream.path_and_query
    auth = AuthConfig(param_name="key", param_value="a b&c", param_location="query")
    upstream, _ = build("gemini", {**CHAT, "stream": True}, name="gemini-2.0-flash", auth=auth)
    assert upstream.path_and_query.endswith(":streamGenerateContent?alt=sse&key=a%20b%26c")


def test_upstream_path_replaces_the_default_path_and_host_parts_are_parsed():
    options = ModelOptions(upstream_url="https://proxy.example:8443", upstream_path="/llm/chat")
    upstream, _ = build("openai", CHAT, options=options)
    assert upstream.url == "https://proxy.example:8443/llm/chat"
    assert (upstream.scheme, upstream.host, upstream.port) == ("https", "proxy.example", 8443)
    upstream, _ = build("ollama", CHAT)
    assert (upstream.scheme, upstream.host, upstream.port) == ("http", "localhost", 11434)


def test_a_full_gemini_generate_url_streams_from_its_streaming_twin():
    options = ModelOptions(upstream_url="https://gw.example/v1beta/models/g:generateContent")
    upstream, _ = build("gemini", {**CHAT, "stream": True}, options=options)
    assert upstream.url == "https://gw.example/v1beta/models/g:streamGenerateContent?alt=sse"


@pytest.mark.parametrize(
    ("provider", "route_type"),
    [
        ("anthropic", ROUTE_EMBEDDINGS),
        ("anthropic", ROUTE_COMPLETIONS),
        ("gemini", ROUTE_COMPLETIONS),
        ("mistral", ROUTE_COMPLETIONS),
    ],
)
def test_unsupported_route_types_are_refused(provider, route_type):
    with pytest.raises(UnsupportedRouteType):
        build(provider, CHAT, route_type, name="m")


@pytest.mark.parametrize("provider", ["anthropic", "gemini", "ollama"])
def test_unknown_roles_and_content_parts_are_refused_not_dropped(provider):
    with pytest.raises(TranslationError):
        build(provider, {"messages": [{"role": "narrator", "content": "x"}]}, name="m")
    audio = {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}
    with pytest.raises(TranslationError):
        build(provider, {"messages": [{"role": "user", "content": [audio]}]}, name="m")


def test_ollama_refuses_image_urls_it_cannot_fetch():
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(TranslationError):
        build("ollama", {"messages": [{"role": "user", "content": [image]}]}, name="llava")


def test_remote_images_become_url_sources_and_file_data():
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}}
    body = {"messages": [{"role": "user", "content": [image]}]}
    _, anthropic = build("anthropic", body, name="m")
    assert anthropic["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.webp"}}
    ]
    _, gemini = build("gemini", body, name="m")
    assert gemini["contents"][0]["parts"] == [
        {"fileData": {"fileUri": "https://example.com/cat.webp", "mimeType": "image/webp"}}
    ]


def test_gemini_needs_the_name_of_the_call_a_tool_result_answers():
    body = {"messages": [{"role": "tool", "tool_call_id": "call_unknown", "content": "42"}]}
    with pytest.raises(TranslationError):
        build("gemini", body, name="m")


def test_gemini_tool_results_that_are_not_objects_are_wrapped():
    body = {
        "messages": [
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "c1", "content": "[1, 2]"},
        ]
    }
    _, gemini = build("gemini", body, name="m")
    responses = [part["functionResponse"]["response"] for part in gemini["contents"][1]["parts"]]
    assert responses == [{"content": "sunny"}, {"content": "[1, 2]"}]


def test_gemini_schema_cleanup_keeps_properties_named_like_keywords():
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "strict": {"type": "boolean"},
            "additionalProperties": {"type": "object", "additionalProperties": {"type": "string"}},
            "items": {
                "type": "array",
                "items": {"type": "object", "$schema": "x", "properties": {}},
            },
        },
    }
    assert gemini_schema(schema) == {
        "type": "object",
        "properties": {
            "strict": {"type": "boolean"},
            "additionalProperties": {"type": "object"},
            "items": {"type": "array", "items": {"type": "object", "properties": {}}},
        },
    }


def test_gemini_omits_parameters_of_a_tool_without_arguments_and_maps_json_mode():
    tool = {
        "type": "function",
        "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
    }
    body = {
        **CHAT,
        "tools": [tool],
        "tool_choice": "none",
        "response_format": {"type": "json_object"},
    }
    _, gemini = build("gemini", body, name="m")
    assert gemini["tools"] == [{"functionDeclarations": [{"name": "now"}]}]
    assert gemini["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    assert gemini["generationConfig"] == {"responseMimeType": "application/json"}


def test_anthropic_gets_a_max_tokens_even_when_nobody_set_one():
    _, body = build("anthropic", CHAT, name="claude")
    assert body["max_tokens"] == 4096


def test_anthropic_merges_consecutive_turns_and_keeps_several_system_messages():
    body = {
        "messages": [
            {"role": "system", "content": "one"},
            {"role": "system", "content": [{"type": "text", "text": "two"}]},
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": ""},
        ]
    }
    _, anthropic = build("anthropic", body, name="claude")
    assert anthropic["system"] == [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]
    assert anthropic["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


def test_broken_tool_arguments_in_history_do_not_break_the_request():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
    body = {"messages": [{"role": "assistant", "content": None, "tool_calls": [call]}]}
    _, anthropic = build("anthropic", body, name="claude")
    assert anthropic["messages"][0]["content"][0]["input"] == {}


def test_embeddings_of_token_ids_are_refused_where_only_text_is_accepted():
    with pytest.raises(TranslationError):
        build("gemini", {"input": [[1, 2, 3]]}, ROUTE_EMBEDDINGS, name="text-embedding-004")


def test_unreadable_answers_are_upstream_format_errors():
    for provider in PROVIDERS:
        with pytest.raises(UpstreamFormatError) as failure:
            get_translator(provider).parse_response(ROUTE_CHAT, 200, b"<html>oops</html>")
        assert failure.value.status == 502


def test_azure_without_instance_is_a_config_error_and_unknown_providers_are_named():
    with pytest.raises(ValueError, match="azure_instance"):
        build("azure", CHAT, name="gpt-4o")
    with pytest.raises(ValueError, match="known: openai"):
        get_translator("cohere")


def test_gemini_thought_signatures_survive_the_round_trip_through_tool_call_ids():
    signature = "Cu4BAR/Mhb+e3gx8+aE="  # base64 with the characters ids must not hold
    answer = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {"name": "f", "args": {"x": 1}},
                            "thoughtSignature": signature,
                        },
                        {"functionCall": {"name": "g", "args": {}}},
                    ],
                },
                "finishReason": "STOP",
            }
        ]
    }
    completion, _ = get_translator("gemini").parse_response(ROUTE_CHAT, 200, orjson.dumps(answer))
    calls = completion["choices"][0]["message"]["tool_calls"]
    assert all(
        set(call["id"]) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
        for call in calls
    )

    history = {"messages": [{"role": "assistant", "content": None, "tool_calls": calls}]}
    _, gemini = build("gemini", history, name="gemini-3-pro")
    parts = gemini["contents"][0]["parts"]
    assert parts[0] == {
        "functionCall": {"name": "f", "args": {"x": 1}},
        "thoughtSignature": signature,
    }
    assert parts[1] == {"functionCall": {"name": "g", "args": {}}}


def anthropic_payload(**fields) -> dict:
    return build("anthropic", {**CHAT, **fields})[1]


@pytest.mark.parametrize(("fields", "named"), [
    ({"n": 2}, "n:"),
    ({"logprobs": True}, "logprobs:"),
    ({"seed": 7}, "seed:"),
    ({"frequency_penalty": 0.5}, "frequency_penalty:"),
    ({"response_format": {"type": "json_object"}}, "response_format.type:"),
    ({"reasoning_effort": "high", "max_completion_tokens": 1500}, "reasoning_effort:"),
])
def test_what_anthropic_cannot_do_is_refused_naming_the_field(fields, named):
    with pytest.raises(TranslationError) as refusal:
        build("anthropic", {**CHAT, **fields})
    assert refusal.value.status == 400
    assert refusal.value.error["error"]["message"].startswith(named)


def test_structured_outputs_and_reasoning_effort_are_translated_for_anthropic():
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "required": ["city"], "additionalProperties": False}
    payload = anthropic_payload(
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        reasoning_effort="high", max_completion_tokens=32000, n=1, logprobs=False)
    assert payload["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert payload["thinking"] == {"type": "enabled", "budget_tokens": 16000}
    assert "response_format" not in payload and "n" not in payload
    assert "output_config" not in anthropic_payload(response_format={"type": "text"})


def test_an_anthropic_client_is_translated_or_refused_for_other_providers():
    from fastgw.ai.front_doors import FRONT_DOORS

    front = FRONT_DOORS["anthropic"]
    schema = {"type": "object", "properties": {}}
    body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}],
            "output_config": {"format": {"type": "json_schema", "schema": schema}},
            "thinking": {"type": "enabled", "budget_tokens": 6000}}
    front.refuse_untranslated(body, "openai")
    request = front.canonical_request(body, ROUTE_CHAT)
    assert request["response_format"]["json_schema"]["schema"] == schema
    assert request["reasoning_effort"] == "medium"
    sent = build("openai", request)[1]
    assert sent["response_format"]["type"] == "json_schema"
    for extra, named in (({"container": "c-1"}, "container:"),
                         ({"output_config": {"effort": "high"}}, "output_config.effort:")):
        with pytest.raises(TranslationError) as refusal:
            front.refuse_untranslated({**body, **extra}, "openai")
        assert refusal.value.error["error"]["message"].startswith(named)


@pytest.mark.parametrize(("provider", "fields", "named"), [
    ("gemini", {"logprobs": True}, "logprobs:"),
    ("gemini", {"reasoning_effort": "low"}, "reasoning_effort:"),
    ("ollama", {"n": 3}, "n:"),
    ("ollama", {"logit_bias": {"50256": -100}}, "logit_bias:"),
    ("mistral", {"top_logprobs": 3, "logprobs": True}, "logprobs:"),
    ("mistral", {"top_k": 40}, "top_k:"),
    ("azure", {"top_k": 40}, "top_k:"),
])
def test_other_providers_refuse_what_they_have_no_place_for(provider, fields, named):
    with pytest.raises(TranslationError) as refusal:
        build(provider, {**CHAT, **fields})
    assert refusal.value.error["error"]["message"].startswith(named)


def test_defaults_that_ask_for_nothing_are_not_refused():
    for provider in ("anthropic", "gemini", "ollama", "mistral"):
        build(provider, {**CHAT, "n": 1, "logprobs": False, "seed": None})
    # Mistral still drops the hints it has no field for.
    assert "user" not in build("mistral", {**CHAT, "user": "u-1"})[1]


def test_openai_format_servers_get_every_field_as_it_came():
    # vLLM honours top_k; OpenAI itself answers an unknown field with its own 400.
    sent = build("openai", {**CHAT, "top_k": 40, "min_p": 0.1, "repetition_penalty": 1.1})[1]
    assert (sent["top_k"], sent["min_p"], sent["repetition_penalty"]) == (40, 0.1, 1.1)
