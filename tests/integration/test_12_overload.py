"""Overload is shed before it harms what is already open: connections past
max_connections are closed at once, a worker past its memory watermark answers
503 to new requests, and accept backs off (no busy loop) when the worker has
no file descriptors left."""

import os
import resource
import socket
import time

import orjson

from fastgw.testing import (
    GatewayProcess,
    UpstreamServer,
    children_of,
    parse_responses,
    service_doc,
)

GET = b"GET /x HTTP/1.1\r\nHost: gw\r\n\r\n"


def one_answer(sock: socket.socket) -> bytes:
    sock.sendall(GET)
    data = b""
    while b"\r\n\r\n" not in data or len(parse_responses(data)) < 1 or \
            parse_responses(data)[0][0] == 0:
        chunk = sock.recv(65536)
        assert chunk, "closed"
        data += chunk
    return data


def worker_pid(gw) -> int:
    return children_of(gw.proc.pid, b"fastgw.worker")[0]


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_connections_past_max_connections_are_closed_and_open_ones_go_on():
    with UpstreamServer() as up:
        doc = service_doc(up.port)
        doc["_gateway"] = {"max_connections": 5}
        with GatewayProcess(doc) as gw:
            open_ones = [socket.create_connection(("127.0.0.1", gw.port), 3) for _ in range(5)]
            for s in open_ones:
                assert parse_responses(one_answer(s))[0][0] == 200
            extra = socket.create_connection(("127.0.0.1", gw.port), 3)
            try:
                extra.sendall(GET)
                answer = extra.recv(65536)
            except ConnectionResetError:  # closed before our request arrived
                answer = b""
            assert answer == b""  # closed without an answer
            extra.close()
            for s in open_ones:  # untouched, still keep-alive
                assert parse_responses(one_answer(s))[0][0] == 200
                s.close()
            time.sleep(0.2)
            assert gw.request("GET", "/x")[0] == 200


def test_a_worker_over_its_memory_watermark_sheds_new_requests_then_recovers():
    with UpstreamServer() as up:
        doc = service_doc(up.port)
        doc["_gateway"] = {"max_memory_mb": 1}  # any worker is over 1 MB
        with GatewayProcess(doc) as gw:
            time.sleep(0.4)  # the watermark is read a few times a second
            status, headers, body = gw.request("GET", "/x")
            assert (status, orjson.loads(body)) == (
                503, {"message": "The gateway is over its memory limit"})
            assert headers["connection"] == "close"
            assert up.requests == []
            doc["_gateway"] = {"max_memory_mb": 100000}
            assert gw.admin("POST", "/config", body=orjson.dumps(doc))[0] == 201
            time.sleep(0.4)
            assert gw.request("GET", "/x")[0] == 200
            assert "is over max_memory_mb 1" in gw.logs()
            assert "back under max_memory_mb 100000" in gw.logs()


def test_accept_backs_off_when_file_descriptors_run_out():
    with UpstreamServer() as up, GatewayProcess(service_doc(up.port)) as gw:
        pid = worker_pid(gw)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (64, 64))
        held = [socket.create_connection(("127.0.0.1", gw.port), 3) for _ in range(100)]
        time.sleep(0.3)
        before = cpu_seconds(pid)
        time.sleep(1.5)
        spent = cpu_seconds(pid) - before
        assert spent < 0.3, f"the worker spun: {spent:.2f} s of CPU in 1.5 s"
        for s in held:
            s.close()
        time.sleep(0.3)
        assert gw.request("GET", "/x", timeout=5)[0] == 200
