"""``request-termination``: answer the request here, as Kong does.

The answer is ``body`` with its ``content_type`` when one is configured, else
``{"message": ...}`` with the configured message or Kong's message for the
status (none for a status Kong has no message for: an empty body). With
``trigger``, only requests carrying that header or query argument are
answered; the others go on untouched. With ``echo``, the answer is a JSON
copy of the request, for debugging.

The priority (2) puts it after every auth and policy plugin: a terminated
route still authenticates and counts its callers first. Without ``echo`` the
decision is taken in the compiled core (``fast_decision``): the answer is
fixed at config time.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from fastgw._core.gateway import FastAnswer
from fastgw.plugins.base import Plugin
from fastgw.plugins.context import HeaderList, kong_args
from fastgw.plugins.fast import FastDecision, FastRequest

if TYPE_CHECKING:
    from fastgw.plugins.context import RequestContext
    from fastgw.plugins.state import ConfigState

# Kong's messages for the statuses it has one for.
DEFAULT_MESSAGES = {
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    500: "An unexpected error occurred",
    502: "Bad Gateway",
    503: "Service unavailable",
}


class RequestTermination(Plugin):
    name = "request-termination"
    PRIORITY = 2

    __slots__ = ("status", "message", "body", "headers", "trigger", "echo")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.status: int = config["status_code"]
        self.message: str | None = config["message"] or DEFAULT_MESSAGES.get(self.status)
        self.echo: bool = config["echo"]
        self.trigger: str | None = config["trigger"]
        # The fixed answer: (header items, body).
        if config["body"] is not None:
            self.body = config["body"].encode()
            self.headers: list[bytes] = (
                [b"Content-Type", config["content_type"].encode("latin-1")]
                if config["content_type"] else [])
        elif self.message is not None:
            self.body = orjson.dumps({"message": self.message})
            self.headers = [b"Content-Type", b"application/json; charset=utf-8"]
        else:
            self.body = b""
            self.headers = []

    def access(self, ctx: RequestContext) -> Awaitable[None] | None:
        request = ctx.request
        if self.trigger is not None and not _triggered(self.trigger, request.headers,
                                                       request.raw_query):
            return None
        if self.echo:
            return self._echo(ctx)
        ctx.exit(self.status, self.body,
                 {self.headers[0].decode(): self.headers[1].decode()} if self.headers else None)
        return None

    def fast_decision(self, route, service) -> FastDecision | None:
        if self.echo:
            return None  # the copy of the request needs the runner's context
        status, headers, body = self.status, self.headers, self.body
        trigger = self.trigger

        def decide(request: FastRequest) -> Any:
            if trigger is not None and not _triggered(
                    trigger, HeaderList(request.headers), request.url.partition(b"?")[2]):
                return True
            return FastAnswer(status, list(headers), body)

        return FastDecision(decide, covers_response=True)

    async def _echo(self, ctx: RequestContext) -> None:
        """Answer with Kong's echo document. fastgw has no node id and does
        not expose the route's regex captures to plugins, so those two are
        left out."""
        await ctx.read_body()
        request = ctx.request
        raw_body = request.body.decode("utf-8", "replace") if request.body else ""
        ctx.exit(self.status, {
            "message": self.message,
            "kong": {"worker_pid": os.getpid(), "hostname": socket.gethostname()},
            "request": {
                "scheme": request.scheme,
                "host": _without_port(request.host),
                "port": request.port,
                "headers": ctx.logged_request_headers(),
                "query": kong_args(request.raw_query),
                "body": _parsed_body(request.headers.get("content-type"), raw_body),
                "raw_body": raw_body,
                "method": request.method,
                "path": request.raw_path,
            },
            "matched_route": _entity(ctx.route),
            "matched_service": _entity(ctx.service),
        })


def _triggered(trigger: str, headers: HeaderList, query: bytes | str) -> bool:
    """Whether ``trigger`` is a header or a query argument of the request
    (header names compared as Kong reads them: ``a_b`` finds ``A-B``)."""
    if headers.get_as_kong(trigger) is not None:
        return True
    if query:
        if isinstance(query, bytes):
            query = query.decode("latin-1")
        return trigger in parse_qs(query, keep_blank_values=True)
    return False


def _without_port(host: str | None) -> str | None:
    if host is None:
        return None
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() and not name.endswith(":") else host


def _parsed_body(content_type: str | None, raw: str) -> Any:
    """The body as Kong's ``kong.request.get_body`` parses it (JSON or a
    form), None for anything else."""
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type == "application/json":
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
    if media_type == "application/x-www-form-urlencoded":
        return kong_args(raw)
    return None


def _entity(entity: Any) -> dict[str, Any] | None:
    """A route or service as a JSON object of its config fields."""
    if entity is None:
        return None
    return {name: list(value) if isinstance(value, tuple) else value
            for name in entity.__dataclass_fields__
            if isinstance(value := getattr(entity, name), (str, int, float, bool, tuple,
                                                            type(None)))}


HANDLER = RequestTermination
