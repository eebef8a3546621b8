"""``ip-restriction``: refuse a client whose address is denied or not allowed.

As in Kong, ``deny`` is checked first, then ``allow``: an address in both
lists is refused. The lists become, once per config, a table per IP version
of ``prefix length -> set of network numbers``, so a lookup costs one shift
and one set probe per distinct prefix length, however long the lists are.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from fastgw.plugins.base import Plugin
from fastgw.plugins.ip_restriction.schema import Network, parse_network

if TYPE_CHECKING:
    from fastgw.plugins.context import RequestContext
    from fastgw.plugins.state import ConfigState

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Kong's answer when the client has no IP address (a unix socket peer).
NO_CLIENT_IP_MESSAGE = "Cannot identify the client IP address, unix domain sockets are not supported."


@functools.lru_cache(maxsize=4096)
def parse_client_ip(text: str) -> Address | None:
    """The client's address; an IPv4-mapped IPv6 address (a dual-stack
    listener's view of an IPv4 client) counts as the IPv4 address.
    PERF: cached, since the same clients come back (parsing costs ~1 us)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class NetworkSet:
    """Membership of an address in a fixed set of networks."""

    __slots__ = ("_by_version",)

    def __init__(self, networks: Iterable[Network]) -> None:
        tables: dict[int, dict[int, set[int]]] = {4: {}, 6: {}}
        for network in networks:
            host_bits = network.max_prefixlen - network.prefixlen
            keys = tables[network.version].setdefault(host_bits, set())
            keys.add(int(network.network_address) >> host_bits)
        self._by_version = {
            version: tuple((bits, frozenset(keys)) for bits, keys in sorted(table.items()))
            for version, table in tables.items()
        }

    def __contains__(self, address: Address) -> bool:
        value = int(address)
        for host_bits, keys in self._by_version[address.version]:
            if value >> host_bits in keys:
                return True
        return False


def _network_set(entries: list[str] | None) -> NetworkSet | None:
    return NetworkSet(parse_network(entry) for entry in entries) if entries else None


class IpRestrictionHandler(Plugin):
    name = "ip-restriction"
    PRIORITY = 990

    __slots__ = ("allow", "deny", "refusal", "status")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.deny = _network_set(config["deny"])
        self.allow = _network_set(config["allow"])
        self.status: int = config["status"]
        self.refusal = {"message": config["message"]}

    def access(self, ctx: RequestContext) -> None:
        address = parse_client_ip(ctx.request.client_ip)
        if address is None:
            ctx.exit(403, {"message": NO_CLIENT_IP_MESSAGE})
            return
        # Kong checks deny first: an address in both lists is refused.
        deny = self.deny
        if deny is not None and address in deny:
            ctx.exit(self.status, self.refusal)
            return
        allow = self.allow
        if allow is not None and address not in allow:
            ctx.exit(self.status, self.refusal)


HANDLER = IpRestrictionHandler
