"""fastgw._core.balancer, run against the compiled and the pure-Python build."""

from collections import Counter

import pytest

CORE_MODULE = "balancer"
ALGORITHMS = ("RoundRobin", "LeastConnections", "HashRing", "PeakEwma")
PICKS = 10_000


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_targets(mod, *weights):
    return [mod.Target(f"10.0.0.{i + 1}", 8000, weight) for i, weight in enumerate(weights)]


def make_balancer(mod, algorithm, targets, **options):
    if algorithm == "PeakEwma":
        options.setdefault("seed", 7)
        options.setdefault("clock", FakeClock())
    return getattr(mod, algorithm)(targets, **options)


def pick_and_finish(balancer, key=None):
    """One request: pick, then hand the target back as a finished 10 ms response."""
    index = balancer.pick(key)
    if index >= 0:
        balancer.record(index, 10.0)
    return index


def shares(counts: Counter, total: int, count: int) -> list[float]:
    return [counts[i] / total for i in range(count)]


def test_compiled_build_is_extension(load_core):
    assert load_core(CORE_MODULE, "compiled").__file__.endswith(".so")


class TestTarget:
    def test_key_is_host_port_bytes(self, core_module):
        assert core_module.Target("api.local", 8080, 5).key == b"api.local:8080"
        assert core_module.Target("::1", 443).key == b"[::1]:443"

    def test_parse_follows_kong_target_strings(self, core_module):
        parsed = core_module.Target.parse("[::1]:9000", 7)
        assert (parsed.host, parsed.port, parsed.weight) == ("::1", 9000, 7)
        assert core_module.Target.parse("svc:81").port == 81
        assert core_module.Target.parse("svc").port == core_module.DEFAULT_PORT
        assert core_module.Target.parse("svc").weight == core_module.DEFAULT_WEIGHT

    @pytest.mark.parametrize(("port", "weight"), [(80, -1), (80, 65536), (0, 1)])
    def test_rejects_out_of_range(self, core_module, port, weight):
        with pytest.raises(ValueError):
            core_module.Target("h", port, weight)


def test_smooth_round_robin_interleaves_like_nginx(core_module):
    rr = core_module.RoundRobin(make_targets(core_module, 5, 1, 1))
    assert "".join("abc"[rr.pick()] for _ in range(14)) == "aabacaa" * 2


@pytest.mark.parametrize("algorithm", ["RoundRobin", "LeastConnections", "HashRing"])
def test_weights_respected_within_two_percent(core_module, algorithm):
    weights = (50, 30, 15, 5)
    balancer = make_balancer(core_module, algorithm, make_targets(core_module, *weights))
    # Least-connections balances what is in flight, so requests stay open.
    counts = Counter(balancer.pick(b"user-%d" % n) for n in range(PICKS))
    expected = [w / sum(weights) for w in weights]
    for got, want in zip(shares(counts, PICKS, len(weights)), expected, strict=True):
        assert abs(got - want) <= 0.02


@pytest.mark.parametrize("algorithm", ALGORITHMS)
class TestHealthAndWeight:
    def test_unhealthy_target_is_removed_then_restored(self, core_module, algorithm):
        balancer = make_balancer(core_module, algorithm, make_targets(core_module, 1, 1, 1))
        balancer.set_healthy(1, False)
        assert not balancer.is_healthy(1)
        assert balancer.eligible_count == 2
        picked = Counter(pick_and_finish(balancer, b"k%d" % n) for n in range(600))
        assert picked[1] == 0
        assert picked[0] > 0 and picked[2] > 0

        balancer.set_healthy(1, True)
        picked = Counter(pick_and_finish(balancer, b"k%d" % n) for n in range(600))
        assert picked[1] > 100

    def test_zero_weight_target_is_never_picked(self, core_module, algorithm):
        balancer = make_balancer(core_module, algorithm, make_targets(core_module, 0, 3, 0, 1))
        picked = Counter(pick_and_finish(balancer, b"k%d" % n) for n in range(1000))
        assert picked[1] > 0
        assert set(picked) <= {1, 3}

    def test_all_unhealthy_gives_minus_one(self, core_module, algorithm):
        balancer = make_balancer(core_module, algorithm, make_targets(core_module, 2, 1))
        balancer.set_healthy(0, False)
        balancer.set_healthy(1, False)
        assert balancer.pick(b"key") == -1
        assert balancer.pick() == -1

    def test_no_targets_gives_minus_one(self, core_module, algorithm):
        assert make_balancer(core_module, algorithm, []).pick(b"key") == -1

    def test_bad_index_raises(self, core_module, algorithm):
        balancer = make_balancer(core_module, algorithm, make_targets(core_module, 1))
        with pytest.raises(IndexError):
            balancer.set_healthy(5, False)


class TestLeastConnections:
    def test_prefers_target_with_fewest_in_flight(self, core_module):
        lc = core_module.LeastConnections(make_targets(core_module, 1, 1, 1))
        first_three = {lc.pick(), lc.pick(), lc.pick()}
        assert first_three == {0, 1, 2}
        lc.release(1)
        assert lc.in_flight(1) == 0
        assert lc.pick() == 1
        assert [lc.in_flight(i) for i in range(3)] == [1, 1, 1]

    def test_idle_balancer_starts_with_heaviest(self, core_module):
        lc = core_module.LeastConnections(make_targets(core_module, 1, 10, 1))
        assert pick_and_finish(lc) == 1
        assert lc.in_flight(1) == 0

    def test_release_never_goes_negative(self, core_module):
        lc = core_module.LeastConnections(make_targets(core_module, 1))
        lc.release(0)
        lc.record(0, 5.0)
        assert lc.in_flight(0) == 0


