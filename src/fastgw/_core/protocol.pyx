# cython: language_level=3
"""The proxy's hot path: from the client's socket read to the upstream's
socket write and back, in compiled code.

A request on a route without Python plugins runs only code in this module and
in the router: httptools calls back into these cdef classes, the head sent
upstream is written with memcpy into a per-connection buffer, and each side
gets one ``transport.write`` per event-loop callback (PERF.md: the kernel's
system calls dominate, so writes are coalesced).
"""

import asyncio
import collections
import logging
import os

import httptools

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport memcpy
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from fastgw._core.balancer cimport Balancer
from fastgw._core.buffer cimport WriteBuffer
from fastgw._core.metrics cimport MetricsCell
from fastgw._core.router cimport RouteMatch, Router

from fastgw._core import balancer as balancers
from fastgw._core.router import MalformedTarget

cdef object HttpRequestParser = httptools.HttpRequestParser
cdef object HttpResponseParser = httptools.HttpResponseParser
cdef object HttpParserUpgrade = httptools.HttpParserUpgrade
cdef object HttpParserError = httptools.HttpParserError
cdef object deque = collections.deque
cdef object TimeoutError_ = asyncio.TimeoutError
cdef object wait_for = asyncio.wait_for
cdef object health_log = logging.getLogger("fastgw.upstreams")
cdef object core_log = logging.getLogger("fastgw.core")


# Kong's wording for the errors the proxy itself answers.
MSG_NO_ROUTE = b"no Route matched with those values"
MSG_BAD_REQUEST = b"Bad request"
MSG_TIMEOUT = b"Request timeout"
MSG_TOO_LARGE = b"Payload too large"
MSG_HEADERS_TOO_LARGE = b"Request header or cookie too large"
MSG_EXPECTATION = b"Expectation failed"
MSG_BAD_UPSTREAM = b"An invalid response was received from the upstream server"
MSG_NO_PEER = b"failure to get a peer from the ring-balancer"
MSG_UPSTREAM_TIMEOUT = b"The upstream server is timing out"
MSG_UNEXPECTED = b"An unexpected error occurred"
MSG_UNAVAILABLE = b"The upstream server is currently unavailable"
MSG_OVERLOADED = b"The gateway is over its memory limit"

cdef dict REASONS = {
    100: b"Continue", 101: b"Switching Protocols", 200: b"OK", 201: b"Created",
    202: b"Accepted", 204: b"No Content", 301: b"Moved Permanently", 302: b"Found",
    304: b"Not Modified", 400: b"Bad Request", 401: b"Unauthorized", 403: b"Forbidden",
    404: b"Not Found", 405: b"Method Not Allowed", 408: b"Request Timeout",
    413: b"Payload Too Large", 417: b"Expectation Failed", 429: b"Too Many Requests",
    431: b"Request Header Fields Too Large", 500: b"Internal Server Error",
    501: b"Not Implemented", 502: b"Bad Gateway", 503: b"Service Unavailable",
    504: b"Gateway Timeout",
}

# Which response phases a request's plugins have (Request.filters).
FILTER_HEADER = 1
FILTER_BODY = 2
FILTER_LOG = 4

MSG_HTTPS_REQUIRED = b"Please use HTTPS protocol"
MSG_NOT_ALLOWED = b"Method not allowed"

# Headers a client may not make hop-by-hop by naming them in Connection: the
# request's framing and the headers the gateway itself sets. A token naming
# one of them is ignored (removing Content-Length would let the body be read
# upstream as another request).
cdef frozenset PROTECTED_CONNECTION_TOKENS = frozenset({
    b"content-length", b"transfer-encoding", b"host", b"x-request-id", b"via",
    b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port",
    b"x-real-ip", b"close", b"keep-alive", b"upgrade",
})

cdef enum:
    # A body up to this size is kept after it is sent upstream, so that a
    # request can be resent when a pooled keep-alive connection turns out to
    # have been closed by the upstream (the race every proxy has).
    REPLAY_LIMIT = 65536
    # Pipelined requests waiting their turn may buffer this much body before
    # the client is paused.
    PENDING_BODY_LIMIT = 262144
    # Bytes a client sends after an upgrade request, held until the upstream
    # answers 101 (they belong to the tunnel) or not (they are dropped).
    UPGRADE_HOLD_LIMIT = 65536


cdef inline double now_ms() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1000000.0


