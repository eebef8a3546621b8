# Types for model_balancer.py (compiled in place, as balancer.py is).
cimport cython

from fastgw._core.balancer cimport Balancer

cdef double _NEVER


cdef class ModelBalancer:
    cdef readonly Balancer balancer
    cdef readonly Py_ssize_t count
    cdef readonly long long max_fails
    cdef readonly double fail_timeout_ms
    cdef object _clock
    cdef long long[::1] _fails
    cdef double[::1] _window_start
    cdef double[::1] _open_until
    cdef bytearray _state
    cdef double _next_close

    cdef double _now_ms(self) except? -1.0
    @cython.locals(now=double, index=Py_ssize_t, i=Py_ssize_t, left_out=list)
    cpdef Py_ssize_t pick(self, bytes hash_key=*, object tried=*) except? -2
    cpdef success(self, Py_ssize_t index, double value)
    @cython.locals(now=double)
    cpdef bint failure(self, Py_ssize_t index) except? -1
    cpdef release(self, Py_ssize_t index)
    cpdef open_for(self, Py_ssize_t index, double duration_ms)
    @cython.locals(until=double)
    cdef _open(self, Py_ssize_t index, double duration_ms)
    @cython.locals(next_close=double, i=Py_ssize_t)
    cdef _half_open_due(self, double now)
    @cython.locals(now=double)
    cpdef int state(self, Py_ssize_t index) except? -1
    cpdef double open_remaining_ms(self, Py_ssize_t index) except? -1.0
