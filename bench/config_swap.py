"""How long a config swap stalls the proxy: one keep-alive client sends
requests back to back while `POST /config` replaces N routes with N others;
prints the swap's duration and the longest gap between two answers.

    .venv/bin/python bench/config_swap.py [ROUTES ...]   (default 10000)

The worker measures its own longest event-loop stall during the swap (a 1 ms
ticker; `POST /config` answers it as ``stall_ms``). The client's gap is larger:
it also holds the time the supervisor's own parse takes from the two cores.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

import orjson

from fastgw.testing import GatewayProcess, UpstreamServer
from fastgw.testing import many_routes_doc as config


def measure(routes: int) -> None:
    with UpstreamServer() as up, GatewayProcess(config(up.port, routes, "a")) as gw:
        stop = threading.Event()
        gaps: list[float] = []

        def probe() -> None:
            with socket.create_connection(("127.0.0.1", gw.port)) as s:
                last = time.perf_counter()
                while not stop.is_set():
                    s.sendall(b"GET /probe HTTP/1.1\r\nHost: x\r\n\r\n")
                    data = b""
                    while not data.endswith(b"}"):
                        data += s.recv(65536)
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

        thread = threading.Thread(target=probe)
        thread.start()
        time.sleep(0.5)
        gaps.clear()
        started = time.perf_counter()
        status, _, answer = gw.admin("POST", "/config",
                                     body=orjson.dumps(config(up.port, routes, "b")))
        swap_ms = (time.perf_counter() - started) * 1000
        time.sleep(0.3)
        stop.set()
        thread.join()
        gaps.sort()
        stall = orjson.loads(answer).get("stall_ms")
        print(f"routes={routes:>6}  status={status}  swap={swap_ms:6.0f} ms  "
              f"worker's longest stall={stall} ms  "
              f"longest gap={gaps[-1] * 1000:6.1f} ms  p99 gap={gaps[int(len(gaps) * 0.99)] * 1000:5.2f} ms  "
              f"requests during the swap={len(gaps)}")


if __name__ == "__main__":
    for count in [int(a) for a in sys.argv[1:]] or [10000]:
        measure(count)
