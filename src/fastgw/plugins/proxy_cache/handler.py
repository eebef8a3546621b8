"""proxy-cache: serve stored responses, store cacheable ones (Kong 3.x).

Per request, ``access`` computes the cache key (method, host, path, the
query normalised and limited to ``vary_query_params``, the ``vary_headers``,
and the consumer and route ids, with the compiled ``_core.cachekey``) and
looks it up:

* Hit: answered at once with ``ctx.exit`` from the entry, plus ``Age``,
  ``X-Cache-Status: Hit`` and ``X-Cache-Key``. With the memory strategy this
  path is synchronous: no task, no await.
* Miss (absent) or Refresh (stale): the request goes upstream; then
  ``header_filter`` decides whether the response is cacheable (status,
  content type, and with ``cache_control`` the Cache-Control rules),
  ``body_filter`` collects the body (passing every chunk on unchanged) and
  stores the entry at its end.
* Bypass: the request or its response is not cacheable, or Redis failed.

Coalescing (not in Kong): while a Miss or Refresh is upstream, identical
requests in the same worker wait for it and are answered from its entry
(see ``coalescing.py``); if it cannot be stored they go upstream themselves.

Known limits, as in Kong: the key does not cover a request body (caching
POST is for bodies the path and query identify); a response's ``Vary`` is
not honoured (use ``vary_headers``); repeated response headers are stored
joined with ", ". A cached HEAD answer has an empty body and
``Content-Length: 0``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Hashable
from typing import Any

from fastgw._core.cachekey import cache_key, vary_names
from fastgw._core.gateway import FastAnswer
from fastgw.plugins.base import FRAMING_HEADERS, Plugin
from fastgw.plugins.context import HeaderList, RequestContext, ResponseView
from fastgw.plugins.fast import FastDecision, FastRequest
from fastgw.plugins.proxy_cache.coalescing import FLIGHTS, Flight
from fastgw.plugins.proxy_cache.directives import (
    media_type_matches,
    number,
    parse_directives,
    parse_media_type,
    resource_ttl,
)
from fastgw.plugins.proxy_cache.store import (
    CacheEntry,
    MemoryStore,
    RedisStore,
    StoreUnavailable,
    memory_store,
    purge,
    purge_async,
    shared_redis_store,
)
from fastgw.plugins.state import ConfigState

__all__ = ["HANDLER", "ProxyCacheHandler"]

log = logging.getLogger("fastgw.plugins.proxy_cache")

MISS, HIT, REFRESH, BYPASS = "Miss", "Hit", "Refresh", "Bypass"
HIT_BYTES = HIT.encode()

# Not stored: hop-by-hop headers (RFC 9110 7.6.1; Content-Length is set again
# on a hit), and the diagnostic headers, which describe one answer.
_NOT_STORED = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailers", "transfer-encoding", "upgrade", "content-length",
    "age", "x-cache-status", "x-cache-key",
})
# Statuses and methods whose responses have no body, so no body_filter end.
_BODYLESS_STATUSES = frozenset({204, 304})
# Largest body a Redis entry takes (a memory entry is bounded by max_bytes).
REDIS_MAX_ENTRY_BYTES = 32 * 1024 * 1024
_DEFAULT_READ_TIMEOUT_MS = 60000
_NO_HEADERS: dict[bytes, list[bytes]] = {}
_NO_VARY_VALUES: dict[bytes, bytes] = {}
_NO_DIRECTIVES: dict[str, Any] = {}
# Memoised content-type verdicts per handler: responses repeat a few values.
_MEDIA_TYPE_MEMO_SIZE = 64


class _Pending:
    """A request that went upstream (or was bypassed): its cache status and,
    while its response may be stored, what is being collected."""

    __slots__ = ("key", "status", "flight", "authorized", "collecting", "chunks", "size",
                 "headers", "ttl")

    def __init__(self, key: str | None, status: str, flight: Flight | None,
                 authorized: bool) -> None:
        self.key = key
        self.status = status
        self.flight = flight        # set when this request leads a flight
        self.authorized = authorized  # sent Authorization (matters with cache_control)
        self.collecting = False
        self.chunks: list[bytes] = []
        self.size = 0
        self.headers: dict[str, str] = {}
        self.ttl = 0.0


def _store_owner(scope: Any) -> Hashable:
    """What identifies a plugin instance across config versions."""
    if scope is None:
        return ("proxy-cache",)
    if scope.id:
        return ("proxy-cache", scope.id)
    return ("proxy-cache", scope.service, scope.route, scope.consumer, scope.instance_name)


def _stored_headers(headers: HeaderList) -> dict[str, str]:
    kept: dict[str, str] = {}
    for name, value in headers.pairs():
        lower = name.lower()
        # As Kong: rate-limiting counters describe the request that got them.
        if lower in _NOT_STORED or "ratelimit-remaining" in lower:
            continue
        kept[name] = f"{kept[name]}, {value}" if name in kept else value
    return kept



class ProxyCacheHandler(Plugin):
    name = "proxy-cache"
    PRIORITY = 100

    __slots__ = ("methods", "codes", "content_types", "cache_ttl", "storage_ttl",
                 "cache_control", "ignore_uri_case", "vary_query_params", "vary_headers",
                 "read_headers", "send_age", "send_status", "send_key", "all_diagnostics",
                 "memory", "redis", "max_entry_bytes", "_state_key", "_media_verdicts",
                 "_background")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.methods = frozenset(config["request_method"])
        self.codes = frozenset(config["response_code"])
        # The schema has already rejected the values that do not parse.
        self.content_types = tuple(parsed for value in config["content_type"]
                                   if (parsed := parse_media_type(value)) is not None)
        self.cache_ttl = config["cache_ttl"]
        self.storage_ttl = config["storage_ttl"]
        self.cache_control = config["cache_control"]
        self.ignore_uri_case = config["ignore_uri_case"]
        # Query names are case-sensitive, header names are not.
        self.vary_query_params = frozenset(
            vary_names(config["vary_query_params"] or (), lowercase=False)) or None
        self.vary_headers = vary_names(config["vary_headers"] or ())
        # Request headers access reads: the vary ones, and what cache_control needs.
        self.read_headers = frozenset(self.vary_headers).union(
            (b"cache-control", b"authorization") if self.cache_control else ())
        diagnostics = config["response_headers"]
        self.send_age = diagnostics["age"]
        self.send_status = diagnostics["X-Cache-Status"]
        self.send_key = diagnostics["X-Cache-Key"]
        self.all_diagnostics = self.send_age and self.send_status and self.send_key
        self.memory: MemoryStore | None = None
        self.redis: RedisStore | None = None
        if config["strategy"] == "memory":
            max_bytes = config["memory"]["max_bytes"]
            self.memory = memory_store(_store_owner(scope), max_bytes)
            self.max_entry_bytes = max_bytes
        else:
            self.redis = shared_redis_store("proxy-cache", config["redis"], state)
            self.max_entry_bytes = REDIS_MAX_ENTRY_BYTES
        # Per-request state lives in ctx.shared under this instance's own key.
        self._state_key = object()
        self._media_verdicts: dict[str, bool] = {}
        self._background: set[asyncio.Task] = set()

    @classmethod
    async def purge(cls, key: str | None, redis: bool) -> int | None:
        """This worker's memory entries (and Redis's, when asked: one worker does it)."""
        return await purge_async(key) if redis else purge(key)

    # -- the compiled core's fast path -------------------------------------------

    def fast_decision(self, route, service) -> FastDecision | None:
        """A lookup the core makes before any context exists: a hit is
        answered without one (PERF: about 2 us instead of the runner's ~10
        us). Anything else (miss, Cache-Control, debugging) needs the
        plugin's access phase."""
        if self.memory is None or not self.all_diagnostics:
            return None
        scope = (route.id or route.name).encode()
        return FastDecision(lambda request: self.fast_hit(scope, request))

    def fast_hit(self, scope: bytes, request: FastRequest) -> FastAnswer | None:
        method, host, url, headers = request.method, request.host, request.url, request.headers
        if method.decode("latin-1") not in self.methods:
            return None
        if request.consumer is not None:
            # As key_of: a consumer's answers are cached apart.
            scope = f"{request.consumer.id}:".encode() + scope
        found = self._find_headers(headers) if self.read_headers else _NO_HEADERS
        if found.get(b"cache-control") or b"authorization" in found:
            return None
        for index in range(0, len(headers), 2):
            if headers[index].lower() == b"kong-debug":
                return None
        path, _, query = url.partition(b"?")
        key = self.key_from(method, host or b"", path, query, found, scope)
        memory = self.memory
        assert memory is not None  # fast_access offers this path only with the memory strategy
        now = time.time()
        entry = memory.get(key, now)
        if entry is None or now - entry.timestamp > self.cache_ttl:
            return None
        stored = entry.wire_headers
        if stored is None:
            stored = entry.wire_headers = [
                part for name, value in entry.headers.items()
                if name.lower() not in FRAMING_HEADERS
                for part in (name.encode("latin-1"), value.encode("latin-1"))]
        # The order of the runner's answer (_answer): stored, Age, status, key.
        return FastAnswer(entry.status, [
            *stored, b"Age", b"%d" % max(int(now - entry.timestamp), 0),
            b"X-Cache-Status", HIT_BYTES, b"X-Cache-Key", key.encode()], entry.body)

    # -- access ---------------------------------------------------------------

    def access(self, ctx: RequestContext) -> Awaitable[None] | None:
        request = ctx.request
        if request.method not in self.methods or (self.memory is None and self.redis is None):
            self._pend(ctx, None, BYPASS)
            return None
        # PERF: one pass over the request headers finds all the plugin reads.
        found = self._find_headers(request.headers.items) if self.read_headers else _NO_HEADERS
        directives = None
        authorized = False
        if self.cache_control:
            values = found.get(b"cache-control")
            directives = (parse_directives([value.decode("latin-1") for value in values])
                          if values else _NO_DIRECTIVES)
            # NOTE: no-cache asks for revalidation, which this cache does not
            # do: like Kong, it goes upstream without storing.
            if "no-store" in directives or "no-cache" in directives:
                self._pend(ctx, None, BYPASS)
                return None
            authorized = b"authorization" in found
        key = self.key_of(ctx, found)
        if self.redis is not None:
            return self._access_redis(ctx, key, directives, authorized)
        memory = self.memory
        assert memory is not None  # one of the two stores exists past the check above
        now = time.time()
        return self._serve(ctx, key, memory.get(key, now), directives, authorized, now)

    def key_of(self, ctx: RequestContext, found: dict[bytes, list[bytes]]) -> str:
        """The request's cache key; ``found`` holds (at least) the values of
        the vary headers the request carries, by lower-case name."""
        request = ctx.request
        route = ctx.route
        # Kong's prefix: consumer and route ids (a declarative route may lack an id).
        scope = route.id or route.name
        if ctx.consumer is not None:
            scope = f"{ctx.consumer.id}:{scope}"
        return self.key_from(request.method.encode("latin-1"),
                             (request.host or "").encode("latin-1"),
                             request.raw_path.encode("latin-1"),
                             request.raw_query.encode("latin-1"), found, scope.encode())

    def key_from(self, method: bytes, host: bytes, path: bytes, query: bytes,
                 found: dict[bytes, list[bytes]], scope: bytes) -> str:
        """The cache key of a request as the wire carried it (the plugin's
        path and the core's fast path both come here). ``ignore_uri_case``
        folds ASCII letters only, as Kong's Lua ``lower`` does."""
        if self.ignore_uri_case:
            path = path.lower()
        vary_values = _NO_VARY_VALUES
        if self.vary_headers:
            # A repeated header counts by its values, whatever their order (as Kong).
            vary_values = {name: values[0] if len(values) == 1 else b",".join(sorted(values))
                           for name in self.vary_headers if (values := found.get(name))}
        return cache_key(method, host, path, query or None, self.vary_query_params,
                         self.vary_headers, vary_values, scope)

    def _find_headers(self, items: list[bytes]) -> dict[bytes, list[bytes]]:
        found: dict[bytes, list[bytes]] = {}
        wanted = self.read_headers
        for index in range(0, len(items), 2):
            name = items[index].lower()
            if name in wanted:
                values = found.get(name)
                if values is None:
                    found[name] = [items[index + 1]]
                else:
                    values.append(items[index + 1])
        return found

    async def _access_redis(self, ctx: RequestContext, key: str,
                            directives: dict[str, Any] | None, authorized: bool) -> None:
        redis = self.redis
        assert redis is not None  # only called with the redis strategy
        try:
            entry = await redis.get(key)
        except StoreUnavailable:
            self._pend(ctx, key, BYPASS)
            return
        waiting = self._serve(ctx, key, entry, directives, authorized, time.time())
        if waiting is not None:
            await waiting

    def _serve(self, ctx: RequestContext, key: str, entry: CacheEntry | None,
               directives: dict[str, Any] | None, authorized: bool,
               now: float) -> Awaitable[None] | None:
        if entry is None:
            # RFC 9111 5.2.1.7: the client only wants a stored answer.
            if directives and "only-if-cached" in directives:
                ctx.exit(504)
                return None
            status = MISS
        elif self._is_fresh(entry, directives, now):
            self._answer(ctx, key, entry, now)
            return None
        else:
            status = REFRESH
        bound = (ctx.service.read_timeout if ctx.service is not None
                 else _DEFAULT_READ_TIMEOUT_MS) / 1000
        flight, leads = FLIGHTS.join(key, time.monotonic(), bound)
        if leads:
            self._pend(ctx, key, status, flight, authorized)
            return None
        return self._wait(ctx, key, flight, status, authorized)

    async def _wait(self, ctx: RequestContext, key: str, flight: Flight, status: str,
                    authorized: bool) -> None:
        entry = await flight.wait(time.monotonic())
        if entry is not None:
            self._answer(ctx, key, entry, time.time())
        else:
            # The leader could not store an answer: go upstream as it did.
            self._pend(ctx, key, status, None, authorized)

    def _is_fresh(self, entry: CacheEntry, directives: dict[str, Any] | None,
                  now: float) -> bool:
        age = now - entry.timestamp
        if directives is None:
            # Entries may be kept longer (storage_ttl) but are not served stale.
            return age <= self.cache_ttl
        max_age = number(directives, "max-age")
        if max_age is not None and age > max_age:
            return False
        min_fresh = number(directives, "min-fresh")
        if min_fresh is not None and entry.ttl - age < min_fresh:
            return False
        if age > entry.ttl:
            # Stale: served only within the client's max-stale (RFC 9111 5.2.1.2).
            max_stale = directives.get("max-stale")
            return max_stale is True or (type(max_stale) is int and age - entry.ttl <= max_stale)
        return True

    def _answer(self, ctx: RequestContext, key: str, entry: CacheEntry, now: float) -> None:
        headers = entry.headers.copy()
        debug = not self.all_diagnostics and "kong-debug" in ctx.request.headers
        if self.send_age or debug:
            headers["Age"] = str(max(int(now - entry.timestamp), 0))
        if self.send_status or debug:
            headers["X-Cache-Status"] = HIT
        if self.send_key or debug:
            headers["X-Cache-Key"] = key
        ctx.exit(entry.status, entry.body, headers)

    def _pend(self, ctx: RequestContext, key: str | None, status: str,
              flight: Flight | None = None, authorized: bool = False) -> None:
        ctx.shared[self._state_key] = _Pending(key, status, flight, authorized)

    # -- response -------------------------------------------------------------

    def header_filter(self, ctx: RequestContext) -> None:
        pending: _Pending | None = ctx.shared.get(self._state_key)
        if pending is None:
            return  # served from the cache, or answered before this plugin ran
        response = ctx.response
        assert response is not None  # header_filter runs once the response exists
        if pending.status != BYPASS:
            if self._cacheable(ctx, response, pending):
                pending.collecting = True
            else:
                pending.status = BYPASS
                self._release(pending)
        headers = response.headers
        debug = not self.all_diagnostics and "kong-debug" in ctx.request.headers
        if self.send_status or debug:
            headers.set("X-Cache-Status", pending.status)
        if pending.key is not None and (self.send_key or debug):
            headers.set("X-Cache-Key", pending.key)
        if pending.collecting and (ctx.request.method == "HEAD"
                                   or response.status in _BODYLESS_STATUSES):
            self._store(ctx, pending, b"")

    def _cacheable(self, ctx: RequestContext, response: ResponseView, pending: _Pending) -> bool:
        if response.source != "service" or response.status not in self.codes:
            return False
        content_types = response.headers.get_all("content-type")
        # Like Kong: no Content-Type, or several, cannot be examined.
        if len(content_types) != 1 or not self._media_type_cacheable(content_types[0]):
            return False
        if self.cache_control:
            values = response.headers.get_all("cache-control")
            directives = parse_directives(values) if values else _NO_DIRECTIVES
            if "private" in directives or "no-store" in directives or "no-cache" in directives:
                return False
            # RFC 9111 3.5: a shared cache stores an answer to a request with
            # Authorization only when the response explicitly allows it.
            if pending.authorized and "public" not in directives \
                    and "s-maxage" not in directives:
                return False
            ttl = resource_ttl(directives, response.headers.get("expires"), time.time())
            if ttl <= 0:
                return False
        else:
            ttl = float(self.cache_ttl)
        pending.ttl = ttl
        pending.headers = _stored_headers(response.headers)
        return True

    def _media_type_cacheable(self, value: str) -> bool:
        verdict = self._media_verdicts.get(value)
        if verdict is None:
            parsed = parse_media_type(value)
            verdict = False
            if parsed is not None:
                verdict = any(media_type_matches(parsed, wanted) for wanted in self.content_types)
            if len(self._media_verdicts) < _MEDIA_TYPE_MEMO_SIZE:
                self._media_verdicts[value] = verdict
        return verdict

    def body_filter(self, ctx: RequestContext, chunk: bytes, eof: bool) -> bytes:
        pending: _Pending | None = ctx.shared.get(self._state_key)
        if pending is None or not pending.collecting:
            return chunk
        if chunk:
            pending.size += len(chunk)
            if pending.size > self.max_entry_bytes:
                self._abandon(pending)
                return chunk
            pending.chunks.append(chunk)
        if eof:
            assert ctx.response is not None  # body_filter runs once the response exists
            if ctx.response.aborted:
                self._abandon(pending)  # a truncated body is no answer to store
            else:
                self._store(ctx, pending, b"".join(pending.chunks))
        return chunk

    def log(self, ctx: RequestContext) -> None:
        # The last phase: a leader that stored nothing (the gateway answered
        # an upstream failure itself, say) releases its waiters here.
        pending: _Pending | None = ctx.shared.get(self._state_key)
        if pending is not None and pending.flight is not None:
            self._release(pending)

    # -- storing --------------------------------------------------------------

    def _store(self, ctx: RequestContext, pending: _Pending, body: bytes) -> None:
        # Only a pending request that was not bypassed collects, and it has a key.
        key = pending.key
        assert key is not None and ctx.response is not None
        pending.collecting = False
        pending.chunks = []
        now = time.time()
        entry = CacheEntry(ctx.response.status, pending.headers, body, now, pending.ttl)
        # Kong: storage_ttl if set, else the TTL that decides freshness.
        storage_ttl = self.storage_ttl if self.storage_ttl is not None else pending.ttl
        if self.memory is not None:
            self.memory.set(key, entry, storage_ttl, now)
        else:
            task = asyncio.get_running_loop().create_task(
                self._store_redis(key, entry, storage_ttl))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        flight = pending.flight
        pending.flight = None
        if flight is not None:
            flight.finish(entry)

    async def _store_redis(self, key: str, entry: CacheEntry, storage_ttl: float) -> None:
        redis = self.redis
        assert redis is not None  # _store uses Redis only when there is no memory store
        try:
            await redis.set(key, entry, storage_ttl)
        except StoreUnavailable:
            pass  # logged by the store; the next request is a Miss again

    def _abandon(self, pending: _Pending) -> None:
        pending.collecting = False
        pending.chunks = []
        self._release(pending)

    @staticmethod
    def _release(pending: _Pending) -> None:
        flight = pending.flight
        pending.flight = None
        if flight is not None:
            flight.finish(None)


HANDLER = ProxyCacheHandler
