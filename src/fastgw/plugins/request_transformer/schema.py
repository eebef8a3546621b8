"""Config of ``request-transformer``, after Kong's
``kong/plugins/request-transformer/schema.lua``.

Each operation (``remove``, ``rename``, ``replace``, ``add``, ``append``) has
``headers``, ``querystring`` and ``body`` lists; ``replace`` also has ``uri``.
Values may read the request with ``$(...)`` templates (see ``template.py``).
"""

from __future__ import annotations

from fastgw.config.schema import Record, String
from fastgw.plugins.request_transformer.ops import (
    check_header_entry,
    check_header_pair,
    check_header_rename,
    names_field,
    operation_record,
    pairs_field,
    split_pair,
)
from fastgw.plugins.request_transformer.template import template_error


def _check_value(entry: str) -> str | None:
    return template_error(split_pair(entry)[1])


def _check_header_value(entry: str) -> str | None:
    return check_header_pair(entry) or _check_value(entry)


def _check_uri(value: str) -> str | None:
    if not value.startswith(("/", "$(")):
        return "must start with '/' (or be a template)"
    return template_error(value)


def _valued(what: str) -> dict:
    return {
        "body": pairs_field(f"'name:value' body fields {what}.", _check_value),
        "headers": pairs_field(f"'name:value' headers {what}.", _check_header_value),
        "querystring": pairs_field(f"'name:value' query arguments {what}.", _check_value),
    }


SCHEMA = Record(
    {
        "http_method": String(
            match=r"^[A-Z]+$",
            match_message="invalid method '{value}': expected upper case letters",
            description="Method sent upstream instead of the client's.",
        ),
        "remove": operation_record(
            {
                "body": names_field("Body fields to remove."),
                "headers": names_field("Headers to remove.", check_header_entry),
                "querystring": names_field("Query arguments to remove."),
            },
            "Names to remove.",
        ),
        "rename": operation_record(
            {
                "body": pairs_field("'old:new' body fields to rename."),
                "headers": pairs_field("'old:new' headers to rename.", check_header_rename),
                "querystring": pairs_field("'old:new' query arguments to rename."),
            },
            "Names to rename, when present.",
        ),
        "replace": operation_record(
            {
                **_valued("to set when present"),
                "uri": String(check=_check_uri, description="Path sent upstream instead."),
            },
            "Values to replace, when present, and the upstream path.",
        ),
        "add": operation_record(_valued("to set when absent"), "Values to add, when absent."),
        "append": operation_record(_valued("to add one more value to"), "Values to append."),
    },
    description="Change the request before it goes upstream.",
)
