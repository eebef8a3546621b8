# cython: language_level=3
"""Request metrics aggregated in the core (PRODUCT.md section 7).

One ``MetricsCell`` per (service, route) holds counters by status code, three
latency histograms and byte counts. Recording a request is a few C array
increments, no Python call; the admin API turns ``snapshot()`` of every
worker's cells into Prometheus text on scrape.
"""

from libc.string cimport memset

# Kong's prometheus plugin buckets (ms), trimmed to one decade step pattern.
LATENCY_BUCKETS_MS = (1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 300, 500, 750,
                      1000, 2000, 5000, 10000, 30000, 60000)

cdef double[N_BUCKETS] BUCKETS
for _i, _b in enumerate(LATENCY_BUCKETS_MS):
    BUCKETS[_i] = _b


cdef inline int bucket_of(double ms) noexcept nogil:
    # Linear scan: the first buckets catch almost every request.
    cdef int i
    for i in range(N_BUCKETS):
        if ms <= BUCKETS[i]:
            return i
    return N_BUCKETS


cdef class MetricsCell:
    def __cinit__(self):
        memset(self.codes, 0, sizeof(self.codes))
        memset(self.hist_request, 0, sizeof(self.hist_request))
        memset(self.hist_upstream, 0, sizeof(self.hist_upstream))
        memset(self.hist_gateway, 0, sizeof(self.hist_gateway))

    def __init__(self, str service, str route, bint per_consumer=False):
        self.service = service
        self.route = route
        self.per_consumer = per_consumer
        self.consumer_codes = {}

    def set_per_consumer(self, bint on):
        self.per_consumer = on

    cdef void record(self, int status, double request_ms, double upstream_ms,
                     double gateway_ms, long long bytes_in, long long bytes_out,
                     object consumer) noexcept:
        if 0 <= status < N_CODES:
            self.codes[status] += 1
        if request_ms >= 0:
            self.hist_request[bucket_of(request_ms)] += 1
            self.sum_request += request_ms
            self.n_request += 1
        if upstream_ms >= 0:
            self.hist_upstream[bucket_of(upstream_ms)] += 1
            self.sum_upstream += upstream_ms
            self.n_upstream += 1
        if gateway_ms >= 0:
            self.hist_gateway[bucket_of(gateway_ms)] += 1
            self.sum_gateway += gateway_ms
            self.n_gateway += 1
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out
        if self.per_consumer and consumer is not None:
            key = (consumer, status)
            try:
                self.consumer_codes[key] = self.consumer_codes.get(key, 0) + 1
            except Exception:
                pass

    def add(self, int status, double request_ms=-1, double upstream_ms=-1,
            double gateway_ms=-1, long long bytes_in=0, long long bytes_out=0, consumer=None):
        """Python entry point (tests, and requests counted outside the core)."""
        self.record(status, request_ms, upstream_ms, gateway_ms, bytes_in, bytes_out, consumer)

    def snapshot(self):
        codes = {}
        cdef int i
        for i in range(N_CODES):
            if self.codes[i]:
                codes[str(i)] = self.codes[i]
        return {
            "service": self.service,
            "route": self.route,
            "codes": codes,
            "consumer_codes": [[c, s, n] for (c, s), n in self.consumer_codes.items()],
            "latency": {
                "request": [[self.hist_request[i] for i in range(N_BUCKETS + 1)],
                            self.sum_request, self.n_request],
                "upstream": [[self.hist_upstream[i] for i in range(N_BUCKETS + 1)],
                             self.sum_upstream, self.n_upstream],
                "gateway": [[self.hist_gateway[i] for i in range(N_BUCKETS + 1)],
                            self.sum_gateway, self.n_gateway],
            },
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
        }
