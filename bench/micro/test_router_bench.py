"""Router.match cost per lookup, compiled and uncompiled.

Why the trie exists: a gateway with 1,000 routes must still pick one in well
under a microsecond (PERF.md: each extra microsecond costs about 6% of
throughput). Run with ``pytest bench/micro/test_router_bench.py``; under
``--benchmark-disable`` each case runs once, as a correctness check.
"""

import importlib
import importlib.util
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
from fastgw.config.model import Route, Service  # noqa: E402

SERVICE = Service(name="llm", protocol="http", host="upstream.test", port=80, path="/v1")


def _load(build):
    if build == "compiled":
        module = importlib.import_module("fastgw._core.router")
        if not module.__file__.endswith(".so"):
            pytest.skip("fastgw._core.router is not compiled")
        return module
    spec = importlib.util.spec_from_file_location(
        "fastgw._core._bench_pure_router", SRC / "fastgw" / "_core" / "router.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=["compiled", "pure"])
def router_module(request):
    return _load(request.param)


def _router(module, routes):
    return module.Router([(route, SERVICE, route.name) for route in routes])


def _prefix_routes():
    return [Route(name=f"p{i}", service="llm", paths=(f"/svc{i:04d}/api",)) for i in range(1000)]


def _host_routes():
    return [
        Route(
            name=f"h{i}",
            service="llm",
            hosts=(f"svc{i}.example.com",),
            paths=("/v1",),
            methods=("GET", "POST"),
        )
        for i in range(1000)
    ]


def _regex_routes():
    return [
        Route(name=f"x{i}", service="llm", paths=(rf"~/items{i}/(?<id>\d+)$",)) for i in range(100)
    ]


CASES = {
    # name: (routes, method, host, url, expected payload)
    "prefix-1000-hit": (
        _prefix_routes,
        b"POST",
        b"localhost:8000",
        b"/svc0500/api/chat/completions?x=1",
        "p500",
    ),
    "prefix-1000-miss": (_prefix_routes, b"POST", b"localhost:8000", b"/nothing/here", None),
    "hosts-1000-hit": (_host_routes, b"POST", b"svc500.example.com:8000", b"/v1/chat", "h500"),
    "regex-100-hit": (_regex_routes, b"GET", None, b"/items50/1234", "x50"),
    "regex-100-miss": (_regex_routes, b"GET", None, b"/items50/abc", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_match(benchmark, router_module, case):
    make_routes, method, host, url, expected = CASES[case]
    router = _router(router_module, make_routes())
    match = router.match(method, host, url, None)
    assert (None if match is None else match.payload) == expected
    benchmark.group = case
    benchmark(router.match, method, host, url, None)
