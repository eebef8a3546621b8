"""passthrough-listener in the real gateway, in front of the official MCP
SDK's server: the SDK's client works through it; tool ACLs hide tools from
listings and refuse calls without the server running them; malformed
messages never reach the server."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from fastgw.testing import GatewayProcess
from fastgw.testing.mcp_server import MCPTestServer, add_and_wipe


@pytest.fixture(scope="module", params=[False, True], ids=["sse", "json"])
def gateway(request, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("log") / "access.log"
    with MCPTestServer(add_and_wipe, json_response=request.param) as server:
        mcp = {"name": "ai-mcp-proxy", "config": {
            "mode": "passthrough-listener", "tools": [{"name": "wipe", "acl": {
                "allow": ["admin"]}}], "logging": {"log_audits": True, "log_payloads": True}}}
        doc = {"_format_version": "3.0", "services": [{
            "name": "tools", "url": server.url, "routes": [{
                "name": "mcp", "paths": ["/mcp"], "strip_path": False,
                "plugins": [{"name": "key-auth", "config": {}}, mcp]}]}],
            "consumers": [{"username": "admin", "keyauth_credentials": [{"key": "admin-key"}]},
                          {"username": "user", "keyauth_credentials": [{"key": "user-key"}]}],
            "plugins": [{"name": "file-log", "config": {"path": str(log_path)}},
                        {"name": "prometheus", "config": {"ai_metrics": True}}]}
        with GatewayProcess(doc) as gw:
            yield gw, server, log_path


def client(gw, key: str) -> Client:
    import httpx2

    http = httpx2.AsyncClient(headers={"apikey": key})
    return Client(streamable_http_client(f"http://127.0.0.1:{gw.port}/mcp", http_client=http))


def test_the_sdk_works_through_the_gateway_and_acls_apply(gateway):
    gw, server, log_path = gateway

    async def go(key):
        async with client(gw, key) as session:
            names = sorted(tool.name for tool in (await session.list_tools()).tools)
            added = await session.call_tool("add", {"a": 2, "b": 3})
            try:
                await session.call_tool("wipe", {})
                refused = None
            except MCPError as exc:
                refused = exc.error.code
            return names, added.structured_content, refused

    before = list(server.calls)
    assert asyncio.run(go("admin-key")) == (["add", "wipe"], {"result": 5}, None)
    assert server.calls[len(before):] == ["add", "wipe"]
    before = list(server.calls)
    assert asyncio.run(go("user-key")) == (["add"], {"result": 5}, -32602)
    assert server.calls[len(before):] == ["add"]  # wipe never ran
    # log_audits: each ACL decision on a call, with the tool and the consumer
    # (a request's log line is written just after its answer).
    wanted = [{"tool": "wipe", "allowed": False, "consumer": "user"},
              {"tool": "wipe", "allowed": True, "consumer": "admin"}]
    deadline = time.monotonic() + 5
    while True:
        audits = [audit for line in log_path.read_text().splitlines()
                  for audit in orjson.loads(line).get("ai", {}).get("mcp", {}).get("audits", [])]
        if all(entry in audits for entry in wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert all(entry in audits for entry in wanted), audits
    # log_payloads: each message with what the client got, from the server
    # (add) or from the gateway (wipe, refused).
    payloads = [payload for line in log_path.read_text().splitlines()
                for payload in orjson.loads(line).get("ai", {}).get("mcp", {})
                .get("payloads", [])]
    calls = {orjson.loads(p["request"])["params"]["name"]: p["response"] for p in payloads
             if '"tools/call"' in p["request"]}
    assert '"result":5' in calls["add"].replace(" ", "")
    assert "Unknown tool: wipe" in calls["wipe"]


def test_tool_calls_and_acl_decisions_are_counted(gateway):
    gw, _, _ = gateway

    async def go():
        async with client(gw, "user-key") as session:
            await session.call_tool("add", {"a": 1, "b": 1})

    asyncio.run(go())
    metrics = gw.admin("GET", "/metrics")[2].decode()
    for series in ('fastgw_ai_mcp_tool_calls_total{outcome="ok",server="mcp",tool="add"}',
                   'fastgw_ai_mcp_tool_calls_total{outcome="denied",server="mcp",tool="wipe"}',
                   'fastgw_ai_mcp_acl_decisions_total{decision="denied",server="mcp",'
                   'tool="wipe"}',
                   'fastgw_ai_mcp_tool_latency_ms_count{server="mcp",tool="add"}'):
        assert series in metrics, series


def test_malformed_messages_never_reach_the_server(gateway):
    gw, _, _ = gateway
    headers = {"apikey": "admin-key", "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream"}
    for body, code in ((b"{oops", -32700), (b'[{"jsonrpc": "2.0"}]', -32600),
                       (b'{"jsonrpc": "2.0", "id": 1, "method": 3}', -32600)):
        status, answer_headers, answer = gw.request("POST", "/mcp", body, headers)
        assert (status, orjson.loads(answer)["error"]["code"]) == (400, code)
        assert "mcp-session-id" not in answer_headers  # the gateway answered, not the server
