"""basic-auth config: Kong's defaults, and every bad value reported at its path."""

import pytest

from fastgw.plugins.basic_auth.schema import SCHEMA


def test_defaults_follow_kong(validated):
    assert validated(None) == validated({}) == {
        "anonymous": None, "hide_credentials": False, "realm": "service",
    }


def test_every_field_has_a_description():
    assert all(field.description for field in SCHEMA.fields.values())


def test_a_full_config_is_accepted(config_errors):
    assert config_errors({"anonymous": "anonymous", "hide_credentials": True,
                          "realm": "Orders API"}) == []


@pytest.mark.parametrize(("config", "error"), [
    ({"hide_credential": True}, "plugins[0].config.hide_credential: unknown field"),
    ({"hide_credentials": "true"}, "plugins[0].config.hide_credentials: expected a boolean"),
    ({"anonymous": ["anonymous"]}, "plugins[0].config.anonymous: expected a string"),
    ({"realm": ""}, "plugins[0].config.realm: length must be at least 1"),
    ({"realm": "a\\b"},
     "plugins[0].config.realm: invalid realm 'a\\b': quotes, backslashes and control "
     "characters are not allowed"),
    ({"realm": "line\nbreak"},
     "plugins[0].config.realm: invalid realm 'line\nbreak': quotes, backslashes and control "
     "characters are not allowed"),
])
def test_bad_values_name_their_path(config_errors, config, error):
    assert config_errors(config) == [error]
