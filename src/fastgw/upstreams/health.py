"""Active health checks: probes sent to an upstream's targets on a timer.

The rules are Kong's (lua-resty-healthcheck):

* Two timers per upstream. Every ``active.healthy.interval`` seconds the
  targets the balancer sees as healthy are probed; every
  ``active.unhealthy.interval`` seconds the unhealthy ones are. An interval
  of 0 turns that timer off, and the first probe waits one interval.
* A probe is a TCP connect (``type: tcp``), or an ``HTTP/1.0 GET`` of
  ``http_path`` whose status line alone is read (``http``/``https``).
* Outcomes count towards thresholds: a status in ``healthy.http_statuses``
  is a success, one in ``unhealthy.http_statuses`` (or an unreadable status
  line) an HTTP failure, a refused or reset connection a TCP failure, an
  expired ``timeout`` a timeout; any other status counts for nothing. A
  success clears the failure counters and a failure clears the success
  counter. A threshold of 0 disables its kind of event.
* Reaching ``healthy.successes`` puts a target back into rotation; reaching
  any unhealthy threshold takes it out. Healthy targets do not count
  successes and unhealthy ones do not count failures.

Health lives in the worker's compiled ``UpstreamRuntime`` (the balancer picks
only healthy targets); passive checks and DNS failures change it too, so each
round reads the current state rather than trusting the checker's memory.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastgw.config.entities import health_checks
from fastgw.outbound import client_tls

log = logging.getLogger("fastgw.upstreams")

HEALTHY = "HEALTHY"
UNHEALTHY = "UNHEALTHY"
DNS_ERROR = "DNS_ERROR"
HEALTHCHECKS_OFF = "HEALTHCHECKS_OFF"

# A status line is all a probe reads; anything longer is not HTTP.
MAX_STATUS_LINE = 1024
STATUS_LINE = re.compile(rb"^HTTP/\d+\.\d+\s+(\d{3})")


class Outcome(enum.Enum):
    SUCCESS = "success"
    HTTP_FAILURE = "http_failure"
    TCP_FAILURE = "tcp_failure"
    TIMEOUT = "timeout"
    IGNORED = "ignored"  # a status in neither list


# Which unhealthy threshold each failure counts towards.
FAILURE_LIMITS = {
    Outcome.HTTP_FAILURE: "http_failures",
    Outcome.TCP_FAILURE: "tcp_failures",
    Outcome.TIMEOUT: "timeouts",
}


@dataclass(frozen=True, slots=True)
class ActiveSettings:
    """``healthchecks.active`` of one upstream, precomputed once."""

    type: str
    timeout: float
    concurrency: int
    http_path: str
    headers: bytes  # extra header lines, each ending in CRLF
    https_sni: str | None
    verify_certificate: bool
    healthy_interval: float
    unhealthy_interval: float
    healthy_statuses: frozenset[int]
    unhealthy_statuses: frozenset[int]
    successes: int
    http_failures: int
    tcp_failures: int
    timeouts: int

    @classmethod
    def from_healthchecks(cls, healthchecks: Mapping[str, Any]) -> ActiveSettings:
        """The active side of Kong's ``healthchecks``, as the config layer
        parses it (``health_checks``: the schema's defaults, one place)."""
        checks = health_checks(healthchecks)
        healthy, unhealthy = checks.active_healthy, checks.active_unhealthy
        return cls(
            type=checks.type,
            timeout=checks.timeout,
            concurrency=checks.concurrency,
            http_path=checks.http_path,
            headers=b"".join(f"{name}: {value}\r\n".encode("latin-1")
                             for name, values in checks.headers for value in values),
            https_sni=checks.https_sni,
            verify_certificate=checks.https_verify_certificate,
            healthy_interval=healthy.interval,
            unhealthy_interval=unhealthy.interval,
            healthy_statuses=healthy.http_statuses,
            unhealthy_statuses=unhealthy.http_statuses,
            successes=healthy.successes,
            http_failures=unhealthy.http_failures,
            tcp_failures=unhealthy.tcp_failures,
            timeouts=unhealthy.timeouts,
        )

    @property
    def enabled(self) -> bool:
        return self.healthy_interval > 0 or self.unhealthy_interval > 0

    def classify(self, status: int) -> Outcome:
        if status in self.healthy_statuses:
            return Outcome.SUCCESS
        # Status 0 stands for a status line that could not be read (Kong's rule).
        if status in self.unhealthy_statuses or status == 0:
            return Outcome.HTTP_FAILURE
        return Outcome.IGNORED

    def tls_context(self) -> ssl.SSLContext | None:
        if self.type != "https":
            return None
        return client_tls(self.verify_certificate)


class TargetCounter:
    """The success and failure counters of one target (Kong's multi-counter)."""

    __slots__ = ("successes", "http_failures", "tcp_failures", "timeouts")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.successes = self.http_failures = self.tcp_failures = self.timeouts = 0

    def record(self, outcome: Outcome, healthy: bool, settings: ActiveSettings) -> bool | None:
        """Count ``outcome`` for a target now ``healthy`` or not; the new
        health when a threshold is reached, else None."""
        if outcome is Outcome.SUCCESS:
            if healthy or settings.successes == 0:
                return None
            self.http_failures = self.tcp_failures = self.timeouts = 0
            self.successes += 1
            if self.successes >= settings.successes:
                self.reset()
                return True
            return None
        name = FAILURE_LIMITS.get(outcome)
        if name is None:
            return None
        limit = getattr(settings, name)
        if not healthy or limit == 0:
            return None
        self.successes = 0
        count = getattr(self, name) + 1
        setattr(self, name, count)
        if count >= limit:
            self.reset()
            return False
        return None


async def probe(host: str, port: int, host_header: str, settings: ActiveSettings,
                tls: ssl.SSLContext | None = None) -> tuple[Outcome, int | None]:
    """Probe one target once: the outcome and the HTTP status, if one was read."""
    server_hostname = (settings.https_sni or host) if tls is not None else None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=tls, server_hostname=server_hostname),
            settings.timeout,
        )
    except TimeoutError:
        return Outcome.TIMEOUT, None
    except OSError:  # refused, reset, unreachable, TLS handshake failed
        return Outcome.TCP_FAILURE, None
    try:
        if settings.type == "tcp":
            return Outcome.SUCCESS, None
        request = (
            f"GET {settings.http_path} HTTP/1.0\r\nHost: {host_header}\r\n"
            "Connection: close\r\nUser-Agent: fastgw-healthcheck\r\n"
        ).encode("latin-1") + settings.headers + b"\r\n"
        writer.write(request)
        try:
            line = await asyncio.wait_for(_status_line(reader, writer), settings.timeout)
        except TimeoutError:
            return Outcome.TIMEOUT, None
        except (OSError, asyncio.IncompleteReadError):
            return Outcome.TCP_FAILURE, None
        match = STATUS_LINE.match(line)
        status = int(match[1]) if match else 0
        return settings.classify(status), status
    finally:
        writer.close()


