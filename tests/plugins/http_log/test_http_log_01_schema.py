"""http-log's config schema, through the loader on whole documents."""

import pytest

from fastgw.config.loader import ConfigError, parse_config, redacted_document
from fastgw.plugins.http_log.handler import queue_settings
from fastgw.plugins.log_serializer import LUA_NOT_SUPPORTED

ENDPOINT = "http://127.0.0.1:9999/logs"


def document(config):
    return {"_format_version": "3.0", "plugins": [{"name": "http-log", "config": config}]}


def parse_plugin(config, env=None):
    return parse_config(document(config), env=env or {}).plugins[0].config


def errors_of(config):
    with pytest.raises(ConfigError) as info:
        parse_plugin(config)
    return info.value.errors


def test_defaults_are_filled_as_in_kong():
    assert parse_plugin({"http_endpoint": ENDPOINT}) == {
        "http_endpoint": ENDPOINT,
        "method": "POST",
        "content_type": "application/json",
        "timeout": 10000,
        "keepalive": 60000,
        "retry_count": None,
        "queue_size": None,
        "flush_timeout": None,
        "headers": None,
        "queue": {
            "max_batch_size": 1,
            "max_coalescing_delay": 1,
            "max_entries": 10000,
            "max_bytes": None,
            "max_retry_time": 60,
            "initial_retry_delay": 0.01,
            "max_retry_delay": 60,
            "concurrency_limit": 1,
        },
        "custom_fields_by_lua": None,
        "custom_fields": None,
    }


def test_a_partial_queue_record_gets_the_other_defaults():
    queue = parse_plugin({"http_endpoint": ENDPOINT, "queue": {"max_batch_size": 50}})["queue"]
    assert queue["max_batch_size"] == 50 and queue["max_entries"] == 10000


def test_accepted_values():
    config = parse_plugin({
        "http_endpoint": "https://user:secret@logs.example.com:8443/in?token=1",
        "method": "PATCH", "content_type": "application/json; charset=utf-8",
        "timeout": 500, "keepalive": 0, "headers": {"X-Api-Key": "k1", "x_tenant": "a"},
        "queue": {"max_bytes": 1_000_000, "max_retry_time": -1},
    })
    assert config["method"] == "PATCH" and config["keepalive"] == 0
    assert config["headers"] == {"X-Api-Key": "k1", "x_tenant": "a"}


def test_endpoint_and_header_values_may_come_from_the_vault():
    config = parse_plugin({"http_endpoint": "{vault://env/log-url}",
                           "headers": {"Authorization": "{vault://env/log-token}"}},
                          env={"LOG_URL": ENDPOINT, "LOG_TOKEN": "Bearer t"})
    assert config["http_endpoint"] == ENDPOINT
    assert config["headers"] == {"Authorization": "Bearer t"}


def test_header_values_are_redacted_in_the_shown_config():
    doc = document({"http_endpoint": ENDPOINT, "headers": {"Authorization": "Bearer t"}})
    shown = redacted_document(parse_config(doc))
    assert shown["plugins"][0]["config"]["headers"] == {"Authorization": "<redacted>"}


