"""opentelemetry in the real gateway: what a local OTLP/HTTP receiver gets,
decoded with opentelemetry-proto: one SERVER span per request with the HTTP
attributes, the GenAI ones on an AI route, the client's trace continued and
the upstream given the request's span as parent."""

import http.server
import threading
import time

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from fastgw.testing import GatewayProcess, UpstreamServer
from fastgw.testing.mock_llm import running_mock

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class Receiver(http.server.BaseHTTPRequestHandler):
    spans: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    Receiver.spans.append((resource, span))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _value(value):
    return getattr(value, value.WhichOneof("value"))


def attributes(span) -> dict:
    return {a.key: _value(a.value) for a in span.attributes}


@pytest.fixture(scope="module")
def traced():
    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    otel = {"name": "opentelemetry", "config": {
        "traces_endpoint": f"http://127.0.0.1:{server.server_port}/v1/traces",
        "resource_attributes": {"deployment.environment": "test"},
        "queue": {"max_coalescing_delay": 0.05}}}
    with running_mock() as mock, UpstreamServer() as upstream:
        ai = {"route_type": "llm/v1/chat",
              "auth": {"header_name": "Authorization", "header_value": "Bearer k"},
              "model": {"provider": "openai", "name": "m",
                        "options": {"upstream_url": mock.base_url + "/v1/chat/completions"}}}
        doc = {"_format_version": "3.0", "services": [
            {"name": "api", "url": f"http://127.0.0.1:{upstream.port}",
             "routes": [{"name": "plain", "paths": ["/plain"], "plugins": [otel]},
                        {"name": "untraced", "paths": ["/untraced"]},
                        {"name": "tools", "paths": ["/mcp"], "plugins": [otel, {
                            "name": "ai-mcp-proxy", "config": {
                                "mode": "conversion-listener",
                                "tools": [{"name": "get_item", "path": "/items"}]}}]}]},
            {"name": "llm", "url": mock.base_url,
             "routes": [{"name": "chat", "paths": ["/chat"],
                         "plugins": [{"name": "ai-proxy", "config": ai}, otel]}]}]}
        with GatewayProcess(doc) as gw:
            gw.upstream = upstream
            yield gw
    server.shutdown()


def wait_for_span(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [(r, s) for r, s in Receiver.spans if predicate(s)]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no such span among {len(Receiver.spans)}")


def test_a_span_per_request_with_http_attributes_continuing_the_client_trace(traced):
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
    status, _, _ = traced.request("GET", "/plain/items?x=1",
                                  headers={"traceparent": traceparent, "X-Test": "otel"})
    assert status == 200
    resource, span = wait_for_span(lambda s: attributes(s).get("url.path") == "/plain/items")
    assert span.trace_id.hex() == TRACE_ID and span.parent_span_id.hex() == PARENT_ID
    assert span.kind == span.SPAN_KIND_SERVER and span.name == "GET plain"
    found = attributes(span)
    assert found["http.request.method"] == "GET"
    assert found["http.response.status_code"] == 200
    assert found["http.route"] == "plain"
    assert resource["service.name"] == "fastgw"
    assert resource["deployment.environment"] == "test"
    # The upstream continues the same trace, under the gateway's span.
    sent = traced.upstream.requests[-1].header("traceparent")
    assert sent == f"00-{TRACE_ID}-{span.span_id.hex()}-01"
    assert span.end_time_unix_nano > span.start_time_unix_nano


def test_ai_routes_carry_the_gen_ai_conventions(traced):
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    status, _, _ = traced.request("POST", "/chat", orjson.dumps(body),
                                  {"Content-Type": "application/json"})
    assert status == 200
    _, span = wait_for_span(lambda s: attributes(s).get("http.route") == "chat")
    found = attributes(span)
    assert found["gen_ai.operation.name"] == "chat"
    assert found["gen_ai.provider.name"] == "openai"
    assert found["gen_ai.request.model"] == "m"
    assert found["gen_ai.response.model"] == "m"
    assert found["gen_ai.usage.input_tokens"] > 0 and found["gen_ai.usage.output_tokens"] > 0
    assert 0 < found["gen_ai.response.time_to_first_chunk"] < 10


def test_mcp_routes_carry_the_method_and_the_tool(traced):
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "get_item", "arguments": {}}}
    status, _, _ = traced.request("POST", "/mcp", orjson.dumps(call),
                                  {"Content-Type": "application/json"})
    assert status == 200
    _, span = wait_for_span(lambda s: attributes(s).get("http.route") == "tools")
    found = attributes(span)
    assert (found["mcp.method.name"], found["gen_ai.tool.name"]) == ("tools/call", "get_item")


def test_a_route_without_the_plugin_sends_no_span(traced):
    before = len(Receiver.spans)
    assert traced.request("GET", "/untraced")[0] == 200
    time.sleep(0.3)
    assert all(attributes(s).get("http.route") != "untraced" for _, s in Receiver.spans)
    assert traced.upstream.requests[-1].header("traceparent") is None
    assert len(Receiver.spans) >= before
