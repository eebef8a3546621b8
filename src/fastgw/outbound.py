"""HTTP/1.1 exchanges with services the gateway itself calls: ``exchange``
connects, sends, reads the whole answer with httptools and closes (for calls
that are few, cached by their callers: an embeddings model, an identity
provider); ``pooled_exchange`` keeps connections alive, per event loop and
origin, for calls made on the request path (MCP tools); ``stream_request``
reads an answer as it arrives (a stream continued from another LLM). Not for
the proxied traffic, which the compiled core carries.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections.abc import AsyncIterator, Sequence
from typing import NamedTuple
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


class Reply(NamedTuple):
    """A whole answer: its header names are lower-cased (a repeated header:
    the last one)."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Answer:
    """httptools callbacks: the headers and the whole body, bounded."""

    __slots__ = ("parser", "headers", "body", "size", "done", "keep_alive", "head_done",
                 "streaming")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.size = 0
        self.done = False
        self.keep_alive = False
        self.head_done = False
        self.streaming = False  # read as it comes: not bounded in size

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        # Asked here: once the message is complete the parser has reset.
        self.keep_alive = self.parser.should_keep_alive()
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > _MAX_ANSWER_BYTES and not self.streaming:
            raise ValueError(f"answer larger than {_MAX_ANSWER_BYTES} bytes")
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


def _target(url: str) -> tuple[str, str, int, bool, str]:
    """(origin key host, netloc, port, secure, path and query) of ``url``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url}")
    secure = parts.scheme == "https"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.hostname, parts.netloc, parts.port or (443 if secure else 80), secure, target


def _head(method: str, target: str, netloc: str, headers: Sequence[tuple[str, str]],
          length: int, keep_alive: bool) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {netloc}",
             *(f"{name}: {value}" for name, value in headers
               if name.lower() not in ("content-length", "connection", "host")),
             f"Content-Length: {length}", f"Connection: {'keep-alive' if keep_alive else 'close'}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_answer(reader: asyncio.StreamReader) -> tuple[_Answer, bool]:
    """The answer, and whether any byte of it came."""
    answer = _Answer()
    received = False
    while not answer.done:
        data = await reader.read(65536)
        if not data:
            answer.parser.feed_data(b"")  # EOF ends a body without a length
            break
        received = True
        answer.parser.feed_data(data)
    return answer, received


async def _send_once(method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes,
                     verify: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A new connection to ``url``'s origin, the request written on it
    (``Connection: close``)."""
    host, netloc, port, secure, target = _target(url)
    reader, writer = await asyncio.open_connection(
        host, port, ssl=client_tls(verify) if secure else None)
    writer.write(_head(method, target, netloc, headers, len(body), False) + body)
    return reader, writer


async def exchange(method: str, url: str, headers: Sequence[tuple[str, str]] = (),
                   body: bytes = b"", *, timeout: float, verify: bool = True
                   ) -> tuple[int, bytes]:
    """``(status, body)`` of one request to ``url``, within ``timeout``
    seconds in all; raises one of ``EXCHANGE_ERRORS``."""
    async with asyncio.timeout(timeout):
        reader, writer = await _send_once(method, url, headers, body, verify)
        try:
            answer, _ = await _read_answer(reader)
            return answer.parser.get_status_code(), b"".join(answer.body)
        finally:
            writer.close()


_MAX_IDLE = 32  # kept-alive connections per origin and event loop
_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_IDLE: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                 dict[tuple, list[_Connection]]] = weakref.WeakKeyDictionary()


async def pooled_exchange(method: str, url: str, headers: Sequence[tuple[str, str]] = (),
                          body: bytes = b"", *, timeout: float, verify: bool = True
                          ) -> tuple[int, bytes]:
    """``exchange`` over a kept-alive connection when one is idle (a new one
    otherwise, kept afterwards when the answer allows)."""
    reply = await pooled_request(method, url, headers, body, timeout=timeout, verify=verify)
    return reply.status, reply.body


async def pooled_request(method: str, url: str, headers: Sequence[tuple[str, str]] = (),
                         body: bytes = b"", *, timeout: float, verify: bool = True) -> Reply:
    """``pooled_exchange`` with the answer's headers. A kept connection the
    server has closed meanwhile is replaced once, before anything was read."""
    host, netloc, port, secure, target = _target(url)
    idle = _IDLE.setdefault(asyncio.get_running_loop(), {}).setdefault(
        (host, port, secure, verify), [])
    request = _head(method, target, netloc, headers, len(body), True) + body
    async with asyncio.timeout(timeout):
        while True:
            kept = idle.pop() if idle else None
            if kept is not None and (kept[1].is_closing() or kept[0].at_eof()):
                kept[1].close()
                continue
            reader, writer = kept or await asyncio.open_connection(
                host, port, ssl=client_tls(verify) if secure else None)
            try:
                writer.write(request)
                answer, received = await _read_answer(reader)
            except OSError:
                writer.close()
                if kept is not None:
                    continue  # reset by the server while idle: once more, anew
                raise
            except BaseException:
                writer.close()
                raise
            if not received and kept is not None:
                writer.close()  # closed by the server while idle: once more, anew
                continue
            if answer.done and answer.keep_alive and len(idle) < _MAX_IDLE:
                idle.append((reader, writer))
            else:
                writer.close()
            return Reply(answer.parser.get_status_code(), answer.headers, b"".join(answer.body))


class StreamedReply:
    """An answer read as it arrives (an LLM's event stream): ``status`` and
    ``headers`` once the head is in, then ``chunks()``. Its connection is
    not kept: ``close()`` ends it, whether or not the body was read."""

    __slots__ = ("status", "headers", "_answer", "_reader", "_writer", "_read_timeout")

    def __init__(self, answer: _Answer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, read_timeout: float) -> None:
        self._answer = answer
        self._reader = reader
        self._writer = writer
        self._read_timeout = read_timeout
        self.status = answer.parser.get_status_code()
        self.headers = answer.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's pieces as they come, each read within the read
        timeout; ``ConnectionError`` when the connection ends before the body
        does."""
        answer = self._answer
        while True:
            if answer.body:
                pieces, answer.body = answer.body, []
                for piece in pieces:
                    yield piece
            if answer.done:
                return
            async with asyncio.timeout(self._read_timeout):
                data = await self._reader.read(65536)
            if not data:
                answer.parser.feed_data(b"")  # EOF ends a body without a length
                if not answer.done:
                    raise ConnectionError("the answer was cut off")
            else:
                answer.parser.feed_data(data)

    def close(self) -> None:
        self._writer.close()


async def stream_request(method: str, url: str, headers: Sequence[tuple[str, str]] = (),
                         body: bytes = b"", *, connect_timeout: float, read_timeout: float,
                         verify: bool = True) -> StreamedReply:
    """Send one request and read its answer's head (its body is then read
    with ``chunks()``); raises one of ``EXCHANGE_ERRORS``."""
    async with asyncio.timeout(connect_timeout):
        reader, writer = await _send_once(method, url, headers, body, verify)
    try:
        answer = _Answer()
        answer.streaming = True
        async with asyncio.timeout(read_timeout):
            while not answer.head_done:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("the connection closed before an answer")
                answer.parser.feed_data(data)
    except BaseException:
        writer.close()
        raise
    return StreamedReply(answer, reader, writer, read_timeout)
