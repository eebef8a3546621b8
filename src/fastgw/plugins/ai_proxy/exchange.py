"""One request's trip through an LLM provider, as the response comes back.

An ``LLMExchange`` is made in the access phase once the provider request is
built, and then follows the answer: ``start_response`` when its status and
headers arrive, ``feed`` for each piece of its body. A streamed answer is
translated event by event, each piece returned as soon as it is read; any
other answer (an error, or a whole JSON body) is buffered and translated at
its end. Afterwards the exchange knows the usage, cost and timings that go
into the log entry and the AI metrics.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from typing import Any

import orjson

from fastgw.ai.errors import StreamCut, StreamError, UpstreamFormatError
from fastgw.ai.front_doors import FrontDoor, StreamWriter
from fastgw.ai.openai_format import ROUTE_RESPONSES
from fastgw.ai.providers import ProviderTranslator, StreamTranslator
from fastgw.ai.providers.base import stream_cut_error
from fastgw.ai.responses_format import encode_response_event
from fastgw.ai.usage import Usage
from fastgw.plugins.ai_proxy.answer_filters import AnswerFilter
from fastgw.plugins.context import HeaderList, RequestContext

JSON_CONTENT_TYPE = "application/json"
SSE_CONTENT_TYPE = "text/event-stream"
# Kong's name for the model that answered, and fastgw's earlier one (kept for
# the clients that read it).
MODEL_HEADERS = ("X-Kong-LLM-Model", "X-Fastgw-LLM-Model")
# Response headers that describe the provider's body, not the one the client
# gets (lower-case: removed in one pass), and with them any model header the
# provider sent.
_BODY_HEADERS = frozenset((b"content-length", b"content-encoding", b"content-type"))
_REPLACED_HEADERS = _BODY_HEADERS | {name.lower().encode() for name in MODEL_HEADERS}


_CURRENT = object()  # ctx.shared key: the request's LLMExchange


def current_exchange(ctx: RequestContext) -> LLMExchange | None:
    """The LLM call ai-proxy has prepared for this request (its model and
    canonical request are settled), if any: what plugins after it read."""
    return ctx.shared.get(_CURRENT)


def set_current_exchange(ctx: RequestContext, exchange: LLMExchange) -> None:
    ctx.shared[_CURRENT] = exchange


def _json_object(raw: bytes) -> bool:
    try:
        return isinstance(orjson.loads(raw), dict)
    except orjson.JSONDecodeError:
        return False


def _milliseconds(start: float, end: float | None) -> float | None:
    return None if end is None else round((end - start) * 1000.0, 3)


class LLMExchange:
    __slots__ = (
        "front", "translator", "route_type", "request", "model_name", "provider", "stream",
        "sent_at", "first_byte_at", "first_token_at", "finished_at", "status", "streaming",
        "parts", "stream_state", "writer", "decoder", "ended", "usage", "response_model",
        "client_body", "payloads", "response_payload", "answer_status", "content_type",
        "native", "wrong_type", "as_written", "client_request", "filters", "own_events",
        "parsed_as_is", "rescue", "transcript",
    )  # fmt: skip

    def __init__(self, front: FrontDoor, translator: ProviderTranslator, route_type: str,
                 request: dict[str, Any], model_name: str, provider: str, stream: bool,
                 client_body: bytes, payloads: bool, native: bool = False,
                 client_request: dict[str, Any] | None = None,
                 filters: list[AnswerFilter] | None = None) -> None:
        self.front = front
        # Plugins that read or change the answer (answer_filters): the
        # request's list, which plugins after ai-proxy may still add to; an
        # answer with filters is never passed through as the provider wrote it.
        self.filters = filters if filters is not None else []
        # The Responses API spoken to OpenAI itself: the provider's own events
        # (and answer) are what the client gets, edited in place by filters.
        self.own_events = native and route_type == ROUTE_RESPONSES
        # The client speaks the provider's API: the answer passes through as
        # the provider wrote it, read only for usage, timings and its shape
        # (with filters, translated and written again, but for own_events).
        self.native = native
        # A whole answer the client gets as the provider wrote it (natively,
        # or an OpenAI client of an OpenAI-format provider); ``parsed_as_is``:
        # its parsed form is the client's shape, which filters edit.
        self.as_written = native or (front.name == "openai" and
                                     translator.answers_in_openai_format(route_type, request))
        self.parsed_as_is = self.as_written and (front.name == "openai" or self.own_events)
        self.translator = translator
        self.route_type = route_type
        self.request = request  # canonical (OpenAI-format) request, as sent
        self.model_name = model_name
        self.provider = provider
        self.stream = stream  # the client asked for a streamed answer
        self.client_body = client_body
        self.client_request = client_request  # the client's body, parsed
        self.payloads = payloads  # keep the client-facing answer for the log
        self.response_payload: list[bytes] = []
        self.sent_at = time.perf_counter()
        self.first_byte_at: float | None = None
        self.first_token_at: float | None = None
        self.finished_at: float | None = None
        self.status = 0
        self.streaming = False  # the answer is being translated as a stream
        self.parts: list[bytes] = []
        self.stream_state: StreamTranslator | None = None
        self.writer: StreamWriter | None = None
        self.decoder: Any = None
        self.ended = False
        self.usage: Usage | None = None
        self.response_model: str | None = None
        # The status the client gets for a whole answer: the provider's, or
        # 502 when its body breaks the API (seen only when buffered).
        self.answer_status = 0
        self.content_type = ""
        # A 2xx whose Content-Type is not what was asked for (JSON, or the
        # provider's stream type): known from the head, answered as a 502.
        self.wrong_type: UpstreamFormatError | None = None
        # A stream that may be continued elsewhere when its provider breaks
        # off (ai-proxy-advanced's stream_continuation): ``rescue(exchange,
        # error, outcome)`` takes the broken stream over when it returns
        # True; ``transcript`` is then told every chunk the client was sent.
        self.rescue: Callable[[LLMExchange, dict[str, Any], str], bool] | None = None
        self.transcript: Any = None

    # -- response ------------------------------------------------------------

    def start_response(self, status: int, headers: HeaderList, model_header: bool) -> None:
        """The provider's status and headers are in: choose how to translate the body."""
        self.first_byte_at = time.perf_counter()
        self.status = status
        if self.filters or self.rescue is not None:
            # The filters are all known now (the access phase is over). A
            # stream that may be continued is written by the front door's
            # writer, so that another provider's events can follow its own.
            self.native = self.native and self.own_events
            self.as_written = False
        self.answer_status = status
        self.content_type = (headers.get("content-type") or "").lower()
        encoding = (headers.get("content-encoding") or "").strip().lower()
        if encoding in ("gzip", "deflate"):
            # Asked for identity; a provider that compresses anyway is still read.
            self.decoder = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header
        self.wrong_type = self._wrong_content_type(status)
        if self.wrong_type is not None:
            # The head has not gone out yet (a whole answer is held; a stream's
            # head waits for this phase): the client gets a 502, not a stream
            # that ends in nothing or a body it cannot read.
            self.answer_status = self.wrong_type.status
        self.streaming = self.stream and 200 <= status < 300 and self.wrong_type is None
        if self.streaming:
            self.stream_state = self.translator.stream_translator(
                self.route_type, self.model_name, self.request
            )
            if self.filters and self.own_events:
                self.stream_state.events = []  # type: ignore[attr-defined]
            self.writer = self.front.stream_writer(self.model_name, self.request,
                                                   self.client_request)
        headers.remove_all(_REPLACED_HEADERS if model_header else _BODY_HEADERS)
        headers.add("Content-Type", SSE_CONTENT_TYPE if self.streaming else JSON_CONTENT_TYPE)
        if self.streaming:
            headers.set("Cache-Control", "no-cache")
        if model_header:
            model = f"{self.provider}/{self.model_name}"
            for name in MODEL_HEADERS:
                headers.add(name, model)

    def _wrong_content_type(self, status: int) -> UpstreamFormatError | None:
        if not 200 <= status < 300 or not self.content_type:
            return None
        if self.stream:
            expected = self.translator.stream_content_type
            if self.content_type.startswith(expected):
                return None
            return UpstreamFormatError(f"upstream answered a streamed request with Content-Type "
                                       f"{self.content_type}, not {expected}")
        if "json" in self.content_type:
            return None
        return UpstreamFormatError(
            f"upstream answered with Content-Type {self.content_type}, not JSON")

    def feed(self, chunk: bytes, eof: bool, aborted: bool = False) -> bytes:
        """What the client gets for this piece of the provider's body."""
        if self.ended:
            return b""
        if self.decoder is not None and chunk:
            chunk = self.decoder.decompress(chunk)
        out = self._feed_stream(chunk, eof, aborted) if self.streaming else \
            self._feed_whole(chunk, eof)
        if self.payloads and out:
            self.response_payload.append(out)
        return out

    def _feed_stream(self, chunk: bytes, eof: bool, aborted: bool) -> bytes:
        stream = self.stream_state
        writer = self.writer
        # start_response sets both whenever the answer streams.
        assert stream is not None and writer is not None
        out = b""
        if chunk:
            chunks = stream.feed(chunk)
            if self.transcript is not None:
                self.transcript.add(chunks)
            for answer_filter in self.filters:
                chunks = answer_filter.chunks(chunks)
            if self.first_token_at is None and stream.first_token_seen:
                self.first_token_at = time.perf_counter()
            # Native: the provider's own events go as they came; the
            # translation only counts.
            if self.filters and self.own_events:
                out = self._own_events(stream)
            else:
                out = chunk if self.native else writer.chunks(chunks) if chunks else b""
            if stream.error is not None:
                # The provider reported an error mid-answer (natively, its own
                # event already went out) or sent one we cannot read: end here.
                if self.native and not stream.unreadable:
                    return out + self._end_stream(b"")
                return out + self._broken(stream.error, "stream_error")
        if not eof:
            return out
        if aborted:
            # Never a clean end for an answer the upstream broke off, even
            # after its end marker: the client cannot tell what was lost.
            return out + self._broken(stream_cut_error(), "stream_cut")
        try:
            tail = stream.finish()
        except StreamCut as failure:
            return out + self._broken(failure.error, "stream_cut")
        except StreamError as failure:
            return out + self._broken(failure.error, "stream_error")
        for answer_filter in self.filters:
            tail = answer_filter.finish(tail)
        if self.native:
            if self.filters and self.own_events:
                out += self._own_events(stream, last=True)
            return out + self._end_stream(b"")  # its end marker went out with the events
        return out + self._end_stream(writer.finish(tail, stream.usage))

    def _own_events(self, stream: StreamTranslator, last: bool = False) -> bytes:
        """The provider's own events read so far, through the filters."""
        events: list[dict[str, Any]] = stream.events  # type: ignore[attr-defined]
        stream.events = []  # type: ignore[attr-defined]
        for answer_filter in self.filters:
            events = answer_filter.events(events, last)
        return b"".join(map(encode_response_event, events))

    def _broken(self, error: dict[str, Any], outcome: str) -> bytes:
        """The stream cannot go on from its provider: its error event, unless
        ``rescue`` takes the rest over (then nothing more is written here)."""
        assert self.writer is not None  # a stream has its writer
        if self.rescue is not None and self.rescue(self, error, outcome):
            return self._end_stream(b"")
        return self._end_stream(self.writer.error(error, 502))

    def _end_stream(self, last: bytes) -> bytes:
        self.ended = True
        self.finished_at = time.perf_counter()
        assert self.stream_state is not None  # only streamed answers end this way
        self.usage = self.stream_state.usage_so_far()
        return last

    def _feed_whole(self, chunk: bytes, eof: bool) -> bytes:
        if chunk:
            self.parts.append(chunk)
        if not eof:
            return b""
        self.ended = True
        self.finished_at = time.perf_counter()
        if self.decoder is not None:
            self.parts.append(self.decoder.flush())
        raw = b"".join(self.parts)
        self.parts = []
        status = self.status
        front = self.front
        if self.wrong_type is not None:
            return orjson.dumps(front.error(self.wrong_type.error, self.wrong_type.status))
        if not 200 <= status < 300:
            if self.native and _json_object(raw):
                return raw  # the provider's own error, in the client's own API
            return orjson.dumps(front.error(self.translator.parse_error(status, raw), status))
        try:
            answer, usage = self.translator.parse_response(
                self.route_type, status, raw, self.request, model_name=self.model_name
            )
        except UpstreamFormatError as failure:
            # 502 when the head is still held (buffered); else the status
            # line is out already and the body says what went wrong.
            self.answer_status = failure.status
            return orjson.dumps(front.error(failure.error, failure.status))
        self.usage = usage
        for answer_filter in self.filters:
            answer_filter.answer(answer)
        model = answer.get("model")
        self.response_model = model if isinstance(model, str) else None
        if self.as_written:
            return raw  # read for its usage and shape; sent as the provider wrote it
        if self.parsed_as_is:
            return orjson.dumps(answer)  # the provider's answer as the filters left it
        return orjson.dumps(front.answer(answer, usage, self.request, self.client_request))

    # -- accounting ------------------------------------------------------------

    def settle(self) -> None:
        """Close the books of an answer that never reached its end (the client
        went away, or the provider never answered): count what was streamed."""
        if self.ended:
            return
        self.ended = True
        if self.status:
            self.finished_at = time.perf_counter()
        if self.stream_state is not None:
            self.usage = self.stream_state.usage_so_far()

    @property
    def latency_ms(self) -> float | None:
        return _milliseconds(self.sent_at, self.finished_at)

    @property
    def ttft_ms(self) -> float | None:
        """First token of a stream; first byte of a whole answer (it holds every token)."""
        first = self.first_token_at if self.streaming else self.first_byte_at
        if not self.streaming and not 200 <= self.status < 300:
            first = None  # an error has no tokens
        return _milliseconds(self.sent_at, first)

    def log_section(self, plugin_id: str | None, cost: float | None, statistics: bool,
                    payloads: bool) -> dict[str, Any]:
        """Kong's ``ai.proxy`` log section: meta and usage (log_statistics), payload."""
        section: dict[str, Any] = {}
        if statistics:
            latency = self.latency_ms
            usage = self.usage
            section["meta"] = {
                "plugin_id": plugin_id,
                "provider_name": self.provider,
                "request_model": self.model_name,
                "response_model": self.response_model or self.model_name,
                "llm_latency": latency,
                "request_mode": "stream" if self.stream else "oneshot",
            }
            completion = usage.completion_tokens if usage else 0
            section["usage"] = {
                "prompt_tokens": usage.prompt_tokens if usage else 0,
                "completion_tokens": completion,
                "total_tokens": usage.total_tokens if usage else 0,
                # Parts of the counts above, priced or bounded apart.
                "cached_tokens": (usage.cached_tokens or 0) if usage else 0,
                "cache_write_tokens": (usage.cache_write_tokens or 0) if usage else 0,
                "reasoning_tokens": (usage.reasoning_tokens or 0) if usage else 0,
                "cost": cost or 0.0,
                "time_to_first_token": self.ttft_ms,
                "time_per_token": (round(latency / completion, 3)
                                   if latency is not None and completion else None),
                "estimated": usage.estimated if usage else False,
            }
        if payloads:
            response = b"".join(self.response_payload).decode("utf-8", "replace")
            for answer_filter in self.filters:
                response = answer_filter.logged(response)
            section["payload"] = {
                "request": self.client_body.decode("utf-8", "replace"),
                "response": response,
            }
        return section
