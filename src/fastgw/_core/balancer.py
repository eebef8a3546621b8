"""Load balancers over an upstream's targets (Kong's four algorithms), and
priority groups for ai-proxy-advanced.

One pure-Python source, compiled by Cython with the types in ``balancer.pxd``
(aiohttp's pattern); it also runs uncompiled. Every balancer takes a list of
``Target`` and answers ``pick()`` with the chosen target's index, or -1 when no
healthy target with a positive weight is left.

Each picked index must be handed back exactly once: ``record(index, latency_ms)``
when a response finished, or ``release(index)`` when the attempt ended without a
latency (connect error, cancellation). Balancers that do not track requests
ignore both.
"""

import math
import random
from array import array
from time import monotonic

from xxhash import xxh3_64_intdigest

try:
    import cython

    _COMPILED = cython.compiled
except ImportError:  # Cython is a build dependency only
    _COMPILED = False

# Kong's bounds for a target's weight and its default weight and port.
MAX_WEIGHT = 65535
DEFAULT_WEIGHT = 100
DEFAULT_PORT = 8000

# Kong's bounds for an upstream's `slots`, and its default.
MIN_SLOTS = 10
MAX_SLOTS = 65536
DEFAULT_SLOTS = 10000

# Kong's latency balancer (and Finagle's PeakEwma) forget old samples with
# this time constant, in seconds.
DEFAULT_DECAY_S = 10.0

# splitmix64's constants (Steele, Lea, Flood 2014). They are module globals
# typed u64 in the .pxd: as literals Cython would do the arithmetic on Python ints.
_MASK64 = 0xFFFFFFFFFFFFFFFF
_GOLDEN64 = 0x9E3779B97F4A7C15
_MIX64_A = 0xBF58476D1CE4E5B9
_MIX64_B = 0x94D049BB133111EB

# An unmeasured target that already has requests in flight costs this much, so
# it is probed one request at a time until its first latency arrives (Finagle).
_UNMEASURED_BUSY_COST = 1e300


def _mix64(z):
    """splitmix64's finaliser: a u64 to a well-mixed u64 (same result in both builds)."""
    z = ((z ^ (z >> 30)) * _MIX64_A) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX64_B) & _MASK64
    return z ^ (z >> 31)


def _zeros(typecode, count):
    # NOTE: never empty, so every typed memoryview has a first element.
    return array(typecode, [0]) * max(count, 1)


def _exp(x):
    if _COMPILED:
        return c_exp(x)  # noqa: F821 - libm's exp, cimported by balancer.pxd
    return math.exp(x)


def _log(x):
    if _COMPILED:
        return c_log(x)  # noqa: F821 - libm's log, cimported by balancer.pxd
    return math.log(x)


