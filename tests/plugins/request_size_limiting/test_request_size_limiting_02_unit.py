"""request-size-limiting handler: Content-Length checked without reading, chunked
bodies read and measured, Kong's statuses and message."""

import asyncio

import orjson
import pytest

from fastgw.plugins.context import make_context

TOO_LARGE = {"message": "Request size limit exceeded"}


def run_access(plugin, ctx):
    """Run access, awaiting it when it turned asynchronous; True if it did."""
    pending = plugin.access(ctx)
    if pending is None:
        return False
    asyncio.run(pending)
    return True


def test_priority_is_kongs(handler):
    assert handler().PRIORITY == 951


@pytest.mark.parametrize(("unit", "allowed", "length", "refused"), [
    ("bytes", 10, 10, False), ("bytes", 10, 11, True),
    ("kilobytes", 2, 2048, False), ("kilobytes", 2, 2049, True),
    ("megabytes", 1, 1 << 20, False), ("megabytes", 1, (1 << 20) + 1, True),
])
def test_content_length_is_compared_in_the_configured_unit(handler, unit, allowed, length,
                                                            refused):
    plugin = handler(allowed_payload_size=allowed, size_unit=unit)
    ctx = make_context("POST", "/", {"Content-Length": str(length)}, body=b"never read")
    assert run_access(plugin, ctx) is False
    assert ctx.request.body is None  # decided from the header alone
    if refused:
        assert ctx.exit_status == 413
        assert orjson.loads(ctx.exit_body) == TOO_LARGE
    else:
        assert not ctx.exited


def test_expect_100_continue_gets_417(handler):
    ctx = make_context("POST", "/", {"Content-Length": "100", "Expect": "100-Continue"})
    run_access(handler(allowed_payload_size=10, size_unit="bytes"), ctx)
    assert ctx.exit_status == 417
    assert orjson.loads(ctx.exit_body) == TOO_LARGE


@pytest.mark.parametrize(("body", "refused"), [(b"x" * 10, False), (b"x" * 11, True)])
def test_a_chunked_body_is_read_and_measured(handler, body, refused):
    plugin = handler(allowed_payload_size=10, size_unit="bytes")
    ctx = make_context("POST", "/", {"Transfer-Encoding": "chunked"}, body=body)
    assert run_access(plugin, ctx) is True
    assert ctx.request.body == body  # buffered, still sent upstream
    assert ctx.exit_status == (413 if refused else 0)


def test_require_content_length(handler):
    plugin = handler(require_content_length=True)
    ctx = make_context("POST", "/")
    run_access(plugin, ctx)
    assert ctx.exit_status == 411
    assert orjson.loads(ctx.exit_body) == {"message": "A valid Content-Length header is required"}
    chunked = make_context("POST", "/", {"Transfer-Encoding": "chunked"}, body=b"abc")
    run_access(plugin, chunked)
    assert not chunked.exited
    with_length = make_context("POST", "/", {"Content-Length": "3"})
    run_access(plugin, with_length)
    assert not with_length.exited


def test_a_request_known_to_have_no_body_stays_synchronous(handler, monkeypatch):
    from fastgw.plugins.request_size_limiting import handler as module

    monkeypatch.setattr(module, "is_chunked", lambda ctx: False)
    ctx = make_context("POST", "/", body=b"abc")
    assert run_access(handler(allowed_payload_size=1, size_unit="bytes"), ctx) is False
    assert not ctx.exited and ctx.request.body is None


@pytest.mark.parametrize(("body", "status"), [(b"", 0), (b"abcde", 0), (b"abcdef", 413)])
def test_a_chunked_body_is_read_and_measured_like_kong(handler, body, status):
    # A body without Content-Length came chunked (make_context, as the gateway).
    ctx = make_context("POST", "/", body=body)
    assert ctx.request.chunked
    assert run_access(handler(allowed_payload_size=5, size_unit="bytes"), ctx) is True
    assert ctx.exit_status == status


def test_required_length_refuses_a_request_without_length_or_body(handler):
    plugin = handler(require_content_length=True)
    empty = make_context("GET", "/")
    run_access(plugin, empty)
    assert empty.exit_status == 411
    with_body = make_context("POST", "/", body=b"abc")
    run_access(plugin, with_body)
    assert not with_body.exited
