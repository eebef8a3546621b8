# One upstream entity's balancing and passive health (see upstream_runtime.pyx).

from fastgw._core.balancer cimport Balancer


cdef enum HashOn:
    HASH_NONE = 0
    HASH_CONSUMER
    HASH_IP
    HASH_HEADER
    HASH_COOKIE
    HASH_PATH
    HASH_QUERY_ARG


cdef enum Outcome:
    OUTCOME_RESPONSE = 0    # a status line arrived
    OUTCOME_TCP_FAILURE     # refused, reset, or not HTTP
    OUTCOME_TIMEOUT
    OUTCOME_RELEASE         # given up for reasons not the target's


cdef class UpstreamRuntime:
    # One upstream entity (per TLS setting of the services using it): the
    # balancer over its targets, their pools, hashing and passive health.
    cdef readonly str name
    cdef readonly object spec           # model.Upstream
    cdef readonly tuple targets         # model.Target, in balancer order
    cdef readonly list pools            # UpstreamPool per target
    cdef Balancer balancer
    cdef int hash_on
    cdef int hash_fallback
    cdef bytes hash_on_name             # header (lower case), cookie or query arg name
    cdef bytes hash_fallback_name
    cdef list health                    # per target: "HEALTHY", "UNHEALTHY" or "DNS_ERROR"
    cdef readonly bint healthchecks_on
    cdef bint passive_on
    cdef bytes status_kind              # 600 bytes: 1 healthy status, 2 unhealthy status
    cdef int ok_threshold
    cdef int http_fail_threshold
    cdef int tcp_fail_threshold
    cdef int timeout_threshold
    cdef list counters                  # per target: [successes, http, tcp, timeouts]
    cdef readonly object on_change      # callable(name, index, health) or None

    cdef bytes request_key(self, int kind, bytes name, bytes peer_ip, object consumer,
                           bytes host, bytes url, list headers)
    cdef Py_ssize_t pick(self, bytes peer_ip, object consumer, bytes host, bytes url,
                         list headers, int retries_used) except? -2
    cdef void settle(self, Py_ssize_t index, int outcome, int status, double latency_ms)
    cdef void passive(self, Py_ssize_t index, int outcome, int status)
    cdef void mark(self, Py_ssize_t index, str health, str reason)
