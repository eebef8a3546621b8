"""The plugin is native: it gives routes a metrics cell and no Python chain."""

import asyncio

from fastgw.config.loader import parse_config
from fastgw.runtime import new_gateway


def gateway_for(doc):
    loop = asyncio.new_event_loop()
    try:
        return new_gateway(loop, parse_config(doc))
    finally:
        loop.close()


def doc(plugins, routes=None):
    return {
        "_format_version": "3.0",
        "services": [{"name": "s", "url": "http://127.0.0.1:9",
                      "routes": routes or [{"name": "a", "paths": ["/a"]},
                                           {"name": "b", "paths": ["/b"]}]}],
        "plugins": plugins,
    }


def runtime_of(gw, path):
    return gw.router.match(b"GET", b"h", path, None).payload


def test_route_with_only_prometheus_stays_on_the_fast_path():
    gw = gateway_for(doc([{"name": "prometheus", "route": "a",
                           "config": {"status_code_metrics": True}}]))
    a, b = runtime_of(gw, b"/a"), runtime_of(gw, b"/b")
    assert a.plugins is None and a.metrics is not None
    assert b.metrics is None
    assert gw.unmatched_metrics is None
    assert gw.metrics_export["status_code_metrics"] is True


def test_global_prometheus_covers_every_route_and_misses():
    gw = gateway_for(doc([{"name": "prometheus", "config": {"per_consumer": True}}]))
    assert runtime_of(gw, b"/a").metrics.per_consumer
    assert runtime_of(gw, b"/b").metrics is not None
    assert gw.unmatched_metrics is not None


def test_cells_survive_a_config_swap():
    from fastgw.runtime import apply_config

    d = doc([{"name": "prometheus"}])
    loop = asyncio.new_event_loop()
    try:
        gw = new_gateway(loop, parse_config(d))
        cell = runtime_of(gw, b"/a").metrics
        cell.add(200, 1.0)
        apply_config(gw, parse_config(d))
        assert runtime_of(gw, b"/a").metrics is cell
        assert cell.snapshot()["codes"] == {"200": 1}
    finally:
        loop.close()
