import asyncio

import pytest

from fastgw.config.loader import parse_config
from fastgw.plugins import handler_class
from fastgw.plugins.state import ConfigState
from fastgw.testing import UpstreamServer


@pytest.fixture
def build_http_log():
    """An http-log handler from a config dict validated by the real loader."""

    def build(config: dict):
        doc = {"_format_version": "3.0", "plugins": [{"name": "http-log", "config": config}]}
        parsed = parse_config(doc)
        plugin = parsed.plugins[0]
        return handler_class("http-log")(plugin.config, ConfigState(parsed), plugin)

    return build


async def answer_ok(req, writer):
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


async def never_answer(req, writer):
    await asyncio.sleep(3600)


@pytest.fixture
def collector():
    """A log endpoint on its own thread that records what it receives."""
    with UpstreamServer(answer_ok) as server:
        yield server


@pytest.fixture
def hanging_endpoint():
    """Accepts connections and requests, and never answers."""
    with UpstreamServer(never_answer) as server:
        yield server


@pytest.fixture
def upstream():
    """The proxied service: answers 200 and records what reached it."""
    with UpstreamServer() as server:
        yield server
