"""ai-rate-limiting-advanced: limits on the tokens, or the money, each
client's LLM calls use per window and provider, that hold under concurrency.

A limit is only as good as the moment it is checked. Before a call leaves,
this plugin reserves what it will cost: the prompt's tokens, estimated
locally with a margin (``prompt_token_reservation``), plus the answer's
ceiling (``max_tokens``, or the model's default), priced with the model's
costs when the limit is money. The reservation is one atomic step (the
node's shared-memory counters, or one Redis Lua call): a call whose
reservation does not fit is refused before it costs anything, so concurrent
calls cannot together pass a limit by more than their estimates fall short.
When the answer is counted (a stream's final usage, or what was streamed
before it broke off), the real usage replaces the reservation.

The plugin has no access phase: it is a gate of the call
(``fastgw.plugins.ai_proxy.gates``), which ai-proxy asks once it has chosen
the target and so knows the provider.
"""

from __future__ import annotations

import logging
import math
import random
import time
from typing import Any

from fastgw._core.ratelimit import (
    DAY,
    MONTH,
    PERIOD_NAMES,
    WindowSet,
    shown_amount,
    window_span,
)
from fastgw.ai.metrics import LimitSeries, limit_series
from fastgw.ai.openai_format import ROUTE_EMBEDDINGS
from fastgw.ai.usage import (
    Usage,
    completion_ceiling,
    estimate_prompt_tokens,
    prompt_token_reservation,
)
from fastgw.plugins.ai_proxy.gates import GateRefusal, LLMCall
from fastgw.plugins.ai_rate_limiting_advanced.redis_batch import RedisBatcher
from fastgw.plugins.base import Plugin
from fastgw.plugins.context import RequestContext
from fastgw.plugins.rate_limiting.algorithms import STORE_ERRORS, node_counters
from fastgw.plugins.rate_limiting.handler import _identifier
from fastgw.plugins.rate_limiting.redis_store import RedisUnavailable, redis_counters
from fastgw.plugins.state import ConfigState
from fastgw.shared_redis.client import slot_tag

log = logging.getLogger("fastgw.plugins.ai_rate_limiting_advanced")

UNEXPECTED = "An unexpected error occurred"
# Kong's names for windows of these sizes in the headers.
WINDOW_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day", 2592000: "month",
                31536000: "year"}
# Money is counted in millionths, so counters stay integers.
MONEY_SCALE = 1_000_000
# The answer's headers of ours (they replace any the upstream sent).
_OUR_HEADERS = (b"x-ai-ratelimit-", b"x-ai-budget-")
# Redis keys outlive their window by this much (clock skew between gateways).
_EXPIRY_GRACE_MS = 1000


class Window:
    """One limit: an llm_providers entry (a provider's tokens or money over
    window_size seconds), or a budget (money, over a calendar UTC day or
    month, whatever the provider)."""

    __slots__ = ("provider", "size", "limit", "money", "calendar", "label", "suffix",
                 "limit_header", "remaining_header", "reset_header", "retry_header", "named",
                 "limit_items", "remaining_name")

    def __init__(self, provider: str, size: float, limit: float, money: bool,
                 calendar: int | None = None) -> None:
        self.provider = provider
        self.size = float(size)
        self.money = money
        self.limit = float(limit) * (MONEY_SCALE if money else 1)
        self.calendar = calendar
        if calendar is None:
            label = WINDOW_NAMES.get(int(size)) if size == int(size) else None
            self.label = f"{label or f'{size:g}'}-{provider}"
            self.suffix = f"|{provider}|{size:g}".encode()
            prefix = "X-AI-RateLimit"
            self.named = provider
        else:
            self.label = PERIOD_NAMES[calendar].capitalize()
            self.suffix = f"|budget|{PERIOD_NAMES[calendar]}".encode()
            prefix = "X-AI-Budget"
            self.named = f"{PERIOD_NAMES[calendar]} budget"
        self.limit_header = f"{prefix}-Limit-{self.label}"
        self.remaining_header = f"{prefix}-Remaining-{self.label}"
        self.reset_header = f"{prefix}-Reset-{self.label}"
        self.retry_header = f"{prefix}-Retry-After-{self.label}"
        # The answer's raw header items, made once: the limit, and the name
        # of the remaining amount.
        self.limit_items = (self.limit_header.encode(), self.shown(self.limit).encode())
        self.remaining_name = self.remaining_header.encode()

    def span(self, now: float, sliding: bool) -> tuple[float, float, float]:
        """(start, end) of the current window, and the previous one's weight."""
        return window_span(now, self.size, -1 if self.calendar is None else self.calendar,
                           sliding)

    def reset_after(self, now: float, start: float, end: float, used: float, amount: float,
                    sliding: bool) -> int:
        """Seconds until the window has room again (Kong's estimate)."""
        reset = max(1.0, end - now)
        if sliding and self.calendar is None:
            rate = used + amount
            reset += max(0.0, (rate - self.limit) / (rate + self.limit) * self.size)
        return math.ceil(reset)

    def shown(self, value: float) -> str:
        """A counter in the window's units, as the headers show it."""
        return shown_amount(value, self.money)

    def redis_key(self, base: str, start: float) -> str:
        # The base is a hash tag: a call's counters share one Cluster slot.
        return f"{slot_tag(base)}{self.suffix.decode()}:{int(start * 1000)}"


