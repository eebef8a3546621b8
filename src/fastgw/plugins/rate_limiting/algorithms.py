"""Counting requests against the limits of one plugin config.

Each algorithm counts on this node (``NodeCounters``) and in Redis (one Lua
script, so a request costs one round trip and concurrent gateways never both
take the last request). Either way ``hit`` answers ``(before, stop, detail)``:

* ``before[i]``: what period ``i`` had left *before* this request, Kong's
  ``remaining`` (the headers show ``before - 1`` once the request passes);
* ``stop``: the index of a period that refused the request, or -1; a refused
  request is not counted in any period, as in Kong;
* ``detail``: what ``reset_after`` needs to tell when the quota comes back.

Periods are listed shortest first; ``stop`` is the longest refusing one.
"""

from __future__ import annotations

import math
from typing import Any

from fastgw import shm
from fastgw._core.ratelimit import (
    PERIOD_NAMES,
    PERIOD_TTL_S,
    CounterStore,
    FixedWindow,
    LocalCounters,
    SharedCounterTable,
    TokenBucket,
    period_start,
    window_start,
)

Outcome = tuple[list[float], int, Any]
# Redis keys of a counter outlive its window by this much, for clock skew
# between gateways.
_EXPIRY_GRACE_MS = 1000
# Errors of this node's counters (a full shared table, a closed one).
STORE_ERRORS = (OverflowError, ValueError)


class NodeCounters:
    """This node's counters: a ``CounterStore`` and this process's token buckets."""

    __slots__ = ("counters", "buckets", "_next_sweep")

    SWEEP_INTERVAL_S = 60.0

    def __init__(self, counters: CounterStore) -> None:
        self.counters = counters
        self.buckets: dict[bytes, TokenBucket] = {}
        self._next_sweep = 0.0

    def bucket(self, key: bytes, rate_per_s: float, burst: float, now: float) -> TokenBucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            if now >= self._next_sweep:
                self._sweep(now)
            bucket = self.buckets[key] = TokenBucket(rate_per_s, burst)
        return bucket

    def _sweep(self, now: float) -> None:
        # A full bucket is the same as a new one: forget it.
        full = [key for key, bucket in self.buckets.items()
                if bucket.remaining(now) >= bucket.burst]
        for key in full:
            del self.buckets[key]
        self._next_sweep = now + self.SWEEP_INTERVAL_S


_node: NodeCounters | None = None
_STATE_KEY = ("rate-limiting", "node-counters")


def node_counters(state: Any) -> NodeCounters:
    """The counters every worker of this node shares (the supervisor's
    ``ratelimit`` shared-memory segment), made once per process. Outside a
    supervisor (unit tests, tools) there is no segment: each config version
    (``state``) then counts in its own process memory."""
    global _node
    if _node is None:
        segment = shm.segment("ratelimit")
        if segment is None:
            counters = state.shared.get(_STATE_KEY)
            if counters is None:
                counters = state.shared[_STATE_KEY] = NodeCounters(LocalCounters())
            return counters
        table = SharedCounterTable(capacity=shm.RATELIMIT_SLOTS, buffer=segment.buf)
        shm.on_close(table.close)
        _node = NodeCounters(table)
    return _node


def _whole_seconds(seconds: float) -> int:
    """A wait as the headers give it: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(seconds - 1e-9))


def _refusing(before: list[float], empty: float) -> int:
    """The longest period whose quota is at or below ``empty``, or -1."""
    stop = -1
    for index, quota in enumerate(before):
        if quota <= empty:
            stop = index
    return stop


class Limits:
    """The limits of one plugin config, as (period code, limit) pairs."""

    SCRIPT = ""  # the Lua script of the algorithm's Redis side

    def __init__(self, periods: list[tuple[int, float]], node: NodeCounters,
                 burst: float | None) -> None:
        self.codes = tuple(code for code, _ in periods)
        self.limits = tuple(float(limit) for _, limit in periods)
        self.names = tuple(PERIOD_NAMES[code] for code in self.codes)
        self.node = node

    def hit(self, key: bytes, now: float) -> Outcome:
        raise NotImplementedError

    def redis_request(self, key: str, now: float) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of the script for the counters of ``key`` at ``now``."""
        raise NotImplementedError

    def redis_outcome(self, reply: list[Any], now: float) -> Outcome:
        raise NotImplementedError

    def reset_after(self, index: int, now: float, key: bytes, detail: Any) -> int:
        """Seconds until period ``index``'s quota comes back (RateLimit-Reset)."""
        raise NotImplementedError


