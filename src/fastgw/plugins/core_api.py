"""The calls between the compiled core and the Python side, written down once.

The compiled core (``fastgw._core.client_connection`` and ``gateway``) calls a
``PluginRunner`` through ``RunnerAPI``; the runner calls back into the core's
client connection (``CoreClient``) and gateway (``CoreGateway``). Each core
module's ``.pyi`` stub types the rest. The compiled classes satisfy these
structurally: ``tests/plugins/test_core_api.py`` checks every
name against them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import ssl

    from fastgw.plugins.fast import Handover


class CoreRequest(Protocol):
    """The core's ``Request`` as the runner reads and changes it (its public
    fields; the runner keeps its context in ``ctx``)."""

    method: bytes
    url: bytes
    host: bytes | None
    host_override: bytes | None
    headers: list[bytes]
    request_id: bytes
    upstream_url: bytes
    http_minor: int
    chunked: bool
    complete: bool
    content_length: int
    body_pending: list[bytes]
    body_pending_bytes: int
    body_waiter: Any
    header_bytes: int
    body_received: int
    t_start: float
    t_upstream_sent: float
    t_first_byte: float
    attempts: int
    status: int
    bytes_out: int
    rt: Any
    pool: Any
    ctx: Any
    filters: int
    buffer_response: bool
    failover_statuses: bytes | None
    connect_timeout_ms: float
    read_timeout_ms: float
    write_timeout_ms: float
    consumer_key: object
    extra_head: bytes | None
    # An async callable taking ``write``: the rest of a streamed answer whose
    # upstream ended early (RequestContext.continue_body).
    continuation: Any


class CoreClient(Protocol):
    """What the runner calls on the core's client connection."""

    @property
    def peer_address(self) -> str: ...
    @property
    def scheme_name(self) -> str: ...
    @property
    def local_port_number(self) -> int: ...

    def peer_certificate(self) -> bytes | None:
        """The client's TLS certificate (DER), None without one."""

    def tls_object(self) -> Any:
        """The connection's ssl.SSLObject; None when it is not TLS."""

    def resume(self, req: CoreRequest) -> None:
        """Carry on with a request after an asynchronous access phase."""

    def send_continue(self, req: CoreRequest) -> None:
        """Answer ``Expect: 100-continue`` now (a plugin wants the body)."""

    def respond_exit(self, req: CoreRequest, status: int, headers: list[bytes], body: bytes,
                     close: bool = False) -> None:
        """Answer with a response the gateway made; the core frames it."""


class CoreGateway(Protocol):
    """What the runner asks of the worker's gateway."""

    def pool_for(self, host: str, port: int, ssl: ssl.SSLContext | None = None,
                 server_hostname: str | None = None, tls_key: object = None) -> Any:
        """The keep-alive pool of a target (a plugin chose another upstream)."""


class RunnerAPI(Protocol):
    """What the core calls on the plugin runner, on the slow path only."""

    def access(self, client: CoreClient, req: CoreRequest, handover: Handover | None = None) -> bool:
        """The access phase; True: the core proceeds with the request now."""

    def header_filter(self, req: CoreRequest, status: int, headers: list[bytes],
                      source: str = "service") -> int:
        """Response plugins may change the status and the headers in place."""

    def body_filter(self, req: CoreRequest, chunk: bytes, eof: bool) -> bytes: ...

    def buffered_answer(self, req: CoreRequest, status: int, headers: list[bytes],
                        body: bytes) -> tuple[int, bytes]:
        """A whole answer held before its head (``buffer_response``): the
        response filters' status and body; headers change in place."""

    def body_abort(self, req: CoreRequest) -> bytes:
        """The upstream broke the body off: the filters' last word."""

    def failover(self, req: CoreRequest, failure: int, status: int,
                 headers: list[bytes] | None) -> bool:
        """An attempt failed before the answer's head went out: True once a
        plugin has pointed the request at another target."""

    def respond_error(self, client: CoreClient, req: CoreRequest, status: int, body: bytes,
                      close: bool) -> None:
        """A gateway error on a route with response plugins."""

    def log(self, req: CoreRequest) -> None: ...
