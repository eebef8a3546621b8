"""What each consumer has spent of its budgets (ai-rate-limiting-advanced's
``budget``), for the admin API's ``GET /ai/budgets``.

Read where the workers count: the node's shared-memory counters (strategy
local; the supervisor maps the same segment) or Redis. Only budgets counted
per consumer (``identifier: consumer``) can be listed: the admin API cannot
know every IP or header value a client may use.
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
        if windows and plugin.config["identifier"] == "consumer":
            found.append((plugin, windows))
    return found


def _named(consumer: Consumer, ref: str | None) -> bool:
    return ref is None or ref in (consumer.username, consumer.custom_id, consumer.id)


async def budget_report(config: Config, node: CounterStore | None,
                        consumer: str | None = None) -> list[dict[str, Any]] | None:
    """Every consumer's budgets (or one consumer's: None when there is no
    such consumer): limit, spent, reserved and when each resets."""
    state = ConfigState(config)
    if consumer is not None and not any(_named(c, consumer) for c in state.consumers):
        return None
    now = time.time()
    entries: list[dict[str, Any]] = []
    # A consumer's own config replaces the others for its calls (Kong's precedence).
    personal = {found.id for plugin in config.plugins
                if plugin.name == PLUGIN and plugin.enabled and plugin.consumer
                and (found := state.consumer(plugin.consumer)) is not None}
    for plugin, windows in _budgeted(config):
        scoped = state.consumer(plugin.consumer) if plugin.consumer else None
        for who in state.consumers:
            if not _named(who, consumer):
                continue
            if (scoped is not None and who.id != scoped.id) or \
                    (scoped is None and who.id in personal):
                continue
            base = key_prefix(plugin) + str(who.id)
            counts = await _counts(state, plugin, windows, base, node, now)
            for window, (count, reserved) in zip(windows, counts, strict=True):
                _, end, _ = window.span(now, False)
                spent = max(count - reserved, 0)
                entries.append({
                    "consumer": who.username or who.custom_id or who.id,
                    "consumer_id": who.id,
                    "route": plugin.route, "service": plugin.service,
                    "window": window.label.lower(),
                    "limit": window.limit / MONEY_SCALE,
                    "spent": spent / MONEY_SCALE,
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
