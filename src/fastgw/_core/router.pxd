# Types for router.py (an "augmenting" .pxd): cythonize compiles router.py
# unchanged into C with these declarations; uncompiled, this file is unused.
# Other _core modules cimport Router and RouteMatch from here.

cimport cython

cdef int _HOST, _HEADER, _URI, _METHOD, _SNI
cdef int _WILDCARD_HOST_PORT, _PLAIN_HOSTS_ONLY, _REGEX_URI
cdef int _PATH_NONE, _PATH_PREFIX, _PATH_REGEX
cdef Py_ssize_t _NO_RANK
cdef unsigned long long _ANY_METHOD, _OTHER_METHOD
cdef int _MAX_METHODS
cdef unsigned char _QUESTION, _PERCENT, _SLASH, _DOT, _COLON, _LEFT_BRACKET
cdef str _POSTFIX_GROUP
cdef object _PCRE_NAMED_GROUP, _LEADING_FLAGS, _PERCENT_TRIPLET, _UNSAFE_PATH_BYTE
cdef object _MALFORMED_PERCENT
cdef bytes _PATH_SAFE
cdef frozenset _RESERVED


@cython.locals(i=Py_ssize_t)
cdef Py_ssize_t _index_of(bytes data, unsigned char byte, Py_ssize_t start, Py_ssize_t end)

@cython.locals(n=Py_ssize_t, i=Py_ssize_t)
cdef bint _has_at(bytes data, Py_ssize_t pos, Py_ssize_t end, bytes label)

@cython.locals(i=Py_ssize_t, c=cython.uchar)
cdef bint _needs_normalizing(bytes path, Py_ssize_t end)

@cython.locals(output=list, i=Py_ssize_t, n=Py_ssize_t, rest=Py_ssize_t, end=Py_ssize_t)
cdef bytes _remove_dot_segments(bytes path)

cdef bytes _normalize_path(bytes path)

@cython.locals(length=Py_ssize_t, second=cython.uchar)
cdef Py_ssize_t _sanitized_offset(bytes path, Py_ssize_t start, Py_ssize_t end)

@cython.locals(lowered=bytes, start=Py_ssize_t, end=Py_ssize_t, at=Py_ssize_t,
               authority=bytes, target=bytes)
cdef tuple _split_absolute_form(bytes url)

@cython.locals(i=Py_ssize_t, n=Py_ssize_t, c=cython.uchar)
cdef bytes _lowercase_host(bytes host)

@cython.locals(i=Py_ssize_t, c=cython.uchar)
cdef bint _all_digits(bytes data, Py_ssize_t start, Py_ssize_t end)

@cython.locals(colon=Py_ssize_t)
cdef bint _has_port(bytes host) except -1

@cython.locals(n=Py_ssize_t, close=Py_ssize_t, colon=Py_ssize_t)
cdef bytes _strip_port(bytes host)


@cython.final
cdef class RouteMatch:  # its freelist is declared on the class in router.py
    cdef readonly object route
    cdef readonly object service
    cdef readonly object payload
    cdef readonly bytes upstream_path
    cdef object _regex_match  # the winning regex's re.Match, for uri_captures


@cython.final
cdef class _HeaderRule:
    cdef readonly bytes name
    cdef readonly frozenset values
    cdef readonly object pattern

    @cython.locals(value=bytes)
    cdef bint accepts(self, dict headers) except -1


@cython.locals(rule=_HeaderRule)
cdef bint _headers_match(tuple rules, dict headers) except -1


@cython.final
cdef class _Entry:
    cdef readonly Py_ssize_t rank
    cdef readonly Py_ssize_t category_rank
    cdef readonly object route
    cdef readonly object service
    cdef readonly object payload
    cdef readonly int path_kind
    cdef readonly bytes prefix
    cdef readonly object regex
    cdef readonly unsigned long long method_mask
    cdef readonly tuple header_rules
    cdef readonly frozenset snis
    cdef readonly bint strip_path
    cdef readonly bint path_v1
    cdef readonly bytes base
    cdef readonly bytes base_trimmed
    cdef readonly bytes base_slash
    cdef readonly bint base_ends_slash

    @cython.locals(sni=bytes)
    cdef bint accepts(self, unsigned long long method_bit, dict headers) except -1

    @cython.locals(req_ends_slash=bint, offset=Py_ssize_t, postfix_empty=bint,
                   postfix_slash=bint, head=bytes, tail=bytes,
                   start=Py_ssize_t)
    cdef bytes upstream_path(self, bytes url, bytes path, Py_ssize_t path_len,
                             Py_ssize_t query_start, bint normalized, Py_ssize_t matched_end)


@cython.final
cdef class _TrieNode:
    cdef readonly bytes label
    cdef readonly bytes child_keys
    cdef readonly list children
    cdef readonly list entries

    @cython.locals(i=Py_ssize_t)
    cdef _TrieNode child(self, cython.uchar byte)


@cython.locals(entry=_Entry)
cdef _Entry _first_accepted(list entries, Py_ssize_t best_rank, unsigned long long method_bit,
                            dict headers, bytes path, Py_ssize_t path_len)


@cython.final
cdef class _PathIndex:
    cdef readonly Py_ssize_t min_rank
    cdef readonly _TrieNode root

    @cython.locals(best_rank=Py_ssize_t, found=_Entry, node=_TrieNode, pos=Py_ssize_t)
    cdef _Entry search(self, bytes path, Py_ssize_t path_len, unsigned long long method_bit,
                       dict headers, _Entry best)


@cython.final
cdef class _WildcardHost:
    cdef readonly _PathIndex index
    cdef readonly bint with_port
    cdef readonly bytes prefix
    cdef readonly bytes suffix
    cdef readonly Py_ssize_t min_length

    @cython.locals(target=bytes)
    cdef bint matches(self, bytes host, bytes host_no_port) except -1


@cython.final
cdef class Router:
    cdef readonly frozenset header_names
    cdef dict _method_bits
    cdef dict _plain_hosts
    cdef list _wildcard_hosts
    cdef bint _has_hosts
    cdef _PathIndex _hostless

    @cython.locals(url_len=Py_ssize_t, absolute=tuple, query_start=Py_ssize_t,
                   normalized=bint, path=bytes, path_len=Py_ssize_t, entry=_Entry)
    cpdef RouteMatch match(self, bytes method, bytes host, bytes url, dict headers)

    @cython.locals(method_bit=cython.ulonglong, best=_Entry, exact=_Entry, host_no_port=bytes,
                   index=_PathIndex, wildcard=_WildcardHost)
    cdef _Entry _find(self, bytes method, bytes host, bytes path, Py_ssize_t path_len,
                      dict headers)

    @cython.locals(matched_end=Py_ssize_t, match=RouteMatch)
    cdef RouteMatch _new_match(self, _Entry entry, bytes url, bytes path, Py_ssize_t path_len,
                               Py_ssize_t query_start, bint normalized)
