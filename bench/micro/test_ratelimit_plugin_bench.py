"""Cost of the rate-limiting plugin per request: its access phase, and the
header_filter that writes the RateLimit headers.

Why it matters: a limited route pays this on every request, and PERF.md
prices each extra microsecond at about 6% of throughput. The counters are a
``SharedCounterTable``, as in a gateway's workers (policy local). Policy
redis is measured including one event-loop turn and the round trip to a local
redis-server: the price of a cluster-wide limit. The context is reset in place
between rounds, so the numbers are the plugin's own. Under
``--benchmark-disable`` each case runs once, as a correctness check.
"""

import asyncio

import pytest

from fastgw._core.ratelimit import SharedCounterTable
from fastgw.config.loader import parse_config
from fastgw.plugins import handler_class
from fastgw.plugins.context import make_context, set_response
from fastgw.plugins.rate_limiting import algorithms
from fastgw.plugins.state import ConfigState
from fastgw.testing.redis_server import RedisServer

NEVER_REACHED = 10**12


@pytest.fixture(autouse=True)
def node_table(monkeypatch):
    """The node's counters in shared memory, as a supervised worker has them."""
    monkeypatch.setattr(algorithms, "_node",
                        algorithms.NodeCounters(SharedCounterTable(capacity=4096)))


def limiter(config: dict, gateway: dict | None = None):
    doc = {"_format_version": "3.0",
           "plugins": [{"name": "rate-limiting", "config": {"limit_by": "ip", **config}}]}
    if gateway:
        doc["_gateway"] = gateway
    parsed = parse_config(doc)
    entry = parsed.plugins[0]
    return handler_class("rate-limiting")(entry.config, ConfigState(parsed), entry)


def per_request(handler, with_response: bool = False):
    """A function running one request's phases on a context restored in place."""
    ctx = make_context("POST", "/v1/chat/completions", {"Content-Type": "application/json"},
                       client_ip="10.1.2.3")
    response_headers = [b"Content-Type", b"application/json", b"Content-Length", b"512"]

    def request():
        ctx._plugin_state = None
        handler.access(ctx)
        if with_response:
            set_response(ctx, 200)
            ctx.response.headers.items[:] = response_headers
            handler.header_filter(ctx)
        return ctx

    return request


@pytest.mark.parametrize(("algorithm", "periods"), [
    ("fixed", {"minute": NEVER_REACHED}),
    ("fixed", {"second": NEVER_REACHED, "minute": NEVER_REACHED, "hour": NEVER_REACHED}),
    ("sliding", {"minute": NEVER_REACHED}),
    ("token-bucket", {"minute": NEVER_REACHED}),
])
def test_access_local(benchmark, algorithm, periods):
    benchmark.extra_info["periods"] = len(periods)
    handler = limiter({"algorithm": algorithm, **periods})
    ctx = benchmark(per_request(handler))
    assert ctx.exit_status == 0
    assert b"RateLimit-Remaining" in ctx.plugin_state(handler, list)


def test_access_and_header_filter_local(benchmark):
    ctx = benchmark(per_request(limiter({"minute": NEVER_REACHED}), with_response=True))
    assert ctx.response.headers.get("RateLimit-Limit") == str(NEVER_REACHED)


def test_access_local_hidden_headers(benchmark):
    request = per_request(limiter({"minute": NEVER_REACHED, "hide_client_headers": True}))
    assert benchmark(request).exit_status == 0


def test_access_redis(benchmark):
    loop = asyncio.new_event_loop()
    with RedisServer() as redis:
        handler = limiter({"minute": NEVER_REACHED, "policy": "redis"},
                          gateway={"redis": {"url": redis.url}})
        ctx = make_context(client_ip="10.1.2.3")

        def request():
            ctx._plugin_state = None
            loop.run_until_complete(handler.access(ctx))
            return ctx

        assert benchmark(request).exit_status == 0
        assert redis.client().keys("{ratelimit:*")
    loop.close()
