# Types for decisions.py (an "augmenting" .pxd): cythonize compiles it into
# cdef classes; uncompiled, this file is unused.

cimport cython

from fastgw._core.ratelimit cimport FixedWindow


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


@cython.final
cdef class WindowQuota:
    cdef readonly FixedWindow window
    cdef readonly double limit
    cdef readonly bytes node_key
    cdef readonly int by
    cdef readonly bytes head
    cdef readonly bytes limit_value
    cdef readonly object reset_after
    cdef readonly object plugin
    cdef readonly object fallback
    cdef long long reset_second
    cdef long long reset


cpdef bytes header_variable(bytes name)


@cython.final
cdef class HeaderKeyDecision:
    cdef readonly bytes header_name
    cdef readonly dict credentials
    cdef readonly frozenset credential_headers
    cdef readonly frozenset identity_names
    cdef readonly frozenset identity_lengths
    cdef readonly object identity_items
    cdef readonly object remove_identity
    cdef readonly dict known
