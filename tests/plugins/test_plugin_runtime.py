"""The plugin runtime in a real gateway: order, phases, exits, failures,
body access and rewriting, logging, and Kong's precedence rules."""

import os
from pathlib import Path

import orjson
import pytest

from fastgw.testing import GatewayProcess, UpstreamServer, read_until_closed, service_doc

FIXTURES = Path(__file__).parent
ENV = {
    "FASTGW_CUSTOM_PLUGINS": "probe=runtime_fixtures.probe_plugin,"
                             "probe-low=runtime_fixtures.probe_low",
    "PYTHONPATH": os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")]),
}


@pytest.fixture
def upstream():
    with UpstreamServer() as up:
        yield up


@pytest.fixture
def gateway(upstream):
    started = []

    def start(plugins, routes=None, workers=1, **extra):
        doc = service_doc(upstream.port, routes=routes)
        doc["plugins"] = plugins
        doc.update(extra)
        gw = GatewayProcess(doc, workers=workers, env=ENV).start()
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()
        gw.dir.cleanup()


def test_plugins_run_by_priority_and_change_the_upstream_request(gateway, upstream):
    gw = gateway([{"name": "probe-low", "config": {"tag": "low"}},
                  {"name": "probe", "config": {"tag": "high"}}])
    status, headers, _ = gw.request("GET", "/x")
    assert status == 200
    assert upstream.requests[-1].header("x-probe-order") == "high,low"
    assert headers["x-probe-seen"] == "high:service, low:service"


def test_exit_stops_access_but_response_phases_still_run(gateway, upstream):
    gw = gateway([{"name": "probe", "config": {"tag": "high", "exit_status": 403}},
                  {"name": "probe-low", "config": {"tag": "low"}}])
    status, headers, body = gw.request("GET", "/x")
    assert status == 403
    assert orjson.loads(body) == {"message": "probe says no"}
    assert upstream.requests == []
    # header_filter ran for both plugins, on the plugin's own answer.
    assert "high:exit" in headers["x-probe-seen"] and "low:exit" in headers["x-probe-seen"]


def test_async_access_phase(gateway, upstream):
    gw = gateway([{"name": "probe", "config": {"async_access": True}}])
    for _ in range(3):
        assert gw.request("GET", "/x")[0] == 200
    assert upstream.requests[-1].header("x-probe-order") == "probe"


def test_access_reads_and_replaces_the_body(gateway, upstream):
    gw = gateway([{"name": "probe", "config": {"read_body": True}}])
    status, _, _ = gw.request("POST", "/x", body=b"abcdef")
    assert status == 200
    req = upstream.requests[-1]
    assert req.body == b"fedcba"
    assert req.header("x-probe-body-len") == "6"
    assert req.header("content-length") == "6"


def test_body_filter_rewrites_the_response_as_chunked(gateway, upstream):
    gw = gateway([{"name": "probe", "config": {"upper_body": True}}])
    status, headers, body = gw.request("POST", "/x", body=b"hello")
    assert status == 200
    assert body == b'{"METHOD":"POST","TARGET":"/X","BODY_LEN":5}'
    assert headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in headers


@pytest.mark.parametrize("phase", ["access", "header_filter"])
def test_a_failing_plugin_answers_500_and_the_worker_keeps_serving(gateway, upstream, phase):
    gw = gateway([{"name": "probe", "route": "fails", "config": {"raise_in": phase}}],
                 routes=[{"name": "fails", "paths": ["/fail"]},
                         {"name": "fine", "paths": ["/fine"]}])
    status, _, body = gw.request("GET", "/fail")
    if phase == "access":
        assert status == 500
        assert orjson.loads(body) == {"message": "An unexpected error occurred"}
    else:
        # The response was already on its way: the failure is logged, the
        # answer goes out unchanged.
        assert status == 200
    assert "probe failure" in gw.logs() or "plugin probe failed" in gw.logs()
    assert gw.request("GET", "/fine")[0] == 200
    assert gw.request("GET", "/fail")[0] == status


async def _answer_with_decided_names(req, writer) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Probe-Decided-By: upstream\r\n"
                 b"x-probe-decided: upstream\r\nX-Kept: yes\r\n\r\nok")


