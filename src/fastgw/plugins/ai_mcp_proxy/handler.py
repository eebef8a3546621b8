"""ai-mcp-proxy. conversion-listener: the route is an MCP server over
streamable HTTP whose tools are its service's REST endpoints. listener: the
same, with the tools of every conversion-only plugin tagged ``server.tag``,
each calling its own service (a conversion-only route stays a REST route),
and those of every MCP server an upstream-server plugin so tagged is on,
named ``<service>__<tool>`` so that they cannot clash (``fastgw.mcp.remote``
keeps one session per caller on each). passthrough-listener: the service is
an MCP server; every message is checked before it goes on, a tool call the
caller's ACL refuses never does, and a tools/list answer (JSON or SSE) comes
back without the tools it may not call.

Every POST carries one JSON-RPC message, checked first (a malformed one
never reaches the service): ``initialize`` (the handshake era: 2025-03-26,
2025-06-18 and 2025-11-25), ``server/discover`` (the single-exchange era,
2026-07-28, whose envelope ``fastgw.mcp.era`` checks), ``ping``, ``tools/list`` (only the tools the
caller's ACL allows) and ``tools/call`` (the REST call its ``parameters``
describe, or the MCP server's own tool, within ``server.timeout``) are
answered as JSON; notifications and responses are accepted with 202 (a
cancellation goes on to the MCP server running the call); any other method
is -32601. GET (a server stream) answers 405, as the transport allows, and
so does DELETE (ending a session) unless MCP servers are behind the listener:
then it ends the caller's sessions on them.

A tool the caller may not call is refused as unknown (-32602): the ACL hides
it from ``tools/list`` too, so its existence is not disclosed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import orjson

import fastgw
from fastgw.ai.metrics import record_mcp
from fastgw.mcp.acl import ACL, permits
from fastgw.mcp.era import (
    HANDSHAKE_VERSIONS,
    MODERN_VERSIONS,
    SERVER_INFO_KEY,
    check_envelope,
    complete,
    error_status,
    is_modern,
)
from fastgw.mcp.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    JSONRPCError,
    Message,
    error,
    parse,
    result,
)
from fastgw.mcp.remote import SEPARATOR, RemoteError, RemoteServer
from fastgw.mcp.tools import RestTool, tool_result
from fastgw.outbound import EXCHANGE_ERRORS, pooled_exchange
from fastgw.plugins.base import Plugin
from fastgw.plugins.context import RequestContext
from fastgw.plugins.state import ConfigState

log = logging.getLogger("fastgw.plugins.ai_mcp_proxy")

# The handshake-era versions served; a client asking another gets the latest.
PROTOCOL_VERSIONS = HANDSHAKE_VERSIONS
# Request headers that belong to this hop or to MCP, never sent to a tool's service.
_NOT_FORWARDED = frozenset((b"host", b"content-length", b"content-type", b"accept",
                            b"connection", b"keep-alive", b"transfer-encoding", b"te",
                            b"upgrade", b"mcp-session-id", b"mcp-protocol-version",
                            b"last-event-id", b"accept-encoding"))
_JSON = {"Content-Type": "application/json"}


class AIMCPProxy(Plugin):
    name = "ai-mcp-proxy"
    PRIORITY = 800  # after authentication and acl, as Kong's

    __slots__ = ("tools", "bases", "default_acl", "groups", "identifier", "timeout",
                 "forward_headers", "max_body", "log_statistics", "log_audits", "log_payloads",
                 "passthrough",
                 "serves", "restricted", "server", "claim_field", "servers")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        mode = config["mode"]
        base = self._service_base(state, scope)
        # Each tool with the service it calls: the route's own, or for a
        # listener, those of the conversion-only plugins its server.tag selects.
        self.tools: dict[str, RestTool] = {}
        self.bases: dict[str, tuple[str, str] | None] = {}
        sources = [(config, base)] if mode != "listener" else self._tagged(
            state, config["server"]["tag"])
        for source, source_base in sources:
            for tool in map(RestTool.of, source["tools"] or ()):
                if tool.name in self.tools:
                    log.error("ai-mcp-proxy: two tools named '%s' under server.tag '%s'; the "
                              "first is served", tool.name, config["server"]["tag"])
                    continue
                self.tools[tool.name] = tool
                self.bases[tool.name] = source_base
        # A listener's MCP servers (upstream-server plugins under its tag), by name.
        self.servers: dict[str, RemoteServer] = {} if mode != "listener" else \
            self._remote_servers(state, config["server"]["tag"])
        self.serves = mode in ("conversion-listener", "listener")
        defaults = [entry for entry in config["default_acl"] or () if entry["scope"] == "tools"]
        self.default_acl = ACL.of(defaults[0]) if defaults else None
        self.groups = config["include_consumer_groups"]
        self.identifier = {"consumer_id": "id"}.get(config["consumer_identifier"],
                                                     config["consumer_identifier"])
        self.timeout = config["server"]["timeout"] / 1000
        self.forward_headers = config["server"]["forward_client_headers"]
        self.max_body = config["max_request_body_size"]
        self.log_statistics = config["logging"]["log_statistics"]
        self.log_payloads = config["logging"]["log_payloads"]
        self.log_audits = config["logging"]["log_audits"]
        self.passthrough = mode == "passthrough-listener"
        # ACLs on an access token's claim (its values are the subjects).
        self.claim_field = config["access_token_claim_field"] \
            if config["acl_attribute_type"] == "oauth_access_token" else None
        # The metrics' "server" label: the route (or service) the plugin is on.
        self.server = getattr(scope, "route", None) or getattr(scope, "service", None) or "*"
        # Whether any ACL can hide a tool (else listings pass untouched).
        self.restricted = self.default_acl is not None or any(
            tool.acl is not None for tool in self.tools.values())

    @classmethod
    def _tagged(cls, state: ConfigState, tag: str) -> list[tuple[dict, tuple[str, str] | None]]:
        """The conversion-only plugins tagged ``tag``, with their services."""
        return [(entry.config, cls._service_base(state, entry)) for entry in state.config.plugins
                if entry.name == "ai-mcp-proxy" and entry.enabled and tag in entry.tags
                and entry.config["mode"] == "conversion-only"]

    @classmethod
    def _remote_servers(cls, state: ConfigState, tag: str) -> dict[str, RemoteServer]:
        """The MCP servers of the upstream-server plugins tagged ``tag``, named
        after their services (in the characters a tool name may have)."""
        servers: dict[str, RemoteServer] = {}
        for entry in state.config.plugins:
            if entry.name != "ai-mcp-proxy" or not entry.enabled or tag not in entry.tags \
                    or entry.config["mode"] != "upstream-server":
                continue
            service, base = cls._service(state, entry), cls._service_base(state, entry)
            if service is None or base is None:
                log.error("ai-mcp-proxy: an upstream-server plugin under server.tag '%s' is on "
                          "no service (the MCP server): left out", tag)
                continue
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", service.name)
            if name in servers:
                log.error("ai-mcp-proxy: two upstream-server plugins on service '%s' under "
                          "server.tag '%s'; the first is served", name, tag)
                continue
            config = entry.config
            servers[name] = RemoteServer(
                name, base[0] + (base[1] or "/"), config["server"]["timeout"] / 1000,
                config["tools_cache_ttl_seconds"],
                {tool["name"]: ACL.of(tool["acl"]) for tool in config["tools"] or ()})
        return servers

    @staticmethod
    def _service(state: ConfigState, scope: Any) -> Any:
        """The service of the plugin's route (or the one it is on)."""
        route_name = getattr(scope, "route", None)
        route = next((r for r in state.config.routes if r.name == route_name), None)
        service_name = getattr(scope, "service", None) or (route.service if route else None)
        return next((s for s in state.config.services if s.name == service_name), None)

    @classmethod
    def _service_base(cls, state: ConfigState, scope: Any) -> tuple[str, str] | None:
        """(scheme://host:port, path) of the route's service: where tools call."""
        service = cls._service(state, scope)
        if service is None:
            return None
        host, port = service.host, service.port
        upstream = next((u for u in state.config.upstreams if u.name == host), None)
        if upstream is not None and upstream.targets:
            # An upstream entity: tool calls go to its first target (no balancing).
            host, port = upstream.targets[0].host, upstream.targets[0].port
        return f"{service.protocol}://{host}:{port}", (service.path or "").rstrip("/")

    def access(self, ctx: RequestContext) -> Awaitable[None] | None:
        method = ctx.request.method
        if self.passthrough:
            # The server's GET stream and DELETE (session end) carry no message.
            return self._guard(ctx) if method == "POST" else None
        if not self.serves:
            return None  # conversion-only, upstream-server: a listener serves their tools
        if method == "DELETE" and self.servers:
            return self._end_sessions(ctx)
        if method != "POST":
            ctx.exit(405, {"message": "MCP over streamable HTTP: POST one JSON-RPC message "
                           "(this server offers no GET stream and keeps no sessions)"},
                     {"Allow": "POST"})
            return None
        return self._serve(ctx)

    async def _read(self, ctx: RequestContext) -> Message | None:
        """The POST's message, checked; None once the client has been
        answered (a malformed message: 400, as the transport says)."""
        body = await ctx.read_body()
        if self.max_body and len(body) > self.max_body:
            ctx.exit(413, error(None, INVALID_REQUEST, f"Invalid Request: message larger "
                                f"than {self.max_body} bytes"), _JSON)
            return None
        if self.log_payloads:
            ctx.plugin_state(self)["payload"] = _payload(body)
        try:
            message = parse(body)
        except JSONRPCError as exc:
            self._exit(ctx, 400, exc.answer())
            return None
        # OpenTelemetry's MCP attributes, for the opentelemetry plugin's span.
        if message.method is not None:
            ctx.note_trace("mcp.method.name", message.method)
            name = message.params.get("name")
            if message.method == "tools/call" and isinstance(name, str):
                ctx.note_trace("gen_ai.tool.name", name)
        return message

    async def _serve(self, ctx: RequestContext) -> None:
        message = await self._read(ctx)
        if message is None:
            return
        if message.method is None or not message.is_request:
            if message.method == "notifications/cancelled" and self.servers:
                caller, forwarded = self._caller(ctx), self._forwarded(ctx)
                await asyncio.gather(*(server.cancel(caller, forwarded, message.params)
                                       for server in self.servers.values()))
            self._exit(ctx, 202)  # a notification or a response: nothing to answer
            return
        headers = dict(_JSON)
        modern = is_modern(message)
        if not modern and message.method == "initialize":
            headers["Mcp-Session-Id"] = uuid.uuid4().hex
        try:
            if modern:
                check_envelope(message, ctx.request.headers)
            answer = await self._answer(ctx, message)
        except JSONRPCError as exc:
            answer = exc.answer()
        if not modern:
            self._exit(ctx, 200, answer, headers)  # the handshake era: errors too are a 200
        elif "error" in answer:
            self._exit(ctx, error_status(answer["error"].get("code")), answer, headers)
        else:
            complete(answer["result"], message.method in ("tools/list", "server/discover"))
            self._exit(ctx, 200, answer, headers)

    def _exit(self, ctx: RequestContext, status: int, answer: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None) -> None:
        """The gateway's own answer, logged with the message under log_payloads."""
        payload = ctx.plugin_state(self).pop("payload", None)
        if payload is not None:
            self._log(ctx, "payloads", {"request": payload, "response": None if answer is None
                                        else _payload(orjson.dumps(answer))})
        ctx.exit(status, answer, headers or (_JSON if answer is not None else None))

    async def _guard(self, ctx: RequestContext) -> None:
        """passthrough-listener: the message goes on to the MCP server only
        once checked, a tool call only when the caller may call the tool; a
        tools/list answer comes back with only the tools the caller may call."""
        message = await self._read(ctx)
        if message is None or not message.is_request:
            return
        if message.method == "tools/call":
            name = message.params.get("name")
            # A refusal's status: 200 in the handshake era, the error's own in the other.
            refused = error_status(INVALID_PARAMS) if is_modern(message) else 200
            if not isinstance(name, str):
                self._exit(ctx, refused, error(message.id, INVALID_PARAMS, "Invalid params: "
                                               "tools/call needs a tool name"))
                return
            if not self._allowed(ctx, name):
                self._exit(ctx, refused, error(message.id, INVALID_PARAMS,
                                               f"Unknown tool: {name}"))
                return
            ctx.plugin_state(self)["tool"] = (name, time.monotonic())  # counted in log()
        elif message.method == "tools/list" and self.restricted:
            ctx.plugin_state(self)["listing"] = self._subjects(ctx)

    def header_filter(self, ctx: RequestContext) -> None:
        state = ctx.plugin_state(self)
        if "listing" in state:
            assert ctx.response is not None
            # The listing is edited whole: the gateway re-frames its length.
            ctx.response.headers.remove("content-length")
            state["buffer"] = []
        if "payload" in state:
            state["answered"] = bytearray()  # passthrough under log_payloads: what the client gets

    def body_filter(self, ctx: RequestContext, chunk: bytes, eof: bool) -> bytes:
        state = ctx.plugin_state(self)
        buffer = state.get("buffer")
        if buffer is not None:
            buffer.append(chunk)
            if not eof:
                return b""
            assert ctx.response is not None
            body = b"".join(buffer)
            content_type = (ctx.response.headers.get("content-type") or "").lower()
            keep = self._listing_filter(state["listing"])
            chunk = filter_event_stream(body, keep) \
                if content_type.startswith("text/event-stream") else filter_listing(body, keep)
        answered = state.get("answered")
        if answered is not None and len(answered) <= _PAYLOAD_LIMIT:
            answered += chunk
        return chunk

    def log(self, ctx: RequestContext) -> None:
        payload = ctx.plugin_state(self).pop("payload", None)
        if payload is not None:  # passthrough: the message and what the server answered
            answered = ctx.plugin_state(self).pop("answered", None)
            self._log(ctx, "payloads", {"request": payload, "response": None if answered is None
                                        else _payload(bytes(answered))})
        # passthrough: a call the server answered, counted once its answer is done.
        call = ctx.plugin_state(self).pop("tool", None)
        if call is not None:
            status = ctx.response.status if ctx.response is not None else 0
            record_mcp(self.server, call[0], "calls:ok" if 200 <= status < 300 else "calls:error",
                       (time.monotonic() - call[1]) * 1000)

    def _listing_filter(self, subjects: list[str]) -> Any:
        def keep(tool: Any) -> bool:
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                return True
            return self._permits_name(tool["name"], subjects)
        return keep

    def _allowed(self, ctx: RequestContext, name: str, server: RemoteServer | None = None,
                 tool: str | None = None) -> bool:
        """Whether the caller may call ``name`` (``tool`` of an MCP ``server``
        behind a listener), counted and audited."""
        acl = self._acl(name) if server is None else self._remote_acl(server, tool or name)
        allowed = permits(acl, self._subjects(ctx))
        label, tool_label = (self.server, name) if server is None else (server.name, tool or name)
        record_mcp(label, tool_label, "acl:allowed" if allowed else "acl:denied")
        if not allowed:
            record_mcp(label, tool_label, "calls:denied")
        if self.log_audits:
            self._log(ctx, "audits", {"tool": name, "allowed": allowed,
                                      "consumer": ctx.consumer_name or None})
        return allowed

    def _acl(self, name: str) -> ACL | None:
        tool = self.tools.get(name)
        return tool.acl if tool is not None and tool.acl is not None else self.default_acl

    def _remote_acl(self, server: RemoteServer, tool: str) -> ACL | None:
        acl = server.acls.get(tool)
        return acl if acl is not None else self.default_acl

    def _permits_name(self, name: str, subjects: list[str]) -> bool:
        return permits(self._acl(name), subjects)

    async def _answer(self, ctx: RequestContext, message: Message) -> dict[str, Any]:
        method, params = message.method, message.params
        if method == "initialize":
            asked = params.get("protocolVersion")
            return result(message.id, {
                "protocolVersion": asked if asked in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[-1],
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "fastgw", "version": fastgw.__version__}})
        if method == "server/discover":
            return result(message.id, {
                "supportedVersions": [*PROTOCOL_VERSIONS, *MODERN_VERSIONS],
                "capabilities": {"tools": {"listChanged": False}},
                "_meta": {SERVER_INFO_KEY: {"name": "fastgw", "version": fastgw.__version__}}})
        if method == "ping":
            return result(message.id, {})
        if method == "tools/list":
            subjects = self._subjects(ctx)
            tools = [tool.listing() for tool in self.tools.values()
                     if self._permits_name(tool.name, subjects)]
            if self.servers:
                tools += await self._remote_tools(ctx, subjects)
            return result(message.id, {"tools": tools})
        if method == "tools/call":
            remote = self._remote(params.get("name"))
            if remote is not None:
                return await self._call_remote(ctx, message, *remote)
            return await self._call(ctx, message)
        raise JSONRPCError(METHOD_NOT_FOUND, f"Method not found: {method}", message.id)

    def _remote(self, name: Any) -> tuple[RemoteServer, str] | None:
        """(server, its tool) a name a client sees stands for, if any: the
        longest server name that prefixes it (a REST tool of that name wins)."""
        if not self.servers or not isinstance(name, str) or name in self.tools:
            return None
        found = None
        for server in self.servers.values():
            prefix = server.name + SEPARATOR
            if name.startswith(prefix) and len(name) > len(prefix) and (
                    found is None or len(server.name) > len(found[0].name)):
                found = (server, name[len(prefix):])
        return found

    def _caller(self, ctx: RequestContext) -> tuple[str, str]:
        """Whose session on an MCP server this is: the client's session, and
        who it is (so that no two consumers ever share a server's session)."""
        consumer = ctx.consumer
        who = (consumer.id or consumer.username or "") if consumer is not None else \
            str(((ctx.credential or {}).get("claims") or {}).get("sub") or "")
        return ctx.request.headers.get("mcp-session-id") or "", who

    async def _remote_tools(self, ctx: RequestContext, subjects: list[str]
                            ) -> list[dict[str, Any]]:
        """The MCP servers' tools the caller may call, under the names it
        sees; a server that fails is left out (logged)."""
        caller, headers = self._caller(ctx), self._forwarded(ctx)
        servers = list(self.servers.values())
        listings = await asyncio.gather(*(server.tools(caller, headers) for server in servers),
                                        return_exceptions=True)
        tools: list[dict[str, Any]] = []
        for server, listing in zip(servers, listings, strict=True):
            if isinstance(listing, BaseException):
                if not isinstance(listing, RemoteError):
                    raise listing
                log.warning("ai-mcp-proxy: MCP server %s left out of tools/list: it %s",
                            server.name, listing)
                continue
            tools += [{**tool, "name": server.exposed(tool["name"])} for tool in listing
                      if permits(self._remote_acl(server, tool["name"]), subjects)]
        return tools

    async def _call_remote(self, ctx: RequestContext, message: Message, server: RemoteServer,
                           tool: str) -> dict[str, Any]:
        name = message.params["name"]
        if not self._allowed(ctx, name, server, tool):
            raise JSONRPCError(INVALID_PARAMS, f"Unknown tool: {name}", message.id)
        started = time.monotonic()
        try:
            answer = await server.request(self._caller(ctx), self._forwarded(ctx), "tools/call",
                                          {**message.params, "name": tool}, message.id)
        except RemoteError as exc:
            self._called(ctx, server.name, tool, None, started, True)
            raise JSONRPCError(INTERNAL_ERROR, f"MCP server '{server.name}' {exc}",
                               message.id) from exc
        failed = "error" in answer or bool(answer["result"].get("isError"))
        self._called(ctx, server.name, tool, 200, started, failed)
        answer["id"] = message.id
        return answer

    async def _end_sessions(self, ctx: RequestContext) -> None:
        """DELETE: the caller's sessions on the MCP servers end too."""
        caller = self._caller(ctx)
        if not caller[0]:
            ctx.exit(400, error(None, INVALID_REQUEST, "Bad Request: DELETE ends a session: "
                                "it needs the Mcp-Session-Id header"), _JSON)
            return
        headers = self._forwarded(ctx)
        await asyncio.gather(*(server.close(caller, headers) for server in self.servers.values()))
        ctx.exit(200)

    def _called(self, ctx: RequestContext, server: str, tool: str, status: int | None,
                started: float, failed: bool) -> None:
        """A tool call's metrics and statistics."""
        latency = (time.monotonic() - started) * 1000
        record_mcp(server, tool, "calls:error" if failed else "calls:ok", latency)
        if self.log_statistics:
            self._log(ctx, "statistics", {"tool": tool, "status": status,
                                          "latency_ms": round(latency, 3), "error": failed})

    def _subjects(self, ctx: RequestContext) -> list[str]:
        if self.claim_field is not None:
            claims = (ctx.credential or {}).get("claims") or {}
            value = claims.get(self.claim_field)
            if isinstance(value, str):
                return [value]
            return [item for item in value if isinstance(item, str)] \
                if isinstance(value, list) else []
        consumer = ctx.consumer
        if consumer is None:
            return []
        subjects = []
        name = getattr(consumer, self.identifier, None)
        if name:
            subjects.append(name)
        if self.groups:
            subjects += consumer.groups
        return subjects

    async def _call(self, ctx: RequestContext, message: Message) -> dict[str, Any]:
        name, arguments = message.params.get("name"), message.params.get("arguments") or {}
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise JSONRPCError(INVALID_PARAMS, "Invalid params: tools/call needs a name and "
                               "an arguments object", message.id)
        tool = self.tools.get(name)
        if tool is None or not self._allowed(ctx, name):
            raise JSONRPCError(INVALID_PARAMS, f"Unknown tool: {name}", message.id)
        base = self.bases.get(name)
        if base is None:
            raise JSONRPCError(INVALID_PARAMS, f"Unknown tool: {name} (no service to call)",
                               message.id)
        method, target, headers, body = tool.request(arguments, message.id)
        origin, service_path = base
        path = target if target.startswith("/") else f"{service_path}/{target}"
        started = time.monotonic()
        try:
            status, answer = await pooled_exchange(method, origin + path,
                                                   self._forwarded(ctx) + headers, body,
                                                   timeout=self.timeout)
        except EXCHANGE_ERRORS as exc:
            status, answer = 0, f"the service did not answer: {exc or type(exc).__name__}".encode()
        outcome = tool_result(status, answer) if status else {
            "content": [{"type": "text", "text": answer.decode()}], "isError": True}
        self._called(ctx, self.server, name, status, started, outcome["isError"])
        return result(message.id, outcome)

    def _forwarded(self, ctx: RequestContext) -> list[tuple[str, str]]:
        if not self.forward_headers:
            return []
        items = ctx.request.headers.items
        excluded = _NOT_FORWARDED | ctx.credential_headers
        return [(items[i].decode("latin-1"), items[i + 1].decode("latin-1"))
                for i in range(0, len(items), 2) if items[i].lower() not in excluded]

    @staticmethod
    def _log(ctx: RequestContext, kind: str, entry: dict[str, Any]) -> None:
        fields = ctx.log_fields if ctx.log_fields is not None else {}
        ctx.log_fields = fields
        fields.setdefault("ai", {}).setdefault("mcp", {}).setdefault(kind, []).append(entry)


_PAYLOAD_LIMIT = 65536  # characters of a message or an answer kept under log_payloads


def _payload(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    return text if len(text) <= _PAYLOAD_LIMIT else text[:_PAYLOAD_LIMIT] + "...(cut)"


def _filtered(document: Any, keep: Any) -> Any:
    """A tools/list response with only the tools ``keep`` admits."""
    if isinstance(document, dict) and isinstance(document.get("result"), dict):
        tools = document["result"].get("tools")
        if isinstance(tools, list):
            document["result"]["tools"] = [tool for tool in tools if keep(tool)]
    return document


def filter_listing(body: bytes, keep: Any) -> bytes:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    return orjson.dumps(_filtered(document, keep))


def filter_event_stream(body: bytes, keep: Any) -> bytes:
    """The same in an SSE answer: each event's data is edited in place."""
    out = []
    for line in body.split(b"\n"):
        if line.startswith(b"data:"):
            data = line[5:].strip()
            try:
                document = orjson.loads(data)
            except orjson.JSONDecodeError:
                out.append(line)
                continue
            line = b"data: " + orjson.dumps(_filtered(document, keep))
        out.append(line)
    return b"\n".join(out)


HANDLER = AIMCPProxy
