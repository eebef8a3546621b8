"""Balancing end to end: weights over many requests, the latency balancer
against a slowed target, and consumers pinned by consistent hashing."""

import collections

import orjson
from upstreams_testkit import Client, backends, balanced_doc


def test_weights_are_respected_over_many_requests(start_gateway):
    with backends("a", "b", "c") as (a, b, c):
        gw = start_gateway(balanced_doc([
            {"target": a.target, "weight": 50},
            {"target": b.target, "weight": 30},
            {"target": c.target, "weight": 20},
            {"target": "127.0.0.1:9", "weight": 0}]))  # weight 0: never picked
        client = Client(gw.port)
        seen = collections.Counter(client.backend() for _ in range(500))
    # Smooth weighted round-robin is exact over whole cycles of the weights.
    assert seen == {"a": 250, "b": 150, "c": 100}


def test_latency_balancer_moves_traffic_away_from_a_slowed_target(start_gateway):
    with backends("a", "b") as servers:
        gw = start_gateway(balanced_doc(servers, algorithm="latency"))
        client = Client(gw.port)
        before = collections.Counter(client.backend() for _ in range(40))
        # Slow down whichever target the balancer favours now.
        favourite = max(servers, key=lambda server: before[server.name])
        other = next(server for server in servers if server is not favourite)
        favourite.delay = 0.05
        after = collections.Counter(client.backend() for _ in range(100))
    # PeakEWMA notices the 50 ms at once; only the odd request still goes there.
    assert after[favourite.name] <= 10, (before, after)
    assert after[other.name] >= 90


def test_hash_on_consumer_keeps_each_consumer_on_one_target(start_gateway):
    users = [f"user{n}" for n in range(10)]
    with backends("a", "b", "c") as servers:
        doc = balanced_doc(servers, algorithm="consistent-hashing", hash_on="consumer")
        doc["consumers"] = [{"username": user, "keyauth_credentials": [{"key": f"key-{user}"}]}
                            for user in users]
        doc["plugins"] = [{"name": "key-auth"}]
        gw = start_gateway(doc)
        client = Client(gw.port)
        assert client.request()[0] == 401  # no key, no consumer: key-auth says no first
        placement = {}
        for user in users:
            picks = {client.backend(headers={"apikey": f"key-{user}"}) for _ in range(5)}
            assert len(picks) == 1, (user, picks)
            placement[user] = picks.pop()
        # A new ring (the upstream changed, so it is rebuilt) places them alike.
        doc["upstreams"][0]["tags"] = ["rebuilt"]
        assert gw.admin("POST", "/config", body=orjson.dumps(doc))[0] == 201
        again = {user: client.backend(headers={"apikey": f"key-{user}"}) for user in users}
    assert again == placement
    assert len(set(placement.values())) >= 2  # ten consumers spread over the targets


def test_an_upstream_s_host_header_is_the_host_targets_get(start_gateway):
    from fastgw.testing import UpstreamServer

    with UpstreamServer() as server:
        target = f"127.0.0.1:{server.port}"
        gw = start_gateway(balanced_doc([{"target": target}], host_header="api.internal"))
        assert gw.request("GET", "/x")[0] == 200
        assert server.requests[-1].header("host") == "api.internal"
        plain = balanced_doc([{"target": target}])
        assert gw.admin("POST", "/config", body=orjson.dumps(plain))[0] == 201
        assert gw.request("GET", "/x")[0] == 200
        assert server.requests[-1].header("host") == "pool"
