from typing import Final

SECOND: Final[int]
MINUTE: Final[int]
HOUR: Final[int]
DAY: Final[int]
MONTH: Final[int]
YEAR: Final[int]
PERIOD_NAMES: tuple[str, ...]
PERIOD_TTL_S: tuple[int, ...]

def period_code(name: str) -> int: ...
def window_start(now: float, period_s: float) -> float: ...
def period_start(now: float, period: int) -> float: ...
def period_end(now: float, period: int) -> float: ...

class TokenBucket:
    rate_per_s: float
    burst: float
    def __init__(self, rate_per_s: float, burst: float) -> None: ...
    def take(self, now: float, n: float = 1.0) -> bool: ...
    def retry_after(self, now: float, n: float = 1.0) -> float: ...
    def remaining(self, now: float) -> float: ...

class CounterStore:
    def incr(self, key: bytes, window_start: float, window_end: float, amount: int = 1) -> int: ...
    def sliding(
        self,
        key: bytes,
        window_start: float,
        window_end: float,
        amount: int,
        previous_weight: float,
    ) -> float: ...
    def reserve(
        self,
        key: bytes,
        window_start: float,
        window_end: float,
        amount: int,
        limit: float,
        previous_weight: float,
    ) -> tuple[bool, float]: ...

class LocalCounters(CounterStore):
    sweep_interval_s: float
    def __init__(self, sweep_interval_s: float = 60.0) -> None: ...
    def sweep(self, now: float) -> int: ...
    def __len__(self) -> int: ...

class SharedCounterTable(CounterStore):
    capacity: int
    def __init__(self, capacity: int = 65536, buffer: object | None = None) -> None: ...
    @staticmethod
    def nbytes(capacity: int) -> int: ...
    def close(self) -> None: ...

class FixedWindow:
    store: CounterStore
    period: int
    period_s: float
    def __init__(self, store: CounterStore, period: str | float) -> None: ...
    def start(self, now: float) -> float: ...
    def end(self, now: float) -> float: ...
    def hit(self, identifier: bytes, now: float, amount: int = 1) -> int: ...

class SlidingWindow:
    store: CounterStore
    window_s: float
    def __init__(self, store: CounterStore, window_s: float) -> None: ...
    def hit(self, identifier: bytes, now: float, amount: int = 1) -> float: ...

class WindowSet:
    count: int
    suffixes: tuple[bytes, ...]
    sizes: tuple[float, ...]
    calendars: tuple[int, ...]
    limits: tuple[float, ...]
    money: tuple[bool, ...]
    header_items: tuple[bytes, ...]
    remaining_names: tuple[bytes, ...]
    def __init__(
        self,
        suffixes: list[bytes],
        sizes: list[float],
        calendars: list[int],
        limits: list[float],
        money: list[bool],
        header_items: list[bytes],
        remaining_names: list[bytes],
    ) -> None: ...
    def span(self, index: int, now: float, sliding: bool) -> tuple[float, float, float]: ...
    def reserve(
        self, store: CounterStore, base: bytes, amounts: list[int], now: float, sliding: bool
    ) -> tuple[list[bytes], list[tuple[float, float]], list[float], int]: ...
    def add(
        self, store: CounterStore, keys: list[bytes], spans: list[tuple[float, float]],
        deltas: list[int],
    ) -> None: ...
    def settle(
        self, store: CounterStore, keys: list[bytes], spans: list[tuple[float, float]],
        amounts: list[int], tokens: int, money: int,
    ) -> None: ...
    def answer_headers(self, used: list[float], amounts: list[int]) -> list[bytes]: ...

def window_span(now: float, size: float, calendar: int, sliding: bool) -> tuple[float, float, float]: ...
def shown_amount(value: float, money: bool) -> str: ...
