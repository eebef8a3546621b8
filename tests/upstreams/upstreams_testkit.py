"""Shared pieces of the upstream tests: configs through the real loader, a
stand-in for the compiled ``UpstreamRuntime`` (same Python API) for tests
that run the checkers in-process, and small probe targets on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator

import orjson

from fastgw.config.loader import parse_config
from fastgw.config.model import Upstream
from fastgw.testing import GatewayProcess, UpstreamServer, free_port
from fastgw.upstreams.health import HEALTHCHECKS_OFF, HEALTHY, UNHEALTHY


def upstream_spec(targets: list[dict], healthchecks: dict | None = None, name: str = "up",
                  **fields) -> Upstream:
    """A validated upstream (Kong's defaults filled)."""
    entry = {"name": name, "targets": targets, **fields}
    if healthchecks is not None:
        entry["healthchecks"] = healthchecks
    return parse_config({"_format_version": "3.0", "upstreams": [entry]}).upstreams[0]


def active(healthy: dict | None = None, unhealthy: dict | None = None, **fields) -> dict:
    """A ``healthchecks`` block with active checks."""
    return {"active": {"healthy": healthy or {}, "unhealthy": unhealthy or {}, **fields}}


class RecordingRuntime:
    """The Python side of ``UpstreamRuntime``: targets, health, and a log of
    every ``set_target_health`` call."""

    def __init__(self, spec: Upstream, checks_on: bool = True):
        self.name = spec.name
        self.spec = spec
        self.targets = spec.targets
        self.healthchecks_on = checks_on
        self.states = [HEALTHY if checks_on else HEALTHCHECKS_OFF] * len(spec.targets)
        self.calls: list[tuple[int, bool, str]] = []  # (index, healthy, "dns" or "")
        self.reasons: list[str] = []  # what the transition is logged with

    def set_target_health(self, index: int, healthy: bool, reason: str = "",
                          dns: bool = False) -> None:
        self.calls.append((index, healthy, "dns" if dns else ""))
        self.reasons.append(reason)
        if dns:
            self.states[index] = "DNS_ERROR"
        else:
            self.states[index] = HEALTHY if healthy else UNHEALTHY

    def target_health(self) -> list[dict]:
        return [{"target": t.target, "weight": t.weight, "health": state}
                for t, state in zip(self.targets, self.states, strict=True)]


class ProbeTarget:
    """A loopback server that answers probes as told and records them."""

    def __init__(self, status: int = 200, raw: bytes | None = None, silent: bool = False,
                 delay: float = 0.0):
        self.status = status
        self.raw = raw  # sent instead of a status line when set
        self.silent = silent  # accept, read, never answer
        self.delay = delay
        self.requests: list[bytes] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.port = 0
        self.ports: list[int] = []
        self.handlers: set[asyncio.Task] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handlers.add(asyncio.current_task())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head)
            if self.silent:
                await asyncio.sleep(3600)
            await asyncio.sleep(self.delay)
            writer.write(self.raw if self.raw is not None
                         else b"HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n" % self.status)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.in_flight -= 1
            writer.close()


@contextlib.asynccontextmanager
async def serving(target: ProbeTarget, listeners: int = 1,
                  tls: ssl.SSLContext | None = None) -> AsyncIterator[ProbeTarget]:
    """Serve ``target`` on ``listeners`` loopback ports (``target.ports``)."""
    servers = [await asyncio.start_server(target.handle, "127.0.0.1", 0, ssl=tls)
               for _ in range(listeners)]
    target.ports = [server.sockets[0].getsockname()[1] for server in servers]
    target.port = target.ports[0]
    try:
        yield target
    finally:
        for server in servers:
            server.close()
        # Handlers parked in a sleep must not outlive the test's loop.
        for task in target.handlers:
            task.cancel()
        await asyncio.gather(*target.handlers, return_exceptions=True)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


# --------------------------------------------------------------------------- end to end


