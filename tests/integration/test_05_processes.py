"""Workers, draining, config swaps and the admin API."""

import asyncio
import signal
import threading
import time

import orjson

from fastgw.testing import http_request, service_doc


def status_of(gw) -> dict:
    code, _, body = gw.admin("GET", "/status")
    assert code == 200
    return orjson.loads(body)


def test_two_workers_share_the_port(upstream, gateway_for):
    gw = gateway_for(service_doc(upstream.port), workers=2)
    st = status_of(gw)
    assert st["workers"] == 2 and len(set(st["worker_pids"])) == 2
    assert st["compiled_core"] is True
    for _ in range(40):
        assert gw.request("GET", "/")[0] == 200
    st = status_of(gw)
    assert st["server"]["total_requests"] >= 40
    # The kernel spread fresh connections over both workers.
    code, _, body = gw.admin("GET", "/metrics")
    assert code == 200
    per_worker = [line for line in body.decode().splitlines()
                  if line.startswith("fastgw_worker_requests_total{")]
    assert len(per_worker) == 2
    assert all(float(line.rsplit(" ", 1)[1]) > 0 for line in per_worker)


def test_sigterm_drains_in_flight_requests(upstream, gateway_for):
    async def handler(req, writer):
        await asyncio.sleep(0.8)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")

    upstream.handler = handler
    gw = gateway_for(service_doc(upstream.port))
    result = {}

    def slow():
        result["r"] = gw.request("GET", "/slow")

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    gw.signal(signal.SIGTERM)
    t.join(10)
    assert result["r"][0] == 200 and result["r"][2] == b"done"
    assert gw.proc.wait(10) == 0


def test_admin_config_swap_and_refusal(upstream, gateway_for):
    gw = gateway_for(service_doc(upstream.port, routes=[{"name": "a", "paths": ["/a"]}]))
    assert gw.request("GET", "/b")[0] == 404
    new = service_doc(upstream.port, routes=[{"name": "b", "paths": ["/b"]}])
    code, _, body = gw.admin("POST", "/config", body=orjson.dumps(new),
                             headers={"Content-Type": "application/json"})
    assert code == 201, body
    assert gw.request("GET", "/b")[0] == 200
    assert gw.request("GET", "/a")[0] == 404
    old_hash = status_of(gw)["config_hash"]
    bad = service_doc(upstream.port, routes=[{"name": "c", "paths": ["/c"], "bogus": 1}])
    bad["services"][0]["retries"] = -4
    code, _, body = gw.admin("POST", "/config", body=orjson.dumps(bad))
    assert code == 400
    errors = orjson.loads(body)["errors"]
    assert len(errors) >= 2
    assert any("bogus" in e for e in errors) and any("retries" in e for e in errors)
    # Nothing changed.
    assert status_of(gw)["config_hash"] == old_hash
    assert gw.request("GET", "/b")[0] == 200


def test_get_config_is_the_running_document(upstream, gateway_for):
    doc = service_doc(upstream.port)
    gw = gateway_for(doc)
    code, _, body = gw.admin("GET", "/config")
    assert code == 200
    running = orjson.loads(body)
    assert running["services"][0]["name"] == "svc"


def test_sighup_reload_under_load_loses_no_request(upstream, gateway_for):
    doc = service_doc(upstream.port, routes=[{"name": "a", "paths": ["/"]}])
    gw = gateway_for(doc, workers=2)
    failures = []
    count = [0]
    stop = threading.Event()

    def load():
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
        while not stop.is_set():
            try:
                conn.request("GET", "/x", headers={"Host": "a"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    failures.append(resp.status)
                count[0] += 1
            except Exception as exc:  # any failure counts
                failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
        conn.close()

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    hashes = set()
    for i in range(5):
        time.sleep(0.2)
        new = service_doc(upstream.port, routes=[{"name": f"r{i}", "paths": ["/"]}])
        gw.write_config(new)
        gw.signal(signal.SIGHUP)
        time.sleep(0.2)
        hashes.add(status_of(gw)["config_hash"])
    # A bad file is refused; the old config keeps serving.
    gw.write_config({"_format_version": "3.0", "services": [{"name": "x", "url": "nope"}]})
    gw.signal(signal.SIGHUP)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(10)
    assert failures == []
    assert count[0] > 100
    assert len(hashes) >= 4
    assert http_request(gw.port, "GET", "/after")[0] == 200
    assert "reload refused" in gw.logs()
