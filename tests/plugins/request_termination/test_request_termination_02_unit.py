"""request-termination on unit contexts: the answer Kong gives for each config."""

import asyncio

import orjson
import pytest

from fastgw.plugins.context import make_context


def run(handler, ctx):
    pending = handler.access(ctx)
    if pending is not None:
        asyncio.run(pending)
    return ctx


@pytest.mark.parametrize(("status", "message"), [
    (503, "Service unavailable"), (401, "Unauthorized"), (404, "Not found"),
    (405, "Method not allowed"), (500, "An unexpected error occurred"), (502, "Bad Gateway"),
])
def test_kong_messages_by_status(handler, status, message):
    ctx = run(handler(status_code=status), make_context())
    assert ctx.exit_status == status
    assert orjson.loads(ctx.exit_body) == {"message": message}
    assert ctx.exit_headers["Content-Type"].startswith("application/json")


def test_a_status_without_a_kong_message_has_an_empty_body(handler):
    ctx = run(handler(status_code=418), make_context())
    assert ctx.exit_status == 418
    assert ctx.exit_body == b""


def test_configured_message_and_raw_body(handler):
    ctx = run(handler(status_code=403, message="Go away"), make_context())
    assert (ctx.exit_status, orjson.loads(ctx.exit_body)) == (403, {"message": "Go away"})
    ctx = run(handler(status_code=200, body="<h1>down</h1>", content_type="text/html"),
              make_context())
    assert (ctx.exit_status, ctx.exit_body) == (200, b"<h1>down</h1>")
    assert ctx.exit_headers == {"Content-Type": "text/html"}


@pytest.mark.parametrize(("url", "headers", "terminated"), [
    ("/", {}, False),
    ("/", {"X-Stop": "1"}, True),
    ("/", {"x_stop": ""}, True),            # header names as Kong reads them
    ("/?x-stop", {}, True),
    ("/?x-stop=yes&a=1", {}, True),
    ("/?other=x-stop", {}, False),
])
def test_trigger_by_header_or_query_argument(handler, url, headers, terminated):
    ctx = run(handler(trigger="x-stop"), make_context(url=url, headers=headers))
    assert ctx.exited is terminated


def test_echo_copies_the_request(handler):
    ctx = make_context("POST", "/echo/me?a=1&a=2&b=x", headers={
        "Host": "api.test:8000", "Content-Type": "application/json", "X-Test": "yes"},
        body=b'{"hello": "world"}')
    run(handler(echo=True, status_code=200), ctx)
    assert ctx.exit_status == 200
    echoed = orjson.loads(ctx.exit_body)
    request = echoed["request"]
    assert request["method"] == "POST"
    assert request["path"] == "/echo/me"
    assert request["query"] == {"a": ["1", "2"], "b": "x"}
    assert request["body"] == {"hello": "world"}
    assert request["raw_body"] == '{"hello": "world"}'
    assert request["headers"]["x-test"] == "yes"
    assert (request["host"], request["scheme"]) == ("api.test", "http")
    assert echoed["message"] is None  # 200 has no Kong message
    assert echoed["matched_route"]["name"] == ctx.route.name
    assert isinstance(echoed["kong"]["worker_pid"], int)


def test_without_echo_the_core_decides(handler):
    from fastgw.plugins.fast import FastRequest

    def decide(plugin, url=b"/", headers=None):
        decision = plugin.fast_decision(None, None)
        return decision.decide(FastRequest(b"GET", b"h", url, headers or [], b"1.2.3.4", b"id"))

    answer = decide(handler(status_code=404))
    assert (answer.status, answer.body) == (404, b'{"message":"Not found"}')
    assert answer.headers == [b"Content-Type", b"application/json; charset=utf-8"]
    triggered = handler(trigger="x-stop")
    assert decide(triggered) is True  # not triggered: decided, nothing to do
    assert decide(triggered, headers=[b"X-Stop", b"1"]).status == 503
    assert decide(triggered, url=b"/?x-stop=1").status == 503
    assert handler(echo=True).fast_decision(None, None) is None
