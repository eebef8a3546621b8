"""The Redis side of policy ``redis``: one pooled client per config version
and process, the algorithms' Lua scripts run by EVALSHA (loaded again when
Redis answers NOSCRIPT, e.g. after a restart), and outage bookkeeping.

After a failure Redis is left alone for ``RETRY_INTERVAL_S``: requests
meanwhile do not wait on it at all, and the first one after the pause finds
out whether it is back. An outage and its end are logged once each.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from fastgw.plugins.rate_limiting.algorithms import Limits, Outcome

log = logging.getLogger("fastgw.plugins.rate_limiting")

RETRY_INTERVAL_S = 1.0


class RedisUnavailable(Exception):
    """The counters in Redis could not be read or updated."""


class RedisCounters:
    __slots__ = ("client", "where", "scripts", "down_since", "retry_at")

    def __init__(self, client: redis.asyncio.Redis, where: str) -> None:
        self.client = client
        self.where = where  # host:port, for the log (never the password)
        self.scripts: dict[str, Any] = {}
        self.down_since: float | None = None
        self.retry_at = 0.0

    async def hit(self, limits: Limits, key: str, now: float) -> Outcome:
        """Count one request for ``key`` in one round trip."""
        keys, args = limits.redis_request(key, now)
        reply = await self.run(limits.SCRIPT, keys, args)
        return limits.redis_outcome(reply, now)

    async def run(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """Run a Lua script (EVALSHA, loaded again after a Redis restart)."""
        if self.down_since is not None and time.monotonic() < self.retry_at:
            raise RedisUnavailable(f"Redis at {self.where} is down")
        script = self.scripts.get(source)
        if script is None:
            script = self.scripts[source] = self.client.register_script(source)
        try:
            reply = await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            raise RedisUnavailable(str(exc)) from exc
        self._reachable()
        return reply

    async def add(self, deltas: dict[str, int], expires: dict[str, int]) -> bool:
        """Add each delta to its counter, in one pipeline (no check), and set
        when the counters in ``expires`` may go (unix ms): False when Redis failed."""
        if self.down_since is not None and time.monotonic() < self.retry_at:
            return False
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key, delta in deltas.items():
                    pipe.incrby(key, delta)
                    if key in expires:
                        pipe.pexpireat(key, expires[key])
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return False
        self._reachable()
        return True

    def _reachable(self) -> None:
        if self.down_since is not None:
            log.warning("rate-limiting: Redis at %s is reachable again after %.1f s",
                        self.where, time.monotonic() - self.down_since)
            self.down_since = None

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
            log.error("rate-limiting: Redis at %s is unavailable (%s: %s); fault-tolerant "
                      "limits count on this node, the others answer 500, until it is back",
                      self.where, type(exc).__name__, exc)
        self.retry_at = now + RETRY_INTERVAL_S


def redis_counters(state: Any, settings: dict[str, Any]) -> RedisCounters:
    """The counters for the plugin's ``redis`` settings, or the gateway's
    ``_gateway.redis.url`` when they name no host; one per config version."""
    timeout_s = settings["timeout"] / 1000.0
    options: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        # One attempt: a retry would double the wait the timeout promises.
        "retry": Retry(NoBackoff(), 0),
    }
    host = settings["host"]
    if host is not None:
        source: tuple = (host, settings["port"], settings["database"], settings["username"],
                         settings["password"], settings["ssl"], settings["ssl_verify"])
        where = f"{host}:{settings['port']}"
    elif state.redis_url:
        source = (state.redis_url,)
        url = urlsplit(state.redis_url)
        where = f"{url.hostname}:{url.port or 6379}" if url.hostname else state.redis_url
    else:
        raise ValueError("rate-limiting: policy 'redis' needs config.redis.host "
                         "or _gateway.redis.url")
    cache_key = ("rate-limiting", "redis", source, timeout_s)
    counters = state.shared.get(cache_key)
    if counters is None:
        if host is not None:
            ssl = settings["ssl"]
            verify = settings["ssl_verify"]
            client = redis.asyncio.Redis(
                host=host, port=settings["port"], db=settings["database"],
                username=settings["username"], password=settings["password"], ssl=ssl,
                ssl_cert_reqs="required" if verify else "none", ssl_check_hostname=verify,
                **options)
        else:
            client = redis.asyncio.Redis.from_url(state.redis_url, **options)
        counters = state.shared[cache_key] = RedisCounters(client, where)
    return counters
