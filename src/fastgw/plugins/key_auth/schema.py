"""Config of key-auth, with Kong's field names and defaults."""

from __future__ import annotations

from fastgw.config.schema import Array, Boolean, Path, Record, String, Validation
from fastgw.plugins.credentials import anonymous_field, realm_field

# Kong's typedefs.header_name: the names double as query and body field names.
_KEY_NAME = r"^[A-Za-z0-9_-]+$"
_PLACES = ("key_in_header", "key_in_query", "key_in_body")


def _check(config: dict, path: Path, ctx: Validation) -> None:
    # Kong accepts a key-auth that looks nowhere; it could only ever answer 401.
    if not any(config[place] for place in _PLACES):
        ctx.error(path, "at least one of 'key_in_header', 'key_in_query', 'key_in_body' "
                  "must be true")


SCHEMA = Record(
    {
        "key_names": Array(
            String(
                match=_KEY_NAME,
                match_message="bad header name '{value}', allowed characters are A-Z, a-z, "
                "0-9, '_', and '-'",
                description="A header, query argument or body field that may carry the key.",
            ),
            len_min=1,
            default=("apikey",),
            description="Names the key is looked for under, in this order.",
        ),
        "hide_credentials": Boolean(
            default=False,
            description="Remove the key from the header, query and body before proxying.",
        ),
        "anonymous": anonymous_field(),
        "key_in_header": Boolean(default=True, description="Look for the key in headers."),
        "key_in_query": Boolean(default=True, description="Look for the key in the query."),
        "key_in_body": Boolean(
            default=False,
            description="Look for the key in a JSON or form-urlencoded request body.",
        ),
        "run_on_preflight": Boolean(
            default=True, description="Authenticate OPTIONS requests too; false lets them pass."
        ),
        "realm": realm_field(),
    },
    validator=_check,
    description="Authenticate consumers by API key.",
)
