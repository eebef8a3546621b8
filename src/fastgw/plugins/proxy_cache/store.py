"""Where proxy-cache keeps responses, and how they are purged.

``MemoryStore``: an LRU bounded in bytes, one per plugin instance per worker
process. Workers do not share it: each fills its own, and a purge must reach
every worker (the admin API sends each one a control message that calls
``purge``). A store outlives config reloads that keep its plugin, as Kong's
shared dictionary does.

``RedisStore``: entries as Redis strings with a TTL, shared by every worker
and gateway instance. Every command is bounded by the plugin's ``timeout``;
after a failure the store reports itself unavailable for ``RETRY_AFTER_S``
without trying, so an outage costs each request nothing and the plugin
answers Bypass until Redis is back.

Purge functions: ``purge(key)`` empties (or drops one key from) every memory
store of this process; ``await purge_async(key)`` does that and the same in
every Redis a live plugin instance uses. Both return how many entries went.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, cast

import orjson
from redis.exceptions import RedisClusterException, RedisError

from fastgw.config.model import RedisSettings
from fastgw.shared_redis.client import Client, endpoint, timeouts

__all__ = ["CACHE_VERSION", "REDIS_PREFIX", "RETRY_AFTER_S", "CacheEntry", "MemoryStore",
           "RedisStore", "StoreUnavailable", "memory_store", "purge", "purge_async"]

log = logging.getLogger("fastgw.plugins.proxy_cache")

# Stored with each entry; an entry written in another format is purged on read.
CACHE_VERSION = 1
REDIS_PREFIX = "fastgw:proxy-cache:"
# After a Redis failure, skip Redis this long (seconds) before trying again.
RETRY_AFTER_S = 1.0
# Approximate bytes of Python objects around an entry (the entry, its header
# dict, the LRU node), so that a flood of tiny entries still meets the bound.
ENTRY_OVERHEAD = 400
_SCAN_BATCH = 500


class StoreUnavailable(Exception):
    """The store cannot answer now (Redis down or too slow)."""


class CacheEntry:
    """A stored response. ``headers`` are what a hit answers with (no
    hop-by-hop or diagnostic headers); ``ttl`` is its freshness lifetime in
    seconds, counted from ``timestamp`` (epoch seconds)."""

    __slots__ = ("status", "headers", "body", "timestamp", "ttl", "wire_headers")

    def __init__(self, status: int, headers: dict[str, str], body: bytes, timestamp: float,
                 ttl: float) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.timestamp = timestamp
        self.ttl = ttl
        # The stored headers as a fast hit sends them ([name, value, ...]
        # bytes), encoded on the first one (see ProxyCacheHandler.fast_hit).
        self.wire_headers: list[bytes] | None = None

    def size(self, key: str) -> int:
        header_bytes = sum(len(name) + len(value) for name, value in self.headers.items())
        return len(self.body) + header_bytes + len(key) + ENTRY_OVERHEAD

    def encode(self) -> bytes:
        """One line of JSON metadata, a newline, the body (orjson escapes every
        newline inside JSON strings, so the first one ends the metadata)."""
        meta = {"version": CACHE_VERSION, "status": self.status, "headers": self.headers,
                "timestamp": self.timestamp, "ttl": self.ttl}
        return orjson.dumps(meta) + b"\n" + self.body

    @classmethod
    def decode(cls, data: bytes) -> CacheEntry | None:
        """The entry, or None for data in another format or version."""
        head, newline, body = data.partition(b"\n")
        if not newline:
            return None
        try:
            meta = orjson.loads(head)
            if meta.get("version") != CACHE_VERSION:
                return None
            return cls(int(meta["status"]), dict(meta["headers"]), body,
                       float(meta["timestamp"]), float(meta["ttl"]))
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            return None


class MemoryStore:
    """Entries of one worker process, least recently used evicted first once
    ``max_bytes`` (or ``max_entries``, when set) would be exceeded. An entry
    larger than the bound is not kept at all."""

    __slots__ = ("max_bytes", "max_entries", "bytes", "_entries", "__weakref__")

    def __init__(self, max_bytes: int, max_entries: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.bytes = 0
        # key -> (entry, size, expires_at or 0 for "until evicted")
        self._entries: OrderedDict[str, tuple[CacheEntry, int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, now: float) -> CacheEntry | None:
        item = self._entries.get(key)
        if item is None:
            return None
        expires_at = item[2]
        if expires_at and now > expires_at:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return item[0]

    def set(self, key: str, entry: CacheEntry, storage_ttl: float, now: float) -> bool:
        """Keep ``entry`` for ``storage_ttl`` seconds (0: until evicted)."""
        size = entry.size(key)
        if key in self._entries:
            self._drop(key)
        if size > self.max_bytes:
            return False
        self._entries[key] = (entry, size, now + storage_ttl if storage_ttl else 0.0)
        self.bytes += size
        self._evict()
        return True

    def delete(self, key: str) -> bool:
        if key not in self._entries:
            return False
        self._drop(key)
        return True

    def clear(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        self.bytes = 0
        return count

    def resize(self, max_bytes: int, max_entries: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._evict()

    def _drop(self, key: str) -> None:
        self.bytes -= self._entries.pop(key)[1]

    def _evict(self) -> None:
        entries = self._entries
        most = self.max_entries
        while entries and (self.bytes > self.max_bytes or
                           (most is not None and len(entries) > most)):
            self.bytes -= entries.popitem(last=False)[1][1]


# Every memory store of this process, by the plugin instance that owns it;
# a store goes when no handler uses it any more.
_MEMORY_STORES: weakref.WeakValueDictionary[Hashable, MemoryStore] = (
    weakref.WeakValueDictionary())


def memory_store(owner: Hashable, max_bytes: int, max_entries: int | None = None) -> MemoryStore:
    """The memory store of a plugin instance (``owner`` identifies it across
    config versions), created on first use and resized to its bounds."""
    store = _MEMORY_STORES.get(owner)
    if store is None:
        store = _MEMORY_STORES[owner] = MemoryStore(max_bytes, max_entries)
    elif store.max_bytes != max_bytes or store.max_entries != max_entries:
        store.resize(max_bytes, max_entries)
    return store


class RedisStore:
    """Entries in Redis under ``REDIS_PREFIX`` + key, with a pooled asyncio
    client. Methods raise ``StoreUnavailable`` instead of Redis errors."""

    __slots__ = ("identity", "client", "timeout", "down_until", "name", "prefix", "__weakref__")

    def __init__(self, identity: Hashable, client: Client, timeout: float,
                 name: str = "proxy-cache", prefix: str = REDIS_PREFIX) -> None:
        self.identity = identity  # the Redis it talks to, for deduplication
        self.client = client
        self.timeout = timeout
        self.down_until = 0.0
        self.name = name  # the plugin, for the log
        self.prefix = prefix  # its keys in Redis
        _REDIS_STORES.add(self)

    @classmethod
    def from_config(cls, redis_config: dict[str, Any], gateway: RedisSettings | None,
                    name: str = "proxy-cache", prefix: str = REDIS_PREFIX) -> RedisStore:
        """A store for the plugin's ``redis`` record, or for the gateway's
        ``_gateway.redis`` when the record names no Redis."""
        where = endpoint(redis_config, gateway, name)
        connect_s, command_s = timeouts(redis_config)
        # A blocking pool: past its size a command waits for a connection
        # (within the timeout) rather than failing as a Bypass at once.
        client = where.connect(connect_s, command_s, blocking=True)
        return cls(where.identity, client, max(connect_s, command_s), name, prefix)

    async def close(self) -> None:
        """Close the client and its pooled connections."""
        await self.client.aclose()

    @contextlib.asynccontextmanager
    async def _command(self):
        """Bound a command by the timeout; a failure makes the store
        unavailable for a while."""
        if self.down_until and time.monotonic() < self.down_until:
            raise StoreUnavailable("redis unavailable (recent failure)")
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
            if not self.down_until:
                log.error("%s: redis failed (%s); answering Bypass for %ss at a time until "
                          "it is back", self.name, exc or type(exc).__name__, RETRY_AFTER_S)
            self.down_until = time.monotonic() + RETRY_AFTER_S
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc
        if self.down_until:
            log.warning("%s: redis is back", self.name)
            self.down_until = 0.0

    async def get(self, key: str) -> CacheEntry | None:
        """The entry, or None when absent (an entry of another format is
        purged, as Kong does on a version mismatch)."""
        async with self._command():
            data = await self.client.get(self.prefix + key)
        if data is None:
            return None
        # The client is made without decode_responses: values come back as bytes.
        entry = CacheEntry.decode(cast(bytes, data))
        if entry is None:
            log.info("%s: cache format mismatch, purging %s", self.name, key)
            await self.delete(key)
        return entry

    async def set(self, key: str, entry: CacheEntry, storage_ttl: float) -> None:
        """Store for ``storage_ttl`` seconds (0: no expiry)."""
        async with self._command():
            await self.client.set(self.prefix + key, entry.encode(),
                                  px=int(storage_ttl * 1000) or None)

    async def delete(self, key: str) -> int:
        async with self._command():
            return int(await self.client.delete(self.prefix + key))

    async def clear(self) -> int:
        """Delete every entry of this store's plugin in this Redis (other keys stay)."""
        removed = 0
        async with self._command():
            batch: list[bytes] = []
            async for name in self.client.scan_iter(match=self.prefix + "*",
                                                    count=_SCAN_BATCH):
                batch.append(name)
                if len(batch) >= _SCAN_BATCH:
                    removed += await self.client.unlink(*batch)
                    batch = []
            if batch:
                removed += await self.client.unlink(*batch)
        return int(removed)


