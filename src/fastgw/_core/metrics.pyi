LATENCY_BUCKETS_MS: tuple[int, ...]

class MetricsCell:
    service: str
    route: str
    per_consumer: bool
    bytes_in: int
    bytes_out: int
    def __init__(self, service: str, route: str, per_consumer: bool = False) -> None: ...
    def set_per_consumer(self, on: bool) -> None: ...
    def add(self, status: int, request_ms: float = -1, upstream_ms: float = -1,
            gateway_ms: float = -1, bytes_in: int = 0, bytes_out: int = 0,
            consumer: str | None = None) -> None: ...
    def snapshot(self) -> dict: ...
