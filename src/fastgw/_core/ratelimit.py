"""Rate-limit primitives: token buckets, Kong's windows, and window counters.

One pure-Python source, compiled by Cython with the types in ``ratelimit.pxd``
(aiohttp's pattern); it also runs uncompiled. Times are seconds since the Unix
epoch (UTC) given by the caller, so tests and the event loop choose the clock.

Counters live in a ``CounterStore``: ``LocalCounters`` (one process, a dict) or
``SharedCounterTable`` (a fixed-size hash table in shared memory that forked
workers update together, exactly). Each counter keeps its current window and
the count of the window before it, which is all a sliding window needs.
"""

import ctypes
import mmap
import multiprocessing

from xxhash import xxh3_64_intdigest

try:
    import cython

    _COMPILED = cython.compiled
except ImportError:  # Cython is a build dependency only
    _COMPILED = False

# ---------------------------------------------------------------------------
# Window arithmetic, as Kong's kong/tools/timestamp.lua computes it (UTC).

SECOND, MINUTE, HOUR, DAY, MONTH, YEAR = range(6)
PERIOD_NAMES = ("second", "minute", "hour", "day", "month", "year")
# Kong's rate-limiting EXPIRATION table: how long a period's counter is kept
# (month and year are nominal: 30 and 365 days).
PERIOD_TTL_S = (1, 60, 3600, 86400, 2592000, 31536000)
_SECONDS_PER_DAY = 86400.0
# Days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar.
_EPOCH_SHIFT_DAYS = 719468


def period_code(name):
    """The index of a Kong period name ("second" ... "year") in ``PERIOD_NAMES``."""
    try:
        return PERIOD_NAMES.index(name)
    except ValueError:
        raise ValueError(f"period must be one of {PERIOD_NAMES}, got {name!r}") from None


