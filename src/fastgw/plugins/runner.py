"""Runs plugin phases for the compiled core, on the slow path only.

The core calls ``access(client, req)`` for a route whose ``RouteRuntime`` has a
plugin chain, then ``header_filter``/``body_filter`` for the response when the
request's ``filters`` bits say a plugin wants them, and ``log`` once the
response is written. A synchronous access phase finishes inside the core's
callback (no task, no extra write); an ``async`` one continues in a task and
hands the request back with ``client.resume(req)``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl

from fastgw._core.wire import drop_prefixed
from fastgw.plugins.base import FRAMING_HEADERS
from fastgw.plugins.chain import PluginChain
from fastgw.plugins.context import HeaderList, RequestContext, RequestView, ResponseView
from fastgw.plugins.core_api import CoreClient, CoreGateway, CoreRequest
from fastgw.plugins.fast import Handover

log = logging.getLogger("fastgw.plugins")

UNEXPECTED = {"message": "An unexpected error occurred"}


class PluginRunner:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.errors = 0
        # The Cython Gateway (no stubs), set by the Gateway's owner once both exist.
        self.gateway: CoreGateway | None = None
        self._tls: dict[bool, ssl.SSLContext] = {}

    # -- access ---------------------------------------------------------------

    def access(self, client: CoreClient, req: CoreRequest, handover: Handover | None = None) -> bool:
        """Run the access phase (from where the fast decisions handed the
        request over, if they did). True: the core proceeds with it now."""
        rt = req.rt
        chain: PluginChain = rt.plugins
        ctx = self.context(client, req, rt)
        req.ctx = ctx
        ctx.chain = chain
        req.filters = chain.filters
        start = 0
        if handover is not None:
            start = handover.index
            decided = handover.request
            if decided.credential_headers:
                ctx.note_credentials(decided.credential_headers)
            if decided.consumer is not None or decided.credential is not None:
                # The identity headers are on the request already.
                ctx.consumer = decided.consumer
                ctx.credential = decided.credential
            if decided.lines:
                ctx.decided_headers = [
                    part for line in decided.lines.split(b"\r\n") if line
                    for part in line.split(b": ", 1)]
        return self.run_access(client, req, ctx, chain, chain.access, start)

    def run_access(self, client: CoreClient, req: CoreRequest, ctx: RequestContext, chain: PluginChain,
                   plugins: tuple, start: int) -> bool:
        """Run ``plugins[start:]`` in this callback until one returns an
        awaitable; the rest then continues in a task (``resume_access``)."""
        for index in range(start, len(plugins)):
            plugin = plugins[index]
            try:
                result = plugin.access(ctx)
            except Exception:
                self.failed(plugin, "access")
                ctx.exit(500, UNEXPECTED)
                break
            if result is not None and inspect.isawaitable(result):
                task = self.loop.create_task(
                    self.resume_access(client, req, ctx, chain, plugins, index, result))
                task.add_done_callback(_report_crash)
                return False
            if ctx.exit_status:
                break
            switched = self.switch_chain(req, ctx, chain, plugin)
            if switched is not None:
                return self.run_access(client, req, ctx, *switched, 0)
        return self.finish_access(client, req, ctx)

    async def resume_access(self, client: CoreClient, req: CoreRequest, ctx: RequestContext, chain: PluginChain,
                            plugins: tuple, index: int, pending) -> None:
        try:
            await pending
        except Exception:
            self.failed(plugins[index], "access")
            ctx.exit(500, UNEXPECTED)
        if ctx.exit_status:
            self.finish_access(client, req, ctx)
            return
        switched = self.switch_chain(req, ctx, chain, plugins[index])
        if switched is not None:
            chain, plugins = switched
            index = -1
        if self.run_access(client, req, ctx, chain, plugins, index + 1):
            client.resume(req)

    def switch_chain(self, req: CoreRequest, ctx: RequestContext, chain: PluginChain,
                     current) -> tuple[PluginChain, tuple] | None:
        """After authentication: consumer-scoped configs replace the rest of
        the chain (Kong's precedence). Returns the consumer's chain and the
        plugins still to run, or None when nothing changes."""
        consumer = ctx.consumer
        if ctx.consumer_groups and chain.by_groups is not None:
            personal = chain.by_groups.chain(consumer, ctx.consumer_groups)
        elif consumer is None or chain.by_consumer is None:
            return None
        else:
            personal = chain.for_consumer(consumer.id)
        if personal is chain:
            return None
        req.filters = personal.filters
        ctx.chain = personal
        return personal, tuple(p for p in personal.access if p.PRIORITY < current.PRIORITY)

    def finish_access(self, client: CoreClient, req: CoreRequest, ctx: RequestContext) -> bool:
        if ctx.consumer is not None:
            req.consumer_key = ctx.consumer_name
        if ctx.exit_status:
            self.respond_exit(client, req, ctx)
            return False
        self.apply_request(req, ctx)
        return True

    # -- request changes ------------------------------------------------------

    def apply_request(self, req: CoreRequest, ctx: RequestContext) -> None:
        view = ctx.request
        # Headers were changed in place (HeaderList wraps req.headers); a Host
        # header set by a plugin becomes the upstream Host.
        if view.headers.host_added:
            host = view.headers.get("host")
            if host is not None:
                view.headers.remove("host")
                req.host_override = host.encode("latin-1")
        elif view.upstream_host is not None:
            req.host_override = view.upstream_host.encode("latin-1")
        method = view.method.encode("latin-1")
        if method != req.method:
            req.method = method
        url = view.upstream_url.encode("latin-1")
        if url != req.upstream_url:
            req.upstream_url = url
        if ctx.buffered:
            req.buffer_response = True
        if ctx.failover_statuses is not None:
            req.failover_statuses = ctx.failover_statuses
        if ctx.timeouts is not None:
            req.connect_timeout_ms, req.write_timeout_ms, req.read_timeout_ms = ctx.timeouts
        if ctx.upstream_target is not None:
            scheme, host, port, verify = ctx.upstream_target
            tls = self.tls_context(verify) if scheme == "https" else None
            assert self.gateway is not None  # set as soon as the gateway exists
            req.pool = self.gateway.pool_for(host, port, tls, host if tls else None,
                                             ("plugin", verify))
        if view.body_replaced:
            body = view.body or b""
            view.headers.remove("content-length")
            view.headers.add("Content-Length", str(len(body)))
            req.body_pending = [body]
            req.body_pending_bytes = len(body)
            req.content_length = len(body)
            req.chunked = False

    def failover(self, req: CoreRequest, failure: int, status: int,
                 headers: list[bytes] | None) -> bool:
        """An attempt failed before the answer's head went out and a plugin
        fails over (ctx.enable_failover): True once it has pointed the request
        at another target, which the core then sends it to."""
        ctx: RequestContext = req.ctx
        handler = ctx.failover_handler
        if handler is None:
            return False
        # Whether this attempt's request went out (a connect failure: no).
        sent = req.t_upstream_sent > 0
        try:
            moved = handler(ctx, failure, status,
                            HeaderList(headers) if headers is not None else None, sent)
        except Exception:
            log.exception("failover handler failed")
            self.errors += 1
            return False
        if not moved:
            return False
        self.apply_request(req, ctx)
        return True

    def tls_context(self, verify: bool) -> ssl.SSLContext:
        ctx = self._tls.get(verify)
        if ctx is None:
            ctx = ssl.create_default_context()
            if not verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._tls[verify] = ctx
        return ctx

    def context(self, client: CoreClient, req: CoreRequest, rt) -> RequestContext:
        view = RequestView(
            req.method.decode("latin-1"),
            req.url.decode("latin-1"),
            req.upstream_url.decode("latin-1"),
            req.headers,
            req.host.decode("latin-1") if req.host is not None else None,
            client.peer_address,
            client.scheme_name,
            client.local_port_number,
            "1.1" if req.http_minor == 1 else "1.0",
        )
        view.chunked = req.chunked
        ctx = RequestContext(view, rt.route, rt.service, req.request_id.decode("latin-1"))
        ctx.connection = client

        async def read_body() -> bytes:
            if not req.complete:
                # A client that sent Expect: 100-continue waits for this.
                client.send_continue(req)
                waiter = self.loop.create_future()
                req.body_waiter = waiter
                await waiter
            return b"".join(req.body_pending)

        def body_now() -> bytes | None:
            return b"".join(req.body_pending) if req.complete else None

        ctx._body_reader = read_body
        ctx._body_now = body_now
        return ctx

    # -- answers --------------------------------------------------------------

    def respond_exit(self, client: CoreClient, req: CoreRequest, ctx: RequestContext) -> None:
        """A plugin's own answer (ctx.exit)."""
        headers: list[bytes] = []
        for name, value in (ctx.exit_headers or {}).items():
            if name.lower() in FRAMING_HEADERS:
                continue
            headers.append(name.encode("latin-1"))
            headers.append(str(value).encode("latin-1"))
        self.answer(client, req, ctx.exit_status, headers, ctx.exit_body or b"", "exit", False)

    def respond_error(self, client: CoreClient, req: CoreRequest, status: int, body: bytes, close: bool) -> None:
        """An error the gateway answers itself (no route target, upstream
        failure)."""
        headers = [b"Content-Type", b"application/json; charset=utf-8"]
        self.answer(client, req, status, headers, body, "gateway", close)

    def answer(self, client: CoreClient, req: CoreRequest, status: int, headers: list, body: bytes, source: str,
               close: bool) -> None:
        """An answer made in the gateway, passed through the route's response
        filters like one from the upstream."""
        if req.filters & 1:
            status = self.header_filter(req, status, headers, source=source)
        if req.filters & 2:
            body = self.body_filter(req, body, False) + self.body_filter(req, b"", True)
        client.respond_exit(req, status, headers, body, close)

    # -- response phases ------------------------------------------------------

    def header_filter(self, req: CoreRequest, status: int, headers: list, source: str = "service") -> int:
        ctx: RequestContext = req.ctx
        if ctx.decided_headers:
            if ctx.decided_replace:
                drop_prefixed(headers, ctx.decided_replace)
            # The decided plugins come first in priority: so do their headers.
            headers += ctx.decided_headers
        # The view wraps the core's header list: changes go to the client.
        ctx.response = ResponseView(status, headers, source)
        for plugin in _chain(req).header_filter:
            try:
                plugin.header_filter(ctx)
            except Exception:
                self.failed(plugin, "header_filter")
        return ctx.response.status

    def body_filter(self, req: CoreRequest, chunk: bytes, eof: bool) -> bytes:
        ctx: RequestContext = req.ctx
        for plugin in _chain(req).body_filter:
            try:
                chunk = plugin.body_filter(ctx, chunk, eof)
            except Exception:
                self.failed(plugin, "body_filter")
        if ctx.response is not None:
            ctx.response.size += len(chunk)
        if ctx.continuation is not None and eof:
            req.continuation = ctx.continuation  # the core runs it (continue_body)
            ctx.continuation = None
        return chunk

    def buffered_answer(self, req: CoreRequest, status: int, headers: list,
                        body: bytes) -> tuple[int, bytes]:
        """A whole upstream answer held before its head went out (a plugin
        asked for buffering): header filters, then the body filters with all
        of it at once. Their status stands, set in either phase; the core adds
        the new body's Content-Length."""
        ctx: RequestContext = req.ctx
        if req.filters & 1:
            status = self.header_filter(req, status, headers)
            assert ctx.response is not None  # the header phase made it
            ctx.response.buffered = True
        if req.filters & 2:
            body = self.body_filter(req, body, True)
        if ctx.response is not None:
            status = ctx.response.status
        HeaderList(headers).remove("content-length")  # the core sets the new body's
        return status, body

    def body_abort(self, req: CoreRequest) -> bytes:
        """The upstream broke off the body: the filters' last word."""
        ctx: RequestContext = req.ctx
        if ctx.response is not None:
            ctx.response.aborted = True
        return self.body_filter(req, b"", True)

    def log(self, req: CoreRequest) -> None:
        ctx: RequestContext = req.ctx
        if ctx is None:
            return
        t_start = req.t_start
        sent = req.t_upstream_sent
        first = req.t_first_byte
        from fastgw._core.wire import monotonic_ms

        now = monotonic_ms()
        ctx.latencies = {
            "request": int(now - t_start),
            "proxy": int(first - sent) if sent and first else -1,
            "kong": int(sent - t_start) if sent else int(now - t_start),
        }
        ctx.bytes_in = req.header_bytes + req.body_received
        ctx.tries = req.attempts
        if ctx.response is None:
            # Answered by the gateway itself (no route target, upstream error).
            ctx.response = ResponseView(req.status, [], "gateway")
        elif ctx.response.status != req.status and req.status:
            ctx.response.status = req.status
        ctx.response.size = req.bytes_out
        for plugin in _chain(req).log:
            try:
                plugin.log(ctx)
            except Exception:
                self.failed(plugin, "log")
        # The context and the request refer to each other: let go here.
        req.ctx = None

    def failed(self, plugin, phase: str) -> None:
        self.errors += 1
        log.exception("plugin %s failed in %s", plugin.name, phase)


def _chain(req: CoreRequest) -> PluginChain:
    chain = req.ctx.chain
    return chain if chain is not None else req.rt.plugins


def _report_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("plugin task crashed", exc_info=task.exception())
