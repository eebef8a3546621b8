"""Streams are translated event by event: through the gateway, each token of
a paced ``mock-llm --tokens-per-s`` answer arrives about when it does when
the client asks the mock directly, translation included."""

import time

import anthropic
import openai
import pytest
from ai_proxy_kit import ANTHROPIC_VERSION

from fastgw.testing import GatewayProcess
from fastgw.testing.mock_llm import running_mock

TOKENS_PER_S = 20  # one token every 50 ms
OUTPUT_TOKENS = 8
STEER = {"x-mock-output-tokens": str(OUTPUT_TOKENS)}
QUESTION = [{"role": "user", "content": "Tell me a story."}]


@pytest.fixture(scope="module")
def paced_setup():
    with running_mock(tokens_per_s=TOKENS_PER_S) as mock:
        config = {
            "route_type": "llm/v1/chat",
            "model": {"provider": "anthropic", "name": "claude-test",
                      "options": {"anthropic_version": ANTHROPIC_VERSION,
                                  "upstream_url": mock.base_url}},
            "auth": {"header_name": "x-api-key", "header_value": "k"},
        }
        doc = {"_format_version": "3.0", "services": [{
            "name": "llm", "url": mock.base_url,
            "routes": [{"name": "chat", "paths": ["/chat"],
                        "plugins": [{"name": "ai-proxy", "config": config}]}]}]}
        with GatewayProcess(doc) as gw:
            yield mock, gw


def token_times_direct(client: anthropic.Anthropic) -> list[float]:
    """Seconds from the request to each text delta, asking the mock (Anthropic API) directly."""
    start = time.perf_counter()
    with client.messages.stream(model="claude-test", max_tokens=64, messages=QUESTION,
                                extra_headers=STEER) as stream:
        return [time.perf_counter() - start for _ in stream.text_stream]


def token_times_via_gateway(client: openai.OpenAI) -> list[float]:
    """The same, through the gateway's OpenAI front door (translated on the way)."""
    start = time.perf_counter()
    stream = client.chat.completions.create(model="claude-test", messages=QUESTION, stream=True,
                                            extra_headers=STEER)
    return [time.perf_counter() - start for chunk in stream
            if chunk.choices and chunk.choices[0].delta.content]


def earliest(measure, client) -> list[float]:
    """The run with the quickest first token of three, the first one warming connections."""
    runs = [measure(client) for _ in range(3)]
    return min(runs[1:], key=lambda times: times[0])


def test_tokens_reach_the_client_as_the_upstream_sends_them(paced_setup):
    mock, gw = paced_setup
    direct = earliest(token_times_direct, anthropic.Anthropic(
        api_key="k", base_url=mock.base_url, max_retries=0))
    via = earliest(token_times_via_gateway, openai.OpenAI(
        api_key="k", base_url=f"http://127.0.0.1:{gw.port}/chat/v1", max_retries=0))

    assert len(via) == len(direct) >= OUTPUT_TOKENS
    # Buffering even one token would cost 50 ms; the gateway adds a few ms at most.
    assert via[0] - direct[0] < 0.02, (via, direct)
    # Every later token keeps the upstream's pace instead of arriving in a batch.
    for gateway_time, direct_time in zip(via, direct, strict=True):
        assert abs(gateway_time - direct_time) < 0.04, (via, direct)
    assert via[-1] - via[0] >= 0.8 * (OUTPUT_TOKENS - 1) / TOKENS_PER_S