def window_start(now, period_s):
    """Start of the epoch-aligned window of ``period_s`` seconds that holds ``now``."""
    return (now // period_s) * period_s


def period_start(now, period):
    """Start of the calendar ``period`` (a code from ``PERIOD_NAMES``) holding ``now``.

    Second to day are fixed lengths; a month starts on its first day and a year
    on January 1st, both at 00:00 UTC, as Kong's counters roll over.
    """
    if period < MONTH:
        return window_start(now, PERIOD_TTL_S[period])
    year, month = _civil_from_days(int(now // _SECONDS_PER_DAY))
    if period == YEAR:
        month = 1
    return _days_from_civil(year, month) * _SECONDS_PER_DAY


def period_end(now, period):
    """Start of the period after the one holding ``now`` (when a counter resets)."""
    if period < MONTH:
        return window_start(now, PERIOD_TTL_S[period]) + PERIOD_TTL_S[period]
    year, month = _civil_from_days(int(now // _SECONDS_PER_DAY))
    if period == YEAR or month == 12:
        year += 1
        month = 1
    else:
        month += 1
    return _days_from_civil(year, month) * _SECONDS_PER_DAY


# Howard Hinnant's days <-> civil date algorithms, integer only, so both builds
# agree; they count from a year that starts in March to put Feb 29 last.
def _days_from_civil(year, month):
    """Days since 1970-01-01 of the first day of ``month`` in ``year``."""
    if month <= 2:
        year -= 1
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - _EPOCH_SHIFT_DAYS


def _civil_from_days(days):
    """(year, month) of the day ``days`` after 1970-01-01."""
    days += _EPOCH_SHIFT_DAYS
    era = days // 146097
    day_of_era = days - era * 146097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    month = shifted_month + 3 if shifted_month < 10 else shifted_month - 9
    year = year_of_era + era * 400 + (1 if month <= 2 else 0)
    return year, month


# ---------------------------------------------------------------------------
# Token bucket.


class TokenBucket:
    """``burst`` tokens, refilled at ``rate_per_s``; a request takes ``n`` of them.

    The bucket starts full. A clock that steps backwards refills nothing.
    """

    def __init__(self, rate_per_s, burst):
        if rate_per_s < 0.0:
            raise ValueError(f"rate_per_s must not be negative, got {rate_per_s}")
        if burst <= 0.0:
            raise ValueError(f"burst must be positive, got {burst}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = burst
        self._updated_at = 0.0

    def take(self, now, n=1.0):
        """Take ``n`` tokens if there are that many; False leaves the bucket as it was."""
        self._refill(now)
        if self._tokens < n:
            return False
        self._tokens -= n
        return True

    def retry_after(self, now, n=1.0):
        """Seconds until ``n`` tokens are there (0: now; inf: never)."""
        self._refill(now)
        missing = n - self._tokens
        if missing <= 0.0:
            return 0.0
        if n > self.burst or self.rate_per_s == 0.0:
            return float("inf")
        return missing / self.rate_per_s

    def remaining(self, now):
        """Tokens in the bucket at ``now``."""
        self._refill(now)
        return self._tokens

    def _refill(self, now):
        elapsed = now - self._updated_at
        if elapsed > 0.0:
            tokens = self._tokens + elapsed * self.rate_per_s
            self._tokens = tokens if tokens < self.burst else self.burst
            self._updated_at = now


# ---------------------------------------------------------------------------
# Counter stores.


class CounterStore:
    """Counters per key and window, each remembering the window before its current one.

    A key names one (identifier, period) pair. Moving a key into a new window
    keeps the old count as "previous" when the windows touch, else zero. A hit
    that arrives late, for a window older than the key's, counts in the key's
    current window.
    """

    def incr(self, key, window_start, window_end, amount=1):
        """Add ``amount`` to ``key``'s count in [window_start, window_end); the new count."""
        raise NotImplementedError

    def sliding(self, key, window_start, window_end, amount, previous_weight):
        """Add ``amount``; then previous count * previous_weight + current count."""
        raise NotImplementedError

    def reserve(self, key, window_start, window_end, amount, limit, previous_weight):
        """Add ``amount`` only if previous count * previous_weight + current
        count + amount stays within ``limit``, as one step no other process
        can come between. ``(admitted, usage before)``."""
        raise NotImplementedError


class _Window:
    """One key's counter in ``LocalCounters``."""

    def __init__(self, start, end):
        self.start = start
        self.end = end
        self.count = 0
        self.previous = 0


class LocalCounters(CounterStore):
    """Counters in this process's memory, swept of stale keys every ``sweep_interval_s``."""

    def __init__(self, sweep_interval_s=60.0):
        self.sweep_interval_s = sweep_interval_s
        self._windows = {}
        self._next_sweep = 0.0

    def incr(self, key, window_start, window_end, amount=1):
        window = self._window(key, window_start, window_end)
        window.count += amount
        return window.count

    def sliding(self, key, window_start, window_end, amount, previous_weight):
        window = self._window(key, window_start, window_end)
        window.count += amount
        return window.previous * previous_weight + window.count

    def reserve(self, key, window_start, window_end, amount, limit, previous_weight):
        window = self._window(key, window_start, window_end)
        used = window.previous * previous_weight + window.count
        if used + amount > limit:
            return False, used
        window.count += amount
        return True, used

    def sweep(self, now):
        """Drop keys whose current and previous windows are both over; how many."""
        stale = []
        for key, window in self._windows.items():
            if 2.0 * window.end - window.start <= now:
                stale.append(key)
        for key in stale:
            del self._windows[key]
        return len(stale)

    def __len__(self):
        return len(self._windows)

    def _window(self, key, window_start, window_end):
        # NOTE: window_start stands in for "now": it only moves forward.
        if window_start >= self._next_sweep:
            self.sweep(window_start)
            self._next_sweep = window_start + self.sweep_interval_s
        window = self._windows.get(key)
        if window is None:
            window = _Window(window_start, window_end)
            self._windows[key] = window
        elif window_start > window.start:
            window.previous = window.count if window_start == window.end else 0
            window.count = 0
            window.start = window_start
            window.end = window_end
        return window


# SharedCounterTable's layout: 64-bit words. A 64-byte header, then slots of
# 64 bytes each (one cache line, so workers updating neighbours do not share one).
_TABLE_MAGIC = 0x66677763_6E747273  # "fgwcntrs"
_HEADER_WORDS = 8
_SLOT_WORDS = 8
_H_MAGIC = 0
_H_CAPACITY = 1
_H_CLAIM_LOCK = 2  # serialises claiming slots for new keys
_S_KEY = 0  # 0: never used; a key hash is never 0
_S_LOCK = 1  # serialises moving the slot to another window or key
_S_START_MS = 2
_S_END_MS = 3
_S_COUNT = 4
_S_PREVIOUS = 5


class SharedCounterTable(CounterStore):
    """Counters in a shared-memory hash table, exact across forked worker processes.

    ``capacity`` slots (rounded up to a power of two), each holding one key's
    (hash, window, count, previous count); linear probing. A key keeps its slot;
    a slot whose windows are both over is given to a new key when the table
    runs out of never-used slots, and ``OverflowError`` means none is free.

    Without ``buffer`` the table lives in an anonymous shared mapping that
    processes forked afterwards share. Pass a writable buffer of at least
    ``nbytes(capacity)`` bytes (e.g. ``multiprocessing.shared_memory``'s
    ``buf``) to share it by name; a zeroed buffer is initialised, a used one
    must have been made with the same capacity.

    Compiled, counts are updated with C atomics (``__atomic_add_fetch``), and a
    slot changes window or key under a per-slot spinlock whose owner is a pid,
    so a worker killed while holding it cannot block the others. Uncompiled,
    each operation holds a ``multiprocessing.Lock`` instead, which only
    processes forked after the table was made share.
    """

    def __init__(self, capacity=65536, buffer=None):
        if capacity < 1:
            raise ValueError(f"capacity must be positive, got {capacity}")
        slots = 8
        while slots < capacity:
            slots *= 2
        nbytes = SharedCounterTable.nbytes(slots)
        if buffer is None:
            buffer = mmap.mmap(-1, nbytes)
        octets = memoryview(buffer).cast("B")
        if len(octets) < nbytes:
            raise ValueError(f"buffer must hold at least {nbytes} bytes")
        self._buffer = buffer
        self._words = octets[:nbytes].cast("q")
        # The ctypes view pins the buffer (it cannot be unmapped under us) and
        # gives the address the compiled build's atomics work on.
        self._pin = (ctypes.c_char * nbytes).from_buffer(buffer)
        self._address = ctypes.addressof(self._pin)
        self.capacity = slots
        self._process_lock = None if _COMPILED else multiprocessing.Lock()
        if self._words[_H_MAGIC] == 0:
            self._words[_H_CAPACITY] = slots
            self._words[_H_MAGIC] = _TABLE_MAGIC
        elif self._words[_H_MAGIC] != _TABLE_MAGIC or self._words[_H_CAPACITY] != slots:
            raise ValueError("buffer holds another table (magic or capacity differ)")

    @staticmethod
    def nbytes(capacity):
        """Bytes a table of ``capacity`` slots (a power of two) needs."""
        return (_HEADER_WORDS + capacity * _SLOT_WORDS) * 8

    def incr(self, key, window_start, window_end, amount=1):
        self._enter()
        try:
            slot = self._slot(key, window_start, window_end)
            return self._add(slot + _S_COUNT, amount)
        finally:
            self._leave()

    def sliding(self, key, window_start, window_end, amount, previous_weight):
        self._enter()
        try:
            slot = self._slot(key, window_start, window_end)
            current = self._add(slot + _S_COUNT, amount)
            return self._load(slot + _S_PREVIOUS) * previous_weight + current
        finally:
            self._leave()

    def reserve(self, key, window_start, window_end, amount, limit, previous_weight):
        self._enter()
        try:
            slot = self._slot(key, window_start, window_end)
            # Under the slot's lock, so two reservations never both take the
            # last of the quota; plain adds (incr) stay lock-free atomics.
            self._lock(slot + _S_LOCK)
            try:
                current = self._load(slot + _S_COUNT)
                used = self._load(slot + _S_PREVIOUS) * previous_weight + current
                if used + amount > limit:
                    return False, used
                self._add(slot + _S_COUNT, amount)
                return True, used
            finally:
                self._unlock(slot + _S_LOCK)
        finally:
            self._leave()

    def close(self):
        """Let go of the buffer (so a SharedMemory can be closed); the table is unusable after."""
        self._enter()
        try:
            self._address = 0
            self._words.release()
            self._pin = None
            self._buffer = None
        finally:
            self._leave()

    def _slot(self, key, window_start, window_end):
        """The first word of ``key``'s slot, moved to the given window."""
        if self._address == 0:
            raise ValueError("the table is closed")
        digest = xxh3_64_intdigest(key)
        key_hash = (digest >> 1) | 1  # 63 bits, never 0 (the never-used mark)
        start_ms = int(window_start * 1000.0)
        end_ms = int(window_end * 1000.0)
        mask = self.capacity - 1
        home = key_hash & mask
        while True:
            for probe in range(self.capacity):
                slot = _HEADER_WORDS + ((home + probe) & mask) * _SLOT_WORDS
                stored = self._load(slot + _S_KEY)
                if stored == key_hash:
                    if self._enter_window(slot, key_hash, start_ms, end_ms):
                        return slot
                    break  # the slot went to another key: look again
                if stored == 0:
                    return self._claim(key_hash, home, start_ms, end_ms)
            else:
                return self._claim(key_hash, home, start_ms, end_ms)

    def _enter_window(self, slot, key_hash, start_ms, end_ms):
        """Move the slot to the window if it is older; False if the slot is no longer the key's.

        A slot changes key only once both its windows are over; the key is read
        after the window so a reader never sees a new owner's window with the
        old owner's key (the owner's key is written first).

        NOTE: a worker paused for a whole window between this check and its
        add can still add to the slot's next owner; it costs one hit's accuracy.
        """
        if self._load(slot + _S_START_MS) >= start_ms:
            return self._load(slot + _S_KEY) == key_hash
        self._lock(slot + _S_LOCK)
        owned = self._load(slot + _S_KEY) == key_hash
        if owned and self._load(slot + _S_START_MS) < start_ms:
            # Count is swapped, not overwritten: a worker adding concurrently
            # lands in one window or the other, never nowhere.
            count = self._swap(slot + _S_COUNT, 0)
            adjacent = self._load(slot + _S_END_MS) == start_ms
            self._store(slot + _S_PREVIOUS, count if adjacent else 0)
            self._store(slot + _S_END_MS, end_ms)
            self._store(slot + _S_START_MS, start_ms)
        self._unlock(slot + _S_LOCK)
        return owned

    def _claim(self, key_hash, home, start_ms, end_ms):
        """Give the key a slot: its own if another worker just claimed it, else a free one."""
        mask = self.capacity - 1
        self._lock(_H_CLAIM_LOCK)
        try:
            while True:
                free = -1
                # The whole chain is searched before a stale slot is reused,
                # or the key could end up in two slots.
                for probe in range(self.capacity):
                    slot = _HEADER_WORDS + ((home + probe) & mask) * _SLOT_WORDS
                    stored = self._load(slot + _S_KEY)
                    if stored == key_hash:
                        self._enter_window(slot, key_hash, start_ms, end_ms)
                        return slot
                    if stored == 0:
                        if free < 0:
                            free = slot
                        break
                    if free < 0 and self._is_stale(slot, start_ms):
                        free = slot
                if free < 0:
                    raise OverflowError(f"shared counter table is full ({self.capacity} slots)")
                if self._take_over(free, key_hash, start_ms, end_ms):
                    return free
        finally:
            self._unlock(_H_CLAIM_LOCK)

    def _take_over(self, slot, key_hash, start_ms, end_ms):
        """Give a never-used or stale slot to the key; False if its old key just came back."""
        self._lock(slot + _S_LOCK)
        free = self._load(slot + _S_KEY) == 0 or self._is_stale(slot, start_ms)
        if free:
            self._store(slot + _S_KEY, key_hash)
            self._store(slot + _S_COUNT, 0)
            self._store(slot + _S_PREVIOUS, 0)
            self._store(slot + _S_END_MS, end_ms)
            self._store(slot + _S_START_MS, start_ms)
        self._unlock(slot + _S_LOCK)
        return free

    def _is_stale(self, slot, now_ms):
        """Both the slot's current and previous windows are over at ``now_ms``."""
        start_ms = self._load(slot + _S_START_MS)
        end_ms = self._load(slot + _S_END_MS)
        return 2 * end_ms - start_ms <= now_ms

    # The word operations below are C atomics when compiled (declared in the
    # .pxd); uncompiled, the process lock taken by _enter() makes them plain.

    def _enter(self):
        if self._process_lock is not None:
            self._process_lock.acquire()

    def _leave(self):
        if self._process_lock is not None:
            self._process_lock.release()

    def _load(self, index):
        if _COMPILED:
            return _atomic_load(self._address, index)  # noqa: F821
        return self._words[index]

    def _store(self, index, value):
        if _COMPILED:
            _atomic_store(self._address, index, value)  # noqa: F821
        else:
            self._words[index] = value

    def _add(self, index, amount):
        if _COMPILED:
            return _atomic_add(self._address, index, amount)  # noqa: F821
        self._words[index] += amount
        return self._words[index]

    def _swap(self, index, value):
        if _COMPILED:
            return _atomic_swap(self._address, index, value)  # noqa: F821
        old = self._words[index]
        self._words[index] = value
        return old

    def _lock(self, index):
        if _COMPILED:
            _spin_lock(self._address, index)  # noqa: F821

    def _unlock(self, index):
        if _COMPILED:
            _spin_unlock(self._address, index)  # noqa: F821


if _COMPILED:
    _track_pid_across_fork()  # noqa: F821


# ---------------------------------------------------------------------------
# Windows over a store.


class FixedWindow:
    """Kong's rate-limiting counters: one per identifier and period, reset at its end.

    ``period`` is a Kong period name ("second" ... "year"; month and year follow
    the calendar) or a length in seconds (epoch-aligned windows).
    """

    def __init__(self, store, period):
        self.store = store
        if isinstance(period, str):
            self.period = period_code(period)
            self.period_s = PERIOD_TTL_S[self.period]
            self._key_suffix = b"|" + period.encode()
        else:
            if period <= 0:
                raise ValueError(f"period must be positive, got {period}")
            self.period = -1
            self.period_s = period
            self._key_suffix = b"|%rs" % float(period)
        # The window of the latest hit: most hits fall in it, and skip the arithmetic.
        self._hit_start = 0.0
        self._hit_end = 0.0

    def start(self, now):
        if self.period >= 0:
            return period_start(now, self.period)
        return window_start(now, self.period_s)

    def end(self, now):
        if self.period >= 0:
            return period_end(now, self.period)
        return window_start(now, self.period_s) + self.period_s

    def hit(self, identifier, now, amount=1):
        """Count ``amount`` for ``identifier``; its count in the current window."""
        if not self._hit_start <= now < self._hit_end:
            self._hit_start = self.start(now)
            self._hit_end = self.end(now)
        return self.store.incr(
            identifier + self._key_suffix, self._hit_start, self._hit_end, amount
        )


class SlidingWindow:
    """The two-window estimate: previous count * its share still inside the window + current.

    The window is ``window_s`` long and slides with ``now``; the estimate assumes
    the previous window's hits were spread evenly over it.
    """

    def __init__(self, store, window_s):
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self.store = store
        self.window_s = window_s
        self._key_suffix = b"|sliding%rs" % float(window_s)

    def hit(self, identifier, now, amount=1):
        """Count ``amount`` for ``identifier``; its estimated hits in the last ``window_s``."""
        start = window_start(now, self.window_s)
        previous_weight = 1.0 - (now - start) / self.window_s
        return self.store.sliding(
            identifier + self._key_suffix, start, start + self.window_s, amount, previous_weight
        )


class WindowSet:
    """Windows that one call counts in together (ai-rate-limiting-advanced:
    a provider's windows, then the calendar budgets), so that a call's
    reservation in all of them, what its answer says of them and its
    settlement are each one step for the caller.

    Window ``i`` is ``sizes[i]`` seconds long, or the calendar period
    ``calendars[i]`` (a code from ``PERIOD_NAMES``; -1: none); its key is the
    caller's base plus ``suffixes[i]``; ``limits[i]`` bounds it; ``money[i]``
    says its amounts are millionths of money (as the answer shows them). The
    answer shows each window as ``header_items[2 * i]`` (its limit's name and
    value) and ``remaining_names[i]``.

    PERF: the per-window work of every limited LLM call, compiled.
    """

    def __init__(self, suffixes, sizes, calendars, limits, money, header_items,
                 remaining_names):
        self.count = len(suffixes)
        self.suffixes = tuple(suffixes)
        self.sizes = tuple(float(size) for size in sizes)
        self.calendars = tuple(calendars)
        self.limits = tuple(float(limit) for limit in limits)
        self.money = tuple(bool(flag) for flag in money)
        self.header_items = tuple(header_items)
        self.remaining_names = tuple(remaining_names)

    def span(self, index, now, sliding):
        """(start, end, previous window's weight) of window ``index`` at ``now``."""
        return window_span(now, self.sizes[index], self.calendars[index], sliding)

    def reserve(self, store, base, amounts, now, sliding):
        """Reserve ``amounts[i]`` in each window, in order, each step atomic.
        ``(keys, spans, used, refused)``: each window's key, (start, end) and
        usage before; ``refused`` is the index of the window without room
        (its usage is the last in ``used``), -1 when every one took its
        amount. What a refused or failed reservation took is given back."""
        keys = []
        spans = []
        used = []
        try:
            for index in range(self.count):
                start, end, weight = self.span(index, now, sliding)
                key = base + self.suffixes[index]
                admitted, before = store.reserve(key, start, end, amounts[index],
                                                 self.limits[index], weight)
                used.append(before)
                spans.append((start, end))
                if not admitted:
                    self.add(store, keys, spans, [-amount for amount in amounts])
                    return keys, spans, used, index
                keys.append(key)
        except BaseException:
            self.add(store, keys, spans, [-amount for amount in amounts])
            raise
        return keys, spans, used, -1

    def add(self, store, keys, spans, deltas):
        """Add ``deltas[i]`` to the counter ``keys[i]`` in its window ``spans[i]``."""
        for index in range(len(keys)):
            delta = deltas[index]
            if delta:
                span = spans[index]
                store.incr(keys[index], span[0], span[1], delta)

    def settle(self, store, keys, spans, amounts, tokens, money):
        """Replace each window's reservation ``amounts[i]`` with what the
        call used: ``money`` in money windows, else ``tokens``."""
        self.add(store, keys, spans,
                 [(money if self.money[index] else tokens) - amounts[index]
                  for index in range(len(keys))])

    def answer_headers(self, used, amounts):
        """The answer's header items, raw [name, value, ...]: each window's
        limit and what is left after this call (never below 0)."""
        items = []
        for index in range(len(used)):
            items.append(self.header_items[2 * index])
            items.append(self.header_items[2 * index + 1])
            items.append(self.remaining_names[index])
            left = self.limits[index] - used[index] - amounts[index]
            items.append(shown_amount(left, self.money[index]).encode() if left > 0 else b"0")
        return items


def window_span(now, size, calendar, sliding):
    """(start, end, previous window's weight) at ``now`` of the window of
    ``size`` seconds, or of the calendar period ``calendar`` (-1: none; a
    calendar window does not slide: its weight is 0)."""
    if calendar >= 0:
        return period_start(now, calendar), period_end(now, calendar), 0.0
    start = window_start(now, size)
    weight = 1.0 - (now - start) / size if sliding else 0.0
    return start, start + size, weight


def shown_amount(value, money):
    """A counter as the answer's headers show it: whole tokens, or money
    (counted in millionths) without trailing zeros."""
    if not money:
        return str(int(value))
    return f"{value / 1000000.0:.6f}".rstrip("0").rstrip(".")
