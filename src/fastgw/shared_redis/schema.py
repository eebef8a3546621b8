"""The ``redis`` record of the plugins that keep state in Redis
(rate-limiting, proxy-cache, ai-rate-limiting-advanced, ai-semantic-cache),
with the field names of Kong's Redis record, Sentinel and Cluster included.

Where the record names no Redis (no ``host``, ``sentinel_nodes`` or
``cluster_nodes``), the gateway's ``_gateway.redis`` is used. A Kong field
fastgw cannot honour is refused with a message, never ignored.
"""

from __future__ import annotations

from typing import Any

from fastgw.config.checks import check_host
from fastgw.config.schema import (
    Array,
    Boolean,
    Field,
    Integer,
    Map,
    Path,
    Record,
    String,
    Validation,
)

_INT32_MAX = 2**31 - 1
# Kong's typedefs.timeout.
_TIMEOUT_MAX = 2**31 - 2


def _timeout(description: str) -> Integer:
    return Integer(between=(1, _TIMEOUT_MAX), description=description)


def redis_fields(defaults: bool = True) -> dict[str, Field]:
    """Kong's Redis record. Without ``defaults``: the same checks for Kong
    2.x's flat names (``redis_host``...), where absent must mean "not
    written" so that the nested value stays."""

    def default(value: object) -> dict:
        return {"default": value} if defaults else {}

    return {
        "host": String(check=check_host,
                       description="Redis host; unset (and no sentinel or cluster nodes): "
                       "the gateway's _gateway.redis."),
        "port": Integer(between=(0, 65535), **default(6379), description="Redis port."),
        "timeout": Integer(
            between=(1, _TIMEOUT_MAX), **default(2000),
            description="Milliseconds allowed to connect to Redis and for each command; "
            "past it the plugin acts as when Redis is down."),
        "connect_timeout": _timeout("Milliseconds to connect; unset: timeout."),
        "send_timeout": _timeout("Milliseconds to send a command; unset: timeout (the larger "
                                 "of send and read bounds each command)."),
        "read_timeout": _timeout("Milliseconds to read an answer; unset: timeout."),
        "username": String(referenceable=True,
                           description="Redis ACL user name (Redis 6+); unset: no ACL login."),
        "password": String(len_min=0, referenceable=True, secret=True,
                           description="Redis password (AUTH); unset: no AUTH."),
        "database": Integer(between=(0, _INT32_MAX), **default(0),
                            description="Redis database number (SELECT)."),
        "ssl": Boolean(**default(False), description="Connect to Redis over TLS."),
        "ssl_verify": Boolean(**default(False),
                              description="Verify the Redis server's TLS certificate and name."),
        "server_name": String(description="Kong's TLS server name: only the host itself "
                              "(fastgw verifies the name it connects to)."),
    }


def _node(host_field: str) -> Record:
    return Record({
        host_field: String(check=check_host, default="127.0.0.1", description="Node host."),
        "port": Integer(between=(0, 65535), default=6379, description="Node port."),
    }, description="One Redis node.")


def _topology_fields() -> dict[str, Field]:
    """Kong Enterprise's Sentinel and Cluster fields, and its pool settings."""
    return {
        "sentinel_master": String(description="The master the Sentinels watch; with "
                                  "sentinel_nodes, the plugin talks to whichever node is "
                                  "master now."),
        "sentinel_role": String(one_of=("master", "slave", "any"),
                                description="Only 'master' (the plugins write)."),
        "sentinel_nodes": Array(_node("host"), len_min=1,
                                description="The Sentinels to ask for the master."),
        "sentinel_username": String(referenceable=True,
                                    description="ACL user name on the Sentinels."),
        "sentinel_password": String(len_min=0, referenceable=True, secret=True,
                                    description="Password on the Sentinels."),
        "cluster_nodes": Array(_node("ip"), len_min=1,
                               description="Some nodes of a Redis Cluster (the others are "
                               "discovered); keys of one limit share a hash slot."),
        "cluster_max_redirections": Integer(between=(1, 1000), default=5,
                                            description="MOVED/ASK redirections followed per "
                                            "command."),
        "keepalive_pool_size": Integer(between=(1, _INT32_MAX), default=256,
                                       description="Connections kept per worker and Redis "
                                       "node; more are opened while needed."),
        "keepalive_backlog": Integer(between=(0, _INT32_MAX),
                                     description="Not supported: must be unset."),
        "connection_is_proxied": Boolean(default=False,
                                         description="Not supported: must be false."),
        "cloud_authentication": Map(String(), String(), check=_no_cloud_authentication,
                                    description="Not supported: must be unset."),
    }


def _no_cloud_authentication(value: dict) -> str | None:
    return ("not supported by fastgw: give the Redis password (or a vault reference to it) "
            "in 'password'")


def _check_topology(redis: dict, path: Path, ctx: Validation) -> None:
    sentinel, cluster = redis["sentinel_nodes"], redis["cluster_nodes"]
    if sentinel is not None and cluster is not None:
        ctx.error((path, "cluster_nodes"), "set either sentinel_nodes or cluster_nodes, not both")
    if (sentinel is None) != (redis["sentinel_master"] is None):
        missing = "sentinel_master" if sentinel is not None else "sentinel_nodes"
        ctx.error((path, missing), "required with the other Sentinel field")
    if redis["sentinel_role"] not in (None, "master"):
        ctx.error((path, "sentinel_role"), f"'{redis['sentinel_role']}' is not supported by "
                  "fastgw: the plugins write to Redis, use 'master'")
    if cluster is not None and redis["database"] != 0:
        ctx.error((path, "database"), "a Redis Cluster has only database 0")
    if redis["host"] is not None and redis["server_name"] not in (None, redis["host"]):
        ctx.error((path, "server_name"), "not supported by fastgw unless equal to host: TLS "
                  "verifies the name it connects to")
    if redis["keepalive_backlog"] is not None:
        ctx.error((path, "keepalive_backlog"), "not supported by fastgw: connections wait for "
                  "Redis within 'timeout'; remove it")
    if redis["connection_is_proxied"]:
        ctx.error((path, "connection_is_proxied"), "not supported by fastgw: connect to "
                  "Redis, its Sentinels or its Cluster nodes directly")


def redis_record(description: str) -> Record:
    return Record({**redis_fields(), **_topology_fields()}, validator=_check_topology,
                  default={}, description=description)


REDIS = redis_record("The Redis that strategy (or policy) 'redis' uses; without host, "
                     "sentinel_nodes or cluster_nodes, the gateway's _gateway.redis.")

# Settings that only apply to a connection the plugin describes itself: with
# _gateway.redis they belong there.
_OWN_CONNECTION = ("username", "password", "server_name", "sentinel_username",
                   "sentinel_password")


def names_a_redis(redis: dict[str, Any]) -> bool:
    """Whether the record says where Redis is (else: _gateway.redis)."""
    return (redis["host"] is not None or redis["sentinel_nodes"] is not None
            or redis["cluster_nodes"] is not None)


def check_own_connection(redis: dict[str, Any], path: Path, ctx: Validation) -> None:
    """For a plugin that uses Redis: connection settings without a Redis to
    apply them to would be silently lost, so they are errors."""
    if names_a_redis(redis):
        return
    for name in _OWN_CONNECTION:
        if redis[name] is not None:
            ctx.error((path, "host"), f"required when redis.{name} is set (or put it in "
                      "_gateway.redis)")
            return
    if redis["database"] != 0:
        ctx.error((path, "host"), "required when redis.database is set (or put it in "
                  "_gateway.redis)")
