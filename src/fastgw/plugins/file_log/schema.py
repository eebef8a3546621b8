"""file-log's config, after Kong 3.x's (``kong/plugins/file-log/schema.lua``)."""

from __future__ import annotations

from fastgw.config.schema import Boolean, Record, String
from fastgw.plugins.log_serializer import custom_fields_by_lua_field, custom_fields_field

SCHEMA = Record(
    {
        "path": String(
            required=True,
            # Kong's rule: no shell-special characters in the name.
            match=r"^[^*&%\\`]+$",
            match_message="not a valid filename",
            description="The log file; created (mode 0644) if it does not exist.",
        ),
        "reopen": Boolean(
            default=False,
            description="Open and close the file for every line (lets logrotate move it).",
        ),
        "custom_fields_by_lua": custom_fields_by_lua_field(),
        "custom_fields": custom_fields_field(),
    },
    description="file-log settings.",
)
