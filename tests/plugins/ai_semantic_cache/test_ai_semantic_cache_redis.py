"""ai-semantic-cache with vectordb.strategy redis: two gateways sharing one
redis-server serve each other's entries; with Redis stopped, stop_on_failure
decides (off: the model answers, Bypass; on: a 500), nothing hangs, and the
cache works again once Redis is back."""

import contextlib
import time

import orjson
import pytest

from fastgw.testing import GatewayProcess
from fastgw.testing.mock_llm import running_mock
from fastgw.testing.redis_server import RedisServer


def route(name: str, base: str, redis_port: int, **extra) -> dict:
    proxy = {"route_type": "llm/v1/chat",
             "auth": {"header_name": "Authorization", "header_value": "Bearer k"},
             "model": {"provider": "openai", "name": "m",
                       "options": {"upstream_url": base + "/v1/chat/completions"}}}
    cache = {"exact_caching": True, "similarity": False,
             "embeddings": {"model": {"provider": "openai", "name": "e"}},
             "vectordb": {"strategy": "redis", "dimensions": 8, "distance_metric": "cosine",
                          "redis": {"host": "127.0.0.1", "port": redis_port, "timeout": 500}},
             **extra}
    return {"name": name, "paths": [f"/{name}"], "plugins": [
        {"name": "ai-proxy", "config": proxy}, {"name": "ai-semantic-cache", "config": cache}]}


@pytest.fixture(scope="module")
def cluster():
    with RedisServer() as redis, running_mock() as mock, contextlib.ExitStack() as stack:
        routes = [route("tolerant", mock.base_url, redis.port),
                  route("strict", mock.base_url, redis.port, stop_on_failure=True)]
        doc = {"_format_version": "3.0",
               "services": [{"name": "llm", "url": mock.base_url, "routes": routes}]}
        gateways = [stack.enter_context(GatewayProcess(doc)) for _ in range(2)]
        yield gateways, redis, mock


def ask(gw, path: str, text: str):
    body = {"model": "m", "messages": [{"role": "user", "content": text}]}
    return gw.request("POST", path, orjson.dumps(body), {"Content-Type": "application/json"})


def status_when_stored(gw, path: str, text: str) -> str:
    """The cache status of ``text``, once the entry another request stored
    (in the background, after its answer) is in Redis."""
    deadline = time.monotonic() + 5
    while True:
        status = ask(gw, path, text)[1]["x-cache-status"]
        if status == "Hit" or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_two_gateways_serve_each_others_entries(cluster):
    (first, second), _, mock = cluster
    assert ask(first, "/tolerant", "shared entry")[1]["x-cache-status"] == "Miss"
    before = len(mock.requests())
    assert status_when_stored(second, "/tolerant", "shared entry") == "Hit"
    assert len(mock.requests()) == before


def test_with_redis_down_stop_on_failure_decides_and_nothing_hangs(cluster):
    (gw, _), redis, _ = cluster
    redis.stop()
    try:
        for path, expected in (("/tolerant", 200), ("/strict", 500)):
            started = time.monotonic()
            status, headers, body = ask(gw, path, "while redis is down")
            assert status == expected, body
            assert headers["x-cache-status"] == "Bypass" or expected == 500
            assert time.monotonic() - started < 2.0
        assert orjson.loads(body)["error"]["message"] == "An unexpected error occurred"
    finally:
        redis.start()
    deadline = time.monotonic() + 10
    while ask(gw, "/tolerant", "after the outage")[1]["x-cache-status"] == "Bypass":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert status_when_stored(gw, "/tolerant", "after the outage") == "Hit"
