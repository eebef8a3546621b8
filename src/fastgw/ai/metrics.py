"""AI metrics: requests, tokens, cost and latencies of LLM calls, per worker.

Each worker counts into its own registry with ``record`` (one dict lookup and
a few additions per LLM call, made by the AI plugins on the slow path). The
supervisor asks every worker for ``snapshot()`` (plain JSON: cumulative
totals since the worker started), and on scrape ``families(snapshots)`` sums
them into prometheus-client metric families:

* ``fastgw_ai_llm_requests_total``
* ``fastgw_ai_llm_tokens_total{token_type}`` (prompt_tokens, completion_tokens, total_tokens,
  and the parts cached_tokens, cache_write_tokens, reasoning_tokens)
* ``fastgw_ai_llm_cost_total``
* ``fastgw_ai_llm_provider_latency_ms`` (histogram)
* ``fastgw_ai_llm_time_to_first_token_ms`` (histogram)

all labelled by ``provider``, ``model`` and ``cache_status`` (Kong's
ai_llm_* families, with fastgw's names); and for ai-proxy-advanced, per
balancer (``plugin``) and ``target``:

* ``fastgw_ai_target_attempts_total{outcome}`` (``ok``, ``error``, ``timeout``,
  ``invalid_header``, ``invalid_answer``, ``refused``, ``http_<status>``)
* ``fastgw_ai_target_failovers_total`` (requests moved away from the target)
* ``fastgw_ai_target_circuit_open`` (workers where its circuit is open)
* ``fastgw_ai_route_decisions_total{route,algorithm,target,reason}`` (which
  target each attempt went to, and why: ``balancer`` (the algorithm's pick),
  ``cheapest`` (lowest-cost), ``semantic``, ``catchall``, ``nearest`` and
  ``embeddings_unavailable`` (semantic), ``failover``)

and for ai-rate-limiting-advanced, per ``provider`` and ``unit`` (tokens or
money): ``fastgw_ai_limit_usage_total{kind}`` (``reserved`` before calls,
``used`` once they are settled, ``refused``) and
``fastgw_ai_limit_requests_total{outcome}`` (``admitted``, ``refused``);
and for ai-mcp-proxy, per ``server`` (the route) and ``tool``:
``fastgw_ai_mcp_tool_calls_total{outcome}`` (``ok``, ``error``: a tool error
or a failed exchange, ``denied``: refused by the ACL),
``fastgw_ai_mcp_tool_latency_ms`` (histogram) and
``fastgw_ai_mcp_acl_decisions_total{decision}`` (``allowed``, ``denied``).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from fastgw.ai.usage import Usage

# LLM calls take from milliseconds (a cache hit, a first token) to minutes (a
# long reasoning answer); the bounds are inclusive upper limits.
BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)
# The last three are parts of the first two, kept apart (prompt cache reads
# and writes are priced apart; reasoning is part of the completion).
TOKEN_TYPES = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
               "cache_write_tokens", "reasoning_tokens")
LABELS = ("provider", "model", "cache_status")
# (snapshot key, family name, help text)
HISTOGRAMS = (
    ("latency_ms", "fastgw_ai_llm_provider_latency_ms",
     "Time from sending the request to the provider to the end of its answer, in ms"),
    ("ttft_ms", "fastgw_ai_llm_time_to_first_token_ms",
     "Time from sending the request to the provider to its first token, in ms"),
)  # fmt: skip

SeriesKey = tuple[str, str, str]


class Histogram:
    """Counts per bucket (not cumulative: summing two workers is elementwise)."""

    __slots__ = ("counts", "total", "count")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS_MS) + 1)  # the last one is +Inf
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(BUCKETS_MS, value)] += 1
        self.total += value
        self.count += 1

    def to_json(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "sum": self.total, "count": self.count}

    def add_json(self, data: dict[str, Any]) -> None:
        counts = data["counts"]
        if len(counts) != len(self.counts):
            raise ValueError("AI metrics snapshot with other histogram buckets")
        self.counts = [mine + theirs for mine, theirs in zip(self.counts, counts, strict=True)]
        self.total += data["sum"]
        self.count += data["count"]

    def cumulative(self) -> list[tuple[str, int]]:
        buckets, running = [], 0
        for bound, count in zip((*BUCKETS_MS, "+Inf"), self.counts, strict=True):
            running += count
            buckets.append((str(bound), running))
        return buckets


class Series:
    """The totals of one (provider, model, cache_status)."""

    __slots__ = ("requests", "tokens", "cost", "saved_tokens", "saved_cost", "latency_ms", "ttft_ms")

    def __init__(self) -> None:
        self.requests = 0
        self.tokens = dict.fromkeys(TOKEN_TYPES, 0)
        self.cost = 0.0
        # Answers served from ai-semantic-cache: the tokens and cost they did not spend.
        self.saved_tokens = 0
        self.saved_cost = 0.0
        self.latency_ms = Histogram()
        self.ttft_ms = Histogram()

    def to_json(self, key: SeriesKey) -> dict[str, Any]:
        return {
            **dict(zip(LABELS, key, strict=True)),
            "requests": self.requests,
            "tokens": dict(self.tokens),
            "cost": self.cost,
            "saved_tokens": self.saved_tokens,
            "saved_cost": self.saved_cost,
            "latency_ms": self.latency_ms.to_json(),
            "ttft_ms": self.ttft_ms.to_json(),
        }

    def add_json(self, data: dict[str, Any]) -> None:
        self.requests += data["requests"]
        for token_type, count in data["tokens"].items():
            self.tokens[token_type] = self.tokens.get(token_type, 0) + count
        self.cost += data["cost"]
        self.saved_tokens += data.get("saved_tokens", 0)
        self.saved_cost += data.get("saved_cost", 0.0)
        self.latency_ms.add_json(data["latency_ms"])
        self.ttft_ms.add_json(data["ttft_ms"])


TargetKey = tuple[str, str]  # (balancer, target)


class LimitSeries:
    """ai-rate-limiting-advanced's counts for one provider and unit: the
    amounts reserved, used once settled and refused, and the calls admitted
    and refused. None: never counted (not shown).

    PERF: a plugin keeps its series and adds to their fields, a few
    attribute writes a call instead of building keys for a dict."""

    __slots__ = ("reserved", "used", "refused", "admitted_calls", "refused_calls")

    # (the kind as the metric families label it, the field)
    KINDS = (("reserved", "reserved"), ("used", "used"), ("refused", "refused"),
             ("requests:admitted", "admitted_calls"), ("requests:refused", "refused_calls"))

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.reserved: float | None = None
        self.used: float | None = None
        self.refused: float | None = None
        self.admitted_calls: int | None = None
        self.refused_calls: int | None = None

    def reserve(self, amount: float) -> None:
        """A call is admitted with ``amount`` reserved."""
        self.reserved = (self.reserved or 0.0) + amount
        self.admitted_calls = (self.admitted_calls or 0) + 1

    def refuse(self, amount: float) -> None:
        self.refused = (self.refused or 0.0) + amount
        self.refused_calls = (self.refused_calls or 0) + 1

    def use(self, amount: float) -> None:
        self.used = (self.used or 0.0) + amount


class AIMetrics:
    """One process's registry."""

    __slots__ = ("series", "attempts", "failovers", "balancers", "limits", "mcp_counts",
                 "mcp_latency", "decisions")

    def __init__(self) -> None:
        self.series: dict[SeriesKey, Series] = {}
        # (server, tool, "calls:<outcome>" or "acl:<decision>") -> count
        self.mcp_counts: dict[tuple[str, str, str], int] = {}
        self.mcp_latency: dict[tuple[str, str], Histogram] = {}
        # (provider, unit) -> ai-rate-limiting-advanced's counts.
        self.limits: dict[tuple[str, str], LimitSeries] = {}
        self.attempts: dict[tuple[str, str, str], int] = {}  # (balancer, target, outcome)
        self.failovers: dict[TargetKey, int] = {}
        self.decisions: dict[tuple[str, str, str, str], int] = {}  # (route, algorithm, target, reason)
        # balancer name -> (target labels, an object with state(index): 1 when open)
        self.balancers: dict[str, tuple[tuple[str, ...], Any]] = {}

    def attempt(self, balancer: str, target: str, outcome: str) -> None:
        key = (balancer, target, outcome)
        self.attempts[key] = self.attempts.get(key, 0) + 1

    def decision(self, route: str, algorithm: str, target: str, reason: str) -> None:
        key = (route, algorithm, target, reason)
        self.decisions[key] = self.decisions.get(key, 0) + 1

    def failover(self, balancer: str, target: str) -> None:
        key = (balancer, target)
        self.failovers[key] = self.failovers.get(key, 0) + 1

    def limit_series(self, provider: str, unit: str) -> LimitSeries:
        """ai-rate-limiting-advanced's counts for ``provider`` in ``unit``
        (made on first use; kept for good, so a plugin may keep it)."""
        series = self.limits.get((provider, unit))
        if series is None:
            series = self.limits[(provider, unit)] = LimitSeries()
        return series

    def mcp(self, server: str, tool: str, kind: str, latency_ms: float | None = None) -> None:
        """ai-mcp-proxy: a tool call's outcome (``calls:ok``...) or an ACL
        decision (``acl:allowed``...), and the call's latency when known."""
        key = (server, tool, kind)
        self.mcp_counts[key] = self.mcp_counts.get(key, 0) + 1
        if latency_ms is not None:
            histogram = self.mcp_latency.get((server, tool))
            if histogram is None:
                histogram = self.mcp_latency[(server, tool)] = Histogram()
            histogram.observe(latency_ms)

    def watch_balancer(self, balancer: str, labels: tuple[str, ...], states: Any) -> None:
        """Show the circuits of ``states`` (the newest config's) under ``balancer``."""
        self.balancers[balancer] = (labels, states)

    def _targets_json(self) -> dict[str, Any]:
        circuits = []
        for name, (labels, states) in self.balancers.items():
            for index, label in enumerate(labels):
                circuits.append([name, label, 1 if states.state(index) == 1 else 0])
        return {
            "attempts": [[*key, count] for key, count in self.attempts.items()],
            "failovers": [[*key, count] for key, count in self.failovers.items()],
            "circuits": circuits,
            "decisions": [[*key, count] for key, count in self.decisions.items()],
        }

    def record(
        self,
        provider: str,
        model: str,
        cache_status: str,
        usage: Usage | None,
        cost: float | None,
        latency_ms: float | None,
        ttft_ms: float | None,
        saved: Usage | None = None,
        saved_cost: float | None = None,
    ) -> None:
        """Count one LLM call; ``None`` means not known (no answer, no token).
        ``saved``: a cached answer's usage, what serving it did not spend."""
        key = (provider, model, cache_status)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series()
        series.requests += 1
        if usage is not None:
            tokens = series.tokens
            tokens["prompt_tokens"] += usage.prompt_tokens
            tokens["completion_tokens"] += usage.completion_tokens
            tokens["total_tokens"] += usage.total_tokens
            tokens["cached_tokens"] += usage.cached_tokens or 0
            tokens["cache_write_tokens"] += usage.cache_write_tokens or 0
            tokens["reasoning_tokens"] += usage.reasoning_tokens or 0
        if cost:
            series.cost += cost
        if saved is not None:
            series.saved_tokens += saved.total_tokens
            series.saved_cost += saved_cost or 0.0
        if latency_ms is not None:
            series.latency_ms.observe(latency_ms)
        if ttft_ms is not None:
            series.ttft_ms.observe(ttft_ms)

    def snapshot(self) -> dict[str, Any]:
        return {
            "buckets_ms": list(BUCKETS_MS),
            "series": [series.to_json(key) for key, series in self.series.items()],
            "targets": self._targets_json(),
            "limits": [[*key, kind, value] for key, series in self.limits.items()
                       for kind, field in LimitSeries.KINDS
                       if (value := getattr(series, field)) is not None],
            "mcp": {"counts": [[*key, count] for key, count in self.mcp_counts.items()],
                    "latency": [[*key, histogram.to_json()]
                                for key, histogram in self.mcp_latency.items()]},
        }

    def clear(self) -> None:
        self.series.clear()
        self.attempts.clear()
        self.failovers.clear()
        self.decisions.clear()
        self.balancers.clear()
        for limit in self.limits.values():
            limit.reset()  # plugins keep them
        self.mcp_counts.clear()
        self.mcp_latency.clear()


