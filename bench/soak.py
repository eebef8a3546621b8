"""A bounded soak: steady load through fastgw while its config is reloaded and
its upstream targets are killed and restarted; then client-connection batches.

    .venv/bin/python bench/soak.py                       # 10 minutes (make soak)
    .venv/bin/python bench/soak.py --duration 3600       # longer
    .venv/bin/python bench/soak.py --duration 60 --reload-every 10 --kill-every 20

Load: --connections keep-alive clients sending GETs at --rate requests per
second in all, paced; by default half of saturation, measured first by the same
clients sending as fast as they can for 5 s (on a 2-core machine that is what
the gateway, its upstreams and this client manage together). Every --reload-every seconds the config
file changes and the supervisor gets SIGHUP; every --kill-every seconds one of
the two upstream targets is SIGKILLed and started again --down seconds later.
Then --batches opens that many short client connections in turn (one request
each) and reports the worker's RSS over each batch.

It prints, and checks: failed requests (all are idempotent GETs: zero
allowed), the workers' RSS growth after warm-up (under 5%; the warm-up
lasts until the first killed target is back), and their open
file descriptors (no growth). Everything listens on 127.0.0.1 and stops by
itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
REQUEST = b"GET /soak HTTP/1.1\r\nHost: soak\r\n\r\n"


# ------------------------------------------------------------------ the upstream target


class _Target(asyncio.Protocol):
    """Answers every request with 200 "ok" (requests are GETs without bodies)."""

    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        self.buffer += data
        count = self.buffer.count(b"\r\n\r\n")
        if count:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4:]
            self.transport.write(ANSWER * count)


def serve(port: int) -> None:
    import uvloop

    async def main():
        server = await asyncio.get_running_loop().create_server(
            _Target, "127.0.0.1", port, reuse_address=True)
        await server.serve_forever()

    uvloop.run(main())


class TargetProcess:
    def __init__(self, port: int):
        self.port = port
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(self.port)])
        _wait_port(self.port)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


# ------------------------------------------------------------------ helpers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _workers(pid: int) -> list[int]:
    """The supervisor's worker processes (not its other children, such as
    multiprocessing's resource tracker)."""
    from fastgw.testing import children_of

    return children_of(pid, b"fastgw.worker")


def config(ports: list[int], generation: int) -> dict:
    checks = {"active": {"type": "http", "http_path": "/health", "timeout": 1,
                         "healthy": {"interval": 1, "successes": 1},
                         "unhealthy": {"interval": 1, "tcp_failures": 1, "http_failures": 1}},
              "passive": {"unhealthy": {"tcp_failures": 1}}}
    return {
        "_format_version": "3.0",
        "upstreams": [{"name": "soak-targets", "healthchecks": checks,
                       "targets": [{"target": f"127.0.0.1:{p}"} for p in ports]}],
        "services": [{"name": "soak", "host": "soak-targets", "port": 80, "protocol": "http",
                      "retries": 5, "routes": [
                          {"name": "soak", "paths": ["/soak"], "strip_path": False},
                          # A route that changes on each reload, so every reload swaps.
                          {"name": f"generation-{generation}", "paths": [f"/g{generation}"]},
                      ]}],
    }


# ------------------------------------------------------------------ load


@dataclass
class Load:
    rate: float
    connections: int
    port: int
    ok: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    stopping: bool = False

    async def client(self, index: int) -> None:
        # rate 0: as fast as the answers come (to measure saturation).
        interval = self.connections / self.rate if self.rate else 0.0
        next_at = time.monotonic() + interval * index / self.connections
        reader = writer = None
        while not self.stopping:
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            next_at += interval
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(REQUEST)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await asyncio.wait_for(reader.readexactly(length), 10)
                if head.startswith(b"HTTP/1.1 200 ") and body == b"ok":
                    self.ok += 1
                else:
                    self._fail(head.split(b"\r\n")[0].decode(errors="replace"))
                if b"connection: close" in head.lower():
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
                self._fail(f"{type(exc).__name__}: {exc}")
                if writer is not None:
                    writer.close()
                writer = None
        if writer is not None:
            writer.close()

    def _fail(self, what: str) -> None:
        self.failed += 1
        if len(self.failures) < 10:
            self.failures.append(what)


