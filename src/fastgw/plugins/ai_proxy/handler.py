"""ai-proxy: clients speak OpenAI's API (or Anthropic's, ``llm_format:
anthropic``); the configured provider is spoken to in its own.

Access reads and checks the client's JSON body (whatever its Content-Type
says, so a client cannot slip a request past the model rules by mislabelling
it), applies the model and streaming rules, and has the provider translator
build the upstream request. The client's credentials for the gateway never
leave: every header a client authenticates with is dropped, and the
provider's credential from the config is set instead. The request then goes
to the provider's URL rather than the service's.

The answer is translated back by an ``LLMExchange``; its usage, cost and
timings go to the log entry (``ai.proxy``, Kong's shape) and the AI metrics.
Errors answer in the client's API with Kong's statuses and messages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable
from typing import Any

import orjson

from fastgw.ai.config import ModelConfig
from fastgw.ai.errors import TranslationError
from fastgw.ai.front_doors import FRONT_DOORS
from fastgw.ai.metrics import record, snapshot
from fastgw.ai.openai_format import ROUTE_CHAT, ROUTE_EMBEDDINGS
from fastgw.ai.providers import get_translator
from fastgw.ai.usage import cost, estimate_prompt_tokens
from fastgw.plugins.ai_proxy.exchange import LLMExchange
from fastgw.plugins.ai_proxy.schema import model_config
from fastgw.plugins.base import Plugin
from fastgw.plugins.context import RequestContext
from fastgw.plugins.state import ConfigState

BAD_BODY = "content-type header does not match request body, or bad JSON formatting"
NO_MODEL = "model parameter not found in request, nor in gateway configuration"
STREAM_DENIED = "response streaming is not enabled for this LLM"
OWN_MODEL = "cannot use own model - must be: {}"
TOO_LARGE = "request body is larger than max_request_body_size ({} bytes)"
COUNT_TOKENS_PATH = "/messages/count_tokens"

# Headers clients authenticate to the gateway with (and cookies, which may
# carry a session or a JWT): none of them is meant for the provider.
GATEWAY_CREDENTIAL_HEADERS = (
    "authorization", "proxy-authorization", "apikey", "x-api-key", "api-key",
    "x-goog-api-key", "cookie",
)  # fmt: skip
# Headers about the client's body and API, replaced by the provider request's.
CLIENT_API_HEADERS = (
    "content-length", "content-type", "accept", "accept-encoding", "host",
    "anthropic-version", "anthropic-beta",
)  # fmt: skip
# Of those, the ones a client of the provider's own API sends on (its betas).
NATIVE_API_HEADERS = frozenset(("anthropic-beta",))


class AIProxy(Plugin):
    name = "ai-proxy"
    PRIORITY = 770

    __slots__ = ("model", "translator", "front", "route_type", "streaming", "max_body",
                 "dropped_headers", "model_header", "statistics",
                 "payloads", "plugin_id", "input_cost", "output_cost", "cache_costs", "native",
                 "override_auth", "override_model")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.model = model_config(config)
        self.translator = get_translator(self.model)
        self.front = FRONT_DOORS[config["llm_format"]]
        self.route_type = config["route_type"]
        self.streaming = config["response_streaming"]
        self.max_body = config["max_request_body_size"]
        self.model_header = config["model_name_header"]
        self.statistics = config["logging"]["log_statistics"]
        self.payloads = config["logging"]["log_payloads"]
        self.input_cost = self.model.options.input_cost
        self.output_cost = self.model.options.output_cost
        self.cache_costs = (self.model.options.cache_read_cost,
                            self.model.options.cache_write_cost)
        self.override_model = config["model"]["allow_override"]
        auth = self.model.auth
        self.override_auth = auth.allow_override
        # The client speaks the provider's own API: its body and the answer
        # pass through, as do the API's own headers (anthropic-beta).
        self.native = self.translator.native_format == self.front.name and \
            self.route_type == ROUTE_CHAT
        dropped = {*GATEWAY_CREDENTIAL_HEADERS, *CLIENT_API_HEADERS}
        if self.native:
            dropped -= NATIVE_API_HEADERS
        if auth.header_name:
            dropped.add(auth.header_name.lower())
        # Plus, per request, where the route's auth plugins read credentials
        # (ctx.credential_headers and credential_fields).
        self.dropped_headers = frozenset(name.encode("latin-1") for name in dropped)
        self.plugin_id = getattr(scope, "id", None)

    @classmethod
    def worker_stats(cls, metrics: bool) -> dict[str, Any]:
        # The AI counters, for /metrics only (they are per model and provider).
        return {"ai": snapshot()} if metrics else {}

    # -- access -----------------------------------------------------------------

    def access(self, ctx: RequestContext) -> Awaitable[None] | None:
        length = ctx.request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            # Refused before a byte of the body is read.
            self._refuse(ctx, 413, TOO_LARGE.format(self.max_body))
            return None
        return self._access(ctx)

    async def _access(self, ctx: RequestContext) -> None:
        raw = await ctx.read_body()
        if len(raw) > self.max_body:
            self._refuse(ctx, 413, TOO_LARGE.format(self.max_body))
            return
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            self._refuse(ctx, 400, BAD_BODY)
            return
        try:
            request = self.front.canonical_request(body, self.route_type)
            if self.front.name == "anthropic" and \
                    ctx.request.raw_path.endswith(COUNT_TOKENS_PATH):
                # The Anthropic SDK's messages.count_tokens: counted here, without a
                # provider call (no provider offers it in another API).
                ctx.exit(200, {"input_tokens": estimate_prompt_tokens(ROUTE_CHAT, request)})
                return None
            model = self._model_for(ctx, request)
            stream = self._stream_rule(request)
            if stream and not request.get("stream"):
                request = {**request, "stream": True}
            for field in ctx.credential_fields:
                request.pop(field, None)
                body.pop(field, None)
            if self.native:
                upstream = self.translator.build_native_request(self.route_type, body, model,
                                                                stream)
            else:
                self.front.refuse_untranslated(body, model.provider)
                upstream = self.translator.build_request(self.route_type, request, model)
        except TranslationError as refusal:
            ctx.exit(refusal.status, self.front.error(refusal.error, refusal.status))
            return None
        model_name = model.name or request.get("model")
        # _model_for has settled the model's name, or refused the request.
        assert isinstance(model_name, str)
        exchange = LLMExchange(self.front, self.translator, self.route_type, request,
                               model_name, model.provider, upstream.stream, raw, self.payloads,
                               native=self.native)
        ctx.plugin_state(self)["exchange"] = exchange
        view = ctx.request
        view.method = upstream.method
        self._set_headers(view.headers.items, upstream.headers, ctx.credential_headers)
        view.set_body(upstream.body)
        if not upstream.stream:
            # A whole answer is read before its head goes out, so one that
            # breaks the provider's API is a 502 and a stall is a 504.
            ctx.enable_buffering()
        # The provider is not the service, but a service that turns TLS
        # verification off (a private endpoint) says so for its provider too.
        service = ctx.service
        ctx.set_upstream(upstream.url,
                         tls_verify=service is None or service.tls_verify is not False)
        return None

    def _refuse(self, ctx: RequestContext, status: int, message: str) -> None:
        ctx.exit(status, self.front.message_error(message, status))

    def _model_for(self, ctx: RequestContext, request: dict[str, Any]) -> ModelConfig:
        """The model config this request goes out with (Kong's model rules)."""
        model = self.model
        asked = request.get("model")
        if not isinstance(asked, str) or not asked:
            asked = None
        if model.name is None or self.override_model:
            if asked is None and model.name is None:
                raise TranslationError(NO_MODEL)
            if asked is not None and asked != model.name:
                model = dataclasses.replace(model, name=asked)
        elif asked is not None and asked != model.name:
            raise TranslationError(OWN_MODEL.format(model.name))
        if self.override_auth:
            model = self._client_credential(ctx, request, model)
        return model

    def _client_credential(self, ctx: RequestContext, request: dict[str, Any],
                           model: ModelConfig) -> ModelConfig:
        """auth.allow_override: the client's own provider credential, when it sent one."""
        auth = model.auth
        value = None
        if auth.header_name:
            value = ctx.request.headers.get(auth.header_name)
            if value is not None:
                return dataclasses.replace(
                    model, auth=dataclasses.replace(auth, header_value=value))
        if auth.param_name:
            if auth.param_location == "body":
                value = request.get(auth.param_name)
            else:
                values = ctx.request.query().get(auth.param_name)
                value = values[0] if values else None
            if isinstance(value, str) and value:
                return dataclasses.replace(
                    model, auth=dataclasses.replace(auth, param_value=value))
        return model

    def _stream_rule(self, request: dict[str, Any]) -> bool:
        """Whether the answer is streamed, after response_streaming."""
        if self.route_type == ROUTE_EMBEDDINGS:
            return False
        asked = request.get("stream") is True
        if self.streaming == "always":
            return True
        if asked and self.streaming == "deny":
            raise TranslationError(STREAM_DENIED)
        return asked

    def _set_headers(self, items: list[bytes], provider_headers: list[tuple[str, str]],
                     credential_headers: frozenset[bytes]) -> None:
        """Keep the client's headers but those for the gateway, its own API or
        that the provider request sets; add the provider request's.
        PERF: one pass over the raw list."""
        provider = [(name.encode("latin-1"), value.encode("latin-1"))
                    for name, value in provider_headers]
        dropped = self.dropped_headers.union(credential_headers,
                                             (name.lower() for name, _ in provider))
        kept: list[bytes] = []
        for i in range(0, len(items), 2):
            if items[i].lower() not in dropped:
                kept.append(items[i])
                kept.append(items[i + 1])
        for name, value in provider:
            kept.append(name)
            kept.append(value)
        if not any(name.lower() == b"accept-encoding" for name, _ in provider):
            kept.append(b"Accept-Encoding")
            kept.append(b"identity")  # the body must be readable to be translated
        items[:] = kept

    # -- response -----------------------------------------------------------------

    def _exchange(self, ctx: RequestContext) -> LLMExchange | None:
        return ctx.plugin_state(self).get("exchange")

    def header_filter(self, ctx: RequestContext) -> None:
        exchange = self._exchange(ctx)
        response = ctx.response
        assert response is not None  # header_filter runs once the response exists
        if response.source == "gateway":
            # The gateway's own error (no upstream answer, a timeout): said
            # again in the client's API by body_filter.
            ctx.plugin_state(self)["gateway_error"] = []
            return
        if exchange is None or response.source != "service":
            return  # a plugin's exit (ours is in the client's API already)
        exchange.start_response(response.status, response.headers, self.model_header)
        response.status = exchange.answer_status

    def body_filter(self, ctx: RequestContext, chunk: bytes, eof: bool) -> bytes:
        gateway_error = ctx.plugin_state(self).get("gateway_error")
        if gateway_error is not None:
            gateway_error.append(chunk)
            if not eof:
                return b""
            assert ctx.response is not None  # set by the header phase
            return self._front_error(b"".join(gateway_error), ctx.response.status)
        exchange = self._exchange(ctx)
        if exchange is None or not exchange.status:
            return chunk
        response = ctx.response
        out = exchange.feed(chunk, eof, eof and getattr(response, "aborted", False))
        if response is not None and response.buffered:
            response.status = exchange.answer_status
        return out

    def _front_error(self, kong_body: bytes, status: int) -> bytes:
        """Kong's ``{"message": ...}`` error in the front door's error shape."""
        try:
            message = orjson.loads(kong_body).get("message")
        except (orjson.JSONDecodeError, AttributeError):
            message = None
        if not isinstance(message, str):
            message = kong_body.decode("utf-8", "replace") or f"gateway error {status}"
        return orjson.dumps(self.front.message_error(message, status))

    # -- log --------------------------------------------------------------------------

    def log(self, ctx: RequestContext) -> None:
        exchange = self._exchange(ctx)
        if exchange is None:
            return
        self._hide_provider_credential(ctx)
        exchange.settle()
        usage = exchange.usage
        price = cost(usage, self.input_cost, self.output_cost, *self.cache_costs) \
            if usage else None
        cache_status = ctx.shared.get("ai.cache_status", "")
        record(exchange.provider, exchange.model_name, cache_status, usage, price,
               exchange.latency_ms, exchange.ttft_ms)
        section = exchange.log_section(self.plugin_id, price, self.statistics, self.payloads)
        if section:
            if ctx.ai is None:
                ctx.ai = {}
            ctx.ai["proxy"] = section

    def _hide_provider_credential(self, ctx: RequestContext) -> None:
        """The log entry shows the request as sent upstream: take the provider's
        credential out of it before any log plugin serialises it."""
        auth = self.model.auth
        view = ctx.request
        if auth.header_name:
            view.headers.remove(auth.header_name)
        if auth.param_name and auth.param_location != "body" and view.query_string:
            params = view.query()
            if params.pop(auth.param_name, None) is not None:
                view.set_query(params)


HANDLER = AIProxy
