"""A small declarative schema library, in the style of Kong's ``kong.db.schema``.

A schema is a tree of ``Field`` objects. Every field has a type, an optional
default, bounds and a one-line description; rules that span several fields of
a record go in that record's single ``validator``. Validation:

* fills defaults (a missing or ``null`` value counts as absent),
* rejects unknown fields,
* resolves ``{vault://env/NAME}`` references in ``referenceable`` fields,
* collects *every* error instead of stopping at the first one.

Error paths. An error is reported as ``path: message`` where ``path`` names the
offending value by its position in the document: record fields are joined with
dots and list elements are written with their index, e.g.
``services[0].routes[1].paths[0]``; map entries use their key like a field,
e.g. ``routes[0].headers.x-version``. The whole document is ``document``.

Vault references. ``{vault://env/NAME}`` reads the environment variable
``NAME`` upper-cased with ``-`` turned into ``_`` (as Kong's env vault does);
``{vault://PREFIX/NAME}`` goes through the document's vault of that prefix
(an ``env`` vault whose ``config.prefix`` is put before ``NAME``);
``{vault://env/NAME/KEY}`` parses that variable as a JSON object and takes
``KEY``. Only fields marked ``referenceable`` accept references; anywhere else
a reference is an error, so a secret never ends up used literally by mistake.

``secret`` fields are replaced by ``"<redacted>"`` in ``Field.redact`` output,
unless their value is a vault reference, which is shown as written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

__all__ = [
    "INVALID",
    "MISSING",
    "REDACTED",
    "Array",
    "Boolean",
    "Dynamic",
    "Field",
    "Integer",
    "Map",
    "Number",
    "Path",
    "Record",
    "Set",
    "String",
    "Validation",
    "format_path",
    "is_reference",
]


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


MISSING: Any = _Sentinel("MISSING")  # "no default" marker
INVALID: Any = _Sentinel("INVALID")  # what _coerce returns for a value that failed
REDACTED = "<redacted>"

# A path is a chain of (parent, key) pairs ending in None, so that building one
# per field is a single tuple allocation; it is turned into text only when an
# error is reported.
Path = tuple | None

_VAULT_PREFIX = "{vault://"
_VAULT_REFERENCE = re.compile(r"\{vault://([A-Za-z0-9_-]+)/([^/{}]+)(?:/([^{}]+))?\}")


def format_path(path: Path) -> str:
    keys: list[Any] = []
    while path is not None:
        path, key = path
        keys.append(key)
    if not keys:
        return "document"
    parts: list[str] = []
    for key in reversed(keys):
        if type(key) is int:
            parts.append(f"[{key}]")
        else:
            parts.append(f".{key}" if parts else str(key))
    return "".join(parts)


def is_reference(value: Any) -> bool:
    return type(value) is str and value.startswith(_VAULT_PREFIX)


class Validation:
    """The state of one validation run: the environment used to resolve vault
    references, and every error found so far."""

    __slots__ = ("env", "errors", "vaults")

    def __init__(self, env: Mapping[str, str] | None = None,
                 vaults: Mapping[str, str] | None = None) -> None:
        self.env: Mapping[str, str] = env if env is not None else {}
        self.errors: list[tuple[Path, str]] = []
        # The vault prefixes references may use -> the prefix of the
        # variables they read: Kong's own ``env``, plus the document's
        # ``vaults`` entities.
        self.vaults: Mapping[str, str] = {"env": "", **(vaults or {})}

    def error(self, path: Path, message: str) -> None:
        self.errors.append((path, message))

    def messages(self) -> list[str]:
        return [f"{format_path(path)}: {message}" for path, message in self.errors]

    def resolve_reference(self, reference: str, path: Path) -> Any:
        match = _VAULT_REFERENCE.fullmatch(reference)
        if match is None:
            self.error(path, f"invalid vault reference {reference!r}")
            return INVALID
        vault, name, key = match.groups()
        prefix = self.vaults.get(vault)
        if prefix is None:
            self.error(path, f"unknown vault {vault!r} in {reference} (use 'env', or the prefix "
                       "of one of the document's 'vaults')")
            return INVALID
        variable = (prefix + name).upper().replace("-", "_")
        value = self.env.get(variable)
        if value is None:
            self.error(
                path, f"cannot resolve {reference}: environment variable {variable} is not set"
            )
            return INVALID
        if key is None:
            return value
        try:
            document = orjson.loads(value)
        except orjson.JSONDecodeError:
            document = None
        if not isinstance(document, dict) or key not in document:
            self.error(
                path,
                f"cannot resolve {reference}: {variable} is not a JSON object with key {key!r}",
            )
            return INVALID
        return document[key]


Check = Callable[[Any], "str | None"]
Validator = Callable[[dict, Path, Validation], None]


class Field:
    """Base of every schema type. ``validate`` handles what all types share
    (absence, defaults, vault references, the custom ``check``); subclasses
    implement ``_coerce`` (type and bounds)."""

    type_name = "any"
    __slots__ = ("check", "default", "description", "referenceable", "required", "secret")

    def __init__(
        self,
        *,
        description: str = "",
        required: bool = False,
        default: Any = MISSING,
        referenceable: bool = False,
        secret: bool = False,
        check: Check | None = None,
    ) -> None:
        self.description = description
        self.required = required
        self.default = default
        self.referenceable = referenceable
        self.secret = secret
        self.check = check  # value -> error message or None, run after type checks

    def validate(self, value: Any, path: Path, ctx: Validation) -> Any:
        """The normalised value, or None when the value is absent or invalid
        (in which case an error was recorded)."""
        if value is None:
            if self.default is not MISSING:
                return self._default_value(path, ctx)
            if self.required:
                ctx.error(path, "required field missing")
            return None
        if type(value) is str and value.startswith(_VAULT_PREFIX):
            if not self.referenceable:
                ctx.error(path, "vault references are not allowed in this field")
                return None
            value = ctx.resolve_reference(value, path)
            if value is INVALID:
                return None
        value = self._coerce(value, path, ctx)
        if value is INVALID:
            return None
        if self.check is not None:
            message = self.check(value)
            if message:
                ctx.error(path, message)
                return None
        return value

    def _default_value(self, path: Path, ctx: Validation) -> Any:
        return self.default

    def _coerce(self, value: Any, path: Path, ctx: Validation) -> Any:
        return value

    def redact(self, value: Any) -> Any:
        """``value`` (a document fragment already validated against this
        field) with every secret replaced by ``REDACTED``."""
        if value is None or is_reference(value):
            return value
        if self.secret:
            return REDACTED
        return self._redact_inner(value)

    def _redact_inner(self, value: Any) -> Any:
        return value


def _format_choices(choices: Iterable[Any]) -> str:
    return ", ".join(str(choice) for choice in choices)


def _check_choice(field: Any, value: Any, path: Path, ctx: Validation) -> bool:
    if field.one_of is not None and value not in field.one_of:
        ctx.error(path, f"expected one of: {_format_choices(field.one_of)}")
        return False
    return True


def _check_length(field: Any, length: int, path: Path, ctx: Validation) -> bool:
    """``len_min``/``len_max`` of a string, array or map."""
    if length < field.len_min:
        ctx.error(path, f"length must be at least {field.len_min}")
        return False
    if field.len_max is not None and length > field.len_max:
        ctx.error(path, f"length must be at most {field.len_max}")
        return False
    return True


class String(Field):
    """Text. ``len_min`` defaults to 1, as in Kong: an empty string is an error."""

    type_name = "string"
    __slots__ = ("len_max", "len_min", "match", "match_message", "one_of")

    def __init__(
        self,
        *,
        len_min: int = 1,
        len_max: int | None = None,
        one_of: Iterable[str] | None = None,
        match: str | None = None,
        match_message: str = "invalid value: {value}",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.len_min = len_min
        self.len_max = len_max
        self.one_of = tuple(one_of) if one_of is not None else None
        self.match = re.compile(match) if match is not None else None
        self.match_message = match_message  # may contain {value}

    def _coerce(self, value: Any, path: Path, ctx: Validation) -> Any:
        if type(value) is not str:
            ctx.error(path, "expected a string")
            return INVALID
        if not _check_length(self, len(value), path, ctx):
            return INVALID
        if not _check_choice(self, value, path, ctx):
            return INVALID
        if self.match is not None and self.match.search(value) is None:
            ctx.error(path, self.match_message.format(value=value))
            return INVALID
        return value


class _Numeric(Field):
    __slots__ = ("between", "one_of")

    def __init__(
        self,
        *,
        between: tuple[float, float] | None = None,
        one_of: Iterable[float] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.between = between
        self.one_of = tuple(one_of) if one_of is not None else None

    def _check_bounds(self, value: Any, path: Path, ctx: Validation) -> Any:
        between = self.between
        if between is not None and not between[0] <= value <= between[1]:
            ctx.error(path, f"value should be between {between[0]} and {between[1]}")
            return INVALID
        if not _check_choice(self, value, path, ctx):
            return INVALID
        return value


class Integer(_Numeric):
    type_name = "integer"
    __slots__ = ()

    def _coerce(self, value: Any, path: Path, ctx: Validation) -> Any:
        kind = type(value)
        if kind is float and value.is_integer():
            # JSON writers may emit 10.0 for 10; the value is still whole.
            value = int(value)
        elif kind is not int:
            ctx.error(path, "expected an integer")
            return INVALID
        return self._check_bounds(value, path, ctx)


class Number(_Numeric):
    type_name = "number"
    __slots__ = ()

    def _coerce(self, value: Any, path: Path, ctx: Validation) -> Any:
        kind = type(value)
        if kind is not int and kind is not float:  # bool is deliberately excluded
            ctx.error(path, "expected a number")
            return INVALID
        if kind is float and not math.isfinite(value):
            ctx.error(path, "expected a finite number")
            return INVALID
        return self._check_bounds(value, path, ctx)


class Boolean(Field):
    type_name = "boolean"
    __slots__ = ()

    def _coerce(self, value: Any, path: Path, ctx: Validation) -> Any:
        if type(value) is not bool:
            ctx.error(path, "expected a boolean")
            return INVALID
        return value


def _report_nulls(items: Iterable[tuple[Any, Any]], path: Path, ctx: Validation) -> None:
    # A null element or map value is never what the author meant (a stray
    # "-" in YAML gives one), so it is an error rather than a default.
    for key, item in items:
        if item is None:
            ctx.error((path, key), "null is not allowed here")


class Array(Field):
    """A list whose elements all follow ``elements``."""

    type_name = "array"
    __slots__ = ("elements", "len_max", "len_min")

    def __init__(
        self,
        elements: Field,
        *,
        len_min: int = 0,
        len_max: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.elements = elements
        self.len_min = len_min
        self.len_max = len_max

    def _default_value(self, path: Path, ctx: Validation) -> Any:
        return list(self.default)  # a fresh list: callers may keep it

    def _coerce(self, value: Any, path: Path, ctx: Validation) -> Any:
        if type(value) is not list and type(value) is not tuple:
            ctx.error(path, f"expected {'a set' if type(self) is Set else 'an array'}")
            return INVALID
        if not _check_length(self, len(value), path, ctx):
            return INVALID
        if None in value:
            _report_nulls(enumerate(value), path, ctx)
            return INVALID
        validate = self.elements.validate
        return [validate(item, (path, index), ctx) for index, item in enumerate(value)]

    def _redact_inner(self, value: Any) -> Any:
        if type(value) is not list:
            return value
        redact = self.elements.redact
        return [redact(item) for item in value]


class Set(Array):
    """An array without repeats; duplicates are dropped, first one wins."""

    type_name = "set"
    __slots__ = ()

    def _coerce(self, value: Any, path: Path, ctx: Validation) -> Any:
        items = super()._coerce(value, path, ctx)
        if items is INVALID:
            return items
        try:
            return list(dict.fromkeys(items))
        except TypeError:  # unhashable elements (records): keep them as they are
            return items


class Map(Field):
    """A mapping with free-form keys; keys and values follow their schemas."""

    type_name = "map"
    __slots__ = ("keys", "len_max", "len_min", "values")

    def __init__(
        self,
        keys: Field,
        values: Field,
        *,
        len_min: int = 0,
        len_max: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.keys = keys
        self.values = values
        self.len_min = len_min
        self.len_max = len_max

    def _default_value(self, path: Path, ctx: Validation) -> Any:
        return dict(self.default)

    def _coerce(self, value: Any, path: Path, ctx: Validation) -> Any:
        if type(value) is not dict:
            ctx.error(path, "expected a map")
            return INVALID
        if not _check_length(self, len(value), path, ctx):
            return INVALID
        if None in value:
            ctx.error(path, "null is not allowed as a key")
            return INVALID
        if None in value.values():
            _report_nulls(value.items(), path, ctx)
            return INVALID
        result = {}
        for key, item in value.items():
            key_path = (path, key)
            checked_key = self.keys.validate(key, key_path, ctx)
            result[checked_key] = self.values.validate(item, key_path, ctx)
        return result

    def _redact_inner(self, value: Any) -> Any:
        if type(value) is not dict:
            return value
        redact = self.values.redact
        return {key: redact(item) for key, item in value.items()}


class Dynamic(Field):
    """A record field whose schema depends on its siblings (a plugin's
    ``config`` depends on the plugin's ``name``). ``select`` receives the raw
    parent record and returns the schema to use, or None to leave the value
    unchecked (the sibling that chooses it has already reported an error).
    An absent value is validated as an empty record, so defaults are filled."""

    type_name = "dynamic"
    __slots__ = ("select",)

    def __init__(self, select: Callable[[dict], Field | None], **options: Any) -> None:
        super().__init__(**options)
        self.select = select


_CALL: Any = _Sentinel("CALL")  # Record plan: an absent value needs validate()
_SCALARS = (String, Integer, Number, Boolean)


def _absent_value(field: Field) -> Any:
    """What ``field.validate(None, ...)`` returns, when that is fixed."""
    if not isinstance(field, _SCALARS):
        return _CALL
    if field.default is not MISSING:
        return field.default
    return _CALL if field.required else None


class Record(Field):
    """A mapping with a fixed set of named fields; unknown names are errors.
    ``validator(record, path, ctx)`` checks rules spanning several fields and
    may complete the record; it runs only when every field is valid.
    ``ignored`` fields are checked but left out of the result: they carry
    nothing the gateway acts on."""

    type_name = "record"
    __slots__ = ("_plan", "fields", "ignored", "validator")

    def __init__(
        self,
        fields: Mapping[str, Field],
        *,
        validator: Validator | None = None,
        ignored: Mapping[str, Field] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.fields = dict(fields)
        self.ignored = dict(ignored or {})
        self.validator = validator
        # PERF: most fields of a typical entity are absent. For a scalar field
        # the outcome of an absent value is known in advance (its immutable
        # default, or None), which saves a validate() call per absent field.
        self._plan = tuple(
            (name, field, _absent_value(field)) for name, field in self.fields.items()
        )

    def _default_value(self, path: Path, ctx: Validation) -> Any:
        # A record's default passes through the record, which fills the
        # defaults of the nested fields it does not mention.
        return self._coerce(dict(self.default), path, ctx)

    def _coerce(self, value: Any, path: Path, ctx: Validation) -> Any:
        if type(value) is not dict:
            ctx.error(path, "expected a record")
            return INVALID
        errors_before = len(ctx.errors)
        fields = self.fields
        if len(value) > len(fields) or not fields.keys() >= value.keys():
            ignored = self.ignored
            for name in value:
                if name in ignored:
                    ignored[name].validate(value[name], (path, name), ctx)
                elif name not in fields:
                    ctx.error((path, name), "unknown field")
        result = {}
        get = value.get
        for name, field, absent in self._plan:
            raw = get(name)
            if raw is None and absent is not _CALL:
                result[name] = absent
            elif type(field) is Dynamic:
                chosen = field.select(value)
                if chosen is None:
                    result[name] = raw
                    continue
                result[name] = chosen.validate({} if raw is None else raw, (path, name), ctx)
            else:
                result[name] = field.validate(raw, (path, name), ctx)
        if self.validator is not None and len(ctx.errors) == errors_before:
            self.validator(result, path, ctx)
        return result

    def _redact_inner(self, value: Any) -> Any:
        if type(value) is not dict:
            return value
        fields = self.fields
        result = {}
        for name, item in value.items():
            field = fields.get(name)
            if type(field) is Dynamic:
                field = field.select(value)
            result[name] = item if field is None else field.redact(item)
        return result
