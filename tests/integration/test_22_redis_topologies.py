"""Scale-out on real Redis topologies: a three-master Redis Cluster (each
master with a replica) and a master watched by Redis Sentinel. On each, two
gateway processes share rate-limiting counters, proxy-cache entries,
ai-rate-limiting-advanced reservations and ai-semantic-cache entries, and
the limits stay exact across them. Then the Redis master dies mid-load:
fault_tolerant decides each answer, nothing hangs, and once the replica has
taken over the limits are exact again.

Routes use ``_gateway.redis`` (the gateway's Sentinel set or Cluster) except
/strict, which names the same Redis with Kong's plugin fields
(``sentinel_nodes``/``sentinel_master`` or ``cluster_nodes``)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import threading
import time
import uuid

import orjson
import pytest

from fastgw.testing import GatewayProcess
from fastgw.testing.mock_llm import running_mock
from fastgw.testing.redis_topologies import RedisClusterServers, RedisSentinelServers

LIMIT = 6  # requests per minute on /limited, per tenant
TIMEOUT_MS = 400
# One chat call's reservation: 8 + 8 per message + the prompt's estimate
# with its margin (3) + max_tokens, as in the ai-rate-limiting-advanced tests.
MAX_TOKENS = 16
RESERVATION = 8 + 8 + 3 + MAX_TOKENS
AI_CALLS = 3  # calls that fit in the token limit
CHAT = {"model": "m", "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": "hi there"}]}


def gateway_redis(topology) -> dict:
    if isinstance(topology, RedisClusterServers):
        return {"cluster_nodes": [f"{host}:{port}" for host, port in topology.nodes[:2]]}
    return {"sentinels": [f"{host}:{port}" for host, port in topology.sentinels],
            "master_name": topology.master_name}


def plugin_redis(topology) -> dict:
    """The same Redis in Kong's plugin fields."""
    if isinstance(topology, RedisClusterServers):
        return {"cluster_nodes": [{"ip": host, "port": port} for host, port in topology.nodes]}
    return {"sentinel_master": topology.master_name, "sentinel_role": "master",
            "sentinel_nodes": [{"host": host, "port": port} for host, port in topology.sentinels]}


def document(topology, base: str) -> dict:
    def limited(name: str, **extra) -> dict:
        config = {"minute": LIMIT, "policy": "redis", "limit_by": "header",
                  "header_name": "X-Tenant", "redis": {"timeout": TIMEOUT_MS}, **extra}
        return {"name": name, "paths": [f"/{name}"],
                "plugins": [{"name": "rate-limiting", "config": config}]}

    proxy = {"route_type": "llm/v1/chat",
             "auth": {"header_name": "Authorization", "header_value": "Bearer k"},
             "model": {"provider": "openai", "name": "m",
                       "options": {"upstream_url": base + "/v1/chat/completions"}}}
    ai_limit = {"llm_providers": [{"name": "openai", "window_size": 3600,
                                   "limit": AI_CALLS * RESERVATION}],
                "identifier": "header", "header_name": "X-Tenant", "strategy": "redis",
                "redis": {"timeout": TIMEOUT_MS}}
    semantic = {"exact_caching": True, "similarity": False,
                "embeddings": {"model": {"provider": "openai", "name": "e"}},
                "vectordb": {"strategy": "redis", "dimensions": 8, "distance_metric": "cosine",
                             "redis": {"timeout": TIMEOUT_MS}}}
    cache = {"strategy": "redis", "redis": {"timeout": TIMEOUT_MS}, "cache_ttl": 60}
    counted = [
        limited("limited"),
        limited("strict", fault_tolerant=False, minute=100000,
                redis={"timeout": TIMEOUT_MS, **plugin_redis(topology)}),
    ]
    routes = [
        {"name": "models", "paths": ["/v1/models"],
         "plugins": [{"name": "proxy-cache", "config": cache}]},
        {"name": "ai", "paths": ["/ai"], "plugins": [
            {"name": "ai-proxy", "config": proxy},
            {"name": "ai-rate-limiting-advanced", "config": ai_limit}]},
        {"name": "ai-cached", "paths": ["/ai-cached"], "plugins": [
            {"name": "ai-proxy", "config": proxy},
            {"name": "ai-semantic-cache", "config": semantic}]},
    ]
    return {"_format_version": "3.0", "_gateway": {"redis": gateway_redis(topology)},
            "services": [{"name": "mock", "url": base, "routes": routes},
                         # /limited and /strict reach the mock's GET /v1/models.
                         {"name": "counted", "url": base + "/v1/models", "routes": counted}]}


