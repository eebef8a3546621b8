"""ai-proxy in the real gateway, in front of ``fastgw mock-llm``, driven by
the official SDKs with only their base_url changed: the OpenAI SDK talks to
an Anthropic upstream and the Anthropic SDK to an OpenAI one."""

import anthropic
import openai
import orjson
import pytest
from ai_proxy_kit import ANTHROPIC_VERSION, PROVIDER_KEY, wait_for_log_lines

from fastgw.testing import GatewayProcess

QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]},
}
GATEWAY_KEY = "gateway-key-of-alice"


def to_anthropic(mock, **extra) -> dict:
    """OpenAI clients, Anthropic upstream."""
    return {
        "route_type": "llm/v1/chat",
        "model": {"provider": "anthropic", "name": "claude-test",
                  "options": {"anthropic_version": ANTHROPIC_VERSION,
                              "upstream_url": mock.base_url,
                              "input_cost": 3.0, "output_cost": 15.0}},
        "auth": {"header_name": "x-api-key", "header_value": PROVIDER_KEY},
        "logging": {"log_statistics": True},
        **extra,
    }


def to_openai(mock, **extra) -> dict:
    """Anthropic clients (or OpenAI ones), OpenAI upstream."""
    return {
        "route_type": "llm/v1/chat",
        "model": {"provider": "openai", "name": "gpt-test",
                  "options": {"upstream_url": mock.base_url}},
        "auth": {"header_name": "Authorization", "header_value": f"Bearer {PROVIDER_KEY}"},
        **extra,
    }


def route(name: str, config: dict, *plugins: dict) -> dict:
    return {"name": name, "paths": [f"/{name}"],
            "plugins": [{"name": "ai-proxy", "config": config}, *plugins]}


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    return tmp_path_factory.mktemp("ai-proxy-log") / "access.log"


@pytest.fixture(scope="module")
def gateway(mock_llm, log_path):
    override = to_openai(mock_llm)
    override["model"]["allow_override"] = True
    key_auth = {"name": "key-auth", "config": {"key_names": ["x-gw-key"]}}
    doc = {
        "_format_version": "3.0",
        "services": [{"name": "llm", "url": mock_llm.base_url, "routes": [
            route("oa-anthropic", to_anthropic(mock_llm)),
            route("an-openai", to_openai(mock_llm, llm_format="anthropic")),
            route("override", override),
            route("guarded", to_openai(mock_llm), key_auth),
            route("small", to_openai(mock_llm, max_request_body_size=256)),
        ]}],
        "consumers": [{"username": "alice", "keyauth_credentials": [{"key": GATEWAY_KEY}]}],
        "plugins": [{"name": "file-log", "config": {"path": str(log_path)}}],
    }
    with GatewayProcess(doc) as gw:
        yield gw


def openai_client(gw, route_name: str, **kw) -> openai.OpenAI:
    return openai.OpenAI(api_key=kw.pop("api_key", "sk-client"), max_retries=0,
                         base_url=f"http://127.0.0.1:{gw.port}/{route_name}/v1", **kw)


def anthropic_client(gw, route_name: str, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="sk-ant-client", max_retries=0,
                               base_url=f"http://127.0.0.1:{gw.port}/{route_name}", **kw)


def last_upstream_request(mock) -> dict:
    seen = mock.requests()[-1]
    seen["headers"] = [(name.lower(), value) for name, value in seen["headers"]]
    return seen


def header_values(seen: dict, name: str) -> list[str]:
    return [value for key, value in seen["headers"] if key == name]


# -- SDK conformance ------------------------------------------------------------------------


def test_openai_sdk_over_an_anthropic_upstream(gateway, mock_llm):
    client = openai_client(gateway, "oa-anthropic")

    completion = client.chat.completions.create(model="claude-test", messages=QUESTION)

    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content.startswith("Mock answer to: What is the")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    seen = last_upstream_request(mock_llm)
    assert seen["path"] == "/v1/messages"
    assert header_values(seen, "anthropic-version") == [ANTHROPIC_VERSION]
    assert orjson.loads(seen["body"])["messages"] == QUESTION


def test_openai_sdk_streams_from_an_anthropic_upstream(gateway):
    client = openai_client(gateway, "oa-anthropic")
    whole = client.chat.completions.create(model="claude-test", messages=QUESTION)

    with client.chat.completions.stream(model="claude-test", messages=QUESTION,
                                        stream_options={"include_usage": True}) as stream:
        final = stream.get_final_completion()

    assert final.choices[0].message.content == whole.choices[0].message.content
    assert final.usage.total_tokens == whole.usage.total_tokens


