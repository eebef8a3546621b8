# cython: language_level=3
"""Per-worker state at request time: the limits, the runtime of each matched
route, one request's state, and the Gateway every connection shares (router,
pools, upstream runtimes, counters, timeouts swept a few times a second)."""

import asyncio
import logging
import os

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING
from libc.string cimport memcpy

from fastgw._core.client_connection cimport ClientConnection
from fastgw._core.metrics cimport MetricsCell
from fastgw._core.router cimport Router
from fastgw._core.upstream_connection cimport UpstreamConnection, UpstreamPool
from fastgw._core.upstream_runtime cimport UpstreamRuntime
from fastgw._core.wire cimport now_ms

from fastgw._core.router import SNI_KEY
from fastgw._core.wire import MSG_UPSTREAM_TIMEOUT, resident_bytes

cdef object TimeoutError_ = asyncio.TimeoutError
cdef object wait_for = asyncio.wait_for
cdef object core_log = logging.getLogger("fastgw.core")



cdef class Limits:
    def __init__(self, max_header_bytes=32768, max_body_bytes=8388608,
                 client_header_timeout=60.0, keepalive_timeout=75.0,
                 client_body_timeout=60.0,
                 max_connections=10000, upstream_pool_size=512,
                 upstream_keepalive_timeout=60.0, max_memory_mb=0,
                 max_response_buffer_bytes=67108864):
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.client_header_timeout_ms = client_header_timeout * 1000.0
        self.client_body_timeout_ms = client_body_timeout * 1000.0
        self.keepalive_timeout_ms = keepalive_timeout * 1000.0
        self.max_connections = max_connections
        self.upstream_pool_size = upstream_pool_size
        self.upstream_keepalive_timeout_ms = upstream_keepalive_timeout * 1000.0
        self.max_memory_bytes = <long long>max_memory_mb * 1048576
        self.max_response_buffer_bytes = max_response_buffer_bytes


@cython.final
cdef class FastAnswer:
    """A fast decision's answer (a rate-limit refusal, a cache hit): status,
    headers and body, which the core frames exactly as a plugin's exit on the
    runner path (no body on HEAD, X-Request-Id, Connection)."""

    def __init__(self, int status, list headers, bytes body=b""):
        self.status = status
        self.headers = headers
        self.body = body


cdef class RouteRuntime:
    def set_fast_access(self, callback, drop_response_headers=None):
        """A Python callable the core asks before any plugin runs:
        ``callback(method, host, url, headers, peer_ip, request_id)`` answers
        None (go on), a FastAnswer (answer now), or a tuple (header lines to
        add to the response head[, consumer label]): decided, go on.
        ``drop_response_headers`` names upstream headers those lines replace."""
        self.fast_access = callback
        self.drop_response_headers = frozenset(drop_response_headers) \
            if drop_response_headers else None

    def __init__(self, route, service, UpstreamPool pool, plugins=None,
                 MetricsCell metrics=None, UpstreamRuntime upstream=None, host_header=None):
        self.route = route
        self.service = service
        self.upstream = upstream
        self.preserve_host = route.preserve_host
        self.pool = pool
        self.plugins = plugins
        self.fast_access = None
        self.drop_response_headers = None
        self.metrics = metrics
        self.https_only = "http" not in tuple(route.protocols)
        self.https_redirect_status = route.https_redirect_status_code
        if service is not None:
            default_port = 443 if service.protocol == "https" else 80
            host = service.host
            if service.port != default_port:
                host = f"{host}:{service.port}"
            # An upstream's host_header replaces the service's host (Kong).
            self.upstream_host_header = (host_header or host).encode("idna")
            self.retries = service.retries
            self.connect_timeout_ms = service.connect_timeout
            self.write_timeout_ms = service.write_timeout
            self.read_timeout_ms = service.read_timeout
        else:
            self.upstream_host_header = b""
            self.retries = 0
            self.connect_timeout_ms = 60000
            self.write_timeout_ms = 60000
            self.read_timeout_ms = 60000



