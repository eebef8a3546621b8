"""Helpers for tests that run the real gateway: a process launcher, a
programmable upstream in a background thread, and raw HTTP/1.1 clients.
Beside it: ``redis_server`` (a real redis-server on a free port) and
``mock_llm`` (``fastgw mock-llm`` in a subprocess).

Everything listens on 127.0.0.1 ports the kernel picks, and everything started
here is stopped by the context managers that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator

import orjson
import yaml


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(part) for part in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, for a server about to start. Taken
    below the kernel's ephemeral range, so that no outgoing connection can
    take it as its source port before the server binds it (a rare clash under
    load), and never handed out twice by this process."""
    low, _ = _ephemeral_range()
    first = 10000 if low > 12000 else 1024
    candidates = random.sample(range(first, low), min(64, low - first))
    for port in candidates:
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as s:  # nothing free down there: the kernel's choice
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class GatewayProcess:
    """A ``fastgw run`` process on loopback ports."""

    def __init__(self, doc: dict, workers: int = 1, env: dict | None = None,
                 extra_args: tuple = ()):
        self.doc = doc
        self.workers = workers
        self.port = free_port()
        self.admin_port = free_port()
        self.env = env
        self.extra_args = extra_args
        self.dir = tempfile.TemporaryDirectory(prefix="fastgw-test-")
        self.config_path = os.path.join(self.dir.name, "fastgw.yaml")
        self.log_path = os.path.join(self.dir.name, "fastgw.log")
        # A file-log's path, when the config has one (logged_gateway).
        self.access_log: os.PathLike | str | None = None
        self.proc: subprocess.Popen | None = None

    def write_config(self, doc: dict) -> None:
        with open(self.config_path, "w") as f:
            yaml.safe_dump(doc, f)

    def start(self) -> GatewayProcess:
        self.write_config(self.doc)
        env = dict(os.environ)
        env.update(self.env or {})
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastgw", "run", "-c", self.config_path,
             "--workers", str(self.workers), "--listen", f"127.0.0.1:{self.port}",
             "--admin-listen", f"127.0.0.1:{self.admin_port}", *self.extra_args],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        try:
            wait_for_port(self.admin_port, proc=self.proc)
            wait_for_port(self.port, proc=self.proc)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"{exc}; gateway output:\n{self.logs()}") from None
        return self

    def logs(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        code = self.proc.returncode
        self.proc = None
        return code

    def admin(self, method: str, path: str, body: bytes | None = None,
              headers: dict | None = None) -> tuple[int, dict, bytes]:
        """An admin API request as curl sends it: Host names the listener, a
        body is JSON unless ``headers`` say otherwise."""
        sent = {"Host": f"127.0.0.1:{self.admin_port}"}
        if body is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        return http_request(self.admin_port, method, path, body=body, headers=sent)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None, timeout: float = 10.0) -> tuple[int, dict, bytes]:
        return http_request(self.port, method, path, body=body, headers=headers,
                            timeout=timeout)

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self.dir.cleanup()


def http_request(port: int, method: str, path: str, body: bytes | None = None,
                 headers: dict | None = None, timeout: float = 10.0,
                 host: str = "localhost") -> tuple[int, dict, bytes]:
    """One request on a fresh connection; headers come back lower-cased."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = {"Host": host}
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        received: dict[str, str] = {}
        for k, v in resp.getheaders():
            k = k.lower()
            # Repeated headers fold into one comma-separated value (RFC 9110 5.3).
            received[k] = f"{received[k]}, {v}" if k in received else v
        return resp.status, received, data
    finally:
        conn.close()


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes the connection."""
    chunks: list[bytes] = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def raw_exchange(port: int, payload: bytes, timeout: float = 5.0,
                 read_until_close: bool = True) -> bytes:
    """Send raw bytes, return everything the server sent until it closed
    (or the timeout passed)."""
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.sendall(payload)
        chunks = []
        s.settimeout(timeout)
        with contextlib.suppress(socket.timeout, ConnectionResetError):
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
                if not read_until_close:
                    break
        return b"".join(chunks)


# ---------------------------------------------------------------------------

Handler = Callable[["UpstreamRequest", asyncio.StreamWriter], Awaitable[None]]


class UpstreamRequest:
    def __init__(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
                 raw_head: bytes):
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.raw_head = raw_head

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]


async def default_handler(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
    body = orjson.dumps({"method": req.method, "target": req.target, "body_len": len(req.body)})
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)


