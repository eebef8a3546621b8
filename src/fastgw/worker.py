"""One worker process: a uvloop event loop serving the proxy port.

Every worker binds the same address with SO_REUSEPORT, so the kernel spreads
connections across them. The supervisor talks to the worker over a socket
pair (``fastgw.control``): the first message carries the config, later ones
swap it, ask for stats, or start a drain. SIGTERM drains too.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import inspect
import itertools
import logging
import os
import signal
import socket
import ssl
import sys
import tracemalloc
from collections.abc import Awaitable

import uvloop

from fastgw._core.gateway import Gateway
from fastgw.ai.metrics import snapshot as ai_metrics_snapshot
from fastgw.config.checks import listen_address
from fastgw.config.loader import ConfigError, parse_config, with_overrides
from fastgw.config.model import Config
from fastgw.control import ChannelClosed, read_message, write_message
from fastgw.plugins import loaded_handlers
from fastgw.runtime import apply_config_off_loop, new_gateway
from fastgw.tls import ServerTLS, server_tls
from fastgw.upstreams import UpstreamSupervisor

log = logging.getLogger("fastgw.worker")

# PERF: a deep accept backlog keeps connection bursts from a load test out of
# SYN retries; the kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 4096


def bind_reuseport(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


class StallMeter:
    """The longest time the event loop went without running a ready callback
    while it was on: a 1 ms ticker's worst lateness (the proxy's own stall,
    reported with each config swap)."""

    TICK = 0.001

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.longest = 0.0
        self.expected = loop.time() + self.TICK
        self.handle = loop.call_at(self.expected, self._tick)

    def _tick(self) -> None:
        now = self.loop.time()
        self.longest = max(self.longest, now - self.expected)
        self.expected = now + self.TICK
        self.handle = self.loop.call_at(self.expected, self._tick)

    @property
    def longest_ms(self) -> float:
        return round(max(self.longest, self.loop.time() - self.expected) * 1000, 2)

    def stop(self) -> None:
        self.handle.cancel()


# How often a swap's threads give the GIL back to the event loop (seconds).
SWAP_SWITCH_INTERVAL = 0.0005


def settle_heap() -> None:
    """Move what exists now (modules, the config, its runtime objects) out of
    the collector's sight.

    PERF: the cyclic collector otherwise walks every long-lived object again
    and again while requests allocate; after a freeze it sees only what
    requests make.
    """
    gc.collect()
    gc.freeze()


def config_of(message: dict) -> Config:
    """The config a control message carries, with the same flag and
    environment overrides of ``_gateway`` the supervisor applied."""
    return with_overrides(parse_config(message["doc"]), message.get("overrides") or {})


_snapshots = itertools.count(1)


def dump_memory_snapshot() -> None:
    """Write this worker's tracemalloc snapshot to
    ``$TMPDIR/fastgw-worker-<pid>-<n>.tracemalloc`` (load it with
    ``tracemalloc.Snapshot.load`` and compare two with ``compare_to``)."""
    import tempfile

    path = os.path.join(tempfile.gettempdir(),
                        f"fastgw-worker-{os.getpid()}-{next(_snapshots)}.tracemalloc")
    # Beside it, the objects the collector tracks by type (compiled classes
    # show up there where tracemalloc can only name the event loop), frozen
    # ones included and uncollected: what a freeze keeps shows up.
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    gc.freeze()
    counts["(frozen before this dump)"] = frozen
    tracemalloc.take_snapshot().dump(path)
    with open(path + ".types", "w") as out:
        out.writelines(f"{count} {name}\n" for name, count in counts.most_common(200))
    log.warning("tracemalloc snapshot written to %s", path)


class Worker:
    def __init__(self, worker_id: int, listen: str, control: socket.socket):
        self.worker_id = worker_id
        self.listen = listen
        self.control = control
        self.loop = asyncio.get_running_loop()
        # The compiled Gateway (typed by _core/gateway.pyi), set by start().
        self.gateway: Gateway | None = None
        self.servers: list = []
        self.tls: ServerTLS | None = None
        self.config: Config | None = None
        # Health checks and DNS, once started.
        self.upstreams: UpstreamSupervisor | None = None
        self.stopping = asyncio.Event()
        self.initialized: set[type] = set()  # plugin classes whose init_worker ran

    async def run(self) -> int:
        reader, writer = await asyncio.open_connection(sock=self.control)
        first = await read_message(reader)
        try:
            config = config_of(first)
        except ConfigError as exc:
            await write_message(writer, {"ok": False, "errors": exc.errors})
            return 1
        await self.start(config)
        await write_message(writer, {"ok": True, "pid": os.getpid()})
        self.loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        self.loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        # The supervisor owns SIGHUP; a worker ignores it.
        self.loop.add_signal_handler(signal.SIGHUP, lambda: None)
        if tracemalloc.is_tracing():
            # A memory diagnosis (PYTHONTRACEMALLOC=N in the environment):
            # SIGUSR2 writes a snapshot to compare with a later one.
            self.loop.add_signal_handler(signal.SIGUSR2, dump_memory_snapshot)
        serve_control = asyncio.ensure_future(self.serve_control(reader, writer))
        await self.stopping.wait()
        await self.drain()
        serve_control.cancel()
        return 0

    async def start(self, config: Config) -> None:
        self.config = config
        gw = new_gateway(self.loop, config)
        self.gateway = gw
        self.tls = server_tls(config)
        tls = self.tls.context if self.tls is not None else None
        tls_settings = config.gateway.tls
        tls_listen = tls_settings.listen if tls is not None and tls_settings is not None else None
        # Without its own address, TLS is spoken on the main listener.
        main_tls = tls if tls_listen is None else None
        self.servers = [await self.serve(self.listen, main_tls)]
        if tls_listen is not None:
            self.servers.append(await self.serve(tls_listen, tls))
        gw.start_sweeper()
        settle_heap()
        upstreams = UpstreamSupervisor(gw, self.loop)
        self.upstreams = upstreams
        upstreams.sync(config)
        self.init_plugins()

    async def serve(self, listen: str, tls: ssl.SSLContext | None):
        host, port = listen_address(listen, 8000)
        sock = bind_reuseport(host, port)
        scheme = "https" if tls is not None else "http"
        assert self.gateway is not None  # start() made it before serving
        return await self.loop.create_server(
            self.gateway.protocol_factory(scheme), sock=sock, ssl=tls, backlog=LISTEN_BACKLOG
        )

    async def serve_control(self, reader, writer) -> None:
        while True:
            try:
                msg = await read_message(reader)
            except ChannelClosed:
                # The supervisor is gone: nobody can stop us cleanly later.
                self.stopping.set()
                return
            answer = self.handle(msg)
            if inspect.isawaitable(answer):
                answer = await answer
            await write_message(writer, answer)

    def _started_upstreams(self) -> UpstreamSupervisor:
        # Control messages arrive only after start() has created it.
        assert self.upstreams is not None
        return self.upstreams

    def handle(self, msg: dict) -> dict | Awaitable[dict]:
        op = msg.get("op")
        if op == "config":
            return self.swap(msg)
        if op == "stats":
            gw = self.gateway
            assert gw is not None  # control messages arrive once start() made it
            stats = gw.stats()
            stats["pid"] = os.getpid()
            stats["worker"] = self.worker_id
            stats["config_hash"] = self.config.hash if self.config else None
            stats["plugin_errors"] = gw.plugin_runner.errors
            for plugin in loaded_handlers():
                stats.update(plugin.worker_stats(bool(msg.get("metrics"))))
            if msg.get("metrics"):
                # The AI plugins' counters (LLM calls, limits, MCP tools), per model,
                # provider or tool: for /metrics only.
                stats["ai"] = ai_metrics_snapshot()
                stats["connection_states"] = gw.connection_states()
                stats["metrics"] = [cell.snapshot() for cell in gw.metrics_cells.values()]
                stats["metrics_export"] = gw.metrics_export
                if gw.metrics_export.get("upstream_health_metrics"):
                    stats["upstream_health"] = self._started_upstreams().health()
            return {"ok": True, "stats": stats}
        if op == "health":
            return {"ok": True, "worker": self.worker_id, "pid": os.getpid(),
                    "upstreams": self._started_upstreams().health(msg.get("upstream"))}
        if op == "cache_purge":
            return self.purge_cache(msg.get("key"), bool(msg.get("redis")))
        if op == "drain":
            self.stopping.set()
            return {"ok": True}
        return {"ok": False, "errors": [f"unknown op {op!r}"]}

    async def swap(self, msg: dict) -> dict:
        """A new config, parsed and built off the event loop so the proxy
        keeps answering: the threads hand the GIL back to the loop every
        SWAP_SWITCH_INTERVAL instead of Python's 5 ms."""
        stall = StallMeter(self.loop)
        previous = sys.getswitchinterval()
        sys.setswitchinterval(SWAP_SWITCH_INTERVAL)
        # The collector runs with the GIL held: a full pass over the objects a
        # parse makes would stall the loop for tens of milliseconds at a time.
        gc.disable()
        try:
            try:
                config = await self.loop.run_in_executor(None, config_of, msg)
            except ConfigError as exc:
                return {"ok": False, "errors": exc.errors}
            assert self.gateway is not None  # swaps arrive once start() made it
            if self.tls is not None:
                # Certificates follow the config (the listener itself does not).
                await self.loop.run_in_executor(None, self.tls.update, config)
            await apply_config_off_loop(self.gateway, config, self.loop)
            previous_config = [self.config]
            self.config = config
            self._started_upstreams().sync(config)
            self.init_plugins()
            # Freeing the old config's objects takes milliseconds too.
            await self.loop.run_in_executor(None, previous_config.clear)
            # With the collector off, all the swap made is in the youngest
            # generation, and so is the garbage requests made meanwhile:
            # collect it before freezing, or every reload would keep that
            # garbage for good (a 40-minute soak grew 20% that way). It costs
            # about 11 ms of stall at 10,000 routes, 1 ms at 1,000.
            gc.collect(0)
            gc.freeze()
            return {"ok": True, "hash": config.hash, "stall_ms": stall.longest_ms}
        finally:
            stall.stop()
            gc.enable()
            sys.setswitchinterval(previous)

    def init_plugins(self) -> None:
        """Kong's init_worker, once for each plugin a config brings in."""
        for plugin in loaded_handlers():
            if plugin not in self.initialized:
                self.initialized.add(plugin)
                plugin.init_worker()

    async def purge_cache(self, key: str | None, redis: bool) -> dict:
        """Cache entries of this worker's plugins (and of Redis, when asked)."""
        removed = 0
        for plugin in loaded_handlers():
            count = await plugin.purge(key, redis)
            if count is not None:
                removed += count
        return {"ok": True, "removed": removed}

    async def drain(self) -> None:
        for server in self.servers:
            server.close()
        if self.upstreams is not None:
            # No new probes or lookups while in-flight requests finish.
            await self.upstreams.stop()
        if self.gateway is not None:
            assert self.config is not None  # start() sets both
            await self.gateway.drain(self.config.gateway.drain_timeout)
            self.gateway.stop_sweeper()
        # Plugins finish their background work (queued log entries) before
        # the process exits.
        timeout = self.config.gateway.drain_timeout if self.config is not None else 5.0
        for plugin in loaded_handlers():
            await plugin.shutdown(timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fastgw-worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--id", type=int, default=0)
    parser.add_argument("--listen", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("FASTGW_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s worker[{args.id}] %(levelname)s %(message)s",
    )
    control = socket.socket(fileno=args.fd)

    async def amain() -> int:
        return await Worker(args.id, args.listen, control).run()

    # FASTGW_CPROFILE=path: the worker runs under cProfile and writes its
    # stats to path.<pid> when it stops (bench/profile_worker.py).
    profile_to = os.environ.get("FASTGW_CPROFILE")
    profiler = None
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        return uvloop.run(amain())
    except KeyboardInterrupt:
        return 0
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(f"{profile_to}.{os.getpid()}")


if __name__ == "__main__":
    sys.exit(main())
