"""proxy-cache config: Kong 3.x's defaults, and every bad value reported
with its path by the real loader."""

import pytest

from fastgw.config.schema import REDACTED, Validation
from fastgw.plugins.proxy_cache.schema import SCHEMA
from fastgw.shared_redis.schema import REDIS

MEMORY = {"strategy": "memory"}


def test_defaults_are_kongs(validated):
    config = validated(MEMORY)
    assert config["response_code"] == [200, 301, 404]
    assert config["request_method"] == ["GET", "HEAD"]
    assert config["content_type"] == ["text/plain", "application/json"]
    assert config["cache_ttl"] == 300
    assert config["cache_control"] is False
    assert config["ignore_uri_case"] is False
    assert config["storage_ttl"] is None
    assert config["vary_query_params"] is None
    assert config["vary_headers"] is None
    assert config["response_headers"] == {"age": True, "X-Cache-Status": True,
                                          "X-Cache-Key": True}
    assert config["memory"] == {"max_bytes": 64 * 1024 * 1024, "dictionary_name": None}
    # The Redis record every Redis-backed plugin shares (Sentinel and Cluster fields too).
    assert config["redis"] == REDIS.validate({}, (None, "redis"), Validation())
    assert {name: config["redis"][name] for name in (
        "host", "port", "timeout", "username", "password", "database", "ssl", "ssl_verify",
        "server_name", "sentinel_nodes", "cluster_nodes")} == {
        "host": None, "port": 6379, "timeout": 2000, "username": None, "password": None,
        "database": 0, "ssl": False, "ssl_verify": False, "server_name": None,
        "sentinel_nodes": None, "cluster_nodes": None}


def test_a_kong_config_is_accepted_as_written(validated):
    config = validated({
        "strategy": "memory", "memory": {"dictionary_name": "kong_db_cache"},
        "response_code": [200], "request_method": ["GET", "POST"],
        "content_type": ["application/json; charset=utf-8", "text/*"], "cache_ttl": 30,
        "storage_ttl": 600, "cache_control": True, "ignore_uri_case": True,
        "vary_query_params": ["page"], "vary_headers": ["Accept-Language"],
        "response_headers": {"age": False, "X-Cache-Key": False},
    })
    assert config["memory"]["dictionary_name"] == "kong_db_cache"
    assert config["response_headers"] == {"age": False, "X-Cache-Status": True,
                                          "X-Cache-Key": False}
    assert config["vary_headers"] == ["Accept-Language"]


def test_redis_strategy_may_rely_on_the_gateway_url(validated):
    assert validated({"strategy": "redis"})["redis"]["host"] is None
    redis = {"host": "10.0.0.7", "port": 6380, "password": "pw", "database": 2, "timeout": 150}
    assert validated({"strategy": "redis", "redis": redis})["redis"]["port"] == 6380


def test_redis_password_is_redacted_and_may_be_a_vault_reference(validated, monkeypatch):
    monkeypatch.setenv("CACHE_REDIS_PASSWORD", "s3cret")
    config = validated({"strategy": "redis", "redis": {
        "host": "redis.local", "password": "{vault://env/cache-redis-password}"}})
    assert config["redis"]["password"] == "s3cret"
    assert SCHEMA.redact(config)["redis"]["password"] == REDACTED


def test_strategy_is_required(config_errors):
    assert config_errors({}) == ["plugins[0].config.strategy: required field missing"]
    assert config_errors(None) == ["plugins[0].config.strategy: required field missing"]


@pytest.mark.parametrize("config, error", [
    ({"strategy": "disk"}, "plugins[0].config.strategy: expected one of: memory, redis"),
    ({**MEMORY, "cache_ttl": 0},
     "plugins[0].config.cache_ttl: value should be between 1 and 2147483646"),
    ({**MEMORY, "cache_ttl": "300"}, "plugins[0].config.cache_ttl: expected an integer"),
    ({**MEMORY, "storage_ttl": -1},
     "plugins[0].config.storage_ttl: value should be between 0 and 2147483646"),
    ({**MEMORY, "response_code": []},
     "plugins[0].config.response_code: length must be at least 1"),
    ({**MEMORY, "response_code": [200, 99]},
     "plugins[0].config.response_code[1]: value should be between 100 and 900"),
    ({**MEMORY, "request_method": ["GET", "DELETE"]},
     "plugins[0].config.request_method[1]: expected one of: HEAD, GET, POST, PATCH, PUT"),
    ({**MEMORY, "content_type": ["application/json", "json"]},
     "plugins[0].config.content_type[1]: invalid media type 'json', expected "
     "'type/subtype' (parameters allowed)"),
    ({**MEMORY, "cache_control": "yes"}, "plugins[0].config.cache_control: expected a boolean"),
    ({**MEMORY, "vary_headers": ["Accept", "X Bad"]},
     "plugins[0].config.vary_headers[1]: invalid header name 'X Bad'"),
    ({**MEMORY, "vary_query_params": "page"},
     "plugins[0].config.vary_query_params: expected an array"),
    ({**MEMORY, "memory": {"max_bytes": 100}},
     "plugins[0].config.memory.max_bytes: value should be between 4096 and 1099511627776"),
    ({**MEMORY, "memory": {"size": 100}}, "plugins[0].config.memory.size: unknown field"),
    ({**MEMORY, "response_headers": {"Age": True}},
     "plugins[0].config.response_headers.Age: unknown field"),
    ({**MEMORY, "response_headers": {"X-Cache-Key": 1}},
     "plugins[0].config.response_headers.X-Cache-Key: expected a boolean"),
    ({"strategy": "redis", "redis": {"host": "redis:6379"}},
     "plugins[0].config.redis.host: invalid host 'redis:6379': expected a host name or an "
     "IP address (no port)"),
    ({"strategy": "redis", "redis": {"host": "r", "port": 70000}},
     "plugins[0].config.redis.port: value should be between 0 and 65535"),
    ({"strategy": "redis", "redis": {"host": "r", "timeout": -5}},
     "plugins[0].config.redis.timeout: value should be between 1 and 2147483646"),
    ({**MEMORY, "dictionary_name": "kong_db_cache"},
     "plugins[0].config.dictionary_name: unknown field"),
])
def test_each_bad_value_is_reported_at_its_path(config_errors, config, error):
    assert config_errors(config) == [error]


@pytest.mark.parametrize("redis, field", [
    ({"password": "pw"}, "password"),
    ({"username": "cache"}, "username"),
    ({"server_name": "redis.local"}, "server_name"),
    ({"database": 3}, "database"),
])
def test_redis_connection_details_need_a_host(config_errors, redis, field):
    assert config_errors({"strategy": "redis", "redis": redis}) == [
        f"plugins[0].config.redis.host: required when redis.{field} is set "
        "(or put it in _gateway.redis)"]
    # With a host they are fine, and with the memory strategy they are unused.
    assert config_errors({"strategy": "redis", "redis": {**redis, "host": "redis.local"}}) == []
    assert config_errors({"strategy": "memory", "redis": redis}) == []


def test_every_error_of_a_config_is_reported_at_once(config_errors):
    errors = config_errors({"strategy": "memory", "cache_ttl": -1, "response_code": ["200"],
                            "vary_headers": [None], "colour": "blue"})
    assert sorted(errors) == [
        "plugins[0].config.cache_ttl: value should be between 1 and 2147483646",
        "plugins[0].config.colour: unknown field",
        "plugins[0].config.response_code[0]: expected an integer",
        "plugins[0].config.vary_headers[0]: null is not allowed here",
    ]
