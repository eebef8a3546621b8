"""strategy redis: three gateways of two workers each share one Redis, one
token limit and one money limit; what they admit together never passes the
limit and falls short of it by less than one call's reservation. With Redis
stopped, fault_tolerant decides, nothing hangs, and Redis is used again once
it is back."""

import concurrent.futures
import contextlib
import itertools
import time

import orjson
import pytest
from ai_limits_kit import CHAT, MONEY_RESERVATION, RESERVATION, proxy_config

from fastgw.testing import GatewayProcess, log_entries
from fastgw.testing.mock_llm import running_mock
from fastgw.testing.redis_server import RedisServer

TOKEN_LIMIT = 10 * RESERVATION
MONEY_LIMIT = 0.002


def ai_route(name: str, base: str, redis_port: int, limits: list[dict], **extra) -> dict:
    proxy = proxy_config(base)
    limiter = {"llm_providers": limits, "identifier": "service", "strategy": "redis",
               "redis": {"host": "127.0.0.1", "port": redis_port, "timeout": 500}, **extra}
    return {"name": name, "paths": [f"/{name}"], "plugins": [
        {"name": "ai-proxy", "config": proxy},
        {"name": "ai-rate-limiting-advanced", "config": limiter}]}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with RedisServer() as redis, running_mock(latency_ms=300) as mock, \
            contextlib.ExitStack() as stack:
        base = mock.base_url
        routes = [
            ai_route("tokens", base, redis.port,
                     [{"name": "openai", "window_size": 3600, "limit": TOKEN_LIMIT}]),
            ai_route("money", base, redis.port,
                     [{"name": "openai", "window_size": 3600, "limit": MONEY_LIMIT}],
                     tokens_count_strategy="cost"),
            ai_route("tolerant", base, redis.port,
                     [{"name": "openai", "window_size": 3600, "limit": 100000}]),
            ai_route("strict", base, redis.port,
                     [{"name": "openai", "window_size": 3600, "limit": 100000}],
                     fault_tolerant=False),
        ]
        logs = []
        gateways = []
        for n in range(3):
            log_path = tmp_path_factory.mktemp(f"gw{n}") / "access.log"
            logs.append(log_path)
            doc = {"_format_version": "3.0",
                   "services": [{"name": "llm", "url": base, "routes": routes}],
                   "plugins": [{"name": "file-log", "config": {"path": str(log_path)}}]}
            gateways.append(stack.enter_context(GatewayProcess(doc, workers=2)))
        yield gateways, logs, redis


def post(gw, path: str, headers: dict | None = None):
    return gw.request("POST", path, orjson.dumps(CHAT),
                      {"Content-Type": "application/json", **(headers or {})})


@pytest.mark.parametrize(("route", "key", "limit", "reservation"), [
    ("tokens", "total_tokens", TOKEN_LIMIT, RESERVATION),
    ("money", "cost", MONEY_LIMIT, MONEY_RESERVATION),
])
def test_three_gateways_admit_no_more_than_the_limit_together(cluster, route, key, limit,
                                                             reservation):
    gateways, logs, _ = cluster
    targets = list(itertools.islice(itertools.cycle(gateways), 45))
    # The model takes 3 s to answer, so all 45 are in flight together.
    slow = {"x-mock-latency-ms": "3000"}
    with concurrent.futures.ThreadPoolExecutor(45) as pool:
        statuses = [s for s, _, _ in pool.map(lambda gw: post(gw, f"/{route}", slow),
                                              targets)]
    fitting = int(limit // reservation + 1e-9)
    assert statuses.count(200) == fitting, statuses
    assert set(statuses) == {200, 429}
    # Settled with the real usage, the limit has room again: fill it one
    # call at a time, round the gateways, until one does not fit even once
    # the settlements in flight (sent after each answer) have landed.
    refused_in_a_row = 0
    for gw in itertools.cycle(gateways):
        status = post(gw, f"/{route}")[0]
        assert status in (200, 429)
        refused_in_a_row = refused_in_a_row + 1 if status == 429 else 0
        if refused_in_a_row == 2:
            break
        if status == 429:
            time.sleep(0.3)
    answered = log_entries(logs, lambda e: e["route"]["name"] == route
                           and e["response"]["status"] == 200, fitting)
    admitted = sum(e["ai"]["proxy"]["usage"][key] for e in answered)
    assert admitted <= limit + 1e-9
    assert limit - admitted < reservation


def test_with_redis_down_fault_tolerant_decides_and_nothing_hangs(cluster):
    gateways, _, redis = cluster
    gw = gateways[0]
    assert post(gw, "/strict")[0] == 200
    redis.stop()
    try:
        for route, expected in (("/tolerant", 200), ("/strict", 500)):
            started = time.monotonic()
            status, _, body = post(gw, route)
            assert status == expected, body
            assert time.monotonic() - started < 2.0  # well inside Redis's timeout + the call
        assert orjson.loads(body)["error"]["message"] == "An unexpected error occurred"
    finally:
        redis.start()
    # Back by itself: after the retry pause, strict calls are counted in Redis again.
    deadline = time.monotonic() + 10
    while post(gw, "/strict")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert any(key.startswith(b"{ai-ratelimit:") for key in redis.client().keys())
