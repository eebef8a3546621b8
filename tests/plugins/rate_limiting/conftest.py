"""Builders for the rate-limiting tests, on top of tests/plugins/conftest.py."""

import asyncio
import time

import pytest

from fastgw.config.loader import parse_config
from fastgw.plugins import handler_class
from fastgw.plugins.context import make_context, set_response
from fastgw.plugins.state import ConfigState
from fastgw.testing.redis_server import RedisServer

CONSUMERS = [
    {"username": "alice", "id": "6f1c8a3e-2b4d-4e5f-9a8b-7c6d5e4f3a21",
     "keyauth_credentials": [{"id": "0b7f8a56-1c2d-4e3f-8a9b-0c1d2e3f4a5b", "key": "alice-key"}]},
    {"username": "bob", "keyauth_credentials": [{"key": "bob-key"}]},
]
# A minute that starts on a round hour plus 14 minutes: 2023-11-14 22:14:00 UTC.
MINUTE_START = 1_700_000_040.0
HOUR_START = 1_699_999_200.0


@pytest.fixture
def plugin_name():
    return "rate-limiting"


@pytest.fixture
def plugin_document_extra():
    return {"consumers": CONSUMERS}


@pytest.fixture(scope="session")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture
def fresh_redis(redis_server):
    """The session's Redis, emptied (restarted if a test stopped it)."""
    if not redis_server.running:
        redis_server.start()
    redis_server.client().flushall()
    return redis_server


class Clock:
    """What the handlers under test take for the time."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock(MINUTE_START + 20.5)


@pytest.fixture
def limiter(clock):
    """A rate-limiting handler for a config, on the test clock. ``gateway``
    is the document's _gateway block; ``scope`` the plugin entry's route."""

    def build(config, gateway=None, route=None, state=None):
        plugin = {"name": "rate-limiting", "config": config}
        doc = {"_format_version": "3.0", "consumers": CONSUMERS, "plugins": [plugin]}
        if route is not None:
            doc["services"] = [{"name": "orders", "url": "http://127.0.0.1:9",
                                "routes": [{"name": route, "paths": [f"/{route}"]}]}]
            plugin["route"] = route
        if gateway is not None:
            doc["_gateway"] = gateway
        parsed = parse_config(doc)
        entry = parsed.plugins[0]
        handler = handler_class("rate-limiting")(entry.config, state or ConfigState(parsed),
                                                 entry)
        handler.clock = clock
        return handler

    return build


class Answer:
    """What a client got from one request through a handler."""

    def __init__(self, ctx):
        self.ctx = ctx
        if ctx.exit_status:
            self.status = ctx.exit_status
            self.body = ctx.exit_body
            self.headers = dict(ctx.exit_headers)
        else:
            self.status = 200
            self.body = b""
            self.headers = dict(ctx.response.headers.pairs()) if ctx.response else {}

    def rate_headers(self) -> dict:
        return {name: value for name, value in self.headers.items()
                if "ratelimit" in name.lower() or name == "Retry-After"}


@pytest.fixture
def answer():
    """``answer(handler, **make_context args)``: run access (awaited, on this
    test's own event loop, when it is a coroutine) and, when the request
    passes, header_filter on an upstream 200."""
    loop = asyncio.new_event_loop()

    def run(handler, ctx=None, **request) -> Answer:
        ctx = ctx or make_context(**request)
        pending = handler.access(ctx)
        if pending is not None:
            loop.run_until_complete(pending)
        if not ctx.exit_status:
            set_response(ctx, 200, {"Content-Type": "application/json"})
            handler.header_filter(ctx)
        return Answer(ctx)

    run.loop = loop
    yield run
    loop.close()


@pytest.fixture
def window_guard():
    """``window_guard(seconds)``: sleep into the next minute unless that
    many seconds are left in this one (tests counting in real minutes)."""

    def guard(seconds_needed: float, period: float = 60.0) -> None:
        left = period - time.time() % period
        if left < seconds_needed:
            time.sleep(left + 0.05)

    return guard
