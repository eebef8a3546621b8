"""fastgw._core.ratelimit, run against the compiled and the pure-Python build."""

import calendar
import multiprocessing
import random
from datetime import datetime, timezone
from multiprocessing import shared_memory

import pytest

CORE_MODULE = "ratelimit"
FORK = multiprocessing.get_context("fork")
MINUTE_START = 1_700_000_040.0  # a whole minute, so windows line up with it
ROTATION_HITS = 5000  # per worker and window: enough for the workers to overlap


def utc(year, month, day, hour=0, minute=0, second=0) -> float:
    return float(calendar.timegm((year, month, day, hour, minute, second)))


def make_store(mod, kind):
    return mod.LocalCounters() if kind == "local" else mod.SharedCounterTable(64)


def run_workers(count, target, *args):
    """Fork ``count`` processes running target(*args, worker_number); all must succeed."""
    workers = [FORK.Process(target=target, args=(*args, n)) for n in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0


def test_compiled_build_is_extension(load_core):
    assert load_core(CORE_MODULE, "compiled").__file__.endswith(".so")


class TestWindowArithmetic:
    NOW = utc(2024, 2, 29, 13, 45, 30) + 0.25

    @pytest.mark.parametrize(
        ("period", "start", "end"),
        [
            ("second", utc(2024, 2, 29, 13, 45, 30), utc(2024, 2, 29, 13, 45, 31)),
            ("minute", utc(2024, 2, 29, 13, 45, 0), utc(2024, 2, 29, 13, 46, 0)),
            ("hour", utc(2024, 2, 29, 13, 0, 0), utc(2024, 2, 29, 14, 0, 0)),
            ("day", utc(2024, 2, 29, 0, 0, 0), utc(2024, 3, 1, 0, 0, 0)),
            ("month", utc(2024, 2, 1, 0, 0, 0), utc(2024, 3, 1, 0, 0, 0)),
            ("year", utc(2024, 1, 1, 0, 0, 0), utc(2025, 1, 1, 0, 0, 0)),
        ],
    )
    def test_kong_periods(self, core_module, period, start, end):
        code = core_module.period_code(period)
        assert core_module.period_start(self.NOW, code) == start
        assert core_module.period_end(self.NOW, code) == end

    def test_december_rolls_into_next_year(self, core_module):
        now = utc(2023, 12, 31, 23, 59, 59)
        assert core_module.period_end(now, core_module.MONTH) == utc(2024, 1, 1, 0, 0, 0)

    def test_calendar_agrees_with_datetime(self, core_module):
        rng = random.Random(5)
        for _ in range(2000):
            now = rng.uniform(-5e9, 5e9)
            moment = datetime.fromtimestamp(now, timezone.utc)
            month = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            year = month.replace(month=1)
            assert core_module.period_start(now, core_module.MONTH) == month.timestamp()
            assert core_module.period_start(now, core_module.YEAR) == year.timestamp()

    def test_window_start_is_epoch_aligned(self, core_module):
        assert core_module.window_start(125.5, 10.0) == 120.0
        assert core_module.window_start(-5.0, 10.0) == -10.0

    def test_unknown_period_name(self, core_module):
        with pytest.raises(ValueError, match="fortnight"):
            core_module.period_code("fortnight")


class TestTokenBucket:
    def test_starts_full_then_refuses(self, core_module):
        bucket = core_module.TokenBucket(rate_per_s=10.0, burst=5.0)
        assert [bucket.take(100.0) for _ in range(6)] == [True] * 5 + [False]
        assert bucket.remaining(100.0) == 0.0

    def test_refills_at_rate_up_to_burst(self, core_module):
        bucket = core_module.TokenBucket(10.0, 5.0)
        bucket.take(100.0, 5.0)
        assert bucket.remaining(100.25) == pytest.approx(2.5)
        assert bucket.remaining(1000.0) == 5.0

    def test_retry_after(self, core_module):
        bucket = core_module.TokenBucket(4.0, 2.0)
        assert bucket.retry_after(50.0) == 0.0
        bucket.take(50.0, 2.0)
        assert bucket.retry_after(50.0) == pytest.approx(0.25)
        assert bucket.retry_after(50.0, 2.0) == pytest.approx(0.5)
        assert bucket.retry_after(50.0, 3.0) == float("inf")
        assert bucket.take(50.25)

    def test_failed_take_takes_nothing(self, core_module):
        bucket = core_module.TokenBucket(1.0, 3.0)
        assert not bucket.take(10.0, 4.0)
        assert bucket.remaining(10.0) == 3.0

    def test_zero_rate_never_refills(self, core_module):
        bucket = core_module.TokenBucket(0.0, 1.0)
        assert bucket.take(1.0)
        assert not bucket.take(1e9)
        assert bucket.retry_after(1e9) == float("inf")

    def test_clock_stepping_back_refills_nothing(self, core_module):
        bucket = core_module.TokenBucket(1.0, 2.0)
        bucket.take(100.0, 2.0)
        assert bucket.remaining(50.0) == 0.0
        assert bucket.remaining(101.0) == pytest.approx(1.0)

    @pytest.mark.parametrize(("rate", "burst"), [(-1.0, 1.0), (1.0, 0.0)])
    def test_rejects_bad_settings(self, core_module, rate, burst):
        with pytest.raises(ValueError):
            core_module.TokenBucket(rate, burst)


@pytest.mark.parametrize("kind", ["local", "shared"])
class TestCounterStore:
    def test_counts_within_window(self, core_module, kind):
        store = make_store(core_module, kind)
        counts = [store.incr(b"alice", 60.0, 120.0) for _ in range(3)]
        assert counts == [1, 2, 3]
        assert store.incr(b"alice", 60.0, 120.0, 10) == 13
        assert store.incr(b"bob", 60.0, 120.0) == 1

    def test_next_window_keeps_previous_count(self, core_module, kind):
        store = make_store(core_module, kind)
        store.incr(b"k", 60.0, 120.0, 40)
        assert store.sliding(b"k", 120.0, 180.0, 2, 0.5) == 40 * 0.5 + 2
        # A gap of a whole window forgets the previous count.
        assert store.sliding(b"k", 240.0, 300.0, 1, 1.0) == 1

    def test_late_hit_counts_in_current_window(self, core_module, kind):
        store = make_store(core_module, kind)
        store.incr(b"k", 120.0, 180.0)
        assert store.incr(b"k", 60.0, 120.0) == 2

    def test_zero_amount_reads(self, core_module, kind):
        store = make_store(core_module, kind)
        store.incr(b"k", 0.0, 1.0, 7)
        assert store.incr(b"k", 0.0, 1.0, 0) == 7


class TestLocalCounters:
    def test_sweep_drops_keys_whose_windows_are_over(self, core_module):
        store = core_module.LocalCounters(sweep_interval_s=1e9)
        store.incr(b"old", 0.0, 60.0)
        store.incr(b"live", 60.0, 120.0)
        assert store.sweep(120.0) == 1
        assert len(store) == 1
        assert store.incr(b"live", 60.0, 120.0) == 2

    def test_sweeps_by_itself(self, core_module):
        store = core_module.LocalCounters(sweep_interval_s=30.0)
        store.incr(b"old", 0.0, 1.0)
        store.incr(b"new", 45.0, 46.0)
        assert len(store) == 1


class TestSharedCounterTable:
    def test_many_keys_keep_their_own_counts(self, core_module):
        table = core_module.SharedCounterTable(2048)
        for n in range(1500):
            table.incr(b"user-%d" % n, 0.0, 60.0, n)
        assert all(table.incr(b"user-%d" % n, 0.0, 60.0, 0) == n for n in range(1500))

    def test_full_table_raises_then_reuses_stale_slots(self, core_module):
        table = core_module.SharedCounterTable(8)
        for n in range(8):
            table.incr(b"key-%d" % n, 0.0, 60.0)
        with pytest.raises(OverflowError):
            table.incr(b"one-too-many", 0.0, 60.0)
        # Two windows later every old key is stale and its slot can be reused.
        assert table.incr(b"one-too-many", 120.0, 180.0) == 1
        assert table.incr(b"key-3", 120.0, 180.0, 5) == 5

    def test_capacity_rounds_up_to_power_of_two(self, core_module):
        assert core_module.SharedCounterTable(1000).capacity == 1024

    def test_forked_workers_count_exactly(self, core_module):
        table = core_module.SharedCounterTable(2048)
        minute = (MINUTE_START, MINUTE_START + 60.0)
        next_minute = (MINUTE_START + 60.0, MINUTE_START + 120.0)
        barrier = FORK.Barrier(4)

        def hammer(worker):
            barrier.wait()  # all four at once, so they really contend
            for n in range(250):
                table.incr(b"shared-key", *minute)
                table.incr(b"own-%d" % worker, *minute, 2)
                # A fresh key per hit makes the workers race to claim slots.
                table.incr(b"w%d-n%d" % (worker, n), *minute)
            for window in (minute, next_minute):
                for _ in range(ROTATION_HITS):
                    table.incr(b"rotating", *window)

        run_workers(4, hammer)
        assert table.incr(b"shared-key", *minute, 0) == 1000
        for worker in range(4):
            assert table.incr(b"own-%d" % worker, *minute, 0) == 500
            assert table.incr(b"w%d-n249" % worker, *minute, 0) == 1
        # Workers moved to the next minute at different times; a hit is late
        # or early, but none is lost in the move.
        assert table.sliding(b"rotating", *next_minute, 0, 1.0) == 8 * ROTATION_HITS

    def test_forked_workers_never_reserve_past_the_limit(self, core_module):
        table = core_module.SharedCounterTable(64)
        minute = (MINUTE_START, MINUTE_START + 60.0)
        barrier = FORK.Barrier(4)
        admitted = FORK.Array("q", 4)

        def reserve(worker):
            barrier.wait()
            for _ in range(500):
                ok, _used = table.reserve(b"budget", *minute, 7, 1000.0, 0.0)
                admitted[worker] += ok
                if ok and worker % 2:
                    table.incr(b"budget", *minute, -2)  # settled for less than reserved

        run_workers(4, reserve)
        total = table.incr(b"budget", *minute, 0)
        assert total <= 1000
        # Nothing lost: full but for less than a reservation (and the odd
        # workers' last settlements, made after the others stopped trying).
        assert total > 1000 - 7 - 2 * 2
        assert sum(admitted) * 7 - 2 * sum(admitted[w] for w in (1, 3)) == total

    @pytest.mark.parametrize("kind", ["local", "shared"])
    def test_reserve_counts_the_previous_window_by_its_weight(self, core_module, kind):
        store = make_store(core_module, kind)
        assert store.reserve(b"k", 0.0, 60.0, 6, 10.0, 0.0) == (True, 0.0)
        assert store.reserve(b"k", 0.0, 60.0, 5, 10.0, 0.0) == (False, 6.0)
        # Next window, half of the previous one still inside: 3 used.
        assert store.reserve(b"k", 60.0, 120.0, 7, 10.0, 0.5) == (True, 3.0)
        assert store.reserve(b"k", 60.0, 120.0, 1, 10.0, 0.5) == (False, 10.0)

    def test_shared_memory_buffer_is_initialised_and_checked(self, core_module):
        shm = shared_memory.SharedMemory(
            create=True, size=core_module.SharedCounterTable.nbytes(64)
        )
        try:
            table = core_module.SharedCounterTable(64, shm.buf)
            table.incr(b"k", 0.0, 60.0, 3)
            other_view = core_module.SharedCounterTable(64, shm.buf)
            assert other_view.incr(b"k", 0.0, 60.0) == 4
            bigger = bytearray(core_module.SharedCounterTable.nbytes(128))
            bigger[: shm.size] = shm.buf
            with pytest.raises(ValueError, match="capacity"):
                core_module.SharedCounterTable(128, bigger)
            table.close()
            other_view.close()
            with pytest.raises(ValueError, match="closed"):
                table.incr(b"k", 0.0, 60.0)
        finally:
            shm.close()
            shm.unlink()

    def test_small_buffer_is_rejected(self, core_module):
        with pytest.raises(ValueError, match="at least"):
            core_module.SharedCounterTable(64, bytearray(100))


def attach_and_count(mod, name, barrier, worker):
    shm = shared_memory.SharedMemory(name=name)
    table = mod.SharedCounterTable(256, shm.buf)
    barrier.wait()
    for _ in range(ROTATION_HITS):
        table.incr(b"by-name", MINUTE_START, MINUTE_START + 60.0)
    table.close()
    shm.close()


def test_compiled_tables_attached_by_name_count_exactly(load_core):
    # Each worker maps the segment itself: only C atomics can keep this exact.
    mod = load_core(CORE_MODULE, "compiled")
    shm = shared_memory.SharedMemory(create=True, size=mod.SharedCounterTable.nbytes(256))
    try:
        run_workers(4, attach_and_count, mod, shm.name, FORK.Barrier(4))
        table = mod.SharedCounterTable(256, shm.buf)
        assert table.incr(b"by-name", MINUTE_START, MINUTE_START + 60.0, 0) == 4 * ROTATION_HITS
        table.close()
    finally:
        shm.close()
        shm.unlink()


def test_compiled_lock_held_by_dead_worker_is_taken_over(load_core):
    mod = load_core(CORE_MODULE, "compiled")
    buffer = bytearray(mod.SharedCounterTable.nbytes(8))
    table = mod.SharedCounterTable(8, buffer)
    dead = FORK.Process(target=int)
    dead.start()
    dead.join()
    # Word 2 is the claim lock: pretend the dead worker was killed holding it.
    memoryview(buffer).cast("q")[2] = dead.pid
    assert table.incr(b"new-key", 0.0, 60.0) == 1
    assert memoryview(buffer).cast("q")[2] == 0


class TestWindows:
    def test_fixed_window_counts_per_identifier_and_period(self, core_module):
        store = core_module.LocalCounters()
        per_minute = core_module.FixedWindow(store, "minute")
        per_hour = core_module.FixedWindow(store, "hour")
        now = utc(2024, 5, 1, 10, 30, 15)
        assert [per_minute.hit(b"alice", now) for _ in range(3)] == [1, 2, 3]
        assert per_hour.hit(b"alice", now) == 1
        assert per_minute.hit(b"bob", now) == 1
        assert per_minute.hit(b"alice", now + 45.0) == 1  # 10:31:00 started a new window
        assert per_minute.end(now) == utc(2024, 5, 1, 10, 31, 0)

    def test_fixed_window_calendar_month(self, core_module):
        per_month = core_module.FixedWindow(core_module.LocalCounters(), "month")
        assert per_month.hit(b"a", utc(2024, 1, 31, 23, 59, 59)) == 1
        assert per_month.hit(b"a", utc(2024, 2, 1, 0, 0, 1)) == 1
        assert per_month.start(utc(2024, 2, 14)) == utc(2024, 2, 1)

    def test_fixed_window_in_seconds(self, core_module):
        window = core_module.FixedWindow(core_module.LocalCounters(), 10)
        assert (window.start(125.0), window.end(125.0)) == (120.0, 130.0)
        assert window.hit(b"a", 121.0) == 1
        assert window.hit(b"a", 129.9) == 2
        assert window.hit(b"a", 130.0) == 1
        with pytest.raises(ValueError):
            core_module.FixedWindow(core_module.LocalCounters(), 0)

    @pytest.mark.parametrize("kind", ["local", "shared"])
    def test_sliding_window_weighs_previous_window(self, core_module, kind):
        sliding = core_module.SlidingWindow(make_store(core_module, kind), 60.0)
        for _ in range(100):
            sliding.hit(b"alice", MINUTE_START + 30.0)
        for _ in range(9):
            sliding.hit(b"alice", MINUTE_START + 65.0)
        # 15 s into the next window, 3/4 of the previous one still overlaps.
        assert sliding.hit(b"alice", MINUTE_START + 75.0) == pytest.approx(100 * 0.75 + 10)
        assert sliding.hit(b"alice", MINUTE_START + 119.0, 0) == pytest.approx(100 / 60 + 10)
        assert sliding.hit(b"bob", MINUTE_START + 75.0) == 1.0


class TestWindowSet:
    """Several windows one call counts in together (ai-rate-limiting-advanced)."""

    NOW = MINUTE_START + 15.0  # a quarter into its minute

    @staticmethod
    def windows(mod, minute_limit=100, day_budget=5.0):
        # A minute of tokens, then a calendar day of money (in millionths).
        return mod.WindowSet(
            [b"|minute", b"|day"], [60, 0], [-1, mod.DAY], [minute_limit, day_budget * 1e6],
            [False, True], [b"L-minute", b"100", b"L-day", b"5"], [b"R-minute", b"R-day"])

    @pytest.mark.parametrize("kind", ["local", "shared"])
    def test_a_call_is_reserved_in_every_window_then_settled(self, core_module, kind):
        store = make_store(core_module, kind)
        windows = self.windows(core_module)
        keys, spans, used, refused = windows.reserve(store, b"alice", [40, 1_500_000],
                                                     self.NOW, True)
        assert refused == -1 and used == [0.0, 0.0]
        assert keys == [b"alice|minute", b"alice|day"]
        day_start = core_module.period_start(self.NOW, core_module.DAY)
        assert spans == [(MINUTE_START, MINUTE_START + 60.0), (day_start, day_start + 86400.0)]
        assert windows.answer_headers(used, [40, 1_500_000]) == [
            b"L-minute", b"100", b"R-minute", b"60", b"L-day", b"5", b"R-day", b"3.5"]
        # The call used 25 tokens and 0.25 in money: that replaces its reservation.
        windows.settle(store, keys, spans, [40, 1_500_000], 25, 250_000)
        assert store.incr(b"alice|minute", *spans[0], 0) == 25
        assert store.incr(b"alice|day", *spans[1], 0) == 250_000

    @pytest.mark.parametrize("kind", ["local", "shared"])
    def test_a_window_without_room_refuses_and_what_was_taken_is_given_back(
            self, core_module, kind):
        store = make_store(core_module, kind)
        windows = self.windows(core_module, day_budget=1.0)
        keys, spans, used, refused = windows.reserve(store, b"bob", [40, 1_500_000],
                                                     self.NOW, False)
        assert refused == 1 and used == [0.0, 0.0] and keys == [b"bob|minute"]
        assert store.incr(b"bob|minute", *spans[0], 0) == 0
        # Nothing is left to show: the remaining amount never goes below 0.
        assert windows.answer_headers([100.0], [40]) == [b"L-minute", b"100", b"R-minute", b"0"]

    def test_a_sliding_window_weighs_the_one_before(self, core_module):
        store = make_store(core_module, "local")
        windows = self.windows(core_module)
        earlier = MINUTE_START - 30.0
        windows.reserve(store, b"carol", [80, 0], earlier, True)
        _, _, used, refused = windows.reserve(store, b"carol", [30, 0], self.NOW, True)
        # 80 in the minute before, three quarters of it still inside the window.
        assert used[0] == pytest.approx(60.0) and refused == -1
        assert windows.span(0, self.NOW, True) == (MINUTE_START, MINUTE_START + 60.0, 0.75)
        _, _, used, refused = windows.reserve(store, b"carol", [20, 0], self.NOW, True)
        assert refused == 0 and used[0] == pytest.approx(90.0)

    def test_a_failing_store_gives_back_what_it_took(self, core_module):
        class Full(core_module.LocalCounters):
            calls = 0

            def reserve(self, key, start, end, amount, limit, weight):
                Full.calls += 1
                if Full.calls == 2:
                    raise OverflowError("shared counter table is full")
                return super().reserve(key, start, end, amount, limit, weight)

        store = Full()
        windows = self.windows(core_module)
        with pytest.raises(OverflowError):
            windows.reserve(store, b"dave", [10, 10], self.NOW, False)
        assert store.incr(b"dave|minute", MINUTE_START, MINUTE_START + 60.0, 0) == 0

    def test_amounts_are_shown_in_the_windows_units(self, core_module):
        assert core_module.shown_amount(1234.9, False) == "1234"
        assert core_module.shown_amount(2_500_000, True) == "2.5"
        assert core_module.shown_amount(1, True) == "0.000001"
        assert core_module.shown_amount(3_000_000, True) == "3"
