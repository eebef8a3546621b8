"""ai-rate-limiting-advanced through the real gateway (two workers sharing the
node's counters) in front of fastgw mock-llm: limits reserved before the
call, so concurrent calls never pass them together, and settled with the
real usage after it."""

import concurrent.futures
import time

import orjson
import pytest
from ai_limits_kit import CHAT, MAX_TOKENS, MONEY_RESERVATION, RESERVATION, proxy_config

from fastgw.testing import GatewayProcess, log_entries, metric_sum
from fastgw.testing.mock_llm import running_mock


def ai_route(name: str, base: str, limits: list[dict], llm_format: str = "openai",
             **extra) -> dict:
    proxy = proxy_config(base, llm_format=llm_format)
    limiter = {"llm_providers": limits, "identifier": "ip", **extra}
    return {"name": name, "paths": [f"/{name}"], "plugins": [
        {"name": "ai-proxy", "config": proxy},
        {"name": "ai-rate-limiting-advanced", "config": limiter}]}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("ai-rl") / "access.log"
    with running_mock(latency_ms=300) as mock:
        base = mock.base_url
        routes = [
            ai_route("parallel", base, [{"name": "openai", "window_size": 60,
                                         "limit": 10 * RESERVATION}]),
            ai_route("headers", base, [{"name": "openai", "window_size": 60, "limit": 1000},
                                       {"name": "openai", "window_size": 3600,
                                        "limit": 100000}]),
            ai_route("tiny", base, [{"name": "openai", "window_size": 60, "limit": 30}],
                     window_type="fixed"),
            ai_route("tiny-anthropic", base, [{"name": "openai", "window_size": 60,
                                               "limit": 30}], llm_format="anthropic"),
            ai_route("other-provider", base, [{"name": "anthropic", "window_size": 60,
                                               "limit": 1}]),
            ai_route("money", base, [{"name": "openai", "window_size": 60, "limit": 0.002}],
                     tokens_count_strategy="cost"),
            ai_route("hidden", base, [{"name": "openai", "window_size": 60, "limit": 30}],
                     hide_client_headers=True, error_hide_providers=True),
        ]
        doc = {"_format_version": "3.0",
               "services": [{"name": "llm", "url": base, "routes": routes}],
               "plugins": [{"name": "file-log", "config": {"path": str(log_path)}},
                           {"name": "prometheus", "config": {"ai_metrics": True}}]}
        with GatewayProcess(doc, workers=2) as gw:
            gw.log_path = log_path
            yield gw


def route_log(gw, route: str, count: int) -> list[dict]:
    return log_entries(gw.log_path, lambda e: e["route"]["name"] == route, count)


def post(gw, path: str, body: dict = CHAT, headers: dict | None = None):
    return gw.request("POST", path, orjson.dumps(body),
                      {"Content-Type": "application/json", **(headers or {})})


def test_fifty_parallel_calls_against_a_limit_worth_ten(gateway):
    # The model takes 3 s to answer, so all fifty are in flight together,
    # however busy the machine is.
    slow = {"x-mock-latency-ms": "3000"}
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda _: post(gateway, "/parallel", headers=slow), range(50)))
    statuses = [status for status, _, _ in answers]
    assert statuses.count(200) == 10, statuses
    assert statuses.count(429) == 40
    entries = [e for e in route_log(gateway, "parallel", 50) if e["response"]["status"] == 200]
    used = sum(e["ai"]["proxy"]["usage"]["total_tokens"] for e in entries)
    assert len(entries) == 10 and used <= 10 * RESERVATION
    # Settled: the window now holds the real usage only, so more calls fit.
    assert post(gateway, "/parallel")[0] == 200


def test_headers_name_each_window_of_the_provider(gateway):
    status, headers, _ = post(gateway, "/headers")
    assert status == 200
    assert headers["x-ai-ratelimit-limit-minute-openai"] == "1000"
    assert headers["x-ai-ratelimit-limit-hour-openai"] == "100000"
    remaining = int(headers["x-ai-ratelimit-remaining-minute-openai"])
    assert remaining <= 1000 - RESERVATION


def test_a_refused_call_is_a_429_in_the_front_doors_shape_and_costs_nothing(gateway):
    status, headers, body = post(gateway, "/tiny")
    assert status == 429
    error = orjson.loads(body)["error"]
    assert error["message"] == "AI token rate limit exceeded for provider(s): openai"
    assert error["type"] == "rate_limit_error"
    assert int(headers["retry-after"]) >= 1
    assert headers["x-ai-ratelimit-retry-after"] == headers["retry-after"]
    assert headers["x-ai-ratelimit-remaining-minute-openai"] == "30"
    status, _, body = post(gateway, "/tiny-anthropic", {**CHAT, "max_tokens": MAX_TOKENS},
                           {"anthropic-version": "2023-06-01"})
    assert status == 429
    answer = orjson.loads(body)
    assert answer["type"] == "error" and answer["error"]["type"] == "rate_limit_error"


def test_limits_of_another_provider_do_not_apply(gateway):
    assert post(gateway, "/other-provider")[0] == 200


def test_a_money_limit_reserves_the_price_and_settles_the_real_one(gateway):
    # Reserved: the prompt's 19 at 2/1M plus 16 at 10/1M = 0.000198; 0.002 holds 10.
    status, headers, _ = post(gateway, "/money")
    assert status == 200
    assert headers["x-ai-ratelimit-limit-minute-openai"] == "0.002"
    [entry] = route_log(gateway, "money", 1)
    section = entry["ai"]["rate_limiting"]
    assert section["reserved"] == pytest.approx(MONEY_RESERVATION)
    assert section["used"] == pytest.approx(entry["ai"]["proxy"]["usage"]["cost"], abs=1e-6)
    assert section["used"] < section["reserved"]


def test_hidden_headers_and_providers(gateway):
    status, headers, body = post(gateway, "/hidden")
    assert status == 429
    assert orjson.loads(body)["error"]["message"] == "AI token rate limit exceeded for provider(s): "
    assert not [name for name in headers if name.startswith("x-ai-ratelimit")]
    assert "retry-after" in headers


def test_a_stream_is_settled_with_its_final_usage(gateway):
    status, headers, body = post(gateway, "/headers", {**CHAT, "stream": True})
    assert status == 200 and b"[DONE]" in body
    entries = route_log(gateway, "headers", 2)
    section = entries[-1]["ai"]["rate_limiting"]
    assert section["reserved"] == RESERVATION
    assert section["used"] == entries[-1]["ai"]["proxy"]["usage"]["total_tokens"] > 0


def test_metrics_count_what_was_reserved_used_and_refused(gateway):
    post(gateway, "/tiny")  # refused
    assert post(gateway, "/headers")[0] == 200
    time.sleep(0.3)  # the log phase settles after the answer went out
    _, _, body = gateway.admin("GET", "/metrics")
    text = body.decode()
    family = "fastgw_ai_limit_usage_total"
    assert metric_sum(text, family, provider="openai", unit="tokens", kind="refused") >= RESERVATION
    reserved = metric_sum(text, family, provider="openai", unit="tokens", kind="reserved")
    used = metric_sum(text, family, provider="openai", unit="tokens", kind="used")
    assert reserved >= RESERVATION and 0 < used <= reserved
    assert metric_sum(text, family, provider="openai", unit="money", kind="reserved") > 0
    calls = "fastgw_ai_limit_requests_total"
    assert metric_sum(text, calls, provider="openai", outcome="refused") >= 1
    assert metric_sum(text, calls, provider="openai", outcome="admitted") >= 1
