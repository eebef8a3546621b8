"""proxy-cache with a real redis-server: entries shared by separate gateway
processes, TTLs in Redis, purge_async, and outages (Redis stopped or frozen)
answered as Bypass within the timeout, with recovery when Redis is back."""

import asyncio
import gc
import os
import signal
import time

import orjson
import pytest

from fastgw.plugins.context import make_context, set_response
from fastgw.plugins.proxy_cache.store import REDIS_PREFIX, RETRY_AFTER_S, purge_async
from fastgw.testing import GatewayProcess, UpstreamServer, service_doc
from fastgw.testing.redis_server import RedisServer

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _empty_redis(redis_server):
    # Clients of finished tests belong to closed event loops (or to Redis
    # servers that do not exist): let them go before a test purges "every
    # Redis store".
    gc.collect()
    if not redis_server.running:
        redis_server.start()
    redis_server.client().flushall()
    yield
    gc.collect()


@pytest.fixture
def plugin_document_extra(redis_server):
    return {"_gateway": {"redis": {"url": redis_server.url}}}


# -- the handler in this process ------------------------------------------------------


async def through(cache, url="/report", body=b'{"n": 1}', response_headers=JSON):
    """One request through the phases; returns the context."""
    ctx = make_context("GET", url, {"Host": "api.local"})
    waiting = cache.access(ctx)
    assert waiting is not None  # the Redis strategy always awaits its lookup
    await waiting
    if ctx.exited:
        return ctx
    set_response(ctx, 200, response_headers)
    cache.header_filter(ctx)
    cache.body_filter(ctx, body, True)
    cache.log(ctx)
    await asyncio.sleep(0.05)  # the entry is written in the background
    return ctx


def cache_status(ctx):
    return (ctx.exit_headers if ctx.exited else dict(ctx.response.headers.pairs()))[
        "X-Cache-Status"]


def test_entries_live_in_redis_with_their_ttl(handler, redis_server):
    cache = handler(strategy="redis", cache_ttl=30)

    async def scenario():
        miss = await through(cache)
        hit = await through(cache)
        await cache.redis.close()
        return miss, hit

    miss, hit = asyncio.run(scenario())
    key = miss.response.headers.get("X-Cache-Key")
    assert cache_status(miss) == "Miss"
    assert (cache_status(hit), hit.exit_body) == ("Hit", b'{"n": 1}')
    client = redis_server.client()
    assert 29_000 < client.pttl(REDIS_PREFIX + key) <= 30_000
    assert client.get(REDIS_PREFIX + key).endswith(b'\n{"n": 1}')


def test_the_plugins_own_redis_fields_reach_the_same_entries(handler, redis_server):
    by_url = handler(strategy="redis")
    by_fields = handler(strategy="redis", redis={"host": "127.0.0.1", "port": redis_server.port,
                                                 "timeout": 500})

    async def scenario():
        await through(by_url)
        hit = await through(by_fields)
        await by_url.redis.close()
        await by_fields.redis.close()
        return hit

    assert cache_status(asyncio.run(scenario())) == "Hit"


def test_purge_async_removes_redis_entries_and_leaves_other_keys(handler, redis_server):
    cache = handler(strategy="redis")
    client = redis_server.client()
    client.set("not-ours", b"1")

    async def scenario():
        keys = [(await through(cache, url)).response.headers.get("X-Cache-Key")
                for url in ("/a", "/b", "/c")]
        removed_one = await purge_async(keys[0])
        removed_none = await purge_async(keys[0])
        after_one = await through(cache, "/a")
        removed_all = await purge_async(None)
        await cache.redis.close()
        return removed_one, removed_none, cache_status(after_one), removed_all

    assert asyncio.run(scenario()) == (1, 0, "Miss", 3)
    assert client.keys("*") == [b"not-ours"]


def test_a_redis_outage_is_a_fast_bypass_and_recovery_is_automatic(handler, redis_server):
    cache = handler(strategy="redis", redis={"host": "127.0.0.1", "port": redis_server.port,
                                             "timeout": 200})

    async def timed(url):
        started = time.monotonic()
        ctx = await through(cache, url)
        return cache_status(ctx), time.monotonic() - started

    async def scenario():
        await through(cache, "/kept")
        redis_server.stop()
        during = [await timed("/kept"), await timed("/kept")]
        redis_server.start()
        await asyncio.sleep(RETRY_AFTER_S + 0.1)
        after = [await timed("/kept"), await timed("/kept")]
        await cache.redis.close()
        return during, after

    during, after = asyncio.run(scenario())
    assert [status for status, _ in during] == ["Bypass", "Bypass"]
    assert all(elapsed < 0.5 for _, elapsed in during)
    # A restarted Redis without persistence is empty: a miss, then hits.
    assert [status for status, _ in after] == ["Miss", "Hit"]


# -- gateway processes ----------------------------------------------------------------


def counting_upstream(delay=0.0):
    served = []

    async def answer(req, writer):
        served.append(req.target)
        number = len(served)
        if delay:
            await asyncio.sleep(delay)
        body = orjson.dumps({"n": number})
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    return answer


def redis_doc(upstream_port, redis_url=None, timeout=200, **redis_fields):
    doc = service_doc(upstream_port)
    doc["plugins"] = [{"name": "proxy-cache", "config": {
        "strategy": "redis", "redis": {"timeout": timeout, **redis_fields}}}]
    if redis_url:
        doc["_gateway"] = {"redis": {"url": redis_url}}
    return doc


def test_separate_gateways_share_entries_through_redis(redis_server):
    with UpstreamServer(counting_upstream()) as upstream, \
            GatewayProcess(redis_doc(upstream.port, redis_server.url)) as first, \
            GatewayProcess(redis_doc(upstream.port, host="127.0.0.1",
                                     port=redis_server.port)) as second:
        status, miss_headers, body = first.request("GET", "/report")
        assert (status, miss_headers["x-cache-status"]) == (200, "Miss")
        deadline = time.monotonic() + 2
        while not redis_server.client().keys(REDIS_PREFIX + "*"):
            assert time.monotonic() < deadline, "the entry never reached Redis"
            time.sleep(0.02)
        for gateway in (second, first):
            status, headers, hit_body = gateway.request("GET", "/report")
            assert (status, headers["x-cache-status"], hit_body) == (200, "Hit", body)
            assert headers["x-cache-key"] == miss_headers["x-cache-key"]
        assert len(upstream.requests) == 1


@pytest.mark.timeout(40)
def test_a_frozen_redis_never_holds_requests_past_the_timeout(redis_server):
    with UpstreamServer(counting_upstream()) as upstream, \
            GatewayProcess(redis_doc(upstream.port, redis_server.url, timeout=1000)) as gw:
        assert gw.request("GET", "/report")[1]["x-cache-status"] == "Miss"
        os.kill(redis_server.proc.pid, signal.SIGSTOP)  # accepts nothing, answers nothing
        try:
            timings = []
            for _ in range(5):
                started = time.monotonic()
                status, headers, _ = gw.request("GET", "/report", timeout=5)
                timings.append(time.monotonic() - started)
                assert (status, headers["x-cache-status"]) == (200, "Bypass")
        finally:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
        # The first request waits out the 1 s timeout; the next ones skip
        # Redis while it is marked down.
        assert 0.9 < timings[0] < 2.5 and max(timings[1:]) < 0.5
        time.sleep(RETRY_AFTER_S + 0.1)
        assert gw.request("GET", "/report")[1]["x-cache-status"] == "Hit"
        assert len(upstream.requests) == 6
