"""The client's JSON body on an AI route, read and parsed once for all the
AI plugins of the request (guard, decorator, template, sanitizer, ai-proxy),
and the API it is written in (the route's ai-proxy front door).

A plugin that changes the request writes the new body with
``replace_json_body``: the next one gets the same dict without parsing again,
and the request goes upstream with the new bytes.
"""

from __future__ import annotations

from typing import Any

import orjson

from fastgw.ai.front_doors import FRONT_DOORS, FrontDoor
from fastgw.plugins.context import RequestContext

_PARSED = object()  # ctx.shared key: (raw body, its JSON object or None)
TOO_LARGE = "request body is larger than max_request_body_size ({} bytes)"


def json_body(ctx: RequestContext, raw: bytes) -> tuple[bytes, dict[str, Any] | None]:
    """The body ``raw`` (the request's, read), and its JSON object (None
    when it is not one), parsed once for the request's plugins."""
    cached = ctx.shared.get(_PARSED)
    if cached is not None and cached[0] is raw:
        return cached
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    parsed = (raw, body if isinstance(body, dict) else None)
    ctx.shared[_PARSED] = parsed
    return parsed


def replace_json_body(ctx: RequestContext, body: dict[str, Any]) -> None:
    raw = orjson.dumps(body)
    ctx.request.set_body(raw)
    ctx.shared[_PARSED] = (ctx.request.body, body)


def too_large(ctx: RequestContext, limit: int) -> bool:
    """The declared body is larger than ``limit`` (refused before it is read)."""
    length = ctx.request.headers.get("content-length")
    return length is not None and length.isdigit() and int(length) > limit


def front_door_of(ctx: RequestContext) -> FrontDoor:
    """The API the route's clients speak: its ai-proxy's front door (OpenAI's
    when the route has none)."""
    chain = ctx.chain
    for plugin in chain.plugins if chain is not None else ():
        front = getattr(plugin, "front", None)
        if isinstance(front, FrontDoor):
            return front
    return FRONT_DOORS["openai"]
