"""Upstreams in a worker: active health checks and target name resolution.

The compiled core keeps one ``UpstreamRuntime`` per upstream (and per TLS
setting of the services using it) in ``gateway.upstreams`` (the balancer,
target health, passive checks) and keeps it across config reloads while the
upstream's definition is unchanged. ``UpstreamSupervisor`` follows that dict:
each runtime gets a ``Watch`` (an ``ActiveChecker`` when active checks are on,
a ``TargetResolver`` when a target is named by a host name); a runtime that
leaves the dict has its watch stopped, so checks of a kept upstream run on
undisturbed by reloads.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastgw.config.model import Config
from fastgw.upstreams.dns import TargetResolver
from fastgw.upstreams.health import ActiveChecker, ActiveSettings
from fastgw.upstreams.report import worst

__all__ = ["UpstreamSupervisor", "Watch"]


class Watch:
    """What runs for one ``UpstreamRuntime``."""

    def __init__(self, runtime: Any, dns_refresh_interval: float,
                 loop: asyncio.AbstractEventLoop):
        self.runtime = runtime
        settings = ActiveSettings.from_healthchecks(runtime.spec.healthchecks)
        self.checker = ActiveChecker(runtime, settings) if settings.enabled else None
        self.resolver = TargetResolver(runtime, dns_refresh_interval, loop)

    def start(self) -> None:
        if self.checker is not None:
            self.checker.start()
        self.resolver.start()

    async def stop(self) -> None:
        if self.checker is not None:
            await self.checker.stop()
        await self.resolver.stop()

    def health(self) -> list[dict]:
        """The runtime's ``target_health()``, each with its resolved addresses."""
        addresses = self.resolver.addresses
        return [{**entry, "addresses": list(addresses.get(index, ()))}
                for index, entry in enumerate(self.runtime.target_health())]


class UpstreamSupervisor:
    """Starts and stops the watches of one worker's upstreams."""

    def __init__(self, gateway: Any, loop: asyncio.AbstractEventLoop):
        self.gateway = gateway
        self.loop = loop
        self.watches: dict[Any, Watch] = {}  # keyed as gateway.upstreams
        self.stopping: set[asyncio.Task] = set()

    def sync(self, config: Config) -> None:
        """Follow ``gateway.upstreams`` after a config was applied."""
        runtimes: dict[Any, Any] = self.gateway.upstreams
        interval = config.gateway.dns_refresh_interval
        for key, watch in list(self.watches.items()):
            if runtimes.get(key) is not watch.runtime:
                del self.watches[key]
                self._stop_later(watch)
        for key, runtime in runtimes.items():
            current = self.watches.get(key)
            if current is None:
                current = self.watches[key] = Watch(runtime, interval, self.loop)
                current.start()
            else:
                current.resolver.interval = interval

    def _stop_later(self, watch: Watch) -> None:
        # sync() runs inside a control message handler that must not wait.
        task = asyncio.ensure_future(watch.stop())
        self.stopping.add(task)
        task.add_done_callback(self.stopping.discard)

    def health(self, name: str | None = None) -> dict[str, list[dict]]:
        """Every upstream's targets (or only ``name``'s) as this worker sees
        them; an upstream balanced with two TLS settings shows the worse state
        of its two runtimes."""
        report: dict[str, list[dict]] = {}
        for watch in self.watches.values():
            upstream = watch.runtime.name
            if name is not None and upstream != name:
                continue
            entries = watch.health()
            seen = report.setdefault(upstream, entries)
            if seen is not entries:
                for mine, other in zip(seen, entries, strict=True):
                    mine["health"] = worst((mine["health"], other["health"]))
        return report

    async def stop(self) -> None:
        watches, self.watches = list(self.watches.values()), {}
        await asyncio.gather(*(watch.stop() for watch in watches), *self.stopping,
                             return_exceptions=True)
