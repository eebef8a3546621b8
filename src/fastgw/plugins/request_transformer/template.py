"""Values of ``request-transformer`` entries that read the request: Kong's
``$(...)`` templates, restricted to plain lookups.

A value such as ``Bearer $(headers.x_token)`` or ``$(query_params["v"] or "1")``
is compiled once per config into literal text and lookups. Kong evaluates a
template as sandboxed Lua; fastgw accepts only these forms, so a config never
runs code:

* ``headers.NAME`` / ``headers["NAME"]``: the request header (case does not
  matter and ``_`` stands for ``-``, as in Kong); repeated headers are joined
  with ``", "``;
* ``query_params.NAME`` / ``query_params["NAME"]``: the query argument;
* ``shared.NAME`` / ``shared["NAME"]``: a value another plugin put in
  ``ctx.shared``;
* any of them followed by ``or "default"`` (or a number).

A missing value renders as the default, else as an empty string. Lookups see
the request as the client sent it, before this plugin changed anything.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fastgw.plugins.context import HeaderList

if TYPE_CHECKING:
    from fastgw.plugins.context import RequestContext

SOURCES = ("headers", "query_params", "shared")

_EXPRESSION = re.compile(
    r"""\s*(?P<source>[A-Za-z_]\w*)\s*
        (?:\.\s*(?P<attr>[A-Za-z_]\w*)|\[\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')\s*\])
        \s*(?:or\s+(?:"(?P<ddq>[^"]*)"|'(?P<dsq>[^']*)'|(?P<dnum>-?\d+(?:\.\d+)?)))?\s*""",
    re.VERBOSE,
)


class TemplateError(ValueError):
    pass


class Lookup:
    """One ``$(source.key or default)``."""

    __slots__ = ("default", "key", "source")

    def __init__(self, source: str, key: str, default: str) -> None:
        self.source = source
        self.key = key
        self.default = default

    def render(self, env: TemplateEnv) -> str:
        value = env.lookup(self.source, self.key)
        return self.default if value is None else value


class Template:
    """A value: literal text, or text with lookups. ``render`` is what the
    value is for one request."""

    __slots__ = ("literal", "parts")

    def __init__(self, parts: tuple[str | Lookup, ...]) -> None:
        self.parts = parts
        # PERF: most values have no lookup and render to this constant.
        only_text = all(type(part) is str for part in parts)
        self.literal: str | None = "".join(parts) if only_text else None  # type: ignore[arg-type]

    def render(self, env: TemplateEnv | None) -> str:
        if self.literal is not None:
            return self.literal
        assert env is not None
        return "".join(part if isinstance(part, str) else part.render(env)
                       for part in self.parts)


def _expression_end(text: str, start: int) -> int:
    """Index of the ``)`` closing the expression that starts at ``start``
    (just after ``$(``), skipping quoted strings and nested parentheses."""
    depth = 1
    quote = ""
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
    raise TemplateError(f"unterminated template expression in '{text}'")


def _lookup(expression: str) -> Lookup:
    match = _EXPRESSION.fullmatch(expression)
    if match is None or match["source"] not in SOURCES:
        if match is not None and match["source"] == "uri_captures":
            raise TemplateError(f"'$({expression})': uri_captures are not available in fastgw")
        raise TemplateError(
            f"unsupported template expression '$({expression})': use headers.NAME, "
            "query_params.NAME or shared.NAME, optionally followed by or \"default\""
        )
    key = match["attr"] if match["attr"] is not None else match["dq"] or match["sq"] or ""
    default = next((match[name] for name in ("ddq", "dsq", "dnum") if match[name] is not None), "")
    return Lookup(match["source"], key, default)


def compile_template(text: str) -> Template:
    """Raises ``TemplateError`` for an expression outside the supported forms."""
    parts: list[str | Lookup] = []
    position = 0
    while True:
        start = text.find("$(", position)
        if start < 0:
            break
        end = _expression_end(text, start + 2)
        if start > position:
            parts.append(text[position:start])
        parts.append(_lookup(text[start + 2:end]))
        position = end + 1
    if position < len(text) or not parts:
        parts.append(text[position:])
    return Template(tuple(parts))


def template_error(text: str) -> str | None:
    """The reason ``text`` is not a valid value, for schema checks."""
    try:
        compile_template(text)
    except TemplateError as exc:
        return str(exc)
    return None


class TemplateEnv:
    """What lookups read, captured before the plugin changes the request."""

    __slots__ = ("_headers", "_host", "_query", "_query_string", "_shared")

    def __init__(self, ctx: RequestContext) -> None:
        request = ctx.request
        self._headers = HeaderList(list(request.headers.items))
        self._host = request.host  # the core keeps Host out of the header list
        self._query_string = request.query_string
        self._query: dict[str, list[str]] | None = None
        self._shared = ctx.shared

    def lookup(self, source: str, key: str) -> str | None:
        values: list[Any]
        if source == "headers":
            name = key.replace("_", "-")
            if name.lower() == "host":
                return self._host
            values = self._headers.get_all(name)
        elif source == "query_params":
            if self._query is None:
                self._query = parse_qs(self._query_string, keep_blank_values=True)
            values = self._query.get(key) or []
        else:
            value = self._shared.get(key)
            values = [] if value is None else [value]
        return ", ".join(str(value) for value in values) if values else None
