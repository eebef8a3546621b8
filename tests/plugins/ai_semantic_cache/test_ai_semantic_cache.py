"""ai-semantic-cache's exact layer through the real gateway, in front of
fastgw mock-llm: a repeated request is answered without the model, in the
client's own mode whichever way the answer was first produced; every
parameter that changes the answer changes the key; an entry serves only its
consumer; errors and cut streams are never stored; Cache-Control with
cache_control; and the config errors for what is not built yet."""

import http.client
import time

import orjson
import pytest

from fastgw.config.loader import ConfigError, parse_config
from fastgw.testing import GatewayProcess, metric_sum
from fastgw.testing.mock_llm import running_mock

CACHE = {"exact_caching": True, "similarity": False,
         "embeddings": {"model": {"provider": "openai", "name": "text-embedding-3-small"}},
         "vectordb": {"strategy": "memory", "dimensions": 8, "distance_metric": "cosine"}}
KEYS = {"alice": "alice-key", "bob": "bob-key"}


def route(name: str, base: str, cache: dict | None = None, llm_format: str = "openai",
          auth: bool = False, route_type: str = "llm/v1/chat") -> dict:
    proxy = {"route_type": route_type, "llm_format": llm_format,
             "auth": {"header_name": "Authorization", "header_value": "Bearer k"},
             "model": {"provider": "openai", "name": "m",
                       "options": {"upstream_url": base + "/v1/chat/completions",
                                   "input_cost": 2.0, "output_cost": 10.0}}}
    plugins = [{"name": "ai-proxy", "config": proxy},
               {"name": "ai-semantic-cache", "config": {**CACHE, **(cache or {})}}]
    if auth:
        plugins.append({"name": "key-auth", "config": {}})
    return {"name": name, "paths": [f"/{name}"], "plugins": plugins}


@pytest.fixture(scope="module")
def gateway():
    with running_mock() as mock:
        base = mock.base_url
        doc = {"_format_version": "3.0",
               "consumers": [{"username": name, "keyauth_credentials": [{"key": key}]}
                             for name, key in KEYS.items()],
               "services": [{"name": "llm", "url": base, "routes": [
                   route("c", base), route("cc", base, {"cache_control": True}),
                   route("tenants", base, auth=True),
                   route("shared", base, {"share_across_consumers": True}, auth=True),
                   route("anthropic", base, llm_format="anthropic"),
                   route("tools", base, {"cache_tool_calls": True}),
                   route("responses", base, route_type="llm/v1/responses"),
               ]}],
               "plugins": [{"name": "prometheus", "config": {"ai_metrics": True}}]}
        with GatewayProcess(doc) as gw:
            gw.mock = mock
            yield gw


def ask(gw, path: str, text: str, headers: dict | None = None, **extra):
    body = {"model": "m", "messages": [{"role": "user", "content": text}], **extra}
    return gw.request("POST", path, orjson.dumps(body),
                      {"Content-Type": "application/json", **(headers or {})})


def calls(gw) -> int:
    return len(gw.mock.requests())


def stream_text(body: bytes) -> str:
    parts = []
    for line in body.split(b"\n"):
        if line.startswith(b"data: {"):
            for choice in orjson.loads(line[6:])["choices"]:
                parts.append((choice.get("delta") or {}).get("content") or "")
    return "".join(parts)


def test_a_repeated_request_is_served_without_the_model(gateway):
    status, headers, first = ask(gateway, "/c", "hello cache")
    assert status == 200 and headers["x-cache-status"] == "Miss"
    before = calls(gateway)
    status, headers, again = ask(gateway, "/c", "hello cache")
    assert status == 200 and headers["x-cache-status"] == "Hit"
    assert calls(gateway) == before
    assert orjson.loads(again)["choices"] == orjson.loads(first)["choices"]


