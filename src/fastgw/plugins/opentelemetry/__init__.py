"""``opentelemetry``: one trace span per request, with the HTTP attributes and,
on AI routes, OpenTelemetry's GenAI conventions, exported over OTLP/HTTP."""