class Plan:
    """The windows a call to one provider counts in (its llm_providers
    entries, then the budgets), and what is known of them before any call."""

    __slots__ = ("windows", "set", "main", "main_money", "money", "counts_money")

    def __init__(self, windows: list[Window], money_strategy: bool) -> None:
        self.windows = windows
        # The same windows, compiled: a call's reservation, answer headers
        # and settlement on the node.
        self.set = WindowSet([w.suffix for w in windows], [w.size for w in windows],
                             [-1 if w.calendar is None else w.calendar for w in windows],
                             [w.limit for w in windows], [w.money for w in windows],
                             [item for w in windows for item in w.limit_items],
                             [w.remaining_name for w in windows])
        # The window counted in the strategy's units (tokens, or money): the
        # call's amount for metrics and the log is its amount there.
        self.main = next((i for i, w in enumerate(windows) if w.money == money_strategy), -1)
        self.main_money = money_strategy
        # Whether a call's price is needed, and whether a reservation leaves
        # a share of a money window (budget_left).
        self.counts_money = any(w.money for w in windows)
        self.money = any(w.money and w.limit > 0 for w in windows)

    def main_amount(self, amounts: list[int]) -> float:
        if self.main < 0:
            return 0.0
        amount = amounts[self.main]
        return amount / MONEY_SCALE if self.main_money else amount


class Held:
    """What one call holds: an amount in each window's counter (the window's
    units), and for budgets the same in their reserved counters."""

    __slots__ = ("provider", "plan", "windows", "keys", "spans", "amounts", "redis", "main",
                 "series")

    def __init__(self, provider: str, plan: Plan, keys: list[Any], spans: list[tuple],
                 amounts: list[int], redis: bool, series: LimitSeries) -> None:
        self.provider = provider
        self.series = series  # the provider's metrics
        self.plan = plan
        self.windows = plan.windows
        self.keys = keys  # node counter keys, or the Redis current-window keys
        self.spans = spans
        self.amounts = amounts
        self.redis = redis
        # The amount in the strategy's units, for metrics and the log.
        self.main = plan.main_amount(amounts)


def reserved_key(key: Any) -> Any:
    """The counter of what is reserved and not yet settled, beside ``key``'s."""
    return key + (b"|reserved" if isinstance(key, bytes) else "|reserved")


