"""Which plugin instances run for a route, built once per config version.

Kong's precedence decides between several configurations of the same plugin
(most specific first):

1. route + service + consumer   5. consumer
2. route + consumer             6. route
3. service + consumer           7. service
4. route + service              8. global

The consumer is only known once an auth plugin has run, so each route gets
a chain without consumer-scoped entries, plus (only when the config has
consumer-scoped plugins) one chain per consumer that has any.
"""

from __future__ import annotations

import logging

from fastgw.config.model import Config, PluginConfig, Route, Service
from fastgw.plugins import handler_class
from fastgw.plugins.base import Plugin
from fastgw.plugins.state import ConfigState

log = logging.getLogger("fastgw.plugins")

# Plugins the compiled core implements itself: their presence switches a
# feature on for the route, and they run no Python per request.
NATIVE_PLUGINS = frozenset({"prometheus"})


class PluginChain:
    """The plugins of one route (and maybe one consumer), by phase, highest
    priority first."""

    __slots__ = ("plugins", "access", "header_filter", "body_filter", "log", "route",
                 "service", "by_consumer", "native", "filters")

    def __init__(self, plugins: list[Plugin], route: Route, service: Service | None,
                 native: dict[str, Plugin]):
        from fastgw._core.gateway import RequestFilter

        plugins = sorted(plugins, key=lambda p: -p.PRIORITY)
        self.plugins = tuple(plugins)
        self.access = tuple(p for p in plugins if p.implements("access"))
        self.header_filter = tuple(p for p in plugins if p.implements("header_filter"))
        self.body_filter = tuple(p for p in plugins if p.implements("body_filter"))
        self.log = tuple(p for p in plugins if p.implements("log"))
        self.route = route
        self.service = service
        self.native = native
        # consumer id -> PluginChain, filled in by build_chains
        self.by_consumer: dict[str | None, PluginChain] | None = None
        # Body and log plugins read the response's status and headers, which
        # the header phase records (ctx.response), so they switch it on too.
        self.filters = int((RequestFilter.FILTER_HEADER
                            if self.header_filter or self.body_filter or self.log else 0)
                           | (RequestFilter.FILTER_BODY if self.body_filter else 0)
                           | (RequestFilter.FILTER_LOG if self.log else 0))

    def for_consumer(self, consumer_id: str | None) -> PluginChain:
        if consumer_id is None or self.by_consumer is None:
            return self
        return self.by_consumer.get(consumer_id, self)

    def __repr__(self) -> str:
        return f"<PluginChain {self.route.name}: {[p.name for p in self.plugins]}>"


# Kong's precedence by which scopes an entry names: (route, service,
# consumer) -> rank, lower wins.
_PRECEDENCE = {
    (True, True, True): 1, (True, False, True): 2, (False, True, True): 3,
    (True, True, False): 4, (False, False, True): 5, (True, False, False): 6,
    (False, True, False): 7, (False, False, False): 8,
}


def _rank(entry: PluginConfig, route: Route, service: Service | None,
          consumer: str | None) -> int | None:
    """Kong's precedence rank of a plugin entry for this combination (lower
    wins), or None when the entry does not apply."""
    r = entry.route is not None
    s = entry.service is not None
    c = entry.consumer is not None
    if r and entry.route != route.name:
        return None
    if s and (service is None or entry.service != service.name):
        return None
    if c and entry.consumer != consumer:
        return None
    return _PRECEDENCE[(r, s, c)]


class ChainBuilder:
    def __init__(self, config: Config, state: ConfigState):
        self.config = config
        self.state = state
        self.instances: dict[int, Plugin] = {}
        self.entries = [p for p in config.plugins if p.enabled]
        self.consumer_scoped = sorted({p.consumer for p in self.entries if p.consumer})

    def instance(self, entry: PluginConfig) -> Plugin:
        key = id(entry)
        plugin = self.instances.get(key)
        if plugin is None:
            cls = handler_class(entry.name)
            plugin = cls(entry.config, self.state, entry)
            self.instances[key] = plugin
        return plugin

    def select(self, route: Route, service: Service | None,
               consumer: str | None) -> dict[str, Plugin]:
        best: dict[str, tuple[int, PluginConfig]] = {}
        for entry in self.entries:
            rank = _rank(entry, route, service, consumer)
            if rank is None:
                continue
            current = best.get(entry.name)
            if current is None or rank < current[0]:
                best[entry.name] = (rank, entry)
        return {name: self.instance(entry) for name, (_, entry) in best.items()}

    def chain(self, route: Route, service: Service | None) -> PluginChain | None:
        chosen = self.select(route, service, None)
        chain = self._make(chosen, route, service)
        if self.consumer_scoped:
            by_consumer: dict[str | None, PluginChain] = {}
            for ref in self.consumer_scoped:
                consumer = self.state.consumer(ref)
                if consumer is None:
                    continue
                with_consumer = self.select(route, service, ref)
                if with_consumer != chosen:
                    personal = self._make(with_consumer, route, service)
                    # It differs from what every caller gets, so it holds plugins.
                    assert personal is not None
                    by_consumer[consumer.id] = personal
            if by_consumer:
                if chain is None:
                    chain = PluginChain([], route, service, {})
                chain.by_consumer = by_consumer
        return chain

    def _make(self, chosen: dict[str, Plugin], route: Route,
              service: Service | None) -> PluginChain | None:
        native = {n: p for n, p in chosen.items() if n in NATIVE_PLUGINS}
        python = [p for n, p in chosen.items() if n not in NATIVE_PLUGINS]
        if not python and not native:
            return None
        return PluginChain(python, route, service, native)

