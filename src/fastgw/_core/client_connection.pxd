# The client side of the proxy (see client_connection.pyx).

from fastgw._core.buffer cimport WriteBuffer
from fastgw._core.gateway cimport Gateway, Request
from fastgw._core.upstream_connection cimport UpstreamConnection


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
    cdef bytes sni                      # TLS server name (b"" if none sent); None: plain HTTP
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
    cdef object continuing              # the task writing a continued answer, or None
    cdef Request deferred               # its head is in; started once its body is (see on_headers_complete)

    cdef bint pick_target(self, Request req)
    cdef void retry(self, Request req)
    cdef void rewind_body(self, Request req)
    cdef void send_again(self, Request req)
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
    cdef void upstream_failed(self, UpstreamConnection conn, int status, bytes message,
                              int failure)
    cdef bint can_fail_over(self, Request req)
    cdef bint try_failover(self, Request req, UpstreamConnection conn, int failure, int status,
                           list headers)
    cdef void abort_with_filters(self, Request req, UpstreamConnection conn)
    cdef void continue_response(self, Request req, bint rechunk)
    cdef void check_timeouts(self, double now)
    cdef void hold(self, bytes data)
    cdef list take_held(self)
    cdef void send_refusal(self)
