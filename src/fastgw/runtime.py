"""Turn a validated ``Config`` into what the compiled core runs: one router
whose entries carry a ``RouteRuntime`` each, with keep-alive pools shared
across config versions."""

from __future__ import annotations

import ssl

from fastgw._core.protocol import Gateway, Limits, RouteRuntime
from fastgw._core.router import Router
from fastgw.config.model import Config, GatewaySettings, Service


def limits_from(settings: GatewaySettings) -> Limits:
    return Limits(
        max_header_bytes=settings.max_header_bytes,
        max_body_bytes=settings.max_body_bytes,
        client_header_timeout=settings.client_header_timeout,
        keepalive_timeout=settings.keepalive_timeout,
        max_connections=settings.max_connections,
        upstream_pool_size=settings.upstream_keepalive_pool_size,
        upstream_keepalive_timeout=settings.upstream_keepalive_timeout,
    )


def upstream_tls_context(service: Service) -> ssl.SSLContext:
    # HTTPS upstreams are verified unless the service says otherwise.
    ctx = ssl.create_default_context()
    if service.tls_verify is False:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def service_pool(gw: Gateway, config: Config, service: Service, tls_cache: dict):
    """The pool a service's requests go to.

    A service whose host names an upstream goes to that upstream's first
    target with a non-zero weight; load balancing over all targets is built
    on the balancers in ``_core.balancer``.
    """
    host, port = service.host, service.port
    upstream = config.upstream(service.host)
    if upstream is not None:
        live = [t for t in upstream.targets if t.weight > 0]
        if not live:
            return None
        host, port = live[0].host, live[0].port
    ctx = None
    server_hostname = None
    if service.protocol == "https":
        key = service.tls_verify is not False
        ctx = tls_cache.get(key)
        if ctx is None:
            ctx = tls_cache[key] = upstream_tls_context(service)
        server_hostname = service.host if upstream is None else host
    return gw.pool_for(host, port, ctx, server_hostname)


def build_router(gw: Gateway, config: Config) -> Router:
    services = {s.name: s for s in config.services}
    tls_cache: dict = {}
    entries = []
    for route in config.routes:
        service = services.get(route.service) if route.service else None
        pool = service_pool(gw, config, service, tls_cache) if service is not None else None
        runtime = RouteRuntime(route, service, pool, None)
        entries.append((route, service, runtime))
    return Router(entries)


def apply_config(gw: Gateway, config: Config) -> None:
    """Swap the worker's routing table and limits; in-flight requests keep
    the route they matched."""
    router = build_router(gw, config)
    gw.set_limits(limits_from(config.gateway))
    gw.set_router(router)