async def _connection_batch(port: int, count: int, concurrency: int = 32) -> int:
    """``count`` connections, one request each, closed with a reset (no
    TIME_WAIT left behind on loopback ports); returns the failures."""
    failures = 0
    todo = iter(range(count))
    linger = struct.pack("ii", 1, 0)

    async def worker() -> None:
        nonlocal failures
        for _ in todo:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                           linger)
                writer.write(REQUEST)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                await reader.readexactly(2)
                if not head.startswith(b"HTTP/1.1 200 "):
                    failures += 1
                writer.close()
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                failures += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


# ------------------------------------------------------------------ the soak


@dataclass
class SoakResult:
    requests: int
    failed: int
    failures: list[str]
    rss_warm_kb: int
    rss_end_kb: int
    fds_warm: int
    fds_end: int
    reloads: int
    kills: int
    batches: list[tuple[int, int, int]]  # (connections, RSS before kB, RSS after kB)
    batch_failures: int
    rate: float
    rss_samples: list[int]  # the workers' RSS (kB) at 20 moments of the load

    @property
    def rss_growth(self) -> float:
        return (self.rss_end_kb - self.rss_warm_kb) / self.rss_warm_kb if self.rss_warm_kb else 0.0

    def report(self) -> str:
        lines = [
            f"requests: {self.requests} at {self.rate:.0f}/s, failed: {self.failed} "
            f"{self.failures or ''}",
            f"reloads: {self.reloads}, targets killed and restarted: {self.kills}",
            f"workers' RSS after warm-up {self.rss_warm_kb / 1024:.1f} MB, at the end "
            f"{self.rss_end_kb / 1024:.1f} MB: growth {self.rss_growth * 100:+.2f}%",
            f"open file descriptors after warm-up {self.fds_warm}, at the end {self.fds_end}",
            "RSS over the load (MB): "
            + " ".join(f"{kb / 1024:.1f}" for kb in self.rss_samples),
        ]
        for count, before, after in self.batches:
            lines.append(f"batch of {count} connections: worker RSS {before / 1024:.1f} -> "
                         f"{after / 1024:.1f} MB ({(after - before) / 1024:+.2f} MB)")
        if self.batches:
            lines.append(f"connection batch failures: {self.batch_failures}")
        return "\n".join(lines)

    def problems(self) -> list[str]:
        found = []
        if self.failed:
            found.append(f"{self.failed} failed requests")
        if self.rss_growth >= 0.05:
            found.append(f"RSS grew {self.rss_growth * 100:.1f}% after warm-up")
        if self.fds_end > self.fds_warm:
            found.append(f"file descriptors grew from {self.fds_warm} to {self.fds_end}")
        if self.batch_failures:
            found.append(f"{self.batch_failures} failed connections in the batches")
        if len(self.batches) > 1:
            _, before, after = self.batches[-1]
            if before and (after - before) / before >= 0.05:
                found.append("RSS grew 5% or more over the last connection batch")
        return found


def saturation(port: int, connections: int, seconds: float = 5.0) -> float:
    """Requests per second the clients get through when they do not wait."""
    probe = Load(0, connections, port)

    async def burst() -> None:
        clients = [asyncio.ensure_future(probe.client(i)) for i in range(connections)]
        await asyncio.sleep(seconds)
        probe.stopping = True
        await asyncio.gather(*clients)

    asyncio.run(burst())
    if probe.failed:
        raise RuntimeError(f"the saturation run failed requests: {probe.failures}")
    return probe.ok / seconds


