"""What the plugins that read or rewrite prompts before ai-proxy share (the
guard, the decorator): the JSON body bounded by ``max_request_body_size``
(Kong's 413 beyond it), a 400 when it is not JSON, and refusals in the
route's own API."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from fastgw.plugins.ai_proxy.request_body import (
    TOO_LARGE,
    front_door_of,
    read_json_body,
    too_large,
)
from fastgw.plugins.base import Plugin
from fastgw.plugins.context import RequestContext

NOT_JSON = "this LLM route only supports application/json requests"


class PromptPlugin(Plugin):
    """Subclasses set ``max_body`` and implement ``handle``."""

    __slots__ = ("max_body",)
    max_body: int  # bytes of body read at most (max_request_body_size)

    def access(self, ctx: RequestContext) -> Awaitable[None] | None:
        if too_large(ctx, self.max_body):
            # Refused before a byte of the body is read.
            self.refuse(ctx, 413, TOO_LARGE.format(self.max_body))
            return None
        return self._read(ctx)

    async def _read(self, ctx: RequestContext) -> None:
        raw, body = await read_json_body(ctx)
        if len(raw) > self.max_body:
            self.refuse(ctx, 413, TOO_LARGE.format(self.max_body))
        elif body is None:
            self.refuse(ctx, 400, NOT_JSON)
        else:
            self.handle(ctx, body)

    def handle(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        """Look at (or rewrite, with replace_json_body) the client's request."""
        raise NotImplementedError

    def refuse(self, ctx: RequestContext, status: int, message: str) -> None:
        ctx.exit(status, front_door_of(ctx).message_error(message, status))
