"""file-log's handler on made-up requests: the exact lines it writes, the
file it keeps open, reopen, and failures that must not reach the request."""

import gc
import logging
import os

import orjson
import pytest

from fastgw.config.model import Consumer, Route, Service
from fastgw.plugins.context import make_context, set_response
from fastgw.plugins.file_log import handler as file_log_handler

ROUTE = Route(name="orders", service="shop", paths=("/orders",), id="route-1")
SERVICE = Service(name="shop", protocol="http", host="shop.internal", port=8080, path=None,
                  id="service-1")


def known_request(request_id="req-1", status=201):
    ctx = make_context("POST", "/orders/7?expand=items&tag=a&tag=b",
                       {"Host": "api.example.com", "User-Agent": "curl/8", "X-Tag": "1",
                        "x-tag": "2"},
                       route=ROUTE, service=SERVICE, client_ip="10.0.0.9", request_id=request_id)
    ctx.request.path = "/v2/orders/7"  # as after strip_path and the service path
    ctx.started_at = 1_700_000_000.123
    ctx.bytes_in = 321
    ctx.tries = 1
    ctx.latencies = {"request": 12, "proxy": 9, "kong": 3}
    ctx.consumer = Consumer(username="ann", custom_id="c-9", id="consumer-1")
    response = set_response(ctx, status, {"Content-Type": "application/json",
                                          "Content-Length": "17"})
    response.size = 250
    return ctx


EXPECTED_ENTRY = {
    "request": {
        "method": "POST",
        "uri": "/orders/7?expand=items&tag=a&tag=b",
        "url": "http://api.example.com/orders/7?expand=items&tag=a&tag=b",
        "querystring": {"expand": "items", "tag": ["a", "b"]},
        "headers": {"user-agent": "curl/8", "x-tag": ["1", "2"], "host": "api.example.com"},
        "size": 321,
        "id": "req-1",
    },
    "upstream_uri": "/v2/orders/7?expand=items&tag=a&tag=b",
    "response": {"status": 201,
                 "headers": {"content-type": "application/json", "content-length": "17"},
                 "size": 250},
    "latencies": {"request": 12, "proxy": 9, "kong": 3},
    "route": {"name": "orders", "id": "route-1", "paths": ["/orders"]},
    "service": {"name": "shop", "id": "service-1", "host": "shop.internal", "port": 8080,
                "protocol": "http"},
    "client_ip": "10.0.0.9",
    "started_at": 1_700_000_000_123,
    "tries": 1,
    "consumer": {"id": "consumer-1", "username": "ann", "custom_id": "c-9"},
}


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def test_one_exact_json_line_per_request(tmp_path, build_file_log):
    path = tmp_path / "access.log"
    plugin = build_file_log({"path": str(path)})
    plugin.log(known_request("req-1"))
    plugin.log(known_request("req-2", status=404))
    first, second = read_lines(path)
    assert orjson.loads(first) == EXPECTED_ENTRY
    # Byte for byte what orjson makes of Kong's serializer shape.
    assert first == orjson.dumps(known_request("req-1").log_entry())
    assert orjson.loads(second)["request"]["id"] == "req-2"
    assert orjson.loads(second)["response"]["status"] == 404


def test_lines_are_appended_to_an_existing_file_created_0644(tmp_path, build_file_log):
    path = tmp_path / "access.log"
    path.write_bytes(b"older line\n")
    build_file_log({"path": str(path)}).log(known_request())
    lines = read_lines(path)
    assert lines[0] == b"older line"
    assert orjson.loads(lines[1]) == EXPECTED_ENTRY

    fresh = tmp_path / "fresh.log"
    build_file_log({"path": str(fresh)}).log(known_request())
    assert fresh.stat().st_mode & 0o777 == 0o644 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_custom_fields_set_nested_values_without_touching_shared_dicts(tmp_path,
                                                                       build_file_log):
    path = tmp_path / "access.log"
    plugin = build_file_log({"path": str(path), "custom_fields": {
        "env": "prod",
        "ai.team": "search",
        "request.headers.user-agent": "hidden",
        "dotted\\.name": 1,
        "route": {"name": "public"},
    }})
    ctx = known_request()
    ctx.ai = {"model": "gpt-x"}
    plugin.log(ctx)
    entry = orjson.loads(read_lines(path)[0])
    assert entry["env"] == "prod"
    assert entry["ai"] == {"model": "gpt-x", "team": "search"}
    assert entry["request"]["headers"] == {"user-agent": "hidden", "x-tag": ["1", "2"],
                                         "host": "api.example.com"}
    assert entry["dotted.name"] == 1
    assert entry["route"] == {"name": "public"}
    assert ctx.ai == {"model": "gpt-x"}  # the context's own dict is unchanged


