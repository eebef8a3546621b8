"""ai-semantic-cache: an LLM answer served again, without asking the model,
for a request that repeats (exact layer) or resembles (similarity layer) one
already answered; in the client's own mode.

The exact key is a hash of the request as ai-proxy sends it to its model
(the canonical form, whatever the front door), less only the fields that
cannot change the answer (``stream``, ``stream_options``, ``user``,
``metadata``, ``store``), with the provider and model it goes to, and its
tenant: the consumer (by default an entry serves only the consumer whose
request made it; the route's requests when it has no authentication), or
the route with ``share_across_consumers``. So every parameter that changes
the answer (temperature, top_p, seed, tools, tool_choice, response_format,
stop, max tokens, reasoning settings, the system prompt, every message)
changes the key.

The similarity layer compares the last ``message_countback`` messages (less
the ignored roles) by the ``embeddings`` model's vectors, only among the
answered requests of the same context: the exact key's material without the
messages. A near prompt with another temperature, model or tenant is never
served.

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
import logging
import time
from collections.abc import Awaitable
from typing import Any

import orjson
from xxhash import xxh3_128_hexdigest

from fastgw.ai.answer_chunks import AnswerBuilder, answer_chunks
from fastgw.ai.embeddings import EmbeddingsClient, EmbeddingsUnavailable
from fastgw.ai.openai_format import ROUTE_CHAT
from fastgw.ai.usage import Usage
from fastgw.plugins.ai_proxy.answer_filters import AnswerFilter, add_answer_filter
from fastgw.plugins.ai_proxy.exchange import LLMExchange, current_exchange
from fastgw.plugins.ai_proxy.schema import model_config
from fastgw.plugins.ai_semantic_cache.index import COSINE, VectorIndex
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

log = logging.getLogger("fastgw.plugins.ai_semantic_cache")

HIT, MISS, BYPASS, REFRESH = "Hit", "Miss", "Bypass", "Refresh"
STATUS_HEADER = "X-Cache-Status"
SIMILARITY_HEADER = "X-Cache-Similarity"
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
                 "stop_on_failure", "_background", "exact", "embedder", "index", "countback",
                 "ignored_roles")

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
        self.exact = config["exact_caching"]
        # The similarity layer (memory only; the schema refuses it on Redis).
        self.embedder: EmbeddingsClient | None = None
        self.index: VectorIndex | None = None
        if config["similarity"] and self.memory is not None:
            self.embedder = EmbeddingsClient(model_config(config["embeddings"]),
                                             vectordb["dimensions"])
            self.index = VectorIndex(vectordb["dimensions"], vectordb["distance_metric"],
                                     vectordb["threshold"], config["memory"]["max_entries"])
        self.countback = int(config["message_countback"])
        self.ignored_roles = frozenset(
            role for role, flag in (("system", "ignore_system_prompts"),
                                    ("assistant", "ignore_assistant_prompts"),
                                    ("tool", "ignore_tool_prompts")) if config[flag])

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
        if asked != REFRESH and self.exact:
            entry = self.memory.get(key, time.time()) if self.memory is not None else None
            if entry is not None:
                self._hit(ctx, exchange, state, entry)
                return None
        if self.embedder is not None:
            return self._look_up_similar(ctx, exchange, state, key, asked)
        self._miss(ctx, state, key, asked)
        return None

    async def _look_up_similar(self, ctx: RequestContext, exchange: LLMExchange,
                               state: dict[str, Any], key: str, asked: str | None) -> None:
        """The similarity layer: the prompt's embedding against those of the
        answered requests of the same context."""
        assert self.embedder is not None and self.index is not None
        try:
            vector = await self.embedder.embed(self.prompt_text(exchange.request))
        except EmbeddingsUnavailable as exc:
            log.warning("ai-semantic-cache: no embedding (%s)", exc)
            self._unavailable(ctx, exchange, state)
            return
        context = self.key(ctx, exchange, messages=False)
        now = time.time()
        found = self.index.nearest(context, vector, now) if asked != REFRESH else None
        if found is not None and self.memory is not None:
            entry = self.memory.get(found[0], now)
            if entry is not None:
                similarity = round(1.0 - found[1], 4) if self.index.metric == COSINE else None
                self._hit(ctx, exchange, state, entry, "similarity", similarity)
                return
        self._note(ctx, state, asked or MISS)
        add_answer_filter(ctx, StoringFilter(self, key, context, vector))

    def prompt_text(self, request: dict[str, Any]) -> str:
        """What the similarity layer compares: the texts of the last
        ``message_countback`` messages of the roles it does not ignore."""
        messages = [m for m in request.get("messages") or ()
                    if isinstance(m, dict) and m.get("role") not in self.ignored_roles]
        texts = []
        for message in messages[-self.countback:]:
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts.extend(part.get("text") or "" for part in content if isinstance(part, dict))
        return "\n".join(texts)

    async def _look_up_in_redis(self, ctx: RequestContext, exchange: LLMExchange,
                                state: dict[str, Any], key: str, asked: str | None) -> None:
        assert self.redis is not None
        try:
            entry = await self.redis.get(key) if asked != REFRESH else None
        except StoreUnavailable:
            # Logged by the store, once per outage; nothing is stored meanwhile.
            self._unavailable(ctx, exchange, state)
            return
        if entry is not None:
            self._hit(ctx, exchange, state, entry)
        else:
            self._miss(ctx, state, key, asked)

    def _hit(self, ctx: RequestContext, exchange: LLMExchange, state: dict[str, Any],
             entry: CacheEntry, layer: str = "exact", similarity: float | None = None) -> None:
        self._note(ctx, state, HIT, layer, similarity)
        self._replay(ctx, exchange, entry, similarity)

    def _unavailable(self, ctx: RequestContext, exchange: LLMExchange,
                     state: dict[str, Any]) -> None:
        """The store or the embeddings model failed: the model answers
        (Bypass), or with stop_on_failure the client gets a 500."""
        self._note(ctx, state, BYPASS)
        if self.stop_on_failure:
            ctx.exit(500, exchange.front.message_error(UNEXPECTED, 500))

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

    def key(self, ctx: RequestContext, exchange: LLMExchange, messages: bool = True) -> str:
        """The exact layer's key; without the messages, the similarity layer's
        context (what must be equal for a near prompt's answer to serve)."""
        request = {name: value for name, value in exchange.request.items()
                   if name not in _NOT_THE_ANSWER and (messages or name != "messages")}
        consumer = ctx.consumer
        tenant = "*" if self.share or consumer is None else f"consumer:{consumer.id}"
        material = [self.scope_key, tenant, exchange.provider, exchange.model_name, request]
        return xxh3_128_hexdigest(orjson.dumps(material, option=orjson.OPT_SORT_KEYS))

    def _replay(self, ctx: RequestContext, exchange: LLMExchange, entry: CacheEntry,
                similarity: float | None) -> None:
        """The stored answer in the client's API and mode."""
        answer = orjson.loads(entry.body)
        usage = Usage.from_openai(answer.get("usage")) or Usage.of(0, 0)
        # What this answer did not spend (ai-proxy's metrics count it as saved).
        ctx.shared["ai.cache_saved"] = usage
        front = exchange.front
        headers = {STATUS_HEADER: HIT}
        if similarity is not None:
            headers[SIMILARITY_HEADER] = str(similarity)
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

    def _note(self, ctx: RequestContext, state: dict[str, Any], status: str,
              layer: str = "exact", similarity: float | None = None) -> None:
        state["status"] = status
        ctx.shared["ai.cache_status"] = status.lower()
        if ctx.ai is None:
            ctx.ai = {}
        section: dict[str, Any] = {"status": status.lower()}
        if status == HIT:
            section["layer"] = layer
            if similarity is not None:
                section["similarity"] = similarity
        ctx.ai["cache"] = section

    def header_filter(self, ctx: RequestContext) -> None:
        status = ctx.plugin_state(self).get("status")
        response = ctx.response
        if status is None or status == HIT or response is None:
            return
        response.headers.set(STATUS_HEADER, status)

    def stored(self, key: str, answer: dict[str, Any], context: str | None = None,
               vector: list[float] | None = None) -> None:
        """Keep ``answer`` (whole, canonical) when it may be served again, and
        the prompt's vector in the similarity index."""
        choices = answer.get("choices") or ()
        if not choices:
            return
        for choice in choices:
            finish = choice.get("finish_reason")
            if finish not in _STORED_FINISH and not (finish == "tool_calls" and self.tool_calls):
                return
        now = time.time()
        entry = CacheEntry(200, {}, orjson.dumps(answer), now, self.ttl)
        if self.memory is not None:
            self.memory.set(key, entry, self.ttl, now)
            if self.index is not None and context is not None and vector is not None:
                self.index.add(context, vector, key, now + self.ttl)
        elif self.redis is not None:
            task = asyncio.get_running_loop().create_task(self._store_in_redis(key, entry))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _store_in_redis(self, key: str, entry: CacheEntry) -> None:
        assert self.redis is not None
        with contextlib.suppress(StoreUnavailable):  # logged by the store
            await self.redis.set(key, entry, self.ttl)


class StoringFilter(AnswerFilter):
    """Reads the answer on its way to the client (changing nothing) and
    stores it once it is whole."""

    __slots__ = ("cache", "key", "context", "vector", "builder")

    def __init__(self, cache: AISemanticCache, key: str, context: str | None = None,
                 vector: list[float] | None = None) -> None:
        self.cache = cache
        self.key = key
        self.context = context  # the similarity layer's, with the prompt's vector
        self.vector = vector
        self.builder = AnswerBuilder()

    def answer(self, answer: dict[str, Any]) -> None:
        self.cache.stored(self.key, answer, self.context, self.vector)

    def chunks(self, chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for chunk in chunks:
            self.builder.add(chunk)
        return chunks

    def finish(self, tail: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # A clean end only: a cut or failed stream never gets here.
        for chunk in tail:
            self.builder.add(chunk)
        if self.builder.complete:
            self.cache.stored(self.key, self.builder.answer(), self.context, self.vector)
        return tail


HANDLER = AISemanticCache
