"""The plugin contract, after Kong's handler modules.

A plugin is a ``handler.py`` holding one ``Plugin`` subclass, beside a
``schema.py`` holding ``SCHEMA`` (a ``fastgw.config.schema.Record`` for its
``config``). The handler declares:

* ``name``: the plugin's Kong name, and ``PRIORITY``: higher runs first;
* any of the phase methods below; the runner lists, once per config version,
  which plugins implement which phase, so a phase no plugin implements costs
  nothing per request.

Phases, in request order:

``access(ctx)``
    Before the request goes upstream. May change the upstream request through
    ``ctx.request``, identify a consumer (``ctx.authenticate``), or answer
    itself with ``ctx.exit(...)``. May be ``async def`` (for I/O such as Redis);
    a synchronous handler costs no task switch.
``header_filter(ctx)``
    Once the response status and headers are known (``ctx.response``), before
    they are sent. Also runs for answers given by ``ctx.exit``.
``body_filter(ctx, chunk, eof) -> bytes``
    For each piece of the response body; returns what to send instead. A
    plugin that needs the whole body returns ``b""`` until ``eof``. A plugin
    that changes the body's length removes ``Content-Length`` in
    ``header_filter`` (the gateway then frames the body as chunked).
``log(ctx)``
    After the response has been sent. Must not block: queue work instead.

A handler instance is built once per config version and is shared by every
request, so per-request state lives in ``ctx`` (``ctx.shared`` for state shared
between plugins, ``ctx.plugin_state(self)`` for a plugin's own).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from fastgw.plugins.context import RequestContext
    from fastgw.plugins.fast import FastDecision
    from fastgw.plugins.state import ConfigState

class Plugin:
    name: ClassVar[str] = ""
    PRIORITY: ClassVar[int] = 0
    VERSION: ClassVar[str] = "0.1.0"

    __slots__ = ("config", "state", "scope")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        # ``config`` has been validated by SCHEMA and has every default filled.
        self.config = config
        self.state = state
        self.scope = scope  # the PluginConfig entry this instance came from

    # Phase methods; the base versions are never called (see implements()).
    def access(self, ctx: RequestContext) -> Awaitable[None] | None:
        return None

    def header_filter(self, ctx: RequestContext) -> None:
        return None

    def body_filter(self, ctx: RequestContext, chunk: bytes, eof: bool) -> bytes:
        return chunk

    def log(self, ctx: RequestContext) -> None:
        return None

    # -- worker lifecycle: class-level hooks the worker calls for every plugin
    # it has loaded (fastgw.plugins.loaded_handlers) -----------------------------

    @classmethod
    def init_worker(cls) -> None:
        """Kong's init_worker: once per worker, when a config first uses the
        plugin (start background work here)."""

    @classmethod
    async def shutdown(cls, timeout: float) -> None:
        """The worker drains: finish background work within ``timeout``
        seconds (queued log entries, say)."""

    @classmethod
    def worker_stats(cls, metrics: bool) -> dict[str, Any]:
        """Figures for the admin API's status (and /metrics when ``metrics``),
        keyed by section name."""
        return {}

    @classmethod
    async def purge(cls, key: str | None, redis: bool) -> int | None:
        """The admin API's cache purge: entries removed (from Redis too when
        ``redis``), or None for a plugin that caches nothing."""
        return None

    def fast_decision(self, route: Any, service: Any) -> FastDecision | None:
        """Optional: a decision the compiled core can take for this route
        from the request head alone, before any request context exists
        (``fastgw.plugins.fast`` has the contract). None: the plugin always
        needs its access phase."""
        return None

    @classmethod
    def implements(cls, phase: str) -> bool:
        return getattr(cls, phase) is not getattr(Plugin, phase)

    def __repr__(self) -> str:
        return f"<plugin {self.name} priority={self.PRIORITY}>"


# The header pair of a JSON answer, as fast decisions give it to the core.
JSON_CONTENT_TYPE = (b"Content-Type", b"application/json; charset=utf-8")
# Headers the core frames itself; a plugin's answer never carries them.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


class PluginError(Exception):
    """Raised by a plugin for a failure that must answer 500 (logged)."""