def shared_redis_store(name: str, redis_config: dict[str, Any], state: Any,
                       prefix: str = REDIS_PREFIX) -> RedisStore | None:
    """The Redis store of plugin ``name`` for its ``redis`` record: one client
    (and pool) per Redis per config version; None (logged) when the record
    names no Redis and the gateway has none."""
    try:
        where = endpoint(redis_config, state.redis, name)
    except ValueError as exc:
        log.error("%s; every request is answered as a Bypass", exc)
        return None
    shared_key = (name, "redis", prefix, where, timeouts(redis_config))
    store = state.shared.get(shared_key)
    if store is None:
        store = state.shared[shared_key] = RedisStore.from_config(
            redis_config, state.redis, name, prefix)
    return store


# Every Redis store a live plugin instance uses, for purge_async.
_REDIS_STORES: weakref.WeakSet[RedisStore] = weakref.WeakSet()


def purge(key: str | None = None) -> int:
    """Remove ``key`` (None: every entry) from every memory store of this
    process; returns how many entries were removed."""
    stores = list(_MEMORY_STORES.values())
    if key is None:
        return sum(store.clear() for store in stores)
    return sum(store.delete(key) for store in stores)


async def purge_async(key: str | None = None) -> int:
    """``purge(key)``, then the same in every Redis the plugin uses (each
    Redis once, however many plugin instances use it). A Redis that cannot
    be reached is logged and skipped. Returns how many entries were removed."""
    removed = purge(key)
    seen: set[Hashable] = set()
    for store in list(_REDIS_STORES):
        if store.identity in seen:
            continue
        seen.add(store.identity)
        try:
            removed += await (store.clear() if key is None else store.delete(key))
        except StoreUnavailable as exc:
            log.error("proxy-cache: purge could not reach redis: %s", exc)
    return removed