# ---------------------------------------------------------------------------


class FixedLimits(Limits):
    """Kong's windows: calendar seconds, minutes... each with its own count."""

    # KEYS[i]: period i's counter for its current window.
    # ARGV[2i-1]: period i's limit; ARGV[2i]: unix ms when the key may go.
    # Returns the counts before this request, then the refusing period (1-based, 0: none).
    SCRIPT = """
local used, stop = {}, 0
for i = 1, #KEYS do
  used[i] = tonumber(redis.call('GET', KEYS[i]) or 0)
  if used[i] >= tonumber(ARGV[2 * i - 1]) then stop = i end
end
if stop == 0 then
  for i = 1, #KEYS do
    if redis.call('INCR', KEYS[i]) == 1 then
      redis.call('PEXPIREAT', KEYS[i], ARGV[2 * i])
    end
  end
end
used[#KEYS + 1] = stop
return used
"""

    def __init__(self, periods: list[tuple[int, float]], node: NodeCounters,
                 burst: float | None) -> None:
        super().__init__(periods, node, burst)
        self.windows = tuple(FixedWindow(node.counters, name) for name in self.names)
        self._resets = [(-1, 0)] * len(self.codes)  # (whole second, reset_after) per period

    def hit(self, key: bytes, now: float) -> Outcome:
        # Counting first and taking back a refused request keeps the limit
        # exact when workers count the same key at the same moment.
        before: list[float] = []
        stop = -1
        limits = self.limits
        try:
            for window in self.windows:
                quota = limits[len(before)] - window.hit(key, now) + 1
                if quota <= 0:
                    stop = len(before)
                before.append(quota)
        except STORE_ERRORS:
            self._uncount(key, now, len(before))
            raise
        if stop >= 0:
            self._uncount(key, now, len(before))
        return before, stop, None

    def _uncount(self, key: bytes, now: float, windows: int) -> None:
        for window in self.windows[:windows]:
            window.hit(key, now, -1)

    def redis_request(self, key: str, now: float) -> tuple[list[str], list[Any]]:
        keys: list[str] = []
        args: list[Any] = []
        for window, name, limit in zip(self.windows, self.names, self.limits, strict=True):
            start_ms = int(window.start(now) * 1000)
            keys.append(f"{key}:{start_ms}:{name}")
            args.append(repr(limit))
            args.append(int(window.end(now) * 1000) + _EXPIRY_GRACE_MS)
        return keys, args

    def redis_outcome(self, reply: list[Any], now: float) -> Outcome:
        # The reply ends with the refusing period, after one count per period.
        before = [limit - used for limit, used in zip(self.limits, reply, strict=False)]
        return before, int(reply[-1]) - 1, None

    def reset_after(self, index: int, now: float, key: bytes, detail: Any) -> int:
        # PERF: periods start on whole seconds, so the answer holds for the
        # whole second; most requests find it here.
        second = int(now)
        cached_second, reset = self._resets[index]
        if cached_second != second:
            # Kong's arithmetic: the period's nominal length (a month is 30
            # days) minus the whole seconds since its calendar start.
            code = self.codes[index]
            reset = max(1, PERIOD_TTL_S[code] - int(now - period_start(now, code)))
            self._resets[index] = (second, reset)
        return reset


# ---------------------------------------------------------------------------


def sliding_wait(limit: float, previous: float, current: float, elapsed: float,
                 window: float) -> float:
    """Seconds until one more request fits a sliding window, ``elapsed``
    seconds into its current part, if no other request comes."""
    fits_now = previous * (1.0 - elapsed / window) + current < limit
    if fits_now:
        return 0.0
    if current < limit:
        # The previous part's weight falls linearly to 0 at the window's end.
        return window * (1.0 - (limit - current) / previous) - elapsed
    # The current part becomes the previous one, and fades in turn.
    return window + window * (1.0 - limit / current) - elapsed


