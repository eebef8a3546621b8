# The upstream side of the proxy: keep-alive pools and the connections in
# them (see upstream_connection.pyx).

from fastgw._core.buffer cimport WriteBuffer
from fastgw._core.client_connection cimport ClientConnection
from fastgw._core.gateway cimport Request


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
    cdef bint buffering                 # the answer is held whole (Request.buffer_response)
    cdef list held_body
    cdef Py_ssize_t held_bytes
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
    cdef void write_head(self, int status, bytes reason, list headers, bint length_known)
    cdef void release_buffered(self)
    cdef void finish_answer(self)
    cdef void flush(self)
    cdef void close(self)
