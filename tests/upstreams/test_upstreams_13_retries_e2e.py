"""Retries end to end: one of three targets dies under continuous load, and
only requests that were in flight there with a non-idempotent method fail."""

import collections

from upstreams_testkit import Backend, Load, balanced_doc

POST_THREADS = 2


def test_killing_one_of_three_targets_fails_only_in_flight_posts(start_gateway):
    servers = [Backend(name, delay=0.01).__enter__() for name in ("a", "b", "victim")]
    *survivors, victim = servers
    try:
        gw = start_gateway(balanced_doc(servers))
        methods = ("GET", "GET") + ("POST",) * POST_THREADS
        with Load(gw.port, methods) as load:
            load.wait_for(150)
            served_by_victim = victim.proxied()
            killed_at = len(load.outcomes)
            victim.__exit__(None, None, None)
            load.wait_for(300)
    finally:
        for server in survivors:
            server.__exit__(None, None, None)
    assert served_by_victim > 0  # it took its share before it died
    assert load.errors == []
    failures = [(method, status) for method, status, _ in load.outcomes if status != 200]
    # At most one request per POST thread was in flight on the victim.
    assert len(failures) <= POST_THREADS, failures
    assert all(failure == ("POST", 502) for failure in failures), failures
    after = collections.Counter(backend for _, status, backend in load.outcomes[killed_at + 10:]
                                if status == 200)
    assert set(after) == {"a", "b"}  # retried past the dead target, refused connects included
