"""Type stubs for fastgw._core.upstream_runtime: an upstream entity's
balancing and passive health (cdef fields and methods in the .pxd)."""

from collections.abc import Callable
from typing import Any

from fastgw._core.upstream_connection import UpstreamPool

class UpstreamRuntime:
    name: str
    spec: Any
    targets: tuple[Any, ...]
    pools: list[UpstreamPool]
    healthchecks_on: bool
    on_change: Callable[[str, int, str], object] | None
    def __init__(self, spec: Any, pools: list[UpstreamPool], checks: Any,
                 on_change: Callable[[str, int, str], object] | None = None) -> None: ...
    def set_target_health(self, index: int, healthy: bool, reason: str = "",
                          dns: bool = False) -> None: ...
    def target_health(self) -> list[dict[str, Any]]: ...
    def set_on_change(self, callback: Callable[[str, int, str], object] | None) -> None: ...
    def pick_for_test(self, key: bytes | None = None) -> int: ...
