"""Type stubs for fastgw._core.decisions (compiled from decisions.py with decisions.pxd)."""

from collections.abc import Callable, Iterable
from typing import Any

class FastRequest:
    method: bytes
    host: bytes | None
    url: bytes
    headers: list[bytes]
    peer_ip: bytes
    request_id: bytes
    consumer: Any
    credential: dict | None
    credential_identifier: str | None
    lines: bytes
    credential_headers: frozenset[bytes]
    def __init__(self, method: bytes, host: bytes | None, url: bytes, headers: list[bytes],
                 peer_ip: bytes, request_id: bytes) -> None: ...
    def note_credentials(self, headers: frozenset[bytes]) -> None: ...
    def authenticate(self, consumer: Any, credential: dict | None,
                     credential_identifier: str | None) -> None: ...

class Handover:
    index: int
    request: FastRequest
    def __init__(self, index: int, request: FastRequest) -> None: ...

class FastChain:
    @property
    def steps(self) -> tuple[Callable[[FastRequest], Any], ...]: ...
    @property
    def resume_at(self) -> int | None: ...
    @property
    def drop_response_headers(self) -> frozenset[bytes] | None: ...
    def __init__(self, steps: Iterable[Callable[[FastRequest], Any]], resume_at: int | None,
                 drop_response_headers: frozenset[bytes] | None) -> None: ...
    def __call__(self, method: bytes, host: bytes | None, url: bytes, headers: list[bytes],
                 peer_ip: bytes, request_id: bytes) -> Any: ...
    def add_lines(self, answer: Any, lines: bytes) -> None: ...

class WindowQuota:
    BY_IP: int
    BY_CONSUMER: int
    BY_CREDENTIAL: int
    def __init__(self, window: Any, limit: float, node_key: bytes, by: int, head: bytes,
                 limit_value: bytes, reset_after: Callable[[int, float, bytes, Any], int],
                 plugin: Any, fallback: Callable[[FastRequest], Any]) -> None: ...
    def __call__(self, request: FastRequest) -> Any: ...

def header_variable(name: bytes) -> bytes: ...

class HeaderKeyDecision:
    def __init__(self, header_name: bytes, credentials: dict[str, tuple[Any, Any, Any]],
                 credential_headers: frozenset[bytes], identity_names: frozenset[bytes],
                 identity_items: Callable[[Any, Any], list[bytes]],
                 remove_identity: Callable[[list[bytes]], None]) -> None: ...
    def __call__(self, request: FastRequest) -> bool | None: ...
