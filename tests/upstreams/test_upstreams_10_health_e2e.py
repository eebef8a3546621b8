"""Health end to end: the real gateway's active checks, passive breaker,
DNS failures, the admin endpoint and the metric."""

import time

import orjson
from upstreams_testkit import (
    Client,
    backends,
    balanced_doc,
    closed_port,
    fast_active_checks,
    target_health,
    wait_until,
)

NO_PEER = {"message": "failure to get a peer from the ring-balancer"}


def test_a_target_failing_its_probes_leaves_rotation_and_comes_back(start_gateway):
    with backends("a", "b") as (a, b):
        gw = start_gateway(balanced_doc([a, b], healthchecks=fast_active_checks(
            http_failures=1)))
        client = Client(gw.port)
        assert {client.backend() for _ in range(4)} == {"a", "b"}
        b.health_status = 500
        assert wait_until(lambda: target_health(gw)[b.target] == "UNHEALTHY")
        served_by_b = b.proxied()
        assert {client.backend() for _ in range(10)} == {"a"}
        assert b.proxied() == served_by_b
        b.health_status = 200
        assert wait_until(lambda: target_health(gw)[b.target] == "HEALTHY")
        assert {client.backend() for _ in range(4)} == {"a", "b"}


def test_with_every_target_down_the_answer_is_503_in_kong_wording(start_gateway):
    with backends("a") as (a,):
        gw = start_gateway(balanced_doc(
            [a, {"target": f"127.0.0.1:{closed_port()}"}],
            healthchecks=fast_active_checks(http_failures=1, tcp_failures=1)))
        a.health_status = 503
        assert wait_until(lambda: set(target_health(gw).values()) == {"UNHEALTHY"})
        status, body = Client(gw.port).request()
    assert (status, body) == (503, NO_PEER)


def test_passive_checks_trip_and_active_checks_bring_the_target_back(start_gateway):
    checks = fast_active_checks()  # probes count successes only: no active failures
    checks["active"]["unhealthy"]["interval"] = 0.5  # time to see the open breaker
    checks["passive"] = {"unhealthy": {"http_failures": 2}}
    with backends("a", "b") as (a, b):
        b.status = 500
        gw = start_gateway(balanced_doc([a, b], healthchecks=checks))
        client = Client(gw.port)
        statuses = [client.request()[0] for _ in range(8)]
        assert statuses.count(500) == 2  # the breaker opened after two
        assert target_health(gw)[b.target] == "UNHEALTHY"
        # Its probe path answers 200, so the unhealthy timer puts it back.
        assert wait_until(lambda: target_health(gw)[b.target] == "HEALTHY")
        b.status = 200
        assert {client.backend() for _ in range(4)} == {"a", "b"}
        # Both transitions are in the log, once each, at the same level.
        lines = [line for line in gw.logs().splitlines() if f"target {b.target} is now" in line]
        assert len(lines) == 2, lines
        assert "WARNING" in lines[0] and "is now UNHEALTHY (passive: 2 http failures, last status 500)" in lines[0]
        assert "WARNING" in lines[1] and "is now HEALTHY (active probe:" in lines[1]


def test_a_name_that_does_not_resolve_is_dns_error_and_breaks_nothing(start_gateway):
    with backends("a") as (a,):
        doc = balanced_doc([a, {"target": "nonexistent.invalid:80"}])
        doc["_gateway"] = {"dns_refresh_interval": 0.2}
        gw = start_gateway(doc)
        assert wait_until(lambda: target_health(gw)["nonexistent.invalid:80"] == "DNS_ERROR")
        client = Client(gw.port)
        assert [client.backend() for _ in range(6)] == ["a"] * 6
        assert target_health(gw)[a.target] == "HEALTHCHECKS_OFF"  # Kong's: none configured
        # Still resolving (and failing) on the timer, still serving.
        assert "does not resolve" in gw.logs()
        assert gw.proc.poll() is None and "Traceback" not in gw.logs()


