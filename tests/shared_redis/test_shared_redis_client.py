"""Where a plugin's Redis is, from its record or the gateway's, and the
clients built for each topology (no server needed: clients connect lazily)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool

from fastgw.config.model import RedisSettings
from fastgw.config.schema import Validation
from fastgw.shared_redis.client import endpoint, key_slot, slot_tag, timeouts
from fastgw.shared_redis.schema import REDIS


def record(**fields) -> dict:
    ctx = Validation()
    value = REDIS.validate(fields, (None, "redis"), ctx)
    assert not ctx.errors
    return value


def test_the_plugin_record_comes_first_then_the_gateway():
    gateway = RedisSettings(cluster_nodes=(("c1", 7000),), password="g")
    own = endpoint(record(host="r", port=6380, database=2), gateway, "p")
    assert (own.kind, own.nodes, own.database) == ("single", (("r", 6380),), 2)
    shared = endpoint(record(), gateway, "p")
    assert (shared.kind, shared.nodes, shared.password) == ("cluster", (("c1", 7000),), "g")
    with pytest.raises(ValueError, match="p: strategy 'redis' needs config.redis"):
        endpoint(record(), None, "p")


def test_each_topology_gets_redis_py_s_own_client():
    sentinel = endpoint(record(sentinel_master="m", sentinel_nodes=[{"host": "s", "port": 1}],
                               sentinel_password="sp", password="p"), None, "p")
    client = sentinel.connect(0.5)
    assert isinstance(client, Redis)
    assert isinstance(client.connection_pool, SentinelConnectionPool)
    assert client.connection_pool.service_name == "m"
    assert sentinel.where == "master 'm' of Sentinels s:1"
    cluster = endpoint(record(cluster_nodes=[{"ip": "c", "port": 2}],
                              cluster_max_redirections=3), None, "p")
    client = cluster.connect(0.5)
    assert isinstance(client, RedisCluster) and client.RedisClusterRequestTTL == 3
    asyncio.run(client.aclose())


def test_kong_s_split_timeouts_fall_back_to_timeout():
    assert timeouts(record(timeout=300)) == (0.3, 0.3)
    assert timeouts(record(timeout=300, connect_timeout=100, read_timeout=900)) == (0.1, 0.9)


def test_the_keys_of_one_limit_share_a_slot():
    tag = slot_tag("ratelimit:r:s:client{odd}")
    slots = {key_slot(f"{tag}:{start}:minute") for start in range(0, 600_000, 60_000)}
    assert len(slots) == 1
    assert key_slot(slot_tag("ratelimit:r:s:a")) != key_slot(slot_tag("ratelimit:r:s:b"))