class UpstreamServer:
    """A programmable HTTP/1.1 upstream on its own thread and event loop.

    It records every request (and every raw byte) it receives, so a test can
    prove what reached the upstream, or that nothing did.
    """

    def __init__(self, handler: Handler = default_handler):
        self.handler = handler
        self.requests: list[UpstreamRequest] = []
        self.raw = bytearray()
        self.connections = 0
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.raw += head
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = []
                for line in lines[1:]:
                    if line:
                        k, _, v = line.partition(":")
                        headers.append((k.strip(), v.strip()))
                req = UpstreamRequest(method, target, headers, b"", head)
                te = (req.header("transfer-encoding") or "").lower()
                if te == "chunked":
                    body = bytearray()
                    while True:
                        size_line = await reader.readuntil(b"\r\n")
                        self.raw += size_line
                        size = int(size_line.split(b";")[0], 16)
                        data = await reader.readexactly(size + 2)
                        self.raw += data
                        if size == 0:
                            break
                        body += data[:-2]
                    req.body = bytes(body)
                else:
                    n = int(req.header("content-length") or 0)
                    if n:
                        req.body = await reader.readexactly(n)
                        self.raw += req.body
                self.requests.append(req)
                await self.handler(req, writer)
                await writer.drain()
                if (req.header("connection") or "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()

        async def start():
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def __enter__(self) -> UpstreamServer:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("upstream server did not start")
        return self

    def __exit__(self, *exc) -> None:
        assert self.loop is not None

        def shutdown():
            self._server.close()
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.call_later(0.05, self.loop.stop)

        self.loop.call_soon_threadsafe(shutdown)
        assert self.thread is not None  # __enter__ started it
        self.thread.join(5)


def service_doc(upstream_port: int, routes: list[dict] | None = None, name: str = "svc",
                **service_fields) -> dict:
    """A one-service declarative config pointing at a local upstream."""
    path = service_fields.pop("path", "")
    service = {"name": name, "url": f"http://127.0.0.1:{upstream_port}{path}", **service_fields}
    service["routes"] = routes if routes is not None else [{"name": f"{name}-root", "paths": ["/"]}]
    return {"_format_version": "3.0", "services": [service]}


def many_routes_doc(upstream_port: int, routes: int, tag: str) -> dict:
    """A config with ``routes`` prefix routes ``/p<i>/<tag>`` and ``/probe``,
    all to one local upstream (config swap tests and bench)."""
    entries = [{"name": f"r{tag}{i}", "paths": [f"/p{i}/{tag}"]} for i in range(routes)]
    entries.append({"name": "probe", "paths": ["/probe"]})
    return {"_format_version": "3.0",
            "services": [{"name": "s", "url": f"http://127.0.0.1:{upstream_port}",
                          "routes": entries}]}


def parse_responses(raw: bytes, methods: list[str] | None = None) -> list[tuple[int, dict, bytes]]:
    """Split the bytes of pipelined HTTP/1.1 answers into (status, headers,
    body); bodies are framed by Content-Length or chunked, and the answers to
    the requests whose ``methods`` entry is HEAD have none. Bytes that do not
    frame as an answer end the list as an entry with status 0."""
    out: list[tuple[int, dict, bytes]] = []
    pos = 0
    while pos < len(raw):
        end = raw.find(b"\r\n\r\n", pos)
        if end < 0:
            out.append((0, {}, raw[pos:]))
            break
        lines = raw[pos:end].decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 "):
            out.append((0, {}, raw[pos:]))
            break
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        pos = end + 4
        is_head = methods is not None and len(out) < len(methods) and methods[len(out)] == "HEAD"
        if status in (204, 304) or 100 <= status < 200 or is_head:
            body = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line_end = raw.find(b"\r\n", pos)
                size = int(raw[pos:line_end].split(b";")[0], 16)
                chunks.append(raw[line_end + 2:line_end + 2 + size])
                pos = line_end + 2 + size + 2
                if size == 0:
                    break
            body = b"".join(chunks)
        elif "content-length" in headers:
            n = int(headers["content-length"])
            body = raw[pos:pos + n]
            pos += n
        else:
            body = raw[pos:]
            pos = len(raw)
        out.append((status, headers, body))
    return out


_LABEL = re.compile(r'(\w+)="([^"]*)"')


def metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples in a Prometheus text page whose labels
    include ``labels`` (0 when there is none)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{"):
            got = dict(_LABEL.findall(line))
            if all(got.get(key) == value for key, value in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


@contextlib.contextmanager
def logged_gateway(service_url: str, routes: list[dict], log_path: os.PathLike | str,
                   **doc: object) -> Iterator[GatewayProcess]:
    """A gateway with ``routes`` on one service at ``service_url`` and a
    file-log writing to ``log_path`` (kept as ``gw.access_log``, for
    ``log_entries``); ``doc``: more top-level entities."""
    config = {"_format_version": "3.0",
              "services": [{"name": "llm", "url": service_url, "routes": routes}],
              "plugins": [{"name": "file-log", "config": {"path": str(log_path)}}], **doc}
    with GatewayProcess(config) as gw:
        gw.access_log = log_path
        yield gw


def log_entries(paths: os.PathLike | str | list, predicate: Callable[[dict], bool],
                count: int = 1, timeout: float = 5.0) -> list[dict]:
    """The JSON lines of a log file (or of several) that ``predicate`` accepts,
    once there are ``count`` of them (the log phase runs after the answer went
    out), or what there is after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    files = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    while True:
        found = []
        for path in files:
            if os.path.exists(path):
                with open(path, "rb") as log:
                    # Only whole lines: the worker may be writing the last one.
                    lines = log.read().split(b"\n")[:-1]
                found += [entry for entry in map(orjson.loads, lines) if predicate(entry)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def children_of(pid: int, name: bytes = b"") -> list[int]:
    """The processes whose parent is ``pid`` (and whose command line holds
    ``name``), from /proc: no procps needed."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if int(fields[1]) != pid:
                continue
            if name:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if name not in f.read():
                        continue
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        found.append(int(entry))
    return sorted(found)
