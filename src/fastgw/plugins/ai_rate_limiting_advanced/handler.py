"""ai-rate-limiting-advanced: limits on the tokens, or the money, each
client's LLM calls use per window and provider, that hold under concurrency.

A limit is only as good as the moment it is checked. Before a call leaves,
this plugin reserves the most it can cost: the prompt's ceiling (its bytes:
no tokenizer makes more tokens than that, see ``prompt_token_bound``) plus
the answer's (``max_tokens``, or the model's default), priced with the
model's costs when the limit is money. The reservation is one atomic step
(the node's shared-memory counters, or one Redis Lua call): a call whose
reservation does not fit is refused before it costs anything, so concurrent
calls can never together pass a limit. When the answer is counted (a
stream's final usage, or what was streamed before it broke off), the real
usage replaces the reservation.

The plugin's access phase only registers it as a gate of the call
(``fastgw.plugins.ai_proxy.gates``): ai-proxy knows the provider once it has
chosen the target, and asks the gates then.
"""

from __future__ import annotations

import logging
import math
import random
import time
from typing import Any

from fastgw.ai.metrics import record_limit, snapshot
from fastgw.ai.openai_format import ROUTE_EMBEDDINGS
from fastgw.ai.usage import Usage, completion_ceiling, estimate_prompt_tokens, prompt_token_bound
from fastgw.plugins.ai_proxy.gates import GateRefusal, LLMCall, add_gate
from fastgw.plugins.ai_rate_limiting_advanced.redis_batch import RedisBatcher
from fastgw.plugins.base import Plugin
from fastgw.plugins.context import RequestContext
from fastgw.plugins.rate_limiting.algorithms import STORE_ERRORS, node_counters
from fastgw.plugins.rate_limiting.handler import _identifier
from fastgw.plugins.rate_limiting.redis_store import RedisUnavailable, redis_counters
from fastgw.plugins.state import ConfigState

log = logging.getLogger("fastgw.plugins.ai_rate_limiting_advanced")

UNEXPECTED = "An unexpected error occurred"
# Kong's names for windows of these sizes in the headers.
WINDOW_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day", 2592000: "month",
                31536000: "year"}
# Money is counted in millionths, so counters stay integers.
MONEY_SCALE = 1_000_000
# Redis keys outlive their window by this much (clock skew between gateways).
_EXPIRY_GRACE_MS = 1000


class Window:
    """One llm_providers entry: a provider's limit over window_size seconds."""

    __slots__ = ("provider", "size", "limit", "label", "suffix", "limit_header",
                 "remaining_header", "reset_header", "retry_header")

    def __init__(self, entry: dict[str, Any], scale: int) -> None:
        self.provider = entry["name"]
        self.size = float(entry["window_size"])
        self.limit = float(entry["limit"]) * scale
        size = entry["window_size"]
        label = WINDOW_NAMES.get(size) if size == int(size) else None
        self.label = f"{label or f'{size:g}'}-{self.provider}"
        self.suffix = f"|{self.provider}|{size:g}".encode()
        self.limit_header = f"X-AI-RateLimit-Limit-{self.label}"
        self.remaining_header = f"X-AI-RateLimit-Remaining-{self.label}"
        self.reset_header = f"X-AI-RateLimit-Reset-{self.label}"
        self.retry_header = f"X-AI-RateLimit-Retry-After-{self.label}"

    def span(self, now: float, sliding: bool) -> tuple[float, float, float]:
        """(start, end) of the current window, and the previous one's weight."""
        start = math.floor(now / self.size) * self.size
        weight = 1.0 - (now - start) / self.size if sliding else 0.0
        return start, start + self.size, weight

    def reset_after(self, now: float, start: float, used: float, amount: float,
                    sliding: bool) -> int:
        """Seconds until the window has room again (Kong's estimate)."""
        reset = max(1.0, self.size - (now - start))
        if sliding:
            rate = used + amount
            reset += max(0.0, (rate - self.limit) / (rate + self.limit) * self.size)
        return math.ceil(reset)


class Held:
    """What one call holds: its amount in each window's counter."""

    __slots__ = ("windows", "keys", "spans", "amount", "redis")

    def __init__(self, windows: list[Window], keys: list[Any], spans: list[tuple],
                 amount: int, redis: bool) -> None:
        self.windows = windows
        self.keys = keys  # node counter keys, or the Redis current-window keys
        self.spans = spans
        self.amount = amount
        self.redis = redis