REGISTRY = AIMetrics()
record = REGISTRY.record
snapshot = REGISTRY.snapshot
record_attempt = REGISTRY.attempt
record_failover = REGISTRY.failover
record_decision = REGISTRY.decision
watch_balancer = REGISTRY.watch_balancer
limit_series = REGISTRY.limit_series
record_mcp = REGISTRY.mcp


def merge(snapshots: list[dict[str, Any]]) -> dict[SeriesKey, Series]:
    """Sum the snapshots of several workers, series by series."""
    merged: dict[SeriesKey, Series] = {}
    for snap in snapshots:
        for data in snap.get("series", ()):
            key = (data["provider"], data["model"], data["cache_status"])
            series = merged.get(key)
            if series is None:
                series = merged[key] = Series()
            series.add_json(data)
    return merged


def families(snapshots: list[dict[str, Any]]) -> list[Any]:
    """The fastgw_ai_llm_* metric families of the summed snapshots."""
    merged = sorted(merge(snapshots).items())
    labels = list(LABELS)
    requests = CounterMetricFamily(
        "fastgw_ai_llm_requests_total", "LLM requests sent to providers", labels=labels
    )
    tokens = CounterMetricFamily(
        "fastgw_ai_llm_tokens_total", "LLM tokens by type", labels=[*labels, "token_type"]
    )
    cost = CounterMetricFamily(
        "fastgw_ai_llm_cost_total", "LLM cost, from the models' input and output costs",
        labels=labels,
    )
    saved_tokens = CounterMetricFamily(
        "fastgw_ai_cache_saved_tokens_total",
        "Tokens not spent: answers served from ai-semantic-cache", labels=labels)
    saved_cost = CounterMetricFamily(
        "fastgw_ai_cache_saved_cost_total",
        "Cost not spent: answers served from ai-semantic-cache", labels=labels)
    histograms = [
        (key, HistogramMetricFamily(name, doc, labels=labels)) for key, name, doc in HISTOGRAMS
    ]
    for key, series in merged:
        values = list(key)
        requests.add_metric(values, series.requests)
        if series.saved_tokens or series.saved_cost:
            saved_tokens.add_metric(values, series.saved_tokens)
            saved_cost.add_metric(values, series.saved_cost)
        for token_type in TOKEN_TYPES:
            tokens.add_metric([*values, token_type], series.tokens.get(token_type, 0))
        cost.add_metric(values, series.cost)
        for attribute, family in histograms:
            histogram: Histogram = getattr(series, attribute)
            family.add_metric(values, histogram.cumulative(), histogram.total)
    return [requests, tokens, cost, saved_tokens, saved_cost,
            *(family for _, family in histograms),
            *_target_families(snapshots), *_limit_families(snapshots),
            *_mcp_families(snapshots)]


