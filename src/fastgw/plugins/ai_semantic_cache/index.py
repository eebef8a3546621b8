"""The similarity layer's index in a worker's memory: per context (the
tenant, the model and every parameter but the messages, so an entry only
ever answers a request that could have had its answer), the vectors of the
answered requests and the keys their answers are stored under.

Search is exact: one matrix product over the context's vectors (numpy),
which stays well under a millisecond for the thousands of entries a context
holds; an approximate index (usearch, hnswlib) is the step for far more.
"""

from __future__ import annotations

import numpy as np

COSINE = "cosine"


class _Context:
    __slots__ = ("vectors", "keys", "expires", "size")

    def __init__(self, dimensions: int) -> None:
        self.vectors = np.zeros((16, dimensions), dtype=np.float32)
        self.keys: list[str] = []
        self.expires: list[float] = []
        self.size = 0


class VectorIndex:
    """Vectors by context; the nearest one within ``threshold`` of a query."""

    __slots__ = ("dimensions", "metric", "threshold", "max_per_context", "contexts")

    def __init__(self, dimensions: int, metric: str, threshold: float,
                 max_per_context: int) -> None:
        self.dimensions = dimensions
        self.metric = metric
        self.threshold = threshold
        self.max_per_context = max_per_context
        self.contexts: dict[str, _Context] = {}

    def _prepared(self, vector: list[float]) -> np.ndarray:
        array = np.asarray(vector, dtype=np.float32)
        if self.metric == COSINE:
            norm = float(np.linalg.norm(array))
            if norm:
                array = array / norm
        return array

    def add(self, context: str, vector: list[float], key: str, expires: float) -> None:
        rows = self.contexts.get(context)
        if rows is None:
            rows = self.contexts[context] = _Context(self.dimensions)
        if rows.size >= self.max_per_context:
            # The oldest goes: shift the rest down (a context rarely fills up).
            rows.vectors[:rows.size - 1] = rows.vectors[1:rows.size]
            del rows.keys[0], rows.expires[0]
            rows.size -= 1
        if rows.size == len(rows.vectors):
            grown = np.zeros((len(rows.vectors) * 2, self.dimensions), dtype=np.float32)
            grown[:rows.size] = rows.vectors[:rows.size]
            rows.vectors = grown
        rows.vectors[rows.size] = self._prepared(vector)
        rows.keys.append(key)
        rows.expires.append(expires)
        rows.size += 1

    def nearest(self, context: str, vector: list[float], now: float) -> tuple[str, float] | None:
        """The key of the nearest live vector within the threshold, and its distance."""
        rows = self.contexts.get(context)
        if rows is None or not rows.size:
            return None
        query = self._prepared(vector)
        vectors = rows.vectors[:rows.size]
        if self.metric == COSINE:
            distances = 1.0 - vectors @ query
        else:
            distances = np.linalg.norm(vectors - query, axis=1)
        # PERF: the few nearest by a partial sort (a full one is most of the time).
        nearest = min(8, rows.size)
        candidates = np.argpartition(distances, nearest - 1)[:nearest]
        for index in candidates[np.argsort(distances[candidates])]:
            distance = float(distances[index])
            if distance > self.threshold:
                return None
            if rows.expires[index] > now:
                return rows.keys[index], distance
        return None
