"""ai-sanitizer where the client speaks the provider's own API, in front of
fastgw mock-llm: the Responses API spoken to an OpenAI-format provider
(its own answer and events, edited in place: the values back in deltas,
done events and the completed response, with sequence numbers that still
count up), and Anthropic's Messages API spoken to Anthropic (written again
from the translation, values back)."""

import orjson
import pytest

from fastgw.testing import GatewayProcess
from fastgw.testing.mock_llm import running_mock

EMAIL = "jane.doe@example.com"
INPUT = f"Mail {EMAIL} now"


@pytest.fixture(scope="module")
def gateway():
    with running_mock() as mock:
        proxy = {"route_type": "llm/v1/responses",
                 "auth": {"header_name": "Authorization", "header_value": "Bearer k"},
                 "model": {"provider": "openai", "name": "m",
                           "options": {"upstream_url": mock.base_url + "/v1/responses"}}}
        anthropic = {"route_type": "llm/v1/chat", "llm_format": "anthropic",
                     "auth": {"header_name": "x-api-key", "header_value": "k"},
                     "model": {"provider": "anthropic", "name": "m", "options": {
                         "upstream_url": mock.base_url + "/v1/messages",
                         "anthropic_version": "2023-06-01"}}}
        doc = {"_format_version": "3.0", "services": [{"name": "llm", "url": mock.base_url,
               "routes": [{"name": "r", "paths": ["/r"], "plugins": [
                   {"name": "ai-proxy", "config": proxy},
                   {"name": "ai-sanitizer", "config": {}}]},
                   {"name": "a", "paths": ["/a"], "plugins": [
                       {"name": "ai-proxy", "config": anthropic},
                       {"name": "ai-sanitizer", "config": {}}]}]}]}
        with GatewayProcess(doc) as gw:
            gw.mock = mock
            yield gw


def ask(gw, **extra):
    return gw.request("POST", "/r", orjson.dumps({"model": "m", "input": INPUT, **extra}),
                      {"Content-Type": "application/json"})


def test_a_whole_response_gets_the_values_back(gateway):
    status, _, body = ask(gateway)
    assert status == 200, body
    assert orjson.loads(gateway.mock.requests()[-1]["body"])["input"] == "Mail <EMAIL_1> now"
    [item] = orjson.loads(body)["output"]
    assert item["content"][0]["text"].startswith(f"Mock answer to: {INPUT}")


def test_a_streamed_response_gets_the_values_back_in_every_event(gateway):
    status, _, body = ask(gateway, stream=True)
    assert status == 200
    events = [orjson.loads(line[6:]) for line in body.split(b"\n") if line.startswith(b"data: ")]
    numbers = [event["sequence_number"] for event in events]
    assert numbers == list(range(len(events)))
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    [done] = [e["text"] for e in events if e["type"] == "response.output_text.done"]
    [completed] = [e["response"] for e in events if e["type"] == "response.completed"]
    assert deltas == done == completed["output"][0]["content"][0]["text"]
    assert f"Mock answer to: {INPUT}" in done and "<EMAIL_1>" not in body.decode()


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_to_anthropic_gets_the_values_back(gateway, stream):
    body = {"model": "m", "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": INPUT}]}
    status, _, answer = gateway.request("POST", "/a", orjson.dumps(body),
                                        {"Content-Type": "application/json",
                                         "anthropic-version": "2023-06-01"})
    assert status == 200, answer
    sent = orjson.loads(gateway.mock.requests()[-1]["body"])
    assert sent["messages"][0]["content"] == "Mail <EMAIL_1> now"
    if stream:
        events = [orjson.loads(line[6:]) for line in answer.split(b"\n")
                  if line.startswith(b"data: ")]
        text = "".join(e["delta"].get("text", "") for e in events
                       if e["type"] == "content_block_delta")
        assert events[-1]["type"] == "message_stop"
    else:
        text = orjson.loads(answer)["content"][0]["text"]
    assert text.startswith(f"Mock answer to: {INPUT}")
