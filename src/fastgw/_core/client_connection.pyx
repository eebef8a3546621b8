# cython: language_level=3
"""The client side of the proxy: one downstream connection. httptools calls
back into it; it routes each request, runs fast decisions, hands a request to
the plugin runner only when a plugin needs it, writes the head sent upstream
into a per-connection buffer and answers requests strictly in order.

A request on a route without Python plugins runs only compiled code, here, in
upstream_connection and in the router, and each side gets one
``transport.write`` per event-loop callback (PERF.md: the kernel's system
calls dominate, so writes are coalesced).
"""

import asyncio
import collections

import httptools

from cpython.bytes cimport PyBytes_GET_SIZE

from fastgw._core.buffer cimport WriteBuffer
from fastgw._core.gateway cimport (
    FAILURE_ERROR, FAILURE_TIMEOUT, FILTER_BODY, FILTER_HEADER, FILTER_LOG, FastAnswer,
    Gateway, Request, RouteRuntime, connect_timeout, read_timeout,
)
from fastgw._core.metrics cimport MetricsCell
from fastgw._core.router cimport RouteMatch
from fastgw._core.upstream_connection cimport UpstreamConnection, UpstreamPool
from fastgw._core.upstream_runtime cimport (
    OUTCOME_RELEASE, OUTCOME_TCP_FAILURE, OUTCOME_TIMEOUT, UpstreamRuntime,
)
from fastgw._core.wire cimport (
    H_OTHER, H_HOST, H_CONTENT_LENGTH, H_TRANSFER_ENCODING, H_CONNECTION, H_HOP,
    H_UPGRADE, H_EXPECT, H_X_FORWARDED_FOR, H_X_FORWARDED_OTHER, H_X_REAL_IP,
    H_X_REQUEST_ID, now_ms, reason_phrase, classify_header, parse_length, strip_port,
    connection_tokens, error_body,
)

from fastgw._core.router import SNI_KEY, MalformedTarget

# Where fastgw.tls's SNI callback leaves the server name a client asked for
# on the handshake's SSL object (server side, ssl gives no other way to it).
SNI_ATTRIBUTE = "fastgw_server_name"
from fastgw._core.wire import (
    MSG_BAD_REQUEST, MSG_BAD_UPSTREAM, MSG_EXPECTATION, MSG_HEADERS_TOO_LARGE,
    MSG_HTTPS_REQUIRED, MSG_NO_PEER, MSG_NO_ROUTE, MSG_NOT_ALLOWED, MSG_OVERLOADED,
    MSG_TIMEOUT, MSG_TOO_LARGE, MSG_UNEXPECTED, MSG_UPSTREAM_TIMEOUT,
)

cdef object HttpRequestParser = httptools.HttpRequestParser
cdef object HttpParserUpgrade = httptools.HttpParserUpgrade
cdef object HttpParserError = httptools.HttpParserError
cdef object deque = collections.deque
cdef object TimeoutError_ = asyncio.TimeoutError
cdef object wait_for = asyncio.wait_for

