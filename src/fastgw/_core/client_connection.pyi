"""Type stubs for fastgw._core.client_connection: the client side of the
proxy. What the plugin runner calls on it is fastgw.plugins.core_api.CoreClient."""

import asyncio

from fastgw._core.gateway import Gateway

SNI_ATTRIBUTE: str

class ClientConnection(asyncio.Protocol):
    """One downstream connection. What the plugin runner calls on it is written
    down once, as fastgw.plugins.core_api.CoreClient."""

    def __init__(self, gw: Gateway, scheme: bytes) -> None: ...
    @property
    def gateway(self) -> Gateway: ...
    def peer_certificate(self) -> bytes | None: ...
    def tls_object(self) -> object | None: ...

class ContinuedBody:
    """What a continuation writes the rest of an answer with."""

    def write(self, data: bytes) -> bool:
        """Send ``data`` at once, in the answer's framing; False once the
        client has gone (nothing is sent then)."""