class AIRateLimitingAdvanced(Plugin):
    name = "ai-rate-limiting-advanced"
    PRIORITY = 905

    __slots__ = ("windows", "identify", "key_prefix", "sliding", "strategy", "scale", "node",
                 "redis", "batcher", "fault_tolerant", "hide_headers", "error_code",
                 "error_message", "hide_providers", "jitter", "clock")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.strategy = config["tokens_count_strategy"]
        self.scale = MONEY_SCALE if self.strategy == "cost" else 1
        self.windows: dict[str, list[Window]] = {}
        for entry in config["llm_providers"]:
            self.windows.setdefault(entry["name"], []).append(Window(entry, self.scale))
        self.identify = _identifier({"limit_by": config["identifier"],
                                     "header_name": config["header_name"],
                                     "path": config["path"]})
        route = getattr(scope, "route", None) or "*"
        service = getattr(scope, "service", None) or "*"
        self.key_prefix = f"ai-ratelimit:{route}:{service}:"
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
        return "money" if self.scale != 1 else "tokens"

    @classmethod
    def worker_stats(cls, metrics: bool) -> dict[str, Any]:
        # The AI counters (the limits' among them), for /metrics only.
        return {"ai": snapshot()} if metrics else {}

    def access(self, ctx: RequestContext) -> None:
        add_gate(ctx, self)

    # -- amounts ------------------------------------------------------------------

    def _ceiling(self, call: LLMCall) -> int:
        """The most ``call`` can use, in the limit's units."""
        request = call.request
        target = call.target
        if target.provider_route == ROUTE_EMBEDDINGS:
            prompt, completion = estimate_prompt_tokens(ROUTE_EMBEDDINGS, request) * 4, 0
        else:
            prompt = prompt_token_bound(request)
            completion = completion_ceiling(request, target.model.options.max_tokens) or 0
        if self.strategy == "prompt_tokens":
            return prompt
        if self.strategy == "completion_tokens":
            return completion
        if self.strategy == "total_tokens":
            return prompt + completion
        input_cost = max(target.input_cost or 0.0, *(c or 0.0 for c in target.cache_costs))
        return math.ceil(prompt * input_cost + completion * (target.output_cost or 0.0))

    def _used(self, usage: Usage | None, price: float | None) -> int:
        if usage is None:
            return 0
        if self.strategy == "cost":
            return round((price or 0.0) * MONEY_SCALE)
        return int(getattr(usage, self.strategy))

    # -- the gate -------------------------------------------------------------------

    def reserve(self, ctx: RequestContext, call: LLMCall) -> Any:
        windows = self.windows.get(call.provider)
        if not windows:
            return None
        amount = self._ceiling(call)
        identity = self.identify(ctx)
        if self.redis is not None:
            return self._reserve_redis(ctx, windows, amount, identity)
        self._reserve_on_node(ctx, windows, amount, identity)
        return None

    def _reserve_on_node(self, ctx: RequestContext, windows: list[Window], amount: int,
                         identity: str) -> None:
        now = self.clock()
        store = self.node.counters
        base = (self.key_prefix + identity).encode()
        keys, spans, used = [], [], []
        refused: list[int] = []
        try:
            for index, window in enumerate(windows):
                key = base + window.suffix
                start, end, weight = window.span(now, self.sliding)
                admitted, before = store.reserve(key, start, end, amount, window.limit, weight)
                used.append(before)
                keys.append(key)
                spans.append((start, end))
                if not admitted:
                    refused.append(index)
                    break
        except STORE_ERRORS as exc:
            self._undo_on_node(keys, spans, amount)
            log.error("ai-rate-limiting-advanced: cannot count on this node: %s", exc)
            if not self.fault_tolerant:
                raise GateRefusal(500, UNEXPECTED, {}) from exc
            return
        if refused:
            self._undo_on_node(keys[:-1], spans, amount)
            self._refuse(ctx, windows, used, refused, amount, now, spans)
        self._hold(ctx, Held(windows, keys, spans, amount, redis=False), used)

    def _undo_on_node(self, keys: list[bytes], spans: list[tuple], amount: int) -> None:
        store = self.node.counters
        for key, (start, end) in zip(keys, spans, strict=False):
            store.incr(key, start, end, -amount)

    async def _reserve_redis(self, ctx: RequestContext, windows: list[Window], amount: int,
                             identity: str) -> None:
        batcher = self.batcher
        assert batcher is not None  # only called with strategy redis
        now = self.clock()
        keys: list[str] = []
        args: list[Any] = []
        spans = []
        for window in windows:
            start, end, weight = window.span(now, self.sliding)
            start_ms, size_ms = int(start * 1000), int(window.size * 1000)
            base = f"{self.key_prefix}{identity}|{window.provider}|{window.size:g}"
            keys += (f"{base}:{start_ms}", f"{base}:{start_ms - size_ms}")
            args += (repr(window.limit), repr(weight), start_ms + 2 * size_ms + _EXPIRY_GRACE_MS)
            spans.append((start, end))
        try:
            reply = await batcher.reserve(keys, args, amount)
        except RedisUnavailable as exc:
            if not self.fault_tolerant:
                raise GateRefusal(500, UNEXPECTED, {}) from exc
            # Redis logged the outage; meanwhile this node counts alone.
            self._reserve_on_node(ctx, windows, amount, identity)
            return
        used = [float(value) for value in reply[1:]]
        if not int(reply[0]):
            refused = [i for i, window in enumerate(windows) if used[i] + amount > window.limit]
            self._refuse(ctx, windows, used, refused, amount, now, spans)
        self._hold(ctx, Held(windows, keys[::2], spans, amount, redis=True), used)

    def _refuse(self, ctx: RequestContext, windows: list[Window], used: list[float],
                refused: list[int], amount: int, now: float, spans: list[tuple]) -> None:
        headers: dict[str, str] = {}
        longest = 0
        for index in refused:
            window = windows[index]
            reset = window.reset_after(now, spans[index][0], used[index], amount, self.sliding)
            longest = max(longest, reset)
            if not self.hide_headers:
                headers[window.limit_header] = self._shown(window.limit)
                headers[window.remaining_header] = self._shown(max(window.limit - used[index],
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
            message += ", ".join(dict.fromkeys(windows[i].provider for i in refused))
        self._record(ctx, {"refused": True, "provider": windows[0].provider,
                           "reserved": self._shown_number(amount)})
        record_limit(windows[0].provider, self.unit, "refused", self._shown_number(amount))
        raise GateRefusal(self.error_code, message, headers)

    def _hold(self, ctx: RequestContext, held: Held, used: list[float]) -> None:
        state = ctx.plugin_state(self)
        state["held"] = held
        record_limit(held.windows[0].provider, self.unit, "reserved",
                     self._shown_number(held.amount))
        if not self.hide_headers:
            # Raw [name, value, ...] for the answer's header list.
            items: list[bytes] = []
            for window, before in zip(held.windows, used, strict=False):
                remaining = self._shown(max(window.limit - before - held.amount, 0.0))
                items += (window.limit_header.encode(), self._shown(window.limit).encode(),
                          window.remaining_header.encode(), remaining.encode())
            state["headers"] = items

    def move(self, ctx: RequestContext, call: LLMCall) -> None:
        self.release(ctx)
        windows = self.windows.get(call.provider)
        if not windows:
            return
        amount = self._ceiling(call)
        identity = self.identify(ctx)
        if self.redis is None:
            self._reserve_on_node(ctx, windows, amount, identity)
            return
        # A failover cannot wait for Redis: the new provider's windows take
        # the amount without a check (the call was admitted once already).
        now = self.clock()
        keys, spans = [], []
        for window in windows:
            start, end, _ = window.span(now, self.sliding)
            base = f"{self.key_prefix}{identity}|{window.provider}|{window.size:g}"
            keys.append(f"{base}:{int(start * 1000)}")
            spans.append((start, end))
        held = Held(windows, keys, spans, amount, redis=True)
        self._adjust(held, amount)
        ctx.plugin_state(self)["held"] = held

    def release(self, ctx: RequestContext) -> None:
        held = ctx.plugin_state(self).pop("held", None)
        if held is not None:
            self._adjust(held, -held.amount)

    def settle(self, ctx: RequestContext, usage: Usage | None, price: float | None) -> None:
        held: Held | None = ctx.plugin_state(self).pop("held", None)
        if held is None:
            return
        used = self._used(usage, price)
        self._adjust(held, used - held.amount)
        record_limit(held.windows[0].provider, self.unit, "used", self._shown_number(used))
        self._record(ctx, {"provider": held.windows[0].provider,
                           "reserved": self._shown_number(held.amount),
                           "used": self._shown_number(used)})

    def _adjust(self, held: Held, delta: int) -> None:
        """Add ``delta`` to each window the call holds (its reservation's own
        window, in Redis; on the node, the key's current one)."""
        if not delta:
            return
        if not held.redis:
            store = self.node.counters
            for key, (start, end) in zip(held.keys, held.spans, strict=False):
                store.incr(key, start, end, delta)
            return
        assert self.batcher is not None  # held in Redis: strategy redis
        self.batcher.add(held.keys, delta)

    # -- answer and log --------------------------------------------------------------

    def header_filter(self, ctx: RequestContext) -> None:
        items = ctx.plugin_state(self).get("headers")
        if not items or ctx.response is None:
            return
        answer = ctx.response.headers.items
        # Ours replace any the upstream sent. PERF: one pass, and only when one is there.
        if any(name[:15].lower() == b"x-ai-ratelimit-" for name in answer[::2]):
            answer[:] = [part for i in range(0, len(answer), 2)
                         if answer[i][:15].lower() != b"x-ai-ratelimit-"
                         for part in answer[i:i + 2]]
        answer += items

    def _record(self, ctx: RequestContext, section: dict[str, Any]) -> None:
        if ctx.ai is None:
            ctx.ai = {}
        ctx.ai["rate_limiting"] = {**section, "strategy": self.strategy}

    def _shown(self, value: float) -> str:
        """A counter in the limit's units, as the headers show it."""
        if self.scale == 1:
            return str(int(value))
        return f"{value / self.scale:.6f}".rstrip("0").rstrip(".")

    def _shown_number(self, value: int) -> float:
        return value / self.scale if self.scale != 1 else value


HANDLER = AIRateLimitingAdvanced
