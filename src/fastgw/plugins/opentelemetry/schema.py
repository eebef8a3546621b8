"""Config of ``opentelemetry``, after Kong's ``kong/plugins/opentelemetry/schema.lua``.

fastgw implements traces (not ``logs_endpoint``) and W3C trace context only
(``traceparent``/``tracestate``): another propagation format is refused by
name rather than ignored. Export batches through the official SDK's batch
processor, sized by Kong's ``queue`` fields it has an equivalent for.
"""

from __future__ import annotations

import importlib.util

from fastgw.config.schema import Array, Integer, Map, Number, Path, Record, String, Validation

FORMATS = ("w3c", "preserve")
SDK_MODULES = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")


def _check(config: dict, path: Path, ctx: Validation) -> None:
    missing = [name for name in SDK_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        ctx.error(path, "needs the OpenTelemetry SDK and OTLP/HTTP exporter: "
                  "pip install 'fastgw[otel]'")
    propagation = config["propagation"]
    for field in ("extract", "inject"):
        for index, name in enumerate(propagation[field] or ()):
            if name not in FORMATS:
                ctx.error((((path, "propagation"), field), index),
                          f"format '{name}' is not supported by fastgw (W3C trace context "
                          "only)")
    if propagation["default_format"] != "w3c":
        ctx.error(((path, "propagation"), "default_format"),
                  "only 'w3c' is supported by fastgw")


SCHEMA = Record(
    {
        "traces_endpoint": String(
            required=True, match=r"^https?://",
            match_message="expected an http:// or https:// URL",
            description="OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces).",
        ),
        "headers": Map(
            String(description="A header name."),
            String(referenceable=True, secret=True, description="Its value."),
            description="Headers sent with each export (an API key, say).",
        ),
        "resource_attributes": Map(
            String(description="An attribute name."),
            String(description="Its value."),
            description="Resource attributes of the spans (service.name defaults to 'fastgw').",
        ),
        "sampling_rate": Number(
            between=(0, 1), default=1,
            description="Share of traces sampled (a parent's decision is kept).",
        ),
        "propagation": Record(
            {
                "extract": Array(String(description="A format."), default=("w3c",),
                                 description="Formats read from the request."),
                "inject": Array(String(description="A format."), default=("preserve",),
                                description="Formats written to the upstream request."),
                "default_format": String(default="w3c",
                                         description="Format injected for a new trace."),
                "clear": Array(String(description="A header name."), default=(),
                               description="Headers removed before the request goes on."),
            },
            default={},
            description="Trace context in and out (W3C traceparent/tracestate).",
        ),
        "queue": Record(
            {
                "max_batch_size": Integer(default=200, between=(1, 1_000_000),
                                          description="Most spans in one export."),
                "max_coalescing_delay": Number(
                    default=1, between=(0.001, 3600),
                    description="Seconds a span waits for its batch to fill."),
                "max_entries": Integer(default=10000, between=(1, 1_000_000),
                                       description="Most spans waiting; more are dropped."),
            },
            default={},
            description="The batch between requests and the exporter.",
        ),
        "send_timeout": Integer(default=5000, between=(1, 2**31 - 1),
                                description="Milliseconds an export may take."),
    },
    validator=_check,
    description="Trace every request, exported over OTLP/HTTP.",
)
