# cython: language_level=3
"""The upstream side of the proxy: keep-alive pools per target and the
connection that carries one exchange at a time to a target, checks the
answer's framing before any of it reaches the client, and streams it back."""

import asyncio

import httptools

from cpython.bytes cimport PyBytes_GET_SIZE

from fastgw._core.buffer cimport WriteBuffer
from fastgw._core.client_connection cimport ClientConnection
from fastgw._core.gateway cimport (
    FAILURE_ERROR, FAILURE_HTTP, FAILURE_INVALID_HEADER, FAILURE_TIMEOUT, FILTER_BODY,
    FILTER_HEADER, Request, read_timeout, write_timeout,
)
from fastgw._core.upstream_runtime cimport OUTCOME_RESPONSE, OUTCOME_TCP_FAILURE
from fastgw._core.wire cimport (
    H_CONTENT_LENGTH, H_TRANSFER_ENCODING, H_CONNECTION, H_HOP, H_UPGRADE, now_ms,
    reason_phrase, classify_header, upgrade_accepted, parse_length, has_header,
)

from fastgw._core.wire import MSG_BAD_UPSTREAM

cdef object HttpResponseParser = httptools.HttpResponseParser
cdef object HttpParserUpgrade = httptools.HttpParserUpgrade
cdef object HttpParserError = httptools.HttpParserError
cdef object wait_for = asyncio.wait_for

