"""Cost of a proxy-cache hit, per request.

Why it matters: a hit replaces the whole upstream exchange, so it must cost
far less than the proxying it saves (PERF.md: about 16 µs of CPU per proxied
request, each extra microsecond about 6% of throughput). A memory hit is the
cache key (compiled ``_core.cachekey``), one dict lookup, a freshness check
and ``ctx.exit`` with the stored headers; no await. The request carries
eight typical headers. Cases: the plain hit; a hit that also varies on a
header and a query and honours Cache-Control; and a whole hit as the runner
drives it (access, then header_filter and body_filter on the exit, then
log). Under ``--benchmark-disable`` each case runs once, as a correctness
check.
"""

import pytest

from fastgw._core import cachekey
from fastgw.config.loader import parse_config
from fastgw.plugins import handler_class
from fastgw.plugins.context import make_context, set_response
from fastgw.plugins.proxy_cache.store import purge
from fastgw.plugins.state import ConfigState

BODY = b'{"id": "chatcmpl-1", "choices": [{"message": {"content": "cached"}}]}'
HEADERS = [
    ("Host", "api.example.com"), ("User-Agent", "bench/1.0"), ("Accept", "application/json"),
    ("Accept-Encoding", "gzip"), ("Accept-Language", "en"), ("Connection", "keep-alive"),
    ("X-Request-Id", "abc-123"), ("Content-Type", "application/json"),
]


@pytest.fixture(autouse=True)
def _label_and_clean(benchmark):
    benchmark.extra_info["compiled_cachekey"] = cachekey.__file__.endswith(".so")
    purge()
    yield
    purge()


def warm_cache(url: str, response_cache_control: str = "public, max-age=600", **config):
    """A memory proxy-cache handler holding the answer to GET ``url``."""
    parsed = parse_config({"_format_version": "3.0", "plugins": [
        {"name": "proxy-cache", "config": {"strategy": "memory", **config}}]})
    entry = parsed.plugins[0]
    cache = handler_class("proxy-cache")(entry.config, ConfigState(parsed), entry)
    miss = make_context("GET", url, HEADERS)
    cache.access(miss)
    set_response(miss, 200, {"Content-Type": "application/json", "Cache-Control": response_cache_control,
                             "Date": "Thu, 01 Jan 2026 00:00:00 GMT"})
    cache.header_filter(miss)
    cache.body_filter(miss, BODY, True)
    return cache


def test_hit_access(benchmark):
    cache = warm_cache("/v1/models")
    ctx = make_context("GET", "/v1/models", HEADERS)
    benchmark(cache.access, ctx)
    assert ctx.exit_body == BODY and ctx.exit_headers["X-Cache-Status"] == "Hit"


def test_hit_access_with_vary_and_cache_control(benchmark):
    url = "/v1/search?q=caf%C3%A9&page=2&utm=x"
    cache = warm_cache(url, vary_headers=["Accept-Language"], vary_query_params=["q", "page"],
                       cache_control=True)
    ctx = make_context("GET", url, [*HEADERS, ("Cache-Control", "max-age=600")])
    benchmark(cache.access, ctx)
    assert ctx.exit_headers["X-Cache-Status"] == "Hit"


def test_whole_hit_as_the_runner_drives_it(benchmark):
    cache = warm_cache("/v1/models")
    ctx = make_context("GET", "/v1/models", HEADERS)

    def hit():
        cache.access(ctx)
        set_response(ctx, ctx.exit_status, ctx.exit_headers, "exit")
        cache.header_filter(ctx)
        cache.body_filter(ctx, ctx.exit_body, False)
        cache.body_filter(ctx, b"", True)
        cache.log(ctx)

    benchmark(hit)
    assert ctx.response.status == 200 and ctx.exit_body == BODY
