"""What a plugin sees of one request: ``RequestContext``.

Built only for routes that have Python plugins. Request headers stay in the
core's flat ``[name, value, name, value, ...]`` byte list and are decoded on
access, so a plugin that reads one header pays for one header.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson

from fastgw._core.decisions import header_variable
from fastgw.config.model import Consumer, Route, Service
from fastgw.tls import client_chain

if TYPE_CHECKING:  # chain.py imports this module
    from fastgw.plugins.chain import PluginChain
    from fastgw.plugins.core_api import CoreClient

# handler(ctx, failure, status, headers, sent) -> True when the request was
# pointed at another target (see RequestContext.enable_failover).
FailoverHandler = Callable[["RequestContext", int, int, "HeaderList | None", bool], bool]


_KEYS: dict[str | bytes, bytes] = {}


def _key(name: str | bytes) -> bytes:
    """A header name's lower-case bytes. PERF: plugins ask for the same few
    names on every request; each is made once (bounded)."""
    key = _KEYS.get(name)
    if key is None:
        key = (name.encode("latin-1") if isinstance(name, str) else name).lower()
        if len(_KEYS) >= 4096:
            _KEYS.clear()
        _KEYS[name] = key
    return key


def _find(items: list[bytes], key: bytes, start: int = 0) -> int:
    """The index of the first name from ``start`` that is ``key`` (lower-
    case) in any case; -1 when none is. PERF: lengths first, so only names
    of the right length are lower-cased (a copy each)."""
    size = len(key)
    for i in range(start, len(items), 2):
        name = items[i]
        if len(name) == size and name.lower() == key:
            return i
    return -1


def kong_args(encoded: str) -> dict[str, str | list[str]]:
    """A query string (or form body) as Kong hands arguments to Lua: one
    value as a string, a repeated name as a list."""
    return {name: values[0] if len(values) == 1 else values
            for name, values in parse_qs(encoded, keep_blank_values=True).items()}


_UPSTREAM_URLS: dict[str, tuple[str, str, int, str, str, str]] = {}


def _upstream_parts(url: str) -> tuple[str, str, int, str, str, str]:
    """(scheme, host name, port, path, query, Host header) of an upstream
    URL. PERF: a route sends to the same few URLs (a provider's): each is
    parsed once (bounded)."""
    parts = _UPSTREAM_URLS.get(url)
    if parts is not None:
        return parts
    split = urlsplit(url)
    hostname = split.hostname
    if split.scheme not in ("http", "https") or not hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = split.port or (443 if split.scheme == "https" else 80)
    default = port == (443 if split.scheme == "https" else 80)
    parts = (split.scheme, hostname, port, split.path or "/", split.query,
             hostname if default else f"{hostname}:{port}")
    if len(_UPSTREAM_URLS) >= 1024:
        _UPSTREAM_URLS.clear()
    _UPSTREAM_URLS[url] = parts
    return parts


class HeaderList:
    """Case-insensitive access to a flat ``[name, value, ...]`` list of bytes.

    Names and values are read and written as ``str`` (latin-1, as HTTP/1.1
    allows), and the list is changed in place.
    """

    __slots__ = ("items", "host_added")

    def __init__(self, items: list[bytes]) -> None:
        self.items = items
        # A plugin that sets Host chooses the upstream Host; the runner
        # looks only when this says so (PERF: no scan per request).
        self.host_added = False

    def get(self, name: str, default: str | None = None) -> str | None:
        items = self.items
        i = _find(items, _key(name))
        return default if i < 0 else items[i + 1].decode("latin-1")

    def get_all(self, name: str) -> list[str]:
        key = _key(name)
        size = len(key)
        items = self.items
        return [items[i + 1].decode("latin-1") for i in range(0, len(items), 2)
                if len(items[i]) == size and items[i].lower() == key]

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def get_as_kong(self, name: str) -> str | None:
        """The first value of ``name`` as Kong's ``kong.request.get_header``
        finds it: case, ``-`` and ``_`` alike (see ``header_variable``)."""
        wanted = header_variable(name.encode("latin-1"))
        items = self.items
        for i in range(0, len(items), 2):
            if header_variable(items[i]) == wanted:
                return items[i + 1].decode("latin-1")
        return None

    def remove_as_kong(self, name: str) -> None:
        """Remove every header Kong would find as ``name``."""
        wanted = header_variable(name.encode("latin-1"))
        items = self.items
        items[:] = [x for i in range(0, len(items), 2) if header_variable(items[i]) != wanted
                    for x in (items[i], items[i + 1])]

    def set(self, name: str, value: str) -> None:
        """Replace every value of ``name`` with one value."""
        self.remove(name)
        self.add(name, value)

    def add(self, name: str, value: str) -> None:
        if len(name) == 4 and name.lower() == "host":
            self.host_added = True
        self.items.append(name.encode("latin-1"))
        self.items.append(str(value).encode("latin-1"))

    def remove(self, name: str) -> bool:
        key = _key(name)
        items = self.items
        first = _find(items, key)
        if first < 0:
            return False  # PERF: the common case, without a copy of the list
        size = len(key)
        items[first:] = [x for i in range(first, len(items), 2)
                         if len(items[i]) != size or items[i].lower() != key
                         for x in (items[i], items[i + 1])]
        return True

    def remove_all(self, names: tuple[str, ...] | frozenset[bytes]) -> None:
        """Remove every header named in ``names`` (or lower-case byte keys)
        in one pass."""
        keys = names if isinstance(names, frozenset) else {_key(n) for n in names}
        sizes = {len(key) for key in keys}
        items = self.items
        for first in range(0, len(items), 2):
            if len(items[first]) in sizes and items[first].lower() in keys:
                break
        else:
            return
        items[first:] = [x for i in range(first, len(items), 2)
                         if len(items[i]) not in sizes or items[i].lower() not in keys
                         for x in (items[i], items[i + 1])]

    def rename(self, old: str, new: str) -> None:
        key = _key(old)
        items = self.items
        if new.lower() == "host":
            self.host_added = True
        i = _find(items, key)
        while i >= 0:
            items[i] = new.encode("latin-1")
            i = _find(items, key, i + 2)

    def pairs(self) -> list[tuple[str, str]]:
        items = self.items
        return [(items[i].decode("latin-1"), items[i + 1].decode("latin-1"))
                for i in range(0, len(items), 2)]

    def as_dict(self) -> dict[str, str | list[str]]:
        """Lower-case names; repeated headers become lists (Kong's log format)."""
        out: dict[str, Any] = {}
        for name, value in self.pairs():
            key = name.lower()
            if key in out:
                prev = out[key]
                out[key] = prev + [value] if isinstance(prev, list) else [prev, value]
            else:
                out[key] = value
        return out


# ctx.shared key of the attributes plugins note for the trace span (note_trace).
TRACE_ATTRIBUTES = "trace_attributes"

# Headers the gateway sets after authentication; a client cannot send its own.
_IDENTITY_HEADERS = ("X-Consumer-ID", "X-Consumer-Custom-ID", "X-Consumer-Username",
                     "X-Credential-Identifier", "X-Anonymous-Consumer")
IDENTITY_KEYS = frozenset(name.lower().encode() for name in _IDENTITY_HEADERS)


def set_identity_headers(headers: HeaderList, consumer: Consumer | None,
                         credential_identifier: str | None, anonymous: bool) -> None:
    """Kong's identity headers for the upstream, replacing any the client sent."""
    headers.remove_all(IDENTITY_KEYS)
    # PERF: constant names go in as bytes, without HeaderList.add's checks.
    items = headers.items
    if consumer is not None:
        if consumer.id:
            items += (b"X-Consumer-ID", consumer.id.encode("latin-1"))
        if consumer.custom_id:
            items += (b"X-Consumer-Custom-ID", consumer.custom_id.encode("latin-1"))
        if consumer.username:
            items += (b"X-Consumer-Username", consumer.username.encode("latin-1"))
    if credential_identifier:
        items += (b"X-Credential-Identifier", credential_identifier.encode("latin-1"))
    if anonymous:
        items += (b"X-Anonymous-Consumer", b"true")


def consumer_label(consumer: Consumer) -> str:
    """How metrics and logs name a consumer."""
    return consumer.username or consumer.custom_id or consumer.id or ""


class RequestView:
    """The request as the upstream will receive it; plugins may change it."""

    __slots__ = ("method", "path", "query_string", "headers", "host", "body",
                 "body_replaced", "client_ip", "scheme", "port", "http_version",
                 "raw_path", "raw_query", "_query", "chunked", "upstream_host")

    def __init__(self, method: str, url: str, upstream_url: str, headers: list[bytes],
                 host: str | None, client_ip: str, scheme: str, port: int,
                 http_version: str = "1.1") -> None:
        self.method = method
        raw_path, _, raw_query = url.partition("?")
        self.raw_path = raw_path            # what the client asked for
        self.raw_query = raw_query
        path, _, query = upstream_url.partition("?")
        self.path = path                    # what goes upstream (after strip_path)
        self.query_string = query
        self.headers = HeaderList(headers)
        self.host = host
        self.body: bytes | None = None      # set by ctx.read_body()
        self.body_replaced = False
        self.client_ip = client_ip
        self.scheme = scheme
        self.port = port
        self.http_version = http_version
        self._query: dict[str, list[str]] | None = None
        # The client's body is chunked (it has no Content-Length).
        self.chunked = False
        # The Host the upstream gets when a plugin sent the request elsewhere
        # (set_upstream); a Host header a plugin sets afterwards wins.
        self.upstream_host: str | None = None

    @property
    def upstream_url(self) -> str:
        return f"{self.path}?{self.query_string}" if self.query_string else self.path

    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.query_string, keep_blank_values=True)
        return self._query

    def set_query(self, params: Mapping[str, list[str] | str]) -> None:
        from urllib.parse import urlencode

        self._query = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
        self.query_string = urlencode(self._query, doseq=True)

    def set_body(self, body: bytes) -> None:
        """Replace the body sent upstream (needs ``await ctx.read_body()`` first
        when the client sent one)."""
        self.body = body
        self.body_replaced = True


class ResponseView:
    __slots__ = ("status", "headers", "source", "size", "aborted", "buffered")

    def __init__(self, status: int, headers: list[bytes], source: str) -> None:
        self.status = status
        self.headers = HeaderList(headers)
        self.source = source    # "service" (from upstream) or "exit" (from a plugin)
        self.size = 0
        # True in the last body_filter call when the upstream broke off the
        # body: what the filter returns is the last thing the client gets
        # before the connection closes.
        self.aborted = False
        # The whole body comes in one body_filter call, before the head goes
        # out: a filter may still change ``status`` there.
        self.buffered = False


class RequestContext:
    """Per-request state shared by the plugins of one route."""

    __slots__ = ("request", "response", "route", "service", "consumer", "credential",
                 "authenticated_groups", "consumer_groups", "shared", "request_id", "started_at", "exit_status",
                 "exit_body", "exit_headers", "latencies", "_plugin_state",
                 "_body_reader", "_body_now", "ai", "log_fields", "bytes_in", "tries", "chain",
                 "upstream_target", "decided_headers", "decided_replace", "credential_headers",
                 "credential_fields", "buffered", "failover_handler", "failover_statuses",
                 "timeouts", "connection", "continuation")

    def __init__(self, request: RequestView, route: Route, service: Service | None,
                 request_id: str) -> None:
        self.request = request
        self.response: ResponseView | None = None
        self.route = route
        self.service = service
        self.consumer: Consumer | None = None
        self.credential: dict | None = None
        self.authenticated_groups: list[str] | None = None
        # Consumer groups a credential claims (openid-connect): their plugins apply.
        self.consumer_groups: tuple[str, ...] | None = None
        # Keyed by name, or by a plugin's private object() to keep its state apart.
        self.shared: dict[Any, Any] = {}
        self.request_id = request_id
        self.started_at = time.time()
        self.exit_status = 0
        self.exit_body: bytes | None = None
        self.exit_headers: dict[str, str] | None = None
        self.latencies = {"request": 0, "proxy": 0, "kong": 0}
        self._plugin_state: dict[int, Any] | None = None
        self._body_reader: Callable[[], Awaitable[bytes]] | None = None
        # The body when it is whole already, else None (see body_now).
        self._body_now: Callable[[], bytes | None] | None = None
        self.ai: dict[str, Any] | None = None
        self.log_fields: dict[str, Any] | None = None
        self.bytes_in = 0
        self.tries = 0
        # The plugins running for this request: the route's, or a consumer's
        # chain that replaced it once the consumer was known.
        self.chain: PluginChain | None = None
        # (scheme, host, port, tls_verify) when a plugin sends the request to
        # another target than the service's (see set_upstream).
        self.upstream_target: tuple[str, str, int, bool] | None = None
        self.buffered = False  # enable_buffering(): the answer is held whole
        # enable_failover(): who picks the next target when an attempt fails.
        self.failover_handler: FailoverHandler | None = None
        self.failover_statuses: bytes | None = None
        # set_timeouts(): (connect, write, read) in ms for this request.
        self.timeouts: tuple[float, float, float] | None = None
        # Response headers of decisions taken before the answer ([name, value,
        # ...] bytes): the fast decisions before the runner got the request,
        # a gate's reservation (add_decided_headers). Added to the answer as
        # their plugins' header filters would have (PluginRunner.header_filter),
        # replacing the upstream's whose lower-case names start with one of
        # ``decided_replace``.
        self.decided_headers: list[bytes] | None = None
        self.decided_replace: tuple[bytes, ...] = ()
        # Where the route's auth plugins read gateway credentials from (lower-
        # case header names, body fields): never forwarded to a third party.
        self.credential_headers: frozenset[bytes] = frozenset()
        self.credential_fields: frozenset[str] = frozenset()
        # The client's connection (the core's), when the request came over one.
        self.connection: CoreClient | None = None
        # continue_body(): what writes the rest of a streamed answer.
        self.continuation: Callable[[Callable[[bytes], bool]], Awaitable[bool]] | None = None

    # -- identity -----------------------------------------------------------

    def authenticate(self, consumer: Consumer | None, credential: dict | None,
                     credential_identifier: str | None = None,
                     anonymous: bool = False) -> None:
        """Record who the caller is and tell the upstream, with Kong's headers."""
        self.consumer = consumer
        self.credential = credential
        set_identity_headers(self.request.headers, consumer, credential_identifier, anonymous)

    def note_trace(self, name: str, value: str | int | float | bool) -> None:
        """An attribute for this request's trace span (the opentelemetry
        plugin sets every noted one), e.g. ai-mcp-proxy's ``gen_ai.tool.name``."""
        self.shared.setdefault(TRACE_ATTRIBUTES, {})[name] = value

    def peer_certificate(self) -> bytes | None:
        """The client's TLS certificate (DER); None without one."""
        return None if self.connection is None else self.connection.peer_certificate()

    def peer_chain(self) -> list[bytes]:
        """The certificates (DER) the client sent after its own: its
        intermediate CAs, as it sent them."""
        tls_object = None if self.connection is None else self.connection.tls_object()
        return [] if tls_object is None else client_chain(tls_object)

    def note_credentials(self, headers: frozenset[bytes],
                         fields: frozenset[str] = frozenset()) -> None:
        """An auth plugin says where clients put credentials meant for the
        gateway, so that a plugin sending the request elsewhere (ai-proxy, to
        a provider) drops them."""
        self.credential_headers = self.credential_headers | headers
        if fields:
            self.credential_fields = self.credential_fields | fields

    def add_decided_headers(self, items: list[bytes], replace: tuple[bytes, ...],
                            instead_of: list[bytes] | None = None) -> None:
        """Headers the answer gets, whatever it is, from a decision taken
        before it (PERF: no header filter phase for the plugin): they
        replace the upstream's whose lower-case names start with one of
        ``replace``, and the same decision's earlier ones, ``instead_of``."""
        decided = self.decided_headers
        if decided is None:
            self.decided_headers = items
        elif instead_of is not None:
            # A decision's headers are one run in the list: drop its old one.
            width = len(instead_of)
            for start in range(0, len(decided) - width + 1, 2):
                if decided[start:start + width] == instead_of:
                    decided = decided[:start] + decided[start + width:]
                    break
            self.decided_headers = decided + items
        else:
            self.decided_headers = decided + items
        if instead_of is None:
            self.decided_replace += replace

    @property
    def consumer_name(self) -> str:
        return "" if self.consumer is None else consumer_label(self.consumer)

    def set_upstream(self, url: str, *, tls_verify: bool = True,
                     host_header: str | None = None) -> None:
        """Send this request to ``url`` (scheme, host, port, path and query)
        instead of the service's target, as ai-proxy does for a provider."""
        scheme, hostname, port, path, query, host = _upstream_parts(url)
        self.upstream_target = (scheme, hostname, port, tls_verify)
        view = self.request
        view.path = path
        view.query_string = query
        view._query = None
        # PERF: the upstream Host is kept aside, not added to the header list
        # (where the runner would look for it again and take it out); a Host
        # header an earlier plugin set gives way to it.
        if view.headers.host_added:
            view.headers.remove("Host")
            view.headers.host_added = False
        view.upstream_host = host_header or host

    def enable_buffering(self) -> None:
        """Hold the upstream's answer whole before any of it goes out (Kong's
        ``kong.service.request.enable_buffering``): the response filters then
        see the whole body at once, with ``response.buffered`` set, and may
        still change its status."""
        self.buffered = True

    def enable_failover(self, handler: FailoverHandler, statuses: bytes) -> None:
        """Until the answer's head goes out, a failed attempt (refused, reset,
        timed out, not HTTP, or answered with a status whose byte in the
        600-byte ``statuses`` is non-zero) is handed to ``handler(ctx,
        failure, status, headers, sent)``: a ``fastgw._core.gateway.UpstreamFailure``,
        the answer's status and headers (0 and None when there is no answer),
        and whether the request went out (not after a connect failure). The handler returns True once it has pointed the request at
        another target (``set_upstream`` and the rest, as in access); False
        lets the failure reach the client."""
        if len(statuses) != 600:
            raise ValueError("statuses must be 600 bytes, one per status code")
        self.failover_handler = handler
        self.failover_statuses = statuses

    def continue_body(self,
                      continuation: Callable[[Callable[[bytes], bool]], Awaitable[bool]]) -> None:
        """From a body filter, when the upstream's answer ends early or badly
        (the last call, ``eof``; ``response.aborted`` when it broke off): the
        client's response is not ended but continued by ``await
        continuation(write)``, a task, which writes the rest with
        ``write(data)`` (False once the client has gone; the task is then
        cancelled) and returns True when the answer is whole, False when it
        is not (the connection is then closed without a clean end, as when an
        upstream breaks off). The log phase runs after it. Only a streamed answer (its head sent, no length) can be
        continued; the filter's own tail, if any, goes out first."""
        self.continuation = continuation

    def set_timeouts(self, connect_ms: float, write_ms: float, read_ms: float) -> None:
        """This request's upstream timeouts, instead of the service's."""
        self.timeouts = (connect_ms, write_ms, read_ms)

    # -- answering ----------------------------------------------------------

    def exit(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        """Answer the client now; later access handlers do not run.

        ``body`` may be a dict or list (sent as JSON), a str or bytes, or None.
        A ``{"message": ...}`` dict is Kong's error shape.
        """
        self.exit_status = status
        hdrs = dict(headers or {})
        if body is None:
            data = b""
        elif isinstance(body, (dict, list)):
            data = orjson.dumps(body)
            hdrs.setdefault("Content-Type", "application/json; charset=utf-8")
        elif isinstance(body, str):
            data = body.encode()
            hdrs.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            data = bytes(body)
        self.exit_body = data
        self.exit_headers = hdrs

    @property
    def exited(self) -> bool:
        return self.exit_status != 0

    # -- per-plugin state -----------------------------------------------------

    def plugin_state(self, plugin: object, factory=dict) -> Any:
        if self._plugin_state is None:
            self._plugin_state = {}
        key = id(plugin)
        state = self._plugin_state.get(key)
        if state is None:
            state = self._plugin_state[key] = factory()
        return state

    # -- body -----------------------------------------------------------------

    def body_now(self) -> bytes | None:
        """The whole request body when all of it is here already (as
        ``read_body`` gives it, without waiting); None when more is to come.
        PERF: a plugin that can read the body now needs no task."""
        if self.request.body is not None:
            return self.request.body
        if self._body_reader is None:
            self.request.body = b""
            return b""
        if self._body_now is None:
            return None
        self.request.body = self._body_now()
        return self.request.body

    async def read_body(self) -> bytes:
        """The whole request body (buffered; bounded by the gateway's
        ``max_body_bytes``). The body still goes upstream unless replaced."""
        if self.request.body is not None:
            return self.request.body
        if self._body_reader is None:
            self.request.body = b""
            return b""
        self.request.body = await self._body_reader()
        return self.request.body

    # -- logging --------------------------------------------------------------

    def logged_request_headers(self) -> dict[str, Any]:
        """The request's headers as Kong's log serializer shows them."""
        headers = self.request.headers.as_dict()
        if self.request.host is not None:
            headers.setdefault("host", self.request.host)
        return headers

    def log_entry(self) -> dict[str, Any]:
        """One request in Kong's log serializer shape."""
        req = self.request
        resp = self.response
        route = self.route
        service = self.service
        entry: dict[str, Any] = {
            "request": {
                "method": req.method,
                "uri": req.raw_path + (f"?{req.raw_query}" if req.raw_query else ""),
                "url": f"{req.scheme}://{req.host or ''}{req.raw_path}"
                       + (f"?{req.raw_query}" if req.raw_query else ""),
                "querystring": kong_args(req.raw_query),
                "headers": self.logged_request_headers(),
                "size": self.bytes_in,
                "id": self.request_id,
            },
            "upstream_uri": req.upstream_url,
            "response": {
                "status": resp.status if resp else 0,
                "headers": resp.headers.as_dict() if resp else {},
                "size": resp.size if resp else 0,
            },
            "latencies": dict(self.latencies),
            "route": {"name": route.name, "id": route.id, "paths": list(route.paths)},
            "service": ({"name": service.name, "id": service.id, "host": service.host,
                         "port": service.port, "protocol": service.protocol}
                        if service is not None else None),
            "client_ip": req.client_ip,
            "started_at": int(self.started_at * 1000),
            "tries": self.tries,
        }
        if self.consumer is not None:
            c = self.consumer
            entry["consumer"] = {"id": c.id, "username": c.username, "custom_id": c.custom_id}
        if self.authenticated_groups:
            entry["authenticated_groups"] = list(self.authenticated_groups)
        if self.ai is not None:
            entry["ai"] = self.ai
        if self.log_fields:
            entry.update(self.log_fields)
        return entry


def make_context(method: str = "GET", url: str = "/", headers: dict | list | None = None,
                 *, route: Route | None = None, service: Service | None = None,
                 client_ip: str = "127.0.0.1", scheme: str = "http", port: int = 8000,
                 body: bytes | None = None, request_id: str = "test-request") -> RequestContext:
    """A context for unit-testing a plugin without sockets."""
    items: list[bytes] = []
    pairs = headers.items() if isinstance(headers, dict) else (headers or [])
    host = None
    for name, value in pairs:
        if name.lower() == "host":
            host = value
            continue
        items.append(name.encode("latin-1"))
        items.append(str(value).encode("latin-1"))
    route = route or Route(name="test-route", service=None, paths=("/",))
    view = RequestView(method, url, url, items, host, client_ip, scheme, port)
    # As in the gateway: a body without Content-Length came chunked.
    view.chunked = body is not None and not any(
        items[i].lower() == b"content-length" for i in range(0, len(items), 2))
    ctx = RequestContext(view, route, service, request_id)
    if body is not None:
        async def reader() -> bytes:
            return body

        ctx._body_reader = reader
    return ctx


def set_response(ctx: RequestContext, status: int, headers: dict | list | None = None,
                 source: str = "service") -> ResponseView:
    """Give a test context a response, as the gateway does before header_filter."""
    items: list[bytes] = []
    pairs = headers.items() if isinstance(headers, dict) else (headers or [])
    for name, value in pairs:
        items.append(name.encode("latin-1"))
        items.append(str(value).encode("latin-1"))
    ctx.response = ResponseView(status, items, source)
    return ctx.response
