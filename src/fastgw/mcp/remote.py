"""MCP servers behind a listener (ai-mcp-proxy's upstream-server mode): the
gateway is their client over streamable HTTP. Each caller (a client's
``Mcp-Session-Id``, and its consumer) gets its own session on each server,
opened on first use with ``initialize`` and reopened once when the server
has forgotten it (404); tool listings are cached for
``tools_cache_ttl_seconds``. A server that fails is left alone for a few
seconds, so that a listing or a call never waits on it twice in a row: the
others' tools stay listed and its own calls are refused at once.

A server's answer may come as JSON or as an SSE stream on the POST; only the
response to the request sent is kept (progress notifications and requests
of the server's own on that stream are not relayed: the listener answers
its client with JSON).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import orjson

import fastgw
from fastgw.mcp.acl import ACL
from fastgw.outbound import EXCHANGE_ERRORS, Reply, pooled_request

log = logging.getLogger("fastgw.mcp.remote")

PROTOCOL_VERSION = "2025-11-25"  # the version the gateway asks its servers for
SEPARATOR = "__"  # between a server's name and its tool's, in the names a client sees
_MAX_SESSIONS = 4096  # callers' sessions kept per server and worker (least recently used go)
_MAX_PAGES = 20  # tools/list pages read from one server
_DOWN_SECONDS = 5.0  # how long a server that failed is not tried again
_IDS = itertools.count(1)


class RemoteError(Exception):
    """The server could not be reached or broke the protocol; the message
    says how, for the JSON-RPC error the caller gets."""


class _Session:
    __slots__ = ("id", "version")

    def __init__(self, session_id: str | None, version: str) -> None:
        self.id = session_id
        self.version = version


def _opened(task: asyncio.Task) -> bool:
    """Whether a session's opening is done and succeeded (a cancelled one did not)."""
    return task.done() and not task.cancelled() and task.exception() is None


def event_messages(body: bytes) -> list[Any]:
    """The JSON messages of an SSE body (an event's data lines joined)."""
    messages = []
    for event in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[5:].removeprefix(b" ") for line in event.split(b"\n")
                if line.startswith(b"data:")]
        if data:
            try:
                messages.append(orjson.loads(b"\n".join(data)))
            except orjson.JSONDecodeError:
                continue
    return messages


def _response_to(reply: Reply, request_id: str) -> dict[str, Any]:
    """The JSON-RPC response to ``request_id`` in a server's answer."""
    content_type = reply.headers.get("content-type", "").lower()
    if content_type.startswith("text/event-stream"):
        candidates = event_messages(reply.body)
    else:
        try:
            candidates = [orjson.loads(reply.body)]
        except orjson.JSONDecodeError as exc:
            raise RemoteError(f"answered with a body that is not JSON ({exc})") from exc
    for message in candidates:
        if isinstance(message, dict) and message.get("id") == request_id and \
                (isinstance(message.get("result"), dict) or isinstance(message.get("error"),
                                                                        dict)):
            return message
    raise RemoteError("answered without a JSON-RPC response to the request")


