"""What ``request-transformer`` and ``response-transformer`` share: the
``name:value`` config entries, their schema fields, and the five operations
applied in Kong's order (remove, rename, replace, add, append) to headers,
to ``name -> [values]`` maps (query strings and forms) and to JSON objects.

Semantics common to both plugins and to every target:

* remove: drop the name;
* rename ``old:new``: move the values of ``old`` to ``new`` (replacing what
  ``new`` had), only when ``old`` is present;
* replace: set the value, only when the name is present;
* add: set the value, only when the name is absent;
* append: add one more value (a header line; a list element, turning a
  present JSON value into a list).

Kong splits an entry at its first run of colons (``a::b`` is ``a`` and
``b``). Header entries with an empty value (``X-Foo:``) are skipped when
replacing, adding or appending, as Kong's response-transformer does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from fastgw.config.schema import Array, Record, String
from fastgw.plugins.context import HeaderList

OPERATIONS = ("remove", "rename", "replace", "add", "append")

_PAIR = re.compile(r"([^:]+):*(.*)", re.DOTALL)
# Kong's header name rule (kong.tools.http.validate_header_name).
_HEADER_NAME = re.compile(r"[A-Za-z0-9_-]+")
_BAD_HEADER_VALUE = re.compile(r"[\r\n\x00]")


def split_pair(entry: str) -> tuple[str, str]:
    """``name:value`` -> (name, value); an entry without a colon is a name."""
    match = _PAIR.fullmatch(entry)
    if match is None:  # only colons: the schema has refused it already
        return entry, ""
    return match.group(1), match.group(2)


# --- schema ----------------------------------------------------------------------


def _header_name_error(name: str) -> str | None:
    if _HEADER_NAME.fullmatch(name) is None:
        return f"'{name}' is not a valid header"
    return None


def check_header_entry(entry: str) -> str | None:
    return _header_name_error(split_pair(entry)[0])


def check_header_rename(entry: str) -> str | None:
    old, new = split_pair(entry)
    return _header_name_error(old) or _header_name_error(new)


def check_header_pair(entry: str) -> str | None:
    name, value = split_pair(entry)
    error = _header_name_error(name)
    if error is None and _BAD_HEADER_VALUE.search(value):
        error = f"'{value}' is not a valid header value"
    return error


def names_field(description: str, check: Callable[[str], str | None] | None = None) -> Array:
    """A list of names (what ``remove`` takes)."""
    return Array(String(check=check, description="A name."), default=(), description=description)


def pairs_field(description: str, check: Callable[[str], str | None] | None = None) -> Array:
    """A list of ``name:value`` entries."""
    return Array(
        String(
            match=r"^[^:]+:",
            match_message="invalid value '{value}': expected 'name:value'",
            check=check,
            description="A 'name:value' entry.",
        ),
        default=(),
        description=description,
    )


def operation_record(fields: dict[str, Any], description: str) -> Record:
    return Record(fields, default={}, description=description)


# --- compiled operations -----------------------------------------------------------


class Value(Protocol):
    """A configured value; ``render`` gives what it is for one request, or
    None to skip the entry (a JSON type cast that failed)."""

    def render(self, env: Any) -> Any: ...


class Constant:
    """A value that is the same for every request."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def render(self, env: Any) -> Any:
        return self.value


class Operations:
    """The five operations on one target (headers, querystring, body, json),
    compiled once per config."""

    __slots__ = OPERATIONS

    def __init__(self, remove: Sequence[str], rename: Sequence[tuple[str, str]],
                 replace: Sequence[tuple[str, Value]], add: Sequence[tuple[str, Value]],
                 append: Sequence[tuple[str, Value]]) -> None:
        self.remove = tuple(remove)
        self.rename = tuple(rename)
        self.replace = tuple(replace)
        self.add = tuple(add)
        self.append = tuple(append)

    @classmethod
    def from_config(cls, config: dict[str, Any], target: str,
                    make_value: Callable[[str, str, int], Value],
                    skip_empty: bool = False) -> Operations:
        """``config[op][target]`` for each operation; ``make_value(op, text,
        index)`` compiles a value. ``skip_empty`` drops ``name:`` entries."""

        def valued(op: str) -> list[tuple[str, Value]]:
            entries = []
            for index, entry in enumerate(config[op][target]):
                name, text = split_pair(entry)
                if text or not skip_empty:
                    entries.append((name, make_value(op, text, index)))
            return entries

        return cls(
            [split_pair(entry)[0] for entry in config["remove"][target]],
            [split_pair(entry) for entry in config["rename"][target]],
            valued("replace"), valued("add"), valued("append"),
        )

    def __bool__(self) -> bool:
        return bool(self.remove or self.rename or self.replace or self.add or self.append)

    def without(self, names: Sequence[str]) -> Operations:
        """These operations minus the valued entries for ``names`` (lower case)."""

        def keep(entries: tuple[tuple[str, Value], ...]) -> list[tuple[str, Value]]:
            return [(name, value) for name, value in entries if name.lower() not in names]

        return Operations(self.remove, self.rename, keep(self.replace), keep(self.add),
                          keep(self.append))


def apply_to_headers(headers: HeaderList, ops: Operations, env: Any) -> None:
    for name in ops.remove:
        headers.remove(name)
    for old, new in ops.rename:
        values = headers.get_all(old)
        if values:
            headers.remove(old)
            headers.remove(new)
            for value in values:
                headers.add(new, value)
    for name, template in ops.replace:
        if name in headers:
            headers.set(name, template.render(env))
    for name, template in ops.add:
        if name not in headers:
            headers.add(name, template.render(env))
    for name, template in ops.append:
        headers.add(name, template.render(env))


def append_json(current: Any, value: Any) -> list:
    if current is None:
        return [value]
    if type(current) is list:
        current.append(value)
        return current
    return [current, value]


def apply_to_mapping(mapping: dict[str, Any], ops: Operations, env: Any,
                     as_lists: bool = False) -> bool:
    """Apply to the top-level fields of a JSON object or, with ``as_lists``,
    to a ``name -> [values]`` map (query string, form). True when something
    changed."""
    changed = False
    for name in ops.remove:
        if name in mapping:
            del mapping[name]
            changed = True
    for old, new in ops.rename:
        if old in mapping:
            mapping[new] = mapping.pop(old)
            changed = True
    for present, entries in ((True, ops.replace), (False, ops.add)):
        for name, value in entries:
            if (name in mapping) is present:
                rendered = value.render(env)
                if rendered is not None:
                    mapping[name] = [rendered] if as_lists else rendered
                    changed = True
    for name, value in ops.append:
        rendered = value.render(env)
        if rendered is None:
            continue
        if as_lists:
            mapping.setdefault(name, []).append(rendered)
        else:
            mapping[name] = append_json(mapping.get(name), rendered)
        changed = True
    return changed