# Methods a proxy may resend after the request reached the upstream
# (RFC 9110 9.2.2).
cdef frozenset IDEMPOTENT = frozenset({b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"})


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
        _, conn = await wait_for(coro, timeout_ms / 1000.0)
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
            self.read_deadline = now_ms() + read_timeout(self.req)
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
                client.upstream_failed(self, 502, MSG_BAD_UPSTREAM,
                                       FAILURE_ERROR if self.status else FAILURE_INVALID_HEADER)
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
        # The parser calls back into this connection: a cycle, which the
        # collector may never see once a config swap froze it (gc.freeze).
        # Broken here, the connection goes by reference counting.
        self.parser = None
        self.feed = None
        self.pool.forget(self)
        if client is None:
            return
        client.gw.busy_upstreams.discard(self)
        if self.tunnel:
            client.abort()
            return
        if self.until_close and (self.head_sent or self.buffering):
            # A body delimited by the end of the connection is complete now.
            if self.buffering:
                self.release_buffered()
            else:
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
                and req.retries_used < req.rt.retries and not client.closing \
                and req.failover_statuses is None:
            # The request may have reached the application, so only an
            # idempotent one goes again (on the next target when balanced).
            self.client = None
            client.upstream = None
            req.settle(OUTCOME_TCP_FAILURE, 0, 0)
            client.retry(req)
            client.flush()
            return
        client.upstream_failed(self, 502, MSG_BAD_UPSTREAM, FAILURE_ERROR)

    def pause_writing(self):
        if self.client is not None and self.client.transport is not None:
            self.client.transport.pause_reading()
        if self.req is not None and self.req.rt is not None:
            self.write_deadline = now_ms() + write_timeout(self.req)

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
        cdef list headers = self.resp_headers
        cdef double t
        cdef int status = self.parser.get_status_code()
        cdef bint length_known
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
        req.settle(OUTCOME_RESPONSE, status, t - req.t_upstream_sent)
        if req.failover_statuses is not None and status < 600 and req.failover_statuses[status] \
                and client.can_fail_over(req) \
                and client.try_failover(req, self, FAILURE_HTTP, status, headers):
            return  # this answer is dropped with its connection; the next target's follows
        self.body_allowed = not (req.method == b"HEAD" or status == 204 or status == 304
                                 or status == 101)
        if self.body_allowed and not self.resp_chunked and self.resp_content_length < 0:
            # The body runs to the end of the upstream connection.
            self.until_close = True
            self.keep_alive = False
        if req.buffer_response and self.body_allowed:
            # A plugin reads the whole answer before any of it goes out
            # (Kong's buffered proxying): the head waits for the body.
            self.buffering = True
            self.held_body = []
            self.held_bytes = 0
            return
        length_known = self.resp_content_length >= 0
        if req.ctx is not None and (req.filters & FILTER_HEADER):
            # Slow path: plugins may change the status and the headers.
            new_status = client.gw.plugin_runner.header_filter(req, status, headers)
            if new_status != status:
                status = new_status
                reason = reason_phrase(status)
            if length_known:
                length_known = has_header(headers, b"content-length")
        self.write_head(status, reason, headers, length_known)
        if not self.body_allowed and status != 101:
            # No body follows (HEAD, 204, 304): the answer ends here, whatever
            # the upstream sends next.
            self.keep_alive = self.keep_alive and self.parser.should_keep_alive()
            self.answer_done = True

    cdef void write_head(self, int status, bytes reason, list headers, bint length_known):
        cdef ClientConnection client = self.client
        cdef Request req = self.req
        cdef WriteBuffer b = client.wbuf
        cdef Py_ssize_t start = b.length
        cdef double upstream_ms = req.t_first_byte - req.t_upstream_sent
        cdef double proxy_ms = req.t_upstream_sent - req.t_start
        cdef bint close = not req.keep_alive or client.gw.draining or client.closing
        if self.body_allowed and not length_known:
            # Re-frame as chunked for HTTP/1.1 clients so their connection can
            # stay open; HTTP/1.0 clients read to the close.
            if req.http_minor == 1:
                self.rechunk = True
            else:
                close = True
        b.add(b"HTTP/1.1 ")
        b.add_int(status)
        b.add(b" ")
        if reason is not None:
            b.add(reason)
        b.add(b"\r\n")
        b.add_headers(headers)
        if self.rechunk or (self.resp_chunked and req.method == b"HEAD"):
            b.add(b"Transfer-Encoding: chunked\r\n")
        if req.extra_head is not None:
            b.add(req.extra_head)
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

    cdef void release_buffered(self):
        # The whole answer is in: the plugins see it at once (they may change
        # its status, headers and body), then it goes out with its length.
        cdef ClientConnection client = self.client
        cdef Request req = self.req
        cdef list headers = self.resp_headers
        cdef bytes body = b"".join(self.held_body)
        cdef int status = self.status
        cdef bytes reason = self.reason
        self.buffering = False
        self.held_body = None
        if req.ctx is not None:
            status, body = client.gw.plugin_runner.buffered_answer(req, status, headers, body)
            if status != self.status:
                reason = reason_phrase(status)
        headers.append(b"Content-Length")
        headers.append(str(PyBytes_GET_SIZE(body)).encode())
        self.write_head(status, reason, headers, True)
        req.bytes_out += PyBytes_GET_SIZE(body)
        client.wbuf.add(body)

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
        if self.buffering:
            self.held_body.append(chunk)
            self.held_bytes += PyBytes_GET_SIZE(chunk)
            if self.held_bytes > client.gw.limits.max_response_buffer_bytes:
                self.buffering = False
                self.held_body = None
                raise ValueError("buffered answer past max_response_buffer_size")
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
            if req.continuation is not None:
                # A body filter writes the rest itself (exchange_done then
                # leaves the client's response open).
                client.continue_response(req, self.rechunk)
                return
        if self.rechunk:
            client.wbuf.add(b"0\r\n\r\n")

    def on_message_complete(self):
        if self.interim:
            self.interim = False
            return
        if self.buffering and self.client is not None:
            self.release_buffered()
            self.keep_alive = self.keep_alive and self.parser.should_keep_alive()
            self.answer_done = True
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
        self.status = 0
        self.got_bytes = False
        self.head_sent = False
        self.buffering = False
        self.held_body = None
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
        if client is not None and client.continuing is None:
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