cdef long long PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes():
    """This process's resident set size (the OOM killer's measure)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE_SIZE


def monotonic_ms():
    """The clock the core uses for deadlines, in milliseconds."""
    return now_ms()


# ---------------------------------------------------------------------------
# Header names the proxy acts on. Matching is by length first, then a
# case-insensitive compare against a lower-case literal: no allocation.

cdef enum HeaderKind:
    H_OTHER = 0
    H_HOST
    H_CONTENT_LENGTH
    H_TRANSFER_ENCODING
    H_CONNECTION
    H_HOP                 # keep-alive, proxy-connection, te, trailer
    H_UPGRADE
    H_EXPECT
    H_X_FORWARDED_FOR
    H_X_FORWARDED_OTHER   # -proto, -host, -port: always set by the proxy
    H_X_REAL_IP
    H_X_REQUEST_ID


cdef inline bint ieq(const char* p, Py_ssize_t n, const char* lit, Py_ssize_t m) noexcept:
    cdef Py_ssize_t i
    cdef char c
    if n != m:
        return False
    for i in range(n):
        c = p[i]
        if b'A' <= c <= b'Z':
            c = c + 32
        if c != lit[i]:
            return False
    return True


cdef int classify_header(bytes name) noexcept:
    cdef const char* p = PyBytes_AS_STRING(name)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(name)
    if n == 4:
        if ieq(p, n, b"host", 4):
            return H_HOST
    elif n == 14:
        if ieq(p, n, b"content-length", 14):
            return H_CONTENT_LENGTH
    elif n == 10:
        if ieq(p, n, b"connection", 10):
            return H_CONNECTION
        if ieq(p, n, b"keep-alive", 10):
            return H_HOP
    elif n == 17:
        if ieq(p, n, b"transfer-encoding", 17):
            return H_TRANSFER_ENCODING
        if ieq(p, n, b"x-forwarded-proto", 17):
            return H_X_FORWARDED_OTHER
    elif n == 2:
        if ieq(p, n, b"te", 2):
            return H_HOP
    elif n == 7:
        if ieq(p, n, b"upgrade", 7):
            return H_UPGRADE
        if ieq(p, n, b"trailer", 7):
            return H_HOP
    elif n == 6:
        if ieq(p, n, b"expect", 6):
            return H_EXPECT
    elif n == 16:
        if ieq(p, n, b"proxy-connection", 16):
            return H_HOP
        if ieq(p, n, b"x-forwarded-host", 16) or ieq(p, n, b"x-forwarded-port", 16):
            return H_X_FORWARDED_OTHER
    elif n == 15:
        if ieq(p, n, b"x-forwarded-for", 15):
            return H_X_FORWARDED_FOR
    elif n == 9:
        if ieq(p, n, b"x-real-ip", 9):
            return H_X_REAL_IP
    elif n == 12:
        if ieq(p, n, b"x-request-id", 12):
            return H_X_REQUEST_ID
    return H_OTHER


cdef bint upgrade_accepted(bytes asked, bytes answered):
    # RFC 9110 7.8: the 101's Upgrade names one of the protocols the request
    # offered.
    cdef bytes token
    if asked is None or answered is None:
        return False
    token = answered.strip().lower()
    for offered in asked.split(b","):
        if offered.strip().lower() == token:
            return True
    return False


def header_kind(bytes name):
    """Python access to the classifier, for tests."""
    return classify_header(name)


cdef enum:
    # Content-Length values past this are all "too large": llhttp accepts up
    # to 2**64-1, which does not fit a signed length, so the parse saturates
    # here instead of wrapping (the 413 check then refuses it at once).
    LENGTH_SATURATED = 9223372036854775807


cdef long long parse_length(bytes value) except -2:
    # llhttp has already refused anything but digits (and surrounding
    # whitespace) in Content-Length; PERF: int() showed in profiles.
    cdef const char* p = PyBytes_AS_STRING(value)
    cdef Py_ssize_t i, n = PyBytes_GET_SIZE(value)
    cdef long long result = 0
    cdef char c
    for i in range(n):
        c = p[i]
        if b'0' <= c <= b'9':
            if result > 922337203685477579 or \
                    (result == 922337203685477580 and c > b'7'):
                result = LENGTH_SATURATED
                continue
            if result != LENGTH_SATURATED:
                result = result * 10 + (c - 48)
        elif c != b' ' and c != b'\t':
            return -1
    return result


def content_length_of(bytes value):
    """Python access to the Content-Length parser, for tests."""
    return parse_length(value)


cdef bytes strip_port(bytes host):
    # "example.com:8000" -> "example.com"; "[::1]:80" -> "[::1]"
    cdef Py_ssize_t i = host.rfind(b":")
    if i < 0 or host.endswith(b"]"):
        return host
    return host[:i]


cdef bint has_header(list headers, bytes lower_name):
    cdef Py_ssize_t i
    for i in range(0, len(headers), 2):
        if (<bytes>headers[i]).lower() == lower_name:
            return True
    return False


cdef list connection_tokens(bytes value):
    return [t.strip().lower() for t in value.split(b",") if t.strip()]


# ---------------------------------------------------------------------------
# Balancing over an upstream's targets.

cdef enum HashOn:
    HASH_NONE = 0
    HASH_CONSUMER
    HASH_IP
    HASH_HEADER
    HASH_COOKIE
    HASH_PATH
    HASH_QUERY_ARG

cdef dict HASH_KINDS = {"none": HASH_NONE, "consumer": HASH_CONSUMER, "ip": HASH_IP,
                        "header": HASH_HEADER, "cookie": HASH_COOKIE, "path": HASH_PATH,
                        "query_arg": HASH_QUERY_ARG}

cdef enum Outcome:
    OUTCOME_RESPONSE = 0    # a status line arrived
    OUTCOME_TCP_FAILURE     # refused, reset, or not HTTP
    OUTCOME_TIMEOUT
    OUTCOME_RELEASE         # given up for reasons not the target's

# Methods a proxy may resend after the request reached the upstream
# (RFC 9110 9.2.2).
cdef frozenset IDEMPOTENT = frozenset({b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"})


cdef inline void settle(Request req, int outcome, int status, double latency_ms):
    """End the balancer's view of this attempt: every pick is followed by
    exactly one record (a response) or release (anything else)."""
    cdef Py_ssize_t index = req.target
    cdef UpstreamRuntime up
    if index < 0 or req.rt is None or req.rt.upstream is None:
        return
    up = req.rt.upstream
    req.target = -1
    if outcome == OUTCOME_RESPONSE:
        up.balancer.record(index, latency_ms if latency_ms > 0 else 0.0)
    else:
        up.balancer.release(index)
    if up.passive_on and outcome != OUTCOME_RELEASE:
        up.passive(index, outcome, status)


cdef bytes find_header(list headers, bytes lower_name):
    cdef Py_ssize_t i
    for i in range(0, len(headers), 2):
        if (<bytes>headers[i]).lower() == lower_name:
            return <bytes>headers[i + 1]
    return None


cdef bytes find_param(bytes text, bytes name, bytes separator):
    # "a=1; b=2" (cookies) or "a=1&b=2" (query): the first value of name.
    cdef bytes part
    for part in text.split(separator):
        part = part.strip()
        if part.startswith(name) and part[len(name):len(name) + 1] == b"=":
            return part[len(name) + 1:]
    return None


cdef class UpstreamRuntime:
    """An upstream entity at request time. Kept across config versions while
    its definition is unchanged, so balancer and health state survive reloads."""

    def __init__(self, spec, list pools, checks, on_change=None):
        # ``checks``: the upstream's health checks as the config layer parsed
        # them (config.model.HealthChecks); the core reads, never parses.
        self.name = spec.name
        self.spec = spec
        self.targets = tuple(spec.targets)
        self.pools = pools
        self.on_change = on_change
        targets = [balancers.Target(t.host, t.port, t.weight) for t in self.targets]
        algorithm = spec.algorithm
        if algorithm == "consistent-hashing":
            self.balancer = balancers.HashRing(targets, spec.slots)
        elif algorithm == "least-connections":
            self.balancer = balancers.LeastConnections(targets)
        elif algorithm == "latency":
            self.balancer = balancers.PeakEwma(targets)
        else:
            self.balancer = balancers.RoundRobin(targets)
        hashing = algorithm == "consistent-hashing"
        self.hash_on = HASH_KINDS.get(spec.hash_on, HASH_NONE) if hashing else HASH_NONE
        self.hash_fallback = HASH_KINDS.get(spec.hash_fallback, HASH_NONE) if hashing else HASH_NONE
        self.hash_on_name = self._key_name(self.hash_on, spec.hash_on_header,
                                           spec.hash_on_cookie, spec.hash_on_query_arg)
        self.hash_fallback_name = self._key_name(self.hash_fallback, spec.hash_fallback_header,
                                                 spec.hash_on_cookie,
                                                 spec.hash_fallback_query_arg)
        self.health = ["HEALTHY"] * len(self.targets)
        self.counters = [[0, 0, 0, 0] for _ in self.targets]
        p_ok = checks.passive_healthy
        p_bad = checks.passive_unhealthy
        self.ok_threshold = p_ok.successes
        self.http_fail_threshold = p_bad.http_failures
        self.tcp_fail_threshold = p_bad.tcp_failures
        self.timeout_threshold = p_bad.timeouts
        self.passive_on = checks.passive_on
        kinds = bytearray(600)
        for code in p_ok.http_statuses:
            if 0 <= code < 600:
                kinds[code] = 1
        for code in p_bad.http_statuses:
            if 0 <= code < 600:
                kinds[code] = 2
        self.status_kind = bytes(kinds)
        self.healthchecks_on = self.passive_on or checks.active_on

    @staticmethod
    def _key_name(int kind, header, cookie, query_arg):
        if kind == HASH_HEADER and header:
            return header.lower().encode("latin-1")
        if kind == HASH_COOKIE and cookie:
            return cookie.encode("latin-1")
        if kind == HASH_QUERY_ARG and query_arg:
            return query_arg.encode("latin-1")
        return b""

    cdef bytes request_key(self, ClientConnection client, Request req, int kind, bytes name):
        cdef bytes value, url
        cdef Py_ssize_t q
        if kind == HASH_NONE:
            return None
        if kind == HASH_IP:
            return client.peer_ip
        if kind == HASH_CONSUMER:
            return str(req.consumer_key).encode() if req.consumer_key is not None else None
        url = req.url
        if kind == HASH_PATH:
            q = url.find(b"?")
            return url if q < 0 else url[:q]
        if kind == HASH_HEADER:
            if name == b"host":
                return req.host
            return find_header(req.headers, name)
        if kind == HASH_COOKIE:
            value = find_header(req.headers, b"cookie")
            return find_param(value, name, b";") if value is not None else None
        if kind == HASH_QUERY_ARG:
            q = url.find(b"?")
            return find_param(url[q + 1:], name, b"&") if q >= 0 else None
        return None

    cdef Py_ssize_t pick(self, ClientConnection client, Request req) except? -2:
        cdef bytes key = self.request_key(client, req, self.hash_on, self.hash_on_name)
        if key is None and self.hash_fallback != HASH_NONE:
            key = self.request_key(client, req, self.hash_fallback, self.hash_fallback_name)
        if key is not None and req.retries_used:
            # A retry of a hashed request walks to another point of the ring.
            key = key + b"#" + str(req.retries_used).encode()
        return self.balancer.pick(key)

    cdef void passive(self, Py_ssize_t index, int outcome, int status):
        # Kong's circuit breaker: consecutive failures of one kind past its
        # threshold take a target out; successes reset the failure counts.
        cdef list c = <list>self.counters[index]
        cdef int kind = 0
        if outcome == OUTCOME_RESPONSE:
            if 0 <= status < 600:
                kind = self.status_kind[status]
            if kind == 1:
                c[0] += 1
                c[1] = c[2] = c[3] = 0
                if self.ok_threshold and c[0] >= self.ok_threshold \
                        and self.health[index] == "UNHEALTHY":
                    self.mark(index, "HEALTHY",
                              f"passive: {c[0]} successes, last status {status}")
                return
            if kind != 2:
                return
            c[1] += 1
            c[0] = 0
            if self.http_fail_threshold and c[1] >= self.http_fail_threshold:
                self.mark(index, "UNHEALTHY",
                          f"passive: {c[1]} http failures, last status {status}")
        elif outcome == OUTCOME_TCP_FAILURE:
            c[2] += 1
            c[0] = 0
            if self.tcp_fail_threshold and c[2] >= self.tcp_fail_threshold:
                self.mark(index, "UNHEALTHY", f"passive: {c[2]} tcp failures")
        elif outcome == OUTCOME_TIMEOUT:
            c[3] += 1
            c[0] = 0
            if self.timeout_threshold and c[3] >= self.timeout_threshold:
                self.mark(index, "UNHEALTHY", f"passive: {c[3]} timeouts")

    cdef void mark(self, Py_ssize_t index, str health, str reason):
        # Every transition, active or passive, either way, passes here and is
        # logged once, at one level, with its cause.
        if self.health[index] == health:
            return
        health_log.warning("upstream %s target %s is now %s (%s)", self.name,
                           self.targets[index].target, health, reason)
        self.health[index] = health
        self.counters[index] = [0, 0, 0, 0]
        self.balancer.set_healthy(index, health == "HEALTHY")
        if self.on_change is not None:
            try:
                self.on_change(self.name, index, health)
            except Exception:
                pass

    def set_target_health(self, Py_ssize_t index, bint healthy, str reason="", bint dns=False):
        """For the active checker and DNS; ``dns`` marks DNS_ERROR. ``reason``
        is logged with the transition."""
        if healthy:
            self.mark(index, "HEALTHY", reason)
        else:
            self.mark(index, "DNS_ERROR" if dns else "UNHEALTHY", reason)

    def target_health(self):
        out = []
        for i, t in enumerate(self.targets):
            state = self.health[i]
            if state == "HEALTHY" and not self.healthchecks_on:
                state = "HEALTHCHECKS_OFF"
            out.append({"target": t.target, "weight": t.weight, "health": state})
        return out

    def set_on_change(self, callback):
        self.on_change = callback

    def pick_for_test(self, bytes key=None):
        """The balancer's choice for a key (tests)."""
        return self.balancer.pick(key)


