"""``apply_overrides``: flags > FASTGW_* variables > _gateway > defaults."""

from __future__ import annotations

import pytest
from config_docs import document, parse

from fastgw.config.loader import ConfigError, apply_overrides
from fastgw.config.model import GatewaySettings, RedisSettings, TLSSettings


def from_block(**block) -> GatewaySettings:
    return parse(document(_gateway=block)).gateway


def override_errors(settings: GatewaySettings, env: dict[str, str], **flags) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        apply_overrides(settings, env, **flags)
    return caught.value.errors


def test_precedence_is_flags_then_env_then_gateway_block_then_defaults():
    settings = from_block(listen="10.0.0.1:1000", admin_listen="10.0.0.1:1001", workers=2)
    env = {"FASTGW_ADMIN_LISTEN": "127.0.0.1:2001", "FASTGW_WORKERS": "3"}
    result = apply_overrides(settings, env, workers=4)
    assert result.workers == 4  # flag beats env and block
    assert result.admin_listen == "127.0.0.1:2001"  # env beats block
    assert result.listen == "10.0.0.1:1000"  # block beats default
    assert result.max_connections == GatewaySettings().max_connections  # default


def test_nothing_given_changes_nothing():
    settings = from_block(workers=2)
    assert apply_overrides(settings, {}) == settings
    # None flags and empty variables count as not given.
    assert apply_overrides(settings, {"FASTGW_WORKERS": ""}, workers=None, listen=None) == settings


def test_every_variable_is_parsed_to_the_field_type():
    env = {
        "FASTGW_LISTEN": "127.0.0.1:18000",
        "FASTGW_ADMIN_LISTEN": "127.0.0.1:18001",
        "FASTGW_WORKERS": "8",
        "FASTGW_REDIS_URL": "redis://cache:6379/1",
        "FASTGW_MAX_HEADER_BYTES": "65536",
        "FASTGW_MAX_BODY_BYTES": "1048576",
        "FASTGW_CLIENT_HEADER_TIMEOUT": "2.5",
        "FASTGW_KEEPALIVE_TIMEOUT": "10",
        "FASTGW_MAX_CONNECTIONS": "100",
        "FASTGW_UPSTREAM_KEEPALIVE_POOL_SIZE": "16",
        "FASTGW_UPSTREAM_KEEPALIVE_TIMEOUT": "30",
        "FASTGW_DRAIN_TIMEOUT": "0",
        "FASTGW_TLS_CERT": "/c.pem",
        "FASTGW_TLS_KEY": "/k.pem",
    }
    assert apply_overrides(GatewaySettings(), env) == GatewaySettings(
        listen="127.0.0.1:18000",
        admin_listen="127.0.0.1:18001",
        workers=8,
        tls=TLSSettings(cert="/c.pem", key="/k.pem"),
        redis=RedisSettings(url="redis://cache:6379/1"),
        max_header_bytes=65536,
        max_body_bytes=1048576,
        client_header_timeout=2.5,
        keepalive_timeout=10.0,
        max_connections=100,
        upstream_keepalive_pool_size=16,
        upstream_keepalive_timeout=30.0,
        drain_timeout=0.0,
    )


def test_flags_take_typed_values_or_strings():
    result = apply_overrides(
        GatewaySettings(), {}, workers="2", keepalive_timeout=1, redis_url="rediss://r:1"
    )
    assert (result.workers, result.keepalive_timeout, result.redis) == (
        2, 1, RedisSettings(url="rediss://r:1"))


def test_workers_auto_means_one_per_cpu():
    assert apply_overrides(from_block(workers=3), {"FASTGW_WORKERS": "auto"}).workers is None


def test_tls_override_replaces_one_half_of_the_block():
    settings = from_block(tls={"cert": "/old.pem", "key": "/old.key", "sni": []})
    result = apply_overrides(settings, {"FASTGW_TLS_CERT": "/new.pem"})
    assert result.tls == TLSSettings(cert="/new.pem", key="/old.key")


def test_tls_override_without_the_other_half_is_an_error():
    assert override_errors(GatewaySettings(), {"FASTGW_TLS_CERT": "/c.pem"}) == [
        "FASTGW_TLS_KEY: required (or --tls-key) when _gateway.tls is absent "
        "and the other half is set"
    ]


def test_bad_values_name_the_variable_or_flag_and_are_all_reported():
    env = {
        "FASTGW_WORKERS": "many",
        "FASTGW_KEEPALIVE_TIMEOUT": "1m",
        "FASTGW_LISTEN": "8000",
        "FASTGW_MAX_CONNECTIONS": "0",
        "FASTGW_REDIS_URL": "http://x",
    }
    assert override_errors(GatewaySettings(), env, admin_listen="nohost") == [
        "FASTGW_LISTEN: invalid address '8000': expected 'host:port'",
        "--admin-listen: invalid address 'nohost': expected 'host:port'",
        "FASTGW_WORKERS: expected an integer, got 'many'",
        "FASTGW_KEEPALIVE_TIMEOUT: expected a number, got '1m'",
        "FASTGW_MAX_CONNECTIONS: value should be between 1 and 10000000",
        "FASTGW_REDIS_URL: expected a redis://, rediss:// or unix:// URL",
    ]


def test_unknown_flag_is_a_programming_error():
    with pytest.raises(TypeError, match="unknown settings: threads"):
        apply_overrides(GatewaySettings(), {}, threads=2)


def test_redis_url_variable_may_be_a_vault_reference():
    env = {"FASTGW_REDIS_URL": "{vault://env/redis-secret}", "REDIS_SECRET": "redis://:p@r:1"}
    assert apply_overrides(GatewaySettings(), env).redis == RedisSettings(url="redis://:p@r:1")
