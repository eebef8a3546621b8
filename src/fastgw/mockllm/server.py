"""The mock's HTTP/1.1 server: one small asyncio protocol on httptools, no framework.

Requests on a connection are answered in order. A reply that needs no waiting (no latency,
not a stream) is written straight from the parser callback; the others run in a task, and
requests pipelined behind them wait in a queue until it finishes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from http import HTTPStatus
from typing import cast

import httptools

from fastgw.mockllm.app import CONTROL_HEADERS, IncomingRequest, MockApp, MockSettings, Plan
from fastgw.mockllm.replies import JsonReply, StreamReply
from fastgw.mockllm.textgen import DEFAULT_OUTPUT_TOKENS

logger = logging.getLogger(__name__)

# Pipelined requests queued behind a slow reply before we stop reading from the socket.
_MAX_QUEUED_REQUESTS = 64
_KEEP_ALIVE = b"connection: keep-alive\r\n"
_CLOSE = b"connection: close\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LAST_CHUNK = b"0\r\n\r\n"
_BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 38\r\n"
    b"connection: close\r\n\r\n"
    b'{"error":"malformed HTTP/1.1 request"}'
)
_PHRASES = {529: "Overloaded"}
_status_lines: dict[int, bytes] = {}


def _status_line(status: int) -> bytes:
    line = _status_lines.get(status)
    if line is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = _PHRASES.get(status, "Error")
        line = _status_lines[status] = f"HTTP/1.1 {status} {phrase}\r\n".encode()
    return line


def encode_json_reply(reply: JsonReply, keep_alive: bool) -> bytes:
    parts = [
        _status_line(reply.status),
        b"content-type: ",
        reply.content_type,
        b"\r\ncontent-length: ",
        str(len(reply.body)).encode(),
        b"\r\n",
        _KEEP_ALIVE if keep_alive else _CLOSE,
    ]
    for name, value in reply.headers:
        parts += (name, b": ", value, b"\r\n")
    parts += (b"\r\n", reply.body)
    return b"".join(parts)


def _stream_head(reply: StreamReply, keep_alive: bool) -> bytes:
    return b"".join(
        (
            _status_line(reply.status),
            b"content-type: ",
            reply.content_type,
            b"\r\ntransfer-encoding: chunked\r\ncache-control: no-cache\r\n",
            _KEEP_ALIVE if keep_alive else _CLOSE,
            b"\r\n",
        )
    )


class MockHttpProtocol(asyncio.Protocol):
    __slots__ = (
        "_app",
        "_loop",
        "_parser",
        "_transport",
        "_request",
        "_queue",
        "_responding",
        "_closing",
        "_batch",
        "_reading_paused",
        "_writable",
        "_task",
    )

    def __init__(self, app: MockApp, loop: asyncio.AbstractEventLoop) -> None:
        self._app = app
        self._loop = loop
        self._parser = httptools.HttpRequestParser(self)
        # connection_made sets it before any other callback can run.
        self._transport: asyncio.Transport = None  # type: ignore[assignment]
        self._request: IncomingRequest | None = None
        self._queue: deque[IncomingRequest] = deque()
        self._responding = False  # a task is writing a delayed or streamed reply
        self._closing = False
        # PERF: replies produced while one read is parsed are joined into one write, so a
        # client pipelining N requests costs one send() instead of N.
        self._batch: list[bytes] | None = None
        self._reading_paused = False
        self._writable: asyncio.Future | None = None  # set while the transport is paused
        self._task: asyncio.Task | None = None

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream server always hands over a full Transport.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
        self._wake_writer()

    def pause_writing(self) -> None:
        self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._batch = []
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            # Mid-stream the 400 would corrupt the reply being written: just end after it.
            if not self._responding:
                self._batch.append(_BAD_REQUEST)
            self._closing = True
        finally:
            batch, self._batch = self._batch, None
            if batch:
                self._transport.write(b"".join(batch))
            if self._closing and not self._responding:
                self._transport.close()

    # --- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._request = IncomingRequest()

    def _current_request(self) -> IncomingRequest:
        # httptools calls on_message_begin before any other per-message callback.
        request = self._request
        assert request is not None
        return request

    def on_url(self, url: bytes) -> None:
        self._current_request().url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self._current_request()
        request.headers.append((name, value))
        lowered = name.lower()
        if lowered in CONTROL_HEADERS:
            request.controls[lowered] = value

    def on_headers_complete(self) -> None:
        request = self._current_request()
        request.method = self._parser.get_method()
        request.finish_url()
        # Clients such as curl wait up to a second for this before sending a large body.
        if request.controls.get(b"expect", b"").lower() == b"100-continue":
            self._write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._current_request().body_chunks.append(body)

    def on_message_complete(self) -> None:
        request = self._current_request()
        self._request = None
        chunks = request.body_chunks
        request.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        request.keep_alive = self._parser.should_keep_alive()
        if self._closing:
            return
        if self._responding or self._queue:
            self._queue.append(request)
            if len(self._queue) >= _MAX_QUEUED_REQUESTS and not self._reading_paused:
                self._reading_paused = True
                self._transport.pause_reading()
            return
        self._answer(request)

    # --- replies -------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self._batch is not None:
            self._batch.append(data)
        else:
            self._transport.write(data)

    def _answer(self, request: IncomingRequest) -> None:
        plan = self._app.plan(request)
        if not plan.delay_s and isinstance(plan.reply, JsonReply):
            self._write(encode_json_reply(plan.reply, request.keep_alive))
            if not request.keep_alive:
                self._close()
            return
        self._responding = True
        self._task = self._loop.create_task(self._answer_later(request, plan))

    async def _answer_later(self, request: IncomingRequest, plan: Plan) -> None:
        try:
            if plan.delay_s:
                await asyncio.sleep(plan.delay_s)
            if isinstance(plan.reply, JsonReply):
                self._write(encode_json_reply(plan.reply, request.keep_alive))
                complete = True
            else:
                complete = await self._write_stream(plan, request.keep_alive)
        except asyncio.CancelledError:
            return  # the connection was lost
        except Exception:
            logger.exception("mock-llm: failed while writing a reply")
            complete = False
        self._responding = False
        self._task = None
        if not complete or not request.keep_alive or self._closing:
            self._closing = True
            self._transport.close()
            return
        self._answer_queued()

    async def _write_stream(self, plan: Plan, keep_alive: bool) -> bool:
        """Write each event as its own chunk; False when cut short or the peer went away."""
        reply = plan.reply
        assert isinstance(reply, StreamReply)  # _answer_later writes JSON replies itself
        transport = self._transport
        transport.write(_stream_head(reply, keep_alive))
        cut_after = plan.cut_after
        if cut_after == 0:
            return False
        written = 0
        next_token_at = None
        for payload, paced in reply.events:
            if paced and plan.pace_s:
                now = self._loop.time()
                if next_token_at is None:
                    next_token_at = now
                elif next_token_at > now:
                    await asyncio.sleep(next_token_at - now)
                next_token_at += plan.pace_s
            if self._closing:
                return False
            transport.write(b"%x\r\n%b\r\n" % (len(payload), payload))
            written += 1
            if written == cut_after:
                return False
            if self._writable is not None:
                await self._writable
        transport.write(_LAST_CHUNK)
        return True

    def _answer_queued(self) -> None:
        while self._queue and not self._responding and not self._closing:
            self._answer(self._queue.popleft())
        if self._reading_paused and not self._queue and not self._closing:
            self._reading_paused = False
            self._transport.resume_reading()

    def _close(self) -> None:
        self._closing = True
        # Inside data_received the batch is written first; data_received then closes.
        if self._batch is None:
            self._transport.close()

    def _wake_writer(self) -> None:
        waiter, self._writable = self._writable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


async def serve(
    host: str = "127.0.0.1",
    port: int = 9000,
    latency_ms: float = 0,
    tokens_per_s: float = 0,
    fail_rate: float = 0.0,
    seed: int | None = None,
    *,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
) -> asyncio.Server:
    """Start the mock on the running loop and return the listening server.

    `port=0` picks a free port; read it from `server.sockets[0].getsockname()[1]`.
    """
    app = MockApp(
        MockSettings(
            latency_ms=latency_ms,
            tokens_per_s=tokens_per_s,
            fail_rate=fail_rate,
            seed=seed,
            output_tokens=output_tokens,
        )
    )
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: MockHttpProtocol(app, loop), host, port, backlog=1024)
