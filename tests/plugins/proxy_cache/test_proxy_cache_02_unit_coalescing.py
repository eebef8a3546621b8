"""Request coalescing in one process: identical requests that miss while a
leader is upstream wait for it and get its answer; a leader that stores
nothing releases them to go upstream themselves, and so does its timeout."""

import asyncio
import time

import pytest

from fastgw.config.model import Service
from fastgw.plugins.context import make_context, set_response
from fastgw.plugins.proxy_cache.coalescing import FLIGHTS

JSON = {"Content-Type": "application/json"}


def request(url="/report", method="GET", read_timeout_ms=60000):
    service = Service(name="svc", protocol="http", host="127.0.0.1", port=9,
                      path=None, read_timeout=read_timeout_ms)
    return make_context(method, url, {"Host": "api.local"}, service=service)


def respond(cache, ctx, status=200, body=b'{"total": 42}'):
    """The leader's response through the filters, as the gateway runs them."""
    set_response(ctx, status, JSON)
    cache.header_filter(ctx)
    sent = cache.body_filter(ctx, body, False) + cache.body_filter(ctx, b"", True)
    cache.log(ctx)
    return sent


def answered_from_cache(ctx):
    return ctx.exited and ctx.exit_headers["X-Cache-Status"] == "Hit"


@pytest.fixture
def cache(handler):
    return handler(strategy="memory")


async def start_waiting(cache, contexts):
    """Run each context's access phase; every one must wait (return a coroutine)."""
    pending = [cache.access(ctx) for ctx in contexts]
    assert all(waiting is not None for waiting in pending)
    tasks = [asyncio.ensure_future(waiting) for waiting in pending]
    await asyncio.sleep(0)
    return tasks


def test_identical_misses_wait_for_the_leader_and_share_its_answer(cache):
    async def scenario():
        leader = request()
        assert cache.access(leader) is None  # goes upstream
        waiters = [request() for _ in range(20)]
        tasks = await start_waiting(cache, waiters)
        assert not any(task.done() for task in tasks)
        assert respond(cache, leader) == b'{"total": 42}'
        await asyncio.gather(*tasks)
        return leader, waiters

    leader, waiters = asyncio.run(scenario())
    assert leader.response.headers.get("X-Cache-Status") == "Miss"
    for waiter in waiters:
        assert answered_from_cache(waiter)
        assert (waiter.exit_status, waiter.exit_body) == (200, b'{"total": 42}')
        assert waiter.exit_headers["X-Cache-Key"] == leader.response.headers.get("X-Cache-Key")
    assert len(FLIGHTS) == 0


def test_a_refresh_is_coalesced_too(handler):
    cache = handler(strategy="memory", cache_ttl=1, storage_ttl=60)

    async def scenario():
        first = request()
        cache.access(first)
        respond(cache, first, body=b"old")
        cache.memory.get(first.response.headers.get("X-Cache-Key"), time.time()).timestamp -= 5
        leader = request()
        assert cache.access(leader) is None
        waiters = [request() for _ in range(3)]
        tasks = await start_waiting(cache, waiters)
        respond(cache, leader, body=b"new")
        await asyncio.gather(*tasks)
        return leader, waiters

    leader, waiters = asyncio.run(scenario())
    assert leader.response.headers.get("X-Cache-Status") == "Refresh"
    assert [waiter.exit_body for waiter in waiters] == [b"new"] * 3


def test_an_uncacheable_answer_releases_the_waiters_upstream(cache):
    async def scenario():
        leader = request()
        cache.access(leader)
        waiters = [request() for _ in range(5)]
        tasks = await start_waiting(cache, waiters)
        respond(cache, leader, status=503, body=b'{"message": "busy"}')
        await asyncio.gather(*tasks)
        # Released waiters are plain misses: the first to get a cacheable
        # answer stores it.
        assert not any(waiter.exited for waiter in waiters)
        respond(cache, waiters[0], body=b"ok")
        for waiter in waiters[1:]:
            respond(cache, waiter, body=b"ok")
        return leader, waiters

    leader, waiters = asyncio.run(scenario())
    assert leader.response.headers.get("X-Cache-Status") == "Bypass"
    assert [w.response.headers.get("X-Cache-Status") for w in waiters] == ["Miss"] * 5
    follower = request()
    cache.access(follower)
    assert answered_from_cache(follower) and follower.exit_body == b"ok"


def test_a_leader_without_response_releases_the_waiters_in_its_log_phase(cache):
    async def scenario():
        leader = request()
        cache.access(leader)
        tasks = await start_waiting(cache, [request() for _ in range(3)])
        # The upstream refused the connection: the gateway answered 502
        # itself, and only the log phase runs.
        cache.log(leader)
        started = time.monotonic()
        await asyncio.gather(*tasks)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 0.5
    assert len(FLIGHTS) == 0


def test_a_body_too_large_to_store_releases_the_waiters(handler):
    cache = handler(strategy="memory", memory={"max_bytes": 4096})

    async def scenario():
        leader = request()
        cache.access(leader)
        waiters = [request() for _ in range(2)]
        tasks = await start_waiting(cache, waiters)
        respond(cache, leader, body=b"x" * 5000)
        await asyncio.gather(*tasks)
        return waiters

    assert not any(waiter.exited for waiter in asyncio.run(scenario()))


def test_waiting_is_bounded_by_the_upstream_read_timeout(cache):
    async def scenario():
        leader = request(read_timeout_ms=100)
        cache.access(leader)  # and never answers
        started = time.monotonic()
        [task] = await start_waiting(cache, [request(read_timeout_ms=100)])
        await task
        waited = time.monotonic() - started
        # The lost flight is forgotten: the next request leads a new one.
        assert cache.access(request(read_timeout_ms=100)) is None
        return waited

    waited = asyncio.run(scenario())
    assert 0.08 <= waited < 0.5


def test_different_keys_and_bypassed_requests_do_not_wait(cache):
    async def scenario():
        cache.access(request("/report"))
        assert cache.access(request("/other")) is None  # leads its own flight
        assert cache.access(request("/report", method="POST")) is None  # Bypass
        assert len(FLIGHTS) == 2

    asyncio.run(scenario())


def test_a_late_leader_does_not_end_the_flight_that_replaced_it(cache):
    async def scenario():
        stale_leader = request(read_timeout_ms=50)
        cache.access(stale_leader)
        await asyncio.sleep(0.06)
        new_leader = request(read_timeout_ms=50)
        assert cache.access(new_leader) is None  # the old flight expired
        waiter = request(read_timeout_ms=50)
        [task] = await start_waiting(cache, [waiter])
        respond(cache, stale_leader, status=500)  # releases nobody of the new flight
        await asyncio.sleep(0)
        assert not task.done()
        respond(cache, new_leader, body=b"fresh")
        await task
        return waiter

    assert asyncio.run(scenario()).exit_body == b"fresh"
