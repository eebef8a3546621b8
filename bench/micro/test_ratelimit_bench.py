"""Cost of one rate-limit decision, per request, for each primitive.

Why these are compiled: a limited route takes one of these on every request,
and PERF.md prices each extra microsecond at about 6% of throughput. The
shared table is the price of exact limits across workers without Redis; the
local counters are the single-process baseline it is compared with. Under
``--benchmark-disable`` each case runs once, as a correctness check.
"""

import pytest

from fastgw._core import ratelimit

NOW = 1_700_000_000.5


@pytest.fixture(autouse=True)
def _label(benchmark):
    benchmark.extra_info["compiled"] = ratelimit.__file__.endswith(".so")


def test_token_bucket_take(benchmark):
    bucket = ratelimit.TokenBucket(rate_per_s=1e9, burst=1e9)
    assert benchmark(bucket.take, NOW) is True


def test_fixed_window_hit_local(benchmark):
    per_minute = ratelimit.FixedWindow(ratelimit.LocalCounters(), "minute")
    assert benchmark(per_minute.hit, b"consumer-42", NOW) >= 1


def test_fixed_window_hit_shared(benchmark):
    per_minute = ratelimit.FixedWindow(ratelimit.SharedCounterTable(4096), "minute")
    assert benchmark(per_minute.hit, b"consumer-42", NOW) >= 1


def test_sliding_window_hit_shared(benchmark):
    sliding = ratelimit.SlidingWindow(ratelimit.SharedCounterTable(4096), 60.0)
    assert benchmark(sliding.hit, b"consumer-42", NOW) >= 1.0


def test_shared_table_increment(benchmark):
    table = ratelimit.SharedCounterTable(4096)
    assert benchmark(table.incr, b"consumer-42|minute", 60.0, 120.0) >= 1


def test_local_counters_increment(benchmark):
    counters = ratelimit.LocalCounters()
    assert benchmark(counters.incr, b"consumer-42|minute", 60.0, 120.0) >= 1
