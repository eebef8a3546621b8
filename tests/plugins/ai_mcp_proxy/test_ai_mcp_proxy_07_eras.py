"""Both eras of MCP over streamable HTTP through ai-mcp-proxy: the official
SDK's client in its default mode discovers the 2026-07-28 single-exchange
protocol on a conversion route and in front of the SDK's server, and still
speaks the handshake era when asked; a single-exchange request whose headers
disagree with its envelope, or that names an unknown version, is refused
with the specification's code and HTTP status; a client that lost a stream
resumes it through the gateway with Last-Event-ID."""

from __future__ import annotations

import asyncio
import socket
import time

import orjson
import pytest
from mcp.client.client import Client
from mcp.shared.exceptions import MCPError

from fastgw.testing import GatewayProcess, UpstreamServer
from fastgw.testing.mcp_server import MCPTestServer, add_and_wipe

GUARDED = {"allow": ["nobody"]}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("log") / "access.log"
    with UpstreamServer() as rest, MCPTestServer(add_and_wipe, resumable=True) as server:
        doc = {"_format_version": "3.0", "services": [
            {"name": "rest", "url": f"http://127.0.0.1:{rest.port}", "routes": [
                {"name": "conv", "paths": ["/conv"], "plugins": [{
                    "name": "ai-mcp-proxy", "config": {"mode": "conversion-listener", "tools": [
                        {"name": "get_item", "path": "/items/{id}",
                         "parameters": [{"name": "id", "in": "path", "required": True}]},
                        {"name": "secret", "path": "/secret", "acl": GUARDED}],
                    "logging": {"log_payloads": True}}}]}]},
            {"name": "tools", "url": server.url, "routes": [
                {"name": "pass", "paths": ["/mcp"], "strip_path": False, "plugins": [{
                    "name": "ai-mcp-proxy", "config": {
                        "mode": "passthrough-listener",
                        "tools": [{"name": "wipe", "acl": GUARDED}]}}]}]}],
            "plugins": [{"name": "file-log", "config": {"path": str(log_path)}}]}
        with GatewayProcess(doc) as gw:
            gw.log_path = log_path
            yield gw, rest, server


def run(gw, path: str, mode: str = "auto"):
    async def go():
        async with Client(f"http://127.0.0.1:{gw.port}{path}", mode=mode) as client:
            names = sorted(tool.name for tool in (await client.list_tools()).tools)
            first = names[0]
            called = await client.call_tool(first, {"id": "7"} if first == "get_item" else
                                            {"a": 1, "b": 2})
            try:
                await client.call_tool("secret" if path == "/conv" else "wipe", {})
                refused = None
            except MCPError as exc:
                refused = exc.error.code
            return client.protocol_version, names, called, refused

    return asyncio.run(go())


@pytest.mark.parametrize("mode, version", [("auto", "2026-07-28"), ("legacy", "2025-11-25")])
def test_a_conversion_route_speaks_both_eras(gateway, mode, version):
    gw, rest, _ = gateway
    protocol, names, called, refused = run(gw, "/conv", mode)
    assert (protocol, names, refused) == (version, ["get_item"], -32602)
    assert not called.is_error and rest.requests[-1].target == "/items/7"


def test_a_passthrough_route_guards_the_single_exchange_era(gateway):
    gw, _, server = gateway
    before = len(server.calls)
    protocol, names, called, refused = run(gw, "/mcp")
    assert (protocol, names, refused) == ("2026-07-28", ["add"], -32602)
    assert called.structured_content == {"result": 3}
    assert server.calls[before:] == ["add"]  # wipe never reached the server


def modern(method: str, params: dict | None = None, version: str = "2026-07-28") -> bytes:
    meta = {"io.modelcontextprotocol/protocolVersion": version,
            "io.modelcontextprotocol/clientCapabilities": {}}
    return orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                         "params": {**(params or {}), "_meta": meta}})


HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@pytest.mark.parametrize("body, headers, status, code", [
    # The header disagrees with the envelope (or is missing): -32020.
    (modern("tools/list"), {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call"},
     400, -32020),
    (modern("tools/list"), {"Mcp-Method": "tools/list"}, 400, -32020),
    (modern("tools/call", {"name": "get_item"}), {"MCP-Protocol-Version": "2026-07-28",
                                                  "Mcp-Method": "tools/call",
                                                  "Mcp-Name": "other"}, 400, -32020),
    # A version the gateway does not speak: -32022, naming those it does.
    (modern("server/discover", version="2027-01-01"),
     {"MCP-Protocol-Version": "2027-01-01", "Mcp-Method": "server/discover"}, 400, -32022),
    (modern("resources/list"), {"MCP-Protocol-Version": "2026-07-28",
                                "Mcp-Method": "resources/list"}, 404, -32601),
    (modern("tools/call", {"name": "secret", "arguments": {}}),
     {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "secret"},
     400, -32602),
])
def test_single_exchange_requests_are_checked(gateway, body, headers, status, code):
    gw, _, _ = gateway
    answer_status, _, answer = gw.request("POST", "/conv", body, {**HEADERS, **headers})
    error = orjson.loads(answer)["error"]
    assert (answer_status, error["code"]) == (status, code)
    if code == -32022:
        assert error["data"] == {"supported": ["2025-03-26", "2025-06-18", "2025-11-25",
                                               "2026-07-28"], "requested": "2027-01-01"}


def test_discovery_and_results_carry_what_the_era_requires(gateway):
    gw, _, _ = gateway
    status, headers, answer = gw.request("POST", "/conv", modern("server/discover"), {
        **HEADERS, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "server/discover"})
    result = orjson.loads(answer)["result"]
    assert status == 200 and "mcp-session-id" not in headers
    assert result["supportedVersions"][-1] == "2026-07-28"
    assert (result["resultType"], result["cacheScope"], result["ttlMs"]) == ("complete",
                                                                             "private", 0)
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "fastgw"


def test_a_stream_resumes_through_the_gateway_with_last_event_id(gateway):
    gw, _, _ = gateway
    version = {"MCP-Protocol-Version": "2025-11-25"}
    _, headers, _ = gw.request("POST", "/mcp", orjson.dumps({
        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}), HEADERS)
    session = {"Mcp-Session-Id": headers["mcp-session-id"], **version}
    gw.request("POST", "/mcp", b'{"jsonrpc": "2.0", "method": "notifications/initialized"}',
               {**HEADERS, **session})
    status, _, body = gw.request("POST", "/mcp", orjson.dumps({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 20, "b": 22}}}), {**HEADERS, **session})
    ids = [line[3:].strip().decode() for line in body.split(b"\n") if line.startswith(b"id:")]
    assert status == 200 and len(ids) >= 2 and b'"result":42' in body.replace(b" ", b"")
    # The client saw only the first event: it asks the server, through the
    # gateway, for what followed, and gets the tool's answer again.
    request = (f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
               f"Last-Event-ID: {ids[0]}\r\nMcp-Session-Id: {session['Mcp-Session-Id']}\r\n"
               f"MCP-Protocol-Version: 2025-11-25\r\n\r\n").encode()
    received = b""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as stream:
        stream.sendall(request)
        deadline = time.monotonic() + 5
        while b'"result":42' not in received.replace(b" ", b"") and time.monotonic() < deadline:
            chunk = stream.recv(65536)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    assert f"id: {ids[1]}".encode() in received or f"id:{ids[1]}".encode() in received
    assert b'"result":42' in received.replace(b" ", b"")


def test_payloads_are_logged_only_where_log_payloads_is_on(gateway):
    gw, _, _ = gateway
    run(gw, "/conv")
    run(gw, "/mcp")
    deadline = time.monotonic() + 5
    while True:
        entries = [orjson.loads(line) for line in gw.log_path.read_text().splitlines()]
        logged = {entry["request"]["uri"]: entry.get("ai", {}).get("mcp", {}).get("payloads")
                  for entry in entries}
        if logged.get("/conv") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    conv = [payload for entry in entries if entry["request"]["uri"] == "/conv"
            for payload in entry.get("ai", {}).get("mcp", {}).get("payloads", [])]
    called = [payload for payload in conv if '"get_item"' in payload["request"]
              and '"tools/call"' in payload["request"]]
    assert called and '"resultType":"complete"' in called[-1]["response"]
    assert not any(entry.get("ai", {}).get("mcp", {}).get("payloads") for entry in entries
                   if entry["request"]["uri"] == "/mcp")
