"""Balancing over LLM targets with a circuit breaker each (ai-proxy-advanced).

One pure-Python source compiled by Cython with the types in
``model_balancer.pxd``, as ``balancer.py`` is. A ``ModelBalancer`` wraps one of
the balancers of ``balancer.py`` (the algorithm) and adds what failing over
needs:

* ``pick(key, tried)`` leaves out the targets this request has tried already
  (a bit mask), so a retry goes to another target whatever the algorithm;
* a circuit breaker per target, nginx's ``max_fails`` and ``fail_timeout``:
  ``max_fails`` failures within ``fail_timeout`` open the circuit (the target
  takes no traffic) for ``fail_timeout``; then one request is let through
  (half open) and a single failure opens it again, a success closes it;
* ``open_for(index, ms)``: a target that answered 429 with ``Retry-After`` is
  left out for that long, whatever ``max_fails`` says.

Every pick is settled exactly once: ``success(index, value)`` feeds the
algorithm (a latency for lowest-latency, a usage for lowest-usage) and
``failure(index)`` counts towards the breaker; ``release(index)`` ends an
attempt that was nobody's fault (the client went away).
"""

from time import monotonic

from fastgw._core.balancer import _zeros

# The circuit states, as the metrics and the admin API show them.
CLOSED = 0
OPEN = 1
HALF_OPEN = 2
STATE_NAMES = ("closed", "open", "half_open")

_NEVER = float("inf")


class ModelBalancer:
    """An algorithm's balancer plus a circuit breaker per target."""

    def __init__(self, balancer, max_fails=0, fail_timeout_ms=10000.0, clock=None):
        if max_fails < 0:
            raise ValueError(f"max_fails must be 0 or more, got {max_fails}")
        if fail_timeout_ms <= 0:
            raise ValueError(f"fail_timeout_ms must be positive, got {fail_timeout_ms}")
        self.balancer = balancer
        self.count = balancer.count
        self.max_fails = max_fails
        self.fail_timeout_ms = fail_timeout_ms
        self._clock = monotonic if clock is None else clock
        self._fails = _zeros("q", self.count)
        self._window_start = _zeros("d", self.count)  # ms of the first counted failure
        self._open_until = _zeros("d", self.count)  # ms; 0 while the circuit is not open
        self._state = bytearray(self.count)
        self._next_close = _NEVER  # ms of the earliest open circuit's end

    def _now_ms(self):
        return self._clock() * 1000.0

    def pick(self, hash_key=None, tried=0):
        """A target for this attempt, not one in ``tried`` (bit i: target i was
        tried); -1 when every target left is out."""
        now = self._now_ms()
        if now >= self._next_close:
            self._half_open_due(now)
        if not tried:
            return self.balancer.pick(hash_key)
        # Leave the tried targets out for this one pick. PERF: only retries
        # come here, and targets are few.
        left_out = []
        for i in range(self.count):
            if (tried >> i) & 1 and self.balancer.is_healthy(i):
                self.balancer.set_healthy(i, False)
                left_out.append(i)
        index = self.balancer.pick(hash_key)
        for i in left_out:
            self.balancer.set_healthy(i, True)
        return index

    def success(self, index, value):
        """The attempt on ``index`` was answered; ``value`` feeds the algorithm."""
        self.balancer.record(index, value if value > 0.0 else 0.0)
        self._fails[index] = 0
        if self._state[index] == HALF_OPEN:
            self._state[index] = CLOSED

    def failure(self, index):
        """The attempt on ``index`` failed (a failover criterion): one more
        towards its breaker. True when this opened the circuit."""
        self.balancer.release(index)
        if self._state[index] == OPEN:
            return False
        if self._state[index] == HALF_OPEN:
            self._open(index, self.fail_timeout_ms)
            return True
        if self.max_fails <= 0:
            return False
        now = self._now_ms()
        if self._fails[index] == 0 or now - self._window_start[index] > self.fail_timeout_ms:
            self._fails[index] = 0
            self._window_start[index] = now
        self._fails[index] += 1
        if self._fails[index] >= self.max_fails:
            self._open(index, self.fail_timeout_ms)
            return True
        return False

    def release(self, index):
        """The attempt on ``index`` ended through no fault of the target."""
        self.balancer.release(index)

    def open_for(self, index, duration_ms):
        """Leave ``index`` out for ``duration_ms`` (a 429's Retry-After)."""
        if duration_ms <= 0:
            return
        if self._state[index] == OPEN and \
                self._open_until[index] >= self._now_ms() + duration_ms:
            return
        self._open(index, duration_ms)

    def _open(self, index, duration_ms):
        until = self._now_ms() + duration_ms
        self._state[index] = OPEN
        self._open_until[index] = until
        self._fails[index] = 0
        self.balancer.set_healthy(index, False)
        if until < self._next_close:
            self._next_close = until

    def _half_open_due(self, now):
        next_close = _NEVER
        for i in range(self.count):
            if self._state[i] != OPEN:
                continue
            if self._open_until[i] <= now:
                self._state[i] = HALF_OPEN
                self._open_until[i] = 0.0
                self.balancer.set_healthy(i, True)
            elif self._open_until[i] < next_close:
                next_close = self._open_until[i]
        self._next_close = next_close

    def state(self, index):
        """0 closed, 1 open, 2 half open (STATE_NAMES), as of now."""
        now = self._now_ms()
        if now >= self._next_close:
            self._half_open_due(now)
        return self._state[index]

    def open_remaining_ms(self, index):
        """How long the circuit of ``index`` stays open (0: not open)."""
        if self.state(index) != OPEN:
            return 0.0
        return self._open_until[index] - self._now_ms()