def test_the_file_is_opened_once_per_config_version(tmp_path, build_file_log):
    path = str(tmp_path / "access.log")
    first, second = build_file_log({"path": path}, {"path": path})
    assert first.file is second.file  # one descriptor per path and config version
    first.log(known_request())
    fd = first.file.fd
    second.log(known_request())
    first.log(known_request())
    assert first.file.fd == fd
    assert len(read_lines(path)) == 3

    newer = build_file_log({"path": path})  # a new config version
    newer.log(known_request())
    assert newer.file is not first.file and newer.file.fd != fd
    # Dropping the old version closes its descriptor.
    del first, second
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)
    assert len(read_lines(path)) == 4


def test_without_reopen_a_rotated_file_keeps_receiving_lines(tmp_path, build_file_log):
    path = tmp_path / "access.log"
    plugin = build_file_log({"path": str(path)})
    plugin.log(known_request("before"))
    os.rename(path, tmp_path / "access.log.1")
    plugin.log(known_request("after"))
    assert not path.exists()
    ids = [orjson.loads(line)["request"]["id"] for line in read_lines(tmp_path / "access.log.1")]
    assert ids == ["before", "after"]


def test_with_reopen_a_rotated_file_is_followed(tmp_path, build_file_log):
    path = tmp_path / "access.log"
    plugin = build_file_log({"path": str(path), "reopen": True})
    plugin.log(known_request("before"))
    os.rename(path, tmp_path / "access.log.1")
    plugin.log(known_request("after"))
    assert [orjson.loads(x)["request"]["id"] for x in read_lines(path)] == ["after"]
    assert [orjson.loads(x)["request"]["id"]
            for x in read_lines(tmp_path / "access.log.1")] == ["before"]
    assert plugin.file.fd == -1  # nothing stays open


def test_an_unopenable_path_logs_one_error_and_never_raises(tmp_path, build_file_log, caplog):
    path = tmp_path / "missing-dir" / "access.log"
    plugin = build_file_log({"path": str(path)})
    with caplog.at_level(logging.ERROR, logger="fastgw.plugins.file_log"):
        for _ in range(5):
            plugin.log(known_request())
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [f"[file-log] failed to open the file {path}: No such file or directory "
                        "(0 failures since the last report)"]
    # Once the directory exists the next request opens the file.
    path.parent.mkdir()
    plugin.log(known_request())
    assert len(read_lines(path)) == 1


def test_a_write_error_is_reported_and_the_file_reopened_later(build_file_log, caplog,
                                                               monkeypatch):
    monkeypatch.setattr(file_log_handler, "ERROR_LOG_INTERVAL", 0.0)
    plugin = build_file_log({"path": "/dev/full"})  # every write fails with ENOSPC
    with caplog.at_level(logging.ERROR, logger="fastgw.plugins.file_log"):
        plugin.log(known_request())
        plugin.log(known_request())
    assert [r.getMessage() for r in caplog.records] == [
        "[file-log] failed to write to the file /dev/full: No space left on device "
        "(0 failures since the last report)"] * 2
    assert plugin.file.fd == -1


def test_a_long_line_is_written_whole(tmp_path, build_file_log):
    path = tmp_path / "access.log"
    plugin = build_file_log({"path": str(path), "custom_fields": {"blob": "x" * 300_000}})
    plugin.log(known_request())
    (line,) = read_lines(path)
    assert len(orjson.loads(line)["blob"]) == 300_000
