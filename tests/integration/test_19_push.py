"""`fastgw push`: one config to a fleet of instances over their admin APIs,
validated everywhere first, applied everywhere or nowhere; the instances'
config hash in GET /status shows drift."""

import http.server
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest
import yaml

from fastgw.testing import GatewayProcess, UpstreamServer, service_doc

ROOT = Path(__file__).resolve().parents[2]


def fastgw_push(config_path, *urls):
    return subprocess.run([sys.executable, "-m", "fastgw", "push", "-c", str(config_path),
                           "--to", *urls], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


def admin_url(gw):
    return f"http://127.0.0.1:{gw.admin_port}"


def config_hash(gw):
    return orjson.loads(gw.admin("GET", "/status")[2])["config_hash"]


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module")
def fleet(upstream):
    doc = service_doc(upstream.port, routes=[{"name": "old", "paths": ["/old"]}])
    with GatewayProcess(doc) as first, GatewayProcess(doc) as second:
        yield first, second, doc


def write(tmp_path, doc):
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_config_reaches_every_instance(fleet, upstream, tmp_path):
    first, second, doc = fleet
    new = service_doc(upstream.port, routes=[{"name": "new", "paths": ["/new"]}])
    out = fastgw_push(write(tmp_path, new), admin_url(first), admin_url(second))
    assert out.returncode == 0, out.stderr
    assert config_hash(first) == config_hash(second)
    assert out.stdout.strip() == f"config {config_hash(first)} applied on 2 instance(s)"
    for gw in (first, second):
        assert gw.request("GET", "/new")[0] == 200
        assert gw.request("GET", "/old")[0] == 404
    # Back to the fixture's config for the other tests.
    assert fastgw_push(write(tmp_path, doc), admin_url(first), admin_url(second)).returncode == 0


def test_an_invalid_config_changes_nothing(fleet, tmp_path):
    first, second, _ = fleet
    before = config_hash(first), config_hash(second)
    bad = {"_format_version": "3.0", "services": [{"name": "s", "url": "ftp://x"}]}
    out = fastgw_push(write(tmp_path, bad), admin_url(first), admin_url(second))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines == [
        f"{admin_url(first)}: services[0].url: scheme must be 'http' or 'https'",
        f"{admin_url(second)}: services[0].url: scheme must be 'http' or 'https'",
        "nothing was changed"]
    assert (config_hash(first), config_hash(second)) == before


def test_an_unreachable_instance_stops_the_push_before_any_change(fleet, upstream, tmp_path):
    first, _, _ = fleet
    before = config_hash(first)
    new = service_doc(upstream.port, routes=[{"name": "new", "paths": ["/new"]}])
    out = fastgw_push(write(tmp_path, new), admin_url(first), "http://127.0.0.1:9")
    assert out.returncode == 1
    assert "http://127.0.0.1:9: cannot reach the admin API" in out.stderr
    assert config_hash(first) == before


class RefusingAtApply(http.server.BaseHTTPRequestHandler):
    """An instance that validates a config, then fails to apply it."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/config/check":
            status, body = 200, {"message": "config valid", "hash": "0000"}
        else:
            status, body = 500, {"message": "disk on fire"}
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_a_failure_while_applying_reverts_the_instances_already_changed(fleet, upstream,
                                                                      tmp_path):
    first, _, _ = fleet
    before = config_hash(first)
    server = http.server.HTTPServer(("127.0.0.1", 0), RefusingAtApply)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        broken = f"http://127.0.0.1:{server.server_port}"
        new = service_doc(upstream.port, routes=[{"name": "new", "paths": ["/new"]}])
        out = fastgw_push(write(tmp_path, new), admin_url(first), broken)
    finally:
        server.shutdown()
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"{broken}: disk on fire",
        f"{admin_url(first)}: reverted to config {before}"]
    assert config_hash(first) == before
    assert first.request("GET", "/old")[0] == 200


def test_check_and_revert_endpoints(fleet, upstream):
    first, _, doc = fleet
    before = config_hash(first)
    status, _, body = first.admin("POST", "/config/check", orjson.dumps({"_format_version": 3}))
    assert status == 400 and orjson.loads(body)["errors"]
    status, _, body = first.admin("POST", "/config/check", orjson.dumps(doc))
    assert (status, orjson.loads(body)["hash"]) == (200, before)
    assert config_hash(first) == before
    status, _, body = first.admin("POST", "/config/revert", orjson.dumps({"hash": "nope"}))
    assert status == 409
    assert orjson.loads(body)["errors"] == [
        f"hash: the running config is {before}, not nope; nothing reverted"]
