"""Cost of a proxy-cache key, per request.

Why it is compiled: every request on a cached route computes its key before
the cache is even asked, hit or miss, and PERF.md prices each extra
microsecond at about 6% of throughput. The cases cover the usual shapes: no
query, a short query with a vary header, and a query that needs decoding.
Under ``--benchmark-disable`` each case runs once, as a correctness check.
"""

import pytest

from fastgw._core import cachekey

HEADERS = {
    b"host": b"api.local",
    b"accept": b"application/json",
    b"user-agent": b"openai-python/1.0",
    b"authorization": b"Bearer sk-test",
}


@pytest.fixture(autouse=True)
def _label(benchmark):
    benchmark.extra_info["compiled"] = cachekey.__file__.endswith(".so")


def test_key_without_query(benchmark):
    key = benchmark(
        cachekey.cache_key, b"GET", b"api.local", b"/v1/models", None, None, (), HEADERS, b""
    )
    assert len(key) == 32


def test_key_with_query_and_vary_header(benchmark):
    args = (
        b"GET",
        b"api.local",
        b"/v1/models",
        b"limit=20&order=desc",
        None,
        (b"accept",),
        HEADERS,
        b"route-1",
    )
    assert len(benchmark(cachekey.cache_key, *args)) == 32


def test_key_with_encoded_query_and_vary_params(benchmark):
    args = (
        b"GET",
        b"API.local",
        b"/v1/search",
        b"q=caf%C3%A9+au+lait&utm=x&page=2",
        (b"page", b"q"),
        (b"accept",),
        HEADERS,
        b"consumer-1:route-1",
    )
    assert len(benchmark(cachekey.cache_key, *args)) == 32
