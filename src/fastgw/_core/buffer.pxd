# A growable byte buffer filled with memcpy and turned into one bytes object
# per flush, so that a response head, its body and any re-chunking go to the
# kernel in a single write.

cdef class WriteBuffer:
    cdef char* data
    cdef Py_ssize_t length
    cdef Py_ssize_t capacity

    cdef int reserve(self, Py_ssize_t extra) except -1
    cdef int add(self, bytes piece) except -1
    cdef int add_raw(self, const char* piece, Py_ssize_t size) except -1
    cdef int add_header(self, bytes name, bytes value) except -1
    cdef int add_headers(self, list headers) except -1
    cdef int add_int(self, long long value) except -1
    cdef int add_hex(self, unsigned long long value) except -1
    cdef int add_chunk(self, bytes piece) except -1
    cdef bytes take(self)
    cdef void clear(self)
