"""Request coalescing: one request per cache key goes upstream at a time.

The first request that misses a key leads a ``Flight``; identical requests
arriving while it is upstream wait for it and are answered from the entry it
stores. If the leader's response cannot be stored (not cacheable, upstream
failure, client gone), the waiters are released with None and go upstream
themselves. A flight older than its bound (the upstream read timeout) no
longer collects waiters: the next request leads a new one.

Flights live in the worker process (``FLIGHTS``), so coalescing happens per
worker: with N workers, up to N identical requests may go upstream at once.
"""

from __future__ import annotations

import asyncio

from fastgw.plugins.proxy_cache.store import CacheEntry

__all__ = ["FLIGHTS", "Flight", "Flights"]


class Flight:
    """One leader's trip upstream for ``key``, and whoever waits for it."""

    __slots__ = ("key", "started", "bound", "finished", "waiters", "_future", "_table")

    def __init__(self, table: Flights, key: str, started: float, bound: float) -> None:
        self._table = table
        self.key = key
        self.started = started  # time.monotonic() when the leader went
        self.bound = bound      # seconds after which waiting is pointless
        self.finished = False
        self.waiters = 0
        # Created by the first waiter, so a leader needs no event loop.
        self._future: asyncio.Future[CacheEntry | None] | None = None

    def expired(self, now: float) -> bool:
        return now - self.started >= self.bound

    async def wait(self, now: float) -> CacheEntry | None:
        """The leader's entry, or None: released, or the bound passed."""
        if self.finished:
            return None
        future = self._future
        if future is None:
            future = self._future = asyncio.get_running_loop().create_future()
        self.waiters += 1
        try:
            async with asyncio.timeout(max(self.bound - (now - self.started), 0.0)):
                # shield: one waiter's timeout must not cancel the others' future.
                return await asyncio.shield(future)
        except TimeoutError:
            # The leader is lost (its client went away, say): nobody should
            # join this flight any more.
            self._table.forget(self)
            return None
        finally:
            self.waiters -= 1

    def finish(self, entry: CacheEntry | None) -> None:
        """Answer the waiters with ``entry`` (None: go upstream yourselves)."""
        if self.finished:
            return
        self.finished = True
        self._table.forget(self)
        future = self._future
        if future is not None and not future.done():
            future.set_result(entry)


class Flights:
    """The flights of one process, by cache key."""

    __slots__ = ("_by_key",)

    def __init__(self) -> None:
        self._by_key: dict[str, Flight] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def join(self, key: str, now: float, bound: float) -> tuple[Flight, bool]:
        """The flight for ``key`` and whether the caller leads it (True: go
        upstream and ``finish`` it; False: ``wait`` for it)."""
        flight = self._by_key.get(key)
        if flight is not None and not flight.expired(now):
            return flight, False
        flight = self._by_key[key] = Flight(self, key, now, bound)
        return flight, True

    def forget(self, flight: Flight) -> None:
        if self._by_key.get(flight.key) is flight:
            del self._by_key[flight.key]

    def clear(self) -> None:
        """Release every waiter (they go upstream) and forget every flight."""
        for flight in list(self._by_key.values()):
            flight.finish(None)
        self._by_key.clear()


FLIGHTS = Flights()
