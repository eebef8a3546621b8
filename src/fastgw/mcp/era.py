"""MCP's two eras on streamable HTTP. The handshake era (2025-03-26 to
2025-11-25): ``initialize`` once, then ``Mcp-Session-Id``. The single-exchange
era (2026-07-28): no handshake and no session; each request carries its
protocol version and the client's capabilities in ``params._meta``, mirrored
in the ``MCP-Protocol-Version``, ``Mcp-Method`` and (for a named call)
``Mcp-Name`` headers; ``server/discover`` tells the versions a server speaks;
errors choose the HTTP status and results say they are complete (and, when
cacheable, for whom and how long).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastgw.mcp.jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    JSONRPCError,
    Message,
)

HANDSHAKE_VERSIONS = ("2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS = ("2026-07-28",)
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
HEADER_MISMATCH = -32020
UNSUPPORTED_PROTOCOL_VERSION = -32022
# The HTTP status of an error answered to a single-exchange request.
_ERROR_STATUS = {PARSE_ERROR: 400, INVALID_REQUEST: 400, INVALID_PARAMS: 400,
                 HEADER_MISMATCH: 400, UNSUPPORTED_PROTOCOL_VERSION: 400, METHOD_NOT_FOUND: 404}
# The parameter a named request's Mcp-Name header mirrors.
_NAMED = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


def error_status(code: int) -> int:
    return _ERROR_STATUS.get(code, 500)


def _header_value(value: str | None) -> str | None:
    """A header value, decoded when sent as ``=?base64?...?=``."""
    if value is not None and value.startswith("=?base64?") and value.endswith("?="):
        try:
            return base64.b64decode(value[9:-2], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
    return value


def is_modern(message: Message) -> bool:
    """Whether a message is of the single-exchange era (its envelope unchecked)."""
    meta = message.params.get("_meta")
    return message.method == "server/discover" or (isinstance(meta, dict)
                                                   and VERSION_KEY in meta)


def check_envelope(message: Message, headers: Any) -> None:
    """A single-exchange request's envelope, checked against its headers
    (``headers.get(name)``): raises ``JSONRPCError`` with the
    specification's code when they disagree or the version is not spoken."""
    meta = message.params.get("_meta")
    if not isinstance(meta, dict) or VERSION_KEY not in meta or CAPABILITIES_KEY not in meta:
        raise JSONRPCError(INVALID_PARAMS, f"Invalid params: params._meta must carry "
                           f"'{VERSION_KEY}' and '{CAPABILITIES_KEY}'", message.id)
    version = meta[VERSION_KEY]
    if headers.get("mcp-protocol-version") != version:
        raise JSONRPCError(HEADER_MISMATCH, "the MCP-Protocol-Version header does not match "
                           "the request's protocol version", message.id)
    if headers.get("mcp-method") != message.method:
        raise JSONRPCError(HEADER_MISMATCH, "the Mcp-Method header does not match the "
                           "request's method", message.id)
    named = _NAMED.get(message.method or "")
    if named is not None and message.params.get(named) is not None and \
            _header_value(headers.get("mcp-name")) != message.params[named]:
        raise JSONRPCError(HEADER_MISMATCH, f"the Mcp-Name header does not match the "
                           f"request's '{named}'", message.id)
    if version not in MODERN_VERSIONS:
        raise JSONRPCError(UNSUPPORTED_PROTOCOL_VERSION, f"Unsupported protocol version: "
                           f"{version}", message.id,
                           {"supported": [*HANDSHAKE_VERSIONS, *MODERN_VERSIONS],
                            "requested": version})


def complete(value: dict[str, Any], cacheable: bool = False) -> dict[str, Any]:
    """A single-exchange result: complete, and a listing private to the
    caller (its ACLs shaped it) and not to be kept."""
    value["resultType"] = "complete"
    if cacheable:
        value["cacheScope"] = "private"
        value["ttlMs"] = 0
    return value
