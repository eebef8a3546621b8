# Types for cachekey.py (compiled in place: aiohttp's .py + augmenting .pxd pattern).
cimport cython

cdef tuple _LENGTH_PREFIXES
cdef bytes _ABSENT

@cython.locals(length=Py_ssize_t)
cdef bytes _length_prefix(bytes field)
cdef int _append_netstring(list parts, bytes field) except -1
cdef bytes _decode(bytes component)
@cython.locals(escaped=bytes)
cdef bytes _escape(bytes decoded, bint is_name)
@cython.locals(components=list, first=Py_ssize_t)
cdef bytes _canonical_query(bytes query, object vary_query_params)
@cython.locals(raw_name=bytes, equals=bytes, raw_value=bytes, canonical=bytes)
cdef bytes _canonical_component(bytes component)
@cython.locals(name=bytes)
cdef bytes _decoded_name(bytes canonical_component)
@cython.locals(parts=list, name=bytes, value=object)
cpdef str cache_key(bytes method, bytes host, bytes path, bytes query, object vary_query_params,
                    tuple vary_headers, dict headers, bytes extra=*)