def test_anthropic_sdk_over_an_openai_upstream(gateway, mock_llm):
    client = anthropic_client(gateway, "an-openai")

    message = client.messages.create(model="gpt-test", max_tokens=64, messages=QUESTION,
                                     system="Be brief.")

    assert message.type == "message" and message.stop_reason == "end_turn"
    assert message.content[0].text.startswith("Mock answer to: What is the")
    assert message.usage.output_tokens > 0
    seen = last_upstream_request(mock_llm)
    assert seen["path"] == "/v1/chat/completions"
    assert orjson.loads(seen["body"])["messages"][0] == {"role": "system", "content": "Be brief."}


def test_anthropic_sdk_streams_from_an_openai_upstream(gateway):
    client = anthropic_client(gateway, "an-openai")
    whole = client.messages.create(model="gpt-test", max_tokens=64, messages=QUESTION)

    with client.messages.stream(model="gpt-test", max_tokens=64, messages=QUESTION) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(texts) > 3  # token by token, not one block
    assert "".join(texts) == whole.content[0].text
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_a_tool_call_survives_both_translations(gateway):
    completion = openai_client(gateway, "oa-anthropic").chat.completions.create(
        model="claude-test", messages=QUESTION,
        tools=[{"type": "function", "function": WEATHER_TOOL}])
    [call] = completion.choices[0].message.tool_calls
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert set(orjson.loads(call.function.arguments)) == {"city"}

    tool = {"name": WEATHER_TOOL["name"], "description": WEATHER_TOOL["description"],
            "input_schema": WEATHER_TOOL["parameters"]}
    with anthropic_client(gateway, "an-openai").messages.stream(
            model="gpt-test", max_tokens=64, messages=QUESTION, tools=[tool]) as stream:
        message = stream.get_final_message()
    assert message.stop_reason == "tool_use"
    [use] = [block for block in message.content if block.type == "tool_use"]
    assert use.name == "get_weather" and set(use.input) == {"city"}


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "openai_error", "anthropic_error"),
    [
        (429, "rate_limit_error", openai.RateLimitError, anthropic.RateLimitError),
        (401, "authentication_error", openai.AuthenticationError, anthropic.AuthenticationError),
        (500, "api_error", openai.InternalServerError, anthropic.InternalServerError),
    ],
)
def test_upstream_errors_raise_the_sdks_matching_exception(gateway, status, error_type,
                                                           openai_error, anthropic_error):
    steer = {"x-mock-status": str(status)}
    with pytest.raises(openai_error) as failure:
        openai_client(gateway, "oa-anthropic").chat.completions.create(
            model="claude-test", messages=QUESTION, extra_headers=steer)
    assert failure.value.status_code == status
    # The Anthropic upstream's error type survives into OpenAI's shape.
    assert failure.value.body["type"] == error_type

    with pytest.raises(anthropic_error) as failure:
        anthropic_client(gateway, "an-openai").messages.create(
            model="gpt-test", max_tokens=16, messages=QUESTION, extra_headers=steer)
    assert failure.value.status_code == status
    assert failure.value.body["type"] == "error"


def test_a_cut_stream_ends_with_an_error_in_the_clients_format(gateway):
    cut = {"x-mock-cut-after": "4"}
    stream = openai_client(gateway, "oa-anthropic").chat.completions.create(
        model="claude-test", messages=QUESTION, stream=True, extra_headers=cut)
    received = []
    with pytest.raises(openai.APIError, match="closed the stream"):
        for chunk in stream:
            received.append(chunk)
    assert received  # the answer had started

    with pytest.raises(anthropic.APIError, match="closed the stream"), \
            anthropic_client(gateway, "an-openai").messages.stream(
                model="gpt-test", max_tokens=64, messages=QUESTION,
                extra_headers=cut) as stream:
        for _ in stream.text_stream:
            pass


def test_a_cut_stream_never_ends_cleanly_on_the_wire(gateway):
    body = orjson.dumps({"model": "gpt-test", "max_tokens": 32, "stream": True,
                         "messages": QUESTION})
    status, headers, data = raw_stream(gateway, "/an-openai/v1/messages", body,
                                       {"x-mock-cut-after": "3"})
    assert status == 200 and headers["content-type"] == "text/event-stream"
    assert b"event: message_start" in data
    assert data.rstrip().endswith(b"}") and b"event: error" in data
    assert b"message_stop" not in data


