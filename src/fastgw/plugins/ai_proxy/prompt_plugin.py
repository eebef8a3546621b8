"""What the plugins that read the request's prompt share (ai-proxy itself,
and the template, decorator and guard before it): the JSON body bounded by
``max_request_body_size`` (Kong's 413 beyond it), a 400 when it is not JSON,
and refusals in the route's own API."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from fastgw.plugins.ai_proxy.request_body import (
    TOO_LARGE,
    front_door_of,
    json_body,
    too_large,
)
from fastgw.plugins.base import Plugin
from fastgw.plugins.context import RequestContext


class PromptPlugin(Plugin):
    """Subclasses set ``max_body`` and implement ``handle``."""

    __slots__ = ("max_body",)
    max_body: int  # bytes of body read at most (max_request_body_size)
    # The refusal of a body that is not a JSON object (Kong's words, per plugin).
    NOT_JSON = "this LLM route only supports application/json requests"

    def access(self, ctx: RequestContext) -> Awaitable[None] | None:
        if too_large(ctx, self.max_body):
            # Refused before a byte of the body is read.
            self.refuse(ctx, 413, TOO_LARGE.format(self.max_body))
            return None
        raw = ctx.body_now()
        if raw is None:
            return self._read(ctx)
        # PERF: the body came with the head (the common case): no task,
        # unless handle has something to wait for.
        return self._take(ctx, raw)

    async def _read(self, ctx: RequestContext) -> None:
        pending = self._take(ctx, await ctx.read_body())
        if pending is not None:
            await pending

    def _take(self, ctx: RequestContext, raw: bytes) -> Awaitable[None] | None:
        raw, body = json_body(ctx, raw)
        if len(raw) > self.max_body:
            self.refuse(ctx, 413, TOO_LARGE.format(self.max_body))
        elif body is None:
            self.refuse(ctx, 400, self.NOT_JSON)
        else:
            return self.handle(ctx, body, raw)
        return None

    def handle(self, ctx: RequestContext, body: dict[str, Any],
               raw: bytes) -> Awaitable[None] | None:
        """Look at (or rewrite, with replace_json_body) the client's request:
        ``body`` is shared with the other plugins, ``raw`` its bytes."""
        raise NotImplementedError

    def refuse(self, ctx: RequestContext, status: int, message: str) -> None:
        ctx.exit(status, front_door_of(ctx).message_error(message, status))
