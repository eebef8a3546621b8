"""http-log: each request's entry goes, as JSON, onto a bounded queue that a
background task sends to ``http_endpoint`` in batches (see ``queue.py``).

The log phase serialises the entry and appends it: no I/O, no await, so a
slow or dead endpoint never slows a proxied request; when the queue is full,
entries are dropped and counted (``LogQueue.dropped``, ``queue.TOTALS``).

A batch of one (``queue.max_batch_size`` 1, the default) is sent as the entry
itself, a larger one as a JSON array, as Kong does. Queues are shared by
plugin instances with the same config and survive config reloads that keep
it, so a reload neither loses queued entries nor drops the kept-alive
connection; a queue whose config is gone is freed once it has drained.

Differences from Kong: https endpoints have their certificate verified
(Kong's http-log does not), user info in the URL is percent-decoded before it
becomes Basic credentials, and ``custom_fields_by_lua`` gives way to static
``custom_fields``.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any
from urllib.parse import urlsplit

import orjson

from fastgw.plugins.base import Plugin
from fastgw.plugins.context import RequestContext
from fastgw.plugins.http_log.client import HttpLogClient
from fastgw.plugins.http_log.queue import TOTALS, LogQueue
from fastgw.plugins.log_serializer import LogSerializer
from fastgw.plugins.state import ConfigState

__all__ = ["HANDLER", "HttpLogHandler", "flush_all", "queue_settings", "queue_stats"]

log = logging.getLogger("fastgw.plugins.http_log")

# Config (as sorted JSON) -> its queue, while a handler or a sender uses it.
_QUEUES: weakref.WeakValueDictionary[bytes, LogQueue] = weakref.WeakValueDictionary()

# Kong's pre-3.3 settings and the queue fields they stand in for.
_LEGACY_QUEUE_FIELDS = (("queue_size", "max_batch_size", 1),
                        ("flush_timeout", "max_coalescing_delay", 1))


def queue_settings(config: dict[str, Any]) -> dict[str, Any]:
    """``config["queue"]`` with the deprecated fields applied, as Kong does:
    one counts only while its queue field is at the default."""
    settings = dict(config["queue"])
    for legacy, field, default in _LEGACY_QUEUE_FIELDS:
        if config[legacy] is not None and settings[field] == default:
            settings[field] = config[legacy]
    return settings


def _warn_deprecated(config: dict[str, Any]) -> None:
    replacements = {"retry_count": "queue.max_retry_time", "queue_size": "queue.max_batch_size",
                    "flush_timeout": "queue.max_coalescing_delay"}
    for legacy, replacement in replacements.items():
        if config[legacy] is not None:
            log.warning("http-log: config.%s is deprecated, please use config.%s instead",
                        legacy, replacement)


def _endpoint_for_logs(url: str) -> str:
    # Without user info and query, which may hold credentials.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _build_queue(config: dict[str, Any]) -> LogQueue:
    client = HttpLogClient(config["http_endpoint"], method=config["method"],
                           content_type=config["content_type"], headers=config["headers"],
                           timeout=config["timeout"] / 1000, keepalive=config["keepalive"] / 1000)
    settings = queue_settings(config)
    single = settings["max_batch_size"] == 1

    async def send(batch: list[bytes]) -> None:
        await client.send(batch[0] if single else b"[" + b",".join(batch) + b"]")

    return LogQueue(_endpoint_for_logs(config["http_endpoint"]), send, close=client.close,
                    **settings)


class HttpLogHandler(Plugin):
    name = "http-log"
    PRIORITY = 12
    VERSION = "0.1.0"

    __slots__ = ("queue", "serializer")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.serializer = LogSerializer(config["custom_fields"])
        key = orjson.dumps(config, option=orjson.OPT_SORT_KEYS)
        queue = _QUEUES.get(key)
        if queue is None:
            _warn_deprecated(config)
            queue = _QUEUES[key] = _build_queue(config)
        self.queue = queue

    def log(self, ctx: RequestContext) -> None:
        self.queue.put(self.serializer.json(ctx))

    @classmethod
    async def shutdown(cls, timeout: float) -> None:
        # Log entries still queued go out before the worker exits.
        await flush_all(timeout)

    @classmethod
    def worker_stats(cls, metrics: bool) -> dict[str, Any]:
        return {"http_log": dict(TOTALS)}


def queue_stats() -> list[dict[str, Any]]:
    """Counters of every live http-log queue of this process."""
    return [queue.stats() for queue in list(_QUEUES.values())]


async def flush_all(timeout: float) -> bool:
    """Send what every queue holds (for a draining worker); False if
    ``timeout`` seconds were not enough."""
    queues = list(_QUEUES.values())
    results = await asyncio.gather(*(queue.flush(timeout) for queue in queues))
    return all(results)


HANDLER = HttpLogHandler
