"""The supervisor: starts the workers, swaps configs, serves the admin API.

It never touches proxied traffic. Workers are separate processes started
from a clean interpreter (not forked from this one, which runs its own event
loop), each holding one end of a socket pair for control messages. A worker
that dies is started again; SIGTERM drains every worker before exiting;
SIGHUP reloads the config file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import xxhash

from fastgw import shm
from fastgw.config.loader import ConfigError, load_config, parse_config, with_overrides
from fastgw.config.model import Config
from fastgw.control import ChannelClosed, read_message, write_message

log = logging.getLogger("fastgw")


class WorkerHandle:
    def __init__(self, worker_id: int):
        self.worker_id = worker_id
        self.process: subprocess.Popen | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.lock = asyncio.Lock()
        self.ready = False

    async def request(self, message: dict, timeout: float = 10.0) -> dict:
        async with self.lock:
            if self.writer is None:
                raise ChannelClosed("worker not running")
            assert self.reader is not None  # set together with the writer
            await write_message(self.writer, message)
            return await asyncio.wait_for(read_message(self.reader), timeout)


def _shown(value: object) -> str:
    return "unset" if value is None else str(value)


class Supervisor:
    def __init__(self, config: Config, config_path: str | None, listen: str,
                 admin_listen: str | None, workers: int, overrides: dict | None = None):
        self.config = config
        self.config_path = config_path
        self.listen = listen
        self.admin_listen = admin_listen
        self.worker_count = workers
        self.overrides = overrides or {}
        self.workers = [WorkerHandle(i) for i in range(workers)]
        self.stopping = False
        self.started_at = time.time()
        self.reloads = 0
        self.previous_source: dict | None = None  # the config before the last swap
        self.last_swap_stall_ms = 0.0  # the longest event-loop stall of a worker in the last swap
        self.swap_lock = asyncio.Lock()
        self.admin_server = None
        self.status_server = None
        self.config_watch: asyncio.Future | None = None
        self.segments: dict = {}
        # The workers' rate-limit table (a SharedCounterTable), read for the admin API.
        self.node_counters: Any = None

    # -- workers ------------------------------------------------------------

    async def spawn(self, handle: WorkerHandle) -> None:
        parent, child = socket.socketpair()
        cmd = [sys.executable, "-m", "fastgw.worker", "--fd", str(child.fileno()),
               "--id", str(handle.worker_id), "--listen", self.listen]
        env = dict(os.environ)
        env.update(shm.environment(self.segments))
        handle.process = subprocess.Popen(cmd, pass_fds=(child.fileno(),), env=env)
        child.close()
        handle.reader, handle.writer = await asyncio.open_connection(sock=parent)
        await write_message(handle.writer, {"op": "config", "doc": self.config.source,
                                            "overrides": self.overrides})
        answer = await asyncio.wait_for(read_message(handle.reader), 60)
        if not answer.get("ok"):
            raise RuntimeError(f"worker {handle.worker_id} refused the config: {answer}")
        handle.ready = True

    async def start(self) -> None:
        self.segments = shm.create_segments()
        await asyncio.gather(*(self.spawn(h) for h in self.workers))
        if self.admin_listen:
            from fastgw.admin.server import start_admin

            self.admin_server = await start_admin(self, self.admin_listen)
        if self.config.gateway.status_listen:
            from fastgw.admin.server import start_admin

            self.status_server = await start_admin(self, self.config.gateway.status_listen,
                                                   status_only=True)
        self.config_watch = asyncio.ensure_future(self.watch_config_file())
        log.info("fastgw listening on %s with %d worker(s); admin on %s",
                 self.listen, self.worker_count, self.admin_listen or "off")

    async def watch(self) -> None:
        """Restart workers that exit while we are not stopping."""
        while not self.stopping:
            await asyncio.sleep(0.2)
            for handle in self.workers:
                proc = handle.process
                if proc is not None and proc.poll() is not None and not self.stopping:
                    log.error("worker %d exited with %s; starting it again",
                              handle.worker_id, proc.returncode)
                    handle.ready = False
                    if handle.writer is not None:
                        handle.writer.close()
                        handle.writer = None
                    try:
                        await self.spawn(handle)
                    except Exception:
                        log.exception("could not restart worker %d", handle.worker_id)

    async def stop(self) -> None:
        """Drain: workers stop accepting, finish in-flight requests, exit."""
        self.stopping = True
        for server in (self.admin_server, self.status_server):
            if server is not None:
                server.close()
        if self.config_watch is not None:
            self.config_watch.cancel()
        for handle in self.workers:
            if handle.process is not None and handle.process.poll() is None:
                handle.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.config.gateway.drain_timeout + 5
        for handle in self.workers:
            proc = handle.process
            if proc is None:
                continue
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if self.node_counters is not None:
            self.node_counters.close()  # a view of the segment: let go before it goes
            self.node_counters = None
        shm.release(self.segments)
        self.segments = {}

    # -- config -------------------------------------------------------------

    def check(self, doc: dict) -> tuple[Config | None, list[str]]:
        """``doc`` as the config it would become here, or the errors that
        would refuse it (a reload that needs a restart included)."""
        try:
            config = parse_config(doc)
        except ConfigError as exc:
            return None, exc.errors
        config = with_overrides(config, self.overrides)
        refused = self.restart_only_changes(config)
        return (None, refused) if refused else (config, [])

    async def revert(self, expected_hash: str) -> tuple[bool, list[str]]:
        """Go back to the config before the last swap, if the running one is
        still ``expected_hash`` (what ``fastgw push`` undoes after a fleet
        refused a config halfway)."""
        if self.config.hash != expected_hash:
            return False, [f"hash: the running config is {self.config.hash}, not "
                           f"{expected_hash}; nothing reverted"]
        if self.previous_source is None:
            return False, ["hash: no earlier config to go back to"]
        return await self.swap(self.previous_source)

    async def swap(self, doc: dict) -> tuple[bool, list[str]]:
        """Validate ``doc`` and give it to every worker; nothing changes on error."""
        async with self.swap_lock:
            config, refused = self.check(doc)
            if config is None:
                if refused:
                    log.error("config swap refused: %s", refused)
                return False, refused
            results = await asyncio.gather(
                *(h.request({"op": "config", "doc": config.source, "overrides": self.overrides})
                  for h in self.workers),
                return_exceptions=True,
            )
            errors = []
            for handle, result in zip(self.workers, results, strict=True):
                if isinstance(result, BaseException):
                    errors.append(f"worker {handle.worker_id}: {result!r}")
                elif not result.get("ok"):
                    errors.extend(result.get("errors", []))
            if errors:
                log.error("config swap failed on a worker: %s", errors)
                return False, errors
            self.previous_source = self.config.source
            self.config = config
            self.reloads += 1
            self.last_swap_stall_ms = max((r.get("stall_ms") or 0.0) for r in results
                                          if isinstance(r, dict))
            log.info("config swapped (hash %s; longest proxy stall %.1f ms)", config.hash,
                     self.last_swap_stall_ms)
            return True, []

    def restart_only_changes(self, config: Config) -> list[str]:
        """Errors for the settings a running gateway cannot change: the
        sockets and processes it started with. A reload that changes them is
        refused (naming each), never accepted with the change ignored."""
        running, new = self.config.gateway, config.gateway
        errors = []
        for name, before, after in (
            ("listen", self.listen, new.listen),
            ("admin_listen", self.admin_listen, new.admin_listen),
            ("workers", self.worker_count, new.workers or os.cpu_count() or 1),
            ("tls", running.tls, new.tls),
            ("status_listen", running.status_listen, new.status_listen),
        ):
            if before != after:
                errors.append(f"_gateway.{name}: changed from {_shown(before)} to "
                              f"{_shown(after)}, which needs a restart; the running config stays")
        return errors

    async def watch_config_file(self) -> None:
        """``_gateway.watch_config``: reload the config file when its bytes
        change. A ConfigMap update swaps the file atomically (a symlink), so
        a half-written file is never read; a file that does not load is
        refused once and logged, and the running config stays."""
        seen = self._config_file_digest()
        while not self.stopping:
            interval = self.config.gateway.watch_config
            await asyncio.sleep(interval or 1.0)
            if not interval or not self.config_path:
                continue
            digest = self._config_file_digest()
            if digest is not None and digest != seen:
                seen = digest
                log.info("config file %s changed: reloading", self.config_path)
                await self.reload_file()

    def _config_file_digest(self) -> str | None:
        if not self.config_path:
            return None
        try:
            with open(self.config_path, "rb") as file:
                return xxhash.xxh3_64_hexdigest(file.read())
        except OSError:
            return None

    async def reload_file(self) -> None:
        if not self.config_path:
            return
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            log.error("reload refused, the running config stays:\n  %s", "\n  ".join(exc.errors))
            return
        ok, errors = await self.swap(config.source)
        if not ok:
            log.error("reload refused, the running config stays:\n  %s", "\n  ".join(errors))

    # -- status -------------------------------------------------------------

    async def worker_stats(self, metrics: bool = False) -> list[dict]:
        results = await asyncio.gather(
            *(h.request({"op": "stats", "metrics": metrics}, timeout=5)
              for h in self.workers if h.ready),
            return_exceptions=True,
        )
        stats = []
        for r in results:
            if isinstance(r, dict) and r.get("ok"):
                stats.append(r["stats"])
            else:
                log.error("a worker did not answer the stats request: %r", r)
        return stats

    async def purge_cache(self, key: str | None) -> int:
        """proxy-cache entries removed from every worker's memory, and once
        from Redis (deletes there are shared, so one worker does them)."""
        ready = [h for h in self.workers if h.ready]
        results = await asyncio.gather(
            *(h.request({"op": "cache_purge", "key": key, "redis": i == 0}, timeout=10)
              for i, h in enumerate(ready)),
            return_exceptions=True,
        )
        removed = 0
        for r in results:
            if isinstance(r, dict) and r.get("ok"):
                removed += r.get("removed", 0)
            else:
                log.error("a worker did not answer the cache purge: %r", r)
        return removed

    async def worker_health(self, upstream: str | None = None) -> list[dict]:
        """Each answering worker's view of its upstreams' targets (all of
        them, or only ``upstream``'s)."""
        results = await asyncio.gather(
            *(h.request({"op": "health", "upstream": upstream}, timeout=5)
              for h in self.workers if h.ready),
            return_exceptions=True,
        )
        answers = []
        for r in results:
            if isinstance(r, dict) and r.get("ok"):
                answers.append(r)
            else:
                log.error("a worker did not answer the health request: %r", r)
        return answers

    async def ai_budgets(self, consumer: str | None = None) -> list[dict] | None:
        """Budgets spent per consumer (ai-rate-limiting-advanced), read where
        the workers count them; None when ``consumer`` names no consumer."""
        from fastgw._core.ratelimit import SharedCounterTable
        from fastgw.plugins.ai_rate_limiting_advanced.budgets import budget_report

        segment = self.segments.get("ratelimit")
        if self.node_counters is None and segment is not None:
            self.node_counters = SharedCounterTable(capacity=shm.RATELIMIT_SLOTS,
                                                    buffer=segment.buf)
        return await budget_report(self.config, self.node_counters, consumer)

    def ready(self) -> bool:
        """Every worker is up with the config, and the gateway is not stopping."""
        return not self.stopping and all(handle.ready for handle in self.workers)

    async def status(self) -> dict:
        from fastgw import core_status

        stats = await self.worker_stats()
        return {
            "server": {
                "connections_active": sum(s["connections"] for s in stats),
                "total_requests": sum(s["requests"] for s in stats),
                "upstream_connect_failures": sum(s["upstream_connect_failures"] for s in stats),
            },
            "workers": len(stats),
            "workers_configured": self.worker_count,
            "worker_pids": [s["pid"] for s in stats],
            "config_hash": self.config.hash,
            "reloads": self.reloads,
            "compiled_core": core_status()["loaded"],
            "uptime_s": round(time.time() - self.started_at, 3),
            "pid": os.getpid(),
        }


async def run_supervisor(sup: Supervisor) -> int:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(sup.reload_file()))
    try:
        await sup.start()
    except Exception:
        log.exception("start-up failed")
        await sup.stop()
        return 1
    watcher = asyncio.ensure_future(sup.watch())
    await done.wait()
    log.info("draining")
    await sup.stop()
    watcher.cancel()
    return 0