class TestHashRing:
    KEYS = [b"client-%d" % n for n in range(PICKS)]

    def owners(self, ring):
        return [ring.targets[ring.pick(key)].key for key in self.KEYS]

    def test_same_key_same_target(self, core_module):
        ring = core_module.HashRing(make_targets(core_module, 1, 1, 1, 1), slots=1000)
        assert [ring.pick(b"alice") for _ in range(10)] == [ring.pick(b"alice")] * 10

    def test_adding_a_target_moves_only_its_share(self, core_module):
        targets = make_targets(core_module, *([100] * 11))
        before = self.owners(core_module.HashRing(targets[:10]))
        after = self.owners(core_module.HashRing(targets))
        moved = [old != new for old, new in zip(before, after, strict=True)]
        assert sum(moved) / len(self.KEYS) <= 1.3 / 11
        # Rendezvous ownership: a key either stays or goes to the new target.
        assert all(
            new == targets[10].key for old, new in zip(before, after, strict=True) if old != new
        )

    def test_removing_a_target_moves_only_its_keys(self, core_module):
        targets = make_targets(core_module, *([100] * 10))
        before = self.owners(core_module.HashRing(targets))
        after = self.owners(core_module.HashRing(targets[:3] + targets[4:]))
        moved = [old for old, new in zip(before, after, strict=True) if old != new]
        assert len(moved) / len(self.KEYS) <= 1.3 / 10
        assert set(moved) == {targets[3].key}

    def test_unhealthy_target_keys_spread_and_come_back(self, core_module):
        ring = core_module.HashRing(make_targets(core_module, *([1] * 5)), slots=5000)
        before = [ring.pick(key) for key in self.KEYS]
        ring.set_healthy(2, False)
        during = [ring.pick(key) for key in self.KEYS]
        assert all(b == d for b, d in zip(before, during, strict=True) if b != 2)
        inherited = Counter(d for b, d in zip(before, during, strict=True) if b == 2)
        assert set(inherited) == {0, 1, 3, 4}
        assert min(inherited.values()) > 0.15 * sum(inherited.values())
        ring.set_healthy(2, True)
        assert [ring.pick(key) for key in self.KEYS] == before

    def test_no_key_walks_buckets_by_weight(self, core_module):
        ring = core_module.HashRing(make_targets(core_module, 3, 1), slots=4000)
        counts = Counter(ring.pick() for _ in range(4000))
        assert abs(counts[0] / 4000 - 0.75) <= 0.02

    @pytest.mark.parametrize("slots", [9, 65537])
    def test_slots_bounds(self, core_module, slots):
        with pytest.raises(ValueError):
            core_module.HashRing(make_targets(core_module, 1), slots=slots)


def test_both_builds_build_the_same_ring(load_core):
    rings = []
    for build in ("compiled", "pure"):
        mod = load_core(CORE_MODULE, build)
        rings.append(mod.HashRing(make_targets(mod, 5, 2, 1), slots=500))
    compiled, pure = rings
    assert [compiled.owner_of_slot(s) for s in range(500)] == [
        pure.owner_of_slot(s) for s in range(500)
    ]
    keys = TestHashRing.KEYS[:500]
    assert [compiled.pick(k) for k in keys] == [pure.pick(k) for k in keys]


class TestPeakEwma:
    def run(self, balancer, clock, latency_of, requests):
        counts = Counter()
        for _ in range(requests):
            index = balancer.pick()
            counts[index] += 1
            clock.now += 0.001
            balancer.record(index, latency_of(index))
        return counts

    def test_traffic_moves_away_from_slowed_target(self, core_module):
        clock = FakeClock()
        ewma = core_module.PeakEwma(make_targets(core_module, 1, 1, 1), clock=clock, seed=3)
        even = self.run(ewma, clock, lambda i: 10.0, 1500)
        assert min(even.values()) > 300

        slowed = self.run(ewma, clock, lambda i: 200.0 if i == 1 else 10.0, 1500)
        assert slowed[1] < 0.03 * 1500
        assert ewma.latency_ms(1) > 100.0

    def test_rested_target_is_tried_again(self, core_module):
        clock = FakeClock()
        ewma = core_module.PeakEwma(make_targets(core_module, 1, 1), clock=clock, seed=3)
        self.run(ewma, clock, lambda i: 500.0 if i == 0 else 10.0, 200)
        clock.now += 120.0  # twelve decay periods without a sample
        recovered = self.run(ewma, clock, lambda i: 10.0, 400)
        assert recovered[0] > 50

    def test_peak_jumps_up_and_decays_down(self, core_module):
        clock = FakeClock()
        ewma = core_module.PeakEwma(make_targets(core_module, 1), clock=clock, decay_s=10.0)
        ewma.record(ewma.pick(), 10.0)
        ewma.record(ewma.pick(), 300.0)
        assert ewma.latency_ms(0) == pytest.approx(300.0)
        clock.now += 10.0
        ewma.record(ewma.pick(), 10.0)
        # One decay period later a fast sample pulls 1 - 1/e of the way down.
        assert ewma.latency_ms(0) == pytest.approx(10.0 + 290.0 / 2.718281828, rel=1e-3)

    def test_unmeasured_busy_target_is_not_picked_twice(self, core_module):
        ewma = core_module.PeakEwma(make_targets(core_module, 1, 1), clock=FakeClock(), seed=11)
        first = ewma.pick()
        assert ewma.pick() == 1 - first
        assert ewma.in_flight(first) == 1

    def test_rejects_non_positive_decay(self, core_module):
        with pytest.raises(ValueError):
            core_module.PeakEwma(make_targets(core_module, 1), decay_s=0.0)