class SlidingLimits(Limits):
    """Each period as a window sliding with the clock: the previous window's
    count, weighted by how much of it is still inside, plus the current one's."""

    # KEYS[2i-1], KEYS[2i]: period i's current and previous window counters.
    # ARGV[3i-2]: limit; ARGV[3i-1]: weight of the previous window; ARGV[3i]:
    # unix ms when the current window's key may go.
    # Returns each period's current and previous counts before this request,
    # then the refusing period (1-based, 0: none).
    SCRIPT = """
local reply, stop, periods = {}, 0, #KEYS / 2
for i = 1, periods do
  local current = tonumber(redis.call('GET', KEYS[2 * i - 1]) or 0)
  local previous = tonumber(redis.call('GET', KEYS[2 * i]) or 0)
  reply[2 * i - 1], reply[2 * i] = current, previous
  if previous * tonumber(ARGV[3 * i - 1]) + current >= tonumber(ARGV[3 * i - 2]) then
    stop = i
  end
end
if stop == 0 then
  for i = 1, periods do
    if redis.call('INCR', KEYS[2 * i - 1]) == 1 then
      redis.call('PEXPIREAT', KEYS[2 * i - 1], ARGV[3 * i])
    end
  end
end
reply[2 * periods + 1] = stop
return reply
"""

    def __init__(self, periods: list[tuple[int, float]], node: NodeCounters,
                 burst: float | None) -> None:
        super().__init__(periods, node, burst)
        self.windows_s = tuple(float(PERIOD_TTL_S[code]) for code in self.codes)
        self.suffixes = tuple(b"|sliding-" + name.encode() for name in self.names)

    def _window(self, index: int, now: float) -> tuple[float, float]:
        """(start of the current window, weight of the previous one)."""
        window = self.windows_s[index]
        start = window_start(now, window)
        return start, 1.0 - (now - start) / window

    def hit(self, key: bytes, now: float) -> Outcome:
        store = self.node.counters
        before: list[float] = []
        try:
            for index, limit in enumerate(self.limits):
                start, weight = self._window(index, now)
                estimate = store.sliding(key + self.suffixes[index], start,
                                         start + self.windows_s[index], 1, weight)
                before.append(limit - estimate + 1)
        except STORE_ERRORS:
            self._uncount(key, now, len(before))
            raise
        stop = _refusing(before, 0.0)
        if stop >= 0:
            self._uncount(key, now, len(before))
        return before, stop, None

    def _uncount(self, key: bytes, now: float, periods: int) -> None:
        for index in range(periods):
            start, weight = self._window(index, now)
            self.node.counters.sliding(key + self.suffixes[index], start,
                                       start + self.windows_s[index], -1, weight)

    def redis_request(self, key: str, now: float) -> tuple[list[str], list[Any]]:
        keys: list[str] = []
        args: list[Any] = []
        for index, name in enumerate(self.names):
            start, weight = self._window(index, now)
            window_ms = int(self.windows_s[index] * 1000)
            start_ms = int(start * 1000)
            keys.append(f"{key}:{start_ms}:{name}:sliding")
            keys.append(f"{key}:{start_ms - window_ms}:{name}:sliding")
            # The current window's count is the next one's previous count.
            args += (repr(self.limits[index]), repr(weight),
                     start_ms + 2 * window_ms + _EXPIRY_GRACE_MS)
        return keys, args

    def redis_outcome(self, reply: list[Any], now: float) -> Outcome:
        stop = int(reply[-1]) - 1
        before, counts = [], []
        for index, limit in enumerate(self.limits):
            current, previous = int(reply[2 * index]), int(reply[2 * index + 1])
            weight = self._window(index, now)[1]
            before.append(limit - (previous * weight + current))
            counts.append((current + (1 if stop < 0 else 0), previous))
        return before, stop, counts

    def reset_after(self, index: int, now: float, key: bytes, detail: Any) -> int:
        start, _ = self._window(index, now)
        window = self.windows_s[index]
        if detail is not None:
            current, previous = detail[index]
        else:
            counted_key = key + self.suffixes[index]
            store = self.node.counters
            current = store.sliding(counted_key, start, start + window, 0, 0.0)
            previous = store.sliding(counted_key, start, start + window, 0, 1.0) - current
        wait = sliding_wait(self.limits[index], previous, current, now - start, window)
        if wait <= 0.0:
            # Room left: the quota starts coming back when the current part ends.
            wait = start + window - now
        return _whole_seconds(min(wait, 2.0 * window))


