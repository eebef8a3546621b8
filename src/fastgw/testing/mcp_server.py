"""An MCP server for tests: the official SDK's ``MCPServer`` over streamable
HTTP (uvicorn in a thread) on a free 127.0.0.1 port, at ``/mcp``. The SDK is
a development dependency; this module imports it only when used.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from fastgw.testing import free_port


def add_and_wipe(mcp: Any, calls: list[str]) -> None:
    """Two tools for ACL tests: ``add`` (harmless) and ``wipe`` (the one an
    ACL guards); each call is appended to ``calls``."""

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        calls.append("add")
        return a + b

    @mcp.tool()
    def wipe() -> str:
        """Destroy everything."""
        calls.append("wipe")
        return "wiped"


def memory_event_store() -> Any:
    """An SDK ``EventStore`` in memory: every event a stream sends is kept,
    so that a client reconnecting with ``Last-Event-ID`` gets the rest."""
    from mcp.server.streamable_http import EventMessage, EventStore

    class MemoryEventStore(EventStore):
        def __init__(self) -> None:
            self.events: list[tuple[str, str, Any]] = []  # (event id, stream id, message)

        async def store_event(self, stream_id: str, message: Any) -> str:
            event_id = str(len(self.events) + 1)
            self.events.append((event_id, stream_id, message))
            return event_id

        async def replay_events_after(self, last_event_id: str, send_callback: Any
                                      ) -> str | None:
            ids = [event[0] for event in self.events]
            if last_event_id not in ids:
                return None
            position = ids.index(last_event_id)
            stream_id = self.events[position][1]
            for event_id, stream, message in self.events[position + 1:]:
                if stream == stream_id and message is not None:
                    await send_callback(EventMessage(message, event_id))
            return stream_id

    return MemoryEventStore()


class MCPTestServer:
    """``with MCPTestServer(build) as server: server.url``, where ``build(mcp)``
    adds tools to an ``MCPServer``; ``calls`` counts the tool calls it ran;
    ``resumable`` keeps the events of its streams for ``Last-Event-ID``."""

    def __init__(self, build: Any, json_response: bool = False,
                 resumable: bool = False) -> None:
        from mcp.server.mcpserver import MCPServer

        self.port = free_port()
        self.calls: list[str] = []
        self.mcp = MCPServer("upstream")
        build(self.mcp, self.calls)
        self.app = self.mcp.streamable_http_app(
            json_response=json_response, event_store=memory_event_store() if resumable else None)
        self.server: Any = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sessions(self) -> int:
        """How many sessions the server holds open."""
        return len(self.mcp.session_manager._server_instances)

    def start(self, timeout: float = 10.0) -> MCPTestServer:
        import uvicorn

        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("the MCP test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)

    def __enter__(self) -> MCPTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
