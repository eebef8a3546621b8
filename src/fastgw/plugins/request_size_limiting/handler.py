"""``request-size-limiting``: refuse request bodies larger than the limit.

As in Kong: a request whose ``Content-Length`` is over the limit gets 413
``{"message": "Request size limit exceeded"}`` (417 when it asked for
``Expect: 100-continue``) without its body ever being read. A chunked body
has no length up front, so it is read whole (``await ctx.read_body()``,
bounded by the gateway's ``max_body_bytes``) and then measured; the access
phase only becomes asynchronous for such requests. Counting bytes while they
stream upstream is not possible from the access phase, which must decide
before the request leaves.

With ``require_content_length``, a request that is neither chunked nor
carries ``Content-Length`` gets 411, as in Kong.

The core consumes ``Transfer-Encoding`` before plugins run; when the request
view does not say whether the body is chunked (``RequestView.chunked``), a
request without ``Content-Length`` is read like a chunked one, which is what
Kong does for every such request.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from fastgw.plugins.base import Plugin
from fastgw.plugins.request_size_limiting.schema import UNIT_BYTES

if TYPE_CHECKING:
    from fastgw.plugins.context import RequestContext
    from fastgw.plugins.state import ConfigState

TOO_LARGE = {"message": "Request size limit exceeded"}
LENGTH_REQUIRED = {"message": "A valid Content-Length header is required"}


def is_chunked(ctx: RequestContext) -> bool | None:
    """Whether the client framed its body as chunked; None when unknown."""
    encoding = ctx.request.headers.get("transfer-encoding")
    if encoding is not None:
        return encoding.strip().lower() == "chunked"
    return getattr(ctx.request, "chunked", None)


class RequestSizeLimitingHandler(Plugin):
    name = "request-size-limiting"
    PRIORITY = 951

    __slots__ = ("limit", "require_length")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.limit: int = config["allowed_payload_size"] * UNIT_BYTES[config["size_unit"]]
        self.require_length: bool = config["require_content_length"]

    def access(self, ctx: RequestContext) -> Awaitable[None] | None:
        length = ctx.request.headers.get("content-length")
        if length is not None and length.strip().isdigit():
            self._check(ctx, int(length))
            return None
        chunked = is_chunked(ctx)
        if chunked is False:
            if self.require_length:
                ctx.exit(411, LENGTH_REQUIRED)
            # Neither length nor chunked: HTTP/1.1 says there is no body.
            return None
        return self._check_streamed(ctx, require_body=chunked is None and self.require_length)

    async def _check_streamed(self, ctx: RequestContext, require_body: bool) -> None:
        body = await ctx.read_body()
        if require_body and not body:
            # Without Content-Length, only a chunked request has a body.
            ctx.exit(411, LENGTH_REQUIRED)
            return
        self._check(ctx, len(body))

    def _check(self, ctx: RequestContext, length: int) -> None:
        if length <= self.limit:
            return
        expect = ctx.request.headers.get("expect")
        if expect is not None and expect.strip().lower() == "100-continue":
            ctx.exit(417, TOO_LARGE)
        else:
            ctx.exit(413, TOO_LARGE)


HANDLER = RequestSizeLimitingHandler