def _mcp_families(snapshots: list[dict[str, Any]]) -> list[Any]:
    labels = ["server", "tool"]
    calls = CounterMetricFamily("fastgw_ai_mcp_tool_calls_total",
                                "ai-mcp-proxy tool calls, by outcome", labels=[*labels, "outcome"])
    acl = CounterMetricFamily("fastgw_ai_mcp_acl_decisions_total",
                              "ai-mcp-proxy ACL decisions on tool calls",
                              labels=[*labels, "decision"])
    latency = HistogramMetricFamily("fastgw_ai_mcp_tool_latency_ms",
                                    "ai-mcp-proxy tool calls: time to the answer, in ms",
                                    labels=labels)
    counts: dict[tuple[str, str, str], int] = {}
    histograms: dict[tuple[str, str], Histogram] = {}
    for snap in snapshots:
        mcp = snap.get("mcp", {})
        for server, tool, kind, count in mcp.get("counts", ()):
            counts[(server, tool, kind)] = counts.get((server, tool, kind), 0) + count
        for server, tool, data in mcp.get("latency", ()):
            histograms.setdefault((server, tool), Histogram()).add_json(data)
    for (server, tool, kind), count in sorted(counts.items()):
        family, _, value = kind.partition(":")
        (calls if family == "calls" else acl).add_metric([server, tool, value], count)
    for (server, tool), histogram in sorted(histograms.items()):
        latency.add_metric([server, tool], histogram.cumulative(), histogram.total)
    return [calls, acl, latency]


