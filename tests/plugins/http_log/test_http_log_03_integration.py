"""http-log in the real gateway: entries and batches received by a local log
endpoint; with the endpoint dead or hanging, proxied requests keep their
latency and the dropped entries are counted."""

import re
import statistics
import time

import orjson
import pytest

from fastgw.testing import GatewayProcess, UpstreamServer, free_port, service_doc


async def never_answer(req, writer):
    import asyncio

    await asyncio.sleep(3600)


def logged_doc(upstream_port, http_log_config):
    doc = service_doc(upstream_port, routes=[{"name": "logged", "paths": ["/logged"]},
                                             {"name": "plain", "paths": ["/plain"]}])
    doc["services"][0]["routes"][0]["plugins"] = [
        {"name": "http-log", "config": http_log_config}]
    return doc


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_each_request_is_posted_to_the_endpoint(upstream, collector):
    config = {"http_endpoint": f"http://127.0.0.1:{collector.port}/ingest",
              "headers": {"X-Api-Key": "secret-key"}, "custom_fields": {"cluster": "eu"}}
    with GatewayProcess(logged_doc(upstream.port, config)) as gw:
        for i in range(3):
            assert gw.request("GET", f"/logged/item{i}?page={i}",
                              headers={"X-Client": f"c{i}"})[0] == 200
        assert gw.request("GET", "/plain/x")[0] == 200
        wait_for(lambda: len(collector.requests) >= 3)
        time.sleep(0.1)  # nothing more arrives (the plain route is not logged)
        logs = gw.logs()
    assert len(collector.requests) == 3
    upstream_ids = [r.header("x-request-id") for r in upstream.requests[:3]]
    for i, received in enumerate(collector.requests):
        assert received.method == "POST" and received.target == "/ingest"
        assert received.header("content-type") == "application/json"
        assert received.header("x-api-key") == "secret-key"
        entry = orjson.loads(received.body)  # one object per request (max_batch_size 1)
        assert entry["request"]["uri"] == f"/logged/item{i}?page={i}"
        assert entry["request"]["querystring"] == {"page": str(i)}
        assert entry["request"]["headers"]["x-client"] == f"c{i}"
        assert entry["request"]["id"] == upstream_ids[i]
        assert entry["upstream_uri"] == f"/item{i}?page={i}"
        assert entry["response"]["status"] == 200
        assert entry["route"]["name"] == "logged"
        assert entry["service"]["port"] == upstream.port
        assert entry["cluster"] == "eu"
    assert collector.connections == 1  # one kept-alive connection
    assert "secret-key" not in logs


def test_entries_are_batched_as_json_arrays(upstream, collector):
    config = {"http_endpoint": f"http://127.0.0.1:{collector.port}/batch",
              "queue": {"max_batch_size": 5, "max_coalescing_delay": 0.5}}
    with GatewayProcess(logged_doc(upstream.port, config)) as gw:
        for i in range(12):
            assert gw.request("GET", f"/logged/{i}")[0] == 200
        wait_for(lambda: len(collector.requests) >= 3)
    batches = [orjson.loads(r.body) for r in collector.requests]
    assert [len(batch) for batch in batches] == [5, 5, 2]
    uris = [entry["request"]["uri"] for batch in batches for entry in batch]
    assert uris == [f"/logged/{i}" for i in range(12)]


def timed_request(gw, path):
    started = time.perf_counter()
    status, _, _ = gw.request("GET", path)
    assert status == 200
    return time.perf_counter() - started


@pytest.mark.parametrize("endpoint_kind", ["dead", "hanging"])
def test_a_broken_endpoint_costs_requests_nothing_and_drops_are_counted(upstream,
                                                                         endpoint_kind):
    requests = 60
    with UpstreamServer(never_answer) as hanging:
        port = hanging.port if endpoint_kind == "hanging" else free_port()
        config = {"http_endpoint": f"http://127.0.0.1:{port}/logs", "timeout": 2000,
                  "queue": {"max_entries": 2}}
        # DEBUG makes the queue log its exact drop count at every drop. The
        # entries still queued can never be sent: a short drain, not 30 s of it.
        with GatewayProcess(logged_doc(upstream.port, config),
                            env={"FASTGW_LOG_LEVEL": "DEBUG",
                                 "FASTGW_DRAIN_TIMEOUT": "1"}) as gw:
            logged, plain = [], []
            for _ in range(requests):
                logged.append(timed_request(gw, "/logged/x"))
                plain.append(timed_request(gw, "/plain/x"))
            time.sleep(0.1)
            logs = gw.logs()
        if endpoint_kind == "hanging":
            assert len(hanging.requests) >= 1  # the sender is stuck waiting on it
    # A log phase that waited for the endpoint would take up to the 2 s
    # timeout per request; an enqueue costs microseconds.
    assert max(logged) < 0.5
    assert statistics.median(logged) < statistics.median(plain) * 2 + 0.005
    counts = [int(n) for n in re.findall(r"(\d+) entries dropped so far", logs)]
    # The sender holds the first entry, the queue the last two: the rest
    # were dropped, and the first drop was a warning.
    assert max(counts) == requests - 3
    assert re.search(r"WARNING http-log: queue http://127\.0\.0\.1:\d+/logs is full "
                     r"\(max_entries=2, max_bytes=None\): 1 entries dropped so far", logs)


def test_a_config_swap_that_keeps_the_plugin_keeps_its_queue_and_connection(upstream,
                                                                          collector):
    config = {"http_endpoint": f"http://127.0.0.1:{collector.port}/keep"}
    with GatewayProcess(logged_doc(upstream.port, config)) as gw:
        assert gw.request("GET", "/logged/before")[0] == 200
        wait_for(lambda: len(collector.requests) == 1)
        swapped = logged_doc(upstream.port, config)
        swapped["services"][0]["routes"].append({"name": "extra", "paths": ["/extra"]})
        code, _, body = gw.admin("POST", "/config", body=orjson.dumps(swapped),
                                 headers={"Content-Type": "application/json"})
        assert code == 201, body
        assert gw.request("GET", "/logged/after")[0] == 200
        wait_for(lambda: len(collector.requests) == 2)
    uris = [orjson.loads(r.body)["request"]["uri"] for r in collector.requests]
    assert uris == ["/logged/before", "/logged/after"]
    assert collector.connections == 1  # the new config version reused the queue's connection
