# Types for balancer.py (compiled in place: aiohttp's .py + augmenting .pxd pattern).
cimport cython
from libc.math cimport exp as c_exp, log as c_log

cdef bint _COMPILED
cdef unsigned long long _MASK64, _GOLDEN64, _MIX64_A, _MIX64_B
cdef double _UNMEASURED_BUSY_COST

cdef unsigned long long _mix64(unsigned long long z) noexcept
cdef double _exp(double x) noexcept
cdef double _log(double x) noexcept


cdef class Target:
    cdef readonly bytes key
    cdef readonly str host
    cdef readonly int port
    cdef readonly int weight


cdef class Balancer:
    cdef readonly tuple targets
    cdef readonly Py_ssize_t count
    cdef readonly Py_ssize_t eligible_count
    cdef long long[::1] _weights
    cdef unsigned char[::1] _healthy
    cdef long long[::1] _eligible

    cpdef Py_ssize_t pick(self, bytes hash_key=*) except? -1
    cpdef set_healthy(self, Py_ssize_t index, bint healthy)
    cpdef bint is_healthy(self, Py_ssize_t index) except? -1
    cpdef release(self, Py_ssize_t index)
    cpdef record(self, Py_ssize_t index, double latency_ms)
    @cython.locals(eligible_count=Py_ssize_t, i=Py_ssize_t)
    cdef _collect_eligible(self)
    cdef _on_eligible_changed(self)


cdef class RoundRobin(Balancer):
    cdef long long[::1] _current

    @cython.locals(best=Py_ssize_t, best_current=cython.longlong, total=cython.longlong,
                   position=Py_ssize_t, i=Py_ssize_t, weight=cython.longlong,
                   current=cython.longlong)
    cpdef Py_ssize_t pick(self, bytes hash_key=*) except? -1


cdef class Priority(RoundRobin):
    cdef long long[::1] _ranks

    @cython.locals(best_rank=cython.longlong, found=cython.bint, eligible_count=Py_ssize_t,
                   i=Py_ssize_t)
    cdef _collect_eligible(self)
    cpdef long long rank(self, Py_ssize_t index) except? -1


cdef class LeastConnections(Balancer):
    cdef long long[::1] _in_flight
    cdef Py_ssize_t _start

    @cython.locals(eligible_count=Py_ssize_t, start=Py_ssize_t, best=Py_ssize_t,
                   best_load=cython.longlong, best_weight=cython.longlong, step=Py_ssize_t,
                   position=Py_ssize_t, i=Py_ssize_t, load=cython.longlong,
                   weight=cython.longlong)
    cpdef Py_ssize_t pick(self, bytes hash_key=*) except? -1
    cpdef long long in_flight(self, Py_ssize_t index) except? -1


cdef class HashRing(Balancer):
    cdef readonly Py_ssize_t slots
    cdef Py_ssize_t _cursor
    cdef int[::1] _owners

    @cython.locals(seeds="unsigned long long[::1]", slot=Py_ssize_t, owner=Py_ssize_t,
                   owner_score=double, i=Py_ssize_t, weight=cython.longlong,
                   mixed=cython.ulonglong, uniform=double, score=double)
    cdef _assign_owners(self)
    @cython.locals(slots=Py_ssize_t, slot=Py_ssize_t, digest=cython.ulonglong, owner=Py_ssize_t)
    cpdef Py_ssize_t pick(self, bytes hash_key=*) except? -1
    cpdef Py_ssize_t owner_of_slot(self, Py_ssize_t slot) except? -1


cdef class PeakEwma(Balancer):
    cdef readonly double decay_s
    cdef double[::1] _ewma_ms
    cdef double[::1] _touched_at
    cdef long long[::1] _in_flight
    cdef object _clock
    cdef unsigned long long _rng_state

    @cython.locals(eligible_count=Py_ssize_t, chosen=Py_ssize_t, now=double,
                   first=Py_ssize_t, second=Py_ssize_t, a=Py_ssize_t, b=Py_ssize_t)
    cpdef Py_ssize_t pick(self, bytes hash_key=*) except? -1
    @cython.locals(now=double, elapsed=double, decay=double, ewma=double)
    cpdef record(self, Py_ssize_t index, double latency_ms)
    cpdef double latency_ms(self, Py_ssize_t index) except? -1.0
    cpdef long long in_flight(self, Py_ssize_t index) except? -1
    @cython.locals(elapsed=double, ewma=double)
    cdef double _decayed_ewma(self, Py_ssize_t index, double now) except? -1.0
    @cython.locals(ewma=double, pending=cython.longlong)
    cdef double _cost(self, Py_ssize_t index, double now) except? -1.0
    cdef unsigned long long _next_random(self) noexcept
