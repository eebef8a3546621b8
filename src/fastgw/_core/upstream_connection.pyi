"""Type stubs for fastgw._core.upstream_connection: keep-alive pools and the
upstream side of an exchange (cdef fields and methods in the .pxd)."""

import asyncio
import ssl as _ssl
from typing import Any

class UpstreamPool:
    host: str
    port: int
    ssl: _ssl.SSLContext | None
    server_hostname: str | None
    max_idle: int
    def __init__(self, host: str, port: int, ssl: _ssl.SSLContext | None = None,
                 server_hostname: str | None = None, max_idle: int = 512) -> None: ...
    async def connect(self, loop: asyncio.AbstractEventLoop, timeout_ms: float) -> Any: ...
    def close_idle(self, older_than_ms: float = -1) -> None: ...

class UpstreamConnection(asyncio.Protocol):
    def __init__(self, pool: UpstreamPool) -> None: ...
