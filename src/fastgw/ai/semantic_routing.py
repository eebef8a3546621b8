"""Semantic routing, ai-proxy-advanced's ``semantic`` algorithm: each
target's ``description`` is embedded once (per worker and config, on the
first request that needs it) by the configured embeddings model; a request
goes to the target whose description is nearest to its prompt, within
``vectordb.threshold``; nearer ones first on failover. When none is near
enough, it goes to the targets described ``CATCHALL`` (as in Kong), or
without one to the nearest. The prompt's vector is cached (a repeated prompt
costs no call); when the embeddings model fails or takes longer than
``EMBEDDINGS_TIMEOUT_S``, the request goes to the CATCHALL targets (or to any
target) and the model is left alone for ``DOWN_SECONDS``, so an outage costs
each request nothing more.

The preference is a list of bit masks of target indices, the most preferred
first; the balancer picks within a mask (circuits as ever).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

import numpy as np
import xxhash

from fastgw.ai.embeddings import EmbeddingsClient, EmbeddingsUnavailable

log = logging.getLogger("fastgw.ai.semantic_routing")

CATCHALL = "CATCHALL"
# An embeddings call on the request path is bounded by this (seconds), and a
# model that failed is not asked again for DOWN_SECONDS.
EMBEDDINGS_TIMEOUT_S = 2.0
DOWN_SECONDS = 5.0
MAX_CACHED_PROMPTS = 4096

SEMANTIC, CATCHALL_REASON, NEAREST, UNAVAILABLE = ("semantic", "catchall", "nearest",
                                                   "embeddings_unavailable")


class SemanticRouter:
    __slots__ = ("embedder", "descriptions", "cosine", "threshold", "catchall", "described",
                 "vectors", "cache", "down_until", "describing")

    def __init__(self, embedder: EmbeddingsClient, descriptions: list[str | None],
                 metric: str, threshold: float) -> None:
        self.embedder = embedder
        self.cosine = metric == "cosine"
        self.threshold = threshold
        self.catchall = 0
        self.described: list[int] = []  # target indices with a description to compare
        texts = []
        for index, description in enumerate(descriptions):
            if description == CATCHALL:
                self.catchall |= 1 << index
            elif description:
                self.described.append(index)
                texts.append(description)
        self.descriptions = texts
        self.vectors: Any = None  # the descriptions' vectors, once embedded
        self.describing: asyncio.Task | None = None
        self.cache: OrderedDict[bytes, Any] = OrderedDict()
        self.down_until = 0.0

    def _prepared(self, vector: list[float]) -> Any:
        array = np.asarray(vector, dtype=np.float32)
        if self.cosine:
            norm = float(np.linalg.norm(array))
            if norm:
                array = array / norm
        return array

    async def _embed(self, text: str) -> Any:
        async with asyncio.timeout(EMBEDDINGS_TIMEOUT_S):
            return self._prepared(await self.embedder.embed(text))

    async def _describe(self) -> Any:
        vectors = await asyncio.gather(*(self._embed(text) for text in self.descriptions))
        return np.vstack(vectors) if vectors else np.zeros((0, self.embedder.dimensions))

    async def _description_vectors(self) -> Any:
        """The descriptions' vectors, embedded once (concurrent requests
        share the calls); a failure is tried again on a later request."""
        if self.vectors is not None:
            return self.vectors
        task = self.describing
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)) or \
                task.get_loop() is not asyncio.get_running_loop():
            task = self.describing = asyncio.ensure_future(self._describe())
        self.vectors = await asyncio.shield(task)
        return self.vectors

    async def _prompt_vector(self, text: str) -> Any:
        key = xxhash.xxh3_128_digest(text.encode())
        vector = self.cache.get(key)
        if vector is not None:
            self.cache.move_to_end(key)
            return vector
        vector = await self._embed(text)
        self.cache[key] = vector
        if len(self.cache) > MAX_CACHED_PROMPTS:
            self.cache.popitem(last=False)
        return vector

    def _fallback(self, count: int) -> list[int]:
        return [self.catchall] if self.catchall else [(1 << count) - 1]

    async def preference(self, text: str, count: int) -> tuple[list[int], str]:
        """The targets (``count`` of them) for a prompt, as masks in order of
        preference, and why the first: ``semantic``, ``catchall``,
        ``nearest`` or ``embeddings_unavailable``."""
        if time.monotonic() < self.down_until or not text:
            return self._fallback(count), UNAVAILABLE if text else CATCHALL_REASON
        try:
            descriptions = await self._description_vectors()
            prompt = await self._prompt_vector(text)
        except (EmbeddingsUnavailable, TimeoutError) as exc:
            log.warning("ai-proxy-advanced: semantic routing without embeddings for %.0f s: %s",
                        DOWN_SECONDS, exc or "the embeddings model took too long")
            self.down_until = time.monotonic() + DOWN_SECONDS
            return self._fallback(count), UNAVAILABLE
        if self.cosine:
            distances = 1.0 - descriptions @ prompt
        else:
            distances = np.linalg.norm(descriptions - prompt, axis=1)
        order = sorted(range(len(self.described)), key=lambda i: float(distances[i]))
        near = [1 << self.described[i] for i in order if float(distances[i]) <= self.threshold]
        if near:
            return near + ([self.catchall] if self.catchall else []), SEMANTIC
        if self.catchall:
            return [self.catchall], CATCHALL_REASON
        return [1 << self.described[i] for i in order], NEAREST