@pytest.mark.parametrize("config, error", [
    ({}, "plugins[0].config.http_endpoint: required field missing"),
    ({"http_endpoint": "ftp://logs/x"}, "plugins[0].config.http_endpoint: "
                                        "expected an http or https url"),
    ({"http_endpoint": "logs.example.com"}, "plugins[0].config.http_endpoint: "
                                            "expected an http or https url"),
    ({"http_endpoint": "http:///path"}, "plugins[0].config.http_endpoint: missing host in url"),
    ({"http_endpoint": "http://logs:99999/"},
     "plugins[0].config.http_endpoint: invalid url: Port out of range 0-65535"),
    ({"http_endpoint": "http://logs:0/"}, "plugins[0].config.http_endpoint: invalid port in url"),
    ({"http_endpoint": ENDPOINT, "method": "GET"},
     "plugins[0].config.method: expected one of: POST, PUT, PATCH"),
    ({"http_endpoint": ENDPOINT, "content_type": "text/plain"},
     "plugins[0].config.content_type: expected one of: application/json, "
     "application/json; charset=utf-8"),
    ({"http_endpoint": ENDPOINT, "timeout": 0},
     "plugins[0].config.timeout: value should be between 1 and 2147483646"),
    ({"http_endpoint": ENDPOINT, "keepalive": -1},
     "plugins[0].config.keepalive: value should be between 0 and 2147483646"),
    ({"http_endpoint": ENDPOINT, "timeout": "10s"}, "plugins[0].config.timeout: expected a number"),
    ({"http_endpoint": ENDPOINT, "retry_count": 1.5},
     "plugins[0].config.retry_count: expected an integer"),
    ({"http_endpoint": ENDPOINT, "queue_size": 0},
     "plugins[0].config.queue_size: value should be between 1 and 1000000"),
    ({"http_endpoint": ENDPOINT, "flush_timeout": -2},
     "plugins[0].config.flush_timeout: value should be between 0 and 3600"),
    ({"http_endpoint": ENDPOINT, "headers": {"Host": "x"}},
     "plugins[0].config.headers.Host: cannot contain 'Host' header"),
    ({"http_endpoint": ENDPOINT, "headers": {"content-length": "1"}},
     "plugins[0].config.headers.content-length: cannot contain 'Content-Length' header"),
    ({"http_endpoint": ENDPOINT, "headers": {"Content-TYPE": "x"}},
     "plugins[0].config.headers.Content-TYPE: cannot contain 'Content-Type' header"),
    ({"http_endpoint": ENDPOINT, "headers": {"X Bad": "x"}},
     "plugins[0].config.headers.X Bad: bad header name 'X Bad', allowed characters are "
     "A-Z, a-z, 0-9, '_', and '-'"),
    ({"http_endpoint": ENDPOINT, "headers": {"X-Inject": "a\r\nEvil: 1"}},
     "plugins[0].config.headers.X-Inject: header values cannot contain CR or LF"),
    ({"http_endpoint": ENDPOINT, "headers": {"X-A": 5}},
     "plugins[0].config.headers.X-A: expected a string"),
    ({"http_endpoint": ENDPOINT, "queue": {"max_batch_size": 0}},
     "plugins[0].config.queue.max_batch_size: value should be between 1 and 1000000"),
    ({"http_endpoint": ENDPOINT, "queue": {"max_entries": 0}},
     "plugins[0].config.queue.max_entries: value should be between 1 and 1000000"),
    ({"http_endpoint": ENDPOINT, "queue": {"max_bytes": 0}},
     "plugins[0].config.queue.max_bytes: value should be between 1 and 2147483647"),
    ({"http_endpoint": ENDPOINT, "queue": {"max_coalescing_delay": 3601}},
     "plugins[0].config.queue.max_coalescing_delay: value should be between 0 and 3600"),
    ({"http_endpoint": ENDPOINT, "queue": {"initial_retry_delay": 0}},
     "plugins[0].config.queue.initial_retry_delay: value should be between 0.001 and 1000000"),
    ({"http_endpoint": ENDPOINT, "queue": {"concurrency_limit": -1}},
     "plugins[0].config.queue.concurrency_limit: expected one of: 1"),
    ({"http_endpoint": ENDPOINT, "queue": {"max_batch": 5}},
     "plugins[0].config.queue.max_batch: unknown field"),
    ({"http_endpoint": ENDPOINT, "queue": 5}, "plugins[0].config.queue: expected a record"),
    ({"http_endpoint": ENDPOINT, "verbose": True}, "plugins[0].config.verbose: unknown field"),
    ({"http_endpoint": ENDPOINT, "custom_fields_by_lua": {"a": "return 1"}},
     f"plugins[0].config.custom_fields_by_lua: {LUA_NOT_SUPPORTED}"),
    ({"http_endpoint": ENDPOINT, "custom_fields": {".a": 1}},
     "plugins[0].config.custom_fields..a: empty name between dots "
     "(write '\\.' for a literal dot)"),
])
def test_bad_values_name_their_path(config, error):
    assert errors_of(config) == [error]


@pytest.mark.parametrize("header", ["Authorization", "authorization"])
def test_user_info_and_an_authorization_header_together_are_rejected(header):
    errors = errors_of({"http_endpoint": "http://u:p@logs/", "headers": {header: "Bearer x"}})
    assert errors == ["plugins[0].config: specifying both an 'Authorization' header and user "
                      "info in 'http_endpoint' is not allowed"]


def test_errors_inside_nested_scopes_name_their_full_path():
    doc = {"_format_version": "3.0", "services": [{
        "name": "s", "url": "http://127.0.0.1:1",
        "routes": [{"name": "r", "paths": ["/"],
                    "plugins": [{"name": "http-log", "config": {"http_endpoint": ENDPOINT,
                                                                "queue": {"max_entries": -5}}}]}],
    }]}
    with pytest.raises(ConfigError) as info:
        parse_config(doc)
    assert info.value.errors == ["services[0].routes[0].plugins[0].config.queue.max_entries: "
                                 "value should be between 1 and 1000000"]


def test_deprecated_fields_stand_in_for_queue_defaults_only():
    legacy = parse_plugin({"http_endpoint": ENDPOINT, "queue_size": 20, "flush_timeout": 5,
                           "retry_count": 3})
    settings = queue_settings(legacy)
    assert settings["max_batch_size"] == 20 and settings["max_coalescing_delay"] == 5
    explicit = parse_plugin({"http_endpoint": ENDPOINT, "queue_size": 20, "flush_timeout": 5,
                             "queue": {"max_batch_size": 7, "max_coalescing_delay": 0.5}})
    settings = queue_settings(explicit)
    assert settings["max_batch_size"] == 7 and settings["max_coalescing_delay"] == 0.5