class RemoteServer:
    """One MCP server: ``name`` prefixes its tools' names; ``acls`` are the
    ACLs its upstream-server plugin gives its own tools, by their names."""

    __slots__ = ("name", "url", "timeout", "ttl", "acls", "_sessions", "_listing",
                 "_listed_at", "_down_until", "_inflight")

    def __init__(self, name: str, url: str, timeout: float, ttl: float,
                 acls: dict[str, ACL | None]) -> None:
        self.name = name
        self.url = url
        self.timeout = timeout
        self.ttl = ttl
        self.acls = acls
        self._sessions: OrderedDict[tuple, asyncio.Task[_Session]] = OrderedDict()
        self._listing: list[dict[str, Any]] = []
        self._listed_at = -1.0
        self._down_until = 0.0
        # (caller, the client's request id) -> the id the server saw: for cancellation.
        self._inflight: dict[tuple, str] = {}

    def exposed(self, tool: str) -> str:
        return f"{self.name}{SEPARATOR}{tool}"

    async def tools(self, caller: tuple, headers: Sequence[tuple[str, str]]
                    ) -> list[dict[str, Any]]:
        """The server's tools (its own names), cached for ``ttl`` seconds."""
        if self._listed_at >= 0 and time.monotonic() - self._listed_at < self.ttl:
            return self._listing
        tools: list[dict[str, Any]] = []
        params: dict[str, Any] = {}
        for _ in range(_MAX_PAGES):
            answer = await self.request(caller, headers, "tools/list", params)
            page = answer.get("result") or {}
            if "error" in answer or not isinstance(page.get("tools"), list):
                raise RemoteError(f"answered tools/list without tools: "
                                  f"{orjson.dumps(answer.get('error')).decode()}")
            tools += [tool for tool in page["tools"]
                      if isinstance(tool, dict) and isinstance(tool.get("name"), str)]
            cursor = page.get("nextCursor")
            if not isinstance(cursor, str):
                break
            params = {"cursor": cursor}
        self._listing, self._listed_at = tools, time.monotonic()
        return tools

    async def request(self, caller: tuple, headers: Sequence[tuple[str, str]], method: str,
                      params: dict[str, Any], client_id: Any = None) -> dict[str, Any]:
        """The server's response (``result`` or ``error``) to one request,
        on the caller's session; raises ``RemoteError``."""
        if time.monotonic() < self._down_until:
            raise RemoteError(f"did not answer {_DOWN_SECONDS:g} s ago and is not tried "
                              "again yet")
        request_id = f"fastgw-{next(_IDS)}"
        body = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                             "params": params})
        if client_id is not None:
            self._inflight[(caller, client_id)] = request_id
        try:
            for attempt in (1, 2):
                session = await self._session(caller, headers)
                reply = await self._post(session, headers, body)
                if reply.status == 404 and session.id is not None and attempt == 1:
                    self._sessions.pop(caller, None)  # the server forgot it: once more, anew
                    continue
                if reply.status != 200:
                    raise RemoteError(f"answered {method} with HTTP {reply.status}")
                return _response_to(reply, request_id)
            raise AssertionError("unreachable")
        except EXCHANGE_ERRORS as exc:
            self._down_until = time.monotonic() + _DOWN_SECONDS
            raise RemoteError(f"did not answer: {exc or type(exc).__name__}") from exc
        finally:
            if client_id is not None:
                self._inflight.pop((caller, client_id), None)

    async def notify(self, caller: tuple, headers: Sequence[tuple[str, str]], method: str,
                     params: dict[str, Any]) -> None:
        """A notification on the caller's session, when it has one open."""
        task = self._sessions.get(caller)
        if task is None or not _opened(task):
            return
        body = orjson.dumps({"jsonrpc": "2.0", "method": method, "params": params})
        try:
            await self._post(task.result(), headers, body)
        except EXCHANGE_ERRORS as exc:
            log.info("MCP server %s: %s not delivered: %s", self.name, method, exc)

    async def cancel(self, caller: tuple, headers: Sequence[tuple[str, str]],
                     params: dict[str, Any]) -> None:
        """A client's notifications/cancelled, for a request sent on: the
        server is told the id it saw."""
        request_id = self._inflight.get((caller, params.get("requestId")))
        if request_id is not None:
            await self.notify(caller, headers, "notifications/cancelled",
                              {**params, "requestId": request_id})

    async def close(self, caller: tuple, headers: Sequence[tuple[str, str]]) -> None:
        """Ends the caller's session on the server (DELETE, as the transport has it)."""
        task = self._sessions.pop(caller, None)
        if task is None or not _opened(task):
            return
        session = task.result()
        if session.id is not None:
            try:
                await pooled_request("DELETE", self.url, [*headers, *self._headers(session)],
                                     timeout=self.timeout)
            except EXCHANGE_ERRORS as exc:
                log.info("MCP server %s: session not ended: %s", self.name, exc)

    async def _session(self, caller: tuple, headers: Sequence[tuple[str, str]]) -> _Session:
        task = self._sessions.get(caller)
        if task is not None and task.get_loop() is not asyncio.get_running_loop():
            task = None  # opened under another event loop
        if task is None or (task.done() and not _opened(task)):
            task = asyncio.ensure_future(self._open(headers))
            self._sessions[caller] = task
            while len(self._sessions) > _MAX_SESSIONS:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(caller)
        try:
            return await asyncio.shield(task)
        except BaseException:
            if self._sessions.get(caller) is task:
                del self._sessions[caller]
            raise

    async def _open(self, headers: Sequence[tuple[str, str]]) -> _Session:
        """initialize, then notifications/initialized, as a client must."""
        request_id = f"fastgw-{next(_IDS)}"
        body = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": "initialize",
                             "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                        "clientInfo": {"name": "fastgw",
                                                       "version": fastgw.__version__}}})
        reply = await self._post(_Session(None, PROTOCOL_VERSION), headers, body)
        if reply.status != 200:
            raise RemoteError(f"answered initialize with HTTP {reply.status}")
        answer = _response_to(reply, request_id)
        if "error" in answer:
            raise RemoteError(f"refused initialize: {orjson.dumps(answer['error']).decode()}")
        version = answer["result"].get("protocolVersion")
        session = _Session(reply.headers.get("mcp-session-id"),
                           version if isinstance(version, str) else PROTOCOL_VERSION)
        await self._post(session, headers, b'{"jsonrpc":"2.0","method":'
                         b'"notifications/initialized"}')
        return session

    def _headers(self, session: _Session) -> list[tuple[str, str]]:
        headers = [("MCP-Protocol-Version", session.version)]
        if session.id is not None:
            headers.append(("Mcp-Session-Id", session.id))
        return headers

    async def _post(self, session: _Session, headers: Sequence[tuple[str, str]],
                    body: bytes) -> Reply:
        return await pooled_request(
            "POST", self.url, [*headers, ("Content-Type", "application/json"),
                               ("Accept", "application/json, text/event-stream"),
                               *self._headers(session)], body, timeout=self.timeout)
