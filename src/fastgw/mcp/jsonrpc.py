"""JSON-RPC 2.0 messages as MCP carries them over streamable HTTP: one
message per POST (MCP dropped batches in 2025-06-18), checked before anything
acts on it, with the specification's error codes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class JSONRPCError(Exception):
    """A message that cannot be served; ``answer()`` is what the client gets."""

    def __init__(self, code: int, message: str, message_id: Any = None,
                 data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_id = message_id
        self.data = data

    def answer(self) -> dict[str, Any]:
        answer = error(self.message_id, self.code, self.message)
        if self.data is not None:
            answer["error"]["data"] = self.data
        return answer


@dataclass(frozen=True, slots=True)
class Message:
    """A request (``id`` set), a notification (no ``id``), or a response
    (``method`` None: the client answering a request of the server's)."""

    method: str | None
    id: Any
    params: dict[str, Any]
    is_request: bool


def parse(body: bytes) -> Message:
    """The message in a POST body; raises ``JSONRPCError`` with the code the
    specification gives for what is wrong."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise JSONRPCError(PARSE_ERROR, f"Parse error: {exc}") from exc
    if isinstance(value, list):
        raise JSONRPCError(INVALID_REQUEST, "Invalid Request: one message per request "
                           "(MCP has no batches since 2025-06-18)")
    if not isinstance(value, dict):
        raise JSONRPCError(INVALID_REQUEST, "Invalid Request: not a JSON-RPC object")
    message_id = value.get("id")
    valid_id = message_id is None or (type(message_id) in (int, str))
    if value.get("jsonrpc") != "2.0":
        raise JSONRPCError(INVALID_REQUEST, "Invalid Request: jsonrpc must be \"2.0\"",
                           message_id if valid_id else None)
    if not valid_id or ("id" in value and message_id is None):
        raise JSONRPCError(INVALID_REQUEST, "Invalid Request: id must be a string or an "
                           "integer")
    method = value.get("method")
    if method is None:
        if "id" not in value or ("result" in value) == ("error" in value):
            raise JSONRPCError(INVALID_REQUEST, "Invalid Request: no method, and not a "
                               "response", message_id)
        return Message(None, message_id, {}, False)
    if not isinstance(method, str) or not method:
        raise JSONRPCError(INVALID_REQUEST, "Invalid Request: method must be a string",
                           message_id)
    params = value.get("params", {})
    if not isinstance(params, dict):
        raise JSONRPCError(INVALID_PARAMS, "Invalid params: params must be an object",
                           message_id)
    return Message(method, message_id, params, "id" in value)


def result(message_id: Any, value: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "result": value}


def error(message_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "error": {"code": code, "message": message}}
