"""The admin API's request and response objects, shared by the server
(which parses and writes them) and the routes (which answer them)."""

from __future__ import annotations

import httptools
import orjson


class AdminResponse:
    __slots__ = ("status", "body", "content_type")

    def __init__(self, status: int, body: bytes | dict | list,
                 content_type: str = "application/json"):
        self.status = status
        self.body = body if isinstance(body, bytes) else orjson.dumps(body)
        self.content_type = content_type


class AdminRequest:
    __slots__ = ("method", "path", "query", "headers", "body")

    def __init__(self, method: str, url: bytes, headers: dict, body: bytes):
        parsed = httptools.parse_url(url)
        self.method = method
        self.path = parsed.path.decode()
        self.query = (parsed.query or b"").decode()
        self.headers = headers
        self.body = body

    def json(self):
        return orjson.loads(self.body)
