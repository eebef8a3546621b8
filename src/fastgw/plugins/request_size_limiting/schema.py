"""Config of ``request-size-limiting``, after Kong's
``kong/plugins/request-size-limiting/schema.lua``."""

from __future__ import annotations

from fastgw.config.schema import Boolean, Integer, Record, String

# Bytes per unit; the first unit is the default, as in Kong.
UNIT_BYTES = {"megabytes": 1 << 20, "kilobytes": 1 << 10, "bytes": 1}

SCHEMA = Record(
    {
        "allowed_payload_size": Integer(
            between=(0, 2**31 - 1),
            default=128,
            description="Largest request body allowed, in size_unit units.",
        ),
        "size_unit": String(
            one_of=tuple(UNIT_BYTES),
            default="megabytes",
            description="Unit of allowed_payload_size: megabytes, kilobytes or bytes.",
        ),
        "require_content_length": Boolean(
            default=False,
            description="Refuse (411) requests that are neither chunked nor carry Content-Length.",
        ),
    },
    description="Refuse request bodies larger than a configured size.",
)
