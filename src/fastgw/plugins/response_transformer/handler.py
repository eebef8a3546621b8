"""``response-transformer``: change response headers and JSON body fields.

Headers change in ``header_filter`` (remove, rename, replace, add, append;
see ``request_transformer/ops.py``). JSON fields change only when the
response's Content-Type is JSON (``application/json`` or a ``+json`` type,
parameters allowed): ``header_filter`` then drops Content-Length, because the
body's length will change (the gateway re-frames it as chunked), and
``body_filter`` holds the body back (returning ``b""``) until the last piece,
edits the top-level object and sends it whole. A body that is not a JSON
object goes out unchanged, as in Kong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from fastgw.plugins.base import Plugin
from fastgw.plugins.request_transformer.ops import (
    Constant,
    Operations,
    apply_to_headers,
    apply_to_mapping,
)
from fastgw.plugins.response_transformer.schema import cast_json_value

if TYPE_CHECKING:
    from fastgw.plugins.context import RequestContext
    from fastgw.plugins.state import ConfigState

_BUFFER = "buffer"


def is_json_content_type(content_type: str | None) -> bool:
    """Whether one of the (comma-separated) media types is JSON."""
    if not content_type:
        return False
    for media_type in content_type.lower().split(","):
        essence = media_type.split(";", 1)[0].strip()
        kind, _, subtype = essence.partition("/")
        # application/json, or a structured-syntax suffix (RFC 6839), e.g. problem+json.
        if kind == "application" and (subtype == "json" or subtype.endswith("+json")):
            return True
    return False


class ResponseTransformerHandler(Plugin):
    name = "response-transformer"
    PRIORITY = 800

    __slots__ = ("header_ops", "json_ops")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)

        def header_value(op: str, text: str, index: int) -> Constant:
            return Constant(text)

        def json_value(op: str, text: str, index: int) -> Constant:
            types = config[op]["json_types"]
            json_type = types[index] if index < len(types) else "string"
            return Constant(cast_json_value(text, json_type))

        self.header_ops = Operations.from_config(config, "headers", header_value,
                                                 skip_empty=True)
        self.json_ops = Operations.from_config(config, "json", json_value)

    def header_filter(self, ctx: RequestContext) -> None:
        assert ctx.response is not None  # header_filter runs once the response exists
        headers = ctx.response.headers
        if self.header_ops:
            apply_to_headers(headers, self.header_ops, None)
        if self.json_ops and is_json_content_type(headers.get("content-type")):
            # The body's length will change: the gateway re-frames it as chunked.
            headers.remove("content-length")
            ctx.plugin_state(self)[_BUFFER] = []

    def body_filter(self, ctx: RequestContext, chunk: bytes, eof: bool) -> bytes:
        if not self.json_ops:
            return chunk
        buffer = ctx.plugin_state(self).get(_BUFFER)
        if buffer is None:
            return chunk
        # A JSON document can only be edited whole: hold every piece back.
        buffer.append(chunk)
        if not eof:
            return b""
        body = b"".join(buffer)
        buffer.clear()
        return self.transform_json(body)

    def transform_json(self, body: bytes) -> bytes:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        if type(document) is not dict or not apply_to_mapping(document, self.json_ops, None):
            return body
        return orjson.dumps(document)


HANDLER = ResponseTransformerHandler
