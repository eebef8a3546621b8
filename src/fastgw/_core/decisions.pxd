# Types for decisions.py (an "augmenting" .pxd): cythonize compiles it into
# cdef classes; uncompiled, this file is unused.

cimport cython


@cython.final
cdef class FastRequest:
    cdef public bytes method
    cdef public bytes host
    cdef public bytes url
    cdef public list headers
    cdef public bytes peer_ip
    cdef public bytes request_id
    cdef public object consumer
    cdef public object credential
    cdef public object credential_identifier
    cdef public bytes lines
    cdef public frozenset credential_headers


@cython.final
cdef class Handover:
    cdef public Py_ssize_t index
    cdef public FastRequest request


@cython.final
cdef class FastChain:
    cdef readonly tuple steps
    cdef readonly object resume_at
    cdef readonly object drop_response_headers
