"""Config of ``correlation-id``, after Kong's ``kong/plugins/correlation-id/schema.lua``."""

from __future__ import annotations

from fastgw.config.schema import Boolean, Record, String

GENERATORS = ("uuid", "uuid#counter", "tracker")

SCHEMA = Record(
    {
        "header_name": String(
            match=r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$",
            match_message="invalid header name '{value}'",
            default="Kong-Request-ID",
            description="Header carrying the id, upstream and (with echo_downstream) back.",
        ),
        "generator": String(
            one_of=GENERATORS,
            default="uuid#counter",
            description="How ids are made: uuid, uuid#counter or tracker.",
        ),
        "echo_downstream": Boolean(
            default=False, description="Send the id back to the client in the response."
        ),
    },
    description="Give each request an id header.",
)
