"""Config of ``ip-restriction``, after Kong's ``kong/plugins/ip-restriction/schema.lua``.

``allow`` and ``deny`` hold IPv4/IPv6 addresses or CIDR ranges; at least one
of them must be non-empty. ``status`` and ``message`` shape the refusal.
"""

from __future__ import annotations

import ipaddress

from fastgw.config.schema import Array, Integer, Path, Record, String, Validation

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_STATUS = 403
DEFAULT_MESSAGE = "IP address not allowed"


def parse_network(text: str) -> Network:
    """An address or CIDR range as a network; a single address is a /32 or
    /128. Host bits below the prefix are ignored, as Kong's matcher does."""
    return ipaddress.ip_network(text, strict=False)


def _check_ip_or_cidr(value: str) -> str | None:
    try:
        parse_network(value)
    except ValueError:
        return f"invalid ip or cidr range: '{value}'"
    return None


def _address_list(description: str) -> Array:
    return Array(
        String(check=_check_ip_or_cidr, description="An IP address or a CIDR range."),
        default=(),
        description=description,
    )


def _check_config(config: dict, path: Path, ctx: Validation) -> None:
    if not config["allow"] and not config["deny"]:
        ctx.error(path, "at least one of these fields must be non-empty: 'allow', 'deny'")


SCHEMA = Record(
    {
        "allow": _address_list("Addresses or ranges allowed; every other client is refused."),
        "deny": _address_list("Addresses or ranges refused (checked before 'allow')."),
        "status": Integer(
            between=(400, 599),
            default=DEFAULT_STATUS,
            description="HTTP status of a refusal.",
        ),
        "message": String(
            default=DEFAULT_MESSAGE,
            description="The 'message' of the JSON body of a refusal.",
        ),
    },
    validator=_check_config,
    description="Allow or deny clients by IP address or CIDR range.",
)
