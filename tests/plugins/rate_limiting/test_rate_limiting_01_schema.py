"""rate-limiting config: Kong's defaults, the Kong 2.x Redis names, and every
bad value reported at its path."""

import pytest

from fastgw.plugins.rate_limiting.schema import REDIS, SCHEMA

REDIS_DEFAULTS = {"host": None, "port": 6379, "timeout": 2000, "connect_timeout": None,
                  "send_timeout": None, "read_timeout": None, "username": None,
                  "password": None, "database": 0, "ssl": False, "ssl_verify": False,
                  "server_name": None, "sentinel_master": None, "sentinel_role": None,
                  "sentinel_nodes": None, "sentinel_username": None, "sentinel_password": None,
                  "cluster_nodes": None, "cluster_max_redirections": 5,
                  "keepalive_pool_size": 256, "keepalive_backlog": None,
                  "connection_is_proxied": False, "cloud_authentication": None}


def test_defaults_follow_kong(validated):
    assert validated({"minute": 10}) == {
        "second": None, "minute": 10, "hour": None, "day": None, "month": None, "year": None,
        "limit_by": "consumer", "header_name": None, "path": None, "policy": "local",
        "algorithm": "fixed", "burst": None, "fault_tolerant": True, "redis": REDIS_DEFAULTS,
        "hide_client_headers": False, "error_code": 429,
        "error_message": "API rate limit exceeded", "sync_rate": -1,
    }


def test_every_field_has_a_description():
    assert all(field.description for field in SCHEMA.fields.values())
    assert all(field.description for field in REDIS.fields.values())


def test_a_full_config_is_accepted(config_errors):
    assert config_errors({
        "second": 5, "minute": 100, "hour": 1000, "day": 10000, "month": 100000,
        "year": 1000000, "limit_by": "header", "header_name": "X-Tenant", "policy": "redis",
        "algorithm": "token-bucket", "burst": 20, "fault_tolerant": False,
        "redis": {"host": "redis.internal", "port": 6380, "timeout": 200, "username": "gw",
                  "password": "s3cret", "database": 2, "ssl": True, "ssl_verify": True},
        "hide_client_headers": True, "error_code": 403, "error_message": "slow down",
        "sync_rate": 0,
    }) == []


def test_kong_2_redis_names_fold_into_the_redis_record(validated):
    config = validated({"minute": 10, "policy": "redis", "redis_host": "10.0.0.7",
                        "redis_port": 6380, "redis_timeout": 150, "redis_password": "pw",
                        "redis_database": 4})
    assert config["redis"] == {**REDIS_DEFAULTS, "host": "10.0.0.7", "port": 6380,
                               "timeout": 150, "password": "pw", "database": 4}
    assert not any(name.startswith("redis_") for name in config)


def test_equal_limits_for_longer_periods_are_fine(config_errors):
    assert config_errors({"second": 10, "minute": 10, "hour": 10.5}) == []