def run(duration: float = 600, rate: float = 0, connections: int = 32,
        reload_every: float = 30, kill_every: float = 120, down: float = 5,
        batches: tuple[int, ...] = (60000, 40000), workers: int = 1) -> SoakResult:
    from fastgw.testing import GatewayProcess

    ports = [_free_port(), _free_port()]
    targets = [TargetProcess(p) for p in ports]
    for target in targets:
        target.start()
    generation = 0
    gw = GatewayProcess(config(ports, generation), workers=workers)
    try:
        gw.start()
        assert gw.proc is not None
        pids = _workers(gw.proc.pid)
        # Warm-up: a fifth of the run (at most a minute), and at least until
        # the first target has been lost and is back: that first failover runs
        # code (retries, connection errors, health transitions) for the first
        # time, and what it allocates once is not growth.
        warm_up = min(max(duration * 0.2, 5.0), 60.0)
        if kill_every + down + 5 < duration / 2:
            warm_up = max(warm_up, kill_every + down + 5)
        if not rate:
            rate = saturation(gw.port, connections) / 2
        load = Load(rate, connections, gw.port)
        reloads = kills = 0
        rss_warm = fds_warm = 0
        rss_samples: list[int] = []

        def sample() -> tuple[int, int]:
            return (sum(_rss_kb(p) for p in pids),
                    sum(_fds(p) for p in pids) + _fds(gw.proc.pid))

        async def drive() -> None:
            nonlocal generation, reloads, kills, rss_warm, fds_warm
            clients = [asyncio.ensure_future(load.client(i)) for i in range(connections)]
            started = time.monotonic()
            next_reload, next_kill = reload_every, kill_every
            restart_at: tuple[float, TargetProcess] | None = None
            warmed = False
            next_sample = 0.0
            while (elapsed := time.monotonic() - started) < duration:
                await asyncio.sleep(0.2)
                if not warmed and elapsed >= warm_up:
                    rss_warm, fds_warm = sample()
                    warmed = True
                if elapsed >= next_sample:
                    rss_samples.append(sample()[0])
                    next_sample += max(duration / 20, 1.0)
                if elapsed >= next_reload:
                    generation += 1
                    gw.write_config(config(ports, generation))
                    gw.signal(signal.SIGHUP)
                    reloads += 1
                    next_reload += reload_every
                if elapsed >= next_kill:
                    victim = targets[kills % len(targets)]
                    victim.kill()
                    restart_at = (elapsed + down, victim)
                    kills += 1
                    next_kill += kill_every
                if restart_at is not None and elapsed >= restart_at[0]:
                    await asyncio.get_running_loop().run_in_executor(None, restart_at[1].start)
                    restart_at = None
            if restart_at is not None:
                restart_at[1].start()
            load.stopping = True
            await asyncio.gather(*clients)

        asyncio.run(drive())
        time.sleep(1.0)  # let the last exchanges settle before the final sample
        rss_end, fds_end = sample()
        batch_rows = []
        batch_failures = 0
        for count in batches:
            before = _rss_kb(pids[0])
            batch_failures += asyncio.run(_connection_batch(gw.port, count))
            time.sleep(0.5)
            batch_rows.append((count, before, _rss_kb(pids[0])))
        return SoakResult(load.ok + load.failed, load.failed, load.failures, rss_warm, rss_end,
                          fds_warm, fds_end, reloads, kills, batch_rows, batch_failures, rate,
                          rss_samples)
    finally:
        gw.stop()
        gw.dir.cleanup()
        for target in targets:
            target.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (600)")
    parser.add_argument("--rate", type=float, default=0,
                        help="requests per second (default: half of saturation)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--reload-every", type=float, default=30)
    parser.add_argument("--kill-every", type=float, default=120)
    parser.add_argument("--down", type=float, default=5, help="seconds a killed target stays down")
    parser.add_argument("--batches", default="60000,40000",
                        help="client connection batches after the load (comma-separated; '' for none)")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    batches = tuple(int(b) for b in args.batches.split(",") if b)
    result = run(args.duration, args.rate, args.connections, args.reload_every,
                 args.kill_every, args.down, batches)
    print(result.report())
    problems = result.problems()
    print("PASS" if not problems else "FAIL: " + "; ".join(problems))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
