"""Type stubs for fastgw._core.wire: HTTP/1.1 helpers shared by both sides
of the proxy (cdef helpers are in wire.pxd)."""

MSG_NO_ROUTE: bytes
MSG_BAD_REQUEST: bytes
MSG_TIMEOUT: bytes
MSG_TOO_LARGE: bytes
MSG_HEADERS_TOO_LARGE: bytes
MSG_EXPECTATION: bytes
MSG_BAD_UPSTREAM: bytes
MSG_NO_PEER: bytes
MSG_UPSTREAM_TIMEOUT: bytes
MSG_UNEXPECTED: bytes
MSG_OVERLOADED: bytes
MSG_HTTPS_REQUIRED: bytes
MSG_NOT_ALLOWED: bytes

def resident_bytes() -> int:
    """This process's resident set size."""

def monotonic_ms() -> float:
    """The clock the core uses for deadlines, in milliseconds."""

def drop_prefixed(headers: list[bytes], prefixes: tuple[bytes, ...]) -> None:
    """Take out of ``headers`` (raw [name, value, ...]) those whose name, in
    any case, starts with one of ``prefixes`` (lower-case)."""

def header_kind(name: bytes) -> int: ...
def content_length_of(value: bytes) -> int: ...
