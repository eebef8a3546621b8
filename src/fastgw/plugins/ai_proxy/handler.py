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

from collections.abc import Awaitable
from typing import Any

import orjson

from fastgw.ai.capabilities import needs_of
from fastgw.ai.errors import TranslationError
from fastgw.ai.front_doors import front_door
from fastgw.ai.metrics import record
from fastgw.ai.openai_format import ROUTE_CHAT, ROUTE_EMBEDDINGS
from fastgw.ai.usage import estimate_prompt_tokens
from fastgw.plugins.ai_proxy.answer_filters import answer_filters
from fastgw.plugins.ai_proxy.exchange import (
    LLMExchange,
    current_exchange,
    set_current_exchange,
)
from fastgw.plugins.ai_proxy.gates import LLMCall, admit, completed, gates
from fastgw.plugins.ai_proxy.prompt_plugin import PromptPlugin
from fastgw.plugins.ai_proxy.target import LLMTarget
from fastgw.plugins.context import RequestContext
from fastgw.plugins.state import ConfigState

STREAM_DENIED = "response streaming is not enabled for this LLM"
COUNT_TOKENS_PATH = "/messages/count_tokens"


class AIProxy(PromptPlugin):
    name = "ai-proxy"
    PRIORITY = 770

    __slots__ = ("front", "route_type", "streaming", "model_header", "plugin_id", "targets",
                 "target")
    NOT_JSON = "content-type header does not match request body, or bad JSON formatting"

    # The request's model against the target's configured one: refused when
    # they differ (Kong's ai-proxy), or replaced (a balancer over models).
    OWN_MODEL_WINS = False

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        # Front door settings: the same in ai-proxy-advanced.
        self.route_type = self._route_type(config)
        self.front = front_door(config["llm_format"], self.route_type)
        self.streaming = config["response_streaming"]
        self.max_body = config["max_request_body_size"]
        self.model_header = config["model_name_header"]
        self.plugin_id = getattr(scope, "id", None)
        self.targets = self._targets(config)
        self.target = self.targets[0]

    def _targets(self, config: dict[str, Any]) -> list[LLMTarget]:
        return [LLMTarget(config, self.front)]

    @staticmethod
    def _route_type(config: dict[str, Any]) -> str:
        return config["route_type"]

    # -- access -----------------------------------------------------------------

    def handle(self, ctx: RequestContext, body: dict[str, Any],
               raw: bytes) -> Awaitable[None] | None:
        """Translate and send; what has to be waited for (semantic routing's
        embeddings, a gate's round trip to Redis) is returned, and only
        then does the request need a task (PERF)."""
        # The plugins before this one share the parsed body: translate a copy.
        body = dict(body)
        try:
            request = self.front.canonical_request(body, self.route_type)
            if self.front.name == "anthropic" and \
                    ctx.request.raw_path.endswith(COUNT_TOKENS_PATH):
                # The Anthropic SDK's messages.count_tokens: counted here, without a
                # provider call (no provider offers it in another API).
                ctx.exit(200, {"input_tokens": estimate_prompt_tokens(ROUTE_CHAT, request)})
                return None
            stream = self._stream_rule(request)
            if stream and not request.get("stream"):
                request = {**request, "stream": True}
            for field in ctx.credential_fields:
                request.pop(field, None)
                body.pop(field, None)
            if self.prepares:
                return self._refusing(ctx, self._prepare_and_send(ctx, request, body, raw,
                                                                  stream))
            self._dispatch(ctx, request, body, raw, stream)
            pending = None if ctx.exit_status else self._admit(ctx)
            if pending is not None:
                return self._refusing(ctx, pending)
        except TranslationError as refusal:
            self._refuse_translation(ctx, refusal)
        return None

    async def _prepare_and_send(self, ctx: RequestContext, request: dict[str, Any],
                                body: dict[str, Any], raw: bytes, stream: bool) -> None:
        await self._prepare(ctx, request)
        self._dispatch(ctx, request, body, raw, stream)
        if not ctx.exit_status:
            await completed(self._admit(ctx))

    async def _refusing(self, ctx: RequestContext, pending: Awaitable[None]) -> None:
        try:
            await pending
        except TranslationError as refusal:
            self._refuse_translation(ctx, refusal)

    def _refuse_translation(self, ctx: RequestContext, refusal: TranslationError) -> None:
        ctx.exit(refusal.status, self.front.error(refusal.error, refusal.status),
                 getattr(refusal, "headers", None))

    def _admit(self, ctx: RequestContext) -> Awaitable[None] | None:
        """The gates (ai-rate-limiting-advanced) hold what the call may cost,
        or refuse it (GateRefusal) before anything is sent; an awaitable
        when one of them needs a round trip."""
        if not gates(ctx):
            return None
        exchange = current_exchange(ctx)
        assert exchange is not None  # _send made it before the gates are asked
        state = ctx.plugin_state(self)
        return admit(ctx, LLMCall(state["target"], exchange.request, state.get("needs")))

    # Whether _prepare has something to await before the target is chosen.
    prepares = False

    async def _prepare(self, ctx: RequestContext, request: dict[str, Any]) -> None:
        """What choosing a target needs to await first (ai-proxy: nothing)."""

    def _dispatch(self, ctx: RequestContext, request: dict[str, Any], body: dict[str, Any],
                  raw: bytes, stream: bool) -> None:
        """Send the request to its target (ai-proxy has one), unless the
        model cannot serve it (fastgw.ai.capabilities): a 400 that says why."""
        target = self.target
        if target.checks_fit:
            needs = needs_of(self.route_type, request, stream)
            reason = target.unfit(request, needs)
            if reason is not None:
                raise TranslationError(f"{target.label} {reason.text}")
            ctx.plugin_state(self)["needs"] = needs  # the gates reuse its count
        self._send(ctx, target, request, body, raw, stream)

    def _send(self, ctx: RequestContext, target: LLMTarget, request: dict[str, Any],
              body: dict[str, Any], raw: bytes, stream: bool,
              client_headers: list[bytes] | None = None) -> None:
        """Point the request at ``target``: translated body, headers and URL.
        ``client_headers``: the client's headers as they came, when an earlier
        target's have to be undone (a failover)."""
        model = target.model_for(ctx, request, own_model_wins=self.OWN_MODEL_WINS)
        upstream = target.build(self.front, body, request, model, stream)
        model_name = model.name or request.get("model")
        # model_for has settled the model's name, or refused the request.
        assert isinstance(model_name, str)
        exchange = LLMExchange(self.front, target.translator, target.provider_route, request,
                               model_name, model.provider, upstream.stream, raw,
                               target.payloads, native=target.native, client_request=body,
                               filters=answer_filters(ctx))
        ctx.plugin_state(self)["target"] = target
        set_current_exchange(ctx, exchange)
        view = ctx.request
        view.method = upstream.method
        if client_headers is not None:
            view.headers.items[:] = client_headers
        self._set_headers(target, view.headers.items, upstream.headers, ctx.credential_headers)
        view.set_body(upstream.body)
        if not upstream.stream:
            # A whole answer is read before its head goes out, so one that
            # breaks the provider's API is a 502 and a stall is a 504.
            ctx.enable_buffering()
        ctx.set_upstream(upstream.url, tls_verify=self._verifies_tls(ctx))

    @staticmethod
    def _verifies_tls(ctx: RequestContext) -> bool:
        """Whether a provider's certificate is checked: the provider is not
        the service, but a service that turns TLS verification off (a
        private endpoint) says so for its providers too."""
        service = ctx.service
        return service is None or service.tls_verify is not False

    def refuse(self, ctx: RequestContext, status: int, message: str) -> None:
        ctx.exit(status, self.front.message_error(message, status))

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

    @staticmethod
    def _set_headers(target: LLMTarget, items: list[bytes],
                     provider_headers: list[tuple[str, str]],
                     credential_headers: frozenset[bytes]) -> None:
        """Keep the client's headers but those for the gateway, its own API or
        that the provider request sets; add the provider request's.
        PERF: one pass over the raw list."""
        provider = [(name.encode("latin-1"), value.encode("latin-1"))
                    for name, value in provider_headers]
        dropped = target.dropped_headers.union(credential_headers,
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

    def header_filter(self, ctx: RequestContext) -> None:
        exchange = current_exchange(ctx)
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
        exchange = current_exchange(ctx)
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
        exchange = current_exchange(ctx)
        if exchange is None:
            return
        state = ctx.plugin_state(self)
        target: LLMTarget = state["target"]
        target.hide_credential(ctx)
        exchange.settle()
        usage = exchange.usage
        price = target.price(usage)
        for gate in gates(ctx):
            gate.settle(ctx, usage, price)
        cache_status = ctx.shared.get("ai.cache_status", "")
        saved = ctx.shared.get("ai.cache_saved")  # a cached answer's usage
        record(exchange.provider, exchange.model_name, cache_status, usage, price,
               exchange.latency_ms, exchange.ttft_ms, saved, target.price(saved))
        # Earlier calls of the same answer (a continued stream: the exchange
        # is the last one's), each settled with the gates already; the log
        # entry shows the whole answer's usage and cost.
        for part in state.get("earlier", ()):
            part_price = part.target.price(part.usage)
            record(part.provider, part.model_name, cache_status, part.usage, part_price,
                   None, None)
            if part.usage is not None:
                usage = part.usage.plus(usage)
            if part_price is not None:
                price = (price or 0.0) + part_price
        exchange.usage = usage
        section = exchange.log_section(self.plugin_id, price, target.statistics,
                                       target.payloads)
        self._log_more(ctx, state, exchange, section)
        if section:
            if ctx.ai is None:
                ctx.ai = {}
            ctx.ai["proxy"] = section

    def _log_more(self, ctx: RequestContext, state: dict[str, Any], exchange: LLMExchange,
                  section: dict[str, Any]) -> None:
        """What a subclass adds to the log section (ai-proxy-advanced: its attempts)."""


HANDLER = AIProxy
