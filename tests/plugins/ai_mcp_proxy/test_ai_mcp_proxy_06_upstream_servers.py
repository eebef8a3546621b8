"""upstream-server plus listener: several MCP servers (the official SDK's)
and a REST tool behind one listener route. Tool names are prefixed by
server so that two servers' ``add`` do not clash; each client session gets
its own session on each server, ended with it; a server that is down leaves
the others' tools listed and its own calls answered with a JSON-RPC error at
once; ACLs apply to the servers' tools."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx2
import orjson
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError

from fastgw.testing import GatewayProcess, UpstreamServer, free_port
from fastgw.testing.mcp_server import MCPTestServer, add_and_wipe


def math_tools(mcp, calls):
    add_and_wipe(mcp, calls)

    @mcp.tool()
    async def slow() -> str:
        """Takes its time, unless cancelled."""
        calls.append("slow")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            calls.append("slow cancelled")
            raise
        return "done"


def text_tools(mcp, calls):
    @mcp.tool()
    def add(a: str, b: str) -> str:
        """Join two strings."""
        calls.append("add")
        return a + b

    @mcp.tool()
    def fail() -> str:
        """Always fails."""
        raise ToolError("no luck")


def upstream_server(acl_tools=None) -> dict:
    return {"name": "ai-mcp-proxy", "tags": ["desk"], "config": {
        "mode": "upstream-server", "tools_cache_ttl_seconds": 60, "tools": acl_tools or []}}


@pytest.fixture(scope="module")
def gateway():
    dead_port = free_port()
    with MCPTestServer(math_tools) as math, MCPTestServer(text_tools, json_response=True) \
            as text, UpstreamServer() as rest:
        doc = {"_format_version": "3.0", "services": [
            {"name": "math", "url": f"{math.url}/mcp",
             "plugins": [upstream_server([{"name": "wipe", "acl": {"allow": ["admin"]}}])]},
            {"name": "text", "url": f"{text.url}/mcp", "plugins": [upstream_server()]},
            {"name": "gone", "url": f"http://127.0.0.1:{dead_port}/mcp",
             "plugins": [upstream_server()]},
            {"name": "rest", "url": f"http://127.0.0.1:{rest.port}", "routes": [
                {"name": "rest", "paths": ["/rest"], "plugins": [{
                    "name": "ai-mcp-proxy", "tags": ["desk"], "config": {
                        "mode": "conversion-only", "tools": [{"name": "status",
                                                              "path": "/status"}]}}]}]},
            {"name": "front", "url": "http://127.0.0.1:9", "routes": [
                {"name": "desk", "paths": ["/desk"], "plugins": [
                    {"name": "key-auth", "config": {}},
                    {"name": "ai-mcp-proxy", "config": {"mode": "listener",
                                                         "server": {"tag": "desk",
                                                                    "timeout": 2000}}}]}]}],
            "consumers": [{"username": "admin", "keyauth_credentials": [{"key": "admin-key"}]},
                          {"username": "user", "keyauth_credentials": [{"key": "user-key"}]}],
            "plugins": [{"name": "prometheus", "config": {"ai_metrics": True}}]}
        with GatewayProcess(doc) as gw:
            yield gw, math, text


def client(gw, key: str) -> Client:
    http = httpx2.AsyncClient(headers={"apikey": key})
    return Client(streamable_http_client(f"http://127.0.0.1:{gw.port}/desk", http_client=http))


def test_one_listener_serves_several_mcp_servers_under_prefixed_names(gateway):
    gw, math, text = gateway

    async def go():
        async with client(gw, "admin-key") as session:
            started = time.monotonic()
            names = sorted(tool.name for tool in (await session.list_tools()).tools)
            listed_in = time.monotonic() - started
            summed = await session.call_tool("math__add", {"a": 2, "b": 3})
            joined = await session.call_tool("text__add", {"a": "x", "b": "y"})
            failed = await session.call_tool("text__fail", {})
            return names, listed_in, summed, joined, failed

    math_before, text_before = len(math.calls), len(text.calls)
    names, listed_in, summed, joined, failed = asyncio.run(go())
    # The server that is down ("gone") is left out, the others listed.
    assert names == ["math__add", "math__slow", "math__wipe", "status", "text__add",
                     "text__fail"]
    assert listed_in < 1.5
    assert summed.structured_content == {"result": 5} and not summed.is_error
    assert joined.structured_content == {"result": "xy"}
    assert failed.is_error and "no luck" in failed.content[0].text
    assert math.calls[math_before:] == ["add"] and text.calls[text_before:] == ["add"]


def test_acls_apply_to_a_servers_tools(gateway):
    gw, math, _ = gateway

    async def go():
        async with client(gw, "user-key") as session:
            names = sorted(tool.name for tool in (await session.list_tools()).tools)
            try:
                await session.call_tool("math__wipe", {})
                return names, None
            except MCPError as exc:
                return names, exc.error.code

    before = len(math.calls)
    names, refused = asyncio.run(go())
    assert "math__wipe" not in names and "math__add" in names
    assert refused == -32602 and "wipe" not in math.calls[before:]
    metrics = gw.admin("GET", "/metrics")[2].decode()
    for series in ('fastgw_ai_mcp_tool_calls_total{outcome="ok",server="math",tool="add"}',
                   'fastgw_ai_mcp_tool_calls_total{outcome="error",server="text",tool="fail"}',
                   'fastgw_ai_mcp_tool_calls_total{outcome="denied",server="math",tool="wipe"}'):
        assert series in metrics, series


def post(gw, body: dict, session: str | None = None) -> tuple[int, dict, dict]:
    headers = {"apikey": "admin-key", "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream"}
    if session:
        headers["Mcp-Session-Id"] = session
    status, answer_headers, answer = gw.request("POST", "/desk", orjson.dumps(body), headers)
    return status, answer_headers, orjson.loads(answer) if answer else {}


def test_a_server_that_is_down_answers_a_json_rpc_error_at_once(gateway):
    gw, _, _ = gateway
    started = time.monotonic()
    status, _, answer = post(gw, {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                                  "params": {"name": "gone__anything", "arguments": {}}})
    assert time.monotonic() - started < 1.5
    assert status == 200 and answer["id"] == 7
    assert answer["error"]["code"] == -32603
    assert answer["error"]["message"].startswith("MCP server 'gone' ")
    # A name no server prefixes is an unknown tool.
    _, _, answer = post(gw, {"jsonrpc": "2.0", "id": 8, "method": "tools/call",
                             "params": {"name": "nobody__add", "arguments": {}}})
    assert answer["error"]["code"] == -32602


def test_each_client_session_has_its_own_session_on_each_server_ended_with_it(gateway):
    gw, math, text = gateway
    sessions = []
    for _ in range(2):
        _, headers, _ = post(gw, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}})
        sessions.append(headers["mcp-session-id"])
    before = math.sessions, text.sessions
    for session in sessions:
        _, _, answer = post(gw, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "math__add", "arguments": {"a": 1, "b": 1}}}, session)
        assert answer["result"]["structuredContent"] == {"result": 2}
    # Two client sessions: two more sessions on the math server, none on text.
    assert (math.sessions, text.sessions) == (before[0] + 2, before[1])
    status, _, _ = gw.request("DELETE", "/desk", headers={"apikey": "admin-key",
                                                           "Mcp-Session-Id": sessions[0]})
    assert status == 200
    assert math.sessions == before[0] + 1


def test_a_cancellation_reaches_the_server_running_the_call(gateway):
    gw, math, _ = gateway
    _, headers, _ = post(gw, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}})
    session = headers["mcp-session-id"]
    call = threading.Thread(target=post, args=(gw, {
        "jsonrpc": "2.0", "id": "slow-1", "method": "tools/call",
        "params": {"name": "math__slow", "arguments": {}}}, session))
    call.start()
    deadline = time.monotonic() + 5
    while "slow" not in math.calls and time.monotonic() < deadline:
        time.sleep(0.02)
    status, _, _ = post(gw, {"jsonrpc": "2.0", "method": "notifications/cancelled",
                             "params": {"requestId": "slow-1", "reason": "changed my mind"}},
                        session)
    assert status == 202
    call.join(5)
    assert not call.is_alive() and "slow cancelled" in math.calls
