"""Plausible example values for a JSON schema, used as the mock model's tool-call arguments.

Handles the subset that tool definitions use in practice: OpenAI/Anthropic JSON schema,
pydantic output (`$defs` + `$ref`, `anyOf` with null) and Gemini's OpenAPI flavour, whose
type names are upper-case (`"OBJECT"`, `"STRING"`).
"""

from __future__ import annotations

from typing import Any

_MAX_DEPTH = 8

# Property-name fragments mapped to a believable value; checked in order, first match wins.
_STRING_BY_NAME = (
    ("email", "user@example.com"),
    ("url", "https://example.com"),
    ("uri", "https://example.com"),
    ("city", "Paris"),
    ("location", "Paris, France"),
    ("address", "1 Rue de Rivoli, Paris"),
    ("country", "France"),
    ("date", "2025-01-15"),
    ("timezone", "Europe/Paris"),
    ("time", "12:00"),
    ("unit", "celsius"),
    ("lang", "en"),
    ("currency", "EUR"),
    ("phone", "+33 1 23 45 67 89"),
    ("username", "ada"),
    ("name", "Ada Lovelace"),
)
_QUERY_NAMES = ("query", "question", "prompt", "text", "search", "message", "input")
_STRING_BY_FORMAT = {
    "date": "2025-01-15",
    "date-time": "2025-01-15T12:00:00Z",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "123e4567-e89b-12d3-a456-426614174000",
    "ipv4": "192.0.2.1",
}


def example_from_schema(schema: Any, hint_text: str = "") -> Any:
    """Return a value that validates against `schema` (required properties filled).

    `hint_text` (the user's last message) fills free-text fields such as `query`.
    """
    return _Example(schema if isinstance(schema, dict) else {}, hint_text).value(schema, "", 0)


class _Example:
    __slots__ = ("root", "hint_text")

    def __init__(self, root: dict, hint_text: str) -> None:
        self.root = root
        self.hint_text = " ".join(hint_text.split()[:12])

    def value(self, schema: Any, name: str, depth: int) -> Any:
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return None
        schema = self._resolve(schema)
        for key in ("const", "default"):
            if key in schema:
                return schema[key]
        for key in ("enum", "examples"):
            choices = schema.get(key)
            if isinstance(choices, list) and choices:
                return choices[0]
        for key in ("anyOf", "oneOf", "allOf"):
            alternatives = schema.get(key)
            if isinstance(alternatives, list) and alternatives:
                return self.value(_first_non_null(alternatives), name, depth + 1)
        kind = _type_of(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            count = max(int(schema.get("minItems", 1) or 1), 1)
            return [self.value(schema.get("items", {}), name, depth + 1) for _ in range(count)]
        if kind == "integer":
            return int(_bounded(schema, 1, step=1))
        if kind == "number":
            return float(_bounded(schema, 1.5, step=0.5))
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self._string(schema, name)

    def _object(self, schema: dict, depth: int) -> dict:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        # A schema without a `required` list is usually loosely written: fill every property.
        required = schema.get("required", list(properties))
        return {
            prop: self.value(properties[prop], prop, depth + 1)
            for prop in required
            if prop in properties
        }

    def _string(self, schema: dict, name: str) -> str:
        fmt = schema.get("format")
        if fmt in _STRING_BY_FORMAT:
            return _STRING_BY_FORMAT[fmt]
        lowered = name.lower()
        if self.hint_text and any(word in lowered for word in _QUERY_NAMES):
            return self.hint_text
        for fragment, example in _STRING_BY_NAME:
            if fragment in lowered:
                return example
        if lowered == "id" or lowered.endswith("_id") or name.endswith("Id"):
            return "id-123"
        text = f"example {name}".strip() if name else "example"
        min_length = int(schema.get("minLength", 0) or 0)
        return text.ljust(min_length, "x")

    def _resolve(self, schema: dict) -> dict:
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        target: Any = self.root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return target if isinstance(target, dict) else {}


def _type_of(schema: dict) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    if isinstance(kind, str):
        return kind.lower()
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _first_non_null(alternatives: list) -> Any:
    for alternative in alternatives:
        if not (isinstance(alternative, dict) and _type_of(alternative) == "null"):
            return alternative
    return alternatives[0]


def _bounded(schema: dict, preferred: float, step: float) -> float:
    """`preferred` moved inside [minimum, maximum], honouring exclusive bounds."""
    low = schema.get("minimum")
    if schema.get("exclusiveMinimum") is not None and not isinstance(
        schema["exclusiveMinimum"], bool
    ):
        low = schema["exclusiveMinimum"] + step
    high = schema.get("maximum")
    if schema.get("exclusiveMaximum") is not None and not isinstance(
        schema["exclusiveMaximum"], bool
    ):
        high = schema["exclusiveMaximum"] - step
    value = preferred
    if isinstance(low, (int, float)) and value < low:
        value = low
    if isinstance(high, (int, float)) and value > high:
        value = high
    return value
