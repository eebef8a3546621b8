"""The loader must stay fast enough to reload big configs in a worker: the
target is under 50 ms for 1,000 routes on an idle core. The limit asserted
here is looser because this machine is shared with other test runs; it still
catches an accidental quadratic pass (1,000 x 1,000 name comparisons alone
take longer)."""

from __future__ import annotations

import time

from config_docs import document

from fastgw.config.loader import parse_config

ROUTES = 1000
LIMIT_SECONDS = 0.15


def big_document() -> dict:
    return document(
        services=[
            {
                "name": f"svc-{i}",
                "url": f"http://10.0.{i // 250}.{i % 250}:8080/api",
                "routes": [
                    {
                        "name": f"route-{i}",
                        "paths": [f"/svc/{i}", f"~/items/{i}/\\d+$"],
                        "methods": ["GET", "POST"],
                        "hosts": [f"api{i}.example.com"],
                        "strip_path": False,
                    }
                ],
            }
            for i in range(ROUTES)
        ],
        upstreams=[
            {"name": f"up-{i}", "targets": [{"target": f"10.1.0.{i % 250}:80"}]} for i in range(50)
        ],
    )


def test_a_thousand_routes_load_quickly():
    doc = big_document()
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        config = parse_config(doc, env={})
        timings.append(time.perf_counter() - started)
    assert len(config.routes) == ROUTES
    assert min(timings) < LIMIT_SECONDS, f"best of 5: {min(timings) * 1000:.1f} ms"
