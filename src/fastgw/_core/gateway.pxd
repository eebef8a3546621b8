# Per-worker state at request time (see gateway.pyx). Fields and C-level
# methods are declared here so the connection modules can cimport them.

from fastgw._core.client_connection cimport ClientConnection
from fastgw._core.metrics cimport MetricsCell
from fastgw._core.router cimport Router
from fastgw._core.upstream_connection cimport UpstreamPool
from fastgw._core.upstream_runtime cimport UpstreamRuntime


# Which response phases a request's plugins have (Request.filters); visible to
# Python too (the plugin chains compute the bits).
cpdef enum RequestFilter:
    FILTER_HEADER = 1
    FILTER_BODY = 2
    FILTER_LOG = 4


# Why an attempt failed before any of its answer reached the client, as a
# plugin's failover handler is told (see Request.failover_statuses).
cpdef enum UpstreamFailure:
    FAILURE_ERROR = 1           # refused, reset or closed before the answer was read
    FAILURE_TIMEOUT = 2         # connect, write or read timeout
    FAILURE_INVALID_HEADER = 3  # the answer's head is not HTTP
    FAILURE_HTTP = 4            # a status the plugin fails over on


cdef class Limits:
    cdef readonly Py_ssize_t max_header_bytes
    cdef readonly long long max_body_bytes
    cdef readonly double client_header_timeout_ms
    cdef readonly double client_body_timeout_ms
    cdef readonly double keepalive_timeout_ms
    cdef readonly Py_ssize_t max_connections
    cdef readonly Py_ssize_t upstream_pool_size
    cdef readonly double upstream_keepalive_timeout_ms
    cdef readonly long long max_memory_bytes     # 0: no watermark
    cdef readonly Py_ssize_t max_response_buffer_bytes   # a buffered answer's bound


cdef class FastAnswer:
    cdef readonly int status
    cdef readonly list headers          # [name, value, ...] bytes
    cdef readonly bytes body
    cdef public bytes extra_head        # response header lines of decisions before it


cdef class RouteRuntime:
    # What a matched route needs at request time, built once per config.
    cdef readonly object route          # model.Route
    cdef readonly object service        # model.Service or None
    cdef readonly bint preserve_host
    cdef readonly bytes upstream_host_header   # "host[:port]" sent as Host when not preserving
    cdef readonly UpstreamPool pool
    cdef readonly UpstreamRuntime upstream    # balanced over targets, or None
    cdef readonly int retries
    cdef readonly double connect_timeout_ms
    cdef readonly double write_timeout_ms
    cdef readonly double read_timeout_ms
    cdef readonly object plugins        # None on the fast path; a plugin chain otherwise
    cdef readonly object fast_access    # callable deciding before plugins (cache hits, limits)
    cdef readonly frozenset drop_response_headers   # lower-case names the fast access replaces
    cdef readonly MetricsCell metrics    # None unless prometheus covers the route
    cdef readonly bint https_only
    cdef readonly int https_redirect_status


cdef class Request:
    # Public fields are read and written by the plugin runner (slow path).
    cdef public bytes method
    cdef public bytes url
    cdef public bytes host
    cdef public bytes host_override       # Host chosen by a plugin
    cdef public list headers              # [name, value, name, value, ...] forwarded as is
    cdef bytes xff
    cdef public bytes request_id
    cdef bytes upgrade
    cdef dict match_headers
    cdef list connection_tokens
    cdef public long long content_length
    cdef public long long body_received
    cdef public Py_ssize_t header_bytes
    cdef public int http_minor
    cdef public bint chunked
    cdef bint keep_alive
    cdef bint expect_continue
    cdef bint continue_sent
    cdef public bint complete             # whole request read from the client
    cdef bint discard_body                # answered locally: drop what is left of the body
    cdef bint replayable                  # body small enough to resend on a retry
    cdef public list body_pending         # body pieces not yet sent upstream
    cdef public Py_ssize_t body_pending_bytes
    cdef list body_sent                   # body pieces kept for a retry (while replayable)
    cdef public double t_start            # ms, first byte of the head
    cdef public double t_upstream_sent    # ms, head written upstream
    cdef public double t_first_byte       # ms, upstream response head received
    cdef double t_last_body               # ms, last body bytes from the client (0: none due)
    cdef public RouteRuntime rt
    cdef public UpstreamPool pool         # where this request goes
    cdef public bytes upstream_url
    cdef public int attempts
    cdef public int retries_used
    cdef public Py_ssize_t target        # balancer index being used, -1 when none
    cdef bint balanced
    cdef public int status                # status sent to the client
    cdef public long long bytes_out
    cdef public object ctx                # plugin RequestContext, or None
    cdef public int filters               # FILTER_* bits: which response phases to call
    cdef public object consumer_key       # consumer label for metrics, or None
    cdef public object body_waiter        # future completed when the body is whole
    cdef public bytes extra_head          # header lines added to the response head
    cdef public bint buffer_response      # hold the answer whole before its head goes out
    # A plugin that fails over to another target itself (ai-proxy-advanced):
    # 600 bytes, non-zero at the statuses it fails over on; None: no plugin
    # failover. Failures before the client's head went out are handed to it.
    cdef public bytes failover_statuses
    # A plugin's timeouts for this request (ms), instead of the route's when > 0.
    cdef public double connect_timeout_ms
    cdef public double read_timeout_ms
    cdef public double write_timeout_ms
    # Set by a body filter when a streamed answer's upstream ends early
    # (ai-proxy-advanced's stream_continuation): an async callable that takes
    # ``write`` and writes the rest of the answer itself; the client's
    # response stays open until it returns.
    cdef public object continuation

    cdef void settle(self, int outcome, int status, double latency_ms)


cdef inline double connect_timeout(Request req):
    return req.connect_timeout_ms if req.connect_timeout_ms > 0 else req.rt.connect_timeout_ms


cdef inline double read_timeout(Request req):
    return req.read_timeout_ms if req.read_timeout_ms > 0 else req.rt.read_timeout_ms


cdef inline double write_timeout(Request req):
    return req.write_timeout_ms if req.write_timeout_ms > 0 else req.rt.write_timeout_ms


cdef class Gateway:
    cdef readonly object loop
    cdef readonly object router
    cdef Router compiled_router                 # the same, for C-level calls (or None)
    cdef readonly object match_header_names   # frozenset or None
    cdef readonly bint route_on_sni             # some route matches on the TLS server name
    cdef readonly Limits limits
    cdef readonly dict pools
    cdef readonly set clients
    cdef readonly set busy_upstreams
    cdef readonly bytes via
    cdef readonly long long requests_total
    cdef readonly long long responses_local
    cdef readonly long long connect_failures
    cdef readonly bint draining
    cdef readonly bint shedding                 # over the memory watermark: new requests get 503
    cdef bytes request_id_prefix
    cdef unsigned long long request_id_counter
    cdef object sweeper
    cdef object drain_waiter
    cdef readonly object plugin_runner
    cdef public MetricsCell unmatched_metrics   # 404s, when prometheus is global
    cdef readonly dict metrics_cells            # (service, route) -> MetricsCell
    cdef readonly dict upstreams                # (name, tls key) -> UpstreamRuntime
    cdef public object metrics_export           # which families the exporter shows

    cdef bytes next_request_id(self)
    cdef void connection_closed(self, ClientConnection conn)
