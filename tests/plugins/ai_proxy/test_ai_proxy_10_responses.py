"""The Responses API front door (route_type llm/v1/responses) through the real
gateway, with the official openai SDK: responses.create and responses.stream
over OpenAI's own Responses API (as it is), a Chat Completions server and
Anthropic's API (translated), all played by fastgw mock-llm."""

import json

import openai
import orjson
import pytest
from ai_proxy_kit import ANTHROPIC_VERSION, PROVIDER_KEY

from fastgw.testing import GatewayProcess, log_entries

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


def responses_route(name: str, provider: str, upstream_url: str) -> dict:
    options = {"upstream_url": upstream_url, "input_cost": 1.0, "output_cost": 2.0}
    auth = {"header_name": "Authorization", "header_value": f"Bearer {PROVIDER_KEY}"}
    if provider == "anthropic":
        options["anthropic_version"] = ANTHROPIC_VERSION
        auth = {"header_name": "x-api-key", "header_value": PROVIDER_KEY}
    config = {"route_type": "llm/v1/responses", "auth": auth,
              "model": {"provider": provider, "name": "model-x", "options": options},
              "logging": {"log_statistics": True}}
    return {"name": name, "paths": [f"/{name}"],
            "plugins": [{"name": "ai-proxy", "config": config}]}


@pytest.fixture(scope="module")
def gateway(mock_llm, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("responses") / "access.log"
    base = mock_llm.base_url
    doc = {"_format_version": "3.0", "services": [{"name": "llm", "url": base, "routes": [
        responses_route("openai", "openai", base),
        responses_route("chat-server", "openai", base + "/v1/chat/completions"),
        responses_route("anthropic", "anthropic", base + "/v1/messages"),
        # A Chat Completions URL: translated, whatever the provider is called.
        responses_route("ollama-chat", "ollama", base + "/v1/chat/completions"),
    ]}]}
    doc["plugins"] = [{"name": "file-log", "config": {"path": str(log_path)}}]
    with GatewayProcess(doc) as gw:
        gw.log_path = log_path
        yield gw


@pytest.fixture(params=["openai", "chat-server", "anthropic", "ollama-chat"])
def client(request, gateway):
    sdk = openai.OpenAI(base_url=f"http://127.0.0.1:{gateway.port}/{request.param}",
                        api_key="client-key", max_retries=0)
    yield sdk
    sdk.close()


def test_create_answers_a_response_object(client):
    response = client.responses.create(model="model-x", input="Say hello",
                                       instructions="Be brief.", max_output_tokens=64)
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status in ("completed", "incomplete")
    assert response.output_text
    assert response.output[0].type == "message"
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == (response.usage.input_tokens
                                           + response.usage.output_tokens)
    assert response.instructions == "Be brief."


def test_stream_delivers_typed_events_and_the_final_response(client):
    with client.responses.stream(model="model-x", input="Tell me a story",
                                 max_output_tokens=32) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response() if "response.completed" in kinds else None
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert "response.output_text.delta" in kinds
    assert kinds[-1] in ("response.completed", "response.incomplete")
    numbers = list(range(len(kinds)))
    assert numbers  # one sequence number per event, checked below on the raw stream
    if final is not None:
        assert final.output_text and final.usage.output_tokens > 0


def test_tool_calls_and_their_results_survive(client):
    first = client.responses.create(model="model-x", input="Weather in Paris?",
                                    tools=[WEATHER], tool_choice="required")
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id
    assert "city" in json.loads(call.arguments)
    second = client.responses.create(model="model-x", tools=[WEATHER], input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name,
         "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'},
    ], tool_choice="none")
    assert second.output_text


def test_streamed_tool_call_arguments_arrive_as_deltas(client):
    with client.responses.stream(model="model-x", input="Weather in Paris?", tools=[WEATHER],
                                 tool_choice="required") as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    [call] = [item for item in final.output if item.type == "function_call"]
    assert deltas == call.arguments and json.loads(deltas)


@pytest.mark.parametrize(("field", "value"), [
    ("previous_response_id", "resp_123"),
    ("store", True),
    ("tools", [{"type": "web_search"}]),
    ("include", ["reasoning.encrypted_content"]),
    ("conversation", "conv_1"),
])
def test_stateful_or_provider_side_features_are_refused_naming_the_field(gateway, field, value):
    body = {"model": "model-x", "input": "hi", field: value}
    status, _, raw = gateway.request("POST", "/chat-server", orjson.dumps(body),
                                     {"Content-Type": "application/json"})
    assert status == 400
    error = orjson.loads(raw)["error"]
    assert error["message"].startswith(field) and error["type"] == "invalid_request_error"


def test_the_raw_stream_numbers_its_events(gateway):
    body = orjson.dumps({"model": "model-x", "input": "hi", "stream": True})
    status, headers, raw = gateway.request("POST", "/chat-server", body,
                                           {"Content-Type": "application/json"})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = [block for block in raw.split(b"\n\n") if block.strip()]
    numbers = []
    for block in events:
        name, data = block.split(b"\n", 1)
        payload = orjson.loads(data.removeprefix(b"data: "))
        assert name == b"event: " + payload["type"].encode()
        numbers.append(payload["sequence_number"])
    assert numbers == list(range(len(numbers)))


def upstream_paths(mock_llm) -> list[str]:
    return [r["path"] for r in mock_llm.requests() if not r["path"].startswith("/_mock")]


@pytest.mark.parametrize(("route", "path"), [
    ("openai", "/v1/responses"),
    ("chat-server", "/v1/chat/completions"),
    ("ollama-chat", "/v1/chat/completions"),
    ("anthropic", "/v1/messages"),
])
def test_each_upstream_gets_its_own_api(gateway, mock_llm, route, path):
    mock_llm.clear_requests()
    body = {"model": "model-x", "input": "hi", "max_output_tokens": 16}
    status, _, raw = gateway.request("POST", f"/{route}", orjson.dumps(body),
                                     {"Content-Type": "application/json"})
    assert status == 200, raw
    [sent] = [r for r in mock_llm.requests() if r["path"] == path]
    sent_body = orjson.loads(sent["body"])
    if route == "openai":
        # OpenAI's own API: the request as the client sent it, but for the model.
        assert sent_body == {**body, "model": "model-x"}
    else:
        assert "input" not in sent_body and sent_body["messages"]


@pytest.mark.parametrize("stream", [False, True])
def test_openai_usage_is_read_from_its_own_answer(gateway, stream):
    gw, log_path = gateway, gateway.log_path
    body = {"model": "model-x", "input": "count me", "max_output_tokens": 16, "stream": stream}
    status, _, raw = gw.request("POST", "/openai", orjson.dumps(body),
                                {"Content-Type": "application/json"})
    assert status == 200
    if stream:
        last = [b for b in raw.split(b"\n\n") if b.startswith(b"event: response.completed")]
        answer = orjson.loads(last[0].split(b"data: ", 1)[1])["response"]
    else:
        answer = orjson.loads(raw)
    *_, entry = log_entries(log_path, lambda e: e["request"]["uri"] == "/openai"
                            and e["ai"]["proxy"]["meta"]["request_mode"] ==
                            ("stream" if stream else "oneshot"))
    usage = entry["ai"]["proxy"]["usage"]
    assert usage["prompt_tokens"] == answer["usage"]["input_tokens"]
    assert usage["completion_tokens"] == answer["usage"]["output_tokens"]
    assert usage["estimated"] is False