class Target:
    """One upstream target: ``host:port`` with a weight (0 takes no traffic)."""

    def __init__(self, host, port, weight=DEFAULT_WEIGHT):
        if not 0 <= weight <= MAX_WEIGHT:
            raise ValueError(f"weight must be within 0..{MAX_WEIGHT}, got {weight}")
        if not 0 < port <= 65535:
            raise ValueError(f"port must be within 1..65535, got {port}")
        self.host = host
        self.port = port
        self.weight = weight
        # NOTE: an IPv6 literal keeps its brackets so the key stays "host:port".
        shown = f"[{host}]" if ":" in host else host
        self.key = f"{shown}:{port}".encode()

    @staticmethod
    def parse(spec, weight=DEFAULT_WEIGHT):
        """A target from Kong's ``target`` string: ``host``, ``host:port`` or ``[v6]:port``."""
        if spec.startswith("["):
            host, _, rest = spec[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else DEFAULT_PORT
        elif spec.count(":") == 1:
            host, _, port_text = spec.partition(":")
            port = int(port_text)
        else:
            host, port = spec, DEFAULT_PORT
        return Target(host, port, weight)

    def __repr__(self):
        return f"Target({self.key.decode()!r}, weight={self.weight})"


class Balancer:
    """Bookkeeping shared by all algorithms: weights and health, indexed like ``targets``."""

    def __init__(self, targets):
        self.targets = tuple(targets)
        self.count = len(self.targets)
        self._weights = array("q", [t.weight for t in self.targets])
        self._healthy = bytearray(b"\x01") * self.count
        # Indices of the targets that may be picked (healthy, weight > 0), so
        # pick() never scans past the ones that may not.
        self._eligible = _zeros("q", self.count)
        self.eligible_count = 0
        self._collect_eligible()

    def pick(self, hash_key=None):
        raise NotImplementedError

    def set_healthy(self, index, healthy):
        """Mark target ``index`` up or down (health checks, circuit breaking)."""
        self._healthy[index] = 1 if healthy else 0
        self._collect_eligible()

    def is_healthy(self, index):
        return self._healthy[index] != 0

    def release(self, index):
        """The request sent to ``index`` ended without a latency to learn from."""

    def record(self, index, latency_ms):
        """The request sent to ``index`` finished after ``latency_ms``."""
        self.release(index)

    def _collect_eligible(self):
        eligible_count = 0
        for i in range(self.count):
            if self._healthy[i] and self._weights[i] > 0:
                self._eligible[eligible_count] = i
                eligible_count += 1
        self.eligible_count = eligible_count
        self._on_eligible_changed()

    def _on_eligible_changed(self):
        """Hook for algorithms whose state depends on which targets are eligible."""


class RoundRobin(Balancer):
    """nginx's smooth weighted round-robin: weights 5/1/1 give a a b a c a a."""

    def __init__(self, targets):
        self._current = _zeros("q", len(targets))
        Balancer.__init__(self, targets)

    def pick(self, hash_key=None):
        best = -1
        best_current = 0
        total = 0
        # Every eligible target gains its weight; the leader is picked and
        # pays back the total, which spreads picks evenly over time.
        for position in range(self.eligible_count):
            i = self._eligible[position]
            weight = self._weights[i]
            current = self._current[i] + weight
            self._current[i] = current
            total += weight
            if best < 0 or current > best_current:
                best = i
                best_current = current
        if best >= 0:
            self._current[best] = best_current - total
        return best

    def _on_eligible_changed(self):
        # Restart the sequence so a returning target does not burst.
        for i in range(self.count):
            self._current[i] = 0


class Priority(RoundRobin):
    """Weighted round-robin within the best group that has a target to give.

    ``ranks[i]`` is target i's group; the lowest rank is tried first. A group
    gets traffic only when every target of each better group is down (or has
    weight 0), and takes it back as soon as one of them is up again.
    """

    def __init__(self, targets, ranks):
        if len(ranks) != len(targets):
            raise ValueError("one rank per target")
        self._ranks = array("q", list(ranks) or [0])
        RoundRobin.__init__(self, targets)

    def _collect_eligible(self):
        best_rank = 0
        found = False
        for i in range(self.count):
            if self._healthy[i] and self._weights[i] > 0 and \
                    (not found or self._ranks[i] < best_rank):
                best_rank = self._ranks[i]
                found = True
        eligible_count = 0
        for i in range(self.count):
            if found and self._healthy[i] and self._weights[i] > 0 and \
                    self._ranks[i] == best_rank:
                self._eligible[eligible_count] = i
                eligible_count += 1
        self.eligible_count = eligible_count
        self._on_eligible_changed()

    def rank(self, index):
        return self._ranks[index]


class LeastConnections(Balancer):
    """Fewest requests in flight relative to weight, as Kong scores it: (n + 1) / weight.

    The +1 makes an idle balancer send its first request to the heaviest target.
    Ties go to the next target after the previous pick's starting point.
    """

    def __init__(self, targets):
        self._in_flight = _zeros("q", len(targets))
        self._start = 0
        Balancer.__init__(self, targets)

    def pick(self, hash_key=None):
        eligible_count = self.eligible_count
        if eligible_count == 0:
            return -1
        start = self._start
        self._start = start + 1 if start + 1 < eligible_count else 0
        best = -1
        best_load = 0
        best_weight = 1
        for step in range(eligible_count):
            position = start + step
            if position >= eligible_count:
                position -= eligible_count
            i = self._eligible[position]
            load = self._in_flight[i] + 1
            weight = self._weights[i]
            # load / weight < best_load / best_weight, without division.
            if best < 0 or load * best_weight < best_load * weight:
                best = i
                best_load = load
                best_weight = weight
        self._in_flight[best] += 1
        return best

    def release(self, index):
        if self._in_flight[index] > 0:
            self._in_flight[index] -= 1

    def in_flight(self, index):
        return self._in_flight[index]

    def _on_eligible_changed(self):
        if self._start >= self.eligible_count:
            self._start = 0


class HashRing(Balancer):
    """Consistent hashing over Kong's continuum of ``slots`` buckets.

    A key's xxh3-64 hash modulo ``slots`` picks a bucket; each bucket belongs
    to one target. Owners are chosen per bucket by weighted rendezvous hashing
    (the target with the smallest -ln(u) / weight, u a hash of target and
    bucket), so a target owns a weight-proportional share of buckets, and a
    bucket changes owner only if the target added or removed wins it. Adding
    or removing one of N equal targets therefore moves about 1/N of all keys,
    and looking a key up costs one hash and one array read.

    A bucket whose owner is down hands its keys to the next bucket's owner,
    which is random, so the keys of a failed target spread over the others.
    """

    def __init__(self, targets, slots=DEFAULT_SLOTS):
        if not MIN_SLOTS <= slots <= MAX_SLOTS:
            raise ValueError(f"slots must be within {MIN_SLOTS}..{MAX_SLOTS}, got {slots}")
        self.slots = slots
        self._cursor = 0
        self._owners = array("i", [-1]) * slots
        Balancer.__init__(self, targets)
        self._assign_owners()

    def _assign_owners(self):
        seeds = array("Q", [xxh3_64_intdigest(target.key) for target in self.targets])
        for slot in range(self.slots):
            owner = -1
            owner_score = 0.0
            for i in range(self.count):
                weight = self._weights[i]
                if weight <= 0:
                    continue
                # 53 well-mixed bits as a uniform u in (0, 1); -ln(u) / weight
                # is an exponential race won with probability weight / total.
                mixed = _mix64(seeds[i] ^ ((slot + 1) * _GOLDEN64 & _MASK64))
                uniform = ((mixed >> 11) + 0.5) * (1.0 / 9007199254740992.0)
                score = -_log(uniform) / weight
                if owner < 0 or score < owner_score:
                    owner = i
                    owner_score = score
            self._owners[slot] = owner

    def pick(self, hash_key=None):
        if self.eligible_count == 0:
            return -1
        slots = self.slots
        if hash_key is None:
            # NOTE: no key (Kong's hash_on: none) walks the buckets in turn,
            # which is a weighted round-robin over the owners.
            slot = self._cursor
            self._cursor = slot + 1 if slot + 1 < slots else 0
        else:
            digest = xxh3_64_intdigest(hash_key)
            slot = digest % slots
        for _ in range(slots):
            owner = self._owners[slot]
            if owner >= 0 and self._healthy[owner]:
                return owner
            slot += 1
            if slot == slots:
                slot = 0
        return -1

    def owner_of_slot(self, slot):
        """The target index owning bucket ``slot`` regardless of health (-1: none)."""
        return self._owners[slot]


class PeakEwma(Balancer):
    """Kong's ``latency`` algorithm, Finagle's PeakEwma with two random choices.

    Each target keeps an exponentially weighted moving average of its latency
    that jumps straight up to a slower sample (the peak) and decays toward
    faster ones with time constant ``decay_s``. Its cost is that average times
    (requests in flight + 1), divided by its weight; of two random eligible
    targets, the cheaper is picked. Between samples the average also decays
    toward zero, so a target that was slow is retried once it has rested.
    """

    def __init__(self, targets, decay_s=DEFAULT_DECAY_S, clock=None, seed=None):
        if decay_s <= 0:
            raise ValueError(f"decay_s must be positive, got {decay_s}")
        count = len(targets)
        self.decay_s = decay_s
        self._ewma_ms = _zeros("d", count)
        self._touched_at = _zeros("d", count)
        self._in_flight = _zeros("q", count)
        self._clock = monotonic if clock is None else clock
        self._rng_state = (random.getrandbits(64) if seed is None else seed) & _MASK64
        Balancer.__init__(self, targets)

    def pick(self, hash_key=None):
        eligible_count = self.eligible_count
        if eligible_count == 0:
            return -1
        if eligible_count == 1:
            chosen = self._eligible[0]
        else:
            now = self._clock()
            first = self._next_random() % eligible_count
            second = self._next_random() % (eligible_count - 1)
            if second >= first:
                second += 1
            a = self._eligible[first]
            b = self._eligible[second]
            chosen = b if self._cost(b, now) < self._cost(a, now) else a
        self._in_flight[chosen] += 1
        return chosen

    def record(self, index, latency_ms):
        now = self._clock()
        elapsed = now - self._touched_at[index]
        decay = _exp(-elapsed / self.decay_s) if elapsed > 0.0 else 1.0
        ewma = self._ewma_ms[index]
        if latency_ms > ewma:
            ewma = latency_ms
        else:
            ewma = ewma * decay + latency_ms * (1.0 - decay)
        self._ewma_ms[index] = ewma
        self._touched_at[index] = now
        self.release(index)

    def release(self, index):
        if self._in_flight[index] > 0:
            self._in_flight[index] -= 1

    def latency_ms(self, index):
        """The target's current moving average, decayed to now."""
        return self._decayed_ewma(index, self._clock())

    def in_flight(self, index):
        return self._in_flight[index]

    def _decayed_ewma(self, index, now):
        elapsed = now - self._touched_at[index]
        ewma = self._ewma_ms[index]
        if elapsed > 0.0:
            ewma *= _exp(-elapsed / self.decay_s)
        return ewma

    def _cost(self, index, now):
        ewma = self._decayed_ewma(index, now)
        pending = self._in_flight[index]
        if ewma == 0.0 and pending > 0:
            return _UNMEASURED_BUSY_COST
        return ewma * (pending + 1) / self._weights[index]

    def _next_random(self):
        self._rng_state = (self._rng_state + _GOLDEN64) & _MASK64
        return _mix64(self._rng_state)
