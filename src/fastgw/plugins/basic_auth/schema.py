"""Config of basic-auth, with Kong's field names and defaults."""

from __future__ import annotations

from fastgw.config.schema import Boolean, Record
from fastgw.plugins.credentials import anonymous_field, realm_field

SCHEMA = Record(
    {
        "anonymous": anonymous_field(),
        "hide_credentials": Boolean(
            default=False,
            description="Remove the Authorization header before proxying.",
        ),
        "realm": realm_field(default="service"),
    },
    description="Authenticate consumers by HTTP Basic credentials.",
)
