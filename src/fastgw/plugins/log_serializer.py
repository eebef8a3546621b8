"""The log entry both logging plugins write: ``ctx.log_entry()`` (Kong's basic
log serializer shape) plus the plugin's static ``custom_fields``, as JSON.

Kong's ``custom_fields_by_lua`` runs a Lua snippet per field and request;
fastgw runs no Lua, so that field is accepted only when empty and otherwise
rejected with an error that points to ``custom_fields``: static JSON values
set at a path of the entry. As in Kong 3.10, a dot in a name nests
(``"a.b": 1`` sets ``entry["a"]["b"]``) and ``\\.`` is a literal dot. Unlike
Kong's, these fields change only the entries of the plugin that declares
them, not those of logging plugins running after it.

Shared by file-log and http-log, so it belongs to neither plugin's folder.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from fastgw.config.schema import Field, Map, String

if TYPE_CHECKING:
    from fastgw.plugins.context import RequestContext

__all__ = ["LogSerializer", "custom_fields_by_lua_field", "custom_fields_field", "split_field_path"]

LUA_NOT_SUPPORTED = ("not supported: fastgw runs no Lua; set static values with "
                     "custom_fields instead")

_UNESCAPED_DOT = re.compile(r"(?<!\\)\.")


def split_field_path(name: str) -> tuple[str, ...]:
    """``"a.b\\.c"`` -> ``("a", "b.c")``."""
    return tuple(part.replace("\\.", ".") for part in _UNESCAPED_DOT.split(name))


def _check_field_name(name: str) -> str | None:
    if "" in split_field_path(name):
        return "empty name between dots (write '\\.' for a literal dot)"
    return None


def _check_json_value(value: Any) -> str | None:
    # orjson is what writes the entry, so it is the judge of what it can write
    # (YAML may give dates, integer keys or integers beyond 64 bits).
    try:
        orjson.dumps(value)
    except TypeError:
        return "expected a JSON value (string, number, boolean, array or object)"
    return None


def _reject_lua(value: Any) -> str | None:
    # An empty map (what deck exports) asks for nothing, so it is harmless.
    return None if value == {} else LUA_NOT_SUPPORTED


def custom_fields_by_lua_field() -> Field:
    return Field(check=_reject_lua,
                 description="Kong's per-request Lua fields; not supported, use custom_fields.")


def custom_fields_field() -> Map:
    return Map(
        String(check=_check_field_name, description="Entry path; dots nest, '\\.' is a dot."),
        Field(check=_check_json_value, description="The JSON value to set."),
        description="Static values added to (or replacing parts of) every log entry.",
    )


def _set_path(entry: dict, path: tuple[str, ...], value: Any) -> None:
    node = entry
    for name in path[:-1]:
        child = node.get(name)
        # Copy on the way down: a nested dict may be shared with the request
        # context (``ai``, ``log_fields``) or with the config itself.
        node[name] = child = dict(child) if isinstance(child, dict) else {}
        node = child
    node[path[-1]] = value


class LogSerializer:
    """Builds one request's entry; the custom fields are parsed once."""

    __slots__ = ("custom_fields",)

    def __init__(self, custom_fields: dict[str, Any] | None) -> None:
        self.custom_fields = tuple((split_field_path(name), value)
                                   for name, value in (custom_fields or {}).items())

    def entry(self, ctx: RequestContext) -> dict[str, Any]:
        entry = ctx.log_entry()
        for path, value in self.custom_fields:
            _set_path(entry, path, value)
        return entry

    def json(self, ctx: RequestContext) -> bytes:
        return orjson.dumps(self.entry(ctx))

    def line(self, ctx: RequestContext) -> bytes:
        """The entry as one JSON line, newline included."""
        return orjson.dumps(self.entry(ctx), option=orjson.OPT_APPEND_NEWLINE)