def test_admin_shows_the_worst_worker_and_each_workers_view(start_gateway):
    checks = {"passive": {"unhealthy": {"http_failures": 1}}}
    with backends("bad", status=500) as (bad,):
        gw = start_gateway(balanced_doc([bad], healthchecks=checks), workers=2)
        # One request lands on one worker, whose breaker opens; the other
        # worker has seen nothing.
        status, _ = Client(gw.port).request()
        assert status == 500
        code, _, body = gw.admin("GET", "/upstreams/pool/health")
    assert code == 200
    (entry,) = orjson.loads(body)["data"]
    assert entry["health"] == "UNHEALTHY"
    assert sorted(w["health"] for w in entry["workers"]) == ["HEALTHY", "UNHEALTHY"]
    assert len({w["pid"] for w in entry["workers"]}) == 2
    assert entry["addresses"] == ["127.0.0.1"] and entry["weight"] == 100


def test_admin_health_errors(start_gateway):
    with backends("a") as (a,):
        gw = start_gateway(balanced_doc([a]))
        assert gw.admin("GET", "/upstreams/nope/health")[0] == 404
        assert gw.admin("POST", "/upstreams/pool/health", body=b"{}")[0] == 405


def health_metric_lines(gw) -> list[str]:
    _, _, body = gw.admin("GET", "/metrics")
    return sorted(line for line in body.decode().splitlines()
                  if line.startswith("fastgw_upstream_target_health{"))


def test_health_metric_follows_the_prometheus_flag(start_gateway):
    with backends("a") as (a,):
        dead = f"127.0.0.1:{closed_port()}"
        doc = balanced_doc([a, {"target": dead}],
                           healthchecks=fast_active_checks(tcp_failures=1))
        doc["plugins"] = [{"name": "prometheus", "config": {"upstream_health_metrics": True}}]
        gw = start_gateway(doc)
        assert wait_until(lambda: target_health(gw)[dead] == "UNHEALTHY")
        lines = health_metric_lines(gw)
        assert f'fastgw_upstream_target_health{{state="unhealthy",target="{dead}",' \
               f'upstream="pool"}} 1.0' in lines
        assert f'fastgw_upstream_target_health{{state="healthy",target="{a.target}",' \
               f'upstream="pool"}} 1.0' in lines
        assert len(lines) == 8  # two targets, four states each
        assert sum(line.endswith(" 1.0") for line in lines) == 2
        # The same config without the flag: no health family.
        doc["plugins"] = [{"name": "prometheus"}]
        assert gw.admin("POST", "/config", body=orjson.dumps(doc))[0] == 201
        assert health_metric_lines(gw) == []


def test_checks_of_an_unchanged_upstream_survive_a_reload(start_gateway):
    with backends("a", "b") as (a, b):
        doc = balanced_doc([a, b], healthchecks=fast_active_checks(http_failures=1))
        gw = start_gateway(doc)
        b.health_status = 500
        assert wait_until(lambda: target_health(gw)[b.target] == "UNHEALTHY")
        # A reload that leaves the upstream alone keeps its state and checks.
        doc["services"][0]["routes"].append({"name": "extra", "paths": ["/extra"]})
        assert gw.admin("POST", "/config", body=orjson.dumps(doc))[0] == 201
        assert target_health(gw)[b.target] == "UNHEALTHY"
        b.health_status = 200
        assert wait_until(lambda: target_health(gw)[b.target] == "HEALTHY")
        # A changed upstream starts fresh, with the new checks: none here.
        doc["upstreams"][0].pop("healthchecks")
        assert gw.admin("POST", "/config", body=orjson.dumps(doc))[0] == 201
        probes = len(b.requests) - b.proxied()
        assert set(target_health(gw).values()) == {"HEALTHCHECKS_OFF"}
        time.sleep(0.4)  # four healthy intervals of the old checks
        assert len(b.requests) - b.proxied() == probes
