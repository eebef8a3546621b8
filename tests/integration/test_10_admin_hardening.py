"""The admin API cannot be driven by a web page, a YAML bomb or a stranger:
writes need a JSON or YAML body, a Host naming the listener and no foreign
Origin; YAML aliases and nesting are bounded; off loopback it needs a key."""

import subprocess
import sys

import orjson
import pytest

from fastgw.testing import GatewayProcess, free_port, http_request, service_doc
from fastgw.testing import many_routes_doc as routes_doc


def alias_bomb() -> bytes:
    # Each level doubles the one below: 2**20 routes from a few hundred bytes.
    lines = [b'_format_version: "3.0"', b"a0: &a0 [{name: r, paths: [/x]}]"]
    for i in range(1, 21):
        lines.append(b"a%d: &a%d [*a%d, *a%d]" % (i, i, i - 1, i - 1))
    lines.append(b"services: [{name: s, url: 'http://127.0.0.1:9', routes: *a20}]")
    return b"\n".join(lines) + b"\n"


def deep_yaml(depth: int) -> bytes:
    return b'_format_version: "3.0"\nx: ' + b"[" * depth + b"]" * depth + b"\n"


@pytest.fixture(scope="module")
def gw():
    with GatewayProcess(service_doc(free_port())) as gw:
        yield gw


def config_hash(gw) -> str:
    return orjson.loads(gw.admin("GET", "/status")[2])["config_hash"]


def test_cross_site_shaped_writes_are_refused(gw):
    before = config_hash(gw)
    doc = orjson.dumps(service_doc(free_port(), name="evil"))
    host = f"127.0.0.1:{gw.admin_port}"
    cases = [
        ({"Content-Type": "text/plain"}, 415),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403),
        ({"Content-Type": "application/json", "Host": f"evil.example:{gw.admin_port}"}, 403),
        ({"Content-Type": "application/json", "Host": "127.0.0.1:1"}, 403),
    ]
    for headers, status in cases:
        code, _, body = gw.admin("POST", "/config", body=doc, headers={"Host": host, **headers})
        assert code == status, (headers, body)
    code, _, _ = gw.admin("DELETE", "/proxy-cache", headers={"Origin": "http://evil.example"})
    assert code == 403
    assert config_hash(gw) == before
    # The same document, sent as a client would, is taken.
    code, _, _ = gw.admin("POST", "/config", body=doc,
                          headers={"Origin": f"http://{host}"})
    assert code == 201


def test_yaml_alias_bomb_is_a_400_naming_the_bound(gw):
    before = config_hash(gw)
    code, _, body = gw.admin("POST", "/config", body=alias_bomb(),
                             headers={"Content-Type": "application/yaml"})
    assert code == 400
    assert "alias expansion bound" in body.decode()
    assert config_hash(gw) == before


def test_deeply_nested_yaml_is_a_400_naming_the_bound(gw):
    for depth in (100, 5000):
        code, _, body = gw.admin("POST", "/config", body=deep_yaml(depth),
                                 headers={"Content-Type": "application/yaml"})
        assert code == 400, body
        # Past 1,000 levels libyaml's own bound speaks first; both name the depth.
        assert "nesting depth" in body.decode()
    assert gw.admin("GET", "/status")[0] == 200


def test_fastgw_check_names_the_yaml_bounds(tmp_path):
    for name, data, words in (("bomb.yaml", alias_bomb(), "alias expansion bound"),
                              ("deep.yaml", deep_yaml(200), "nesting depth over 64 levels")):
        path = tmp_path / name
        path.write_bytes(data)
        out = subprocess.run([sys.executable, "-m", "fastgw", "check", "-c", str(path)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1
        assert words in out.stderr and str(path) in out.stderr


def test_non_loopback_admin_listen_needs_a_token(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(orjson.dumps(service_doc(free_port())).decode())
    port, admin_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "fastgw", "run", "-c", str(config), "--workers", "1",
           "--listen", f"127.0.0.1:{port}", "--admin-listen", f"0.0.0.0:{admin_port}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "not a loopback address" in out.stderr and "admin_token" in out.stderr


def test_admin_token_is_required_on_every_request():
    doc = service_doc(free_port())
    env = {"FASTGW_ADMIN_TOKEN": "s3cret-admin"}
    with GatewayProcess(doc, env=env) as gw:
        assert gw.admin("GET", "/status")[0] == 401
        assert gw.admin("GET", "/status", headers={"Kong-Admin-Token": "wrong"})[0] == 401
        code, _, body = gw.admin("GET", "/status", headers={"Kong-Admin-Token": "s3cret-admin"})
        assert code == 200
        config = gw.admin("GET", "/config", headers={"Kong-Admin-Token": "s3cret-admin"})[2]
        assert b"s3cret-admin" not in config
        # As a bearer token too (what a Prometheus scrape config can send).
        assert gw.admin("GET", "/metrics",
                        headers={"Authorization": "Bearer s3cret-admin"})[0] == 200
        assert gw.admin("GET", "/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert gw.admin("GET", "/metrics", headers={"Authorization": "s3cret-admin"})[0] == 401


def test_admin_listen_on_all_interfaces_with_a_token_starts():
    doc = service_doc(free_port())
    doc["_gateway"] = {"admin_token": "{vault://env/FASTGW_TEST_ADMIN_KEY}"}
    gw = GatewayProcess(doc, env={"FASTGW_TEST_ADMIN_KEY": "k1"})
    # Given after the launcher's own --admin-listen: the last flag wins.
    gw.extra_args = ("--admin-listen", f"0.0.0.0:{gw.admin_port}")
    with gw:
        assert http_request(gw.admin_port, "GET", "/status")[0] == 401
        status = http_request(gw.admin_port, "GET", "/status",
                              headers={"Kong-Admin-Token": "k1"})[0]
        assert status == 200


def test_a_large_swap_is_built_off_the_event_loop_and_traffic_goes_on():
    # bench/config_swap.py measures the stall; this checks the swap's result
    # and that requests in flight during it are all answered.
    import socket
    import threading

    from fastgw.testing import UpstreamServer

    with UpstreamServer() as up, GatewayProcess(routes_doc(up.port, 3000, "a")) as gw:
        stop = threading.Event()
        statuses: list[bytes] = []

        def probe() -> None:
            with socket.create_connection(("127.0.0.1", gw.port), 5) as s:
                while not stop.is_set():
                    s.sendall(b"GET /probe HTTP/1.1\r\nHost: x\r\n\r\n")
                    data = b""
                    while not data.endswith(b"}"):
                        data += s.recv(65536)
                    statuses.append(data[9:12])

        thread = threading.Thread(target=probe)
        thread.start()
        try:
            code, _, answer = gw.admin("POST", "/config",
                                       body=orjson.dumps(routes_doc(up.port, 3000, "b")))
        finally:
            stop.set()
            thread.join(10)
        assert code == 201
        # The worker reports its longest event-loop stall during the swap.
        stall = orjson.loads(answer)["stall_ms"]
        assert isinstance(stall, float) and stall > 0
        assert f"longest proxy stall {stall:.1f} ms" in gw.logs()
        assert statuses and set(statuses) == {b"200"}
        assert gw.request("GET", "/p2999/b")[0] == 200
        assert gw.request("GET", "/p2999/a")[0] == 404
