# HTTP/1.1 helpers both sides of the proxy cimport (see wire.pyx).

from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec


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


cdef inline double now_ms() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1000000.0


cdef bytes reason_phrase(int status)
cdef int classify_header(bytes name) noexcept
cdef bint upgrade_accepted(bytes asked, bytes answered)
cdef long long parse_length(bytes value) except -2
cdef bytes strip_port(bytes host)
cdef bint has_header(list headers, bytes lower_name)
cdef list connection_tokens(bytes value)
cdef bytes find_header(list headers, bytes lower_name)
cdef bytes find_param(bytes text, bytes name, bytes separator)
cdef bytes error_body(bytes message)
