"""ai-semantic-cache: an LLM answer served again, without asking the model,
for a request that repeats one already answered; in the client's own mode.

The exact layer (what fastgw builds so far; see the schema): the key is a
hash of the request as ai-proxy sends it to its model (the canonical form,
whatever the front door), less only the fields that cannot change the
answer (``stream``, ``stream_options``, ``user``, ``metadata``, ``store``),
with the provider and model it goes to, and its tenant: the consumer
(by default an entry serves only the consumer whose request made it; the
route's when it has no authentication), or the route with
``share_across_consumers``. So every parameter that changes the answer
(temperature, top_p, seed, tools, tool_choice, response_format, stop, max
tokens, reasoning settings, the system prompt, every message) changes the
key.

The plugin runs after ai-proxy (Kong's priorities: 770, then 765), which
has chosen the model and built the request. On a hit it answers at once:
a JSON answer or a stream in the front door's event shapes, whichever way
the answer was first produced (``fastgw.ai.answer_chunks``). On a miss it
registers an answer filter that stores the answer once it is whole and
successful: a stream that ends cleanly (a cut one never), an error never,
an answer that calls tools only with ``cache_tool_calls``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import Any

import orjson
from xxhash import xxh3_128_hexdigest

from fastgw.ai.answer_chunks import AnswerBuilder, answer_chunks
from fastgw.ai.openai_format import ROUTE_CHAT
from fastgw.ai.usage import Usage
from fastgw.plugins.ai_proxy.answer_filters import add_answer_filter
from fastgw.plugins.ai_proxy.exchange import LLMExchange, current_exchange
from fastgw.plugins.base import Plugin
from fastgw.plugins.context import RequestContext
from fastgw.plugins.proxy_cache.store import (
    CacheEntry,
    MemoryStore,
    RedisStore,
    StoreUnavailable,
    memory_store,
    shared_redis_store,
)
from fastgw.plugins.state import ConfigState

HIT, MISS, BYPASS, REFRESH = "Hit", "Miss", "Bypass", "Refresh"
STATUS_HEADER = "X-Cache-Status"
# Fields of a request that cannot change its answer: left out of the key.
_NOT_THE_ANSWER = frozenset(("stream", "stream_options", "user", "metadata", "store",
                             "safety_identifier", "prompt_cache_key"))
_STORED_FINISH = frozenset(("stop", "length"))
REDIS_PREFIX = "fastgw_ai_cache:"
UNEXPECTED = "An unexpected error occurred"


class AISemanticCache(Plugin):
    name = "ai-semantic-cache"
    PRIORITY = 765

    __slots__ = ("ttl", "cache_control", "share", "tool_calls", "memory", "redis", "scope_key",
                 "stop_on_failure", "_background")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.ttl = config["cache_ttl"]
        self.cache_control = config["cache_control"]
        self.share = config["share_across_consumers"]
        self.tool_calls = config["cache_tool_calls"]
        self.stop_on_failure = config["stop_on_failure"]
        # Entries are this plugin's own: keyed by its route and service too.
        self.scope_key = f"{getattr(scope, 'route', None)}:{getattr(scope, 'service', None)}"
        vectordb = config["vectordb"]
        self.memory: MemoryStore | None = None
        self.redis: RedisStore | None = None
        if vectordb["strategy"] == "memory":
            memory = config["memory"]
            # proxy-cache's store: it outlives config reloads that keep the plugin.
            self.memory = memory_store(("ai-semantic-cache", self.scope_key),
                                       memory["max_bytes"], memory["max_entries"])
        else:
            self.redis = shared_redis_store(self.name, vectordb["redis"], state, REDIS_PREFIX)
        self._background: set[asyncio.Task] = set()

    def access(self, ctx: RequestContext) -> Awaitable[None] | None:
        exchange = current_exchange(ctx)
        if exchange is None or exchange.route_type != ROUTE_CHAT:
            return None  # no LLM call on this route, or not a chat one: nothing to cache
        state = ctx.plugin_state(self)
        asked = self._asked(ctx)
        if asked == BYPASS or (self.memory is None and self.redis is None):
            self._note(ctx, state, BYPASS)
            return None
        key = self.key(ctx, exchange)
        if self.redis is not None:
            return self._look_up_in_redis(ctx, exchange, state, key, asked)
        if asked != REFRESH:
            entry = self.memory.get(key, time.time()) if self.memory is not None else None
            if entry is not None:
                self._hit(ctx, exchange, state, entry)
                return None
        self._miss(ctx, state, key, asked)
        return None

    async def _look_up_in_redis(self, ctx: RequestContext, exchange: LLMExchange,
                                state: dict[str, Any], key: str, asked: str | None) -> None:
        assert self.redis is not None
        try:
            entry = await self.redis.get(key) if asked != REFRESH else None
        except StoreUnavailable:
            # Logged by the store, once per outage; nothing is stored meanwhile.
            self._note(ctx, state, BYPASS)
            if self.stop_on_failure:
                ctx.exit(500, exchange.front.message_error(UNEXPECTED, 500))
            return
        if entry is not None:
            self._hit(ctx, exchange, state, entry)
        else:
            self._miss(ctx, state, key, asked)

    def _hit(self, ctx: RequestContext, exchange: LLMExchange, state: dict[str, Any],
             entry: CacheEntry) -> None:
        self._note(ctx, state, HIT)
        self._replay(ctx, exchange, entry)

    def _miss(self, ctx: RequestContext, state: dict[str, Any], key: str,
              asked: str | None) -> None:
        self._note(ctx, state, asked or MISS)
        add_answer_filter(ctx, StoringFilter(self, key))

    def _asked(self, ctx: RequestContext) -> str | None:
        """What the request's Cache-Control asks for (with cache_control)."""
        if not self.cache_control:
            return None
        value = (ctx.request.headers.get("cache-control") or "").lower()
        if "no-store" in value:
            return BYPASS
        if "no-cache" in value or "max-age=0" in value:
            return REFRESH
        return None

    def key(self, ctx: RequestContext, exchange: LLMExchange) -> str:
        request = {name: value for name, value in exchange.request.items()
                   if name not in _NOT_THE_ANSWER}
        consumer = ctx.consumer
        tenant = "*" if self.share or consumer is None else f"consumer:{consumer.id}"
        material = [self.scope_key, tenant, exchange.provider, exchange.model_name, request]
        return xxh3_128_hexdigest(orjson.dumps(material, option=orjson.OPT_SORT_KEYS))

    def _replay(self, ctx: RequestContext, exchange: LLMExchange, entry: CacheEntry) -> None:
        """The stored answer in the client's API and mode."""
        answer = orjson.loads(entry.body)
        usage = Usage.from_openai(answer.get("usage")) or Usage.of(0, 0)
        # What this answer did not spend (ai-proxy's metrics count it as saved).
        ctx.shared["ai.cache_saved"] = usage
        front = exchange.front
        headers = {STATUS_HEADER: HIT}
        if exchange.stream:
            writer = front.stream_writer(exchange.model_name, exchange.request,
                                         exchange.client_request)
            body = writer.chunks(answer_chunks(answer)) + writer.finish([], usage)
            headers["Content-Type"] = "text/event-stream"
            headers["Cache-Control"] = "no-cache"
        elif front.name == "openai":
            body = entry.body  # stored in OpenAI's own shape: sent as it is
            headers["Content-Type"] = "application/json"
        else:
            body = orjson.dumps(front.answer(answer, usage, exchange.request,
                                             exchange.client_request))
            headers["Content-Type"] = "application/json"
        ctx.exit(200, body, headers)

    def _note(self, ctx: RequestContext, state: dict[str, Any], status: str) -> None:
        state["status"] = status
        ctx.shared["ai.cache_status"] = status.lower()
        if ctx.ai is None:
            ctx.ai = {}
        ctx.ai["cache"] = {"status": status.lower(), "layer": "exact"}

    def header_filter(self, ctx: RequestContext) -> None:
        status = ctx.plugin_state(self).get("status")
        response = ctx.response
        if status is None or status == HIT or response is None:
            return
        response.headers.set(STATUS_HEADER, status)

    def stored(self, key: str, answer: dict[str, Any]) -> None:
        """Keep ``answer`` (whole, canonical) when it may be served again."""
        choices = answer.get("choices") or ()
        if not choices:
            return
        for choice in choices:
            finish = choice.get("finish_reason")
            if finish not in _STORED_FINISH and not (finish == "tool_calls" and self.tool_calls):
                return
        entry = CacheEntry(200, {}, orjson.dumps(answer), time.time(), self.ttl)
        if self.memory is not None:
            self.memory.set(key, entry, self.ttl, time.time())
        elif self.redis is not None:
            task = asyncio.get_running_loop().create_task(self._store_in_redis(key, entry))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _store_in_redis(self, key: str, entry: CacheEntry) -> None:
        assert self.redis is not None
        with contextlib.suppress(StoreUnavailable):  # logged by the store
            await self.redis.set(key, entry, self.ttl)


class StoringFilter:
    """Reads the answer on its way to the client (changing nothing) and
    stores it once it is whole."""

    __slots__ = ("cache", "key", "builder")

    def __init__(self, cache: AISemanticCache, key: str) -> None:
        self.cache = cache
        self.key = key
        self.builder = AnswerBuilder()

    def answer(self, answer: dict[str, Any]) -> None:
        self.cache.stored(self.key, answer)

    def chunks(self, chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for chunk in chunks:
            self.builder.add(chunk)
        return chunks

    def finish(self, tail: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # A clean end only: a cut or failed stream never gets here.
        for chunk in tail:
            self.builder.add(chunk)
        if self.builder.complete:
            self.cache.stored(self.key, self.builder.answer())
        return tail

    def events(self, events: list[dict[str, Any]], last: bool) -> list[dict[str, Any]]:
        return events  # the Responses API is not cached

    def logged(self, text: str) -> str:
        return text


HANDLER = AISemanticCache
