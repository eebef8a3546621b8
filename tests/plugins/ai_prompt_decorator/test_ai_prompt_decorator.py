"""ai-prompt-decorator through the real gateway: what the provider receives
on each front door (OpenAI chat, Anthropic Messages, the Responses API)."""

import orjson
import pytest

from fastgw.config.loader import ConfigError, parse_config
from fastgw.testing import GatewayProcess
from fastgw.testing.mock_llm import running_mock

PROMPTS = {"prepend": [{"role": "system", "content": "Be brief."},
                       {"role": "user", "content": "Context: the user is in Paris."}],
           "append": [{"role": "system", "content": "Never reveal secrets."}]}


def route(name: str, base: str, llm_format: str = "openai",
          route_type: str = "llm/v1/chat") -> dict:
    anthropic = llm_format == "anthropic"
    proxy = {"route_type": route_type, "llm_format": llm_format,
             "auth": {"header_name": "x-api-key" if anthropic else "Authorization",
                      "header_value": "k"},
             "model": {"provider": "anthropic" if anthropic else "openai", "name": "m",
                       "options": {"upstream_url": base + ("/v1/messages" if anthropic
                                                           else "/v1/chat/completions"),
                                   **({"anthropic_version": "2023-06-01"} if anthropic
                                      else {})}}}
    return {"name": name, "paths": [f"/{name}"], "plugins": [
        {"name": "ai-proxy", "config": proxy},
        {"name": "ai-prompt-decorator", "config": {"prompts": PROMPTS}}]}


@pytest.fixture(scope="module")
def gateway():
    with running_mock() as mock:
        base = mock.base_url
        doc = {"_format_version": "3.0", "services": [{"name": "llm", "url": base, "routes": [
            route("chat", base), route("anthropic", base, "anthropic"),
            route("responses", base, route_type="llm/v1/responses")]}]}
        with GatewayProcess(doc) as gw:
            gw.mock = mock
            yield gw


def sent(gw, path: str, body: dict) -> dict:
    gw.mock.clear_requests()
    status, _, answer = gw.request("POST", path, orjson.dumps(body), {
        "Content-Type": "application/json", "anthropic-version": "2023-06-01"})
    assert status == 200, answer
    [request] = [r for r in gw.mock.requests() if not r["path"].startswith("/_mock")]
    return orjson.loads(request["body"])


def test_chat_messages_are_put_around_the_conversation(gateway):
    body = sent(gateway, "/chat", {"model": "m", "messages": [
        {"role": "user", "content": "hello"}]})
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("system", "Be brief."), ("user", "Context: the user is in Paris."),
        ("user", "hello"), ("system", "Never reveal secrets.")]


def test_anthropic_system_prompts_go_to_its_top_level_system(gateway):
    body = sent(gateway, "/anthropic", {"model": "m", "max_tokens": 8, "system": "Be kind.",
                                        "messages": [{"role": "user", "content": "hello"}]})
    assert body["system"] == "Be brief.\n\nBe kind.\n\nNever reveal secrets."
    assert [m["role"] for m in body["messages"]] == ["user", "user"]
    blocks = [{"type": "text", "text": "cached", "cache_control": {"type": "ephemeral"}}]
    body = sent(gateway, "/anthropic", {"model": "m", "max_tokens": 8, "system": blocks,
                                        "messages": [{"role": "user", "content": "hello"}]})
    assert body["system"] == [{"type": "text", "text": "Be brief."}, *blocks,
                              {"type": "text", "text": "Never reveal secrets."}]


def test_responses_input_items_are_decorated(gateway):
    body = sent(gateway, "/responses", {"model": "m", "input": "hello"})
    texts = [m["content"] for m in body["messages"]]
    assert texts[0] == "Be brief." and texts[-1] == "Never reveal secrets."
    assert "hello" in texts


def test_a_request_that_is_not_a_chat_is_refused(gateway):
    status, _, body = gateway.request("POST", "/chat", orjson.dumps({"model": "m",
                                                                      "prompt": "hi"}),
                                      {"Content-Type": "application/json"})
    assert status == 400
    assert orjson.loads(body)["error"]["message"] == "this LLM route only supports llm/chat " \
        "type requests"


def test_a_config_without_prompts_is_an_error():
    with pytest.raises(ConfigError) as failure:
        parse_config({"_format_version": "3.0", "plugins": [
            {"name": "ai-prompt-decorator", "config": {"prompts": {}}}]})
    assert "at least one of these fields must be non-empty" in str(failure.value)
