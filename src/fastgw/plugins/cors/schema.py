"""Config of ``cors``, after Kong's ``kong/plugins/cors/schema.lua`` (3.x fields).

An ``origins`` entry is ``*``, an exact origin (``https://example.com``), or a
regular expression (anything with characters other than letters, digits and
``.:/-``).
"""

from __future__ import annotations

import re

from fastgw.config.schema import Array, Boolean, Number, Record, String

# Kong's full list, which is also the default of ``methods``.
ALL_METHODS = ("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT")


def _check_origin(value: str) -> str | None:
    if value == "*":
        return None
    try:
        re.compile(value)
    except re.error:
        return f"'{value}' is not a valid regex"
    return None


def _names(description: str) -> Array:
    return Array(String(description="A header name."), default=(), description=description)


SCHEMA = Record(
    {
        "origins": Array(
            String(check=_check_origin, description="'*', an exact origin or a regex."),
            default=(),
            description="Origins allowed in Access-Control-Allow-Origin; any when empty.",
        ),
        "headers": _names(
            "Access-Control-Allow-Headers of preflight answers; when empty the "
            "request's Access-Control-Request-Headers is echoed."
        ),
        "exposed_headers": _names("Access-Control-Expose-Headers of responses."),
        "methods": Array(
            String(one_of=ALL_METHODS, description="An HTTP method."),
            default=ALL_METHODS,
            description="Access-Control-Allow-Methods of preflight answers.",
        ),
        "max_age": Number(
            between=(0, 2**31 - 1),
            description="Access-Control-Max-Age of preflight answers, in seconds; none when unset.",
        ),
        "credentials": Boolean(
            default=False, description="Send Access-Control-Allow-Credentials: true."
        ),
        "private_network": Boolean(
            default=False,
            description="Answer Access-Control-Request-Private-Network: true with "
            "Access-Control-Allow-Private-Network: true.",
        ),
        "preflight_continue": Boolean(
            default=False, description="Send preflight requests upstream instead of answering."
        ),
        "allow_origin_absent": Boolean(
            default=True, description="Add CORS headers to responses to requests without Origin."
        ),
    },
    description="Cross-origin resource sharing.",
)
