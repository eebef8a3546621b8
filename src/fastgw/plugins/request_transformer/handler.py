"""``request-transformer``: change the request before it goes upstream.

Kong's order: ``replace.uri``, then ``http_method``, headers, body, query
string; within each, remove, rename, replace, add, append (see ``ops.py``).

* A ``Host`` entry in ``replace.headers`` sets the upstream Host header;
  ``add``/``append`` never touch Host (as in Kong).
* Body changes apply to ``application/json`` (a top-level object; values are
  set as strings) and ``application/x-www-form-urlencoded`` bodies; other
  bodies, including ``multipart/form-data`` (which Kong also edits), are left
  alone. The body is read (``await ctx.read_body()``) only when such a
  change is configured and the client's Content-Type is one of those, so
  other requests keep a synchronous access phase and a streamed body.
* Changing the method to GET, HEAD or TRACE copies the arguments of a form
  body into the query string, as Kong does (the body is still sent).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

import orjson

from fastgw.plugins.base import Plugin
from fastgw.plugins.request_transformer.ops import (
    Operations,
    apply_to_headers,
    apply_to_mapping,
)
from fastgw.plugins.request_transformer.template import Template, TemplateEnv, compile_template

if TYPE_CHECKING:
    from fastgw.plugins.context import RequestContext, RequestView
    from fastgw.plugins.state import ConfigState

JSON = "json"
FORM = "form"
# Methods after which Kong moves form arguments to the query string.
_BODYLESS_METHODS = ("GET", "HEAD", "TRACE")


def body_kind(content_type: str | None) -> str | None:
    """JSON, FORM or None, by Kong's substring test on Content-Type."""
    if not content_type:
        return None
    lowered = content_type.lower()
    if "application/json" in lowered:
        return JSON
    if "application/x-www-form-urlencoded" in lowered:
        return FORM
    return None


# Form bodies are bytes in any charset: surrogateescape carries bytes that are
# not UTF-8 through decoding and encoding unchanged.
def parse_form(body: bytes) -> dict[str, list[str]]:
    text = body.decode("utf-8", "surrogateescape")
    return parse_qs(text, keep_blank_values=True, encoding="utf-8", errors="surrogateescape")


def encode_form(params: dict[str, list[str]]) -> bytes:
    text = urlencode(params, doseq=True, encoding="utf-8", errors="surrogateescape")
    return text.encode("ascii")


def _copy_query(request: RequestView) -> dict[str, list[str]]:
    return {name: list(values) for name, values in request.query().items()}


class RequestTransformerHandler(Plugin):
    name = "request-transformer"
    PRIORITY = 801

    __slots__ = ("body_kinds", "body_ops", "header_ops", "host", "method", "moves_form",
                 "query_ops", "templated", "uri")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        templates: list[Template] = []

        def make_value(op: str, text: str, index: int) -> Template:
            template = compile_template(text)
            templates.append(template)
            return template

        header_ops = Operations.from_config(config, "headers", make_value, skip_empty=True)
        # The core keeps Host out of the header list; a Host header set in
        # the request view becomes the upstream Host (the last entry wins).
        self.host = next((value for name, value in reversed(header_ops.replace)
                          if name.lower() == "host"), None)
        self.header_ops = header_ops.without(("host",))
        self.query_ops = Operations.from_config(config, "querystring", make_value)
        self.body_ops = Operations.from_config(config, "body", make_value)
        uri = config["replace"]["uri"]
        self.uri = make_value("replace", uri, 0) if uri is not None else None
        self.method: str | None = config["http_method"]
        self.moves_form = self.method in _BODYLESS_METHODS
        # Content kinds whose body this config needs to read.
        self.body_kinds = (JSON, FORM) if self.body_ops else (FORM,) if self.moves_form else ()
        self.templated = any(template.literal is None for template in templates)

    def access(self, ctx: RequestContext) -> Awaitable[None] | None:
        if self.body_kinds and \
                body_kind(ctx.request.headers.get("content-type")) in self.body_kinds:
            return self._transform_with_body(ctx)
        self._transform(ctx, None)
        return None

    async def _transform_with_body(self, ctx: RequestContext) -> None:
        self._transform(ctx, await ctx.read_body())

    def _transform(self, ctx: RequestContext, body: bytes | None) -> None:
        request = ctx.request
        env = TemplateEnv(ctx) if self.templated else None
        if self.uri is not None:
            request.path = self.uri.render(env)
        if self.method is not None:
            self._transform_method(request, self.method, body)
        if self.host is not None:
            request.headers.set("Host", self.host.render(env))
        if self.header_ops:
            apply_to_headers(request.headers, self.header_ops, env)
        if body is not None and self.body_ops:
            self._transform_body(request, body, env)
        if self.query_ops:
            params = _copy_query(request)
            if apply_to_mapping(params, self.query_ops, env, as_lists=True):
                request.set_query(params)

    def _transform_method(self, request: RequestView, method: str, body: bytes | None) -> None:
        request.method = method
        if not (self.moves_form and body) or \
                body_kind(request.headers.get("content-type")) != FORM:
            return
        form = parse_form(body)
        if form:
            params = _copy_query(request)
            for name, values in form.items():
                params.setdefault(name, []).extend(values)
            request.set_query(params)

    def _transform_body(self, request: RequestView, body: bytes, env: TemplateEnv | None) -> None:
        # The header step may have changed Content-Type: Kong reads it now.
        kind = body_kind(request.headers.get("content-type"))
        new_body = None
        if kind == JSON:
            new_body = self._transform_json(body, env)
        elif kind == FORM:
            form = parse_form(body)
            if apply_to_mapping(form, self.body_ops, env, as_lists=True):
                new_body = encode_form(form)
        if new_body is not None:
            request.set_body(new_body)

    def _transform_json(self, body: bytes, env: TemplateEnv | None) -> bytes | None:
        """The new body, or None to leave it (unchanged, not an object, or
        not JSON at all)."""
        if body:
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError:
                return None
            if type(document) is not dict:
                return None
        else:
            document = {}
        if not apply_to_mapping(document, self.body_ops, env):
            return None
        return orjson.dumps(document)


HANDLER = RequestTransformerHandler
