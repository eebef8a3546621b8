"""Config of ``hmac-auth``, after Kong's ``kong/plugins/hmac-auth/schema.lua``."""

from __future__ import annotations

from fastgw.config.schema import Array, Boolean, Number, Record, String
from fastgw.plugins.credentials import anonymous_field, realm_field

ALGORITHMS = ("hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512")

SCHEMA = Record(
    {
        "hide_credentials": Boolean(
            default=False,
            description="Remove the signature's header before proxying.",
        ),
        "clock_skew": Number(
            default=300,
            check=lambda value: None if value > 0 else "value must be greater than 0",
            description="Seconds the request's Date or X-Date may be away from the "
            "gateway's clock (a replay guard).",
        ),
        "anonymous": anonymous_field(),
        "validate_request_body": Boolean(
            default=False,
            description="Also require the body to match its Digest header "
            "(SHA-256=base64); a request without Digest must have no body.",
        ),
        "enforce_headers": Array(
            String(description="A header name, or @request-target / request-line."),
            default=(),
            description="Headers every signature must cover.",
        ),
        "algorithms": Array(
            String(one_of=ALGORITHMS, description="An HMAC digest algorithm."),
            default=ALGORITHMS,
            description="Algorithms accepted in signatures.",
        ),
        "realm": realm_field(),
    },
    description="Authenticate consumers by HMAC signatures of their requests.",
)