def _limit_families(snapshots: list[dict[str, Any]]) -> list[Any]:
    usage = CounterMetricFamily(
        "fastgw_ai_limit_usage_total",
        "ai-rate-limiting-advanced: what calls reserved, used once settled, or were refused",
        labels=["provider", "unit", "kind"])
    calls = CounterMetricFamily(
        "fastgw_ai_limit_requests_total", "ai-rate-limiting-advanced: calls admitted or refused",
        labels=["provider", "unit", "outcome"])
    totals: dict[tuple[str, str, str], float] = {}
    for snap in snapshots:
        for provider, unit, kind, amount in snap.get("limits", ()):
            key = (provider, unit, kind)
            totals[key] = totals.get(key, 0.0) + amount
    for (provider, unit, kind), amount in sorted(totals.items()):
        if kind.startswith("requests:"):
            calls.add_metric([provider, unit, kind.removeprefix("requests:")], amount)
        else:
            usage.add_metric([provider, unit, kind], amount)
    return [usage, calls]


def _summed(snapshots: list[dict[str, Any]], kind: str) -> list[tuple[list[str], int]]:
    totals: dict[tuple[str, ...], int] = {}
    for snap in snapshots:
        for *labels, count in snap.get("targets", {}).get(kind, ()):
            key = tuple(labels)
            totals[key] = totals.get(key, 0) + count
    return [(list(key), count) for key, count in sorted(totals.items())]


