"""Cost of ai-proxy-advanced's routing decision, per request, by algorithm,
on the AI bench rows' config and chat body (bench/run.py): what a request
pays before its target is known (the capability check, then the algorithm's
preference and pick). Issue 24's bar: lowest-cost and complexity within
20 µs of round-robin. Under ``--benchmark-disable`` each case runs once,
as a correctness check."""

import importlib.util
import json
import pathlib
import sys

import pytest

from fastgw.config.loader import parse_config
from fastgw.plugins.ai_proxy_advanced.handler import AIProxyAdvanced
from fastgw.plugins.state import ConfigState

_SPEC = importlib.util.spec_from_file_location(
    "fastgw_bench_run", pathlib.Path(__file__).resolve().parents[1] / "run.py")
assert _SPEC is not None and _SPEC.loader is not None
bench_run = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = bench_run  # its dataclasses look their module up
_SPEC.loader.exec_module(bench_run)
REQUEST = json.loads(bench_run.CHAT_BODY)


def routing_plugin(algorithm: str) -> AIProxyAdvanced:
    doc = bench_run.ai_gateway_routing_config(bench_run.Targets(("http://127.0.0.1:9",)),
                                              algorithm)
    parsed = parse_config(doc)
    entry = next(p for p in parsed.plugins if p.name == "ai-proxy-advanced")
    return AIProxyAdvanced(entry.config, ConfigState(parsed), entry)


@pytest.mark.parametrize("algorithm", ["round-robin", "lowest-cost", "complexity"])
def test_routing_decision(benchmark, algorithm):
    plugin = routing_plugin(algorithm)

    def decide() -> int:
        state: dict = {}
        plugin._choose(state, REQUEST, False)
        index = plugin._pick(state, None)
        plugin.balancer.release(index)
        return index

    index = benchmark(decide)
    assert 0 <= index < 3
    if algorithm == "lowest-cost":
        assert index == 0  # the cheapest target takes the bench's short chat
