"""Prometheus exposition for the admin API's ``GET /metrics``.

Workers keep plain counters in the compiled core; this module turns the
per-worker snapshots into metric families on scrape, so counting costs the
hot path no Python call.
"""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry


class _Snapshot:
    def __init__(self, stats: list[dict]):
        self.stats = stats

    def collect(self):
        conns = GaugeMetricFamily("fastgw_connections", "Client connections by state",
                                  labels=["state"])
        conns.add_metric(["active"], sum(s["connections"] for s in self.stats))
        yield conns
        requests = CounterMetricFamily("fastgw_worker_requests",
                                       "Requests parsed, by worker", labels=["worker"])
        for s in self.stats:
            requests.add_metric([str(s["worker"])], s["requests"])
        yield requests
        workers = GaugeMetricFamily("fastgw_workers", "Workers answering the supervisor")
        workers.add_metric([], len(self.stats))
        yield workers


def render_metrics(config, stats: list[dict]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(stats))
    return generate_latest(registry)
