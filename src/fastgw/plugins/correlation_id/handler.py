"""``correlation-id``: make sure each request carries an id header.

As in Kong: a request without the header (or with an empty one) gets a new
id, sent upstream; the id is added to the log entry as ``correlation_id``;
with ``echo_downstream`` the response carries it too (a new one when the
request was answered before the access phase ran). The priority (100001,
Kong 3.x) puts it before every other plugin, so their logs see the id.

Generators:

* ``uuid``: a random UUID;
* ``uuid#counter``: a UUID drawn once per worker process, ``#``, and a
  counter (cheaper than a UUID per request, unique across workers);
* ``tracker``: Kong's ``server_addr-server_port-pid-connection-requests-time``.
  The plugin context does not expose connections, so ``connection`` is a
  per-worker request sequence number and ``requests`` is always 1;
  ``server_addr`` is the configured listen address.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastgw.config.checks import split_host_port
from fastgw.plugins.base import Plugin

if TYPE_CHECKING:
    from fastgw.plugins.context import RequestContext
    from fastgw.plugins.state import ConfigState

_ID = "id"


class WorkerSeed:
    """What ids are drawn from in this process. Reset in forked children:
    workers forked from one parent must not count from the same UUID."""

    __slots__ = ("counter", "pid", "uuid")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.uuid = str(uuid.uuid4())
        self.counter = itertools.count(1)
        self.pid = os.getpid()


WORKER_SEED = WorkerSeed()
# Workers forked after this import would otherwise all count from the parent's UUID.
os.register_at_fork(after_in_child=WORKER_SEED.reset)


def random_id(ctx: RequestContext) -> str:
    return str(uuid.uuid4())


def counter_id(ctx: RequestContext) -> str:
    return f"{WORKER_SEED.uuid}#{next(WORKER_SEED.counter)}"


def tracker_generator(server_address: str) -> Callable[[RequestContext], str]:
    def tracker_id(ctx: RequestContext) -> str:
        seed = WORKER_SEED
        return (f"{server_address}-{ctx.request.port}-{seed.pid}-{next(seed.counter)}-1-"
                f"{time.time():.3f}")

    return tracker_id


class CorrelationIdHandler(Plugin):
    name = "correlation-id"
    PRIORITY = 100001

    __slots__ = ("echo", "generate", "header_name")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.header_name: str = config["header_name"]
        self.echo: bool = config["echo_downstream"]
        generator = config["generator"]
        self.generate: Callable[[RequestContext], str]
        if generator == "uuid":
            self.generate = random_id
        elif generator == "uuid#counter":
            self.generate = counter_id
        else:
            listen = split_host_port(state.config.gateway.listen)
            self.generate = tracker_generator(listen[0] if listen else "")

    def access(self, ctx: RequestContext) -> None:
        headers = ctx.request.headers
        correlation_id = headers.get(self.header_name)
        if not correlation_id:  # Kong treats an empty header as missing
            correlation_id = self.generate(ctx)
            headers.set(self.header_name, correlation_id)
        if ctx.log_fields is None:
            ctx.log_fields = {}
        ctx.log_fields["correlation_id"] = correlation_id
        if self.echo:
            ctx.plugin_state(self)[_ID] = correlation_id

    def header_filter(self, ctx: RequestContext) -> None:
        if not self.echo:
            return
        correlation_id = (ctx.plugin_state(self).get(_ID)
                          or ctx.request.headers.get(self.header_name)
                          or self.generate(ctx))
        assert ctx.response is not None  # header_filter runs once the response exists
        ctx.response.headers.set(self.header_name, correlation_id)


HANDLER = CorrelationIdHandler