def _target_families(snapshots: list[dict[str, Any]]) -> list[Any]:
    attempts = CounterMetricFamily(
        "fastgw_ai_target_attempts_total", "Attempts on each ai-proxy-advanced target, by outcome",
        labels=["plugin", "target", "outcome"])
    failovers = CounterMetricFamily(
        "fastgw_ai_target_failovers_total",
        "Requests moved from an ai-proxy-advanced target to another", labels=["plugin", "target"])
    circuits = GaugeMetricFamily(
        "fastgw_ai_target_circuit_open",
        "Workers where the ai-proxy-advanced target's circuit is open", labels=["plugin", "target"])
    for labels, count in _summed(snapshots, "attempts"):
        attempts.add_metric(labels, count)
    for labels, count in _summed(snapshots, "failovers"):
        failovers.add_metric(labels, count)
    for labels, count in _summed(snapshots, "circuits"):
        circuits.add_metric(labels, count)
    decisions = CounterMetricFamily(
        "fastgw_ai_route_decisions_total",
        "Which ai-proxy-advanced target each attempt went to, and why",
        labels=["route", "algorithm", "target", "reason"])
    for labels, count in _summed(snapshots, "decisions"):
        decisions.add_metric(labels, count)
    return [attempts, failovers, circuits, decisions]
