"""Embeddings from a configured provider, for ai-semantic-cache's similarity
layer: the request is built and the answer read by the provider's own
translator (so every provider ai-proxy speaks is an embeddings source), over
one short HTTP/1.1 exchange per call, bounded by ``timeout``."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any
from urllib.parse import urlsplit

import httptools

from fastgw.ai.config import ModelConfig
from fastgw.ai.errors import TranslationError
from fastgw.ai.openai_format import ROUTE_EMBEDDINGS
from fastgw.ai.providers import get_translator

# Providers whose embeddings API takes the vector size asked for.
_SIZED = frozenset(("openai", "azure"))


class EmbeddingsUnavailable(Exception):
    """The provider could not be reached, or did not answer with vectors."""


class _Response:
    """httptools callbacks: the status and the whole body."""

    __slots__ = ("parser", "body", "done")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.done = False

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class EmbeddingsClient:
    __slots__ = ("model", "translator", "dimensions", "timeout", "_ssl")

    def __init__(self, model: ModelConfig, dimensions: int, timeout: float = 10.0) -> None:
        self.model = model
        self.translator = get_translator(model)
        self.dimensions = dimensions
        self.timeout = timeout
        self._ssl: ssl.SSLContext | None = None

    async def embed(self, text: str) -> list[float]:
        request: dict[str, Any] = {"model": self.model.name, "input": text}
        if self.model.provider in _SIZED:
            request["dimensions"] = self.dimensions
        try:
            upstream = self.translator.build_request(ROUTE_EMBEDDINGS, request, self.model)
            async with asyncio.timeout(self.timeout):
                status, body = await self._exchange(upstream.method, upstream.url_base,
                                                    upstream.path_and_query, upstream.headers,
                                                    upstream.body)
            if not 200 <= status < 300:
                raise EmbeddingsUnavailable(f"the embeddings provider answered {status}")
            answer, _ = self.translator.parse_response(ROUTE_EMBEDDINGS, status, body, request)
            vector = answer["data"][0]["embedding"]
        except (OSError, TimeoutError, TranslationError, httptools.HttpParserError,
                KeyError, IndexError, TypeError) as exc:
            raise EmbeddingsUnavailable(str(exc) or type(exc).__name__) from exc
        if not isinstance(vector, list) or len(vector) != self.dimensions:
            raise EmbeddingsUnavailable(
                f"the embeddings provider answered a vector of {len(vector)} dimensions, "
                f"not vectordb.dimensions ({self.dimensions})"
                if isinstance(vector, list) else "the embeddings provider answered no vector")
        return [float(value) for value in vector]

    async def _exchange(self, method: str, url_base: str, path: str,
                        headers: list[tuple[str, str]], body: bytes) -> tuple[int, bytes]:
        parts = urlsplit(url_base)
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        context = None
        if secure:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=context)
        try:
            lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}",
                     *(f"{name}: {value}" for name, value in headers
                       if name.lower() not in ("content-length", "connection", "host")),
                     f"Content-Length: {len(body)}", "Connection: close"]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            response = _Response()
            while not response.done:
                data = await reader.read(65536)
                if not data:
                    response.parser.feed_data(b"")  # EOF ends a body without a length
                    break
                response.parser.feed_data(data)
            return response.parser.get_status_code(), b"".join(response.body)
        finally:
            writer.close()
