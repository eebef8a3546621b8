# cython: language_level=3
"""HTTP/1.1 as the proxy reads and writes it, shared by both sides of an
exchange: the header names it acts on, framing numbers, status reasons, the
clock, and Kong's wording for the errors the proxy answers itself."""

import os

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE


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
MSG_OVERLOADED = b"The gateway is over its memory limit"
MSG_HTTPS_REQUIRED = b"Please use HTTPS protocol"
MSG_NOT_ALLOWED = b"Method not allowed"

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


cdef bytes reason_phrase(int status):
    return REASONS.get(status, b"Unknown")


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


cdef bint _starts_with_any(bytes name, tuple prefixes):
    cdef const char* p = PyBytes_AS_STRING(name)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(name)
    cdef bytes prefix
    for prefix in prefixes:
        if n >= PyBytes_GET_SIZE(prefix) and ieq(p, PyBytes_GET_SIZE(prefix),
                                                  PyBytes_AS_STRING(prefix),
                                                  PyBytes_GET_SIZE(prefix)):
            return True
    return False


def drop_prefixed(list headers, tuple prefixes):
    """Take out of ``headers`` (raw [name, value, ...]) those whose name, in
    any case, starts with one of ``prefixes`` (lower-case bytes). PERF: the
    list is only rebuilt when one is there (the usual answer has none)."""
    cdef Py_ssize_t i, first = -1, n = len(headers) - 1
    for i in range(0, n, 2):
        if _starts_with_any(headers[i], prefixes):
            first = i
            break
    if first < 0:
        return
    cdef list kept = headers[:first]
    for i in range(first, n, 2):
        if not _starts_with_any(headers[i], prefixes):
            kept.append(headers[i])
            kept.append(headers[i + 1])
    headers[:] = kept


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


cdef bytes error_body(bytes message):
    return b'{"message":"' + message + b'"}'
