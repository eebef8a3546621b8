"""key-auth config: Kong's defaults, and every bad value reported at its path."""

import pytest

from fastgw.plugins.key_auth.schema import SCHEMA


def test_defaults_follow_kong(validated):
    assert validated(None) == validated({}) == {
        "key_names": ["apikey"], "hide_credentials": False, "anonymous": None,
        "key_in_header": True, "key_in_query": True, "key_in_body": False,
        "run_on_preflight": True, "realm": None,
    }


def test_every_field_has_a_description():
    assert all(field.description for field in SCHEMA.fields.values())


def test_a_full_config_is_accepted(config_errors):
    assert config_errors({
        "key_names": ["apikey", "X-API-Key", "api_key"], "hide_credentials": True,
        "anonymous": "anonymous", "key_in_header": False, "key_in_query": False,
        "key_in_body": True, "run_on_preflight": False, "realm": "my api",
    }) == []


@pytest.mark.parametrize(("config", "error"), [
    ({"key_name": ["apikey"]}, "plugins[0].config.key_name: unknown field"),
    ({"key_names": "apikey"}, "plugins[0].config.key_names: expected an array"),
    ({"key_names": []}, "plugins[0].config.key_names: length must be at least 1"),
    ({"key_names": ["apikey", "api key"]},
     "plugins[0].config.key_names[1]: bad header name 'api key', allowed characters are "
     "A-Z, a-z, 0-9, '_', and '-'"),
    ({"key_names": ["apikey", 7]}, "plugins[0].config.key_names[1]: expected a string"),
    ({"hide_credentials": "yes"}, "plugins[0].config.hide_credentials: expected a boolean"),
    ({"key_in_body": 1}, "plugins[0].config.key_in_body: expected a boolean"),
    ({"run_on_preflight": "false"}, "plugins[0].config.run_on_preflight: expected a boolean"),
    ({"anonymous": ""}, "plugins[0].config.anonymous: length must be at least 1"),
    ({"anonymous": 42}, "plugins[0].config.anonymous: expected a string"),
    ({"realm": 'my "api"'},
     "plugins[0].config.realm: invalid realm 'my \"api\"': quotes, backslashes and control "
     "characters are not allowed"),
    ({"key_in_header": False, "key_in_query": False},
     "plugins[0].config: at least one of 'key_in_header', 'key_in_query', 'key_in_body' "
     "must be true"),
])
def test_bad_values_name_their_path(config_errors, config, error):
    assert config_errors(config) == [error]


def test_all_errors_are_reported_at_once(config_errors):
    errors = config_errors({"key_names": ["a b"], "realm": "", "key_in_query": "no"})
    assert sorted(errors) == [
        "plugins[0].config.key_in_query: expected a boolean",
        "plugins[0].config.key_names[0]: bad header name 'a b', allowed characters are "
        "A-Z, a-z, 0-9, '_', and '-'",
        "plugins[0].config.realm: length must be at least 1",
    ]
