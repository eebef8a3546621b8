# cython: language_level=3
"""One upstream entity at request time: the balancer over its targets, hashing
a request onto them, and passive health (Kong's circuit breaker)."""

import logging

from fastgw._core.wire cimport find_header, find_param

from fastgw._core import balancer as balancers

cdef object health_log = logging.getLogger("fastgw.upstreams")


cdef dict HASH_KINDS = {"none": HASH_NONE, "consumer": HASH_CONSUMER, "ip": HASH_IP,
                        "header": HASH_HEADER, "cookie": HASH_COOKIE, "path": HASH_PATH,
                        "query_arg": HASH_QUERY_ARG}


cdef class UpstreamRuntime:
    """An upstream entity at request time. Kept across config versions while
    its definition is unchanged, so balancer and health state survive reloads."""

    def __init__(self, spec, list pools, checks, on_change=None):
        # ``checks``: the upstream's health checks as the config layer parsed
        # them (config.model.HealthChecks); the core reads, never parses.
        self.name = spec.name
        self.spec = spec
        self.targets = tuple(spec.targets)
        self.pools = pools
        self.on_change = on_change
        targets = [balancers.Target(t.host, t.port, t.weight) for t in self.targets]
        algorithm = spec.algorithm
        if algorithm == "consistent-hashing":
            self.balancer = balancers.HashRing(targets, spec.slots)
        elif algorithm == "least-connections":
            self.balancer = balancers.LeastConnections(targets)
        elif algorithm == "latency":
            self.balancer = balancers.PeakEwma(targets)
        else:
            self.balancer = balancers.RoundRobin(targets)
        hashing = algorithm == "consistent-hashing"
        self.hash_on = HASH_KINDS.get(spec.hash_on, HASH_NONE) if hashing else HASH_NONE
        self.hash_fallback = HASH_KINDS.get(spec.hash_fallback, HASH_NONE) if hashing else HASH_NONE
        self.hash_on_name = self._key_name(self.hash_on, spec.hash_on_header,
                                           spec.hash_on_cookie, spec.hash_on_query_arg)
        self.hash_fallback_name = self._key_name(self.hash_fallback, spec.hash_fallback_header,
                                                 spec.hash_on_cookie,
                                                 spec.hash_fallback_query_arg)
        self.health = ["HEALTHY"] * len(self.targets)
        self.counters = [[0, 0, 0, 0] for _ in self.targets]
        p_ok = checks.passive_healthy
        p_bad = checks.passive_unhealthy
        self.ok_threshold = p_ok.successes
        self.http_fail_threshold = p_bad.http_failures
        self.tcp_fail_threshold = p_bad.tcp_failures
        self.timeout_threshold = p_bad.timeouts
        self.passive_on = checks.passive_on
        kinds = bytearray(600)
        for code in p_ok.http_statuses:
            if 0 <= code < 600:
                kinds[code] = 1
        for code in p_bad.http_statuses:
            if 0 <= code < 600:
                kinds[code] = 2
        self.status_kind = bytes(kinds)
        self.healthchecks_on = self.passive_on or checks.active_on

    @staticmethod
    def _key_name(int kind, header, cookie, query_arg):
        if kind == HASH_HEADER and header:
            return header.lower().encode("latin-1")
        if kind == HASH_COOKIE and cookie:
            return cookie.encode("latin-1")
        if kind == HASH_QUERY_ARG and query_arg:
            return query_arg.encode("latin-1")
        return b""

    cdef bytes request_key(self, int kind, bytes name, bytes peer_ip, object consumer,
                           bytes host, bytes url, list headers):
        cdef bytes value
        cdef Py_ssize_t q
        if kind == HASH_NONE:
            return None
        if kind == HASH_IP:
            return peer_ip
        if kind == HASH_CONSUMER:
            return str(consumer).encode() if consumer is not None else None
        if kind == HASH_PATH:
            q = url.find(b"?")
            return url if q < 0 else url[:q]
        if kind == HASH_HEADER:
            if name == b"host":
                return host
            return find_header(headers, name)
        if kind == HASH_COOKIE:
            value = find_header(headers, b"cookie")
            return find_param(value, name, b";") if value is not None else None
        if kind == HASH_QUERY_ARG:
            q = url.find(b"?")
            return find_param(url[q + 1:], name, b"&") if q >= 0 else None
        return None

    cdef Py_ssize_t pick(self, bytes peer_ip, object consumer, bytes host, bytes url,
                         list headers, int retries_used) except? -2:
        cdef bytes key = self.request_key(self.hash_on, self.hash_on_name, peer_ip, consumer,
                                          host, url, headers)
        if key is None and self.hash_fallback != HASH_NONE:
            key = self.request_key(self.hash_fallback, self.hash_fallback_name, peer_ip,
                                   consumer, host, url, headers)
        if key is not None and retries_used:
            # A retry of a hashed request walks to another point of the ring.
            key = key + b"#" + str(retries_used).encode()
        return self.balancer.pick(key)

    cdef void settle(self, Py_ssize_t index, int outcome, int status, double latency_ms):
        """End the balancer's view of one attempt: every pick is followed by
        exactly one record (a response) or release (anything else)."""
        if outcome == OUTCOME_RESPONSE:
            self.balancer.record(index, latency_ms if latency_ms > 0 else 0.0)
        else:
            self.balancer.release(index)
        if self.passive_on and outcome != OUTCOME_RELEASE:
            self.passive(index, outcome, status)

    cdef void passive(self, Py_ssize_t index, int outcome, int status):
        # Kong's circuit breaker: consecutive failures of one kind past its
        # threshold take a target out; successes reset the failure counts.
        cdef list c = <list>self.counters[index]
        cdef int kind = 0
        if outcome == OUTCOME_RESPONSE:
            if 0 <= status < 600:
                kind = self.status_kind[status]
            if kind == 1:
                c[0] += 1
                c[1] = c[2] = c[3] = 0
                if self.ok_threshold and c[0] >= self.ok_threshold \
                        and self.health[index] == "UNHEALTHY":
                    self.mark(index, "HEALTHY",
                              f"passive: {c[0]} successes, last status {status}")
                return
            if kind != 2:
                return
            c[1] += 1
            c[0] = 0
            if self.http_fail_threshold and c[1] >= self.http_fail_threshold:
                self.mark(index, "UNHEALTHY",
                          f"passive: {c[1]} http failures, last status {status}")
        elif outcome == OUTCOME_TCP_FAILURE:
            c[2] += 1
            c[0] = 0
            if self.tcp_fail_threshold and c[2] >= self.tcp_fail_threshold:
                self.mark(index, "UNHEALTHY", f"passive: {c[2]} tcp failures")
        elif outcome == OUTCOME_TIMEOUT:
            c[3] += 1
            c[0] = 0
            if self.timeout_threshold and c[3] >= self.timeout_threshold:
                self.mark(index, "UNHEALTHY", f"passive: {c[3]} timeouts")

    cdef void mark(self, Py_ssize_t index, str health, str reason):
        # Every transition, active or passive, either way, passes here and is
        # logged once, at one level, with its cause.
        if self.health[index] == health:
            return
        health_log.warning("upstream %s target %s is now %s (%s)", self.name,
                           self.targets[index].target, health, reason)
        self.health[index] = health
        self.counters[index] = [0, 0, 0, 0]
        self.balancer.set_healthy(index, health == "HEALTHY")
        if self.on_change is not None:
            try:
                self.on_change(self.name, index, health)
            except Exception:
                pass

    def set_target_health(self, Py_ssize_t index, bint healthy, str reason="", bint dns=False):
        """For the active checker and DNS; ``dns`` marks DNS_ERROR. ``reason``
        is logged with the transition."""
        if healthy:
            self.mark(index, "HEALTHY", reason)
        else:
            self.mark(index, "DNS_ERROR" if dns else "UNHEALTHY", reason)

    def target_health(self):
        out = []
        for i, t in enumerate(self.targets):
            state = self.health[i]
            if state == "HEALTHY" and not self.healthchecks_on:
                state = "HEALTHCHECKS_OFF"
            out.append({"target": t.target, "weight": t.weight, "health": state})
        return out

    def set_on_change(self, callback):
        self.on_change = callback

    def pick_for_test(self, bytes key=None):
        """The balancer's choice for a key (tests)."""
        return self.balancer.pick(key)
