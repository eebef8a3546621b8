"""Config of ``response-transformer``, after Kong's
``kong/plugins/response-transformer/schema.lua``.

Each operation has ``headers`` and ``json`` lists (top-level fields of a JSON
response body); ``replace``, ``add`` and ``append`` also have ``json_types``,
the JSON type of each ``json`` value by position (``string`` when absent).
Unlike Kong, which silently skips a value its type cannot parse, a
``number``/``boolean`` value that does not parse is a config error.
"""

from __future__ import annotations

import math
from typing import Any

from fastgw.config.schema import Array, Path, Record, String, Validation
from fastgw.plugins.request_transformer.ops import (
    check_header_pair,
    check_header_rename,
    names_field,
    operation_record,
    pairs_field,
    split_pair,
)

JSON_TYPES = ("boolean", "number", "string")
VALUED_OPERATIONS = ("replace", "add", "append")


def cast_json_value(text: str, json_type: str) -> Any:
    """The JSON value of ``text`` as ``json_type``; None when it does not parse."""
    if json_type == "number":
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if json_type == "boolean":
        return {"true": True, "false": False}.get(text)
    return text


def _valued(what: str) -> Record:
    return operation_record(
        {
            "json": pairs_field(f"'name:value' JSON fields {what}."),
            "json_types": Array(
                String(one_of=JSON_TYPES, description="boolean, number or string."),
                default=(),
                description="Type of each json value, by position; string when absent.",
            ),
            "headers": pairs_field(f"'name:value' headers {what}.", check_header_pair),
        },
        f"Values {what}.",
    )


def _check_json_types(config: dict, path: Path, ctx: Validation) -> None:
    for op in VALUED_OPERATIONS:
        entries, types = config[op]["json"], config[op]["json_types"]
        op_path = (path, op)
        if len(types) > len(entries):
            ctx.error((op_path, "json_types"),
                      f"has {len(types)} entries but json has {len(entries)}")
            continue
        for index, json_type in enumerate(types):
            value = split_pair(entries[index])[1]
            if cast_json_value(value, json_type) is None:
                ctx.error(((op_path, "json"), index),
                          f"'{value}' is not a {json_type} (json_types[{index}])")


SCHEMA = Record(
    {
        "remove": operation_record(
            {
                "json": names_field("JSON fields to remove."),
                "headers": names_field("Headers to remove."),
            },
            "Names to remove.",
        ),
        "rename": operation_record(
            {
                "json": pairs_field("'old:new' JSON fields to rename."),
                "headers": pairs_field("'old:new' headers to rename.", check_header_rename),
            },
            "Names to rename, when present.",
        ),
        "replace": _valued("to set when present"),
        "add": _valued("to set when absent"),
        "append": _valued("to add one more value to"),
    },
    validator=_check_json_types,
    description="Change response headers and JSON body fields.",
)
