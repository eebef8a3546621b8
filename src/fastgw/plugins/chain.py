"""Which plugin instances run for a route, built once per config version.

Kong's precedence decides between several configurations of the same plugin
(most specific first):

1. route + service + consumer         7. route + service
2. route + service + consumer group   8. consumer
3. route + consumer                   9. consumer group
4. service + consumer                10. route
5. route + consumer group            11. service
6. service + consumer group          12. global

The consumer is only known once an auth plugin has run, so each route gets
a chain without consumer- or group-scoped entries, plus (only when the
config has such plugins) one chain per consumer they change anything for.
A consumer in several groups takes a group's config in the order its groups
are listed.
"""

from __future__ import annotations

import logging

from fastgw.config.model import Config, Consumer, PluginConfig, Route, Service
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

    __slots__ = ("plugins", "access", "header_filter", "body_filter", "log", "gates", "route",
                 "service", "by_consumer", "by_groups", "native", "filters")

    def __init__(self, plugins: list[Plugin], route: Route, service: Service | None,
                 native: dict[str, Plugin]):
        from fastgw._core.gateway import RequestFilter

        plugins = sorted(plugins, key=lambda p: -p.PRIORITY)
        self.plugins = tuple(plugins)
        self.access = tuple(p for p in plugins if p.implements("access"))
        self.header_filter = tuple(p for p in plugins if p.implements("header_filter"))
        self.body_filter = tuple(p for p in plugins if p.implements("body_filter"))
        self.log = tuple(p for p in plugins if p.implements("log"))
        # Plugins that admit an LLM call once its target is known
        # (fastgw.plugins.ai_proxy.gates): ai-proxy asks them, not the runner.
        self.gates = tuple(p for p in plugins if hasattr(p, "reserve"))
        self.route = route
        self.service = service
        self.native = native
        # consumer id -> PluginChain, filled in by build_chains
        self.by_consumer: dict[str | None, PluginChain] | None = None
        # The chains for groups a credential claims (see GroupChains).
        self.by_groups: GroupChains | None = None
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
# consumer, consumer group) -> rank, lower wins.
_PRECEDENCE = {
    (True, True, True, False): 1, (True, True, False, True): 2,
    (True, False, True, False): 3, (False, True, True, False): 4,
    (True, False, False, True): 5, (False, True, False, True): 6,
    (True, True, False, False): 7, (False, False, True, False): 8,
    (False, False, False, True): 9, (True, False, False, False): 10,
    (False, True, False, False): 11, (False, False, False, False): 12,
}


def _rank(entry: PluginConfig, route: Route, service: Service | None,
          consumer: str | None, groups: tuple[str, ...]) -> tuple[int, int] | None:
    """Kong's precedence rank of a plugin entry for this combination (lower
    wins; between groups, the consumer's first), or None when it does not apply."""
    r = entry.route is not None
    s = entry.service is not None
    c = entry.consumer is not None
    g = entry.consumer_group is not None
    if r and entry.route != route.name:
        return None
    if s and (service is None or entry.service != service.name):
        return None
    if c and entry.consumer != consumer:
        return None
    if g and entry.consumer_group not in groups:
        return None
    return _PRECEDENCE[(r, s, c, g)], groups.index(entry.consumer_group) if g else 0


class ChainBuilder:
    def __init__(self, config: Config, state: ConfigState):
        self.config = config
        self.state = state
        self.instances: dict[int, Plugin] = {}
        self.entries = [p for p in config.plugins if p.enabled]
        # Consumers whose calls may take another config: those named by an
        # entry, and the members of groups named by one.
        grouped = {p.consumer_group for p in self.entries if p.consumer_group}
        self.grouped = frozenset(grouped)
        personal: set[str | None] = {p.consumer for p in self.entries if p.consumer}
        personal.update(consumer.username or consumer.custom_id or consumer.id
                        for consumer in state.consumers if grouped.intersection(consumer.groups))
        self.consumer_scoped = sorted(ref for ref in personal if ref)

    def instance(self, entry: PluginConfig) -> Plugin:
        key = id(entry)
        plugin = self.instances.get(key)
        if plugin is None:
            cls = handler_class(entry.name)
            plugin = cls(entry.config, self.state, entry)
            self.instances[key] = plugin
        return plugin

    def select(self, route: Route, service: Service | None, consumer: str | None,
               groups: tuple[str, ...] = ()) -> dict[str, Plugin]:
        best: dict[str, tuple[tuple[int, int], PluginConfig]] = {}
        for entry in self.entries:
            rank = _rank(entry, route, service, consumer, groups)
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
                with_consumer = self.select(route, service, consumer.username, consumer.groups)
                if with_consumer != chosen:
                    personal = self._make(with_consumer, route, service)
                    # It differs from what every caller gets, so it holds plugins.
                    assert personal is not None
                    by_consumer[consumer.id] = personal
            if by_consumer:
                if chain is None:
                    chain = PluginChain([], route, service, {})
                chain.by_consumer = by_consumer
        if chain is not None and self.grouped and any(
                getattr(plugin, "claims_groups", False) for plugin in chain.plugins):
            chain.by_groups = GroupChains(self, route, service, chosen, chain)
        return chain

    def _make(self, chosen: dict[str, Plugin], route: Route,
              service: Service | None) -> PluginChain | None:
        native = {n: p for n, p in chosen.items() if n in NATIVE_PLUGINS}
        python = [p for n, p in chosen.items() if n not in NATIVE_PLUGINS]
        if not python and not native:
            return None
        return PluginChain(python, route, service, native)


class GroupChains:
    """The chains of one route for consumer groups a credential claims
    (openid-connect's ``consumer_groups_claim``) rather than the config's
    memberships: made on first use for each (consumer, groups) pair, and
    kept, up to ``MAX_KEPT``. Only groups some plugin entry names count."""

    MAX_KEPT = 1024
    __slots__ = ("builder", "route", "service", "chosen", "base", "kept")

    def __init__(self, builder: ChainBuilder, route: Route, service: Service | None,
                 chosen: dict[str, Plugin], base: PluginChain) -> None:
        self.builder = builder
        self.route = route
        self.service = service
        self.chosen = chosen  # what every caller gets
        self.base = base
        self.kept: dict[tuple, PluginChain] = {}

    def chain(self, consumer: Consumer | None, claimed: tuple[str, ...]) -> PluginChain:
        """The chain for ``consumer`` (or none) in its own groups, then the
        ``claimed`` ones, in that order."""
        own = consumer.groups if consumer is not None else ()
        groups = own + tuple(g for g in claimed if g in self.builder.grouped and g not in own)
        if len(groups) == len(own):
            return self.base.for_consumer(consumer.id if consumer is not None else None)
        username = consumer.username if consumer is not None else None
        key = (consumer.id if consumer is not None else None, groups)
        found = self.kept.get(key)
        if found is None:
            selected = self.builder.select(self.route, self.service, username, groups)
            found = self.base if selected == self.chosen else (
                self.builder._make(selected, self.route, self.service)
                or PluginChain([], self.route, self.service, {}))
            if len(self.kept) < self.MAX_KEPT:
                self.kept[key] = found
        return found