@pytest.mark.parametrize("decisions, shown", [(1, "first"), (2, "second")])
def test_a_decisions_headers_replace_the_upstreams_of_their_names(gateway, decisions, shown):
    with UpstreamServer(_answer_with_decided_names) as up:
        gw = gateway([{"name": "probe", "config": {"decide_header": decisions}}],
                     services=[{"name": "answers", "url": f"http://127.0.0.1:{up.port}",
                                "routes": [{"name": "d", "paths": ["/d"]}]}])
        status, headers, body = gw.request("GET", "/d")
    assert status == 200 and body == b"ok"
    # Every upstream header under the decision's prefix goes (repeated ones
    # would come back folded), the others stay.
    assert headers["x-probe-decided"] == shown
    assert "x-probe-decided-by" not in headers and headers["x-kept"] == "yes"
    # A decision taken again replaces only its own earlier headers.
    assert headers.get("x-probe-decided-also") == ("yes" if decisions == 1 else None)


def test_log_phase_runs_after_each_response(gateway, upstream, tmp_path):
    path = tmp_path / "log.jsonl"
    gw = gateway([{"name": "probe", "config": {"log_file": str(path)}}])
    for i in range(3):
        gw.request("GET", f"/x?i={i}", headers={"X-Test": "yes"})
    gw.request("GET", "/x?i=3")
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_bytes().splitlines()) == 4:
            break
        time.sleep(0.05)
    entries = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert len(entries) == 4
    first = entries[0]
    assert first["request"]["method"] == "GET"
    assert first["request"]["uri"] == "/x?i=0"
    assert first["request"]["querystring"] == {"i": "0"}
    assert first["request"]["headers"]["x-test"] == "yes"
    assert first["response"]["status"] == 200
    assert first["route"]["name"] == "svc-root"
    assert first["service"]["name"] == "svc"
    assert first["latencies"]["request"] >= 0


def test_scope_precedence_route_beats_service_beats_global(gateway, upstream):
    routes = [{"name": "r1", "paths": ["/r1"]}, {"name": "r2", "paths": ["/r2"]}]
    doc_plugins = [
        {"name": "probe", "config": {"tag": "global"}},
        {"name": "probe", "service": "svc", "config": {"tag": "service"}},
        {"name": "probe", "route": "r1", "config": {"tag": "route"}},
    ]
    gw = gateway(doc_plugins, routes=routes)
    gw.request("GET", "/r1")
    assert upstream.requests[-1].header("x-probe-order") == "route"
    gw.request("GET", "/r2")
    assert upstream.requests[-1].header("x-probe-order") == "service"


def test_a_plugin_can_send_the_request_to_another_target(gateway, upstream):
    with UpstreamServer() as other:
        gw = gateway([{"name": "probe", "config": {
            "upstream_url": f"http://127.0.0.1:{other.port}/elsewhere?x=1"}}])
        status, _, body = gw.request("POST", "/x", body=b"12345")
        assert status == 200
        assert orjson.loads(body)["target"] == "/elsewhere?x=1"
        assert upstream.requests == []
        assert other.requests[-1].header("host") == f"127.0.0.1:{other.port}"
        assert other.requests[-1].body == b"12345"


