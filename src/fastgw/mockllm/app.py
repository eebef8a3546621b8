"""Request dispatch for the mock: routing, failure injection, the request log.

`MockApp.plan` turns one parsed HTTP request into a `Plan` (what to send, after how long, and
how to pace or cut it); `fastgw.mockllm.server` owns the sockets and carries the plan out.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

import orjson

from fastgw.mockllm.providers import (
    AnthropicProvider,
    Call,
    GeminiProvider,
    OllamaProvider,
    OpenAIProvider,
    Provider,
)
from fastgw.mockllm.replies import ApiError, JsonReply, StreamReply, json_reply
from fastgw.mockllm.textgen import DEFAULT_OUTPUT_TOKENS, MAX_OUTPUT_TOKENS

logger = logging.getLogger(__name__)

REQUEST_LOG_SIZE = 100
# Statuses drawn by --fail-rate: the transient errors a gateway is expected to retry or report.
INJECTED_STATUSES = (500, 503, 429)

# Request headers the mock reacts to; every other header is only recorded.
CONTROL_HEADERS = frozenset(
    {
        b"x-mock-status",
        b"x-mock-cut-after",
        b"x-mock-latency-ms",
        b"x-mock-output-tokens",
        b"anthropic-version",
        b"expect",
    }
)

Handler = Callable[[Call], JsonReply | StreamReply]


@dataclass(frozen=True, slots=True)
class MockSettings:
    """Server-wide behaviour, fixed at start-up (see the `fastgw mock-llm` options)."""

    latency_ms: float = 0.0  # delay before the first byte of every provider response
    tokens_per_s: float = 0.0  # pace of streamed token events; 0 sends them back to back
    fail_rate: float = 0.0  # fraction of provider requests answered with 500/503/429
    seed: int | None = None  # seeds the failure draws, for reproducible runs
    output_tokens: int = DEFAULT_OUTPUT_TOKENS  # natural answer length before max_tokens

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.tokens_per_s < 0:
            raise ValueError("latency_ms and tokens_per_s must be >= 0")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        if not 1 <= self.output_tokens <= MAX_OUTPUT_TOKENS:
            raise ValueError(f"output_tokens must be between 1 and {MAX_OUTPUT_TOKENS}")


class IncomingRequest:
    """One request as parsed off the wire; filled in by the protocol's parser callbacks."""

    __slots__ = (
        "method",
        "url",
        "path",
        "query",
        "headers",
        "controls",
        "body_chunks",
        "body",
        "keep_alive",
    )

    def __init__(self) -> None:
        self.method = b""
        self.url = b""
        self.path = ""
        self.query = ""
        self.headers: list[tuple[bytes, bytes]] = []
        self.controls: dict[bytes, bytes] = {}
        self.body_chunks: list[bytes] = []  # as received; joined into `body` at the end
        self.body = b""
        self.keep_alive = True

    def finish_url(self) -> None:
        raw_path, _, raw_query = self.url.partition(b"?")
        path = raw_path.decode("utf-8", "replace")
        self.path = unquote(path) if "%" in path else path
        self.query = raw_query.decode("utf-8", "replace")

    def to_json(self) -> dict:
        return {
            "method": self.method.decode("latin-1"),
            "path": self.path,
            "query": self.query,
            "headers": [
                [name.decode("latin-1"), value.decode("latin-1")] for name, value in self.headers
            ],
            "body": self.body.decode("utf-8", "replace"),
        }


@dataclass(slots=True)
class Plan:
    reply: JsonReply | StreamReply
    delay_s: float = 0.0
    cut_after: int | None = None  # close the connection after this many stream events
    pace_s: float = 0.0  # pause between token events


@dataclass(slots=True)
class _Route:
    provider: Provider
    handlers: dict[bytes, Handler]
    params: dict[str, str]


