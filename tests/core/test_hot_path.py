"""A request on a route without plugins runs no Python-level code.

The gateway runs in this thread on uvloop with a profiler hook installed.
Python functions raise 'call' events; compiled Cython code does not. A
client in another thread sends requests; the hook must see no call at all
while they are proxied.
"""

import asyncio
import socket
import sys
import threading

import uvloop

from fastgw.config.loader import parse_config
from fastgw.runtime import new_gateway
from fastgw.testing import UpstreamServer, service_doc

REQUESTS = 300


def client(port: int, gate, loop, finished, result: dict) -> None:
    gate.acquire()
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        ok = 0
        for _ in range(REQUESTS):
            s.sendall(b"POST /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
            data = b""
            while b'"body_len":5}' not in data:
                data += s.recv(65536)
            ok += data.startswith(b"HTTP/1.1 200")
        result["ok"] = ok
    loop.call_soon_threadsafe(finished.set_result, None)


def test_plugin_free_route_runs_only_compiled_code():
    with UpstreamServer() as up:
        # Plugins elsewhere in the config (key-auth on another route) and a
        # global prometheus must not put the plain route on the slow path.
        doc = service_doc(up.port, routes=[{"name": "plain", "paths": ["/v1"]},
                                           {"name": "locked", "paths": ["/locked"],
                                            "plugins": [{"name": "key-auth"}]}])
        doc["plugins"] = [{"name": "prometheus", "config": {"status_code_metrics": True}}]
        config = parse_config(doc)

        async def main():
            loop = asyncio.get_running_loop()
            gw = new_gateway(loop, config)
            server = await loop.create_server(gw.protocol_factory(), "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            # Warm up: the first request opens the upstream connection (a
            # coroutine, by design on the slow path).
            warm = threading.Event()
            warm_result = {}
            threading.Thread(target=_one_request, args=(port, warm, warm_result)).start()
            while not warm.is_set():
                await asyncio.sleep(0.01)
            calls = []

            def hook(frame, event, arg):
                if event == "call":
                    calls.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")

            finished = loop.create_future()
            result = {}
            # The client waits on a lock that is released (a C call) once
            # the hook is in place, so thread start-up is not in the count.
            gate = threading.Lock()
            gate.acquire()
            threading.Thread(target=client, args=(port, gate, loop, finished, result)).start()
            sys.setprofile(hook)
            try:
                gate.release()
                # Future.set_result is C code, so waking up adds only this
                # coroutine's own frame to the calls seen.
                await finished
            finally:
                sys.setprofile(None)
            server.close()
            plain = gw.router.match(b"POST", b"a", b"/v1/x", None).payload
            counted = plain.metrics.snapshot()["codes"]
            return calls, result, counted

        calls, result, counted = uvloop.run(main())
    assert result["ok"] == REQUESTS
    # The requests (and the warm-up one) were counted for prometheus, in the core.
    assert counted == {"200": REQUESTS + 1}
    # No fastgw Python code ran at all, and what little Python did run
    # (this coroutine waking up, the loop wrapper, weakref bookkeeping of the
    # finished future) is a fixed handful, not a cost per request.
    assert not [c for c in calls if "/fastgw/" in c and not c.endswith("test_hot_path.py:main")]
    assert len(calls) < 10, "\n".join(calls)


def _one_request(port, done, result):
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(b"GET /v1/warm HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        result["data"] = s.recv(65536)
    done.set()
