"""The Redis batcher of ai-rate-limiting-advanced against a real redis-server:
settlements ride with the next reservations in one script call, or go in a
call of their own when no reservation comes, never both."""

import asyncio
import time

import pytest

from fastgw.plugins.ai_rate_limiting_advanced import redis_batch
from fastgw.plugins.ai_rate_limiting_advanced.redis_batch import RedisBatcher
from fastgw.plugins.rate_limiting.redis_store import RedisCounters
from fastgw.shared_redis.client import Endpoint
from fastgw.testing.redis_server import RedisServer

LIMIT = "1000.0"


@pytest.fixture(scope="module")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis(redis_server):
    redis_server.client().flushall()
    return redis_server


class CountedCounters(RedisCounters):
    """The counters, with the script calls they made."""

    __slots__ = ("calls",)

    async def run(self, source, keys, args):
        self.calls.append((list(keys), list(args)))
        return await super().run(source, keys, args)


def batcher_for(redis):
    client = Endpoint("single", (("127.0.0.1", redis.port),)).connect(2.0)
    counters = CountedCounters(client, f"127.0.0.1:{redis.port}", 2.0)
    counters.calls = []
    return RedisBatcher(counters), counters


def expiry_ms(seconds_ahead):
    return int((time.time() + seconds_ahead) * 1000)


def test_settlements_ride_with_the_next_reservations(redis):
    batcher, counters = batcher_for(redis)

    async def scenario():
        batcher.add({"{a}|settled": 7}, {"{a}|settled": expiry_ms(60)})
        reply = await batcher.reserve(["{a}|now", "{a}|before"], [30, LIMIT, "0.0", expiry_ms(60)])
        # Longer than the settlements would have waited for a reservation.
        await asyncio.sleep(3 * redis_batch.SETTLE_DELAY_S)
        return reply

    reply = asyncio.run(scenario())
    assert [int(reply[0]), float(reply[1])] == [1, 0.0]
    assert len(counters.calls) == 1  # one call: the settlement rode with the reservation
    keys, args = counters.calls[0]
    assert keys == ["{a}|settled", "{a}|now", "{a}|before"]
    assert args[:2] == [1, 7]
    client = redis.client()
    assert (client.get("{a}|settled"), client.get("{a}|now")) == (b"7", b"30")
    assert 55_000 < client.pttl("{a}|settled") <= 60_000


def test_a_reservations_call_restarts_the_settlements_wait(redis, monkeypatch):
    # Settlements made after a call wait their own delay from then: they are
    # not sent alone on the delay the previous ones started.
    monkeypatch.setattr(redis_batch, "SETTLE_DELAY_S", 0.3)
    batcher, counters = batcher_for(redis)
    window = [30, LIMIT, "0.0", expiry_ms(60)]

    async def scenario():
        batcher.add({"{c}|settled": 1}, {})
        await batcher.reserve(["{c}|now", "{c}|before"], window)  # takes it along
        await asyncio.sleep(0.2)
        batcher.add({"{c}|settled": 1}, {})
        await asyncio.sleep(0.15)  # past the first delay, within the second
        await batcher.reserve(["{c}|now", "{c}|before"], window)
        await asyncio.sleep(0.4)

    asyncio.run(scenario())
    assert [len(keys) for keys, _ in counters.calls] == [3, 3]
    assert redis.client().get("{c}|settled") == b"2"


def test_settlements_without_a_reservation_go_alone_in_one_call(redis):
    batcher, counters = batcher_for(redis)

    async def scenario():
        batcher.add({"{b}|one": 5, "{b}|two": -3}, {"{b}|one": expiry_ms(30)})
        batcher.add({"{b}|one": 2, "{b}|zero": 0}, {})
        await asyncio.sleep(4 * redis_batch.SETTLE_DELAY_S)

    asyncio.run(scenario())
    assert len(counters.calls) == 1
    keys, args = counters.calls[0]
    # Summed per counter, nothing for a zero; no reservation in the call.
    assert keys == ["{b}|one", "{b}|two"]
    assert args[0] == 2 and args[-1] == 0
    client = redis.client()
    assert (client.get("{b}|one"), client.get("{b}|two")) == (b"7", b"-3")
    assert 25_000 < client.pttl("{b}|one") <= 30_000
    assert client.pttl("{b}|two") == -1  # no expiry asked for it
