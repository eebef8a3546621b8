"""Replies produced by the mock's handlers, and the framing of their bytes on the wire."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus

import orjson

CONTENT_JSON = b"application/json"
CONTENT_SSE = b"text/event-stream; charset=utf-8"
CONTENT_NDJSON = b"application/x-ndjson"

# Default messages for injected or generic errors; providers wrap them in their own shape.
_MESSAGES = {
    400: "The request is invalid.",
    404: "Not found.",
    405: "Method not allowed.",
    429: "Rate limit reached for requests (mock).",
    500: "The server had an error while processing your request (mock).",
    503: "The server is overloaded, please try again later (mock).",
    529: "Overloaded (mock).",
}


def default_message(status: int) -> str:
    if status in _MESSAGES:
        return _MESSAGES[status]
    try:
        return f"{HTTPStatus(status).phrase} (mock)."
    except ValueError:
        return f"Error {status} (mock)."


class ApiError(Exception):
    """Raised by a handler; the server renders it in the provider's error shape."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


@dataclass(slots=True)
class JsonReply:
    status: int
    body: bytes
    content_type: bytes = CONTENT_JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


# A streamed event: its payload bytes, and whether it carries a generated token (and so is
# paced by --tokens-per-s) rather than being bookkeeping such as message_start.
StreamEvent = tuple[bytes, bool]


@dataclass(slots=True)
class StreamReply:
    content_type: bytes
    events: Iterable[StreamEvent]
    status: int = 200


def json_reply(status: int, payload: object) -> JsonReply:
    return JsonReply(status, orjson.dumps(payload))


def sse_data(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def sse_event(name: bytes, payload: object) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def ndjson_line(payload: object) -> bytes:
    return orjson.dumps(payload) + b"\n"