def test_body_filters_get_the_last_word_when_the_upstream_breaks_off(gateway, upstream):
    import asyncio
    import socket

    async def handler(req, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.transport.abort()

    upstream.handler = handler
    gw = gateway([{"name": "probe", "config": {}}])
    with socket.create_connection(("127.0.0.1", gw.port), 5) as s:
        s.sendall(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
        data = read_until_closed(s)
    body = data.split(b"\r\n\r\n", 1)[1]
    assert b"data: 1" in body
    assert body.rstrip().endswith(b'data: {"error": "upstream went away"}')
    assert not body.endswith(b"0\r\n\r\n")


def test_a_plugin_reading_the_body_answers_expect_100_continue(gateway, upstream):
    import socket

    gw = gateway([{"name": "probe", "config": {"read_body": True}}])
    with socket.create_connection(("127.0.0.1", gw.port), 5) as s:
        s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        s.settimeout(2)
        interim = s.recv(100)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"abcd")
        data = b""
        while b"body_len" not in data:
            data += s.recv(65536)
    assert data.startswith(b"HTTP/1.1 200")
    assert upstream.requests[-1].body == b"dcba"


def test_the_gateways_own_errors_pass_through_response_filters(gateway):
    from fastgw.testing import free_port

    gw = gateway([{"name": "probe", "config": {}}])
    dead = service_doc(free_port(), retries=0)
    dead["plugins"] = [{"name": "probe", "config": {}}]
    code, _, body = gw.admin("POST", "/config", body=orjson.dumps(dead))
    assert code == 201, body
    status, headers, body = gw.request("GET", "/x")
    assert status == 502
    assert headers["x-probe-seen"] == "probe:gateway"
    assert orjson.loads(body)["message"].startswith("An invalid response")


def test_the_log_phase_runs_when_the_client_goes_away(gateway, upstream, tmp_path):
    import asyncio
    import socket
    import time

    async def slow(req, writer):
        await asyncio.sleep(1.0)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    upstream.handler = slow
    path = tmp_path / "log.jsonl"
    gw = gateway([{"name": "probe", "config": {"log_file": str(path)}}])
    with socket.create_connection(("127.0.0.1", gw.port), 5) as s:
        s.sendall(b"GET /gone HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.2)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (path.exists() and path.read_bytes()):
        time.sleep(0.05)
    lines = path.read_bytes().splitlines()
    entry = orjson.loads(lines[0])
    assert entry["request"]["uri"] == "/gone"
    assert entry["response"]["status"] == 499


@pytest.mark.parametrize("key_in_body", [False, True], ids=["sync-auth", "async-auth"])
def test_a_consumers_own_config_takes_over_after_authentication(gateway, upstream, key_in_body):
    consumers = [{"username": "alice", "keyauth_credentials": [{"key": "alice-key"}]},
                 {"username": "bob", "keyauth_credentials": [{"key": "bob-key"}]}]
    gw = gateway([{"name": "key-auth", "config": {"key_in_body": key_in_body}},
                  {"name": "probe", "config": {"tag": "everyone"}},
                  {"name": "probe", "consumer": "alice", "config": {"tag": "alice-only"}}],
                 consumers=consumers)
    for key, tag in (("alice-key", "alice-only"), ("bob-key", "everyone")):
        status, _, _ = gw.request("POST", "/x", body=b'{"a": 1}',
                                  headers={"apikey": key, "Content-Type": "application/json"})
        assert status == 200
        assert upstream.requests[-1].header("x-probe-order") == tag


def test_consumer_groups_give_their_members_a_tier_with_kongs_precedence(gateway, upstream):
    # gold-scoped config for gold's members; a member's own config beats its
    # group's; a consumer in two groups takes its first; others get the global one.
    consumers = [
        {"username": "ann", "keyauth_credentials": [{"key": "ann"}],
         "groups": [{"name": "gold"}]},
        {"username": "ben", "keyauth_credentials": [{"key": "ben"}],
         "groups": [{"name": "gold"}], "plugins": [{"name": "probe",
                                                     "config": {"tag": "ben-only"}}]},
        {"username": "cat", "keyauth_credentials": [{"key": "cat"}],
         "groups": [{"name": "silver"}, {"name": "gold"}]},
        {"username": "dan", "keyauth_credentials": [{"key": "dan"}]},
    ]
    groups = [{"name": "gold", "plugins": [{"name": "probe", "config": {"tag": "gold"}}]},
              {"name": "silver"}]
    gw = gateway([{"name": "key-auth", "config": {}},
                  {"name": "probe", "config": {"tag": "everyone"}},
                  {"name": "probe", "consumer_group": "silver", "config": {"tag": "silver"}}],
                 consumers=consumers, consumer_groups=groups)
    for key, tag in (("ann", "gold"), ("ben", "ben-only"), ("cat", "silver"),
                     ("dan", "everyone")):
        assert gw.request("GET", "/x", headers={"apikey": key})[0] == 200
        assert upstream.requests[-1].header("x-probe-order") == tag, key


def test_lifecycle_hooks_reach_the_plugins_a_worker_loaded(upstream, tmp_path):
    # Kong's init_worker once per worker, the admin API's purge, and the
    # shutdown of a draining worker, through the plugin registry.
    notes = tmp_path / "lifecycle.txt"
    doc = service_doc(upstream.port)
    doc["plugins"] = [{"name": "probe", "config": {"tag": "p"}}]
    gw = GatewayProcess(doc, workers=2, env={**ENV, "PROBE_LIFECYCLE_FILE": str(notes)}).start()
    try:
        assert gw.request("GET", "/x")[0] == 200
        assert gw.admin("DELETE", "/proxy-cache/some-key")[0] == 404  # no worker had it
        swapped = dict(doc, routes=[])  # a reload does not run init_worker again
        assert gw.admin("POST", "/config", body=orjson.dumps(swapped))[0] == 201
    finally:
        assert gw.stop() == 0
        gw.dir.cleanup()
    lines = notes.read_text().split("\n")
    kinds = sorted(line.rsplit(" ", 1)[0] for line in lines if line)
    assert kinds == ["init_worker"] * 2 + ["purge some-key"] * 2 + ["shutdown"] * 2
