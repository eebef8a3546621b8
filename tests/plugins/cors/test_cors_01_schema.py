"""cors config: Kong 3.x fields and defaults, every bad value at its path."""

import pytest

from fastgw.plugins.cors.schema import SCHEMA


def test_defaults_follow_kong(validated):
    assert validated(None) == validated({}) == {
        "origins": [], "headers": [], "exposed_headers": [],
        "methods": ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE",
                    "CONNECT"],
        "max_age": None, "credentials": False, "private_network": False,
        "preflight_continue": False, "allow_origin_absent": True,
    }


def test_every_field_has_a_description():
    assert all(field.description for field in SCHEMA.fields.values())


def test_a_full_config_is_accepted(config_errors):
    assert config_errors({
        "origins": ["*", "https://example.com", r"https://.*\.example\.org"],
        "headers": ["X-Token"], "exposed_headers": ["X-Total"], "methods": ["GET", "POST"],
        "max_age": 3600, "credentials": True, "private_network": True,
        "preflight_continue": False, "allow_origin_absent": False,
    }) == []


@pytest.mark.parametrize(("config", "error"), [
    ({"origins": ["https://ok.example", "https://(bad"]},
     "plugins[0].config.origins[1]: 'https://(bad' is not a valid regex"),
    ({"origins": "*"}, "plugins[0].config.origins: expected an array"),
    ({"methods": ["GET", "get"]},
     "plugins[0].config.methods[1]: expected one of: GET, HEAD, PUT, PATCH, POST, DELETE, "
     "OPTIONS, TRACE, CONNECT"),
    ({"headers": [""]}, "plugins[0].config.headers[0]: length must be at least 1"),
    ({"exposed_headers": [1]}, "plugins[0].config.exposed_headers[0]: expected a string"),
    ({"max_age": -1}, "plugins[0].config.max_age: value should be between 0 and 2147483647"),
    ({"max_age": "1h"}, "plugins[0].config.max_age: expected a number"),
    ({"credentials": "true"}, "plugins[0].config.credentials: expected a boolean"),
    ({"preflight_continue": 1}, "plugins[0].config.preflight_continue: expected a boolean"),
    ({"origin": "*"}, "plugins[0].config.origin: unknown field"),
])
def test_bad_values_name_their_path(config_errors, config, error):
    assert config_errors(config) == [error]
