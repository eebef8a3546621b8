"""opentelemetry: a SERVER span per request, from the moment the request
arrived to the end of its answer, exported over OTLP/HTTP.

Attributes: the request's method, path, scheme, host, route and client
address, the answer's status (an error status for 5xx); on AI routes,
OpenTelemetry's GenAI conventions: ``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.response.model``,
``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens`` and
``gen_ai.response.time_to_first_chunk`` (seconds).

A ``traceparent`` from the client continues its trace (its sampling decision
is kept); the upstream gets the request's own span as its parent. Spans go
to the official SDK's batch processor, whose thread exports them: the request
path only records. One exporter per worker and endpoint settings, shared by
the plugin's instances and kept across config versions.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from fastgw.plugins.ai_proxy.exchange import current_exchange
from fastgw.plugins.base import Plugin
from fastgw.plugins.context import TRACE_ATTRIBUTES

if TYPE_CHECKING:
    from fastgw.plugins.context import RequestContext
    from fastgw.plugins.state import ConfigState

PROPAGATOR = TraceContextTextMapPropagator()
TRACE_HEADERS = ("traceparent", "tracestate")
FLUSH_ON_SHUTDOWN_S = 2.0
OPERATIONS = {"llm/v1/chat": "chat", "llm/v1/completions": "text_completion",
              "llm/v1/embeddings": "embeddings", "llm/v1/responses": "chat"}

# (endpoint, headers, resource, sampling, batch settings) -> provider, per worker.
_PROVIDERS: dict[tuple, TracerProvider] = {}


def _provider(config: dict[str, Any]) -> TracerProvider:
    queue = config["queue"]
    key = (config["traces_endpoint"], tuple(sorted((config["headers"] or {}).items())),
           tuple(sorted((config["resource_attributes"] or {}).items())),
           config["sampling_rate"], queue["max_batch_size"], queue["max_coalescing_delay"],
           queue["max_entries"], config["send_timeout"])
    provider = _PROVIDERS.get(key)
    if provider is None:
        attributes = {"service.name": "fastgw", "host.name": socket.gethostname(),
                      **(config["resource_attributes"] or {})}
        provider = TracerProvider(
            resource=Resource.create(attributes),
            sampler=ParentBased(TraceIdRatioBased(config["sampling_rate"])))
        exporter = OTLPSpanExporter(endpoint=config["traces_endpoint"],
                                    headers=dict(config["headers"] or {}),
                                    timeout=config["send_timeout"] / 1000)
        provider.add_span_processor(BatchSpanProcessor(
            exporter, max_queue_size=queue["max_entries"],
            max_export_batch_size=min(queue["max_batch_size"], queue["max_entries"]),
            schedule_delay_millis=queue["max_coalescing_delay"] * 1000))
        _PROVIDERS[key] = provider
    return provider


class OpenTelemetry(Plugin):
    name = "opentelemetry"
    PRIORITY = 14  # Kong's

    __slots__ = ("tracer", "extract", "inject", "clear")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.tracer = _provider(config).get_tracer("fastgw")
        propagation = config["propagation"]
        self.extract = bool(propagation["extract"])
        self.inject = bool(propagation["inject"])
        self.clear = tuple(propagation["clear"] or ())

    def _start_span(self, ctx: RequestContext) -> Any:
        """The request's span, from when it arrived, continuing the client's trace."""
        request = ctx.request
        headers = request.headers
        parent = None
        if self.extract:
            carrier = {name: value for name in TRACE_HEADERS
                       if (value := headers.get(name)) is not None}
            parent = PROPAGATOR.extract(carrier) if carrier else None
        span = self.tracer.start_span(
            f"{request.method} {ctx.route.name}", context=parent, kind=SpanKind.SERVER,
            start_time=int(ctx.started_at * 1e9),
            attributes={
                "http.request.method": request.method,
                "url.path": request.raw_path,
                "url.scheme": request.scheme,
                "server.address": request.host or "",
                "http.route": ctx.route.name,
                "client.address": request.client_ip,
            })
        ctx.plugin_state(self)["span"] = span
        return span

    def access(self, ctx: RequestContext) -> None:
        span = self._start_span(ctx)
        headers = ctx.request.headers
        for name in self.clear:
            headers.remove(name)
        if self.inject:
            carrier: dict[str, str] = {}
            PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
            for name in TRACE_HEADERS:
                headers.remove(name)
                if name in carrier:
                    headers.set(name, carrier[name])

    def log(self, ctx: RequestContext) -> None:
        span = ctx.plugin_state(self).get("span")
        if span is None:
            # Answered before this plugin's access ran (an authentication
            # refusal, an MCP answer, a termination): traced all the same.
            span = self._start_span(ctx)
        status = ctx.response.status if ctx.response is not None else 0
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        exchange = current_exchange(ctx)
        if exchange is not None:
            _gen_ai(span, exchange)
        noted = ctx.shared.get(TRACE_ATTRIBUTES)
        if noted:
            span.set_attributes(noted)
        span.end()

    @classmethod
    async def shutdown(cls, timeout: float) -> None:
        """Export what is queued before the worker exits, within a bound: a
        collector that is down must not hold the shutdown for long."""
        budget_ms = int(min(timeout, FLUSH_ON_SHUTDOWN_S) * 1000)
        for provider in _PROVIDERS.values():
            provider.force_flush(budget_ms)


def _gen_ai(span: Any, exchange: Any) -> None:
    attributes = {
        "gen_ai.operation.name": OPERATIONS.get(exchange.route_type, exchange.route_type),
        "gen_ai.provider.name": exchange.provider,
        "gen_ai.request.model": exchange.model_name,
        "gen_ai.response.model": exchange.response_model or exchange.model_name,
    }
    usage = exchange.usage
    if usage is not None:
        attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
        attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
    ttft = exchange.ttft_ms
    if ttft is not None:
        attributes["gen_ai.response.time_to_first_chunk"] = ttft / 1000
    span.set_attributes({name: value for name, value in attributes.items() if value is not None})


HANDLER = OpenTelemetry
