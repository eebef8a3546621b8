"""A bounded in-memory queue of log entries, drained by one background task,
after Kong 3.x's ``kong.tools.queue``.

``put`` is what a request pays: a deque append and, at most, waking the
sender. It never waits: when ``max_entries`` (or ``max_bytes``) is reached the
oldest entries are dropped, counted, and reported by a warning on the first
drop and then once per ``DROP_WARNING_EVERY`` drops (and at DEBUG level with
the running count at every drop).

The sender waits for a first entry, then up to ``max_coalescing_delay`` for a
batch of ``max_batch_size``, and hands the batch to ``send``. A failed batch
is retried after ``initial_retry_delay``, doubled each time up to
``max_retry_delay``, until ``max_retry_time`` has passed; then it is dropped
(counted as lost). Meanwhile new entries queue up, or are dropped when full:
a slow or dead endpoint costs memory up to the bounds, never request time.

The sender task stops after ``IDLE_EXIT`` seconds without entries (calling
``close``, e.g. to drop a kept-alive connection) and the next ``put`` starts
a new one, so a queue left behind by a config change holds no task.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from fastgw.plugins.http_log.client import DELIVERY_ERRORS

__all__ = ["DROP_WARNING_EVERY", "IDLE_EXIT", "TOTALS", "LogQueue"]

log = logging.getLogger("fastgw.plugins.http_log")

DROP_WARNING_EVERY = 1000
IDLE_EXIT = 60.0

# Process-wide counters over every queue, including queues already gone
# (the admin API can read them): entries queued, sent, dropped because a
# queue was full, and lost after their batch ran out of retries.
TOTALS = {"queued": 0, "sent": 0, "dropped": 0, "lost": 0}


class LogQueue:
    __slots__ = ("__weakref__", "_flushing", "_sending", "_task", "_wakeup", "bytes", "close", "dropped",
                 "entries", "initial_retry_delay", "lost", "max_batch_size", "max_bytes",
                 "max_coalescing_delay", "max_entries", "max_retry_delay", "max_retry_time",
                 "name", "send", "sent")

    def __init__(self, name: str, send: Callable[[list[bytes]], Awaitable[Any]], *,
                 close: Callable[[], None] | None = None, max_batch_size: int = 1,
                 max_coalescing_delay: float = 1.0, max_entries: int = 10000,
                 max_bytes: int | None = None, max_retry_time: float = 60.0,
                 initial_retry_delay: float = 0.01, max_retry_delay: float = 60.0,
                 **_ignored: Any) -> None:
        """``send(batch)`` delivers a batch or raises one of DELIVERY_ERRORS.
        Extra keywords (Kong's ``concurrency_limit``) are accepted and ignored."""
        self.name = name
        self.send = send
        self.close = close
        self.max_batch_size = max_batch_size
        self.max_coalescing_delay = max_coalescing_delay
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_retry_time = max_retry_time
        self.initial_retry_delay = initial_retry_delay
        self.max_retry_delay = max_retry_delay
        self.entries: deque[bytes] = deque()
        self.bytes = 0
        self.sent = 0
        self.dropped = 0
        self.lost = 0
        self._task: asyncio.Task | None = None
        self._wakeup: asyncio.Event | None = None
        self._sending = False
        self._flushing = False

    # -- the request side ------------------------------------------------------

    def put(self, entry: bytes) -> None:
        entries = self.entries
        size = len(entry)
        max_bytes = self.max_bytes
        if max_bytes is not None and size > max_bytes:
            self._count_drops(1)  # could never fit
            return
        dropped = 0
        if len(entries) >= self.max_entries:
            self.bytes -= len(entries.popleft())
            dropped = 1
        if max_bytes is not None:
            while self.bytes + size > max_bytes:
                self.bytes -= len(entries.popleft())
                dropped += 1
        if dropped:
            self._count_drops(dropped)
        entries.append(entry)
        self.bytes += size
        TOTALS["queued"] += 1
        task = self._task
        if task is None or task.done():
            self._start_sender()
        elif len(entries) == 1 or len(entries) >= self.max_batch_size:
            # The sender waits for a first entry, or for a full batch.
            self._wake_sender()

    def _wake_sender(self) -> None:
        # Only called while the sender task runs; _start_sender made the event with it.
        assert self._wakeup is not None
        self._wakeup.set()

    def _count_drops(self, count: int) -> None:
        before = self.dropped
        self.dropped = before + count
        TOTALS["dropped"] += count
        log.debug("http-log: queue %s: %d entries dropped so far", self.name, self.dropped)
        if before == 0 or before // DROP_WARNING_EVERY != self.dropped // DROP_WARNING_EVERY:
            log.warning("http-log: queue %s is full (max_entries=%d, max_bytes=%s): "
                        "%d entries dropped so far", self.name, self.max_entries,
                        self.max_bytes, self.dropped)

    def _start_sender(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): the next put inside one starts it
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._run(self._wakeup))
        self._task.add_done_callback(self._sender_stopped)

    # -- the sender --------------------------------------------------------------

    async def _run(self, wakeup: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        entries = self.entries
        window_start = loop.time()
        try:
            while True:
                if not entries:
                    if not await _wait(wakeup, IDLE_EXIT) and not entries:
                        return
                    window_start = loop.time()
                if self.max_batch_size > 1:
                    deadline = window_start + self.max_coalescing_delay
                    while (len(entries) < self.max_batch_size and not self._flushing
                           and await _wait(wakeup, deadline - loop.time())):
                        pass
                taken_at = loop.time()
                count = min(len(entries), self.max_batch_size)
                batch = [entries.popleft() for _ in range(count)]
                self.bytes -= sum(map(len, batch))
                self._sending = True
                try:
                    await self._deliver(batch)
                finally:
                    self._sending = False
                # What is left waited at least since the batch was taken.
                window_start = taken_at
        finally:
            if self.close is not None:
                self.close()

    async def _deliver(self, batch: list[bytes]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        delay = self.initial_retry_delay
        attempts = 0
        while True:
            attempts += 1
            try:
                await self.send(batch)
            except DELIVERY_ERRORS as exc:
                error = str(exc) or type(exc).__name__
            else:
                self.sent += len(batch)
                TOTALS["sent"] += len(batch)
                return
            if loop.time() - started + delay > self.max_retry_time:
                self.lost += len(batch)
                TOTALS["lost"] += len(batch)
                log.error("http-log: queue %s: could not send %d entries after %d attempts, "
                          "giving up: %s", self.name, len(batch), attempts, error)
                return
            log.debug("http-log: queue %s: retrying in %.3fs: %s", self.name, delay, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_retry_delay)

    def _sender_stopped(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            # A bug, not a delivery failure; the next put starts a new sender.
            log.error("http-log: queue %s: sender stopped", self.name,
                      exc_info=task.exception())

    # -- inspection and shutdown --------------------------------------------------

    @property
    def idle(self) -> bool:
        return not self.entries and not self._sending

    async def flush(self, timeout: float) -> bool:
        """Send every queued entry now, without waiting for batches to fill;
        False if ``timeout`` seconds passed before the queue was idle."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._flushing = True
        try:
            if self.entries:
                if self._task is None or self._task.done():
                    self._start_sender()
                else:
                    self._wake_sender()
            while not self.idle:
                if loop.time() >= deadline:
                    return False
                await asyncio.sleep(0.01)
            return True
        finally:
            self._flushing = False

    def stats(self) -> dict[str, Any]:
        return {"name": self.name, "queued": len(self.entries), "bytes": self.bytes,
                "sent": self.sent, "dropped": self.dropped, "lost": self.lost}


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` (cleared first) at most ``timeout`` seconds;
    whether it was set."""
    if timeout <= 0:
        return False
    event.clear()
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