async def _status_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    await writer.drain()
    line = await reader.readline()
    if not line:
        raise asyncio.IncompleteReadError(b"", None)
    return line[:MAX_STATUS_LINE]


class ActiveChecker:
    """Probes one upstream's targets from one worker, as long as it runs.

    ``runtime`` is the worker's ``UpstreamRuntime``: its ``targets`` are
    probed and ``set_target_health`` takes them in and out of rotation.
    """

    def __init__(self, runtime: Any, settings: ActiveSettings | None = None):
        self.runtime = runtime
        self.settings = settings or ActiveSettings.from_healthchecks(runtime.spec.healthchecks)
        self.tls = self.settings.tls_context()
        self.counters = [TargetCounter() for _ in runtime.targets]
        # The health each counter was counting against; a change made by
        # someone else (passive checks, DNS) restarts that target's count.
        self.seen: list[str | None] = [None] * len(self.counters)
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        for state, interval in ((HEALTHY, self.settings.healthy_interval),
                                (UNHEALTHY, self.settings.unhealthy_interval)):
            if interval > 0:
                self.tasks.append(asyncio.ensure_future(self._every(interval, state)))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []

    async def _every(self, interval: float, state: str) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check(state)
            except Exception:
                # A bug in one round must not end the checks for good.
                log.exception("health check round of upstream %s failed", self.runtime.name)

    def targets_in(self, state: str) -> list[int]:
        """Indexes of the probed targets currently in ``state``; a target of
        weight 0 is out of the balancer and never probed."""
        chosen = []
        for index, entry in enumerate(self.runtime.target_health()):
            self._observe(index, entry["health"])
            if entry["health"] == state and entry["weight"] > 0:
                chosen.append(index)
        return chosen

    def _observe(self, index: int, current: str) -> None:
        if current != self.seen[index]:
            self.counters[index].reset()
            self.seen[index] = current

    async def check(self, state: str) -> None:
        """One round: probe every target in ``state``, ``concurrency`` at a time."""
        indexes = self.targets_in(state)
        if not indexes:
            return
        limit = asyncio.Semaphore(self.settings.concurrency)

        async def one(index: int) -> None:
            async with limit:
                target = self.runtime.targets[index]
                outcome, status = await probe(target.host, target.port, target.target,
                                              self.settings, self.tls)
                self.apply(index, outcome, status)

        await asyncio.gather(*(one(index) for index in indexes))

    def apply(self, index: int, outcome: Outcome, status: int | None = None) -> None:
        current = self.runtime.target_health()[index]["health"]
        if current not in (HEALTHY, UNHEALTHY):
            return  # a DNS failure came in while the probe was out
        self._observe(index, current)
        flipped = self.counters[index].record(outcome, current == HEALTHY, self.settings)
        if flipped is None:
            return
        self.seen[index] = HEALTHY if flipped else UNHEALTHY
        # The runtime logs the transition (it sees the passive ones too).
        self.runtime.set_target_health(
            index, flipped,
            f"active probe: {outcome.value}{f' {status}' if status is not None else ''}")