def test_metrics_count_hits_and_what_they_saved(gateway):
    ask(gateway, "/c", "metered")
    ask(gateway, "/c", "metered")
    time.sleep(0.3)  # the log phase counts after the answer went out
    _, _, body = gateway.admin("GET", "/metrics")
    text = body.decode()
    assert metric_sum(text, "fastgw_ai_llm_requests_total", cache_status="hit") >= 1
    assert metric_sum(text, "fastgw_ai_llm_requests_total", cache_status="miss") >= 1
    assert metric_sum(text, "fastgw_ai_cache_saved_tokens_total", cache_status="hit") > 0
    assert metric_sum(text, "fastgw_ai_cache_saved_cost_total", cache_status="hit") > 0


def test_the_client_gets_its_own_mode_whichever_way_the_answer_was_made(gateway):
    status, _, whole = ask(gateway, "/c", "json first")
    text = orjson.loads(whole)["choices"][0]["message"]["content"]
    status, headers, streamed = ask(gateway, "/c", "json first", stream=True)
    assert headers["x-cache-status"] == "Hit" and headers["content-type"] == "text/event-stream"
    assert stream_text(streamed) == text and streamed.rstrip().endswith(b"data: [DONE]")
    status, headers, streamed = ask(gateway, "/c", "stream first", stream=True)
    assert headers["x-cache-status"] == "Miss"
    status, headers, whole = ask(gateway, "/c", "stream first")
    assert headers["x-cache-status"] == "Hit"
    assert orjson.loads(whole)["choices"][0]["message"]["content"] == stream_text(streamed)


@pytest.mark.parametrize("change", [
    {"temperature": 0.3}, {"top_p": 0.5}, {"seed": 7}, {"max_tokens": 12}, {"stop": ["x"]},
    {"response_format": {"type": "json_object"}}, {"reasoning_effort": "low"},
    {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
    {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
     "tool_choice": "none"},
    {"messages": [{"role": "system", "content": "be brief"},
                  {"role": "user", "content": "parameters"}]},
], ids=lambda change: "+".join(change))
def test_every_parameter_that_changes_the_answer_changes_the_key(gateway, change):
    ask(gateway, "/c", "parameters")
    assert ask(gateway, "/c", "parameters")[1]["x-cache-status"] == "Hit"
    status, headers, _ = ask(gateway, "/c", "parameters", **change)
    assert status == 200 and headers["x-cache-status"] == "Miss"


def test_an_entry_serves_only_its_consumer_unless_shared(gateway):
    alice, bob = {"apikey": KEYS["alice"]}, {"apikey": KEYS["bob"]}
    assert ask(gateway, "/tenants", "tenancy", alice)[1]["x-cache-status"] == "Miss"
    assert ask(gateway, "/tenants", "tenancy", alice)[1]["x-cache-status"] == "Hit"
    assert ask(gateway, "/tenants", "tenancy", bob)[1]["x-cache-status"] == "Miss"
    assert ask(gateway, "/shared", "tenancy", alice)[1]["x-cache-status"] == "Miss"
    assert ask(gateway, "/shared", "tenancy", bob)[1]["x-cache-status"] == "Hit"


def test_errors_and_cut_streams_are_never_stored(gateway):
    status, headers, _ = ask(gateway, "/c", "failing", {"x-mock-status": "500"})
    assert status >= 500
    assert ask(gateway, "/c", "failing")[1]["x-cache-status"] == "Miss"
    # The model breaks its stream off: the client's answer ends without a
    # clean end (the gateway closes it), and nothing is stored.
    with pytest.raises(http.client.IncompleteRead):
        ask(gateway, "/c", "cut short", {"x-mock-cut-after": "3"}, stream=True)
    assert ask(gateway, "/c", "cut short", stream=True)[1]["x-cache-status"] == "Miss"


def test_answers_that_call_tools_are_stored_only_when_configured(gateway):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}}}}]
    status, _, body = ask(gateway, "/c", "use a tool", tools=tools)
    assert orjson.loads(body)["choices"][0]["finish_reason"] == "tool_calls"
    assert ask(gateway, "/c", "use a tool", tools=tools)[1]["x-cache-status"] == "Miss"
    ask(gateway, "/tools", "use a tool", tools=tools)
    status, headers, body = ask(gateway, "/tools", "use a tool", tools=tools)
    assert headers["x-cache-status"] == "Hit"
    assert orjson.loads(body)["choices"][0]["message"]["tool_calls"][0]["function"][
        "name"] == "lookup"