# ---------------------------------------------------------------------------

cdef class Limits:
    def __init__(self, max_header_bytes=32768, max_body_bytes=8388608,
                 client_header_timeout=60.0, keepalive_timeout=75.0,
                 client_body_timeout=60.0,
                 max_connections=10000, upstream_pool_size=512,
                 upstream_keepalive_timeout=60.0, max_memory_mb=0):
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.client_header_timeout_ms = client_header_timeout * 1000.0
        self.client_body_timeout_ms = client_body_timeout * 1000.0
        self.keepalive_timeout_ms = keepalive_timeout * 1000.0
        self.max_connections = max_connections
        self.upstream_pool_size = upstream_pool_size
        self.upstream_keepalive_timeout_ms = upstream_keepalive_timeout * 1000.0
        self.max_memory_bytes = <long long>max_memory_mb * 1048576


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
                 MetricsCell metrics=None, UpstreamRuntime upstream=None):
        self.route = route
        self.service = service
        self.upstream = upstream
        self.route_name = (route.name or "").encode()
        self.service_name = (service.name if service is not None else "").encode()
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
            self.upstream_host_header = host.encode("idna")
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


cdef class UpstreamPool:
    """Idle keep-alive connections to one target, reused most-recent first."""

    def __init__(self, str host, int port, ssl=None, server_hostname=None, max_idle=512):
        self.host = host
        self.port = port
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.idle = []
        self.max_idle = max_idle

    cdef UpstreamConnection acquire(self):
        cdef UpstreamConnection conn
        while self.idle:
            conn = <UpstreamConnection>self.idle.pop()
            if not conn.closed:
                conn.reused = True
                return conn
        return None

    cdef void release(self, UpstreamConnection conn):
        if conn.closed:
            return
        if len(self.idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = now_ms()
        self.idle.append(conn)

    cdef void forget(self, UpstreamConnection conn):
        # The connection closed: drop it wherever it is.
        try:
            self.idle.remove(conn)
        except ValueError:
            pass

    async def connect(self, loop, double timeout_ms):
        make = lambda: UpstreamConnection(self)
        if self.ssl is not None:
            coro = loop.create_connection(make, self.host, self.port, ssl=self.ssl,
                                          server_hostname=self.server_hostname)
        else:
            coro = loop.create_connection(make, self.host, self.port)
        transport, conn = await wait_for(coro, timeout_ms / 1000.0)
        return conn

    def close_idle(self, double older_than_ms=-1):
        """Close idle connections (all, or those idle longer than the bound)."""
        cdef UpstreamConnection conn
        cdef double now = now_ms()
        keep = []
        for conn in self.idle:
            if older_than_ms < 0 or now - conn.idle_since > older_than_ms:
                conn.close()
            else:
                keep.append(conn)
        self.idle = keep


@cython.freelist(64)
cdef class Request:
    def __cinit__(self):
        self.headers = []
        self.body_pending = []
        self.content_length = -1
        self.url = b""
        self.keep_alive = True
        self.replayable = True
        self.target = -1


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
                u.client.upstream_failed(u, 504, MSG_UPSTREAM_TIMEOUT)
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


cdef list JSON_CONTENT_TYPE = [b"Content-Type", b"application/json; charset=utf-8"]


cdef bytes error_body(bytes message):
    return b'{"message":"' + message + b'"}'


# ---------------------------------------------------------------------------

cdef class ClientConnection:
    """One downstream connection: parses requests, answers them in order."""

    def __init__(self, Gateway gw, bytes scheme):
        self.gw = gw
        self.scheme = scheme
        self.parser = HttpRequestParser(self)
        self.feed = self.parser.feed_data
        self.pending = deque()
        self.wbuf = WriteBuffer()
        self.peer_ip = b""
        self.local_port = b""

    # -- asyncio protocol ---------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        self.write = transport.write
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer_ip = str(peer[0]).encode()
        sock = transport.get_extra_info("sockname")
        if sock and len(sock) >= 2:
            self.local_port = str(sock[1]).encode()
        self.idle_since = now_ms()
        self.gw.clients.add(self)
        if len(self.gw.clients) > self.gw.limits.max_connections:
            # Over the connection limit: close before reading anything, as
            # nginx does once worker_connections are used up.
            self.closing = True
            transport.close()

    def data_received(self, bytes data):
        cdef Py_ssize_t offset
        if self.closing or self.refusing:
            return
        if self.tunnel:
            if self.upstream is not None:
                self.upstream.wbuf.add(data)
                self.upstream.flush()
            return
        if self.upgrade_wait:
            self.hold(data)
            return
        try:
            self.feed(data)
        except HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args else len(data)
            self.wait_for_upgrade(data[offset:])
        except HttpParserError:
            if self.error_status == 0:
                self.error_status = 400
            self.refuse()
        except Exception:
            if self.error_status == 0:
                self.error_status = 500
            self.refuse()
        if self.upstream is not None and self.upstream.wbuf.length:
            self.upstream.flush()
        if self.wbuf.length:
            self.flush()

    def eof_received(self):
        # As nginx (proxy_ignore_client_abort off): a client that closes its
        # side while a request is in flight has given up on it (499); the
        # exchange is abandoned and the upstream connection closed.
        return False

    def connection_lost(self, exc):
        cdef Request req = self.active
        self.closing = True
        if req is not None:
            settle(req, OUTCOME_RELEASE, 0, 0)
            if req.ctx is not None and (req.filters & FILTER_LOG) and not self.response_done:
                # The client went away mid-exchange: the log phase still runs
                # (nginx's 499 when no status was sent), so loggers see it and
                # plugins waiting on this request are released.
                if req.status == 0 or not self.response_started:
                    req.status = 499
                self.gw.loop.call_soon(self.gw.plugin_runner.log, req)
        if self.upstream is not None:
            up = self.upstream
            self.upstream = None
            up.client = None
            up.close()
        self.active = None
        self.current = None
        self.pending.clear()
        self.gw.connection_closed(self)

    def pause_writing(self):
        self.writing_paused = True
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self):
        self.writing_paused = False
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    @property
    def gateway(self):
        return self.gw

    @property
    def peer_address(self):
        return self.peer_ip.decode()

    @property
    def scheme_name(self):
        return self.scheme.decode()

    @property
    def local_port_number(self):
        return int(self.local_port) if self.local_port else 0

    # -- httptools callbacks ------------------------------------------------

    def on_message_begin(self):
        cdef Request req = Request()
        req.t_start = now_ms()
        self.head_started = req.t_start
        self.idle_since = 0
        self.current = req
        if self.active is None:
            self.active = req
        else:
            self.pending.append(req)

    def on_url(self, bytes url):
        cdef Request req = self.current
        req.header_bytes += PyBytes_GET_SIZE(url)
        if req.header_bytes > self.gw.limits.max_header_bytes:
            self.error_status = 431
            raise ValueError("request head too large")
        if PyBytes_GET_SIZE(req.url):
            req.url = req.url + url
        else:
            req.url = url

    def on_header(self, bytes name, bytes value):
        cdef Request req = self.current
        cdef int kind
        cdef bytes v
        req.header_bytes += PyBytes_GET_SIZE(name) + PyBytes_GET_SIZE(value) + 4
        if req.header_bytes > self.gw.limits.max_header_bytes:
            self.error_status = 431
            raise ValueError("request head too large")
        kind = classify_header(name)
        if kind == H_OTHER:
            req.headers.append(name)
            req.headers.append(value)
            if self.gw.match_header_names is not None:
                lname = name.lower()
                if lname in self.gw.match_header_names and \
                        (req.match_headers is None or lname not in req.match_headers):
                    if req.match_headers is None:
                        req.match_headers = {}
                    req.match_headers[lname] = value
        elif kind == H_CONTENT_LENGTH:
            # llhttp has refused repeated or malformed lengths already.
            req.content_length = parse_length(value)
            req.headers.append(name)
            req.headers.append(value)
        elif kind == H_HOST:
            if req.host is not None:
                self.error_status = 400
                raise ValueError("repeated Host")
            req.host = value
        elif kind == H_TRANSFER_ENCODING:
            # RFC 9112 6.1: a proxy may refuse codings it does not know; only
            # a lone "chunked" is unambiguous.
            if value.strip().lower() != b"chunked":
                self.error_status = 400
                raise ValueError("unsupported transfer-encoding")
            req.chunked = True
        elif kind == H_CONNECTION:
            req.connection_tokens = connection_tokens(value)
        elif kind == H_X_FORWARDED_FOR:
            req.xff = value if req.xff is None else req.xff + b", " + value
        elif kind == H_X_REQUEST_ID:
            req.request_id = value
            req.headers.append(name)
            req.headers.append(value)
        elif kind == H_UPGRADE:
            req.upgrade = value
        elif kind == H_EXPECT:
            if value.strip().lower() != b"100-continue":
                self.error_status = 417
                raise ValueError("unsupported expectation")
            req.expect_continue = True
        # H_HOP, H_X_FORWARDED_OTHER and H_X_REAL_IP are dropped: the proxy
        # sets its own.

    def on_headers_complete(self):
        cdef Request req = self.current
        self.head_started = 0
        req.method = self.parser.get_method()
        req.keep_alive = self.parser.should_keep_alive()
        # PERF: get_http_version() formats a string; only a request that
        # could be HTTP/1.0 (no keep-alive by default, or an explicit
        # Connection header) needs it.
        if req.keep_alive and req.connection_tokens is None:
            req.http_minor = 1
        else:
            req.http_minor = 1 if self.parser.get_http_version() == "1.1" else 0
        if req.host is None and req.http_minor == 1:
            # RFC 9112 3.2: an HTTP/1.1 request without Host is refused.
            self.error_status = 400
            raise ValueError("missing Host")
        if req.connection_tokens is not None:
            self.filter_connection_headers(req)
        if req.upgrade is not None or self.parser.should_upgrade():
            self.check_upgrade(req)
        if req.content_length > self.gw.limits.max_body_bytes:
            self.error_status = 413
            raise ValueError("body too large")
        if req.content_length > 0 or req.chunked:
            # A body is due: the client may not stall it forever (408).
            req.t_last_body = now_ms()
        if req.request_id is None:
            req.request_id = self.gw.next_request_id()
            req.headers.append(b"X-Request-Id")
            req.headers.append(req.request_id)
        self.gw.requests_total += 1
        if req is self.active:
            self.start_request(req)

    def on_body(self, bytes chunk):
        cdef Request req = self.current
        cdef Py_ssize_t size = PyBytes_GET_SIZE(chunk)
        req.body_received += size
        req.t_last_body = now_ms()
        if req.body_received > self.gw.limits.max_body_bytes:
            self.error_status = 413
            raise ValueError("body too large")
        if req.discard_body:
            return
        if req.replayable:
            if req.body_received <= REPLAY_LIMIT:
                if req.body_sent is None:
                    req.body_sent = [chunk]
                else:
                    req.body_sent.append(chunk)
            else:
                req.replayable = False
                req.body_sent = None
        if req is self.active and self.upstream is not None:
            self.upstream.write_body(chunk, req.chunked)
        else:
            # Not connected yet, in the access phase, or pipelined: hold it.
            # The active request's hold is bounded by max_body_bytes.
            req.body_pending.append(chunk)
            req.body_pending_bytes += size
            if req is not self.active and req.body_pending_bytes > PENDING_BODY_LIMIT \
                    and not self.reading_paused:
                self.reading_paused = True
                self.transport.pause_reading()

    def on_message_complete(self):
        cdef Request req = self.current
        req.complete = True
        self.current = None
        if req.body_waiter is not None:
            waiter = req.body_waiter
            req.body_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if req is not self.active:
            # A pipelined request waits its turn; stop reading until then.
            if not self.reading_paused:
                self.reading_paused = True
                self.transport.pause_reading()
            return
        if self.response_done:
            self.finish_exchange()
        elif self.upstream is not None and not req.discard_body:
            self.upstream.write_body_end(req.chunked)

    # -- request life cycle ---------------------------------------------------

    def check_upgrade(self, Request req):
        # An upgrade is asked for only by Upgrade together with a Connection
        # token naming it (llhttp pauses on exactly that, and on CONNECT).
        # The connection becomes a tunnel only if the upstream answers 101;
        # otherwise it closes after the answer, so nothing the client sent
        # after this head is ever read as a request of its own.
        if req.method == b"CONNECT":
            self.error_status = 405
            raise ValueError("CONNECT is not proxied")
        if req.connection_tokens is None or b"upgrade" not in req.connection_tokens:
            req.upgrade = None      # a bare Upgrade header is hop-by-hop: dropped
            return
        if req.content_length > 0 or req.chunked:
            self.error_status = 400
            raise ValueError("upgrade request with a body")
        req.keep_alive = False

    def filter_connection_headers(self, Request req):
        # Headers named in Connection are hop-by-hop too (RFC 9110 7.6.1),
        # except the framing and the gateway's own, which are never removed.
        extra = set(t for t in req.connection_tokens
                    if t not in PROTECTED_CONNECTION_TOKENS)
        if not extra:
            return
        kept = []
        headers = req.headers
        for i in range(0, len(headers), 2):
            if headers[i].lower() not in extra:
                kept.append(headers[i])
                kept.append(headers[i + 1])
        req.headers = kept

    cdef void start_request(self, Request req):
        self.response_started = False
        self.response_done = False
        self.route_request(req)

    cdef void route_request(self, Request req):
        cdef RouteRuntime rt
        cdef UpstreamConnection conn
        cdef RouteMatch match
        if self.gw.shedding:
            self.respond_local(503, MSG_OVERLOADED, True)
            return
        try:
            if self.gw.compiled_router is not None:
                # PERF: a C call into the compiled trie, no Python method lookup.
                match = self.gw.compiled_router.match(req.method, req.host, req.url,
                                                      req.match_headers)
            else:
                match = self.gw.router.match(req.method, req.host, req.url, req.match_headers)
        except MalformedTarget:
            self.respond_local(400, MSG_BAD_REQUEST, True)
            return
        if match is None:
            self.respond_local(404, MSG_NO_ROUTE, False)
            return
        rt = <RouteRuntime>match.payload
        req.rt = rt
        req.upstream_url = match.upstream_path
        if rt.https_only and self.scheme != b"https":
            self.respond_https_required(req)
            return
        out = None
        if rt.fast_access is not None:
            # The plugins' decisions taken without a request context (a key,
            # a rate limit, a cache hit): one Python call instead of the runner.
            out = rt.fast_access(req.method, req.host, req.url, req.headers, self.peer_ip,
                                 req.request_id)
            if out is not None:
                if type(out) is FastAnswer:
                    req.extra_head = (<FastAnswer>out).extra_head
                    self.answer_now(req, (<FastAnswer>out).status, (<FastAnswer>out).headers,
                                    (<FastAnswer>out).body, False)
                    return
                if type(out) is tuple:
                    # (response header lines or None, consumer label or None):
                    # decided; no plugin has anything left to do.
                    req.extra_head = <bytes>(<tuple>out)[0]
                    req.consumer_key = (<tuple>out)[1]
                    self.proceed(req)
                    return
                # Otherwise a hand-over: the runner goes on from the first
                # plugin that needs a request context.
        if rt.plugins is not None and self.gw.plugin_runner is not None:
            # The slow path: Python plugins. The runner answers True when the
            # access phase finished synchronously and the request goes on.
            if not self.gw.plugin_runner.access(self, req, out):
                return
        self.proceed(req)

    def respond_https_required(self, Request req):
        # Kong's answer for an https-only route reached over http.
        cdef int status = req.rt.https_redirect_status
        cdef list headers = []
        cdef bytes body = b""
        if status in (301, 302, 307, 308) and req.host is not None:
            headers = [b"Location", b"https://" + req.host + req.url]
        else:
            body = error_body(MSG_HTTPS_REQUIRED)
            headers = [b"Content-Type", b"application/json; charset=utf-8"]
        self.respond_exit(req, status, headers, body)

    def resume(self, Request req):
        """Carry on with a request after an asynchronous access phase."""
        if self.closing or self.active is not req:
            return
        self.proceed(req)
        if self.upstream is not None:
            self.upstream.flush()
        self.flush()

    def send_continue(self, Request req):
        """Ask the client for its body now (a plugin wants to read it)."""
        if req.expect_continue and not req.complete and not req.continue_sent \
                and self.active is req and not self.closing:
            req.continue_sent = True
            self.wbuf.add(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.flush()

    def respond_exit(self, Request req, int status, list headers, bytes body,
                     bint close=False):
        """Answer with a response a plugin (or the gateway) built."""
        if self.closing or self.active is not req:
            return
        self.answer_now(req, status, headers, body, close)
        self.flush()

    cdef void answer_now(self, Request req, int status, list headers, bytes body, bint close):
        # The one framing of an answer made in the gateway, whichever path
        # made it: HEAD, 1xx, 204 and 304 answers carry no body.
        cdef bint bodyless = req.method == b"HEAD" or status == 204 or status == 304 \
            or status < 200
        req.discard_body = True
        self.write_response_head(status, REASONS.get(status, b"Unknown"), headers,
                                 -1 if (status == 204 or status == 304 or status < 200)
                                 else PyBytes_GET_SIZE(body), close)
        if not bodyless:
            self.wbuf.add(body)
            req.bytes_out += PyBytes_GET_SIZE(body)
        self.response_started = True
        self.response_finished(close)

    def proceed(self, Request req):
        """Send the request on (after the access phase, if there is one)."""
        cdef RouteRuntime rt = req.rt
        cdef UpstreamConnection conn
        if req.pool is None:
            # A plugin may have chosen the target already (ai-proxy does).
            if rt.upstream is not None:
                if not self.pick_target(req):
                    self.respond_local(503, MSG_NO_PEER, False)
                    return
            else:
                req.pool = rt.pool
        if req.pool is None:
            self.respond_local(503, MSG_NO_PEER, False)
            return
        if req.expect_continue and not req.complete and not req.continue_sent:
            # RFC 9110 10.1.1: the proxy answers the expectation itself and
            # does not forward it.
            req.continue_sent = True
            self.wbuf.add(b"HTTP/1.1 100 Continue\r\n\r\n")
        conn = req.pool.acquire()
        if conn is not None:
            self.send_to_upstream(req, conn)
        else:
            self.gw.loop.create_task(self.connect_upstream(req))

    cdef bint pick_target(self, Request req):
        cdef UpstreamRuntime up = req.rt.upstream
        cdef Py_ssize_t index = up.pick(self, req)
        if index < 0:
            return False
        req.target = index
        req.balanced = True
        req.pool = <UpstreamPool>up.pools[index]
        return True

    async def connect_upstream(self, Request req):
        cdef RouteRuntime rt = req.rt
        cdef UpstreamConnection conn
        cdef bint timed_out
        while True:
            timed_out = False
            conn = None
            try:
                conn = await req.pool.connect(self.gw.loop, rt.connect_timeout_ms)
            except TimeoutError_:
                timed_out = True
            except OSError:
                pass
            if self.closing or self.active is not req:
                if conn is not None:
                    req.pool.release(conn)
                settle(req, OUTCOME_RELEASE, 0, 0)
                return
            if conn is not None:
                break
            self.gw.connect_failures += 1
            settle(req, OUTCOME_TIMEOUT if timed_out else OUTCOME_TCP_FAILURE, 0, 0)
            req.retries_used += 1
            if req.retries_used > rt.retries:
                if timed_out:
                    self.upstream_failed(None, 504, MSG_UPSTREAM_TIMEOUT)
                else:
                    self.upstream_failed(None, 502, MSG_BAD_UPSTREAM)
                self.flush()
                return
            if req.balanced:
                # Nothing was sent: any method may move to the next target.
                if not self.pick_target(req):
                    self.upstream_failed(None, 503, MSG_NO_PEER)
                    self.flush()
                    return
                conn = req.pool.acquire()
                if conn is not None:
                    break
        self.send_to_upstream(req, conn)
        conn.flush()
        self.flush()

    cdef void retry(self, Request req):
        # Send the request again, on another target when balanced. The body
        # was kept (replayable) for this.
        cdef UpstreamConnection conn
        req.retries_used += 1
        req.body_pending = list(req.body_sent) if req.body_sent is not None else []
        req.body_pending_bytes = 0
        if req.balanced and not self.pick_target(req):
            self.upstream_failed(None, 503, MSG_NO_PEER)
            return
        conn = req.pool.acquire()
        if conn is not None:
            self.send_to_upstream(req, conn)
            conn.flush()
        else:
            self.gw.loop.create_task(self.connect_upstream(req))

    cdef void send_to_upstream(self, Request req, UpstreamConnection conn):
        cdef RouteRuntime rt = req.rt
        cdef WriteBuffer b = conn.wbuf
        cdef list headers = req.headers
        cdef Py_ssize_t i, n
        cdef bytes host
        cdef double t
        self.upstream = conn
        req.attempts += 1
        conn.attach(self, req)
        b.add(req.method)
        b.add(b" ")
        b.add(req.upstream_url)
        b.add(b" HTTP/1.1\r\nHost: ")
        if req.host_override is not None:
            b.add(req.host_override)
        elif rt.preserve_host and req.host is not None:
            b.add(req.host)
        else:
            b.add(rt.upstream_host_header)
        b.add(b"\r\n")
        n = len(headers)
        i = 0
        while i < n:
            b.add_header(<bytes>headers[i], <bytes>headers[i + 1])
            i += 2
        if req.chunked:
            b.add(b"Transfer-Encoding: chunked\r\n")
        if req.upgrade is not None:
            b.add(b"Connection: upgrade\r\nUpgrade: ")
            b.add(req.upgrade)
            b.add(b"\r\n")
        b.add(b"X-Forwarded-For: ")
        if req.xff is not None:
            b.add(req.xff)
            b.add(b", ")
        b.add(self.peer_ip)
        b.add(b"\r\nX-Forwarded-Proto: ")
        b.add(self.scheme)
        if req.host is not None:
            b.add(b"\r\nX-Forwarded-Host: ")
            b.add(strip_port(req.host))
        b.add(b"\r\nX-Forwarded-Port: ")
        b.add(self.local_port)
        b.add(b"\r\nX-Real-IP: ")
        b.add(self.peer_ip)
        b.add(b"\r\nVia: ")
        b.add(self.gw.via)
        b.add(b"\r\n\r\n")
        if req.body_pending:
            for piece in req.body_pending:
                conn.write_body(<bytes>piece, req.chunked)
            req.body_pending = []
            req.body_pending_bytes = 0
            if self.reading_paused and not self.pending:
                self.reading_paused = False
                self.transport.resume_reading()
        if req.complete:
            conn.write_body_end(req.chunked)
        t = now_ms()
        req.t_upstream_sent = t
        conn.read_deadline = t + rt.read_timeout_ms if rt.read_timeout_ms > 0 else 0
        self.gw.busy_upstreams.add(conn)

    def wait_for_upgrade(self, bytes rest):
        """After an upgrade request's head: what follows is held (not parsed,
        not forwarded) until the upstream accepts the upgrade with a 101."""
        if self.closing:
            return
        if self.current is not None or self.active is None \
                or (<Request>self.active).upgrade is None:
            self.error_status = 400
            self.refuse()
            return
        self.upgrade_wait = True
        self.held = []
        self.held_bytes = 0
        self.hold(rest)

    cdef void hold(self, bytes data):
        if not PyBytes_GET_SIZE(data):
            return
        self.held.append(data)
        self.held_bytes += PyBytes_GET_SIZE(data)
        if self.held_bytes > UPGRADE_HOLD_LIMIT and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    cdef list take_held(self):
        # The upstream accepted the upgrade: held bytes go into the tunnel.
        cdef list held = self.held
        self.held = None
        self.held_bytes = 0
        self.upgrade_wait = False
        self.tunnel = True
        self.head_started = 0
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()
        return held if held is not None else []

    cdef void respond_local(self, int status, bytes message, bint close):
        cdef Request req = self.active
        cdef bytes body = error_body(message)
        self.gw.responses_local += 1
        if req is not None and req.ctx is not None \
                and (req.filters & (FILTER_HEADER | FILTER_BODY)) and not self.closing:
            # On a route with response plugins, the gateway's own errors go
            # through them too (ai-proxy renders them in the client's API).
            self.gw.plugin_runner.respond_error(self, req, status, body, close)
            return
        self.write_response_head(status, REASONS.get(status, b"Unknown"), JSON_CONTENT_TYPE,
                                 PyBytes_GET_SIZE(body), close)
        if req is None or req.method != b"HEAD":
            self.wbuf.add(body)
        self.response_started = True
        if req is not None:
            req.discard_body = True
            req.bytes_out += PyBytes_GET_SIZE(body)
        self.response_finished(close)

    cdef void write_response_head(self, int status, bytes reason, list headers,
                                  Py_ssize_t content_length, bint close):
        cdef Request req = self.active
        cdef WriteBuffer b = self.wbuf
        cdef Py_ssize_t i, n = len(headers)
        cdef Py_ssize_t start = b.length
        b.add(b"HTTP/1.1 ")
        b.add_int(status)
        b.add(b" ")
        b.add(reason)
        b.add(b"\r\n")
        i = 0
        while i < n:
            b.add_header(<bytes>headers[i], <bytes>headers[i + 1])
            i += 2
        if req is not None and req.extra_head is not None:
            # Header lines of fast decisions: where the runner's header
            # filters would have appended them.
            b.add(req.extra_head)
        if content_length >= 0:
            b.add(b"Content-Length: ")
            b.add_int(content_length)
            b.add(b"\r\n")
        if req is not None and req.request_id is not None:
            b.add(b"X-Request-Id: ")
            b.add(req.request_id)
            b.add(b"\r\n")
        if close or (req is not None and not req.keep_alive):
            b.add(b"Connection: close\r\n")
        b.add(b"\r\n")
        if req is not None:
            req.status = status
            req.bytes_out += b.length - start

    def refuse(self):
        """Answer a request that cannot be parsed or is not allowed, then
        close: after a framing error nothing else on the connection can be
        trusted (PRODUCT.md section 5).

        Requests parsed whole before the bad one are still proxied and
        answered in order, as nginx does; the error answer follows them.
        Nothing after the bad request is read."""
        cdef Request bad = self.current
        self.current = None
        self.head_started = 0
        if bad is not self.active:
            # Behind requests still in progress (a pipelined request, or bytes
            # between two): drop it, stop reading, and answer the error once
            # those before it are answered.
            if bad is not None and self.pending and self.pending[-1] is bad:
                self.pending.pop()
            self.refusing = True
            if not self.reading_paused:
                self.reading_paused = True
                self.transport.pause_reading()
            if self.active is None:
                self.send_refusal()
            return
        if self.upstream is not None:
            up = self.upstream
            self.upstream = None
            up.client = None
            up.close()
        self.pending.clear()
        if self.response_started and not self.response_done:
            self.abort()
            return
        self.active = bad
        self.send_refusal()

    cdef void send_refusal(self):
        cdef int status = self.error_status or 400
        cdef bytes message
        if status == 431:
            message = MSG_HEADERS_TOO_LARGE
        elif status == 413:
            message = MSG_TOO_LARGE
        elif status == 417:
            message = MSG_EXPECTATION
        elif status == 408:
            message = MSG_TIMEOUT
        elif status == 405:
            message = MSG_NOT_ALLOWED
        elif status == 500:
            message = MSG_UNEXPECTED
        else:
            message = MSG_BAD_REQUEST
        self.refusing = False
        self.respond_local(status, message, True)

    cdef void response_finished(self, bint close):
        cdef Request req = self.active
        cdef MetricsCell cell
        cdef double now, gateway_ms, upstream_ms
        self.response_done = True
        if req is not None:
            cell = req.rt.metrics if req.rt is not None else self.gw.unmatched_metrics
            if cell is not None:
                now = now_ms()
                if req.t_upstream_sent > 0:
                    gateway_ms = req.t_upstream_sent - req.t_start
                    upstream_ms = req.t_first_byte - req.t_upstream_sent \
                        if req.t_first_byte > 0 else -1
                else:
                    gateway_ms = now - req.t_start
                    upstream_ms = -1
                cell.record(req.status, now - req.t_start, upstream_ms, gateway_ms,
                            req.header_bytes + req.body_received, req.bytes_out,
                            req.consumer_key)
            if req.ctx is not None:
                if req.filters & FILTER_LOG:
                    # After this callback, so the response is written first;
                    # the log phase lets go of the context when it is done.
                    self.gw.loop.call_soon(self.gw.plugin_runner.log, req)
                else:
                    # PERF: the context refers back to the request (its body
                    # reader); dropping it here frees both by reference
                    # counting instead of leaving a cycle to the collector.
                    req.ctx = None
        if close:
            self.closing = True
            self.flush()
            self.transport.close()
            return
        if req is None or req.complete:
            self.finish_exchange()
        else:
            # Answered before the whole body arrived: read and drop the rest,
            # then carry on with the next request.
            req.discard_body = True

    cdef void finish_exchange(self):
        cdef Request req = self.active
        cdef Request nxt
        self.upstream = None
        if req is None or not req.keep_alive or self.gw.draining or self.closing:
            self.closing = True
            self.flush()
            self.transport.close()
            return
        self.active = None
        self.response_started = False
        self.response_done = False
        if self.pending:
            nxt = <Request>self.pending.popleft()
            self.active = nxt
            if not self.pending and self.reading_paused and not self.refusing:
                self.reading_paused = False
                self.transport.resume_reading()
            if nxt.method is not None:
                # Its head is complete; route it now.
                self.start_request(nxt)
        elif self.refusing:
            # Every request before the bad one is answered: now its error.
            self.send_refusal()
        else:
            self.idle_since = now_ms()
            if self.reading_paused:
                self.reading_paused = False
                self.transport.resume_reading()

    cdef void flush(self):
        if self.wbuf.length and self.transport is not None:
            self.write(self.wbuf.take())

    cdef void abort(self):
        # The response cannot be completed: send what we have and close, so
        # the client sees a truncated message, never a complete one.
        self.closing = True
        self.flush()
        if self.transport is not None:
            self.transport.close()

    cdef void upstream_failed(self, UpstreamConnection conn, int status, bytes message):
        if self.active is not None:
            settle(self.active, OUTCOME_TIMEOUT if status == 504 else OUTCOME_TCP_FAILURE, 0, 0)
        if conn is not None:
            conn.client = None
            conn.close()
        self.upstream = None
        if self.closing:
            return
        if self.response_started:
            self.abort_with_filters(self.active, conn)
            return
        self.respond_local(status, message, self.active is not None and not self.active.complete)
        self.flush()

    cdef void abort_with_filters(self, Request req, UpstreamConnection conn):
        # The response is on its way and cannot be completed. Body filters
        # (ai-proxy) get to end it with an error event of their own first.
        cdef bytes tail
        if req is not None and req.ctx is not None and (req.filters & FILTER_BODY):
            tail = self.gw.plugin_runner.body_abort(req)
            if tail:
                if conn is not None and conn.rechunk:
                    self.wbuf.add_chunk(tail)
                else:
                    self.wbuf.add(tail)
        self.abort()

    cdef void check_timeouts(self, double now):
        if self.closing:
            return
        if self.head_started > 0 and now - self.head_started > self.gw.limits.client_header_timeout_ms:
            if self.active is self.current:
                self.error_status = 408
                self.refuse()
                self.flush()
            else:
                self.abort()
        elif self.current is not None and self.current.t_last_body > 0 \
                and now - self.current.t_last_body > self.gw.limits.client_body_timeout_ms \
                and not (self.upstream is not None and self.upstream.write_deadline > 0):
            # The body stalled on the client's side (not held back by a slow
            # upstream, whose write timeout applies instead).
            if self.current is self.active and not self.response_started:
                self.error_status = 408
                self.refuse()
                self.flush()
            else:
                self.abort()
        elif self.idle_since > 0 and self.active is None and self.current is None and \
                now - self.idle_since > self.gw.limits.keepalive_timeout_ms:
            self.closing = True
            self.transport.close()


# ---------------------------------------------------------------------------

cdef class UpstreamConnection:
    """One connection to an upstream target; carries one exchange at a time."""

    def __init__(self, UpstreamPool pool):
        self.pool = pool
        self.parser = HttpResponseParser(self)
        self.feed = self.parser.feed_data
        self.wbuf = WriteBuffer()
        self.keep_alive = True

    def connection_made(self, transport):
        self.transport = transport
        self.write = transport.write

    def data_received(self, bytes data):
        cdef ClientConnection client = self.client
        cdef Py_ssize_t offset
        if client is None:
            # Bytes on an idle connection: the upstream is not speaking HTTP
            # as we expect; it cannot be reused.
            self.close()
            return
        self.got_bytes = True
        if self.tunnel:
            client.wbuf.add(data)
            client.flush()
            return
        if self.req is not None and self.req.rt is not None:
            self.read_deadline = now_ms() + self.req.rt.read_timeout_ms
        try:
            self.feed(data)
        except HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args else len(data)
            self.begin_tunnel(client, data[offset:])
        except HttpParserError:
            if self.answer_done:
                # Bytes past the end of the answer: the connection's framing
                # cannot be trusted any more (they never reach a client).
                self.trailing = True
            else:
                client.upstream_failed(self, 502, MSG_BAD_UPSTREAM)
        if self.answer_done:
            self.finish_answer()
        client.flush()
        if client.upstream is not None and client.upstream.wbuf.length:
            # A pipelined request started when this answer ended.
            client.upstream.flush()

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        cdef ClientConnection client = self.client
        cdef Request req = self.req
        self.closed = True
        self.pool.forget(self)
        if client is None:
            return
        client.gw.busy_upstreams.discard(self)
        if self.tunnel:
            client.abort()
            return
        if self.head_sent and self.until_close:
            # A body delimited by the end of the connection is complete now.
            self.end_body()
            self.keep_alive = False
            self.exchange_done()
            client.flush()
            return
        if self.head_sent:
            self.client = None
            client.upstream = None
            client.abort_with_filters(req, self)
            return
        if req is not None and req.replayable and req.method in IDEMPOTENT \
                and req.retries_used < req.rt.retries and not client.closing:
            # The request may have reached the application, so only an
            # idempotent one goes again (on the next target when balanced).
            self.client = None
            client.upstream = None
            settle(req, OUTCOME_TCP_FAILURE, 0, 0)
            client.retry(req)
            client.flush()
            return
        client.upstream_failed(self, 502, MSG_BAD_UPSTREAM)

    def pause_writing(self):
        if self.client is not None and self.client.transport is not None:
            self.client.transport.pause_reading()
        if self.req is not None and self.req.rt is not None:
            self.write_deadline = now_ms() + self.req.rt.write_timeout_ms

    def resume_writing(self):
        self.write_deadline = 0
        if self.client is not None and self.client.transport is not None \
                and not self.client.reading_paused:
            self.client.transport.resume_reading()

    # -- httptools callbacks ------------------------------------------------

    def on_message_begin(self):
        if self.answer_done:
            self.trailing = True
            raise ValueError("bytes past the end of the answer")
        self.status = 0
        self.reason = None
        self.resp_headers = []
        self.resp_content_length = -1
        self.resp_chunked = False
        self.resp_upgrade = None
        self.rechunk = False
        self.until_close = False
        self.interim = False

    def on_status(self, bytes reason):
        self.reason = reason if self.reason is None else self.reason + reason

    def on_header(self, bytes name, bytes value):
        cdef int kind = classify_header(name)
        if self.drop_names is not None and name.lower() in self.drop_names:
            return
        if kind == H_CONTENT_LENGTH:
            self.resp_content_length = parse_length(value)
        elif kind == H_TRANSFER_ENCODING:
            self.resp_chunked = value.strip().lower().endswith(b"chunked")
            return
        elif kind == H_CONNECTION or kind == H_HOP:
            return
        elif kind == H_UPGRADE:
            self.resp_upgrade = value
            return
        self.resp_headers.append(name)
        self.resp_headers.append(value)

    def on_headers_complete(self):
        cdef ClientConnection client = self.client
        cdef Request req = self.req
        cdef WriteBuffer b
        cdef list headers = self.resp_headers
        cdef Py_ssize_t i, n, start
        cdef double t, upstream_ms, proxy_ms
        cdef int status = self.parser.get_status_code()
        cdef bint close, length_known
        cdef bytes reason = self.reason
        self.status = status
        if 100 <= status < 200 and status != 101:
            # Interim answers (100 Continue, 103) are the proxy's own business.
            self.interim = True
            return
        if client is None:
            return
        if status == 101 and not upgrade_accepted(req.upgrade, self.resp_upgrade):
            # A switch the request did not ask for (or to another protocol)
            # would turn the client's connection into a raw tunnel: 502.
            raise ValueError("unrequested 101")
        t = now_ms()
        req.t_first_byte = t
        settle(req, OUTCOME_RESPONSE, status, t - req.t_upstream_sent)
        self.body_allowed = not (req.method == b"HEAD" or status == 204 or status == 304
                                 or status == 101)
        length_known = self.resp_content_length >= 0
        if req.ctx is not None and (req.filters & FILTER_HEADER):
            # Slow path: plugins may change the status and the headers.
            new_status = client.gw.plugin_runner.header_filter(req, status, headers)
            if new_status != status:
                status = new_status
                reason = REASONS.get(status, b"Unknown")
            if length_known:
                length_known = has_header(headers, b"content-length")
        if self.body_allowed and not self.resp_chunked and self.resp_content_length < 0:
            # The body runs to the end of the upstream connection.
            self.until_close = True
            self.keep_alive = False
        close = not req.keep_alive or client.gw.draining or client.closing
        if self.body_allowed and not length_known:
            # Re-frame as chunked for HTTP/1.1 clients so their connection can
            # stay open; HTTP/1.0 clients read to the close.
            if req.http_minor == 1:
                self.rechunk = True
            else:
                close = True
        b = client.wbuf
        start = b.length
        b.add(b"HTTP/1.1 ")
        b.add_int(status)
        b.add(b" ")
        if reason is not None:
            b.add(reason)
        b.add(b"\r\n")
        n = len(headers)
        i = 0
        while i < n:
            b.add_header(<bytes>headers[i], <bytes>headers[i + 1])
            i += 2
        if self.rechunk or (self.resp_chunked and req.method == b"HEAD"):
            b.add(b"Transfer-Encoding: chunked\r\n")
        if req.extra_head is not None:
            b.add(req.extra_head)
        upstream_ms = t - req.t_upstream_sent
        proxy_ms = req.t_upstream_sent - req.t_start
        b.add(b"Via: ")
        b.add(client.gw.via)
        b.add(b"\r\nX-Fastgw-Upstream-Latency: ")
        b.add_int(<long long>upstream_ms)
        b.add(b"\r\nX-Fastgw-Proxy-Latency: ")
        b.add_int(<long long>proxy_ms)
        if status == 101:
            b.add(b"\r\nConnection: upgrade")
            if self.resp_upgrade is not None:
                b.add(b"\r\nUpgrade: ")
                b.add(self.resp_upgrade)
        elif close:
            b.add(b"\r\nConnection: close")
            client.closing = True
            req.keep_alive = False
        b.add(b"\r\n\r\n")
        req.status = status
        req.bytes_out += b.length - start
        client.response_started = True
        self.head_sent = True
        if not self.body_allowed and status != 101:
            # No body follows (HEAD, 204, 304): the answer ends here, whatever
            # the upstream sends next.
            self.keep_alive = self.keep_alive and self.parser.should_keep_alive()
            self.answer_done = True

    def on_body(self, bytes chunk):
        cdef ClientConnection client = self.client
        cdef Request req = self.req
        if self.answer_done:
            # A body on a HEAD, 204 or 304 answer (llhttp does not know a
            # HEAD answer has none).
            self.trailing = True
            raise ValueError("body on an answer that has none")
        if client is None or self.interim:
            return
        if req.ctx is not None and (req.filters & FILTER_BODY):
            chunk = client.gw.plugin_runner.body_filter(req, chunk, False)
            if not chunk:
                return
        req.bytes_out += PyBytes_GET_SIZE(chunk)
        if self.rechunk:
            client.wbuf.add_chunk(chunk)
        else:
            client.wbuf.add(chunk)

    cdef void end_body(self):
        # The upstream body is complete: the last word of body filters, then
        # the chunked terminator.
        cdef ClientConnection client = self.client
        cdef Request req = self.req
        cdef bytes tail
        if req.ctx is not None and (req.filters & FILTER_BODY):
            tail = client.gw.plugin_runner.body_filter(req, b"", True)
            if tail:
                req.bytes_out += PyBytes_GET_SIZE(tail)
                if self.rechunk:
                    client.wbuf.add_chunk(tail)
                else:
                    client.wbuf.add(tail)
        if self.rechunk:
            client.wbuf.add(b"0\r\n\r\n")

    def on_message_complete(self):
        if self.interim:
            self.interim = False
            return
        if self.client is None or not self.head_sent or self.answer_done:
            return
        if self.status == 101:
            # llhttp ends the 101 message before raising HttpParserUpgrade;
            # begin_tunnel takes the connection over from here.
            return
        self.end_body()
        self.keep_alive = self.keep_alive and self.parser.should_keep_alive()
        self.answer_done = True

    cdef void finish_answer(self):
        # Called once the bytes at hand are parsed, never from inside the
        # parser: releasing the connection starts the client's next request,
        # which may take this very connection from the pool, and any byte
        # still in the parser would then be read as that request's answer.
        cdef Request req = self.req
        self.answer_done = False
        if self.trailing:
            self.trailing = False
            self.keep_alive = False
        elif req is not None and req.method == b"HEAD":
            # llhttp still expects the body the head announced.
            self.parser = HttpResponseParser(self)
            self.feed = self.parser.feed_data
        self.exchange_done()

    # -- exchange -----------------------------------------------------------

    cdef void attach(self, ClientConnection client, Request req):
        self.client = client
        self.req = req
        self.drop_names = req.rt.drop_response_headers if req.rt is not None else None
        self.got_bytes = False
        self.head_sent = False
        self.keep_alive = True
        self.until_close = False
        self.rechunk = False
        self.write_deadline = 0

    def exchange_done(self):
        cdef ClientConnection client = self.client
        cdef Request req = self.req
        cdef bint reusable = self.keep_alive and req is not None and req.complete \
            and not self.closed
        self.client = None
        self.req = None
        self.head_sent = False
        self.read_deadline = 0
        if client is not None:
            client.gw.busy_upstreams.discard(self)
            client.upstream = None
        if reusable:
            self.reused = False
            self.pool.release(self)
        else:
            self.close()
        if client is not None:
            client.response_finished(False)

    def begin_tunnel(self, ClientConnection client, bytes rest):
        # 101 Switching Protocols (checked against the request in
        # on_headers_complete): from now on both sides are raw bytes.
        self.tunnel = True
        self.read_deadline = 0
        client.gw.busy_upstreams.discard(self)
        if rest:
            client.wbuf.add(rest)
        for piece in client.take_held():
            self.wbuf.add(<bytes>piece)
        self.flush()

    cdef void write_body(self, bytes chunk, bint chunked):
        if self.tunnel:
            self.wbuf.add(chunk)
        elif chunked:
            self.wbuf.add_chunk(chunk)
        else:
            self.wbuf.add(chunk)

    cdef void write_body_end(self, bint chunked):
        if chunked and not self.tunnel:
            self.wbuf.add(b"0\r\n\r\n")

    cdef void flush(self):
        if self.wbuf.length and self.transport is not None and not self.closed:
            self.write(self.wbuf.take())

    cdef void close(self):
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        self.pool.forget(self)
