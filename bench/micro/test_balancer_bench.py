"""Cost of choosing a target, per request, for each balancing algorithm.

Why these are compiled: every proxied request to an upstream picks a target,
and PERF.md prices each extra microsecond at about 6% of throughput, so a pick
must stay well under one. The ring's build runs once per config version; it is
measured to keep reloads with large ``slots`` quick. Under
``--benchmark-disable`` each case runs once, as a correctness check.
"""

import pytest

from fastgw._core import balancer

TARGETS = [balancer.Target(f"10.0.0.{n}", 8000, 100 if n % 3 else 50) for n in range(10)]


@pytest.fixture(autouse=True)
def _label(benchmark):
    benchmark.extra_info["compiled"] = balancer.__file__.endswith(".so")


def test_round_robin_pick(benchmark):
    rr = balancer.RoundRobin(TARGETS)
    assert 0 <= benchmark(rr.pick) < len(TARGETS)


def test_least_connections_pick_and_release(benchmark):
    lc = balancer.LeastConnections(TARGETS)

    def request():
        index = lc.pick()
        lc.release(index)
        return index

    assert 0 <= benchmark(request) < len(TARGETS)


def test_hash_ring_pick(benchmark):
    ring = balancer.HashRing(TARGETS)
    assert benchmark(ring.pick, b"consumer-7f3a9c") == ring.pick(b"consumer-7f3a9c")


def test_hash_ring_pick_with_owner_down(benchmark):
    ring = balancer.HashRing(TARGETS)
    owner = ring.pick(b"consumer-7f3a9c")
    ring.set_healthy(owner, False)
    assert benchmark(ring.pick, b"consumer-7f3a9c") != owner


def test_peak_ewma_pick_and_record(benchmark):
    ewma = balancer.PeakEwma(TARGETS, seed=1)

    def request():
        index = ewma.pick()
        ewma.record(index, 12.5)
        return index

    assert 0 <= benchmark(request) < len(TARGETS)


def test_hash_ring_build_10k_slots(benchmark):
    ring = benchmark(balancer.HashRing, TARGETS, 10000)
    assert ring.slots == 10000
