"""The core's side of load balancing: picks, hashing, retries and the
passive circuit breaker (health checkers and the admin view are tested in
tests/upstreams)."""

import collections

import orjson

from fastgw.testing import UpstreamServer, free_port


def named_upstream(name):
    async def handler(req, writer):
        body = orjson.dumps({"upstream": name, "target": req.target})
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return handler


def balanced_doc(targets, **upstream_fields):
    return {
        "_format_version": "3.0",
        "upstreams": [{"name": "pool", "targets": targets, **upstream_fields}],
        "services": [{"name": "svc", "host": "pool", "protocol": "http", "port": 80,
                      "routes": [{"name": "r", "paths": ["/"]}]}],
    }


def who(gw, path="/", headers=None, method="GET"):
    status, _, body = gw.request(method, path, headers=headers)
    assert status == 200, body
    return orjson.loads(body)["upstream"]


def test_weighted_round_robin_interleaves(gateway_for):
    with UpstreamServer(named_upstream("a")) as a, UpstreamServer(named_upstream("b")) as b:
        gw = gateway_for(balanced_doc([
            {"target": f"127.0.0.1:{a.port}", "weight": 300},
            {"target": f"127.0.0.1:{b.port}", "weight": 100}]))
        seen = collections.Counter(who(gw) for _ in range(40))
    assert seen == {"a": 30, "b": 10}


def test_consistent_hashing_on_a_header_is_sticky(gateway_for):
    servers = [UpstreamServer(named_upstream(n)) for n in "abc"]
    for s in servers:
        s.__enter__()
    try:
        gw = gateway_for(balanced_doc(
            [{"target": f"127.0.0.1:{s.port}"} for s in servers],
            algorithm="consistent-hashing", hash_on="header", hash_on_header="x-user"))
        chosen = {}
        for user in range(12):
            picks = {who(gw, headers={"X-User": f"u{user}"}) for _ in range(4)}
            assert len(picks) == 1
            chosen[user] = picks.pop()
        assert len(set(chosen.values())) >= 2
    finally:
        for s in servers:
            s.__exit__(None, None, None)


def test_a_dead_target_is_skipped_by_retries(gateway_for):
    dead = free_port()
    with UpstreamServer(named_upstream("live")) as live:
        gw = gateway_for(balanced_doc([{"target": f"127.0.0.1:{dead}"},
                                       {"target": f"127.0.0.1:{live.port}"}]))
        # Every request succeeds: a refused connect moves on to the live one,
        # whatever the method (nothing was sent).
        assert {who(gw, method=m) for m in ("GET", "POST") * 5} == {"live"}


def test_passive_checks_take_a_failing_target_out(gateway_for):
    async def failing(req, writer):
        writer.write(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")

    with UpstreamServer(failing) as bad, UpstreamServer(named_upstream("good")) as good:
        gw = gateway_for(balanced_doc(
            [{"target": f"127.0.0.1:{bad.port}"}, {"target": f"127.0.0.1:{good.port}"}],
            healthchecks={"passive": {"unhealthy": {"http_failures": 2}}}))
        statuses = [gw.request("GET", "/")[0] for _ in range(12)]
        # Two 500s take the bad target out; from then on only the good one.
        assert statuses.count(500) == 2
        assert statuses[-6:] == [200] * 6
        assert len(bad.requests) == 2


def test_no_healthy_target_is_503_in_kong_wording(gateway_for):
    async def failing(req, writer):
        writer.write(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")

    with UpstreamServer(failing) as bad:
        gw = gateway_for(balanced_doc(
            [{"target": f"127.0.0.1:{bad.port}"}],
            healthchecks={"passive": {"unhealthy": {"http_failures": 1}}}))
        assert gw.request("GET", "/")[0] == 503
        status, _, body = gw.request("GET", "/")
    assert status == 503
    assert orjson.loads(body) == {"message": "failure to get a peer from the ring-balancer"}


def test_only_idempotent_requests_are_resent_after_a_reset(gateway_for):
    attempts = collections.Counter()

    async def resetting(req, writer):
        attempts[req.method] += 1
        writer.transport.abort()

    with UpstreamServer(resetting) as bad, UpstreamServer(named_upstream("good")) as good:
        gw = gateway_for(balanced_doc([{"target": f"127.0.0.1:{bad.port}"},
                                       {"target": f"127.0.0.1:{good.port}"}]))
        get_statuses = [gw.request("GET", "/")[0] for _ in range(4)]
        post_statuses = [gw.request("POST", "/", body=b"x")[0] for _ in range(4)]
    assert get_statuses == [200] * 4
    # Round-robin sends every other POST to the resetting target: those fail.
    assert post_statuses.count(502) == 2 and post_statuses.count(200) == 2
    assert attempts["POST"] == 2