@pytest.mark.parametrize(("config", "error"), [
    ({}, "plugins[0].config: at least one of these fields must be non-empty: 'second', "
         "'minute', 'hour', 'day', 'month', 'year'"),
    ({"minute": 0}, "plugins[0].config.minute: value must be greater than 0"),
    ({"hour": -5}, "plugins[0].config.hour: value must be greater than 0"),
    ({"second": "10"}, "plugins[0].config.second: expected a number"),
    ({"minute": 10, "minutes": 10}, "plugins[0].config.minutes: unknown field"),
    ({"second": 10, "hour": 5},
     "plugins[0].config: The limit for hour(5.0) cannot be lower than the limit for "
     "second(10.0)"),
    ({"minute": 10, "limit_by": "consumer-group"},
     "plugins[0].config.limit_by: expected one of: consumer, credential, ip, service, header, "
     "path"),
    ({"minute": 10, "limit_by": "header"},
     "plugins[0].config.header_name: required when limit_by is 'header'"),
    ({"minute": 10, "limit_by": "path"},
     "plugins[0].config.path: required when limit_by is 'path'"),
    ({"minute": 10, "limit_by": "header", "header_name": "x tenant"},
     "plugins[0].config.header_name: bad header name 'x tenant', allowed characters are "
     "A-Z, a-z, 0-9, '_', and '-'"),
    ({"minute": 10, "limit_by": "path", "path": "orders"},
     "plugins[0].config.path: should start with: /"),
    ({"minute": 10, "policy": "cluster"},
     "plugins[0].config.policy: expected one of: local, redis"),
    ({"minute": 10, "algorithm": "leaky"},
     "plugins[0].config.algorithm: expected one of: fixed, sliding, token-bucket"),
    ({"minute": 10, "burst": 5},
     "plugins[0].config.burst: only applies to algorithm 'token-bucket'"),
    ({"minute": 10, "algorithm": "token-bucket", "burst": 0.5},
     "plugins[0].config.burst: value must be at least 1"),
    ({"minute": 10, "fault_tolerant": "yes"},
     "plugins[0].config.fault_tolerant: expected a boolean"),
    ({"minute": 10, "error_code": 99},
     "plugins[0].config.error_code: value should be between 100 and 599"),
    ({"minute": 10, "error_message": ""},
     "plugins[0].config.error_message: length must be at least 1"),
    ({"minute": 10, "sync_rate": -2},
     "plugins[0].config.sync_rate: value should be between -1 and 86400"),
    ({"minute": 10, "redis": {"host": "bad host"}},
     "plugins[0].config.redis.host: invalid host 'bad host': expected a host name or an IP "
     "address (no port)"),
    ({"minute": 10, "redis": {"port": 70000}},
     "plugins[0].config.redis.port: value should be between 0 and 65535"),
    ({"minute": 10, "redis": {"timeout": 0}},
     "plugins[0].config.redis.timeout: value should be between 1 and 2147483646"),
    ({"minute": 10, "redis": {"host": "r", "server_name": "x"}},
     "plugins[0].config.redis.server_name: not supported by fastgw unless equal to host: TLS "
     "verifies the name it connects to"),
    ({"minute": 10, "redis": {"sentinel_nodes": [{"host": "s"}]}},
     "plugins[0].config.redis.sentinel_master: required with the other Sentinel field"),
    ({"minute": 10, "redis": {"sentinel_nodes": [{}], "sentinel_master": "m",
                              "cluster_nodes": [{}]}},
     "plugins[0].config.redis.cluster_nodes: set either sentinel_nodes or cluster_nodes, not "
     "both"),
    ({"minute": 10, "redis": {"sentinel_nodes": [{}], "sentinel_master": "m",
                              "sentinel_role": "slave"}},
     "plugins[0].config.redis.sentinel_role: 'slave' is not supported by fastgw: the plugins "
     "write to Redis, use 'master'"),
    ({"minute": 10, "redis": {"cluster_nodes": [{"ip": "10.0.0.1"}], "database": 1}},
     "plugins[0].config.redis.database: a Redis Cluster has only database 0"),
    ({"minute": 10, "redis": {"keepalive_backlog": 10}},
     "plugins[0].config.redis.keepalive_backlog: not supported by fastgw: connections wait for "
     "Redis within 'timeout'; remove it"),
    ({"minute": 10, "redis": {"connection_is_proxied": True}},
     "plugins[0].config.redis.connection_is_proxied: not supported by fastgw: connect to Redis, "
     "its Sentinels or its Cluster nodes directly"),
    ({"minute": 10, "redis": {"cloud_authentication": {"auth_provider": "aws"}}},
     "plugins[0].config.redis.cloud_authentication: not supported by fastgw: give the Redis "
     "password (or a vault reference to it) in 'password'"),
    ({"minute": 10, "policy": "redis", "redis": {"password": "p"}},
     "plugins[0].config.redis.host: required when redis.password is set (or put it in "
     "_gateway.redis)"),
    ({"minute": 10, "redis_port": "6379"}, "plugins[0].config.redis_port: expected an integer"),
])
def test_bad_values_name_their_path(config_errors, config, error):
    assert config_errors(config) == [error]


def test_all_errors_are_reported_at_once(config_errors):
    errors = config_errors({"minute": 0, "limit_by": "nobody", "redis": {"database": -1}})
    assert sorted(errors) == [
        "plugins[0].config.limit_by: expected one of: consumer, credential, ip, service, "
        "header, path",
        "plugins[0].config.minute: value must be greater than 0",
        "plugins[0].config.redis.database: value should be between 0 and 2147483647",
    ]


def test_the_redis_password_is_secret_and_may_come_from_the_vault(config_errors, monkeypatch):
    assert REDIS.fields["password"].secret
    monkeypatch.setenv("RL_REDIS_PASSWORD", "from-env")
    assert config_errors({"minute": 1, "redis": {"password": "{vault://env/rl-redis-password}"}
                          }) == []
