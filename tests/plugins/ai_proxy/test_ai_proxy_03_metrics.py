"""fastgw.ai.metrics: per-worker counting, JSON snapshots that sum across
workers, and the Prometheus families made from them."""

import orjson
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from fastgw.ai.metrics import BUCKETS_MS, AIMetrics, families
from fastgw.ai.usage import Usage


class Families:
    def __init__(self, snapshots):
        self.snapshots = snapshots

    def collect(self):
        return families(self.snapshots)


def exposition(snapshots) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families(snapshots))
    return generate_latest(registry).decode()


def line(name: str, series: dict, **extra) -> str:
    """A sample's name and labels as prometheus-client writes them (labels sorted)."""
    labels = {"cache_status": "", **series, **extra}
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def worker(*calls) -> dict:
    registry = AIMetrics()
    for call in calls:
        registry.record(*call)
    # What the supervisor receives: the snapshot after a JSON round trip.
    return orjson.loads(orjson.dumps(registry.snapshot()))


def test_a_snapshot_holds_cumulative_totals_per_series():
    snap = worker(
        ("openai", "gpt-4o", "", Usage.of(10, 5), 0.002, 120.0, 30.0),
        ("openai", "gpt-4o", "", Usage.of(20, 7, 30, reasoning=4, cached=8), 0.004, 4000.0,
         None),
        ("anthropic", "claude", "hit", None, None, None, None),
        ("anthropic", "claude-cached", "", Usage.of(50, 5, cached=30, cache_write=15), None,
         None, None),
    )

    by_model = {series["model"]: series for series in snap["series"]}
    gpt = by_model["gpt-4o"]
    assert gpt["requests"] == 2
    assert gpt["tokens"] == {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 45,
                             "cached_tokens": 8, "cache_write_tokens": 0, "reasoning_tokens": 4}
    assert by_model["claude-cached"]["tokens"]["cache_write_tokens"] == 15
    assert by_model["claude-cached"]["tokens"]["cached_tokens"] == 30
    assert gpt["cost"] == pytest.approx(0.006)
    assert gpt["latency_ms"]["count"] == 2 and gpt["latency_ms"]["sum"] == 4120.0
    assert gpt["ttft_ms"]["count"] == 1  # a call without a first token is not observed
    assert sum(gpt["latency_ms"]["counts"]) == 2
    claude = by_model["claude"]
    assert (claude["requests"], claude["cache_status"]) == (1, "hit")
    assert claude["tokens"]["total_tokens"] == 0
    assert snap["buckets_ms"] == list(BUCKETS_MS)


def test_families_sum_workers_and_use_prometheus_shapes():
    first = worker(("openai", "gpt-4o", "", Usage.of(10, 5), 0.5, 100.0, 5.0))
    second = worker(("openai", "gpt-4o", "", Usage.of(1, 2), 0.25, 100.0, 20.0),
                    ("ollama", "llama3", "", Usage.of(3, 4), None, 70000.0, 900.0))

    text = exposition([first, second])

    gpt = {"model": "gpt-4o", "provider": "openai"}
    assert line("fastgw_ai_llm_requests_total", gpt) + " 2.0" in text
    assert line("fastgw_ai_llm_tokens_total", gpt, token_type="prompt_tokens") + " 11.0" in text
    assert line("fastgw_ai_llm_tokens_total", gpt, token_type="completion_tokens") + " 7.0" in text
    assert line("fastgw_ai_llm_tokens_total", gpt, token_type="total_tokens") + " 18.0" in text
    assert line("fastgw_ai_llm_cost_total", gpt) + " 0.75" in text
    # 100 ms falls in the le="100" bucket (bounds are inclusive): both calls count there.
    latency = "fastgw_ai_llm_provider_latency_ms"
    assert line(latency + "_bucket", gpt, le="100") + " 2.0" in text
    assert line(latency + "_bucket", gpt, le="50") + " 0.0" in text
    assert line(latency + "_sum", gpt) + " 200.0" in text
    ttft = "fastgw_ai_llm_time_to_first_token_ms_bucket"
    assert line(ttft, gpt, le="5") + " 1.0" in text
    assert line(ttft, gpt, le="25") + " 2.0" in text
    llama = {"model": "llama3", "provider": "ollama"}
    assert line(latency + "_bucket", llama, le="60000") + " 0.0" in text
    assert line(latency + "_bucket", llama, le="+Inf") + " 1.0" in text
    assert line(latency + "_count", llama) + " 1.0" in text


def test_no_calls_no_series():
    text = exposition([worker(), {}])
    assert "fastgw_ai_llm_requests_total{" not in text
    assert "# TYPE fastgw_ai_llm_requests_total counter" in text


def test_snapshots_with_other_buckets_are_refused():
    snap = worker(("openai", "m", "", None, None, 10.0, None))
    snap["series"][0]["latency_ms"]["counts"].append(0)
    with pytest.raises(ValueError, match="histogram buckets"):
        families([snap])
