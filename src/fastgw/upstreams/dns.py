"""Resolution of upstream target host names.

Each target named by a host name (not an IP literal) is resolved when its
upstream is loaded and again every ``_gateway.dns_refresh_interval`` seconds.
A name that does not resolve puts its target in Kong's ``DNS_ERROR`` state,
out of rotation; when it resolves again the target is back, healthy. Nothing
else fails: the rest of the upstream keeps serving.

The proxy's own connects still go through the event loop's resolver; what
this module adds is that a dead name is noticed before traffic hits it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import Any

log = logging.getLogger("fastgw.upstreams")

# A lookup slower than this counts as failed: the system resolver's own
# retries (resolv.conf: 5 s x 2 attempts) would otherwise hold a round up.
RESOLVE_TIMEOUT_S = 10.0


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class TargetResolver:
    """Resolves the named targets of one ``UpstreamRuntime`` in one worker."""

    def __init__(self, runtime: Any, interval: float, loop: asyncio.AbstractEventLoop):
        self.runtime = runtime
        self.interval = interval  # read at each round, so a reload can change it
        self.loop = loop
        self.named = [index for index, target in enumerate(runtime.targets)
                      if not is_ip_literal(target.host)]
        # An IP literal is its own address; named targets get theirs by lookup.
        self.addresses: dict[int, tuple[str, ...]] = {
            index: (target.host,) for index, target in enumerate(runtime.targets)
            if index not in self.named}
        self.failed: set[int] = set()  # the targets this resolver marked DNS_ERROR
        self.rounds = 0
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        if self.named:
            self.task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.resolve_all()
            except Exception:
                log.exception("resolving the targets of upstream %s failed", self.runtime.name)
            if self.interval <= 0:
                return
            await asyncio.sleep(self.interval)

    async def resolve_all(self) -> None:
        self.rounds += 1
        results = await asyncio.gather(*(self.resolve(index) for index in self.named))
        for index, addresses in zip(self.named, results, strict=True):
            self.record(index, addresses)

    async def resolve(self, index: int) -> tuple[str, ...] | None:
        target = self.runtime.targets[index]
        try:
            infos = await asyncio.wait_for(
                self.loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM),
                RESOLVE_TIMEOUT_S,
            )
        except (OSError, UnicodeError, TimeoutError) as exc:
            # socket.gaierror is an OSError; a name too long for IDNA is a UnicodeError.
            log.warning("upstream %s target %s does not resolve: %s",
                        self.runtime.name, target.target, exc)
            return None
        return tuple(dict.fromkeys(info[4][0] for info in infos))

    def record(self, index: int, addresses: tuple[str, ...] | None) -> None:
        if addresses:
            self.addresses[index] = addresses
            if index in self.failed:
                self.failed.discard(index)
                self.runtime.set_target_health(index, True, "dns: resolves again")
            return
        self.addresses.pop(index, None)
        if index not in self.failed:
            self.failed.add(index)
            self.runtime.set_target_health(index, False, "dns: no address", dns=True)
