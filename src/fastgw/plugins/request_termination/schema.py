"""Config of ``request-termination``, after Kong's
``kong/plugins/request-termination/schema.lua``."""

from __future__ import annotations

from fastgw.config.schema import Boolean, Integer, Path, Record, String, Validation

_HEADER_NAME = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"


def _check(config: dict, path: Path, ctx: Validation) -> None:
    # Kong's rules and wording.
    message, content_type, body = config["message"], config["content_type"], config["body"]
    if message and (content_type or body):
        ctx.error(path, "message cannot be used with content_type or body")
    elif content_type and not body:
        ctx.error(path, "content_type requires a body")
    elif config["echo"] and (content_type or body):
        ctx.error(path, "echo cannot be used with content_type and body")


SCHEMA = Record(
    {
        "status_code": Integer(
            between=(100, 599), default=503, description="Status of the answer."
        ),
        "message": String(
            description="Message of the default JSON answer {\"message\": ...}; unset: "
            "Kong's message for the status, if it has one."
        ),
        "content_type": String(description="Content-Type of the raw 'body'."),
        "body": String(description="Raw body sent instead of the JSON message."),
        "echo": Boolean(
            default=False,
            description="Answer with a JSON copy of the request (for debugging), with "
            "the matched route and service.",
        ),
        "trigger": String(
            match=_HEADER_NAME,
            match_message="invalid header name '{value}'",
            description="Only terminate requests carrying this header or query argument.",
        ),
    },
    validator=_check,
    description="Answer requests without proxying them.",
)
