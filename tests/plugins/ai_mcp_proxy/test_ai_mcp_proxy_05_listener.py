"""conversion-only plus listener: tools defined on two services, tagged,
served together by one listener route, each tool calling its own service;
the conversion-only routes stay REST routes."""

from __future__ import annotations

import asyncio

import pytest
from mcp.client.client import Client

from fastgw.testing import GatewayProcess, UpstreamServer


def conversion_only(tool: str, path: str, tag: str = "shop") -> dict:
    return {"name": "ai-mcp-proxy", "tags": [tag], "config": {
        "mode": "conversion-only", "tools": [{"name": tool, "path": path}]}}


@pytest.fixture(scope="module")
def gateway():
    with UpstreamServer() as orders, UpstreamServer() as stock:
        doc = {"_format_version": "3.0", "services": [
            {"name": "orders", "url": f"http://127.0.0.1:{orders.port}/v1", "routes": [
                {"name": "orders", "paths": ["/orders"],
                 "plugins": [conversion_only("list_orders", "orders")]}]},
            {"name": "stock", "url": f"http://127.0.0.1:{stock.port}", "routes": [
                {"name": "stock", "paths": ["/stock"],
                 "plugins": [conversion_only("get_stock", "/stock/all"),
                             ]},
                {"name": "other", "paths": ["/other"],
                 "plugins": [conversion_only("hidden", "/x", tag="elsewhere")]},
                {"name": "shop-mcp", "paths": ["/shop-mcp"], "plugins": [
                    {"name": "ai-mcp-proxy", "config": {"mode": "listener",
                                                         "server": {"tag": "shop"}}}]}]}]}
        with GatewayProcess(doc) as gw:
            yield gw, orders, stock


def test_one_listener_serves_the_tagged_tools_of_several_services(gateway):
    gw, orders, stock = gateway

    async def go():
        async with Client(f"http://127.0.0.1:{gw.port}/shop-mcp") as client:
            names = sorted(tool.name for tool in (await client.list_tools()).tools)
            listed = await client.call_tool("list_orders", {})
            counted = await client.call_tool("get_stock", {})
            return names, listed.structured_content, counted.structured_content

    names, listed, counted = asyncio.run(go())
    assert names == ["get_stock", "list_orders"]  # not "hidden": another tag
    assert listed["target"] == "/v1/orders" and orders.requests[-1].target == "/v1/orders"
    assert counted["target"] == "/stock/all" and stock.requests[-1].target == "/stock/all"


def test_conversion_only_routes_stay_rest_routes(gateway):
    gw, orders, _ = gateway
    status, _, _ = gw.request("GET", "/orders/42")
    assert status == 200 and orders.requests[-1].target == "/v1/42"


@pytest.mark.parametrize("config, error", [
    ({"mode": "listener"}, "plugins[0].config.server.tag: required in listener mode (the tag "
     "of the conversion-only and upstream-server plugins whose tools it serves)"),
    ({"mode": "listener", "server": {"tag": "t"}, "tools": [{"name": "a", "path": "/a"}]},
     "plugins[0].config.tools: a listener serves the tools of the conversion-only and "
     "upstream-server plugins its server.tag selects: define them there"),
    ({"mode": "upstream-server"}, "plugins[0].config.tools_cache_ttl_seconds: required in "
     "upstream-server mode (how long a listener keeps the MCP server's tool list)"),
    ({"mode": "passthrough-listener", "tools_cache_ttl_seconds": 5},
     "plugins[0].config.tools_cache_ttl_seconds: only upstream-server mode lists an MCP "
     "server's tools"),
    ({"mode": "conversion-only"}, "plugins[0].config.tools: conversion-only needs at least one "
     "tool"),
])
def test_listener_configs_are_checked(config_errors, config, error):
    assert config_errors(config) == [error]
