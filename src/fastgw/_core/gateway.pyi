"""Type stubs for fastgw._core.gateway: per-worker state at request time
(cdef fields and methods in gateway.pxd). The calls between the core and the
plugin runner are in fastgw.plugins.core_api."""

import asyncio
import enum
import ssl as _ssl
from collections.abc import Callable, Iterable
from typing import Any

from fastgw._core.client_connection import ClientConnection
from fastgw._core.metrics import MetricsCell
from fastgw._core.upstream_connection import UpstreamPool
from fastgw._core.upstream_runtime import UpstreamRuntime

class RequestFilter(enum.IntEnum):
    """Which response phases a request's plugins have (Request.filters)."""

    FILTER_HEADER = 1
    FILTER_BODY = 2
    FILTER_LOG = 4

class UpstreamFailure(enum.IntEnum):
    """Why an attempt failed, as a plugin's failover handler is told."""

    FAILURE_ERROR = 1
    FAILURE_TIMEOUT = 2
    FAILURE_INVALID_HEADER = 3
    FAILURE_HTTP = 4

class Limits:
    max_header_bytes: int
    max_body_bytes: int
    client_header_timeout_ms: float
    client_body_timeout_ms: float
    keepalive_timeout_ms: float
    max_connections: int
    upstream_pool_size: int
    upstream_keepalive_timeout_ms: float
    max_memory_bytes: int
    max_response_buffer_bytes: int
    def __init__(self, max_header_bytes: int = ..., max_body_bytes: int = ...,
                 client_header_timeout: float = ..., keepalive_timeout: float = ...,
                 client_body_timeout: float = ..., max_connections: int = ...,
                 upstream_pool_size: int = ..., upstream_keepalive_timeout: float = ...,
                 max_memory_mb: int = ..., max_response_buffer_bytes: int = ...) -> None: ...

class FastAnswer:
    """A fast decision's answer, framed by the core like a plugin's exit."""

    status: int
    headers: list[bytes]
    body: bytes
    extra_head: bytes | None
    def __init__(self, status: int, headers: list[bytes], body: bytes = b"") -> None: ...

class RouteRuntime:
    route: Any
    service: Any
    preserve_host: bool
    upstream_host_header: bytes
    pool: UpstreamPool | None
    upstream: UpstreamRuntime | None
    retries: int
    connect_timeout_ms: float
    write_timeout_ms: float
    read_timeout_ms: float
    plugins: Any
    fast_access: Callable[..., Any] | None
    drop_response_headers: frozenset[bytes] | None
    metrics: MetricsCell | None
    https_only: bool
    https_redirect_status: int
    def __init__(self, route: Any, service: Any, pool: UpstreamPool | None,
                 plugins: Any = None, metrics: MetricsCell | None = None,
                 upstream: UpstreamRuntime | None = None,
                 host_header: str | None = None) -> None: ...
    def set_fast_access(self, callback: Callable[..., Any],
                        drop_response_headers: Iterable[bytes] | None = None) -> None: ...

class Request:
    """A request in the core; its public fields are the runner's (see
    fastgw.plugins.core_api.CoreRequest)."""

    method: bytes
    url: bytes
    host: bytes | None
    headers: list[bytes]
    request_id: bytes
    status: int
    ctx: Any
    failover_statuses: bytes | None
    connect_timeout_ms: float
    read_timeout_ms: float
    write_timeout_ms: float
    continuation: Any

class Gateway:
    loop: asyncio.AbstractEventLoop
    router: Any
    match_header_names: frozenset[bytes] | None
    route_on_sni: bool
    limits: Limits
    pools: dict[Any, UpstreamPool]
    clients: set[Any]
    busy_upstreams: set[Any]
    via: bytes
    requests_total: int
    responses_local: int
    connect_failures: int
    draining: bool
    shedding: bool
    plugin_runner: Any
    unmatched_metrics: MetricsCell | None
    metrics_cells: dict[tuple[str, str], MetricsCell]
    upstreams: dict[Any, UpstreamRuntime]
    metrics_export: dict[str, bool]
    def __init__(self, loop: asyncio.AbstractEventLoop, router: Any, limits: Limits,
                 plugin_runner: Any = None) -> None: ...
    def set_router(self, router: Any) -> None: ...
    def pool_for(self, host: str, port: int, ssl: _ssl.SSLContext | None = None,
                 server_hostname: str | None = None, tls_key: object = None) -> UpstreamPool: ...
    def upstream_runtime(self, spec: Any, checks: Any, ssl: _ssl.SSLContext | None = None,
                         tls_key: object = None) -> UpstreamRuntime: ...
    def forget_upstreams(self, keep: Iterable[UpstreamRuntime]) -> None: ...
    def metrics_cell(self, service: str, route: str) -> MetricsCell: ...
    def connection_states(self) -> dict[str, int]: ...
    def set_limits(self, limits: Limits) -> None: ...
    def protocol_factory(self, scheme: str = "http") -> Callable[[], ClientConnection]: ...
    @property
    def connections(self) -> int: ...
    def start_sweeper(self, interval: float = 0.1) -> None: ...
    def check_memory(self) -> None: ...
    def stop_sweeper(self) -> None: ...
    async def drain(self, timeout: float) -> None: ...
    def stats(self) -> dict[str, Any]: ...
