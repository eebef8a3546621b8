"""ai-proxy-advanced: ai-proxy over several targets (models, maybe of
different providers), balanced, with failover and a circuit breaker each.

The access phase is ai-proxy's, but the target comes from the balancer
(``fastgw._core.model_balancer`` over the algorithm's ``fastgw._core.balancer``).
The plugin then asks the core to hand failed attempts back to it
(``ctx.enable_failover``): until the answer's head reaches the client, a
failure that ``failover_criteria`` names moves the request to the next target,
translated again for that target's provider (openai to anthropic works). A
streamed answer's head goes out when its status arrives, so a stream that
breaks after that ends with an error event instead, as in ai-proxy; unless
``stream_continuation`` is on: then the next capable target is asked for the
rest of the answer (``continuation``) and its events follow in the same
client stream, written by a task the core waits for (``ctx.continue_body``).

Each attempt is settled once in the balancer: a success feeds the algorithm
(latency or usage), a failure counts towards the target's circuit (nginx's
rules: error, timeout and invalid_header always count, statuses only when
listed); a 429 with Retry-After takes the target out for that long. The
attempts go to the log entry (``ai.proxy.tries``) and to the metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any

import orjson

from fastgw._core import balancer as balancers
from fastgw._core.gateway import UpstreamFailure
from fastgw._core.model_balancer import ModelBalancer
from fastgw._core.token_estimate import estimate_tokens
from fastgw.ai.capabilities import Needs, needs_of, refusal
from fastgw.ai.complexity import TIERS, classify
from fastgw.ai.embeddings import EmbeddingsClient
from fastgw.ai.errors import StreamCut, StreamError, TranslationError
from fastgw.ai.metrics import record_attempt, record_decision, record_failover, watch_balancer
from fastgw.ai.openai_format import ROUTE_CHAT
from fastgw.ai.prompt_text import last_user_text
from fastgw.ai.providers.base import UpstreamRequest
from fastgw.ai.semantic_routing import EMBEDDINGS_TIMEOUT_S, SemanticRouter
from fastgw.outbound import EXCHANGE_ERRORS, StreamedReply, stream_request
from fastgw.plugins.ai_proxy.exchange import LLMExchange, current_exchange
from fastgw.plugins.ai_proxy.gates import GateRefusal, LLMCall, admit, completed, gates
from fastgw.plugins.ai_proxy.handler import AIProxy
from fastgw.plugins.ai_proxy.schema import model_config
from fastgw.plugins.ai_proxy.target import LLMTarget
from fastgw.plugins.ai_proxy_advanced.continuation import (
    Part,
    Splice,
    Transcript,
    continuation_request,
    with_total_usage,
)
from fastgw.plugins.context import HeaderList, RequestContext
from fastgw.plugins.state import ConfigState

NO_TARGET = "failure to get a peer from the ring-balancer"
# A provider's Retry-After is believed up to this long (seconds).
MAX_RETRY_AFTER_S = 3600.0
# The outcomes nginx counts against a target whatever proxy_next_upstream says.
# An answer that breaks the provider's API (invalid_answer) counts as invalid_header.
# A stream broken off mid-answer (stream_cut) or by the provider's own error
# event (stream_error) is a failure of its target too.
ALWAYS_FAILURES = frozenset(("error", "timeout", "invalid_header", "invalid_answer",
                             "stream_cut", "stream_error"))
IDENTITY_ENCODING = ("Accept-Encoding", "identity")  # a continuation's events are read
IDEMPOTENT = frozenset(("GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"))
FAILURE_NAMES = {
    UpstreamFailure.FAILURE_ERROR: "error",
    UpstreamFailure.FAILURE_TIMEOUT: "timeout",
    UpstreamFailure.FAILURE_INVALID_HEADER: "invalid_header",
}

# Balancers by plugin, kept across config versions while their settings and
# targets are unchanged (like upstreams), so circuits and latencies survive
# a reload.
_BALANCERS: dict[Any, tuple[bytes, ModelBalancer]] = {}


def retry_after_ms(value: str | None) -> float:
    """Retry-After (seconds or an HTTP date) in ms; 0 when absent or unreadable."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return 0.0
    return max(0.0, min(seconds, MAX_RETRY_AFTER_S)) * 1000.0


