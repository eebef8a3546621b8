"""Connections to the shared Redis, through redis-py's own clients: a single
Redis, the master a set of Sentinels names (followed through failovers),
or a Redis Cluster (keys routed to their slot's node, MOVED followed).

Every client fails fast: no retry inside redis-py (a retry would double the
wait the plugin's ``timeout`` promises); the plugins decide what a failure
means (``fault_tolerant``, a cache Bypass).
"""

from __future__ import annotations

import ssl
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.crc import key_slot as _key_slot

from fastgw.config.model import RedisSettings
from fastgw.shared_redis.schema import names_a_redis

Client = aioredis.Redis | RedisCluster


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a plugin's Redis is, and how to log in; hashable, so that one
    client per endpoint and timeout serves every plugin instance."""

    kind: str  # "url", "single", "sentinel" or "cluster"
    nodes: tuple[tuple[str, int], ...] = ()  # single: one; sentinel: the Sentinels
    url: str | None = None
    master_name: str | None = None
    username: str | None = None
    password: str | None = None
    database: int = 0
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False
    ssl_verify: bool = False
    max_redirections: int = 5
    pool_size: int = 256

    @property
    def where(self) -> str:
        """For the log: the nodes, never a password."""
        if self.kind == "url":
            assert self.url is not None
            parts = urlsplit(self.url)
            return f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else self.url
        nodes = ",".join(f"{host}:{port}" for host, port in self.nodes)
        if self.kind == "sentinel":
            return f"master '{self.master_name}' of Sentinels {nodes}"
        return f"cluster {nodes}" if self.kind == "cluster" else nodes

    @property
    def identity(self) -> Hashable:
        """The data it reaches: the same for two endpoints that share keys."""
        return (self.kind, self.url, self.nodes, self.master_name, self.database,
                self.username)

    @property
    def cluster(self) -> bool:
        return self.kind == "cluster"

    def connect(self, timeout_s: float, command_timeout_s: float | None = None,
                blocking: bool = False) -> Client:
        """A new client with its own pool. ``blocking``: past ``pool_size``
        connections a command waits (up to the timeout) for a free one
        instead of failing at once (single Redis only)."""
        command_timeout = command_timeout_s if command_timeout_s is not None else timeout_s
        options: dict[str, Any] = {
            "socket_timeout": command_timeout, "socket_connect_timeout": timeout_s,
            "retry": Retry(NoBackoff(), 0), "username": self.username,
            "password": self.password,
        }
        if self.ssl:
            verify = self.ssl_verify
            options.update(ssl=True, ssl_cert_reqs=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE,
                           ssl_check_hostname=verify)
        if self.kind == "cluster":
            client = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in self.nodes],
                max_connections=self.pool_size, **options)
            # Kong's cluster_max_redirections: MOVED/ASK answers followed per command.
            client.RedisClusterRequestTTL = self.max_redirections
            return client
        if self.kind == "sentinel":
            sentinel_options = {key: options[key] for key in
                                ("socket_timeout", "socket_connect_timeout", "retry")}
            sentinel_options.update(username=self.sentinel_username,
                                    password=self.sentinel_password)
            if self.ssl:
                sentinel_options.update(ssl=True, ssl_cert_reqs=options["ssl_cert_reqs"])
            assert self.master_name is not None  # the schemas require it with the nodes
            sentinel = Sentinel(list(self.nodes), sentinel_kwargs=sentinel_options)
            return sentinel.master_for(self.master_name, db=self.database,
                                       max_connections=self.pool_size, **options)
        pool_class = aioredis.BlockingConnectionPool if blocking else aioredis.ConnectionPool
        pool_options: dict[str, Any] = {"max_connections": self.pool_size}
        if blocking:
            pool_options["timeout"] = timeout_s
        if self.kind == "url":
            assert self.url is not None
            for key in ("username", "password"):
                options.pop(key)
            pool = pool_class.from_url(self.url, **options, **pool_options)
        else:
            if options.pop("ssl", False):
                pool_options["connection_class"] = aioredis.SSLConnection
            (host, port), = self.nodes
            pool = pool_class(host=host, port=port, db=self.database, **options,
                              **pool_options)
        # from_pool: the client owns its pool and closes it with itself.
        return aioredis.Redis.from_pool(pool)


def endpoint(record: dict[str, Any], gateway: RedisSettings | None, plugin: str) -> Endpoint:
    """The Redis of a plugin's ``redis`` record, or the gateway's
    ``_gateway.redis`` when the record names none. ValueError when neither
    does."""
    common = {"pool_size": record["keepalive_pool_size"],
              "max_redirections": record["cluster_max_redirections"]}
    if names_a_redis(record):
        credentials = {"username": record["username"], "password": record["password"],
                       "ssl": record["ssl"], "ssl_verify": record["ssl_verify"]}
        if record["cluster_nodes"] is not None:
            return Endpoint("cluster", _pairs(record["cluster_nodes"], "ip"), **credentials,
                            **common)
        if record["sentinel_nodes"] is not None:
            return Endpoint("sentinel", _pairs(record["sentinel_nodes"], "host"),
                            master_name=record["sentinel_master"],
                            database=record["database"],
                            sentinel_username=record["sentinel_username"],
                            sentinel_password=record["sentinel_password"], **credentials,
                            **common)
        return Endpoint("single", ((record["host"], record["port"]),),
                        database=record["database"], **credentials, **common)
    if gateway is None:
        raise ValueError(f"{plugin}: strategy 'redis' needs config.redis (host, "
                         "sentinel_nodes or cluster_nodes) or _gateway.redis")
    if gateway.url is not None:
        return Endpoint("url", url=gateway.url, **common)
    shared = {"username": gateway.username, "password": gateway.password,
              "ssl": gateway.ssl, "ssl_verify": gateway.ssl_verify, **common}
    if gateway.cluster_nodes:
        return Endpoint("cluster", gateway.cluster_nodes, **shared)
    return Endpoint("sentinel", gateway.sentinels, master_name=gateway.master_name,
                    database=gateway.database, sentinel_username=gateway.sentinel_username,
                    sentinel_password=gateway.sentinel_password, **shared)


def slot_tag(key: str) -> str:
    """``key`` as a Redis Cluster hash tag: every key that starts with the
    result lives in the same slot, so one script may touch them all. (A
    ``{`` or ``}`` inside ``key`` moves the tag's end, but within ``key``,
    so the keys still share it.)"""
    return "{" + key + "}"


def key_slot(key: str) -> int:
    """The Cluster slot of ``key``."""
    return int(_key_slot(key.encode()))


def _pairs(nodes: list[dict[str, Any]], host_field: str) -> tuple[tuple[str, int], ...]:
    return tuple((node[host_field], node["port"]) for node in nodes)


def timeouts(record: dict[str, Any]) -> tuple[float, float]:
    """(connect, command) timeouts in seconds: Kong's connect, send and read
    timeouts where written, else ``timeout``."""
    fallback = record["timeout"]
    connect = record["connect_timeout"]
    send, read = record["send_timeout"], record["read_timeout"]
    command = max(send if send is not None else fallback, read if read is not None else fallback)
    return (connect if connect is not None else fallback) / 1000, command / 1000
