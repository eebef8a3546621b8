"""A small HTTP/1.1 server for the admin API.

The admin API is not on the hot path, so each request is handled by a
coroutine; httptools still does the parsing. Routes are registered in
``fastgw.admin.routes``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import httptools

from fastgw.admin.messages import AdminRequest, AdminResponse
from fastgw.admin.routes import AdminApp
from fastgw.config.checks import listen_address

log = logging.getLogger("fastgw.admin")

MAX_ADMIN_BODY = 16 * 1024 * 1024
REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request",
           401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           413: "Payload Too Large", 415: "Unsupported Media Type",
           500: "Internal Server Error", 503: "Service Unavailable"}


class AdminProtocol(asyncio.Protocol):
    def __init__(self, app):
        self.app = app
        self.parser = httptools.HttpRequestParser(self)
        self.transport = None
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task = None
        self._url = b""
        self._headers: dict = {}
        self._body: list = []
        self._size = 0

    def connection_made(self, transport):
        self.transport = transport
        self.task = asyncio.ensure_future(self.serve())

    def connection_lost(self, exc):
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data):
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.queue.put_nowait(None)

    def on_message_begin(self):
        self._url, self._headers, self._body, self._size = b"", {}, [], 0

    def on_url(self, url):
        self._url += url

    def on_header(self, name, value):
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body):
        self._size += len(body)
        if self._size <= MAX_ADMIN_BODY:
            self._body.append(body)

    def on_message_complete(self):
        method = self.parser.get_method().decode()
        keep = self.parser.should_keep_alive()
        if self._size > MAX_ADMIN_BODY:
            self.queue.put_nowait((None, keep))
            return
        req = AdminRequest(method, self._url, self._headers, b"".join(self._body))
        self.queue.put_nowait((req, keep))

    async def serve(self):
        while True:
            item = await self.queue.get()
            if item is None:
                self.write(AdminResponse(400, {"message": "Bad request"}), False)
                return
            req, keep = item
            if req is None:
                resp = AdminResponse(413, {"message": "Payload too large"})
            else:
                try:
                    resp = await self.app.handle(req)
                except Exception:
                    log.exception("admin request failed")
                    resp = AdminResponse(500, {"message": "An unexpected error occurred"})
            self.write(resp, keep)
            if not keep:
                return

    def write(self, resp: AdminResponse, keep: bool):
        # RFC 9110 8.6: no Content-Length (nor body) on a 204.
        framing = (f"Content-Type: {resp.content_type}\r\nContent-Length: {len(resp.body)}\r\n"
                   if resp.status != 204 else "")
        head = (
            f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Unknown')}\r\n"
            f"{framing}"
            f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n"
        ).encode()
        self.transport.write(head + resp.body)
        if not keep:
            self.transport.close()


def exposure_error(listen: str, token: str | None) -> str | None:
    """Why the admin API may not listen on ``listen``, or None: off loopback
    it answers only with admin authentication configured."""
    host, _ = listen_address(listen, 8001)
    if token:
        return None
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (f"admin_listen {listen} is not a loopback address: set _gateway.admin_token "
            "(or FASTGW_ADMIN_TOKEN) so the admin API needs a key, or listen on 127.0.0.1")


async def start_admin(supervisor, listen: str, status_only: bool = False):
    """The admin API on ``listen``; ``status_only``: Kong's status API, its
    read-only part (see AdminApp)."""
    app = AdminApp(supervisor, status_only)
    host, port = listen_address(listen, 8001)
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: AdminProtocol(app), host, port, reuse_address=True)