def _algorithm_balancer(config: dict[str, Any]) -> balancers.Balancer:
    balancer = config["balancer"]
    # Stable keys: consistent hashing seeds its ring with them.
    targets = [balancers.Target(f"{i}-{t['model']['provider']}-{t['model']['name'] or ''}", 1,
                                t["weight"]) for i, t in enumerate(config["targets"])]
    algorithm = balancer["algorithm"]
    if algorithm == "consistent-hashing":
        return balancers.HashRing(targets, balancer["slots"])
    if algorithm in ("lowest-latency", "lowest-usage", "lowest-cost"):
        return balancers.PeakEwma(targets)
    if algorithm == "priority":
        return balancers.Priority(targets, [t["priority"] for t in config["targets"]])
    return balancers.RoundRobin(targets)


def _balancer_key(scope: Any) -> Any:
    if scope is None:
        return None
    return scope.id or scope.instance_name or (scope.route, scope.service, scope.consumer)


class AIProxyAdvanced(AIProxy):
    name = "ai-proxy-advanced"
    PRIORITY = 770
    OWN_MODEL_WINS = True

    __slots__ = ("balancer", "balancer_name", "algorithm", "hash_header", "retries",
                 "criteria", "counted_statuses", "failover_statuses", "timeouts",
                 "value_of", "labels", "checks_fit", "by_cost", "route_label", "semantic",
                 "prepares", "tiers", "expose_reason", "downgrade", "everyone",
                 "continues")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        balancer = config["balancer"]
        self.algorithm = balancer["algorithm"]
        self.hash_header = balancer["hash_on_header"] \
            if self.algorithm == "consistent-hashing" else None
        self.retries = balancer["retries"]
        self.criteria = frozenset(balancer["failover_criteria"])
        statuses = bytearray(600)
        for criterion in self.criteria:
            if criterion.startswith("http_"):
                statuses[int(criterion[5:])] = 1
        self.counted_statuses = bytes(statuses)
        # Statuses handed back by the core for a failover (none without retries).
        self.failover_statuses = self.counted_statuses if self.retries else None
        self.timeouts = (float(balancer["connect_timeout"]), float(balancer["write_timeout"]),
                         float(balancer["read_timeout"]))
        self.value_of = self._value_reader(balancer)
        self.labels = self._labels(self.targets)
        self.everyone = (1 << len(self.targets)) - 1  # every target, as a mask
        self.by_cost = self.algorithm == "lowest-cost"
        self.semantic = self._semantic_router(config) if self.algorithm == "semantic" else None
        self.prepares = self.semantic is not None
        # complexity: for each tier, the targets in the order it tries them.
        self.tiers = self._tier_preferences(config) if self.algorithm == "complexity" else None
        self.expose_reason = balancer["expose_route_reason"]
        self.continues = balancer["stream_continuation"]
        # budget_downgrade: (the cheaper tier's targets as a mask, the share below which
        # a call falls to them).
        downgrade = balancer["budget_downgrade"]
        self.downgrade = None if downgrade is None else (
            sum(1 << i for i, t in enumerate(config["targets"]) if t["tier"] == downgrade["tier"]),
            downgrade["below_share"])
        # lowest-cost weighs each request's tokens: it needs what a request uses.
        self.checks_fit = self.by_cost or any(target.checks_fit for target in self.targets)
        self.route_label = str(getattr(scope, "route", None) or getattr(scope, "service", None)
                               or "*")
        key = _balancer_key(scope)
        self.balancer_name = str(getattr(scope, "instance_name", None) or
                                 getattr(scope, "id", None) or
                                 getattr(scope, "route", None) or "ai-proxy-advanced")
        signature = orjson.dumps([balancer, config["targets"]], option=orjson.OPT_SORT_KEYS)
        kept = _BALANCERS.get(key)
        if kept is not None and kept[0] == signature:
            self.balancer = kept[1]
        else:
            self.balancer = ModelBalancer(_algorithm_balancer(config), balancer["max_fails"],
                                          float(balancer["fail_timeout"]))
            _BALANCERS[key] = (signature, self.balancer)
        watch_balancer(self.balancer_name, self.labels, self.balancer)

    @staticmethod
    def _tier_preferences(config: dict[str, Any]) -> dict[str, list[int]]:
        """Per tier, bit masks of targets: its own, then the tiers above it
        (more capable), then those below."""
        masks = {tier: 0 for tier in TIERS}
        for index, target in enumerate(config["targets"]):
            masks[target["tier"]] |= 1 << index
        preferences = {}
        for position, tier in enumerate(TIERS):
            order = [*TIERS[position:], *reversed(TIERS[:position])]
            preferences[tier] = [masks[other] for other in order if masks[other]]
        return preferences

    @staticmethod
    def _semantic_router(config: dict[str, Any]) -> SemanticRouter:
        vectordb = config["vectordb"]
        embedder = EmbeddingsClient(model_config(config["embeddings"]), vectordb["dimensions"],
                                    EMBEDDINGS_TIMEOUT_S)
        return SemanticRouter(embedder, [target["description"] for target in config["targets"]],
                              vectordb["distance_metric"], vectordb["threshold"])

    def _targets(self, config: dict[str, Any]) -> list[LLMTarget]:
        return [LLMTarget(target, self.front) for target in config["targets"]]

    @staticmethod
    def _route_type(config: dict[str, Any]) -> str:
        return config["targets"][0]["route_type"]  # the same for all (the schema says so)

    @staticmethod
    def _labels(targets: list[LLMTarget]) -> tuple[str, ...]:
        # provider/model, numbered when two targets share one.
        seen: dict[str, int] = {}
        labels = []
        for target in targets:
            count = seen.get(target.label, 0) + 1
            seen[target.label] = count
            labels.append(target.label if count == 1 else f"{target.label}#{count}")
        return tuple(labels)

    @staticmethod
    def _value_reader(balancer: dict[str, Any]) -> Any:
        """What an answered attempt feeds the algorithm: a latency (ms) for
        lowest-latency, a usage for lowest-usage, nothing for the others."""
        algorithm = balancer["algorithm"]
        if algorithm in ("lowest-latency", "lowest-cost"):
            # lowest-cost breaks ties between equally cheap targets by latency.
            strategy = balancer["latency_strategy"]
            if strategy == "ttft":
                return lambda exchange, target: exchange.ttft_ms or exchange.latency_ms or 0.0
            if strategy == "e2e":
                return lambda exchange, target: exchange.latency_ms or 0.0

            def per_output_token(exchange: LLMExchange, target: LLMTarget) -> float:
                latency = exchange.latency_ms or 0.0
                usage = exchange.usage
                tokens = usage.completion_tokens if usage else 0
                return latency / tokens if tokens else latency
            return per_output_token
        if algorithm == "lowest-usage":
            strategy = balancer["tokens_count_strategy"]
            if strategy == "cost":
                return lambda exchange, target: target.price(exchange.usage) or 0.0
            return lambda exchange, target: float(
                getattr(exchange.usage, strategy, 0) if exchange.usage else 0)
        return lambda exchange, target: 0.0

    # -- access -----------------------------------------------------------------

    async def _prepare(self, ctx: RequestContext, request: dict[str, Any]) -> None:
        """semantic: the targets in the order the prompt's meaning prefers
        (one embeddings call at most, none for a prompt seen before)."""
        assert self.semantic is not None
        state = ctx.plugin_state(self)
        state["preference"], state["reason"] = await self.semantic.preference(
            last_user_text(request), len(self.targets))

    def _dispatch(self, ctx: RequestContext, request: dict[str, Any], body: dict[str, Any],
                  raw: bytes, stream: bool) -> None:
        key = None
        if self.hash_header is not None:
            value = ctx.request.headers.get(self.hash_header)
            key = value.encode("latin-1") if value else None
        state = ctx.plugin_state(self)
        state["pending"] = (request, body, raw, stream, key)
        state["client_headers"] = list(ctx.request.headers.items)
        state["tries"] = []
        self._choose(state, request, stream)
        state["retries"] = 0
        if not self._send_to_next(ctx, state):
            self.refuse(ctx, 503, NO_TARGET)
            return
        ctx.set_timeouts(*self.timeouts)
        if self.failover_statuses is not None:
            ctx.enable_failover(self._failover, self.failover_statuses)

    def _choose(self, state: dict[str, Any], request: dict[str, Any], stream: bool) -> None:
        """What the picks of this request go by (before the first): the
        targets that cannot serve it count as tried, so that no algorithm and
        no failover picks them; lowest-cost and complexity give a preference
        (semantic gave its own in _prepare), and the reason."""
        state["tried"] = state["unfit"] = 0
        if self.checks_fit:
            needs = state["needs"] = needs_of(self.route_type, request, stream)
            state["tried"] = state["unfit"] = self._unfit_targets(state, request, needs)
            if self.by_cost:
                state["preference"] = self._cost_groups(needs)
                state["reason"] = "cheapest"
        if self.tiers is not None:
            complexity = classify(request)
            state["preference"] = self.tiers[complexity.tier]
            state["reason"] = complexity.tier
            state["reasons"] = complexity.reasons

    def _unfit_targets(self, state: dict[str, Any], request: dict[str, Any],
                       needs: Needs) -> int:
        """The bit mask of the targets that cannot serve the request (why,
        in the log entry); a TranslationError (400) when none can."""
        mask = 0
        reasons = []
        for index, target in enumerate(self.targets):
            reason = target.unfit(request, needs)
            if reason is not None:
                mask |= 1 << index
                reasons.append((self.labels[index], reason))
        if reasons:
            state["unfit_reasons"] = [{"target": label, "reason": reason.text}
                                      for label, reason in reasons]
            if len(reasons) == len(self.targets):
                raise TranslationError(refusal(needs, reasons))
        return mask

    def _cost_groups(self, needs: Needs) -> list[int]:
        """lowest-cost: the targets as bit masks of equally cheap ones, the
        cheapest first. A request's expected cost on a target is its prompt's
        tokens at the input price plus its output ceiling at the output price."""
        costs: dict[float, int] = {}
        for index, target in enumerate(self.targets):
            output = needs.output_tokens or target.model.options.max_tokens or 0
            cost = needs.prompt_tokens * (target.input_cost or 0.0) + \
                output * (target.output_cost or 0.0)
            costs[cost] = costs.get(cost, 0) | 1 << index
        return [costs[cost] for cost in sorted(costs)]

    def _pick(self, state: dict[str, Any], key: bytes | None) -> int:
        """The next target: the algorithm's among those not tried; with a
        preference (lowest-cost: the cheapest first; semantic: the nearest
        first), the first group with one left (the balancer's pick within
        it), circuits as for every algorithm."""
        tried = state["tried"]
        groups = state.get("preference")
        if groups is None:
            return self.balancer.pick(key, tried)
        for group in groups:
            if group & ~tried:
                index = self.balancer.pick(key, tried | (self.everyone & ~group))
                if index >= 0:
                    return index
        return -1

    def _send_to_next(self, ctx: RequestContext, state: dict[str, Any],
                      moving: bool = False) -> bool:
        """Point the request at the next target not tried yet; False when none
        is left. A target that cannot take the request (a field its provider
        has no place for, or a gate's limit for it) is passed over; if none
        can, the refusal stands. ``moving``: a failover, whose gates move
        their reservation to the new target (the first one's is made by
        ``_admit`` once the target is chosen)."""
        request, body, raw, stream, key = state["pending"]
        refusal: TranslationError | None = None
        while True:
            index = self._pick(state, key)
            if index < 0:
                if refusal is not None:
                    raise refusal
                return False
            state["tried"] |= 1 << index
            try:
                self._send(ctx, self.targets[index], request, body, raw, stream,
                           client_headers=list(state["client_headers"]))
                if moving:
                    call = LLMCall(self.targets[index], request, state.get("needs"))
                    for gate in gates(ctx):
                        gate.move(ctx, call)
            except TranslationError as failure:
                self.balancer.release(index)
                self._note_try(state, index, "refused", 0)
                refusal = refusal or failure
                continue
            state["index"] = index
            state["settled"] = False
            if self.continues and stream:
                exchange = current_exchange(ctx)
                assert exchange is not None  # _send made it
                exchange.transcript = Transcript()
                exchange.rescue = partial(self._rescue, ctx)
            reason = "failover" if moving else state.get("reason", "balancer")
            state["decision"] = {"algorithm": self.algorithm, "target": self.labels[index],
                                 "reason": reason}
            if "reasons" in state:
                state["decision"]["signals"] = list(state["reasons"])
            record_decision(self.route_label, self.algorithm, self.labels[index], reason)
            return True

    def _note_try(self, state: dict[str, Any], index: int, outcome: str, status: int,
                  continuation: bool = False) -> None:
        label = self.labels[index]
        record_attempt(self.balancer_name, label, outcome)
        attempt = {"target": label, "outcome": outcome, "status": status or None}
        if continuation:
            attempt["continuation"] = True
        state["tries"].append(attempt)

    def _admit(self, ctx: RequestContext) -> Awaitable[None] | None:
        """The gates' admission. With balancer.budget_downgrade, a call that
        a money limit refuses, or that would leave less than ``below_share``
        of a money window, goes to the cheaper tier's targets instead: the
        first reservation is given back before the new one is made, so the
        budget's accounting stays exact."""
        if self.downgrade is None or not gates(ctx):
            return super()._admit(ctx)
        return self._admit_or_downgrade(ctx)

    async def _admit_or_downgrade(self, ctx: RequestContext) -> None:
        assert self.downgrade is not None
        state = ctx.plugin_state(self)
        admit_here = super()._admit
        try:
            await completed(admit_here(ctx))
        except GateRefusal:
            if not self._downgrade(ctx, state, "over the budget"):
                raise
            await completed(admit_here(ctx))
            return
        lefts = [left for gate in gates(ctx) if (left := gate.budget_left(ctx)) is not None]
        if lefts and min(lefts) < self.downgrade[1] and \
                self._downgrade(ctx, state, f"{min(lefts):.0%} of the budget left"):
            # The first choice's reservation is given back for the cheaper one's.
            for gate in gates(ctx):
                gate.release(ctx)
            await completed(admit_here(ctx))

    def _downgradable(self, state: dict[str, Any]) -> bool:
        assert self.downgrade is not None
        cheaper = self.downgrade[0] & ~state["unfit"]
        return bool(cheaper) and not (1 << state["index"]) & self.downgrade[0]

    def _downgrade(self, ctx: RequestContext, state: dict[str, Any], why: str) -> bool:
        """Send the request to a target of the cheaper tier; False when none
        can take it (or it already went to one)."""
        assert self.downgrade is not None
        if not self._downgradable(state):
            return False
        index = state["index"]
        kept = {name: state[name] for name in ("tried", "preference", "reason", "decision")
                if name in state}
        state["tried"] = self.everyone & ~(self.downgrade[0] & ~state["unfit"])
        state.pop("preference", None)
        state["reason"] = "downgrade"
        if not self._send_to_next(ctx, state):
            # None of them is up (circuits): the first choice stands, as it was.
            state.pop("preference", None)
            state.update(kept)
            return False
        self.balancer.release(index)  # given back: the log phase must not settle it
        self._note_try(state, index, "downgraded", 0)
        state["downgraded"] = {"from": self.labels[index],
                               "to": self.labels[state["index"]], "why": why}
        return True

    def header_filter(self, ctx: RequestContext) -> None:
        super().header_filter(ctx)
        downgraded = ctx.plugin_state(self).get("downgraded")
        if downgraded is not None and ctx.response is not None:
            ctx.response.headers.set("X-Fastgw-Downgraded", f"{downgraded['from']} -> "
                                     f"{downgraded['to']} ({downgraded['why']})")
        decision = ctx.plugin_state(self).get("decision")
        if self.expose_reason and decision is not None and ctx.response is not None:
            signals = decision.get("signals")
            ctx.response.headers.set("X-Fastgw-Route-Reason", decision["reason"] + (
                f" ({'; '.join(signals)})" if signals else ""))

    # -- failover ---------------------------------------------------------------

    def _failover(self, ctx: RequestContext, failure: int, status: int,
                  headers: HeaderList | None, sent: bool) -> bool:
        state = ctx.plugin_state(self)
        index = state["index"]
        outcome = f"http_{status}" if failure == UpstreamFailure.FAILURE_HTTP else \
            FAILURE_NAMES[UpstreamFailure(failure)]
        self._settle_failure(state, index, outcome, status,
                             headers.get("retry-after") if headers is not None else None)
        if outcome not in self.criteria:
            return False
        if sent and ctx.request.method not in IDEMPOTENT and "non_idempotent" not in self.criteria:
            # nginx's rule: a request that may have reached the model is not
            # sent again unless the config says it may be.
            return False
        if state["retries"] >= self.retries:
            return False
        try:
            if not self._send_to_next(ctx, state, moving=True):
                return False
        except TranslationError:
            return False  # no target left can take the request: the failure stands
        state["retries"] += 1
        record_failover(self.balancer_name, self.labels[index])
        return True

    def _settle_failure(self, state: dict[str, Any], index: int, outcome: str, status: int,
                        retry_after: str | None) -> None:
        state["settled"] = True
        self._note_try(state, index, outcome, status)
        if outcome in ALWAYS_FAILURES or (0 < status < 600 and self.counted_statuses[status]):
            self.balancer.failure(index)
        else:
            self.balancer.release(index)
        if status == 429:
            self.balancer.open_for(index, retry_after_ms(retry_after))

    # -- stream continuation ------------------------------------------------------------

    def _rescue(self, ctx: RequestContext, exchange: LLMExchange, error: dict[str, Any],
                outcome: str) -> bool:
        """The stream broke off (``outcome``): whether another target may
        write the rest (then the core waits for ``_continue_stream``)."""
        state = ctx.plugin_state(self)
        transcript: Transcript = exchange.transcript
        if not transcript.continuable or transcript.finished or ctx.response is None \
                or state["retries"] >= self.retries or not self.everyone & ~state["tried"]:
            return False
        state["broken"] = (error, outcome)
        ctx.continue_body(partial(self._continue_stream, ctx, state, exchange))
        return True

    async def _continue_stream(self, ctx: RequestContext, state: dict[str, Any],
                               exchange: LLMExchange, write: Callable[[bytes], bool]) -> bool:
        """Ask the next capable targets, in the balancer's order, for the rest
        of the answer until one gives it whole (True); the client's stream
        gets their events, or the first failure's error event when none can
        (False: the core then ends the stream without a clean end).
        Each call is billed as itself: the part before is settled with the
        gates before the next is reserved, and the log phase settles the
        last (``earlier`` holds the others)."""
        error, outcome = state.pop("broken")
        first = state["index"]
        self._settle_failure(state, first, outcome, 0, None)
        earlier: list[Part] = state.setdefault("earlier", [])
        current = Part(self.targets[first], exchange.provider, exchange.model_name,
                       exchange.usage)
        key = state["pending"][4]
        writer = exchange.writer
        assert writer is not None  # a stream has its writer

        def send(data: bytes) -> bool:
            if data:
                if exchange.payloads:
                    exchange.response_payload.append(data)
                if ctx.response is not None:
                    ctx.response.size += len(data)
            return write(data)

        while state["retries"] < self.retries:
            index = self._pick(state, key)
            if index < 0:
                break
            state["tried"] |= 1 << index
            state["retries"] += 1
            target = self.targets[index]
            request, how = continuation_request(exchange.request, exchange.transcript.text,
                                                target.model.provider)
            try:
                model = target.model_for(ctx, request, own_model_wins=True)
                upstream = target.translator.build_request(ROUTE_CHAT, request, model)
            except TranslationError:
                self.balancer.release(index)
                self._note_try(state, index, "refused", 0, continuation=True)
                continue
            # The part so far is billed before the next one is reserved.
            price = current.target.price(current.usage)
            for gate in gates(ctx):
                gate.settle(ctx, current.usage, price)
            earlier.append(current)
            current = Part(target, model.provider, model.name or "", None)
            state["index"] = index
            state["target"] = target
            state["settled"] = False
            exchange.provider, exchange.model_name = current.provider, current.model_name
            exchange.usage = None
            state["continuation"] = {"from": self.labels[first], "to": self.labels[index],
                                     "method": how,
                                     "sent_tokens": estimate_tokens(exchange.transcript.text)}
            record_decision(self.route_label, self.algorithm, self.labels[index], "continuation")
            try:
                await completed(admit(ctx, LLMCall(target, request)))
            except GateRefusal as refusal:
                self.balancer.release(index)
                state["settled"] = True
                self._note_try(state, index, "refused", refusal.status, continuation=True)
                send(writer.error(refusal.error, refusal.status))
                return False
            except asyncio.CancelledError:
                self._client_closed(state, index)
                raise
            result, status = await self._stream_part(ctx, state, exchange, target, model.name
                                                     or "", request, upstream, send)
            if result in ("ok", "client_closed"):
                return result == "ok"
            self._settle_failure(state, index, result, status, None)
            state["tries"][-1]["continuation"] = True
            current = Part(target, current.provider, current.model_name, exchange.usage)
        send(writer.error(error, 502))
        return False

    async def _stream_part(self, ctx: RequestContext, state: dict[str, Any],
                           exchange: LLMExchange, target: LLMTarget, model_name: str,
                           request: dict[str, Any], upstream: UpstreamRequest,
                           send: Callable[[bytes], bool]) -> tuple[str, int]:
        """One continuation call, its events written as they come: its
        outcome ("ok", "client_closed", or a failure as failover names it)
        and status. ``exchange.usage`` is its usage (reported, or estimated
        from what it sent) whatever the outcome."""
        writer = exchange.writer
        assert writer is not None
        translator = target.translator.stream_translator(ROUTE_CHAT, model_name, request)
        splice = Splice(exchange.transcript)
        index = state["index"]
        connect_ms, _, read_ms = self.timeouts
        reply: StreamedReply | None = None
        outcome, status = "ok", 0
        try:
            reply = await stream_request(
                upstream.method, upstream.url, [*upstream.headers, IDENTITY_ENCODING],
                upstream.body, connect_timeout=connect_ms / 1000.0,
                read_timeout=read_ms / 1000.0, verify=self._verifies_tls(ctx))
            status = reply.status
            if not 200 <= status < 300:
                return f"http_{status}", status
            async for piece in reply.chunks():
                chunks = translator.feed(piece)
                if chunks:
                    chunks = splice(chunks)
                    exchange.transcript.add(chunks)
                    for answer_filter in exchange.filters:
                        chunks = answer_filter.chunks(chunks)
                    if chunks and not send(writer.chunks(chunks)):
                        outcome = "client_closed"
                        break
                if translator.error is not None:
                    return "stream_error", status
            if outcome == "ok":
                tail = splice(translator.finish())
                for answer_filter in exchange.filters:
                    tail = answer_filter.finish(tail)
                exchange.usage = translator.usage_so_far()
                total = exchange.usage
                for part in state["earlier"]:
                    total = part.usage.plus(total) if part.usage is not None else total
                send(writer.finish(with_total_usage(tail, total), total))
        except StreamCut:
            return "stream_cut", status
        except StreamError:
            return "stream_error", status
        except TimeoutError:
            return "timeout", status
        except EXCHANGE_ERRORS:
            return ("stream_cut" if status else "error"), status
        except asyncio.CancelledError:
            outcome = "client_closed"  # the client went away (the core cancels)
            raise
        finally:
            if reply is not None:
                reply.close()
            # A refused call cost nothing; one that answered, what it sent.
            exchange.usage = translator.usage_so_far() if 200 <= status < 300 else None
            exchange.finished_at = time.perf_counter()
            if outcome == "client_closed":
                self._client_closed(state, index)
        if outcome == "client_closed":
            return outcome, status
        state["settled"] = True
        self._note_try(state, index, "ok", status, continuation=True)
        self.balancer.success(index, self.value_of(exchange, target))
        return outcome, status

    def _client_closed(self, state: dict[str, Any], index: int) -> None:
        """A continuation the client left: nobody's fault."""
        self.balancer.release(index)
        state["settled"] = True
        self._note_try(state, index, "client_closed", 0, continuation=True)

    # -- log --------------------------------------------------------------------------

    def _log_more(self, ctx: RequestContext, state: dict[str, Any], exchange: LLMExchange,
                  section: dict[str, Any]) -> None:
        if not state.get("settled", True):
            self._settle_last(ctx, state, exchange)
        if section.get("meta") is not None:
            section["meta"]["balancer"] = self.balancer_name
        section["tries"] = state["tries"]
        if "decision" in state:
            section["decision"] = state["decision"]
        if "unfit_reasons" in state:
            section["unfit"] = state["unfit_reasons"]
        if "downgraded" in state:
            section["downgraded"] = state["downgraded"]
        if "continuation" in state:
            section["continuation"] = state["continuation"]

    def _settle_last(self, ctx: RequestContext, state: dict[str, Any],
                     exchange: LLMExchange) -> None:
        """The attempt whose answer (or failure) the client got."""
        index = state["index"]
        response = ctx.response
        if response is None or response.status == 499:
            self.balancer.release(index)  # the client went away: nobody's fault
            state["settled"] = True
            self._note_try(state, index, "client_closed", 0)
            return
        if not exchange.status:
            # No answer (the core's own error after the last failover).
            outcome = "timeout" if response.status == 504 else "error"
            self._settle_failure(state, index, outcome, 0, None)
            return
        status = exchange.status
        if 200 <= status < 300 and exchange.answer_status >= 500:
            # Answered, but not as the provider's API promises (a 502).
            self._settle_failure(state, index, "invalid_answer", 0, None)
            return
        if not 200 <= status < 300:
            self._settle_failure(state, index, f"http_{status}", status,
                                 response.headers.get("retry-after"))
            return
        state["settled"] = True
        self._note_try(state, index, "ok", status)
        self.balancer.success(index, self.value_of(exchange, self.targets[index]))


HANDLER = AIProxyAdvanced
