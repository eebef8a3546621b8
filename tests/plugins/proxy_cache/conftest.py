"""Shared pieces of the proxy-cache tests: the plugin's name for the builders
in tests/plugins/conftest.py, a controllable clock, and a clean slate (no
stored entries, no flights) around every test."""

import pytest

from fastgw.plugins.proxy_cache import handler as handler_module
from fastgw.plugins.proxy_cache.coalescing import FLIGHTS
from fastgw.plugins.proxy_cache.store import purge


@pytest.fixture
def plugin_name():
    return "proxy-cache"


@pytest.fixture(autouse=True)
def _empty_caches():
    purge()
    FLIGHTS.clear()
    yield
    purge()
    FLIGHTS.clear()


class FakeTime:
    """Stands in for the ``time`` module in the handler: ``advance`` moves
    both the wall clock and the monotonic clock."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(handler_module, "time", fake)
    return fake
