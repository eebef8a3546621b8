"""rate-limiting with policy redis against a real redis-server: the same
answers as policy local, atomic counting, the Lua scripts' keys, and what
happens when Redis goes away and comes back."""

import asyncio
import logging
import socket
import time

import orjson
import pytest

from fastgw.plugins.context import make_context
from fastgw.plugins.rate_limiting import redis_store
from fastgw.testing import free_port

UNEXPECTED = {"message": "An unexpected error occurred"}
# (seconds after the clock's start, client IP) of a run of requests.
SEQUENCE = ([(0, "10.0.0.1")] * 3 + [(1, "10.0.0.1")] * 3 + [(1, "10.0.0.2")]
            + [(45, "10.0.0.1")] * 3 + [(61, "10.0.0.1")] * 4)


@pytest.fixture(autouse=True)
def _clock_in_the_future(clock):
    """Redis expires keys by the wall clock: the test clock starts 20.5 s into
    the coming minute, so no window of these tests is over in real time."""
    clock.now = (time.time() // 60 + 1) * 60 + 20.5


def redis_config(redis, **config):
    return {"policy": "redis", "redis": {"host": "127.0.0.1", "port": redis.port}, **config}


@pytest.mark.parametrize("algorithm", ["fixed", "sliding", "token-bucket"])
def test_redis_answers_as_the_local_policy_does(limiter, answer, clock, fresh_redis, algorithm):
    limits = {"second": 2, "minute": 5, "hour": 8, "limit_by": "ip", "algorithm": algorithm}
    local = limiter(limits)
    shared = limiter(redis_config(fresh_redis, **limits))
    start = clock.now
    seen = {}
    for handler in (local, shared):
        seen[handler] = []
        for offset, ip in SEQUENCE:
            clock.now = start + offset
            got = answer(handler, client_ip=ip)
            seen[handler].append((got.status, got.rate_headers()))
    assert seen[shared] == seen[local]
    assert {status for status, _ in seen[local]} == {200, 429}


def test_concurrent_requests_never_overshoot(limiter, answer, fresh_redis):
    handler = limiter(redis_config(fresh_redis, minute=10))
    contexts = [make_context() for _ in range(40)]

    async def all_at_once():
        await asyncio.gather(*(handler.access(ctx) for ctx in contexts))

    answer.loop.run_until_complete(all_at_once())
    assert sorted(ctx.exit_status for ctx in contexts) == [0] * 10 + [429] * 30


def test_fixed_window_keys_expire_with_their_window(limiter, answer, clock, fresh_redis):
    clock.now = time.time()
    handler = limiter(redis_config(fresh_redis, minute=10, hour=100), route="orders")
    answer(handler, client_ip="10.1.2.3")
    client = fresh_redis.client()
    minute_ms = int(clock.now // 60 * 60 * 1000)
    key = f"{{ratelimit:orders:*:10.1.2.3}}:{minute_ms}:minute".encode()
    assert sorted(client.keys("*")) == sorted(
        [key, f"{{ratelimit:orders:*:10.1.2.3}}:{int(clock.now // 3600 * 3600 * 1000)}:hour".encode()])
    assert client.get(key) == b"1"
    left_ms = minute_ms + 60_000 - clock.now * 1000
    assert left_ms < client.pttl(key) <= left_ms + 1000 + 50


def test_scripts_come_back_after_a_script_flush(limiter, answer, fresh_redis):
    handler = limiter(redis_config(fresh_redis, minute=3))
    assert answer(handler).status == 200
    fresh_redis.client().script_flush()
    assert [answer(handler).status for _ in range(3)] == [200, 200, 429]


def test_the_gateways_redis_url_or_the_plugins_database(limiter, answer, fresh_redis):
    by_url = limiter({"minute": 3, "policy": "redis"},
                     gateway={"redis": {"url": f"redis://127.0.0.1:{fresh_redis.port}/5"}})
    by_fields = limiter({"minute": 3, "policy": "redis", "redis": {
        "host": "127.0.0.1", "port": fresh_redis.port, "database": 3}})
    assert answer(by_url).status == answer(by_fields).status == 200
    databases = fresh_redis.client().info("keyspace")
    assert {name: stats["keys"] for name, stats in databases.items()} == {"db5": 1, "db3": 1}


def test_policy_redis_without_any_redis_is_refused(limiter):
    with pytest.raises(ValueError, match=r"needs config.redis \(host, sentinel_nodes or cluster_nodes\) or _gateway.redis"):
        limiter({"minute": 3, "policy": "redis"})


# -- outages ---------------------------------------------------------------------


@pytest.fixture
def quick_retry(monkeypatch):
    """Redis is tried again at once after a failure (not after 1 s)."""
    monkeypatch.setattr(redis_store, "RETRY_INTERVAL_S", 0.0)


def timed(answer, handler, **request):
    started = time.monotonic()
    got = answer(handler, **request)
    return got, time.monotonic() - started


def test_an_outage_falls_back_to_the_node_or_answers_500(limiter, answer, fresh_redis,
                                                         quick_retry, caplog):
    tolerant = limiter(redis_config(fresh_redis, minute=2))
    strict = limiter(redis_config(fresh_redis, minute=100, fault_tolerant=False),
                     state=tolerant.state)
    assert answer(tolerant).status == answer(strict).status == 200
    fresh_redis.stop()
    with caplog.at_level(logging.WARNING, "fastgw.plugins.rate_limiting"):
        fallback = [timed(answer, tolerant) for _ in range(3)]
        failed, elapsed = timed(answer, strict)
    # The node counts from zero meanwhile: the Redis count is out of reach.
    assert [got.status for got, _ in fallback] == [200, 200, 429]
    assert fallback[0][0].headers["RateLimit-Remaining"] == "1"
    assert (failed.status, orjson.loads(failed.body)) == (500, UNEXPECTED)
    assert max(seconds for _, seconds in fallback) < 1.0 and elapsed < 1.0
    # Both configs share one client: one outage, one log line.
    outages = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(outages) == 1 and outages[0].levelno == logging.ERROR

    fresh_redis.start()
    with caplog.at_level(logging.WARNING, "fastgw.plugins.rate_limiting"):
        assert answer(strict).status == 200
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    assert fresh_redis.client().keys("{ratelimit:*")


def test_after_a_failure_redis_is_left_alone_for_a_while(limiter, answer, fresh_redis):
    handler = limiter(redis_config(fresh_redis, minute=100, fault_tolerant=False))
    fresh_redis.stop()
    assert answer(handler).status == 500
    fresh_redis.start()
    # Back already, but not asked again before RETRY_INTERVAL_S.
    assert answer(handler).status == 500
    handler.redis.retry_at = 0.0
    assert answer(handler).status == 200


def test_a_silent_redis_costs_no_more_than_the_timeout(limiter, answer, quick_retry):
    # A listener that never answers: connecting works, replies never come.
    port = free_port()
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", port))
        silent.listen(64)
        handler = limiter({"minute": 5, "policy": "redis",
                           "redis": {"host": "127.0.0.1", "port": port, "timeout": 200}})
        results = [timed(answer, handler) for _ in range(2)]
    assert [got.status for got, _ in results] == [200, 200]
    assert all(0.15 < seconds < 0.7 for _, seconds in results)


def test_a_call_cut_off_by_the_timeout_leaves_no_reply_for_the_next(limiter, answer,
                                                                    fresh_redis, quick_retry):
    handler = limiter(redis_config(fresh_redis, minute=50, limit_by="ip"))
    handler.redis.timeout = 0.2
    assert answer(handler).status == 200  # connected, the script loaded
    client = fresh_redis.client()
    client.client_pause(500)  # Redis holds every command for half a second
    got, seconds = timed(answer, handler)
    assert got.status == 200 and seconds < 0.45  # the node counted meanwhile
    time.sleep(0.5)
    # Each answer now shows the count Redis keeps: a late reply to the call
    # cut off would put every answer one behind.
    (key,) = client.keys("{ratelimit:*:minute")
    for _ in range(3):
        got = answer(handler)
        assert got.status == 200
        assert int(got.headers["RateLimit-Remaining"]) == 50 - int(client.get(key))