class Backend(UpstreamServer):
    """An upstream target that answers with its name. ``health_status`` is
    what its ``/status`` probe path answers and ``delay`` how long every
    answer waits; both may change while it runs."""

    def __init__(self, name: str, delay: float = 0.0, status: int = 200):
        super().__init__(self.answer)
        self.name = name
        self.delay = delay
        self.status = status  # of proxied requests
        self.health_status = 200

    async def answer(self, req, writer: asyncio.StreamWriter) -> None:
        if req.target == PROBE_PATH:
            writer.write(b"HTTP/1.1 %d Probe\r\nContent-Length: 0\r\n\r\n" % self.health_status)
            return
        if self.delay:
            await asyncio.sleep(self.delay)
        body = orjson.dumps({"backend": self.name, "method": req.method})
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (self.status, len(body), body))

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def proxied(self) -> int:
        """Requests it got other than probes."""
        return sum(1 for req in self.requests if req.target != PROBE_PATH)


PROBE_PATH = "/status"


@contextlib.contextmanager
def backends(*names: str, **fields) -> Iterator[list[Backend]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(Backend(name, **fields)) for name in names]


def balanced_doc(targets: list, name: str = "pool", routes: list | None = None,
                 **upstream_fields) -> dict:
    """One upstream over ``targets`` (Backends or target dicts), one service
    using it, one catch-all route."""
    entries = [{"target": t.target} if isinstance(t, Backend) else t for t in targets]
    return {
        "_format_version": "3.0",
        "upstreams": [{"name": name, "targets": entries, **upstream_fields}],
        "services": [{"name": f"{name}-svc", "host": name, "port": 80, "protocol": "http",
                      "routes": routes or [{"name": f"{name}-all", "paths": ["/"]}]}],
    }


def fast_active_checks(**unhealthy) -> dict:
    """Active checks every 0.1 s on /status: one success brings a target
    back, one failure of the given kinds takes it out."""
    return {"active": {"http_path": PROBE_PATH, "timeout": 0.5,
                       "healthy": {"interval": 0.1, "successes": 1},
                       "unhealthy": {"interval": 0.1, **unhealthy}}}


class Client:
    """One keep-alive client connection to the gateway (reopened when the
    gateway closes it)."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.port = port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str = "GET", path: str = "/", body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.getheader("connection", "").lower() == "close":
            self.close()
        return response.status, orjson.loads(data) if data else {}

    def backend(self, path: str = "/", headers: dict | None = None) -> str:
        status, body = self.request("GET", path, headers=headers)
        assert status == 200, (status, body)
        return body["backend"]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def wait_until(check, timeout: float = 5.0, interval: float = 0.05):
    """Poll ``check()`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def target_health(gw: GatewayProcess, upstream: str = "pool") -> dict[str, str]:
    status, _, body = gw.admin("GET", f"/upstreams/{upstream}/health")
    assert status == 200, body
    return {entry["target"]: entry["health"] for entry in orjson.loads(body)["data"]}


class Load:
    """Client threads, each on its own keep-alive connection, sending
    requests until stopped; every outcome is kept as (method, status, backend)."""

    def __init__(self, port: int, methods: tuple[str, ...] = ("GET", "GET", "GET")):
        self.port = port
        self.stop = threading.Event()
        self.outcomes: list[tuple[str, int, str]] = []
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self.run, args=(method,), daemon=True)
                        for method in methods]

    def run(self, method: str) -> None:
        client = Client(self.port)
        body = b'{"prompt": "hello"}' if method == "POST" else None
        while not self.stop.is_set():
            try:
                status, answer = client.request(method, "/", body=body)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.errors.append(exc)
                continue
            self.outcomes.append((method, status, answer.get("backend", "")))
        client.close()

    def wait_for(self, more: int, timeout: float = 20.0) -> None:
        """Wait until ``more`` further requests have been answered."""
        target = len(self.outcomes) + more
        deadline = time.monotonic() + timeout
        while len(self.outcomes) < target and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.outcomes) >= target, "the load stalled"

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


def self_signed_tls(directory) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for localhost."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context
