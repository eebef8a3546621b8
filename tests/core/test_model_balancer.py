"""fastgw._core.model_balancer (circuit breakers, retries that skip tried
targets) and balancer.Priority, against the compiled and the pure build."""

from collections import Counter

import pytest

from fastgw._core import balancer as balancers

CORE_MODULE = "model_balancer"


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def targets(*weights):
    return [balancers.Target(f"10.0.0.{i + 1}", 8000, w) for i, w in enumerate(weights)]


def picks(balancer, count, **options):
    chosen = Counter()
    for _ in range(count):
        index = balancer.pick(**options)
        chosen[index] += 1
        if index >= 0:
            balancer.success(index, 1.0)
    return chosen


def make(core_module, balancer=None, **options):
    clock = options.pop("clock", FakeClock())
    inner = balancer if balancer is not None else balancers.RoundRobin(targets(1, 1, 1))
    return core_module.ModelBalancer(inner, clock=clock, **options), clock


def test_priority_uses_the_best_group_until_all_of_it_is_down():
    prio = balancers.Priority(targets(3, 1, 1, 1), [1, 1, 2, 3])
    seen = Counter(prio.pick() for _ in range(400))
    assert seen == {0: 300, 1: 100}
    prio.set_healthy(0, False)
    assert {prio.pick() for _ in range(10)} == {1}
    prio.set_healthy(1, False)
    assert {prio.pick() for _ in range(10)} == {2}
    prio.set_healthy(2, False)
    assert {prio.pick() for _ in range(10)} == {3}
    prio.set_healthy(3, False)
    assert prio.pick() == -1
    prio.set_healthy(1, True)  # the better group takes the traffic back at once
    assert {prio.pick() for _ in range(10)} == {1}


def test_priority_needs_one_rank_per_target():
    with pytest.raises(ValueError):
        balancers.Priority(targets(1, 1), [1])


def test_a_retry_never_goes_to_a_target_already_tried(core_module):
    mb, _ = make(core_module)
    for _ in range(50):
        first = mb.pick()
        second = mb.pick(tried=1 << first)
        third = mb.pick(tried=(1 << first) | (1 << second))
        assert len({first, second, third}) == 3
        assert mb.pick(tried=0b111) == -1
        for index in (first, second, third):
            mb.success(index, 1.0)


def test_skipping_tried_targets_works_for_hashing_and_priority(core_module):
    ring, _ = make(core_module, balancers.HashRing(targets(1, 1, 1), 100))
    owner = ring.pick(b"user-1")
    assert ring.pick(b"user-1") == owner  # the same key, the same target
    assert ring.pick(b"user-1", tried=1 << owner) not in (owner, -1)
    prio, _ = make(core_module, balancers.Priority(targets(1, 1, 1), [1, 2, 3]))
    assert prio.pick() == 0
    assert prio.pick(tried=1) == 1
    assert prio.pick(tried=0b11) == 2
    assert prio.pick() == 0  # leaving them out was for that pick only


def test_max_fails_within_fail_timeout_opens_the_circuit(core_module):
    mb, clock = make(core_module, max_fails=3, fail_timeout_ms=10_000)
    assert mb.failure(0) is False
    assert mb.failure(0) is False
    assert mb.failure(0) is True
    assert mb.state(0) == core_module.OPEN
    assert set(picks(mb, 30)) == {1, 2}
    clock.now += 9.9
    assert mb.state(0) == core_module.OPEN
    clock.now += 0.2
    assert mb.state(0) == core_module.HALF_OPEN
    assert 0 in picks(mb, 3)


def test_failures_spread_wider_than_fail_timeout_do_not_open(core_module):
    mb, clock = make(core_module, max_fails=2, fail_timeout_ms=1000)
    mb.failure(0)
    clock.now += 1.5
    assert mb.failure(0) is False  # the first one is out of the window
    assert mb.state(0) == core_module.CLOSED
    assert mb.failure(0) is True


def test_a_success_resets_the_count(core_module):
    mb, _ = make(core_module, max_fails=2)
    mb.failure(1)
    mb.success(1, 5.0)
    assert mb.failure(1) is False
    assert mb.state(1) == core_module.CLOSED


def test_half_open_fails_once_and_opens_again_succeeds_and_closes(core_module):
    mb, clock = make(core_module, max_fails=5, fail_timeout_ms=1000)
    for _ in range(5):
        mb.failure(2)
    clock.now += 1.1
    assert mb.state(2) == core_module.HALF_OPEN
    assert mb.failure(2) is True  # one failure is enough when half open
    assert mb.state(2) == core_module.OPEN
    clock.now += 1.1
    assert mb.state(2) == core_module.HALF_OPEN
    mb.success(2, 1.0)
    assert mb.state(2) == core_module.CLOSED


def test_max_fails_zero_never_opens(core_module):
    mb, _ = make(core_module, max_fails=0)
    for _ in range(100):
        assert mb.failure(0) is False
    assert mb.state(0) == core_module.CLOSED


def test_retry_after_leaves_a_target_out_for_that_long(core_module):
    mb, clock = make(core_module)
    mb.open_for(1, 2500)
    assert mb.state(1) == core_module.OPEN
    assert mb.open_remaining_ms(1) == pytest.approx(2500)
    assert 1 not in picks(mb, 20)
    mb.open_for(1, 100)  # a shorter Retry-After does not cut a longer one
    assert mb.open_remaining_ms(1) == pytest.approx(2500)
    clock.now += 2.6
    assert 1 in picks(mb, 20)


def test_all_open_gives_no_target(core_module):
    mb, clock = make(core_module, max_fails=1, fail_timeout_ms=500)
    for index in range(3):
        mb.failure(index)
    assert mb.pick() == -1
    clock.now += 0.6
    assert mb.pick() >= 0


def test_lowest_usage_prefers_the_target_that_used_least(core_module):
    inner = balancers.PeakEwma(targets(1, 1), clock=FakeClock(), seed=3)
    mb, _ = make(core_module, inner)
    for _ in range(5):
        index = mb.pick()
        mb.success(index, 1000.0 if index == 0 else 10.0)
    assert Counter(mb.pick() for _ in range(1)) == {1: 1}


def test_bad_settings_are_refused(core_module):
    inner = balancers.RoundRobin(targets(1))
    with pytest.raises(ValueError):
        core_module.ModelBalancer(inner, max_fails=-1)
    with pytest.raises(ValueError):
        core_module.ModelBalancer(inner, fail_timeout_ms=0)
