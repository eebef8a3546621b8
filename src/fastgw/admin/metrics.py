"""Prometheus exposition for the admin API's ``GET /metrics``.

Workers count in the compiled core (``fastgw._core.metrics``); on scrape the
supervisor collects every worker's snapshots, sums them and lets
prometheus-client format the families. Which families appear follows the
prometheus plugins' flags, as in Kong.
"""

from __future__ import annotations

from collections import defaultdict

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from fastgw._core.metrics import LATENCY_BUCKETS_MS

LATENCY_FAMILIES = (
    ("request", "fastgw_request_latency_ms", "Total latency of requests, in ms"),
    ("upstream", "fastgw_upstream_latency_ms", "Time to the upstream's first byte, in ms"),
    ("gateway", "fastgw_gateway_latency_ms", "Time spent in the gateway, in ms"),
)


def merge_cells(stats: list[dict]) -> dict[tuple[str, str], dict]:
    """Sum the per-worker snapshots of each (service, route)."""
    merged: dict[tuple[str, str], dict] = {}
    for worker in stats:
        for cell in worker.get("metrics", ()):
            key = (cell["service"], cell["route"])
            into = merged.get(key)
            if into is None:
                merged[key] = {
                    "codes": defaultdict(int, {int(k): v for k, v in cell["codes"].items()}),
                    "consumer_codes": defaultdict(int, {(c, int(s)): n
                                                        for c, s, n in cell["consumer_codes"]}),
                    "latency": {k: [list(v[0]), v[1], v[2]] for k, v in cell["latency"].items()},
                    "bytes_in": cell["bytes_in"],
                    "bytes_out": cell["bytes_out"],
                }
                continue
            for code, n in cell["codes"].items():
                into["codes"][int(code)] += n
            for c, s, n in cell["consumer_codes"]:
                into["consumer_codes"][(c, int(s))] += n
            for kind, (buckets, total, count) in cell["latency"].items():
                mine = into["latency"][kind]
                mine[0] = [a + b for a, b in zip(mine[0], buckets, strict=True)]
                mine[1] += total
                mine[2] += count
            into["bytes_in"] += cell["bytes_in"]
            into["bytes_out"] += cell["bytes_out"]
    return merged


class _Snapshot:
    def __init__(self, stats: list[dict], budgets: list[dict] | None = None):
        self.stats = stats
        self.budgets = budgets or []

    def collect(self):
        export: dict[str, bool] = {}
        for worker in self.stats:
            for flag, on in (worker.get("metrics_export") or {}).items():
                export[flag] = export.get(flag, False) or on
        states: dict[str, int] = defaultdict(int)
        for worker in self.stats:
            for state, n in (worker.get("connection_states") or {}).items():
                states[state] += n
        conns = GaugeMetricFamily("fastgw_connections", "Client connections by state",
                                  labels=["state"])
        for state in ("active", "reading", "writing", "waiting"):
            conns.add_metric([state], states.get(state, 0))
        yield conns
        requests = CounterMetricFamily("fastgw_worker_requests",
                                       "Requests parsed, by worker", labels=["worker"])
        errors = CounterMetricFamily("fastgw_plugin_errors",
                                     "Plugin phases that raised, by worker", labels=["worker"])
        for s in self.stats:
            requests.add_metric([str(s["worker"])], s["requests"])
            errors.add_metric([str(s["worker"])], s.get("plugin_errors", 0))
        yield requests
        yield errors
        http_log: dict[str, int] = defaultdict(int)
        for s in self.stats:
            for state, n in (s.get("http_log") or {}).items():
                http_log[state] += n
        if http_log:
            entries = CounterMetricFamily("fastgw_http_log_entries",
                                          "http-log entries by what became of them",
                                          labels=["state"])
            for state, n in sorted(http_log.items()):
                entries.add_metric([state], n)
            yield entries
        workers = GaugeMetricFamily("fastgw_workers", "Workers answering the supervisor")
        workers.add_metric([], len(self.stats))
        yield workers

        cells = merge_cells(self.stats)
        if export.get("status_code_metrics"):
            family = CounterMetricFamily(
                "fastgw_http_requests", "HTTP requests by service, route, status and consumer",
                labels=["service", "route", "code", "consumer"])
            for (service, route), cell in sorted(cells.items()):
                by_consumer: dict[int, int] = defaultdict(int)
                for (consumer, code), n in sorted(cell["consumer_codes"].items()):
                    family.add_metric([service, route, str(code), consumer], n)
                    by_consumer[code] += n
                for code, n in sorted(cell["codes"].items()):
                    rest = n - by_consumer.get(code, 0)
                    if rest > 0:
                        family.add_metric([service, route, str(code), ""], rest)
            yield family
        if export.get("latency_metrics"):
            for kind, name, doc in LATENCY_FAMILIES:
                family = HistogramMetricFamily(name, doc, labels=["service", "route"])
                for (service, route), cell in sorted(cells.items()):
                    counts, total, _count = cell["latency"][kind]
                    cumulative, running = [], 0
                    for bound, n in zip((*LATENCY_BUCKETS_MS, "+Inf"), counts, strict=True):
                        running += n
                        cumulative.append((str(bound), running))
                    family.add_metric([service, route], cumulative, total)
                yield family
        if export.get("ai_metrics"):
            from fastgw.ai.metrics import families

            yield from families([s["ai"] for s in self.stats if s.get("ai")])
            yield from _budget_families(self.budgets)
        if export.get("bandwidth_metrics"):
            family = CounterMetricFamily("fastgw_bandwidth_bytes", "Bytes by direction",
                                         labels=["service", "route", "direction"])
            for (service, route), cell in sorted(cells.items()):
                family.add_metric([service, route, "ingress"], cell["bytes_in"])
                family.add_metric([service, route, "egress"], cell["bytes_out"])
            yield family
        if export.get("upstream_health_metrics"):
            yield upstream_health_family(self.stats)


def upstream_health_family(stats: list[dict]) -> GaugeMetricFamily:
    """Kong's target health gauge: per target, 1 for its state (the worst
    any worker sees) and 0 for the other states."""
    from fastgw.upstreams.report import STATES, merge_all

    family = GaugeMetricFamily(
        "fastgw_upstream_target_health",
        "Health of each upstream target: 1 for its current state, 0 for the others",
        labels=["upstream", "target", "state"])
    merged = merge_all([{"upstreams": s.get("upstream_health") or {}} for s in stats])
    for upstream, targets in sorted(merged.items()):
        for target in targets:
            for state in STATES:
                family.add_metric([upstream, target["target"], state.lower()],
                                  1 if target["health"] == state else 0)
    return family


def _budget_families(budgets: list[dict]) -> list:
    """ai-rate-limiting-advanced budgets (GET /ai/budgets), as gauges in money."""
    if not budgets:
        return []
    labels = ["consumer", "consumer_group", "window"]
    remaining = GaugeMetricFamily("fastgw_ai_budget_remaining",
                                  "Money left of each budget in its current window",
                                  labels=labels)
    spent = GaugeMetricFamily("fastgw_ai_budget_spent",
                              "Money spent of each budget in its current window (settled calls)",
                              labels=labels)
    for entry in budgets:
        values = [entry["consumer"] or "", entry["consumer_group"] or "", entry["window"]]
        remaining.add_metric(values, entry["remaining"])
        spent.add_metric(values, entry["spent"])
    return [remaining, spent]


def render_metrics(stats: list[dict], budgets: list[dict] | None = None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(stats, budgets))
    return generate_latest(registry)
