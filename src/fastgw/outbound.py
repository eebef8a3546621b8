"""One HTTP/1.1 exchange with a service the gateway itself calls (an
embeddings model, an identity provider): connect, send, read the whole
answer with httptools, close. For calls that are few (they are cached by
their callers), not for the proxied traffic.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from urllib.parse import urlsplit

import httptools

# What a failed exchange may raise: the caller maps them to its own error.
EXCHANGE_ERRORS = (OSError, TimeoutError, httptools.HttpParserError, ValueError)
_MAX_ANSWER_BYTES = 16 * 1024 * 1024

_VERIFYING: ssl.SSLContext | None = None
_TRUSTING: ssl.SSLContext | None = None


def client_tls(verify: bool) -> ssl.SSLContext:
    """The TLS context for calls out: the system's CAs, or no checks at all
    (``ssl_verify: false``, as a Kong user may set for a test IdP)."""
    global _VERIFYING, _TRUSTING
    if verify:
        if _VERIFYING is None:
            _VERIFYING = ssl.create_default_context()
        return _VERIFYING
    if _TRUSTING is None:
        _TRUSTING = ssl.create_default_context()
        _TRUSTING.check_hostname = False
        _TRUSTING.verify_mode = ssl.CERT_NONE
    return _TRUSTING


class _Answer:
    """httptools callbacks: the whole body, bounded."""

    __slots__ = ("parser", "body", "size", "done")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.size = 0
        self.done = False

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > _MAX_ANSWER_BYTES:
            raise ValueError(f"answer larger than {_MAX_ANSWER_BYTES} bytes")
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


async def exchange(method: str, url: str, headers: Sequence[tuple[str, str]] = (),
                   body: bytes = b"", *, timeout: float, verify: bool = True
                   ) -> tuple[int, bytes]:
    """``(status, body)`` of one request to ``url``, within ``timeout``
    seconds in all; raises one of ``EXCHANGE_ERRORS``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(
            parts.hostname, port, ssl=client_tls(verify) if secure else None)
        try:
            lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}",
                     *(f"{name}: {value}" for name, value in headers
                       if name.lower() not in ("content-length", "connection", "host")),
                     f"Content-Length: {len(body)}", "Connection: close"]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            answer = _Answer()
            while not answer.done:
                data = await reader.read(65536)
                if not data:
                    answer.parser.feed_data(b"")  # EOF ends a body without a length
                    break
                answer.parser.feed_data(data)
            return answer.parser.get_status_code(), b"".join(answer.body)
        finally:
            writer.close()
