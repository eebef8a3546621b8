"""Canary and version routing: a weighted split, reweighting through the
admin API while traffic flows, and header-matched routes to another service."""

import collections

import orjson
from upstreams_testkit import Client, Load, backends, balanced_doc


def canary_doc(stable, canary, stable_weight: int, canary_weight: int) -> dict:
    return balanced_doc([{"target": stable.target, "weight": stable_weight},
                         {"target": canary.target, "weight": canary_weight}])


def test_weights_90_10_split_traffic(start_gateway):
    with backends("stable", "canary") as (stable, canary):
        gw = start_gateway(canary_doc(stable, canary, 90, 10))
        client = Client(gw.port)
        seen = collections.Counter(client.backend() for _ in range(1000))
    assert seen == {"stable": 900, "canary": 100}


def test_reweighting_through_the_admin_api_drops_no_request(start_gateway):
    with backends("stable", "canary") as (stable, canary):
        gw = start_gateway(canary_doc(stable, canary, 90, 10))
        with Load(gw.port) as load:
            load.wait_for(200)
            swapped_at = len(load.outcomes)
            status, _, body = gw.admin("POST", "/config",
                                       body=orjson.dumps(canary_doc(stable, canary, 10, 90)))
            assert status == 201, body
            load.wait_for(200)
        assert load.errors == []
        assert {status for _, status, _ in load.outcomes} == {200}
        assert swapped_at >= 200 and len(load.outcomes) >= swapped_at + 200
        # The new weights rule from now on.
        client = Client(gw.port)
        seen = collections.Counter(client.backend() for _ in range(200))
    assert seen == {"stable": 20, "canary": 180}


def test_a_header_routes_to_the_version_2_service(start_gateway):
    with backends("v1-a", "v1-b", "v2") as (v1a, v1b, v2):
        doc = balanced_doc([v1a, v1b], name="models-v1")
        doc["services"].append({
            "name": "models-v2", "url": f"http://{v2.target}",
            "routes": [{"name": "v2-by-header", "paths": ["/"],
                        "headers": {"x-model-version": ["v2"]}}]})
        gw = start_gateway(doc)
        client = Client(gw.port)
        plain = collections.Counter(client.backend() for _ in range(10))
        pinned = collections.Counter(client.backend(headers={"X-Model-Version": "v2"})
                                     for _ in range(10))
        other = client.backend(headers={"X-Model-Version": "v3"})
    assert plain == {"v1-a": 5, "v1-b": 5}
    assert pinned == {"v2": 10}
    assert other in ("v1-a", "v1-b")
