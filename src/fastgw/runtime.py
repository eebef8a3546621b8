"""Turn a validated ``Config`` into what the compiled core runs: one router
whose entries carry a ``RouteRuntime`` each, with keep-alive pools shared
across config versions."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

from fastgw._core.gateway import Gateway, Limits, RouteRuntime
from fastgw._core.router import Router
from fastgw.config.entities import health_checks
from fastgw.config.model import Config, GatewaySettings, Service, Upstream
from fastgw.plugins.chain import ChainBuilder
from fastgw.plugins.fast import fast_chain
from fastgw.plugins.runner import PluginRunner
from fastgw.plugins.state import ConfigState
from fastgw.tls import upstream_tls_context, upstream_tls_key


def limits_from(settings: GatewaySettings) -> Limits:
    return Limits(
        max_header_bytes=settings.max_header_bytes,
        max_body_bytes=settings.max_body_bytes,
        client_header_timeout=settings.client_header_timeout,
        client_body_timeout=settings.client_body_timeout,
        keepalive_timeout=settings.keepalive_timeout,
        max_connections=settings.max_connections,
        upstream_pool_size=settings.upstream_keepalive_pool_size,
        upstream_keepalive_timeout=settings.upstream_keepalive_timeout,
        max_memory_mb=settings.max_memory_mb or 0,
        max_response_buffer_bytes=settings.max_response_buffer_bytes,
    )


def service_target(gw: Gateway, service: Service, upstream: Upstream | None):
    """Where a service's requests go: ``(pool, None)`` for a single host, or
    ``(None, upstream runtime)`` when its host names ``upstream``."""
    ctx = None
    key = None
    if service.protocol == "https":
        key = upstream_tls_key(service, upstream)
        ctx = _TLS_CONTEXTS.get(key)
        if ctx is None:
            ctx = _TLS_CONTEXTS[key] = upstream_tls_context(service, upstream)
    if upstream is not None:
        return None, gw.upstream_runtime(upstream, health_checks(upstream.healthchecks), ctx, key)
    server_hostname = service.host if ctx is not None else None
    return gw.pool_for(service.host, service.port, ctx, server_hostname, key), None


# Upstream TLS contexts by their settings, kept across config versions so
# that pools (keyed by the same settings) stay warm through reloads.
_TLS_CONTEXTS: dict = {}

EXPORT_FLAGS = ("status_code_metrics", "latency_metrics", "bandwidth_metrics",
                "upstream_health_metrics", "ai_metrics", "per_consumer")


def build_router(gw: Gateway, config: Config) -> Router:
    """Routes with their pools, plugin chains and metric cells."""
    entries: list = []
    for _ in route_entry_steps(gw, config, entries):
        pass
    return Router(entries)


# FASTGW_NO_FAST_DECISIONS=1 runs every plugin on the runner, never from the
# core: the two paths must answer alike, and this is how a test compares them.
FAST_DECISIONS = not os.environ.get("FASTGW_NO_FAST_DECISIONS")

# Routes whose runtimes are built between two turns of the event loop in a swap
# (about 1 ms of work).
ROUTES_PER_STEP = 256


def route_entry_steps(gw: Gateway, config: Config, entries: list) -> Iterator[None]:
    """Fills ``entries`` with each route and its runtime (pool, plugin chain,
    metric cell), yielding every ROUTES_PER_STEP routes. It takes the pools and
    upstream runtimes from ``gw``, so it runs on the worker's event loop;
    building the Router from the entries does not."""
    state = ConfigState(config)
    chains = ChainBuilder(config, state)
    services = {s.name: s for s in config.services}
    used_upstreams = []
    for number, route in enumerate(config.routes, 1):
        if number % ROUTES_PER_STEP == 0:
            yield
        service = services.get(route.service) if route.service else None
        balanced = config.upstream(service.host) if service is not None else None
        pool, upstream = service_target(gw, service, balanced) if service is not None \
            else (None, None)
        if upstream is not None:
            used_upstreams.append(upstream)
        chain = chains.chain(route, service)
        cell = None
        prometheus = chain.native.get("prometheus") if chain is not None else None
        if prometheus is not None:
            cell = gw.metrics_cell(service.name if service else "", route.name)
            cell.set_per_consumer(prometheus.config["per_consumer"])
        # A route whose only plugins are native ones stays on the fast path.
        python_chain = chain if chain is not None and (chain.plugins or chain.by_consumer) \
            else None
        # The plugins' decisions the core takes without a request context
        # (fastgw.plugins.fast); the runner takes over where they stop.
        fast = fast_chain(python_chain, route, service) \
            if FAST_DECISIONS and python_chain is not None else None
        runtime = RouteRuntime(route, service, pool, python_chain, cell, upstream,
                               balanced.host_header if balanced is not None else None)
        if fast is not None:
            runtime.set_fast_access(fast, fast.drop_response_headers)
        entries.append((route, service, runtime))
    # Global prometheus also counts requests that matched no route.
    global_prometheus = [p for p in config.plugins
                         if p.enabled and p.name == "prometheus"
                         and p.route is None and p.service is None and p.consumer is None]
    gw.unmatched_metrics = gw.metrics_cell("", "") if global_prometheus else None
    gw.metrics_export = {
        flag: any(p.config.get(flag) for p in config.plugins
                  if p.enabled and p.name == "prometheus")
        for flag in EXPORT_FLAGS
    }
    for upstream in config.upstreams:
        # Upstreams no route uses yet still get a runtime (health, admin API).
        if not any(u.spec is upstream for u in used_upstreams):
            used_upstreams.append(gw.upstream_runtime(upstream,
                                                      health_checks(upstream.healthchecks)))
    gw.forget_upstreams(used_upstreams)


def new_gateway(loop, config: Config):
    """A worker's Gateway for a config, with the plugin runner attached."""
    runner = PluginRunner(loop)
    gw = Gateway(loop, _EmptyRouter(), limits_from(config.gateway), runner)
    runner.gateway = gw
    gw.set_router(build_router(gw, config))
    return gw


class _EmptyRouter:
    """Stands in until the first routing table is built."""

    header_names: frozenset = frozenset()

    def match(self, method, host, url, headers):
        return None


def apply_config(gw: Gateway, config: Config) -> None:
    """Swap the worker's routing table and limits; in-flight requests keep
    the route they matched."""
    router = build_router(gw, config)
    gw.set_limits(limits_from(config.gateway))
    gw.set_router(router)


class GiveWay:
    """Called often by a build on another thread: every few hundred calls it
    sleeps for zero seconds, which lets go of the GIL so the event loop's
    thread can take it (compiled code never lets go by itself)."""

    __slots__ = ("calls",)

    EVERY = 64

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls % self.EVERY == 0:
            time.sleep(0)


async def apply_config_off_loop(gw: Gateway, config: Config, loop) -> None:
    """``apply_config`` without stalling the proxy: the routing table (most of
    the cost: 75 ms of 81 for 10,000 routes) is built on a thread, the old one
    is let go there too, and only the swap itself runs on the event loop."""
    entries: list = []
    for _ in route_entry_steps(gw, config, entries):
        await asyncio.sleep(0)  # let requests in between chunks of routes
    router = await loop.run_in_executor(None, Router, entries, GiveWay())
    gw.set_limits(limits_from(config.gateway))
    old = [gw.router]
    gw.set_router(router)
    # Freeing a large trie takes milliseconds: do it off the loop as well.
    await loop.run_in_executor(None, old.clear)
