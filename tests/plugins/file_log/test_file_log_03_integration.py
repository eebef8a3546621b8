"""file-log in the real gateway: the lines it writes for real requests, with
two workers appending to one file, and across a config swap."""

import http.client
import time

import orjson

from fastgw.testing import GatewayProcess, UpstreamServer, service_doc


def wait_for_lines(path, count, timeout=5.0):
    # The log phase runs after the response went out: poll briefly.
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_bytes().splitlines() if path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return [orjson.loads(line) for line in lines]
        time.sleep(0.02)


async def answer(req, writer):
    status = 404 if req.target.startswith("/missing") else 200
    body = b'{"ok":true}'
    writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                 b"\r\n%s" % (status, len(body), body))


def logged_doc(upstream_port, path, **config):
    doc = service_doc(upstream_port, routes=[{"name": "api", "paths": ["/api"]}])
    doc["services"][0]["routes"][0]["plugins"] = [
        {"name": "file-log", "config": {"path": str(path), **config}}]
    return doc


def test_one_line_per_request_describing_it(tmp_path):
    log_path = tmp_path / "access.log"
    with UpstreamServer(answer) as up, \
            GatewayProcess(logged_doc(up.port, log_path,
                                      custom_fields={"env": "test"})) as gw:
        before = time.time()
        status, _, _ = gw.request("GET", "/api/items?x=1&y=2", headers={"X-Trace": "t1"})
        assert status == 200
        status, _, _ = gw.request("POST", "/api/missing", body=b"hello",
                                  headers={"Content-Type": "text/plain"})
        assert status == 404
        entries = wait_for_lines(log_path, 2)
        seen_ids = [r.header("x-request-id") for r in up.requests]
    assert len(entries) == 2
    first, second = entries
    assert first["request"]["method"] == "GET"
    assert first["request"]["uri"] == "/api/items?x=1&y=2"
    assert first["request"]["url"] == "http://localhost/api/items?x=1&y=2"
    assert first["request"]["querystring"] == {"x": "1", "y": "2"}
    assert first["request"]["headers"]["x-trace"] == "t1"
    assert first["request"]["id"] == seen_ids[0]
    assert first["request"]["size"] > 0
    assert first["upstream_uri"] == "/items?x=1&y=2"  # strip_path
    assert first["response"]["status"] == 200
    assert first["route"]["name"] == "api" and first["route"]["paths"] == ["/api"]
    assert first["service"]["name"] == "svc"
    assert first["service"]["host"] == "127.0.0.1" and first["service"]["port"] == up.port
    assert first["client_ip"] == "127.0.0.1"
    assert before * 1000 - 1000 <= first["started_at"] <= time.time() * 1000
    assert set(first["latencies"]) == {"request", "proxy", "kong"}
    assert first["latencies"]["request"] >= 0
    assert first["env"] == "test"
    assert second["request"]["method"] == "POST"
    assert second["request"]["id"] == seen_ids[1]
    assert second["response"]["status"] == 404


def test_the_response_headers_and_size_are_logged(tmp_path):
    log_path = tmp_path / "access.log"
    with UpstreamServer(answer) as up, GatewayProcess(logged_doc(up.port, log_path)) as gw:
        gw.request("GET", "/api/items")
        (entry,) = wait_for_lines(log_path, 1)
    assert entry["response"]["headers"]["content-type"] == "application/json"
    assert entry["response"]["size"] > len(b'{"ok":true}')  # head and body, as in Kong


def test_two_workers_append_whole_lines_to_one_file(tmp_path):
    log_path = tmp_path / "access.log"
    with UpstreamServer(answer) as up, \
            GatewayProcess(logged_doc(up.port, log_path), workers=2) as gw:
        for i in range(60):
            # Fresh connections, so the kernel spreads them over both workers.
            conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
            conn.request("GET", f"/api/n{i}")
            assert conn.getresponse().read() == b'{"ok":true}'
            conn.close()
        entries = wait_for_lines(log_path, 60)
    # Every line parsed as JSON above: none was cut or interleaved.
    assert sorted(e["request"]["uri"] for e in entries) == sorted(f"/api/n{i}"
                                                                 for i in range(60))


def test_a_config_swap_moves_logging_to_the_new_path(tmp_path):
    old_path, new_path = tmp_path / "old.log", tmp_path / "new.log"
    with UpstreamServer(answer) as up, GatewayProcess(logged_doc(up.port, old_path)) as gw:
        gw.request("GET", "/api/one")
        assert len(wait_for_lines(old_path, 1)) == 1
        code, _, body = gw.admin("POST", "/config",
                                 body=orjson.dumps(logged_doc(up.port, new_path, reopen=True)),
                                 headers={"Content-Type": "application/json"})
        assert code == 201, body
        gw.request("GET", "/api/two")
        new_entries = wait_for_lines(new_path, 1)
        old_entries = wait_for_lines(old_path, 2, timeout=0.3)
    assert [e["request"]["uri"] for e in new_entries] == ["/api/two"]
    assert [e["request"]["uri"] for e in old_entries] == ["/api/one"]


def test_an_unwritable_path_leaves_requests_unharmed(tmp_path):
    log_path = tmp_path / "no-such-dir" / "access.log"
    with UpstreamServer(answer) as up, GatewayProcess(logged_doc(up.port, log_path)) as gw:
        for _ in range(3):
            assert gw.request("GET", "/api/x")[0] == 200
        time.sleep(0.2)
        logs = gw.logs()
    assert logs.count(f"[file-log] failed to open the file {log_path}") == 1
    assert "plugin file-log failed" not in logs
