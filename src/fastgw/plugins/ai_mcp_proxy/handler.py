"""ai-mcp-proxy. conversion-listener: the route is an MCP server over
streamable HTTP whose tools are its service's REST endpoints. listener: the
same, with the tools of every conversion-only plugin tagged ``server.tag``,
each calling its own service (a conversion-only route stays a REST route).
passthrough-listener: the service is an MCP server; every message is checked
before it goes on, a tool call the caller's ACL refuses never does, and a
tools/list answer (JSON or SSE) comes back without the tools it may not call.

Every POST carries one JSON-RPC message, checked first (a malformed one
never reaches the service): ``initialize`` (the handshake era: 2025-03-26,
2025-06-18 and 2025-11-25), ``ping``, ``tools/list`` (only the tools the
caller's ACL allows) and ``tools/call`` (the REST call its ``parameters``
describe, within ``server.timeout``) are answered as JSON; notifications and
responses are accepted with 202; any other method is -32601. GET (a server
stream) and DELETE (ending a session) answer 405, as the transport allows:
sessions are not kept, so any ``Mcp-Session-Id`` is served.

A tool the caller may not call is refused as unknown (-32602): the ACL hides
it from ``tools/list`` too, so its existence is not disclosed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import orjson

import fastgw
from fastgw.ai.metrics import record_mcp
from fastgw.mcp.acl import ACL, permits
from fastgw.mcp.jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    JSONRPCError,
    Message,
    error,
    parse,
    result,
)
from fastgw.mcp.tools import RestTool, tool_result
from fastgw.outbound import EXCHANGE_ERRORS, pooled_exchange
from fastgw.plugins.base import Plugin
from fastgw.plugins.context import RequestContext
from fastgw.plugins.state import ConfigState

log = logging.getLogger("fastgw.plugins.ai_mcp_proxy")

# The handshake-era versions served; a client asking another gets the latest.
PROTOCOL_VERSIONS = ("2025-03-26", "2025-06-18", "2025-11-25")
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
                 "forward_headers", "max_body", "log_statistics", "log_audits", "passthrough",
                 "serves", "restricted", "server", "claim_field")

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

    @staticmethod
    def _service_base(state: ConfigState, scope: Any) -> tuple[str, str] | None:
        """(scheme://host:port, path) of the route's service: where tools call."""
        route_name = getattr(scope, "route", None)
        route = next((r for r in state.config.routes if r.name == route_name), None)
        service_name = getattr(scope, "service", None) or (route.service if route else None)
        service = next((s for s in state.config.services if s.name == service_name), None)
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
            return None  # conversion-only: the route stays a REST route; a listener serves its tools
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
        try:
            message = parse(body)
        except JSONRPCError as exc:
            ctx.exit(400, exc.answer(), _JSON)
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
            ctx.exit(202)  # a notification or a response: nothing to answer
            return
        headers = dict(_JSON)
        if message.method == "initialize":
            headers["Mcp-Session-Id"] = uuid.uuid4().hex
        try:
            answer = await self._answer(ctx, message)
        except JSONRPCError as exc:
            answer = exc.answer()
        ctx.exit(200, answer, headers)

    async def _guard(self, ctx: RequestContext) -> None:
        """passthrough-listener: the message goes on to the MCP server only
        once checked, a tool call only when the caller may call the tool; a
        tools/list answer comes back with only the tools the caller may call."""
        message = await self._read(ctx)
        if message is None or not message.is_request:
            return
        if message.method == "tools/call":
            name = message.params.get("name")
            if not isinstance(name, str):
                ctx.exit(200, error(message.id, INVALID_PARAMS, "Invalid params: tools/call "
                                    "needs a tool name"), _JSON)
                return
            if not self._allowed(ctx, name):
                ctx.exit(200, error(message.id, INVALID_PARAMS, f"Unknown tool: {name}"),
                         _JSON)
                return
            ctx.plugin_state(self)["tool"] = (name, time.monotonic())  # counted in log()
        elif message.method == "tools/list" and self.restricted:
            ctx.plugin_state(self)["listing"] = self._subjects(ctx)

    def header_filter(self, ctx: RequestContext) -> None:
        if "listing" in ctx.plugin_state(self):
            assert ctx.response is not None
            # The listing is edited whole: the gateway re-frames its length.
            ctx.response.headers.remove("content-length")
            ctx.plugin_state(self)["buffer"] = []

    def body_filter(self, ctx: RequestContext, chunk: bytes, eof: bool) -> bytes:
        state = ctx.plugin_state(self)
        buffer = state.get("buffer")
        if buffer is None:
            return chunk
        buffer.append(chunk)
        if not eof:
            return b""
        assert ctx.response is not None
        body = b"".join(buffer)
        content_type = (ctx.response.headers.get("content-type") or "").lower()
        keep = self._listing_filter(state["listing"])
        if content_type.startswith("text/event-stream"):
            return filter_event_stream(body, keep)
        return filter_listing(body, keep)

    def log(self, ctx: RequestContext) -> None:
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

    def _allowed(self, ctx: RequestContext, name: str) -> bool:
        allowed = self._permits_name(name, self._subjects(ctx))
        record_mcp(self.server, name, "acl:allowed" if allowed else "acl:denied")
        if not allowed:
            record_mcp(self.server, name, "calls:denied")
        if self.log_audits:
            self._log(ctx, "audits", {"tool": name, "allowed": allowed,
                                      "consumer": ctx.consumer_name or None})
        return allowed

    def _permits_name(self, name: str, subjects: list[str]) -> bool:
        tool = self.tools.get(name)
        return permits(tool.acl if tool is not None and tool.acl is not None
                       else self.default_acl, subjects)

    async def _answer(self, ctx: RequestContext, message: Message) -> dict[str, Any]:
        method, params = message.method, message.params
        if method == "initialize":
            asked = params.get("protocolVersion")
            return result(message.id, {
                "protocolVersion": asked if asked in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[-1],
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "fastgw", "version": fastgw.__version__}})
        if method == "ping":
            return result(message.id, {})
        if method == "tools/list":
            subjects = self._subjects(ctx)
            return result(message.id, {"tools": [tool.listing() for tool in self.tools.values()
                                                 if self._permits_name(tool.name, subjects)]})
        if method == "tools/call":
            return await self._call(ctx, message)
        raise JSONRPCError(METHOD_NOT_FOUND, f"Method not found: {method}", message.id)

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
        record_mcp(self.server, name, "calls:error" if outcome["isError"] else "calls:ok",
                   (time.monotonic() - started) * 1000)
        if self.log_statistics:
            self._log(ctx, "statistics", {"tool": name, "status": status,
                                          "latency_ms": round((time.monotonic() - started) * 1000,
                                                              3),
                                          "error": outcome["isError"]})
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