class AIRateLimitingAdvanced(Plugin):
    name = "ai-rate-limiting-advanced"
    PRIORITY = 905

    __slots__ = ("windows", "budgets", "plans", "budget_plan", "series", "identify",
                 "key_prefix", "sliding", "strategy", "node", "redis", "batcher", "fault_tolerant", "hide_headers", "error_code",
                 "error_message", "hide_providers", "jitter", "clock")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.strategy = config["tokens_count_strategy"]
        money = self.strategy == "cost"
        self.windows: dict[str, list[Window]] = {}
        for entry in config["llm_providers"]:
            self.windows.setdefault(entry["name"], []).append(
                Window(entry["name"], entry["window_size"], entry["limit"], money))
        self.budgets = budget_windows(config)
        # Each provider's windows and then the budgets: what a call to it counts in.
        self.plans = {provider: Plan(windows + self.budgets, money)
                      for provider, windows in self.windows.items()}
        self.budget_plan = Plan(self.budgets, money) if self.budgets else None
        self.series: dict[str, LimitSeries] = {}  # provider -> its metrics
        self.identify = _group_identifier(getattr(scope, "consumer_group", None)) \
            if config["identifier"] == "consumer-group" else \
            _identifier({"limit_by": config["identifier"], "header_name": config["header_name"],
                         "path": config["path"]})
        self.key_prefix = key_prefix(scope)
        self.sliding = config["window_type"] == "sliding"
        self.node = node_counters(state)
        self.redis = redis_counters(state, config["redis"]) \
            if config["strategy"] == "redis" else None
        self.batcher = RedisBatcher(self.redis) if self.redis is not None else None
        self.fault_tolerant = config["fault_tolerant"]
        self.hide_headers = config["hide_client_headers"]
        self.error_code = int(config["error_code"])
        self.error_message = config["error_message"]
        self.hide_providers = config["error_hide_providers"]
        self.jitter = float(config["retry_after_jitter_max"])
        self.clock = time.time  # tests move it

    @property
    def unit(self) -> str:
        return "money" if self.strategy == "cost" else "tokens"

    # -- amounts ------------------------------------------------------------------

    def _plan(self, call: LLMCall) -> tuple[Plan | None, list[int]]:
        """The windows ``call`` counts in, and the most it can use in each:
        the prompt's reservation and the answer's ceiling, in the strategy's
        tokens, or priced in money windows."""
        plan = self.plans.get(call.provider, self.budget_plan)
        if plan is None:
            return None, []
        target = call.target
        needs = call.needs
        if target.provider_route == ROUTE_EMBEDDINGS:
            prompt, completion = estimate_prompt_tokens(ROUTE_EMBEDDINGS, call.request) * 4, 0
        elif needs is not None and needs.prompt_reserved is not None:
            # PERF: the capability check counted the request already.
            prompt = needs.prompt_reserved
            completion = needs.output_tokens or target.model.options.max_tokens or 0
        else:
            prompt = prompt_token_reservation(call.request)
            completion = completion_ceiling(call.request, target.model.options.max_tokens) or 0
        strategy = self.strategy
        tokens = prompt if strategy == "prompt_tokens" else \
            completion if strategy == "completion_tokens" else prompt + completion
        if not plan.counts_money:
            return plan, [tokens] * len(plan.windows)
        money = math.ceil(prompt * target.highest_input_cost +
                          completion * (target.output_cost or 0.0))
        return plan, [money if w.money else tokens for w in plan.windows]

    def _series(self, provider: str) -> LimitSeries:
        series = self.series.get(provider)
        if series is None:
            series = self.series[provider] = limit_series(provider, self.unit)
        return series

    # -- the gate -------------------------------------------------------------------

    def reserve(self, ctx: RequestContext, call: LLMCall) -> Any:
        plan, amounts = self._plan(call)
        if plan is None:
            return None
        identity = self.identify(ctx)
        if self.redis is not None:
            return self._reserve_redis(ctx, call, plan, amounts, identity)
        self._reserve_on_node(ctx, call, plan, amounts, identity)
        return None

    def _reserve_on_node(self, ctx: RequestContext, call: LLMCall, plan: Plan,
                         amounts: list[int], identity: str) -> None:
        now = self.clock()
        try:
            keys, spans, used, refused = plan.set.reserve(
                self.node.counters, (self.key_prefix + identity).encode(), amounts, now,
                self.sliding)
        except STORE_ERRORS as exc:
            log.error("ai-rate-limiting-advanced: cannot count on this node: %s", exc)
            if not self.fault_tolerant:
                raise GateRefusal(500, UNEXPECTED, {}) from exc
            return
        if refused >= 0:
            self._refuse(ctx, call, plan, used, [refused], amounts, now, spans)
        provider = call.provider
        self._hold(ctx, Held(provider, plan, keys, spans, amounts, False,
                             self._series(provider)), used)

    async def _reserve_redis(self, ctx: RequestContext, call: LLMCall, plan: Plan,
                             amounts: list[int], identity: str) -> None:
        windows = plan.windows
        batcher = self.batcher
        assert batcher is not None  # only called with strategy redis
        now = self.clock()
        base = self.key_prefix + identity
        keys: list[str] = []
        args: list[Any] = []
        spans = []
        for window, amount in zip(windows, amounts, strict=True):
            start, end, weight = window.span(now, self.sliding)
            previous = start - (window.size if window.calendar is None else 1.0)
            if window.calendar is not None:
                previous = window.span(previous, False)[0]
            keys += (window.redis_key(base, start), window.redis_key(base, previous))
            args += (amount, repr(window.limit), repr(weight),
                     int(end * 1000) + int((end - start) * 1000) + _EXPIRY_GRACE_MS)
            spans.append((start, end))
        try:
            reply = await batcher.reserve(keys, args)
        except RedisUnavailable as exc:
            if not self.fault_tolerant:
                raise GateRefusal(500, UNEXPECTED, {}) from exc
            # Redis logged the outage; meanwhile this node counts alone.
            self._reserve_on_node(ctx, call, plan, amounts, identity)
            return
        used = [float(value) for value in reply[1:]]
        if not int(reply[0]):
            refused = [i for i, window in enumerate(windows)
                       if used[i] + amounts[i] > window.limit]
            self._refuse(ctx, call, plan, used, refused, amounts, now, spans)
        self._hold(ctx, Held(call.provider, plan, keys[::2], spans, amounts, True,
                             self._series(call.provider)), used)

    def _refuse(self, ctx: RequestContext, call: LLMCall, plan: Plan,
                used: list[float], refused: list[int], amounts: list[int], now: float,
                spans: list[tuple]) -> None:
        windows = plan.windows
        headers: dict[str, str] = {}
        longest = 0
        for index in refused:
            window = windows[index]
            start, end = spans[index]
            reset = window.reset_after(now, start, end, used[index], amounts[index],
                                       self.sliding)
            longest = max(longest, reset)
            if not self.hide_headers:
                headers[window.limit_header] = window.shown(window.limit)
                headers[window.remaining_header] = window.shown(max(window.limit - used[index],
                                                                    0.0))
                headers[window.reset_header] = str(reset)
                headers[window.retry_header] = str(reset)
        retry_after = longest + (random.uniform(0, self.jitter) if self.jitter else 0)
        retry = str(math.ceil(retry_after))
        headers["Retry-After"] = retry
        if not self.hide_headers:
            headers["X-AI-RateLimit-Reset"] = str(longest)
            headers["X-AI-RateLimit-Retry-After"] = retry
        message = self.error_message
        if not self.hide_providers:
            message += ", ".join(dict.fromkeys(windows[i].named for i in refused))
        amount = plan.main_amount(amounts)
        self._record(ctx, {"refused": True, "provider": call.provider, "reserved": amount,
                           "strategy": self.strategy})
        self._series(call.provider).refuse(amount)
        raise GateRefusal(self.error_code, message, headers)

    def _hold(self, ctx: RequestContext, held: Held, used: list[float]) -> None:
        state = ctx.plugin_state(self)
        state["held"] = held
        # A failover's new reservation replaces the share the first one left.
        state["budget_left"] = min(
            max(window.limit - before - amount, 0.0) / window.limit
            for window, before, amount in zip(held.windows, used, held.amounts, strict=False)
            if window.money and window.limit > 0) if held.plan.money else None
        self._reserved(held, 1)
        held.series.reserve(held.main)
        if not self.hide_headers:
            # The answer shows the windows as the reservation the call went
            # with left them (a failover's new one, or a downgrade's),
            # whatever the answer: a decision's headers (PERF: the plugin
            # needs no header filter phase).
            items = held.plan.set.answer_headers(used, held.amounts)
            ctx.add_decided_headers(items, _OUR_HEADERS, state.get("answered"))
            state["answered"] = items

    def _reserved(self, held: Held, sign: int) -> None:
        """Budgets keep what is reserved and not yet settled apart (the admin API shows it)."""
        if not self.budgets:
            return
        deltas = {reserved_key(key): sign * amount
                  for key, window, amount in zip(held.keys, held.windows, held.amounts,
                                                 strict=False)
                  if window.calendar is not None}
        self._add(held, deltas)

    def move(self, ctx: RequestContext, call: LLMCall) -> None:
        self.release(ctx)
        plan, amounts = self._plan(call)
        if plan is None:
            return
        identity = self.identify(ctx)
        if self.redis is None:
            self._reserve_on_node(ctx, call, plan, amounts, identity)
            return
        # A failover cannot wait for Redis: the new provider's windows take
        # the amount without a check (the call was admitted once already).
        now = self.clock()
        keys, spans = [], []
        for window in plan.windows:
            start, end, _ = window.span(now, self.sliding)
            keys.append(window.redis_key(self.key_prefix + identity, start))
            spans.append((start, end))
        held = Held(call.provider, plan, keys, spans, amounts, True, self._series(call.provider))
        self._add(held, dict(zip(keys, amounts, strict=True)))
        self._reserved(held, 1)
        ctx.plugin_state(self)["held"] = held

    def budget_left(self, ctx: RequestContext) -> float | None:
        state = ctx.plugin_state(self)
        return state.get("budget_left") if "held" in state else None

    def release(self, ctx: RequestContext) -> None:
        held = ctx.plugin_state(self).pop("held", None)
        if held is not None:
            self._add(held, {key: -amount for key, amount in
                             zip(held.keys, held.amounts, strict=False)})
            self._reserved(held, -1)

    def settle(self, ctx: RequestContext, usage: Usage | None, price: float | None) -> None:
        held: Held | None = ctx.plugin_state(self).pop("held", None)
        if held is None:
            return
        money = round(price * MONEY_SCALE) if price else 0
        if usage is None:
            tokens = 0
        elif self.strategy == "cost":
            tokens = money
        else:
            tokens = int(getattr(usage, self.strategy))
        if held.redis:
            self._add(held, {key: (money if window.money else tokens) - amount
                             for key, window, amount in zip(held.keys, held.windows,
                                                            held.amounts, strict=False)})
        else:
            held.plan.set.settle(self.node.counters, held.keys, held.spans, held.amounts,
                                 tokens, money)
        self._reserved(held, -1)
        used = money / MONEY_SCALE if self.strategy == "cost" else tokens
        held.series.use(used)
        self._record(ctx, {"provider": held.provider, "reserved": held.main, "used": used,
                           "strategy": self.strategy})

    def _add(self, held: Held, deltas: dict[Any, int]) -> None:
        """Add each delta to its counter (a reservation's own window, in Redis;
        on the node, the key's current one)."""
        deltas = {key: delta for key, delta in deltas.items() if delta}
        if not deltas:
            return
        if not held.redis:
            store = self.node.counters
            spans = dict(zip(held.keys, held.spans, strict=False))
            for key, delta in deltas.items():
                start, end = spans.get(key.removesuffix(b"|reserved"), held.spans[0])
                store.incr(key, start, end, delta)
            return
        assert self.batcher is not None  # held in Redis: strategy redis
        ends = dict(zip(held.keys, held.spans, strict=False))
        expires = {}
        for key in deltas:
            start, end = ends.get(key.removesuffix("|reserved"), held.spans[0])
            # A key made here (a moved or reserved counter) goes with its window.
            expires[key] = int(end * 1000) + int((end - start) * 1000) + _EXPIRY_GRACE_MS
        self.batcher.add(deltas, expires)

    # -- log ---------------------------------------------------------------------------

    def _record(self, ctx: RequestContext, section: dict[str, Any]) -> None:
        if ctx.ai is None:
            ctx.ai = {}
        ctx.ai["rate_limiting"] = section


def _group_identifier(scoped: str | None) -> Any:
    """Calls counted per consumer group: the group this config is scoped to,
    else the consumer's first group (a consumer in none: its IP)."""
    def identify(ctx: RequestContext) -> str:
        if scoped is not None:
            return "group:" + scoped
        consumer = ctx.consumer
        if consumer is not None and consumer.groups:
            return "group:" + consumer.groups[0]
        return ctx.request.client_ip
    return identify


def budget_windows(config: dict[str, Any]) -> list[Window]:
    budget = config["budget"]
    return [Window("budget", 0, budget[name], money=True, calendar=code)
            for name, code in (("day", DAY), ("month", MONTH)) if budget[name] is not None]


def key_prefix(scope: Any) -> str:
    """Counters are the plugin's own: keyed by its route and service, as Kong's."""
    route = getattr(scope, "route", None) or "*"
    service = getattr(scope, "service", None) or "*"
    return f"ai-ratelimit:{route}:{service}:"


HANDLER = AIRateLimitingAdvanced
