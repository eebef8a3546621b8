"""Embeddings from a configured provider, for ai-semantic-cache's similarity
layer: the request is built and the answer read by the provider's own
translator (so every provider ai-proxy speaks is an embeddings source), over
one short HTTP/1.1 exchange per call, bounded by ``timeout``."""

from __future__ import annotations

from typing import Any

from fastgw.ai.config import ModelConfig
from fastgw.ai.errors import TranslationError
from fastgw.ai.openai_format import ROUTE_EMBEDDINGS
from fastgw.ai.providers import get_translator
from fastgw.outbound import EXCHANGE_ERRORS, exchange

# Providers whose embeddings API takes the vector size asked for.
_SIZED = frozenset(("openai", "azure"))


class EmbeddingsUnavailable(Exception):
    """The provider could not be reached, or did not answer with vectors."""


class EmbeddingsClient:
    __slots__ = ("model", "translator", "dimensions", "timeout")

    def __init__(self, model: ModelConfig, dimensions: int, timeout: float = 10.0) -> None:
        self.model = model
        self.translator = get_translator(model)
        self.dimensions = dimensions
        self.timeout = timeout

    async def embed(self, text: str) -> list[float]:
        request: dict[str, Any] = {"model": self.model.name, "input": text}
        if self.model.provider in _SIZED:
            request["dimensions"] = self.dimensions
        try:
            upstream = self.translator.build_request(ROUTE_EMBEDDINGS, request, self.model)
            status, body = await exchange(upstream.method,
                                          upstream.url_base + upstream.path_and_query,
                                          upstream.headers, upstream.body,
                                          timeout=self.timeout)
            if not 200 <= status < 300:
                raise EmbeddingsUnavailable(f"the embeddings provider answered {status}")
            answer, _ = self.translator.parse_response(ROUTE_EMBEDDINGS, status, body, request)
            vector = answer["data"][0]["embedding"]
        except (*EXCHANGE_ERRORS, TranslationError, KeyError, IndexError, TypeError) as exc:
            raise EmbeddingsUnavailable(str(exc) or type(exc).__name__) from exc
        if not isinstance(vector, list) or len(vector) != self.dimensions:
            raise EmbeddingsUnavailable(
                f"the embeddings provider answered a vector of {len(vector)} dimensions, "
                f"not vectordb.dimensions ({self.dimensions})"
                if isinstance(vector, list) else "the embeddings provider answered no vector")
        return [float(value) for value in vector]