class MockApp:
    def __init__(self, settings: MockSettings) -> None:
        self.settings = settings
        self.request_log: deque[IncomingRequest] = deque(maxlen=REQUEST_LOG_SIZE)
        self._failure_rng = random.Random(settings.seed)
        self._pace_s = 1.0 / settings.tokens_per_s if settings.tokens_per_s else 0.0
        self.openai = OpenAIProvider()
        self.anthropic = AnthropicProvider()
        self.gemini = GeminiProvider()
        self.ollama = OllamaProvider()
        # PERF: exact paths are one dict lookup; only Gemini and Azure paths need parsing.
        self._exact_routes: dict[str, tuple[Provider, dict[bytes, Handler]]] = {
            "/v1/chat/completions": (self.openai, {b"POST": self.openai.chat}),
            "/v1/completions": (self.openai, {b"POST": self.openai.completions}),
            "/v1/responses": (self.openai, {b"POST": self.openai.responses}),
            "/v1/embeddings": (self.openai, {b"POST": self.openai.embeddings}),
            "/v1/models": (self.openai, {b"GET": self.openai.models}),
            "/v1/messages": (self.anthropic, {b"POST": self.anthropic.messages}),
            "/v1beta/models": (self.gemini, {b"GET": self.gemini.models}),
            "/api/chat": (self.ollama, {b"POST": self.ollama.chat}),
            "/api/tags": (self.ollama, {b"GET": self.ollama.tags}),
        }
        self._azure_handlers: dict[str, Handler] = {
            "chat/completions": self.openai.chat,
            "completions": self.openai.completions,
            "embeddings": self.openai.embeddings,
        }
        self._gemini_handlers: dict[str, Handler] = {
            "generateContent": self.gemini.generate_content,
            "streamGenerateContent": self.gemini.stream_generate_content,
        }
        self._internal: dict[tuple[bytes, str], Callable[[], JsonReply]] = {
            (b"GET", "/_mock/health"): lambda: json_reply(200, {"status": "ok"}),
            (b"GET", "/_mock/requests"): self._list_requests,
            (b"DELETE", "/_mock/requests"): self._clear_requests,
        }

    # --- entry point ---------------------------------------------------------------------------

    def plan(self, request: IncomingRequest) -> Plan:
        if request.path.startswith("/_mock/"):
            internal = self._internal.get((request.method, request.path))
            return Plan(
                internal() if internal else json_reply(404, {"error": "unknown mock endpoint"})
            )
        self.request_log.append(request)
        controls = request.controls
        provider: Provider | None = None
        delay_s = self.settings.latency_ms / 1000.0
        try:
            delay_ms = _control_int(controls, b"x-mock-latency-ms")
            if delay_ms is not None:
                delay_s = delay_ms / 1000.0
            route = self._route(request)
            provider = route.provider
            handler = route.handlers.get(request.method)
            if handler is None:
                allowed = ", ".join(method.decode() for method in route.handlers)
                reply = provider.error_reply(
                    405, f"Method {request.method.decode()} not allowed; use {allowed}."
                )
                reply.headers.append((b"allow", allowed.encode()))
                return Plan(reply, delay_s)
            injected = self._injected_status(controls)
            if injected is not None:
                return Plan(provider.error_reply(injected), delay_s)
            call = Call(
                body=_parse_body(request) if request.method == b"POST" else {},
                path_params=route.params,
                query=dict(parse_qsl(request.query)) if request.query else {},
                output_tokens=self._output_tokens(controls),
                started_ns=time.perf_counter_ns(),
            )
            cut_after = _control_int(controls, b"x-mock-cut-after")
            return Plan(handler(call), delay_s, cut_after, self._pace_s)
        except ApiError as error:
            provider = provider or self._guess_provider(request)
            return Plan(provider.error_reply(error.status, error.message, error.param), delay_s)
        except Exception as error:
            # An input shape the mock did not foresee: answer like a provider would, and log.
            logger.exception("mock-llm: handler failed for %s %s", request.method, request.path)
            provider = provider or self._guess_provider(request)
            return Plan(provider.error_reply(500, f"Mock internal error: {error!r}"), delay_s)

    # --- routing -------------------------------------------------------------------------------

    def _route(self, request: IncomingRequest) -> _Route:
        path = request.path
        exact = self._exact_routes.get(path)
        if exact is not None:
            provider, handlers = exact
            if path == "/v1/models" and b"anthropic-version" in request.controls:
                provider, handlers = self.anthropic, {b"GET": self.anthropic.models}
            return _Route(provider, handlers, {})
        for prefix in ("/v1beta/models/", "/v1/models/"):
            if path.startswith(prefix):
                return self._model_route(path[len(prefix) :], prefix)
        if path.startswith("/openai/deployments/"):
            return self._azure_route(request)
        raise ApiError(404, f"Unknown path: {request.method.decode()} {path}")

    def _model_route(self, rest: str, prefix: str) -> _Route:
        model, colon, action = rest.partition(":")
        if colon:
            handler = self._gemini_handlers.get(action)
            if handler is None or not model:
                raise ApiError(404, f"Method not found: {action}")
            return _Route(self.gemini, {b"POST": handler}, {"model": model})
        if prefix == "/v1/models/" and model:
            return _Route(self.openai, {b"GET": self.openai.model}, {"model": model})
        raise ApiError(404, f"Unknown model path: {prefix}{rest}")

    def _azure_route(self, request: IncomingRequest) -> _Route:
        deployment, _, operation = request.path[len("/openai/deployments/") :].partition("/")
        handler = self._azure_handlers.get(operation)
        # Azure answers 404 "Resource not found" to any path it does not serve, api-version included.
        if handler is None or not deployment or "api-version=" not in request.query:
            raise ApiError(404, "Resource not found")
        return _Route(self.openai, {b"POST": handler}, {"deployment": deployment})

    def _guess_provider(self, request: IncomingRequest) -> Provider:
        """Whose error shape to use for a request, before or without a matching route."""
        path = request.path
        if path.startswith("/v1beta/"):
            return self.gemini
        if path.startswith("/api/"):
            return self.ollama
        if path.startswith("/v1/messages") or b"anthropic-version" in request.controls:
            return self.anthropic
        if path.startswith("/v1/models/") and ":" in path:
            return self.gemini
        return self.openai

    # --- failure injection ---------------------------------------------------------------------

    def _injected_status(self, controls: dict[bytes, bytes]) -> int | None:
        forced = _control_int(controls, b"x-mock-status")
        if forced is not None:
            if not 400 <= forced <= 599:
                raise ApiError(400, "x-mock-status must be an HTTP error status (400-599).")
            return forced
        fail_rate = self.settings.fail_rate
        if fail_rate and self._failure_rng.random() < fail_rate:
            return self._failure_rng.choice(INJECTED_STATUSES)
        return None

    def _output_tokens(self, controls: dict[bytes, bytes]) -> int:
        wanted = _control_int(controls, b"x-mock-output-tokens")
        if wanted is None:
            return self.settings.output_tokens
        if not 1 <= wanted <= MAX_OUTPUT_TOKENS:
            raise ApiError(400, f"x-mock-output-tokens must be between 1 and {MAX_OUTPUT_TOKENS}.")
        return wanted

    # --- introspection -------------------------------------------------------------------------

    def _list_requests(self) -> JsonReply:
        return json_reply(200, [request.to_json() for request in self.request_log])

    def _clear_requests(self) -> JsonReply:
        cleared = len(self.request_log)
        self.request_log.clear()
        return json_reply(200, {"cleared": cleared})


def _control_int(controls: dict[bytes, bytes], name: bytes) -> int | None:
    raw = controls.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name.decode()} must be an integer, got {raw!r}.") from None
    if value < 0:
        raise ApiError(400, f"{name.decode()} must be >= 0.")
    return value


def _parse_body(request: IncomingRequest) -> dict:
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, f"The request body is not valid JSON: {error}.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body