cdef list JSON_CONTENT_TYPE = [b"Content-Type", b"application/json; charset=utf-8"]

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
        self.sni = None
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
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            # The handshake is done: the name the listener's SNI callback saw.
            name = getattr(ssl_object, SNI_ATTRIBUTE, None)
            self.sni = name.lower().encode("idna") if name else b""
        self.idle_since = now_ms()
        self.gw.clients.add(self)
        if len(self.gw.clients) > self.gw.limits.max_connections:
            # Over the connection limit: close before reading anything, as
            # nginx does once worker_connections are used up.
            self.closing = True
            transport.close()

    def data_received(self, bytes data):
        cdef Py_ssize_t offset
        cdef Request req
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
        if self.deferred is not None:
            # Its body is still coming: it goes upstream as it arrives.
            req = self.deferred
            self.deferred = None
            if not self.closing:
                self.start_request(req)
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
        # The parser calls back into this connection: a cycle, which the
        # collector may never see once a config swap froze it (gc.freeze).
        # Broken here, the connection goes by reference counting.
        self.parser = None
        self.feed = None
        if self.continuing is not None:
            # Stopped before the log phase is called below, so that it sees
            # what the continued answer had written.
            self.continuing.cancel()
            self.continuing = None
        if req is not None:
            req.settle(OUTCOME_RELEASE, 0, 0)
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
        self.deferred = None
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

    def peer_certificate(self):
        """The client's TLS certificate (DER), None when it sent none or the
        connection is not TLS (mtls-auth)."""
        ssl_object = self.tls_object()
        return None if ssl_object is None else ssl_object.getpeercert(True)

    def tls_object(self):
        """The connection's ssl.SSLObject; None when it is not TLS."""
        if self.transport is None:
            return None
        return self.transport.get_extra_info("ssl_object")

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
            if req.content_length > 0:
                # PERF: a body of known length usually came in the same read
                # as the head: the request starts once this read is parsed
                # (at its end, or when the body is whole), so that plugins
                # reading it get it at once, without a task, and the body
                # goes upstream with the head.
                self.deferred = req
            else:
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
        if req is self.deferred:
            self.deferred = None
            self.start_request(req)  # whole: nothing more to write or wait for
            return
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
        cdef RouteMatch match
        if self.gw.shedding:
            self.respond_local(503, MSG_OVERLOADED, True)
            return
        if self.sni is not None and self.gw.route_on_sni:
            if req.match_headers is None:
                req.match_headers = {}
            req.match_headers[SNI_KEY] = self.sni
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
        self.write_response_head(status, reason_phrase(status), headers,
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
        cdef Py_ssize_t index = up.pick(self.peer_ip, req.consumer_key, req.host, req.url, req.headers,
                                          req.retries_used)
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
                conn = await req.pool.connect(self.gw.loop, connect_timeout(req))
            except TimeoutError_:
                timed_out = True
            except OSError:
                pass
            if self.closing or self.active is not req:
                if conn is not None:
                    req.pool.release(conn)
                req.settle(OUTCOME_RELEASE, 0, 0)
                return
            if conn is not None:
                break
            self.gw.connect_failures += 1
            req.settle(OUTCOME_TIMEOUT if timed_out else OUTCOME_TCP_FAILURE, 0, 0)
            req.retries_used += 1
            if req.retries_used > rt.retries or req.failover_statuses is not None:
                # A plugin that fails over chooses the next target itself.
                if timed_out:
                    self.upstream_failed(None, 504, MSG_UPSTREAM_TIMEOUT, FAILURE_TIMEOUT)
                else:
                    self.upstream_failed(None, 502, MSG_BAD_UPSTREAM, FAILURE_ERROR)
                self.flush()
                return
            if req.balanced:
                # Nothing was sent: any method may move to the next target.
                if not self.pick_target(req):
                    self.upstream_failed(None, 503, MSG_NO_PEER, 0)
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
        req.retries_used += 1
        self.rewind_body(req)
        if req.balanced and not self.pick_target(req):
            self.upstream_failed(None, 503, MSG_NO_PEER, 0)
            return
        self.send_again(req)

    cdef void rewind_body(self, Request req):
        # The body kept for a retry (replayable) is what goes out again.
        req.body_pending = list(req.body_sent) if req.body_sent is not None else []
        req.body_pending_bytes = 0

    cdef void send_again(self, Request req):
        # Another attempt, on req.pool: a kept-alive connection, or a new one.
        cdef UpstreamConnection conn = req.pool.acquire()
        if conn is not None:
            self.send_to_upstream(req, conn)
            conn.flush()
        else:
            self.gw.loop.create_task(self.connect_upstream(req))

    cdef bint try_failover(self, Request req, UpstreamConnection conn, int failure, int status,
                           list headers):
        # A plugin fails this request over to a target of its choosing
        # (ai-proxy-advanced): nothing of the answer has reached the client,
        # so the plugin may rebuild the request for another provider. The
        # caller has checked can_fail_over. Declined, nothing changes (the
        # caller answers); else ``conn``, the failed attempt's, is closed.
        self.rewind_body(req)
        if not self.gw.plugin_runner.failover(req, failure, status, headers):
            # Declined once, for good: the failure goes to the client.
            req.failover_statuses = None
            return False
        if conn is not None:
            conn.client = None
            conn.close()
            self.gw.busy_upstreams.discard(conn)
        self.upstream = None
        req.retries_used += 1
        req.t_upstream_sent = 0  # the next attempt's request has not gone out
        self.send_again(req)
        return True

    cdef bint can_fail_over(self, Request req):
        return req is not None and req.failover_statuses is not None and req is self.active \
            and not self.closing and not self.response_started and req.ctx is not None

    cdef void send_to_upstream(self, Request req, UpstreamConnection conn):
        cdef RouteRuntime rt = req.rt
        cdef WriteBuffer b = conn.wbuf
        cdef list headers = req.headers
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
        b.add_headers(headers)
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
        conn.read_deadline = t + read_timeout(req) if read_timeout(req) > 0 else 0
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
        self.write_response_head(status, reason_phrase(status), JSON_CONTENT_TYPE,
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
        cdef Py_ssize_t start = b.length
        b.add(b"HTTP/1.1 ")
        b.add_int(status)
        b.add(b" ")
        b.add(reason)
        b.add(b"\r\n")
        b.add_headers(headers)
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
        if self.deferred is bad:
            self.deferred = None  # never started: it is answered with the error
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

    cdef void upstream_failed(self, UpstreamConnection conn, int status, bytes message,
                              int failure):
        # ``failure``: what went wrong, as a plugin failing over is told (0: not
        # the target's doing).
        if failure and self.can_fail_over(self.active):
            if self.try_failover(self.active, conn, failure, 0, None):
                self.flush()
                return
        if self.active is not None:
            self.active.settle(OUTCOME_TIMEOUT if status == 504 else OUTCOME_TCP_FAILURE, 0, 0)
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
        # The response is on its way and cannot be completed by its upstream.
        # Body filters (ai-proxy) get to end it with an error event of their
        # own first, or to continue it from another source (a continuation,
        # which needs to know the answer's framing: conn's).
        cdef bytes tail
        if req is not None and req.ctx is not None and (req.filters & FILTER_BODY):
            tail = self.gw.plugin_runner.body_abort(req)
            if tail:
                if conn is not None and conn.rechunk:
                    self.wbuf.add_chunk(tail)
                else:
                    self.wbuf.add(tail)
            if req.continuation is not None and conn is not None and req is self.active:
                self.continue_response(req, conn.rechunk)
                return
            req.continuation = None
        self.abort()

    cdef void continue_response(self, Request req, bint rechunk):
        # The upstream is gone but the answer goes on: req.continuation
        # writes the rest (slow path, a task), then the response ends here.
        self.flush()
        self.continuing = self.gw.loop.create_task(self.run_continuation(req, rechunk))

    async def run_continuation(self, Request req, bint rechunk):
        cdef object continuation = req.continuation
        cdef ContinuedBody body = ContinuedBody(self, req, rechunk)
        req.continuation = None
        cdef object whole
        try:
            whole = await continuation(body.write)
        except asyncio.CancelledError:
            raise  # the client went away (connection_lost)
        except Exception as exc:
            self.gw.loop.call_exception_handler({
                "message": "a continued answer failed", "exception": exc})
            whole = False
        self.continuing = None
        if self.active is not req:
            return
        if not whole:
            # It ended with an error, or failed: truncated, never a clean end.
            self.abort()
            return
        if rechunk:
            self.wbuf.add(b"0\r\n\r\n")
        # Not chunked: an HTTP/1.0 client reads to the close.
        self.response_finished(not rechunk)
        self.flush()

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


cdef class ContinuedBody:
    """What a continuation writes the rest of an answer with: ``write(data)``
    sends ``data`` at once, in the answer's framing; False once the client
    has gone (nothing is sent then)."""

    cdef ClientConnection client
    cdef Request req
    cdef bint rechunk

    def __cinit__(self, ClientConnection client, Request req, bint rechunk):
        self.client = client
        self.req = req
        self.rechunk = rechunk

    def write(self, bytes data):
        cdef ClientConnection client = self.client
        if client.active is not self.req or client.transport is None \
                or client.transport.is_closing():
            return False
        if data:
            self.req.bytes_out += PyBytes_GET_SIZE(data)
            if self.rechunk:
                client.wbuf.add_chunk(data)
            else:
                client.wbuf.add(data)
            client.flush()
        return True
