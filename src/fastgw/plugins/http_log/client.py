"""A small HTTP/1.1 client on asyncio streams for http-log: it sends one body
at a time to one endpoint over one kept-alive connection.

The request head is built once per config; a send writes the head, the
``Content-Length`` and the body, then reads the answer with httptools (only
the status and the first bytes of the body matter). Every step is bounded by
``timeout``; any failure closes the connection, so the next send starts clean.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from urllib.parse import unquote, urlsplit

import httptools

import fastgw

__all__ = ["DELIVERY_ERRORS", "DeliveryError", "HttpLogClient"]

# What is kept of an error answer's body, for the log line.
_ERROR_BODY_BYTES = 256
_READ_SIZE = 65536


class DeliveryError(Exception):
    """The endpoint answered with an error, or not as HTTP."""


# The failures a send may end with; the queue retries on any of them.
DELIVERY_ERRORS = (DeliveryError, OSError, TimeoutError, httptools.HttpParserError)


class _StaleConnection(Exception):
    """A reused connection was closed by the server before it answered."""


class _Answer:
    """httptools callbacks: what one response said."""

    __slots__ = ("body", "complete", "headers_done", "keep_alive", "parser")

    def __init__(self) -> None:
        self.body = b""
        self.complete = False
        self.headers_done = False
        self.keep_alive = False
        self.parser = httptools.HttpResponseParser(self)

    def on_headers_complete(self) -> None:
        self.headers_done = True
        # Asked here: once the message is complete the parser has reset.
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, data: bytes) -> None:
        if len(self.body) < _ERROR_BODY_BYTES:
            self.body += data[:_ERROR_BODY_BYTES - len(self.body)]

    def on_message_complete(self) -> None:
        self.complete = True


class HttpLogClient:
    __slots__ = ("_head", "_idle_since", "_reader", "_ssl", "_writer", "address", "host",
                 "keepalive", "port", "timeout")

    def __init__(self, url: str, method: str = "POST", content_type: str = "application/json",
                 headers: dict[str, str] | None = None, timeout: float = 10.0,
                 keepalive: float = 60.0) -> None:
        """``timeout`` and ``keepalive`` in seconds; ``headers`` must not hold
        Host, Content-Type or Content-Length (the schema rejects them)."""
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.address = f"{self.host}:{self.port}"  # for error messages
        self.timeout = timeout
        self.keepalive = keepalive
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        host_header = f"[{self.host}]" if ":" in self.host else self.host
        if parts.port is not None:
            host_header += f":{parts.port}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}",
                 f"Content-Type: {content_type}", f"User-Agent: fastgw/{fastgw.__version__}"]
        if parts.username is not None:
            userinfo = unquote(parts.username) + ":" + unquote(parts.password or "")
            lines.append("Authorization: Basic " + base64.b64encode(userinfo.encode()).decode())
        lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
        if keepalive <= 0:
            lines.append("Connection: close")
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._idle_since = 0.0

    @property
    def connected(self) -> bool:
        return self._writer is not None

    async def send(self, body: bytes) -> int:
        """Send ``body``; the answer's status, or DeliveryError for >= 400.
        Raises one of ``DELIVERY_ERRORS``."""
        if self._writer is not None:
            if asyncio.get_running_loop().time() - self._idle_since < self.keepalive:
                try:
                    return await self._exchange(body, reused=True)
                except _StaleConnection:
                    pass  # the server timed the connection out first: one new try
            self.close()
        return await self._exchange(body, reused=False)

    async def _exchange(self, body: bytes, reused: bool) -> int:
        try:
            if self._writer is None:
                async with asyncio.timeout(self.timeout):
                    self._reader, self._writer = await asyncio.open_connection(
                        self.host, self.port, ssl=self._ssl,
                        server_hostname=self.host if self._ssl else None)
            async with asyncio.timeout(self.timeout):
                status, answer, keep_alive = await self._request(body, reused)
        except BaseException:
            self.close()
            raise
        if keep_alive and self.keepalive > 0:
            self._idle_since = asyncio.get_running_loop().time()
        else:
            self.close()
        if status >= 400:
            raise DeliveryError(f"request to {self.address} returned status code {status} "
                                f"and body {answer.body.decode(errors='replace')!r}")
        return status

    async def _request(self, body: bytes, reused: bool) -> tuple[int, _Answer, bool]:
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        answer = _Answer()
        parser = answer.parser
        received = False
        try:
            writer.write(self._head + b"%d\r\n\r\n" % len(body) + body)
            await writer.drain()
            while not answer.complete:
                data = await reader.read(_READ_SIZE)
                if not data:
                    break
                received = True
                parser.feed_data(data)
        except ConnectionError:
            if reused and not received:
                raise _StaleConnection() from None
            raise
        if answer.complete:
            return parser.get_status_code(), answer, answer.keep_alive
        if reused and not received:
            raise _StaleConnection()
        if answer.headers_done:
            # A body framed by the end of the connection.
            return parser.get_status_code(), answer, False
        raise DeliveryError(f"{self.address} closed the connection before answering")

    def close(self) -> None:
        writer = self._writer
        self._reader = self._writer = None
        if writer is not None:
            writer.close()
