# The compiled proxy: client side, upstream side, keep-alive pools and the
# per-worker state they share. Fields and C-level methods are declared here so
# other compiled modules can cimport them (uvloop's habit).

from fastgw._core.balancer cimport Balancer
from fastgw._core.buffer cimport WriteBuffer
from fastgw._core.metrics cimport MetricsCell
from fastgw._core.router cimport Router


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


cdef class UpstreamRuntime:
    # One upstream entity (per TLS setting of the services using it): the
    # balancer over its targets, their pools, hashing and passive health.
    cdef readonly str name
    cdef readonly object spec           # model.Upstream
    cdef readonly tuple targets         # model.Target, in balancer order
    cdef readonly list pools            # UpstreamPool per target
    cdef Balancer balancer
    cdef int hash_on
    cdef int hash_fallback
    cdef bytes hash_on_name             # header (lower case), cookie or query arg name
    cdef bytes hash_fallback_name
    cdef list health                    # per target: "HEALTHY", "UNHEALTHY" or "DNS_ERROR"
    cdef readonly bint healthchecks_on
    cdef bint passive_on
    cdef bytes status_kind              # 600 bytes: 1 healthy status, 2 unhealthy status
    cdef int ok_threshold
    cdef int http_fail_threshold
    cdef int tcp_fail_threshold
    cdef int timeout_threshold
    cdef list counters                  # per target: [successes, http, tcp, timeouts]
    cdef readonly object on_change      # callable(name, index, health) or None

    cdef bytes request_key(self, ClientConnection client, Request req, int kind, bytes name)
    cdef Py_ssize_t pick(self, ClientConnection client, Request req) except? -2
    cdef void passive(self, Py_ssize_t index, int outcome, int status)
    cdef void mark(self, Py_ssize_t index, str health, str reason)


cdef class FastAnswer:
    cdef readonly int status
    cdef readonly list headers          # [name, value, ...] bytes
    cdef readonly bytes body
    cdef public bytes extra_head        # response header lines of decisions before it


cdef class RouteRuntime:
    # What a matched route needs at request time, built once per config.
    cdef readonly object route          # model.Route
    cdef readonly object service        # model.Service or None
    cdef readonly bytes route_name
    cdef readonly bytes service_name
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


cdef class UpstreamPool:
    cdef readonly str host
    cdef readonly int port
    cdef readonly object ssl            # ssl.SSLContext or None
    cdef readonly str server_hostname
    cdef list idle                      # LIFO stack of idle UpstreamConnection
    cdef readonly Py_ssize_t max_idle

    cdef UpstreamConnection acquire(self)
    cdef void release(self, UpstreamConnection conn)
    cdef void forget(self, UpstreamConnection conn)


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


cdef class Gateway:
    cdef readonly object loop
    cdef readonly object router
    cdef Router compiled_router                 # the same, for C-level calls (or None)
    cdef readonly object match_header_names   # frozenset or None
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


cdef class ClientConnection:
    cdef Gateway gw
    cdef object transport
    cdef object parser
    cdef object feed                    # parser.feed_data, bound once
    cdef object write                   # transport.write, bound once
    cdef Request current                # being parsed
    cdef Request active                 # being proxied (the oldest unanswered)
    cdef object pending                 # deque of parsed requests waiting their turn
    cdef UpstreamConnection upstream
    cdef WriteBuffer wbuf
    cdef bytes peer_ip
    cdef bytes local_port
    cdef bytes scheme
    cdef double idle_since              # ms; 0 while a request is in progress
    cdef double head_started            # ms; 0 when not reading a head
    cdef bint closing
    cdef bint reading_paused
    cdef bint writing_paused
    cdef bint response_started
    cdef bint response_done
    cdef bint tunnel
    cdef bint upgrade_wait              # an upgrade request waits for the upstream's 101
    cdef list held                      # bytes read after that request's head
    cdef Py_ssize_t held_bytes
    cdef bint refusing                  # a bad request waits for those before it
    cdef int error_status               # set by a callback before it raises

    cdef bint pick_target(self, Request req)
    cdef void retry(self, Request req)
    cdef void start_request(self, Request req)
    cdef void route_request(self, Request req)
    cdef void send_to_upstream(self, Request req, UpstreamConnection conn)
    cdef void respond_local(self, int status, bytes message, bint close)
    cdef void answer_now(self, Request req, int status, list headers, bytes body, bint close)
    cdef void write_response_head(self, int status, bytes reason, list headers,
                                  Py_ssize_t content_length, bint close)
    cdef void response_finished(self, bint close)
    cdef void finish_exchange(self)
    cdef void flush(self)
    cdef void abort(self)
    cdef void upstream_failed(self, UpstreamConnection conn, int status, bytes message)
    cdef void abort_with_filters(self, Request req, UpstreamConnection conn)
    cdef void check_timeouts(self, double now)
    cdef void hold(self, bytes data)
    cdef list take_held(self)
    cdef void send_refusal(self)


cdef class UpstreamConnection:
    cdef UpstreamPool pool
    cdef object transport
    cdef object parser
    cdef object feed                    # parser.feed_data, bound once
    cdef object write                   # transport.write, bound once
    cdef ClientConnection client
    cdef Request req
    cdef WriteBuffer wbuf
    cdef bytes reason
    cdef bytes resp_upgrade
    cdef frozenset drop_names           # upstream headers a fast access replaces
    cdef list resp_headers
    cdef long long resp_content_length
    cdef int status
    cdef bint resp_chunked
    cdef bint rechunk
    cdef bint until_close
    cdef bint head_sent                 # response head given to the client
    cdef bint body_allowed
    cdef bint interim
    cdef bint keep_alive
    cdef bint reused
    cdef bint got_bytes
    cdef bint closed
    cdef bint tunnel
    cdef bint answer_done               # the answer is whole; nothing may follow in this read
    cdef bint trailing                  # bytes followed it: the connection is not reused
    cdef double idle_since
    cdef double read_deadline
    cdef double write_deadline

    cdef void attach(self, ClientConnection client, Request req)
    cdef void write_body(self, bytes chunk, bint chunked)
    cdef void write_body_end(self, bint chunked)
    cdef void end_body(self)
    cdef void finish_answer(self)
    cdef void flush(self)
    cdef void close(self)
