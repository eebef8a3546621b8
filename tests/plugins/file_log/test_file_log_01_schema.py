"""file-log's config schema, through the loader on whole documents."""

import pytest

from fastgw.config.loader import ConfigError, parse_config
from fastgw.plugins.log_serializer import LUA_NOT_SUPPORTED


def parse_plugin(config):
    doc = {"_format_version": "3.0", "plugins": [{"name": "file-log", "config": config}]}
    return parse_config(doc).plugins[0].config


def errors_of(config):
    with pytest.raises(ConfigError) as info:
        parse_plugin(config)
    return info.value.errors


def test_defaults_are_filled():
    assert parse_plugin({"path": "/var/log/fastgw.log"}) == {
        "path": "/var/log/fastgw.log",
        "reopen": False,
        "custom_fields_by_lua": None,
        "custom_fields": None,
    }


def test_explicit_values_are_kept():
    config = parse_plugin({"path": "logs/a.log", "reopen": True,
                           "custom_fields": {"env": "prod", "a.b": [1, {"c": True}]}})
    assert config["reopen"] is True
    assert config["custom_fields"] == {"env": "prod", "a.b": [1, {"c": True}]}


def test_path_is_required():
    assert errors_of({}) == ["plugins[0].config.path: required field missing"]


@pytest.mark.parametrize("path", ["/tmp/a*.log", "/tmp/a&b", "/tmp/100%", "/tmp/a`b`",
                                  "C:\\logs\\a"])
def test_paths_with_shell_characters_are_rejected(path):
    assert errors_of({"path": path}) == ["plugins[0].config.path: not a valid filename"]


@pytest.mark.parametrize("config, error", [
    ({"path": ""}, "plugins[0].config.path: length must be at least 1"),
    ({"path": 7}, "plugins[0].config.path: expected a string"),
    ({"path": "/tmp/a", "reopen": "yes"}, "plugins[0].config.reopen: expected a boolean"),
    ({"path": "/tmp/a", "format": "json"}, "plugins[0].config.format: unknown field"),
    ({"path": "/tmp/a", "custom_fields": ["a"]}, "plugins[0].config.custom_fields: expected a map"),
    ({"path": "/tmp/a", "custom_fields": {"a..b": 1}},
     "plugins[0].config.custom_fields.a..b: empty name between dots "
     "(write '\\.' for a literal dot)"),
    ({"path": "/tmp/a", "custom_fields": {"a.": 1}},
     "plugins[0].config.custom_fields.a.: empty name between dots "
     "(write '\\.' for a literal dot)"),
    ({"path": "/tmp/a", "custom_fields": {"big": 2**70}},
     "plugins[0].config.custom_fields.big: expected a JSON value "
     "(string, number, boolean, array or object)"),
    ({"path": "/tmp/a", "custom_fields": {"when": {1: "x"}}},
     "plugins[0].config.custom_fields.when: expected a JSON value "
     "(string, number, boolean, array or object)"),
    ({"path": "/tmp/a", "custom_fields": {"gone": None}},
     "plugins[0].config.custom_fields.gone: null is not allowed here"),
])
def test_bad_values_name_their_path(config, error):
    assert errors_of(config) == [error]


def test_custom_fields_by_lua_is_rejected_with_a_pointer_to_custom_fields():
    errors = errors_of({"path": "/tmp/a", "custom_fields_by_lua": {"x": "return 1"}})
    assert errors == [f"plugins[0].config.custom_fields_by_lua: {LUA_NOT_SUPPORTED}"]
    assert "custom_fields instead" in errors[0]


def test_an_empty_custom_fields_by_lua_asks_for_nothing_and_passes():
    assert parse_plugin({"path": "/tmp/a", "custom_fields_by_lua": {}})["path"] == "/tmp/a"


def test_every_error_is_reported_at_once():
    errors = errors_of({"path": "/tmp/*", "reopen": 1, "extra": True})
    assert sorted(errors) == [
        "plugins[0].config.extra: unknown field",
        "plugins[0].config.path: not a valid filename",
        "plugins[0].config.reopen: expected a boolean",
    ]