def raw_stream(gw, path: str, body: bytes, headers: dict):
    """POST and read whatever arrives until the gateway closes (a cut stream has no end)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.request("POST", path, body=body,
                     headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        data = b""
        try:
            while chunk := response.read1(65536):
                data += chunk
        except http.client.IncompleteRead as incomplete:
            data += incomplete.partial
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def test_malformed_json_and_oversized_bodies_are_refused(gateway, mock_llm):
    mock_llm.clear_requests()
    status, _, data = gateway.request("POST", "/oa-anthropic/v1/chat/completions",
                                      body=b'{"messages": [', headers={
                                          "Content-Type": "application/json"})
    assert status == 400
    assert orjson.loads(data)["error"]["message"] == (
        "content-type header does not match request body, or bad JSON formatting")

    with pytest.raises(openai.APIStatusError) as failure:
        openai_client(gateway, "small").chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "x" * 300}])
    assert failure.value.status_code == 413
    assert "max_request_body_size (256 bytes)" in failure.value.message
    assert mock_llm.requests() == []  # neither reached the provider


# -- model and credential rules --------------------------------------------------------------


def test_model_override_rules(gateway, mock_llm):
    with pytest.raises(openai.BadRequestError, match="cannot use own model - must be: gpt-test"):
        openai_client(gateway, "an-openai").chat.completions.create(
            model="gpt-other", messages=QUESTION)

    answer = openai_client(gateway, "override").chat.completions.create(
        model="gpt-other", messages=QUESTION)
    assert answer.model == "gpt-other"
    assert orjson.loads(last_upstream_request(mock_llm)["body"])["model"] == "gpt-other"


def test_gateway_credentials_are_stripped_and_the_providers_set(gateway, mock_llm):
    client = openai_client(gateway, "guarded", api_key="client-side-token",
                           default_headers={"x-gw-key": GATEWAY_KEY, "apikey": "other"})
    with pytest.raises(openai.AuthenticationError):
        openai_client(gateway, "guarded").chat.completions.create(
            model="gpt-test", messages=QUESTION)  # key-auth still guards the route

    client.chat.completions.create(model="gpt-test", messages=QUESTION)

    seen = last_upstream_request(mock_llm)
    assert header_values(seen, "authorization") == [f"Bearer {PROVIDER_KEY}"]
    sent_values = " ".join(value for _, value in seen["headers"])
    assert GATEWAY_KEY not in sent_values and "client-side-token" not in sent_values
    assert header_values(seen, "x-gw-key") == header_values(seen, "apikey") == []
    assert header_values(seen, "x-consumer-username") == ["alice"]


# -- log -------------------------------------------------------------------------------------


def test_usage_and_cost_are_in_the_log_line_and_the_key_is_not(gateway, log_path):
    before = len(wait_for_log_lines(log_path, 0, timeout=0))
    completion = openai_client(gateway, "oa-anthropic").chat.completions.create(
        model="claude-test", messages=QUESTION)

    entries = wait_for_log_lines(log_path, before + 1)
    entry = entries[-1]
    usage = entry["ai"]["proxy"]["usage"]
    assert usage["prompt_tokens"] == completion.usage.prompt_tokens
    assert usage["completion_tokens"] == completion.usage.completion_tokens
    expected = (usage["prompt_tokens"] * 3.0 + usage["completion_tokens"] * 15.0) / 1e6
    assert usage["cost"] == pytest.approx(expected)
    meta = entry["ai"]["proxy"]["meta"]
    assert meta["provider_name"] == "anthropic" and meta["request_model"] == "claude-test"
    assert meta["llm_latency"] > 0
    assert entry["response"]["status"] == 200
    assert PROVIDER_KEY.encode() not in log_path.read_bytes()


def test_a_field_the_provider_cannot_honour_is_a_400_naming_it_in_each_sdk(gateway, mock_llm):
    before = len(mock_llm.requests())
    with pytest.raises(openai.BadRequestError, match="n: provider 'anthropic'"):
        openai_client(gateway, "oa-anthropic").chat.completions.create(
            model="claude-test", messages=QUESTION, n=2)
    with pytest.raises(anthropic.BadRequestError, match="container: cannot be translated"):
        anthropic_client(gateway, "an-openai").messages.create(
            model="gpt-test", max_tokens=50, messages=QUESTION, extra_body={"container": "c-1"})
    assert len(mock_llm.requests()) == before  # refused before any provider call
