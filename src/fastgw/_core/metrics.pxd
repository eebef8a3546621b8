# Per-route request counters and latency histograms, kept in C arrays and
# read only when the admin API is scraped.

cdef enum:
    N_BUCKETS = 21          # len(LATENCY_BUCKETS_MS); one more slot for +Inf
    N_CODES = 600

cdef class MetricsCell:
    cdef readonly str service
    cdef readonly str route
    cdef readonly bint per_consumer
    cdef long long codes[N_CODES]
    cdef dict consumer_codes        # (consumer, code) -> count, when per_consumer
    cdef long long hist_request[N_BUCKETS + 1]
    cdef long long hist_upstream[N_BUCKETS + 1]
    cdef long long hist_gateway[N_BUCKETS + 1]
    cdef double sum_request
    cdef double sum_upstream
    cdef double sum_gateway
    cdef long long n_request
    cdef long long n_upstream
    cdef long long n_gateway
    cdef readonly long long bytes_in
    cdef readonly long long bytes_out

    cdef void record(self, int status, double request_ms, double upstream_ms,
                     double gateway_ms, long long bytes_in, long long bytes_out,
                     object consumer) noexcept
