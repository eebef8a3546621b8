"""What each consumer (or consumer group) has spent of its budgets
(ai-rate-limiting-advanced's ``budget``), for the admin API's ``GET /ai/budgets``.

Read where the workers count: the node's shared-memory counters (strategy
local; the supervisor maps the same segment) or Redis. Only budgets counted
per consumer or per consumer group can be listed: the admin API cannot know
every IP or header value a client may use. Which config is a consumer's
follows Kong's precedence between consumer, group and wider scopes (routes
and services are not told apart).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastgw._core.ratelimit import CounterStore
from fastgw.config.model import Config, Consumer, PluginConfig
from fastgw.plugins.ai_rate_limiting_advanced.handler import (
    MONEY_SCALE,
    Window,
    budget_windows,
    key_prefix,
    reserved_key,
)
from fastgw.plugins.rate_limiting.redis_store import redis_counters
from fastgw.plugins.state import ConfigState

PLUGIN = "ai-rate-limiting-advanced"


def _budgeted(config: Config) -> list[tuple[PluginConfig, list[Window]]]:
    found = []
    for plugin in config.plugins:
        if plugin.name != PLUGIN or not plugin.enabled:
            continue
        windows = budget_windows(plugin.config)
        if windows and plugin.config["identifier"] in ("consumer", "consumer-group"):
            found.append((plugin, windows))
    return found


def _named(consumer: Consumer, ref: str | None) -> bool:
    return ref is None or ref in (consumer.username, consumer.custom_id, consumer.id)


def _level(plugin: PluginConfig, consumer: Consumer) -> int | None:
    """How closely ``plugin`` is scoped to ``consumer`` (lower wins: Kong's
    precedence, consumer before group before the rest), None: not at all."""
    if plugin.consumer is not None:
        return 0 if plugin.consumer in (consumer.username, consumer.id) else None
    if plugin.consumer_group is not None:
        if plugin.consumer_group not in consumer.groups:
            return None
        return 1 + consumer.groups.index(plugin.consumer_group)
    return 1000


def _applies(plugin: PluginConfig, consumer: Consumer, plugins: list[PluginConfig]) -> bool:
    mine = _level(plugin, consumer)
    if mine is None:
        return False
    return all((level := _level(other, consumer)) is None or level >= mine
               for other in plugins if other is not plugin)


async def budget_report(config: Config, node: CounterStore | None,
                        consumer: str | None = None) -> list[dict[str, Any]] | None:
    """Every consumer's (and consumer group's) budgets, or one consumer's and
    its groups' (None when there is no such consumer): limit, spent,
    reserved and when each resets."""
    state = ConfigState(config)
    if consumer is not None and not any(_named(c, consumer) for c in state.consumers):
        return None
    now = time.time()
    entries: list[dict[str, Any]] = []
    plugins = [p for p in config.plugins if p.name == PLUGIN and p.enabled]
    for plugin, windows in _budgeted(config):
        if plugin.config["identifier"] == "consumer-group":
            groups = [plugin.consumer_group] if plugin.consumer_group else \
                [group.name for group in config.consumer_groups]
            for group in groups:
                members = [c for c in state.consumers if group in c.groups]
                if consumer is not None and not any(_named(c, consumer) for c in members):
                    continue
                owner = {"consumer": None, "consumer_id": None, "consumer_group": group}
                entries += await _entries(state, plugin, windows, "group:" + group, owner, node,
                                          now)
            continue
        for who in state.consumers:
            if _named(who, consumer) and _applies(plugin, who, plugins):
                owner = {"consumer": who.username or who.custom_id or who.id,
                         "consumer_id": who.id, "consumer_group": None}
                entries += await _entries(state, plugin, windows, str(who.id), owner, node, now)
    return entries


async def _entries(state: ConfigState, plugin: PluginConfig, windows: list[Window],
                   identity: str, owner: dict[str, Any], node: CounterStore | None,
                   now: float) -> list[dict[str, Any]]:
    base = key_prefix(plugin) + identity
    counts = await _counts(state, plugin, windows, base, node, now)
    entries = []
    for window, (count, reserved) in zip(windows, counts, strict=True):
        _, end, _ = window.span(now, False)
        entries.append({
            **owner,
            "route": plugin.route, "service": plugin.service,
            "window": window.label.lower(),
            "limit": window.limit / MONEY_SCALE,
            "spent": max(count - reserved, 0) / MONEY_SCALE,
            "reserved": reserved / MONEY_SCALE,
            "remaining": max(window.limit - count, 0) / MONEY_SCALE,
            "resets_at": datetime.fromtimestamp(end, UTC).isoformat(),
        })
    return entries


async def _counts(state: ConfigState, plugin: PluginConfig, windows: list[Window], base: str,
                  node: CounterStore | None, now: float) -> list[tuple[int, int]]:
    """(counted, of which reserved) per window."""
    if plugin.config["strategy"] == "redis":
        keys: list[str] = []
        for window in windows:
            start = window.span(now, False)[0]
            redis_key = window.redis_key(base, start)
            keys += (redis_key, reserved_key(redis_key))
        counters = redis_counters(state, plugin.config["redis"])
        try:
            values = await counters.client.mget(keys)
        finally:
            await counters.client.aclose()
        numbers = [int(value or 0) for value in values]
        return [(numbers[i], numbers[i + 1]) for i in range(0, len(numbers), 2)]
    if node is None:
        return [(0, 0) for _ in windows]
    counts = []
    for window in windows:
        start, end, _ = window.span(now, False)
        node_key = base.encode() + window.suffix
        counts.append((int(node.incr(node_key, start, end, 0)),
                       int(node.incr(reserved_key(node_key), start, end, 0))))
    return counts
