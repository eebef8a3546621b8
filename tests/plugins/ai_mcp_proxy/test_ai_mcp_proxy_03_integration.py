"""ai-mcp-proxy in the real gateway: the official MCP SDK's client lists and
calls REST tools; ACLs per consumer and group hide and refuse tools without
the service seeing a call; malformed JSON-RPC never reaches the service; a
failing or silent service is a tool error in bounded time."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from mcp.client.client import Client
from mcp.shared.exceptions import MCPError

from fastgw.testing import GatewayProcess, UpstreamServer, free_port, service_doc

TOOLS = [
    {"name": "get_order", "description": "One order", "path": "/orders/{id}",
     "parameters": [{"name": "id", "in": "path", "schema": {"type": "integer"}},
                    {"name": "verbose", "in": "query", "schema": {"type": "boolean"}},
                    {"name": "X-Trace", "in": "header"}],
     "annotations": {"read_only_hint": True}},
    {"name": "create_order", "method": "POST", "path": "orders",
     "request_body": {"required": True,
                      "content": {"application/json": {"schema": {"type": "object"}}}},
     "acl": {"allow": ["admins"]}},
    {"name": "delete_order", "method": "DELETE", "path": "/orders/{id}",
     "parameters": [{"name": "id", "in": "path"}], "acl": {"deny": ["bob"]}},
]


async def failing(req, writer):
    body = b'{"message": "no such order"}'
    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)


@pytest.fixture(scope="module")
def gateway():
    with UpstreamServer() as upstream, UpstreamServer(failing) as broken:
        mcp = {"name": "ai-mcp-proxy", "config": {
            "mode": "conversion-listener", "tools": TOOLS, "include_consumer_groups": True,
            "default_acl": [{"allow": ["alice", "bob"]}], "server": {"timeout": 500},
            "logging": {"log_statistics": True, "log_audits": True}}}
        open_mcp = {"name": "ai-mcp-proxy", "config": {"mode": "conversion-listener",
                                                       "tools": TOOLS[:1],
                                                       "server": {"timeout": 300}}}
        doc = service_doc(upstream.port, routes=[
            {"name": "mcp", "paths": ["/mcp"], "plugins": [
                {"name": "key-auth", "config": {}}, mcp]}], path="/api")
        doc["services"] += [
            {"name": "broken", "url": f"http://127.0.0.1:{broken.port}",
             "routes": [{"name": "broken", "paths": ["/broken-mcp"], "plugins": [open_mcp]}]},
            {"name": "silent", "url": f"http://127.0.0.1:{free_port()}",
             "routes": [{"name": "silent", "paths": ["/silent-mcp"], "plugins": [open_mcp]}]}]
        doc["consumers"] = [
            {"username": "alice", "keyauth_credentials": [{"key": "alice-key"}],
             "groups": [{"name": "admins"}]},
            {"username": "bob", "keyauth_credentials": [{"key": "bob-key"}]},
            {"username": "carol", "keyauth_credentials": [{"key": "carol-key"}]}]
        doc["consumer_groups"] = [{"name": "admins"}]
        with GatewayProcess(doc) as gw:
            yield gw, upstream


def session(gw, key: str | None, path: str = "/mcp"):
    import httpx2

    headers = {"apikey": key} if key else {}
    client = httpx2.AsyncClient(headers=headers)
    from mcp.client.streamable_http import streamable_http_client

    return Client(streamable_http_client(f"http://127.0.0.1:{gw.port}{path}",
                                         http_client=client))


def run(coroutine):
    return asyncio.run(coroutine)


def test_the_sdk_lists_and_calls_rest_tools(gateway):
    gw, upstream = gateway

    async def go():
        async with session(gw, "alice-key") as client:
            listed = await client.list_tools()
            called = await client.call_tool("get_order", {"id": 42, "verbose": True,
                                                          "X-Trace": "t-1"})
            created = await client.call_tool("create_order", {"body": {"sku": "a"}})
            return listed, called, created

    listed, called, created = run(go())
    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == {"get_order", "create_order", "delete_order"}
    assert tools["get_order"].input_schema["required"] == ["id"]
    assert tools["get_order"].annotations.read_only_hint is True
    assert called.structured_content["target"] == "/orders/42?verbose=true"
    assert upstream.requests[-2].header("x-trace") == "t-1"
    assert upstream.requests[-2].header("apikey") is None  # the gateway's credential stays
    assert created.structured_content == {"method": "POST", "target": "/api/orders",
                                          "body_len": 11}


def test_acls_hide_and_refuse_tools_without_reaching_the_service(gateway):
    gw, upstream = gateway

    async def go(key):
        async with session(gw, key) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            before = len(upstream.requests)
            try:
                await client.call_tool("create_order", {"body": {}})
                refused = None
            except MCPError as exc:
                refused = exc.error.code
            return names, refused, len(upstream.requests) - before

    names, refused, reached = run(go("bob-key"))
    assert names == {"get_order"}  # not admins; denied delete_order
    assert (refused, reached) == (-32602, 0)
    # Not in the default allow list; delete_order's own ACL replaces the
    # default and denies only bob.
    names, _, _ = run(go("carol-key"))
    assert names == {"delete_order"}


def test_malformed_messages_never_reach_the_service(gateway):
    gw, upstream = gateway
    before = len(upstream.requests)
    headers = {"apikey": "alice-key", "Content-Type": "application/json"}
    # Malformed: 400, as the transport says; well-formed but unservable: 200.
    cases = [(b"{oops", 400, -32700),
             (b'[{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]', 400, -32600),
             (b'{"jsonrpc": "2.0", "id": 2, "method": "resources/list"}', 200, -32601),
             (b'{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": '
              b'"get_order", "arguments": {}}}', 200, -32602)]
    for body, expected, code in cases:
        status, _, answer = gw.request("POST", "/mcp", body, headers)
        assert (status, orjson.loads(answer)["error"]["code"]) == (expected, code), answer
    assert len(upstream.requests) == before
    note = b'{"jsonrpc": "2.0", "method": "notifications/initialized"}'
    assert gw.request("POST", "/mcp", note, headers)[0] == 202
    status, answer_headers, _ = gw.request("GET", "/mcp", None, headers)
    assert (status, answer_headers["allow"]) == (405, "POST")


def test_a_failing_or_silent_service_is_a_tool_error_in_bounded_time(gateway):
    gw, _ = gateway

    async def call(path):
        async with session(gw, None, path) as client:
            return await client.call_tool("get_order", {"id": 1})

    failed = run(call("/broken-mcp"))
    assert failed.is_error and "no such order" in failed.content[0].text
    started = time.monotonic()
    silent = run(call("/silent-mcp"))
    assert silent.is_error and "did not answer" in silent.content[0].text
    assert time.monotonic() - started < 3.0
