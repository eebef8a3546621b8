# Types for ratelimit.py (compiled in place: aiohttp's .py + augmenting .pxd pattern).
cimport cython

# The shared table's word operations: GCC/Clang atomics on 64-bit words at
# base + 8 * index. A spinlock word holds its owner's pid; a waiter that finds
# the owner dead (killed inside its few-instruction critical section) takes over.
cdef extern from *:
    """
    #include <errno.h>
    #include <pthread.h>
    #include <sched.h>
    #include <signal.h>
    #include <sys/types.h>
    #include <unistd.h>

    static long long fastgw_rl_pid = 0;

    static void fastgw_rl_refresh_pid(void) { fastgw_rl_pid = (long long)getpid(); }

    static void fastgw_rl_track_pid(void) {
        fastgw_rl_refresh_pid();
        pthread_atfork(NULL, NULL, fastgw_rl_refresh_pid);
    }

    static inline long long *fastgw_rl_word(size_t base, Py_ssize_t index) {
        return ((long long *)base) + index;
    }

    static inline long long fastgw_rl_load(size_t base, Py_ssize_t index) {
        return __atomic_load_n(fastgw_rl_word(base, index), __ATOMIC_ACQUIRE);
    }

    static inline void fastgw_rl_store(size_t base, Py_ssize_t index, long long value) {
        __atomic_store_n(fastgw_rl_word(base, index), value, __ATOMIC_RELEASE);
    }

    static inline long long fastgw_rl_add(size_t base, Py_ssize_t index, long long amount) {
        return __atomic_add_fetch(fastgw_rl_word(base, index), amount, __ATOMIC_ACQ_REL);
    }

    static inline long long fastgw_rl_swap(size_t base, Py_ssize_t index, long long value) {
        return __atomic_exchange_n(fastgw_rl_word(base, index), value, __ATOMIC_ACQ_REL);
    }

    static void fastgw_rl_lock(size_t base, Py_ssize_t index) {
        long long *word = fastgw_rl_word(base, index);
        long long self_pid = fastgw_rl_pid;
        unsigned int spins = 0;
        for (;;) {
            long long owner = 0;
            if (__atomic_compare_exchange_n(word, &owner, self_pid, 0,
                                            __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
                return;
            if (++spins < 256)
                continue;
            spins = 0;
            if (owner != self_pid && kill((pid_t)owner, 0) == -1 && errno == ESRCH
                && __atomic_compare_exchange_n(word, &owner, self_pid, 0,
                                               __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
                return;
            sched_yield();
        }
    }

    static inline void fastgw_rl_unlock(size_t base, Py_ssize_t index) {
        __atomic_store_n(fastgw_rl_word(base, index), 0, __ATOMIC_RELEASE);
    }
    """
    void _track_pid_across_fork "fastgw_rl_track_pid"()
    long long _atomic_load "fastgw_rl_load"(size_t base, Py_ssize_t index)
    void _atomic_store "fastgw_rl_store"(size_t base, Py_ssize_t index, long long value)
    long long _atomic_add "fastgw_rl_add"(size_t base, Py_ssize_t index, long long amount)
    long long _atomic_swap "fastgw_rl_swap"(size_t base, Py_ssize_t index, long long value)
    void _spin_lock "fastgw_rl_lock"(size_t base, Py_ssize_t index)
    void _spin_unlock "fastgw_rl_unlock"(size_t base, Py_ssize_t index)

cdef bint _COMPILED
cdef double _SECONDS_PER_DAY
cdef long long _EPOCH_SHIFT_DAYS
cdef long long _TABLE_MAGIC
cdef Py_ssize_t _HEADER_WORDS, _SLOT_WORDS, _H_MAGIC, _H_CAPACITY, _H_CLAIM_LOCK
cdef Py_ssize_t _S_KEY, _S_LOCK, _S_START_MS, _S_END_MS, _S_COUNT, _S_PREVIOUS

cpdef double window_start(double now, double period_s)
@cython.locals(year=cython.longlong, month=int)
cpdef double period_start(double now, int period) except? -1.0
@cython.locals(year=cython.longlong, month=int)
cpdef double period_end(double now, int period) except? -1.0
@cython.locals(era=cython.longlong, year_of_era=cython.longlong, day_of_year=cython.longlong,
               day_of_era=cython.longlong)
cdef long long _days_from_civil(long long year, int month) noexcept
@cython.locals(era=cython.longlong, day_of_era=cython.longlong, year_of_era=cython.longlong,
               day_of_year=cython.longlong, shifted_month=cython.longlong, month=int,
               year=cython.longlong)
cdef (long long, int) _civil_from_days(long long days) noexcept


cdef class TokenBucket:
    cdef readonly double rate_per_s
    cdef readonly double burst
    cdef double _tokens
    cdef double _updated_at

    cpdef bint take(self, double now, double n=*) except? -1
    @cython.locals(missing=double)
    cpdef double retry_after(self, double now, double n=*) except? -1.0
    cpdef double remaining(self, double now) except? -1.0
    @cython.locals(elapsed=double, tokens=double)
    cdef void _refill(self, double now) noexcept


cdef class CounterStore:
    cpdef long long incr(self, bytes key, double window_start, double window_end,
                         long long amount=*) except? -1
    cpdef double sliding(self, bytes key, double window_start, double window_end,
                         long long amount, double previous_weight) except? -1.0
    cpdef tuple reserve(self, bytes key, double window_start, double window_end,
                        long long amount, double limit, double previous_weight)