# ---------------------------------------------------------------------------


class TokenBucketLimits(Limits):
    """Each period's limit refills continuously (limit / period length per
    second) into a bucket of ``burst`` requests (default: the limit).

    Locally the buckets are this worker's own: a node of N workers lets up to
    N times the rate through. Policy redis shares one bucket per key."""

    # KEYS[i]: period i's bucket, a hash of its tokens and when they were counted.
    # ARGV[1]: unix ms now; ARGV[2i], ARGV[2i+1]: tokens per ms and bucket size.
    # Returns each bucket's tokens before this request (as text: they are
    # fractions), then the refusing period (1-based, 0: none).
    SCRIPT = """
local now = tonumber(ARGV[1])
local tokens, stamps, reply, stop = {}, {}, {}, 0
for i = 1, #KEYS do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local left, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
  if now > at then
    left, at = math.min(burst, left + (now - at) * rate), now
  end
  tokens[i], stamps[i], reply[i] = left, at, tostring(left)
  if left < 1 then stop = i end
end
if stop == 0 then
  for i = 1, #KEYS do
    local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
    local left = tokens[i] - 1
    redis.call('HSET', KEYS[i], 'tokens', tostring(left), 'at', tostring(stamps[i]))
    redis.call('PEXPIRE', KEYS[i], string.format('%d', math.ceil((burst - left) / rate) + 1000))
  end
end
reply[#KEYS + 1] = stop
return reply
"""

    def __init__(self, periods: list[tuple[int, float]], node: NodeCounters,
                 burst: float | None) -> None:
        super().__init__(periods, node, burst)
        self.rates = tuple(limit / PERIOD_TTL_S[code] for code, limit in periods)
        self.sizes = tuple(float(burst) if burst is not None else limit
                           for limit in self.limits)
        self.suffixes = tuple(b"|bucket-" + name.encode() for name in self.names)

    def hit(self, key: bytes, now: float) -> Outcome:
        node = self.node
        buckets = [node.bucket(key + suffix, rate, size, now) for suffix, rate, size
                   in zip(self.suffixes, self.rates, self.sizes, strict=True)]
        before = [bucket.remaining(now) for bucket in buckets]
        stop = _refusing(before, math.nextafter(1.0, 0.0))
        if stop < 0:
            for bucket in buckets:
                bucket.take(now)
        return before, stop, [bucket.remaining(now) for bucket in buckets]

    def redis_request(self, key: str, now: float) -> tuple[list[str], list[Any]]:
        args: list[Any] = [int(now * 1000)]
        for rate, size in zip(self.rates, self.sizes, strict=True):
            args += (repr(rate / 1000.0), repr(size))
        return [f"{key}:{name}:bucket" for name in self.names], args

    def redis_outcome(self, reply: list[Any], now: float) -> Outcome:
        stop = int(reply[-1]) - 1
        before = [float(tokens) for tokens in reply[:-1]]
        after = before if stop >= 0 else [tokens - 1.0 for tokens in before]
        return before, stop, after

    def reset_after(self, index: int, now: float, key: bytes, detail: Any) -> int:
        tokens = detail[index]
        rate = self.rates[index]
        # Empty: until the next request fits; else until the bucket is full.
        missing = 1.0 - tokens if tokens < 1.0 else self.sizes[index] - tokens
        return _whole_seconds(missing / rate)


ALGORITHMS: dict[str, type[Limits]] = {
    "fixed": FixedLimits,
    "sliding": SlidingLimits,
    "token-bucket": TokenBucketLimits,
}
