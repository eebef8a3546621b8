from collections.abc import Callable, Sequence

MAX_WEIGHT: int
DEFAULT_WEIGHT: int
DEFAULT_PORT: int
MIN_SLOTS: int
MAX_SLOTS: int
DEFAULT_SLOTS: int
DEFAULT_DECAY_S: float

class Target:
    key: bytes
    host: str
    port: int
    weight: int
    def __init__(self, host: str, port: int, weight: int = ...) -> None: ...
    @staticmethod
    def parse(spec: str, weight: int = ...) -> Target: ...

class Balancer:
    targets: tuple[Target, ...]
    count: int
    eligible_count: int
    def __init__(self, targets: Sequence[Target]) -> None: ...
    def pick(self, hash_key: bytes | None = None) -> int: ...
    def set_healthy(self, index: int, healthy: bool) -> None: ...
    def is_healthy(self, index: int) -> bool: ...
    def release(self, index: int) -> None: ...
    def record(self, index: int, latency_ms: float) -> None: ...

class RoundRobin(Balancer): ...

class LeastConnections(Balancer):
    def in_flight(self, index: int) -> int: ...

class HashRing(Balancer):
    slots: int
    def __init__(self, targets: Sequence[Target], slots: int = ...) -> None: ...
    def owner_of_slot(self, slot: int) -> int: ...

class PeakEwma(Balancer):
    decay_s: float
    def __init__(
        self,
        targets: Sequence[Target],
        decay_s: float = ...,
        clock: Callable[[], float] | None = None,
        seed: int | None = None,
    ) -> None: ...
    def latency_ms(self, index: int) -> float: ...
    def in_flight(self, index: int) -> int: ...