def test_cache_control_bypasses_or_refreshes(gateway):
    ask(gateway, "/cc", "controlled")
    before = calls(gateway)
    status, headers, _ = ask(gateway, "/cc", "controlled", {"Cache-Control": "no-store"})
    assert headers["x-cache-status"] == "Bypass" and calls(gateway) == before + 1
    status, headers, _ = ask(gateway, "/cc", "controlled", {"Cache-Control": "no-cache"})
    assert headers["x-cache-status"] == "Refresh" and calls(gateway) == before + 2
    assert ask(gateway, "/cc", "controlled")[1]["x-cache-status"] == "Hit"
    # Without cache_control, the header changes nothing.
    ask(gateway, "/c", "uncontrolled")
    assert ask(gateway, "/c", "uncontrolled", {"Cache-Control": "no-store"})[1][
        "x-cache-status"] == "Hit"


def test_the_anthropic_front_door_replays_as_anthropic_events(gateway):
    body = {"model": "m", "max_tokens": 32, "messages": [{"role": "user", "content": "bonjour"}]}
    headers = {"Content-Type": "application/json", "anthropic-version": "2023-06-01"}
    status, first_headers, first = gateway.request("POST", "/anthropic", orjson.dumps(body),
                                                   headers)
    assert status == 200 and first_headers["x-cache-status"] == "Miss"
    status, hit_headers, streamed = gateway.request(
        "POST", "/anthropic", orjson.dumps({**body, "stream": True}), headers)
    assert hit_headers["x-cache-status"] == "Hit"
    events = [orjson.loads(line[6:]) for line in streamed.split(b"\n")
              if line.startswith(b"data: ")]
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text == orjson.loads(first)["content"][0]["text"]
    assert events[-1]["type"] == "message_stop"


@pytest.mark.parametrize(("change", "path", "words"), [
    ({"exact_caching": False}, "similarity", "cannot be off too"),
    ({"similarity": True, "vectordb": {**CACHE["vectordb"], "strategy": "redis"}}, "similarity",
     "not built on Redis yet"),
    ({"vectordb": {**CACHE["vectordb"], "strategy": "pgvector"}}, "vectordb.strategy",
     "'pgvector' is not supported by fastgw"),
    ({"vectordb": {"strategy": "memory"}}, "vectordb.dimensions", "required"),
])
def test_configs_that_need_what_is_not_built_are_refused(change, path, words):
    doc = {"_format_version": "3.0",
           "plugins": [{"name": "ai-semantic-cache", "config": {**CACHE, **change}}]}
    with pytest.raises(ConfigError) as failure:
        parse_config(doc)
    assert any(f"plugins[0].config.{path}" in e and words in e
               for e in failure.value.errors), failure.value.errors


def test_the_responses_api_replays_as_a_response_or_its_events(gateway):
    body = {"model": "m", "input": "responses api"}
    headers = {"Content-Type": "application/json"}
    status, first_headers, first = gateway.request("POST", "/responses", orjson.dumps(body),
                                                   headers)
    assert status == 200 and first_headers["x-cache-status"] == "Miss"
    text = orjson.loads(first)["output"][0]["content"][0]["text"]
    status, hit_headers, hit = gateway.request("POST", "/responses", orjson.dumps(body), headers)
    assert hit_headers["x-cache-status"] == "Hit"
    assert orjson.loads(hit)["output"][0]["content"][0]["text"] == text
    status, hit_headers, streamed = gateway.request(
        "POST", "/responses", orjson.dumps({**body, "stream": True}), headers)
    assert hit_headers["x-cache-status"] == "Hit"
    events = [orjson.loads(line[6:]) for line in streamed.split(b"\n")
              if line.startswith(b"data: ")]
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == text and events[-1]["type"] == "response.completed"
