"""The Redis side of ai-rate-limiting-advanced, one round trip per turn of
the event loop rather than per call.

Reservations made in the same turn go to Redis together, in one script
call that decides each of them in turn, inside Redis: they stay atomic (no
other gateway comes between two checks and their increments) and a call
costs a share of a round trip instead of a whole one. Settlements are summed
per counter and ride with the next reservations (applied before them), or,
after a few milliseconds without any, go in a call of the same script with
no reservation.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastgw.plugins.rate_limiting.redis_store import RedisCounters, RedisUnavailable
from fastgw.shared_redis.client import key_slot

# KEYS: first the counters settlements change, then per reservation and
# window the current and previous counters. ARGV[1]: how many settlements;
# then for each its delta and when its counter may go (unix ms, 0: leave
# it). Then how many reservations, and for each its window count n, and per
# window the amount, its limit, the previous window's weight and when the
# current counter may go. Settlements are applied first; returns per
# reservation: admitted (0/1), then the usage before it in each window.
BATCH_RESERVE_SCRIPT = """
local settlements = tonumber(ARGV[1])
for d = 1, settlements do
  redis.call('INCRBY', KEYS[d], ARGV[2 * d])
  if ARGV[2 * d + 1] ~= '0' then
    redis.call('PEXPIREAT', KEYS[d], ARGV[2 * d + 1])
  end
end
local a = 2 * settlements + 2
local reply, k = {}, settlements
for r = 1, tonumber(ARGV[a]) do
  local windows = tonumber(ARGV[a + 1])
  a = a + 1
  local admitted, used = 1, {}
  for i = 1, windows do
    local current = tonumber(redis.call('GET', KEYS[k + 2 * i - 1]) or 0)
    local previous = tonumber(redis.call('GET', KEYS[k + 2 * i]) or 0)
    used[i] = previous * tonumber(ARGV[a + 4 * i - 1]) + current
    if used[i] + tonumber(ARGV[a + 4 * i - 3]) > tonumber(ARGV[a + 4 * i - 2]) then
      admitted = 0
    end
  end
  if admitted == 1 then
    for i = 1, windows do
      redis.call('INCRBY', KEYS[k + 2 * i - 1], ARGV[a + 4 * i - 3])
      redis.call('PEXPIREAT', KEYS[k + 2 * i - 1], ARGV[a + 4 * i])
    end
  end
  reply[#reply + 1] = admitted
  for i = 1, windows do
    reply[#reply + 1] = tostring(used[i])
  end
  k, a = k + 2 * windows, a + 4 * windows
end
return reply
"""
# Settlements wait this long (seconds) for a reservation to ride with
# before they go to Redis on their own: under load one always comes.
SETTLE_DELAY_S = 0.005

Reservation = tuple[list[str], list[Any], "asyncio.Future[list[Any]]"]


class RedisBatcher:
    __slots__ = ("counters", "pending", "deltas", "expires", "flushing", "settle_timer",
                 "tasks")

    def __init__(self, counters: RedisCounters) -> None:
        self.counters = counters
        self.pending: list[Reservation] = []
        self.deltas: dict[str, int] = {}
        self.expires: dict[str, int] = {}
        self.flushing = False
        self.settle_timer: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task] = set()

    def reserve(self, keys: list[str], window_args: list[Any]) -> asyncio.Future[list[Any]]:
        """``keys``: each window's current and previous counters; ``window_args``:
        each window's amount, limit, weight and expiry. Resolves to [admitted,
        used before in each window]."""
        future = asyncio.get_running_loop().create_future()
        self.pending.append((keys, window_args, future))
        self._schedule()
        return future

    def add(self, deltas: dict[str, int], expires: dict[str, int]) -> None:
        """Add each delta to its counter, with the turn's other settlements;
        ``expires``: when each counter may go (unix ms)."""
        for key, delta in deltas.items():
            self.deltas[key] = self.deltas.get(key, 0) + delta
        for key, at in expires.items():
            self.expires[key] = max(self.expires.get(key, 0), at)
        if self.settle_timer is None:
            self.settle_timer = asyncio.get_running_loop().call_later(SETTLE_DELAY_S,
                                                                      self._settle_alone)

    def _schedule(self) -> None:
        if not self.flushing:
            self.flushing = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _take_deltas(self) -> tuple[dict[str, int], dict[str, int]]:
        deltas, self.deltas = {k: v for k, v in self.deltas.items() if v}, {}
        expires, self.expires = self.expires, {}
        return deltas, expires

    def _flush(self) -> None:
        # The turn's reservations go in one call, the settlements waiting with them.
        self.flushing = False
        pending, self.pending = self.pending, []
        if pending:
            self._send(pending)

    def _settle_alone(self) -> None:
        self.settle_timer = None
        self._send([])

    def _send(self, pending: list[Reservation]) -> None:
        if self.settle_timer is not None:
            # The settlements ride now: the timer waits for the next ones.
            # PERF: without this, under load it went off every few ms and
            # sent the settlements of the moment in a call of their own.
            self.settle_timer.cancel()
            self.settle_timer = None
        deltas, expires = self._take_deltas()
        if not pending and not deltas:
            return
        if not self.counters.cluster:
            self._spawn(self._send_reservations(pending, deltas, expires))
            return
        # A Cluster runs a script on the node of its keys' slot: one call per
        # slot (a call's keys share one, see Window.redis_key), each taking
        # the settlements of its slot.
        by_slot: dict[int, tuple[list[Reservation], dict[str, int]]] = {}
        for reservation in pending:
            by_slot.setdefault(key_slot(reservation[0][0]), ([], {}))[0].append(reservation)
        for key, delta in deltas.items():
            by_slot.setdefault(key_slot(key), ([], {}))[1][key] = delta
        for reservations, slot_deltas in by_slot.values():
            self._spawn(self._send_reservations(reservations, slot_deltas, expires))

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send_reservations(self, pending: list[Reservation], deltas: dict[str, int],
                                 expires: dict[str, int]) -> None:
        keys: list[str] = list(deltas)
        args: list[Any] = [len(deltas)]
        for key, delta in deltas.items():
            args += (delta, expires.get(key, 0))
        args.append(len(pending))
        for window_keys, window_args, _ in pending:
            keys += window_keys
            args += (len(window_keys) // 2, *window_args)
        try:
            reply = await self.counters.run(BATCH_RESERVE_SCRIPT, keys, args)
        except RedisUnavailable as exc:
            for *_, future in pending:
                if not future.done():
                    future.set_exception(RedisUnavailable(str(exc)))
            return
        position = 0
        for window_keys, _, future in pending:
            width = 1 + len(window_keys) // 2
            if not future.done():  # its call may have gone meanwhile
                future.set_result(reply[position:position + width])
            position += width