@cython.final
@cython.freelist(64)
cdef class Request:
    """One request from the client's head to the end of its answer."""

    def __cinit__(self):
        self.headers = []
        self.body_pending = []
        self.content_length = -1
        self.url = b""
        self.keep_alive = True
        self.replayable = True
        self.target = -1

    cdef void settle(self, int outcome, int status, double latency_ms):
        # Close this attempt in its upstream's balancer and passive health.
        cdef Py_ssize_t index = self.target
        if index < 0 or self.rt is None or self.rt.upstream is None:
            return
        self.target = -1
        self.rt.upstream.settle(index, outcome, status, latency_ms)


cdef class Gateway:
    """Per-worker state shared by every connection: the router, the pools,
    the limits and the counters the admin API reads."""

    def __init__(self, loop, router, Limits limits, plugin_runner=None):
        self.loop = loop
        self.set_router(router)
        self.limits = limits
        self.pools = {}
        self.clients = set()
        self.busy_upstreams = set()
        self.via = b"1.1 fastgw"
        self.requests_total = 0
        self.responses_local = 0
        self.connect_failures = 0
        self.draining = False
        self.request_id_prefix = os.urandom(8).hex().encode()
        self.request_id_counter = 0
        self.sweeper = None
        self.drain_waiter = None
        self.plugin_runner = plugin_runner
        self.metrics_cells = {}
        self.metrics_export = {}
        self.upstreams = {}

    def set_router(self, router):
        """Swap the routing table; requests already routed keep theirs."""
        names = router.header_names
        self.match_header_names = frozenset(names) if names else None
        self.route_on_sni = SNI_KEY in names
        self.router = router
        self.compiled_router = router if isinstance(router, Router) else None

    def pool_for(self, str host, int port, ssl=None, server_hostname=None, tls_key=None):
        """The keep-alive pool of a target; pools outlive config versions.

        ``tls_key`` names the TLS settings (the same settings, the same key,
        across config versions), so a reload keeps the warm connections."""
        key = (host, port, tls_key if ssl is not None else None, server_hostname)
        pool = self.pools.get(key)
        if pool is None:
            pool = UpstreamPool(host, port, ssl, server_hostname,
                                self.limits.upstream_pool_size)
            self.pools[key] = pool
        return pool

    def upstream_runtime(self, spec, checks, ssl=None, tls_key=None):
        """The runtime of an upstream entity, reused while its definition
        (and the TLS settings of the services using it) is unchanged.
        ``checks`` are its parsed health checks (config.model.HealthChecks)."""
        key = (spec.name, tls_key)
        current = self.upstreams.get(key)
        if current is not None and current.spec == spec:
            return current
        pools = [self.pool_for(t.host, t.port, ssl, t.host if ssl is not None else None, tls_key)
                 for t in spec.targets]
        runtime = UpstreamRuntime(spec, pools, checks)
        self.upstreams[key] = runtime
        return runtime

    def forget_upstreams(self, keep):
        """Drop runtimes of upstreams no longer in the config."""
        for key in [k for k, v in self.upstreams.items() if v not in keep]:
            del self.upstreams[key]

    def metrics_cell(self, str service, str route):
        """The counters of a (service, route); they outlive config versions so
        Prometheus counters never go backwards on a reload."""
        key = (service, route)
        cell = self.metrics_cells.get(key)
        if cell is None:
            cell = self.metrics_cells[key] = MetricsCell(service, route)
        return cell

    def connection_states(self):
        """Client connections by state, counted on demand (for /metrics)."""
        cdef ClientConnection c
        cdef long long reading = 0, writing = 0, waiting = 0
        for c in self.clients:
            if c.active is None and c.current is None:
                waiting += 1
            elif c.response_started:
                writing += 1
            else:
                reading += 1
        return {"reading": reading, "writing": writing, "waiting": waiting,
                "active": len(self.clients)}

    def set_limits(self, Limits limits):
        self.limits = limits

    def protocol_factory(self, scheme="http"):
        cdef bytes s = scheme.encode()
        return lambda: ClientConnection(self, s)

    cdef bytes next_request_id(self):
        # 16 hex digits of this worker's random prefix, 16 of a counter.
        cdef char tmp[32]
        cdef int i, digit
        cdef unsigned long long v
        self.request_id_counter += 1
        v = self.request_id_counter
        memcpy(tmp, PyBytes_AS_STRING(self.request_id_prefix), 16)
        for i in range(31, 15, -1):
            digit = <int>(v & 15)
            tmp[i] = <char>(48 + digit if digit < 10 else 87 + digit)
            v >>= 4
        return tmp[:32]

    cdef void connection_closed(self, ClientConnection conn):
        self.clients.discard(conn)
        if self.draining and not self.clients and self.drain_waiter is not None:
            if not self.drain_waiter.done():
                self.drain_waiter.set_result(None)

    @property
    def connections(self):
        return len(self.clients)

    def start_sweeper(self, double interval=0.1):
        """Check header, idle and upstream timeouts a few times a second.

        PERF: one periodic sweep costs far less than a timer per request.
        """
        self.sweeper = self.loop.call_later(interval, self._sweep, interval)

    def _sweep(self, double interval):
        cdef double now = now_ms()
        cdef ClientConnection c
        cdef UpstreamConnection u
        for c in list(self.clients):
            c.check_timeouts(now)
        for u in list(self.busy_upstreams):
            if u.client is None:
                self.busy_upstreams.discard(u)
                continue
            if (u.read_deadline > 0 and now > u.read_deadline) or \
                    (u.write_deadline > 0 and now > u.write_deadline):
                u.client.upstream_failed(u, 504, MSG_UPSTREAM_TIMEOUT, FAILURE_TIMEOUT)
        if self.limits.upstream_keepalive_timeout_ms > 0:
            for pool in self.pools.values():
                pool.close_idle(self.limits.upstream_keepalive_timeout_ms)
        self.check_memory()
        self.sweeper = self.loop.call_later(interval, self._sweep, interval)

    def check_memory(self):
        """Shed new requests while this worker's RSS is past the watermark, so
        it answers 503 before the OOM killer ends every request it holds; stop
        once it is back under 95% of it."""
        cdef long long limit = self.limits.max_memory_bytes
        cdef long long rss
        if limit <= 0:
            if self.shedding:
                self.shedding = False
            return
        rss = resident_bytes()
        if not self.shedding and rss > limit:
            self.shedding = True
            core_log.warning("worker RSS %d MB is over max_memory_mb %d: answering 503 to "
                               "new requests", rss >> 20, limit >> 20)
        elif self.shedding and rss < limit * 0.95:
            self.shedding = False
            core_log.warning("worker RSS %d MB is back under max_memory_mb %d",
                               rss >> 20, limit >> 20)

    def stop_sweeper(self):
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None

    async def drain(self, double timeout):
        """Stop keep-alive, close idle connections, wait for the rest."""
        cdef ClientConnection c
        self.draining = True
        for c in list(self.clients):
            if c.active is None and c.current is None:
                c.closing = True
                c.transport.close()
        if self.clients:
            self.drain_waiter = self.loop.create_future()
            try:
                await wait_for(self.drain_waiter, timeout)
            except TimeoutError_:
                pass
        for c in list(self.clients):
            c.transport.close()
        for pool in self.pools.values():
            pool.close_idle()

    def stats(self):
        return {
            "connections": len(self.clients),
            "requests": self.requests_total,
            "local_responses": self.responses_local,
            "upstream_connect_failures": self.connect_failures,
            "upstream_connections_busy": len(self.busy_upstreams),
            "upstream_pools": len(self.pools),
        }
