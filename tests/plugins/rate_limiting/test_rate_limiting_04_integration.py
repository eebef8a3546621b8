"""rate-limiting in real gateways: exact limits across 4 workers of one node
(shared memory) and across 3 gateways sharing one Redis, Redis outages and
the recovery after them."""

import re
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest

from fastgw.testing import GatewayProcess, UpstreamServer, http_request, service_doc

EXCEEDED = {"message": "API rate limit exceeded"}
UNEXPECTED = {"message": "An unexpected error occurred"}


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


def limited_route(name, **config):
    return {"name": name, "paths": [f"/{name}"],
            "plugins": [{"name": "rate-limiting", "config": config}]}


def fire(ports, path, count, threads=16):
    """``count`` requests on fresh connections, spread over ``ports`` from
    ``threads`` clients at once; the statuses, in no particular order."""
    def one(n):
        return http_request(ports[n % len(ports)], "GET", path)[0]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


def served_by_worker(gateway):
    _, _, body = gateway.admin("GET", "/metrics")
    return [float(n) for n in re.findall(
        rb'^fastgw_worker_requests_total\{worker="\d+"\} (\S+)$', body, re.M)]


def test_four_workers_share_one_exact_limit(upstream, window_guard):
    doc = service_doc(upstream.port, routes=[limited_route("shared", minute=100)])
    with GatewayProcess(doc, workers=4) as gateway:
        window_guard(5)
        statuses = fire([gateway.port], "/shared", 160)
        workers = served_by_worker(gateway)
    assert statuses.count(200) == 100
    assert statuses.count(429) == 60
    # The kernel spread the connections: the count really was shared.
    assert sum(1 for served in workers if served > 0) >= 2


def test_headers_keys_and_consumers_end_to_end(upstream, window_guard):
    doc = service_doc(upstream.port, routes=[
        limited_route("tenants", minute=3, hour=50, limit_by="header", header_name="X-Tenant"),
        {"name": "members", "paths": ["/members"], "plugins": [
            {"name": "key-auth"}, {"name": "rate-limiting", "config": {"minute": 1}}]},
        limited_route("quiet", minute=1, hide_client_headers=True),
    ])
    doc["consumers"] = [{"username": "alice", "keyauth_credentials": [{"key": "alice-key"}]},
                        {"username": "bob", "keyauth_credentials": [{"key": "bob-key"}]}]
    with GatewayProcess(doc) as gateway:
        window_guard(5)
        tenant = {"X-Tenant": "acme"}
        answers = [gateway.request("GET", "/tenants", headers=tenant) for _ in range(4)]
        other_tenant = gateway.request("GET", "/tenants", headers={"X-Tenant": "umbrella"})
        members = [gateway.request("GET", "/members", headers={"apikey": key})[0]
                   for key in ("alice-key", "alice-key", "bob-key")]
        quiet = [gateway.request("GET", "/quiet") for _ in range(2)]
    first_status, first, _ = answers[0]
    assert first_status == 200
    assert {name: first[name] for name in first if "ratelimit" in name} == {
        "x-ratelimit-limit-minute": "3", "x-ratelimit-remaining-minute": "2",
        "x-ratelimit-limit-hour": "50", "x-ratelimit-remaining-hour": "49",
        "ratelimit-limit": "3", "ratelimit-remaining": "2",
        "ratelimit-reset": first["ratelimit-reset"],
    }
    assert 1 <= int(first["ratelimit-reset"]) <= 60
    refused_status, refused, body = answers[3]
    assert [status for status, _, _ in answers] == [200, 200, 200, 429]
    assert orjson.loads(body) == EXCEEDED
    assert refused["retry-after"] == refused["ratelimit-reset"]
    assert refused["x-ratelimit-remaining-minute"] == "0"
    assert other_tenant[0] == 200
    assert members == [200, 429, 200]
    assert [status for status, _, _ in quiet] == [200, 429]
    assert not [name for _, headers, _ in quiet for name in headers
                if "ratelimit" in name or name == "retry-after"]


@pytest.fixture
def redis(redis_server):
    """The session's Redis, running and empty."""
    if not redis_server.running:
        redis_server.start()
    redis_server.client().flushall()
    return redis_server


def test_three_gateways_share_one_exact_limit_through_redis(upstream, redis, window_guard):
    doc = service_doc(upstream.port, routes=[
        limited_route("cluster", minute=50, policy="redis",
                      redis={"host": "127.0.0.1", "port": redis.port})])
    gateways = [GatewayProcess(doc) for _ in range(3)]
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(GatewayProcess.start, gateways))
        window_guard(5)
        statuses = fire([gw.port for gw in gateways], "/cluster", 150, threads=24)
    finally:
        for gateway in gateways:
            gateway.stop()
            gateway.dir.cleanup()
    assert statuses.count(200) == 50
    assert statuses.count(429) == 100


def timed_request(gateway, path):
    started = time.monotonic()
    status, headers, body = gateway.request("GET", path)
    return status, body, time.monotonic() - started


def test_a_redis_outage_and_the_recovery(upstream, redis, window_guard):
    doc = service_doc(upstream.port, routes=[
        # Two ways to name the Redis: the gateway's URL and the plugin's own fields.
        limited_route("tolerant", minute=1000, policy="redis", redis={"timeout": 200}),
        limited_route("few", minute=3, policy="redis", redis={"timeout": 200}),
        limited_route("strict", minute=1000, policy="redis", fault_tolerant=False,
                      redis={"host": "127.0.0.1", "port": redis.port, "timeout": 200}),
    ])
    doc["_gateway"] = {"redis": {"url": redis.url}}
    with GatewayProcess(doc) as gateway:
        window_guard(5)
        assert gateway.request("GET", "/tolerant")[0] == 200
        assert gateway.request("GET", "/strict")[0] == 200
        assert len(redis.client().keys("{ratelimit:*")) == 2

        redis.stop()
        tolerant = [timed_request(gateway, "/tolerant") for _ in range(10)]
        few = [timed_request(gateway, "/few")[0] for _ in range(5)]
        strict = [timed_request(gateway, "/strict") for _ in range(5)]
        assert [status for status, _, _ in tolerant] == [200] * 10
        # Counted on the node meanwhile: the small limit still holds.
        assert few == [200, 200, 200, 429, 429]
        assert {(status, orjson.loads(body)["message"]) for status, body, _ in strict} == {
            (500, UNEXPECTED["message"])}
        # Nothing waits longer than the 200 ms Redis timeout (plus the proxying).
        assert max(seconds for _, _, seconds in tolerant + strict) < 0.7
        assert "unavailable" in gateway.logs()

        redis.start()
        deadline = time.monotonic() + 5
        while gateway.request("GET", "/strict")[0] != 200:
            assert time.monotonic() < deadline, "the gateway did not come back to Redis"
            time.sleep(0.1)
        assert gateway.request("GET", "/tolerant")[0] == 200
        # Counting in Redis again (it came back empty).
        assert len(redis.client().keys("{ratelimit:*")) == 2
        time.sleep(0.2)  # let the log line reach the file
        assert "reachable again" in gateway.logs()