@pytest.fixture(scope="module", params=["cluster", "sentinel"])
def fleet(request):
    topology = (RedisClusterServers(masters=3, replicas=1) if request.param == "cluster"
                else RedisSentinelServers())
    with topology, running_mock() as mock, contextlib.ExitStack() as stack:
        doc = document(topology, mock.base_url)
        gateways = [stack.enter_context(GatewayProcess(doc)) for _ in range(2)]
        yield topology, gateways, mock


def tenant() -> str:
    return uuid.uuid4().hex[:12]


def hit(gw, path: str, who: str) -> int:
    return gw.request("GET", path, None, {"X-Tenant": who})[0]


def chat(gw, path: str, who: str, body: dict = CHAT, latency_ms: int | None = None):
    headers = {"Content-Type": "application/json", "X-Tenant": who}
    if latency_ms is not None:
        headers["x-mock-latency-ms"] = str(latency_ms)
    return gw.request("POST", path, orjson.dumps(body), headers)


def admitted_across(gateways, path: str, who: str, tries: int) -> list[int]:
    return [hit(gw, path, who) for gw, _ in zip(itertools.cycle(gateways), range(tries))]


def wait_until(what: str, done, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_rate_limit_is_exact_across_two_gateways(fleet):
    _, gateways, _ = fleet
    statuses = admitted_across(gateways, "/limited", tenant(), 2 * LIMIT)
    assert statuses == [200] * LIMIT + [429] * LIMIT
    # The plugin's own Kong fields reach the same Redis.
    assert admitted_across(gateways, "/strict", tenant(), 4) == [200] * 4


def test_one_gateway_serves_what_the_other_cached(fleet):
    _, (first, second), mock = fleet
    path = f"/v1/models?t={tenant()}"
    assert first.request("GET", path)[1]["x-cache-status"] == "Miss"
    before = len(mock.requests())
    wait_until("the entry is shared",
               lambda: second.request("GET", path)[1]["x-cache-status"] == "Hit")
    assert len(mock.requests()) == before
    body = {**CHAT, "messages": [{"role": "user", "content": f"cached {tenant()}"}]}
    assert chat(first, "/ai-cached", "t", body)[1]["x-cache-status"] == "Miss"
    wait_until("the AI answer is shared",
               lambda: chat(second, "/ai-cached", "t", body)[1]["x-cache-status"] == "Hit")


def test_token_reservations_are_exact_across_two_gateways(fleet):
    _, gateways, _ = fleet
    who = tenant()
    targets = list(itertools.islice(itertools.cycle(gateways), 3 * AI_CALLS))
    # The model takes a second to answer: every call is reserved before any settles.
    with concurrent.futures.ThreadPoolExecutor(len(targets)) as pool:
        statuses = list(pool.map(lambda gw: chat(gw, "/ai", who, latency_ms=1000)[0], targets))
    assert sorted(statuses) == [200] * AI_CALLS + [429] * (2 * AI_CALLS)


def test_a_master_failover_mid_load_hangs_nothing_and_limits_come_back(fleet):
    topology, gateways, _ = fleet
    answers: list[tuple[str, int, float]] = []
    stop = threading.Event()

    def load(gw) -> None:
        while not stop.is_set():
            for path in ("/limited", "/strict"):
                started = time.monotonic()
                status = hit(gw, path, f"load-{path}")
                answers.append((path, status, time.monotonic() - started))

    threads = [threading.Thread(target=load, args=(gw,)) for gw in gateways]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        if isinstance(topology, RedisClusterServers):
            # The master that holds the strict route's counters.
            key = next(iter(topology.client().scan_iter(match="*load-/strict*")))
            topology.fail_over(topology.master_of(key.decode()))
        else:
            topology.fail_over()
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert answers and not any(thread.is_alive() for thread in threads)
    # Nothing waited much past the Redis timeout.
    assert max(elapsed for *_, elapsed in answers) < 2 * TIMEOUT_MS / 1000 + 0.5
    # fault_tolerant decides: the tolerant route counted on the node (its
    # tenant is over the limit by then, so 200 or 429); the strict one failed with 500.
    assert {status for path, status, _ in answers if path == "/limited"} <= {200, 429}
    strict = [status for path, status, _ in answers if path == "/strict"]
    assert set(strict) <= {200, 500} and 500 in strict
    # Once the replica serves, the limits are exact again (after the pause
    # the plugins leave a failed Redis alone, and the client has found the
    # new master).
    wait_until("the strict route counts in Redis again",
               lambda: all(hit(gw, "/strict", tenant()) == 200 for gw in gateways))
    exact = [200] * LIMIT + [429] * LIMIT
    wait_until("the limit is exact again",
               lambda: admitted_across(gateways, "/limited", tenant(), 2 * LIMIT) == exact)