@cython.final
cdef class _Window:
    cdef double start
    cdef double end
    cdef long long count
    cdef long long previous


cdef class LocalCounters(CounterStore):
    cdef readonly double sweep_interval_s
    cdef dict _windows
    cdef double _next_sweep

    @cython.locals(window=_Window)
    cpdef long long incr(self, bytes key, double window_start, double window_end,
                         long long amount=*) except? -1
    @cython.locals(window=_Window)
    cpdef double sliding(self, bytes key, double window_start, double window_end,
                         long long amount, double previous_weight) except? -1.0
    @cython.locals(window=_Window, used=double)
    cpdef tuple reserve(self, bytes key, double window_start, double window_end,
                        long long amount, double limit, double previous_weight)
    @cython.locals(window=_Window, stale=list)
    cpdef Py_ssize_t sweep(self, double now) except -1
    @cython.locals(window=_Window)
    cdef _Window _window(self, bytes key, double window_start, double window_end)


cdef class SharedCounterTable(CounterStore):
    cdef readonly Py_ssize_t capacity
    cdef object _buffer
    cdef object _words
    cdef object _pin
    cdef size_t _address
    cdef object _process_lock

    @cython.locals(slot=Py_ssize_t)
    cpdef long long incr(self, bytes key, double window_start, double window_end,
                         long long amount=*) except? -1
    @cython.locals(slot=Py_ssize_t, current=cython.longlong)
    cpdef double sliding(self, bytes key, double window_start, double window_end,
                         long long amount, double previous_weight) except? -1.0
    @cython.locals(slot=Py_ssize_t, current=cython.longlong, used=double)
    cpdef tuple reserve(self, bytes key, double window_start, double window_end,
                        long long amount, double limit, double previous_weight)
    @cython.locals(digest=cython.ulonglong, key_hash=cython.longlong, start_ms=cython.longlong,
                   end_ms=cython.longlong, mask=cython.longlong, home=cython.longlong,
                   probe=Py_ssize_t, slot=Py_ssize_t, stored=cython.longlong)
    cdef Py_ssize_t _slot(self, bytes key, double window_start, double window_end) except -1
    @cython.locals(owned=bint, count=cython.longlong, adjacent=bint)
    cdef bint _enter_window(self, Py_ssize_t slot, long long key_hash, long long start_ms,
                            long long end_ms) except -1
    @cython.locals(mask=cython.longlong, free=Py_ssize_t, probe=Py_ssize_t, slot=Py_ssize_t,
                   stored=cython.longlong)
    cdef Py_ssize_t _claim(self, long long key_hash, long long home, long long start_ms,
                           long long end_ms) except -1
    @cython.locals(free=bint)
    cdef bint _take_over(self, Py_ssize_t slot, long long key_hash, long long start_ms,
                         long long end_ms) except -1
    @cython.locals(start_ms=cython.longlong, end_ms=cython.longlong)
    cdef bint _is_stale(self, Py_ssize_t slot, long long now_ms) except -1
    cdef int _enter(self) except -1
    cdef int _leave(self) except -1
    cdef long long _load(self, Py_ssize_t index) except? -1
    cdef int _store(self, Py_ssize_t index, long long value) except -1
    cdef long long _add(self, Py_ssize_t index, long long amount) except? -1
    cdef long long _swap(self, Py_ssize_t index, long long value) except? -1
    cdef int _lock(self, Py_ssize_t index) except -1
    cdef int _unlock(self, Py_ssize_t index) except -1


cdef class FixedWindow:
    cdef readonly CounterStore store
    cdef readonly int period
    cdef readonly double period_s
    cdef bytes _key_suffix
    cdef double _hit_start
    cdef double _hit_end

    cpdef double start(self, double now) except? -1.0
    cpdef double end(self, double now) except? -1.0
    cpdef long long hit(self, bytes identifier, double now, long long amount=*) except? -1


cdef class SlidingWindow:
    cdef readonly CounterStore store
    cdef readonly double window_s
    cdef bytes _key_suffix

    @cython.locals(start=double, previous_weight=double)
    cpdef double hit(self, bytes identifier, double now, long long amount=*) except? -1.0


cdef class WindowSet:
    cdef readonly Py_ssize_t count
    cdef readonly tuple suffixes
    cdef readonly tuple sizes
    cdef readonly tuple calendars
    cdef readonly tuple limits
    cdef readonly tuple money
    cdef readonly tuple header_items
    cdef readonly tuple remaining_names

    cpdef tuple span(self, Py_ssize_t index, double now, bint sliding)
    @cython.locals(index=Py_ssize_t, start=double, end=double, weight=double, key=bytes,
                   keys=list, spans=list, used=list)
    cpdef tuple reserve(self, CounterStore store, bytes base, list amounts, double now,
                        bint sliding)
    @cython.locals(index=Py_ssize_t, delta=object, span=tuple)
    cpdef add(self, CounterStore store, list keys, list spans, list deltas)
    @cython.locals(index=Py_ssize_t)
    cpdef settle(self, CounterStore store, list keys, list spans, list amounts, object tokens,
                 object money)
    @cython.locals(index=Py_ssize_t, items=list, left=double)
    cpdef list answer_headers(self, list used, list amounts)


@cython.locals(start=double, weight=double)
cpdef tuple window_span(double now, double size, int calendar, bint sliding)
cpdef str shown_amount(double value, bint money)
