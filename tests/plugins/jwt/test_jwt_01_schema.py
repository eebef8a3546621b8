"""jwt config: Kong's defaults and bounds, and every bad value reported at its path."""

import pytest

from fastgw.plugins.jwt.schema import SCHEMA


def test_defaults_follow_kong(validated):
    assert validated(None) == validated({}) == {
        "uri_param_names": ["jwt"], "cookie_names": [], "key_claim_name": "iss",
        "secret_is_base64": False, "claims_to_verify": None, "anonymous": None,
        "run_on_preflight": True, "maximum_expiration": 0, "header_names": ["authorization"],
        "realm": None,
    }


def test_every_field_has_a_description():
    assert all(field.description for field in SCHEMA.fields.values())


def test_sets_drop_repeats(validated):
    config = validated({"claims_to_verify": ["exp", "nbf", "exp"],
                        "uri_param_names": ["jwt", "token", "jwt"]})
    assert config["claims_to_verify"] == ["exp", "nbf"]
    assert config["uri_param_names"] == ["jwt", "token"]


def test_a_full_config_is_accepted(config_errors):
    assert config_errors({
        "uri_param_names": ["jwt", "token"], "cookie_names": ["session"],
        "key_claim_name": "kid", "secret_is_base64": True, "claims_to_verify": ["exp"],
        "anonymous": "anonymous", "run_on_preflight": False, "maximum_expiration": 3600,
        "header_names": ["authorization", "x-jwt"], "realm": "orders",
    }) == []


@pytest.mark.parametrize(("config", "error"), [
    ({"uri_param_name": ["jwt"]}, "plugins[0].config.uri_param_name: unknown field"),
    ({"uri_param_names": "jwt"}, "plugins[0].config.uri_param_names: expected a set"),
    ({"cookie_names": [""]}, "plugins[0].config.cookie_names[0]: length must be at least 1"),
    ({"claims_to_verify": ["exp", "iat"]},
     "plugins[0].config.claims_to_verify[1]: expected one of: exp, nbf"),
    ({"key_claim_name": 1}, "plugins[0].config.key_claim_name: expected a string"),
    ({"secret_is_base64": "no"}, "plugins[0].config.secret_is_base64: expected a boolean"),
    ({"maximum_expiration": -1},
     "plugins[0].config.maximum_expiration: value should be between 0 and 31536000"),
    ({"maximum_expiration": 31536001, "claims_to_verify": ["exp"]},
     "plugins[0].config.maximum_expiration: value should be between 0 and 31536000"),
    ({"maximum_expiration": "1h"}, "plugins[0].config.maximum_expiration: expected a number"),
    ({"header_names": ["authorization", "bad header"]},
     "plugins[0].config.header_names[1]: invalid header name 'bad header'"),
    ({"realm": 'a"b'},
     "plugins[0].config.realm: invalid realm 'a\"b': quotes, backslashes and control "
     "characters are not allowed"),
    ({"maximum_expiration": 60},
     "plugins[0].config.claims_to_verify: must contain 'exp' when 'maximum_expiration' "
     "is above 0"),
    ({"maximum_expiration": 60, "claims_to_verify": ["nbf"]},
     "plugins[0].config.claims_to_verify: must contain 'exp' when 'maximum_expiration' "
     "is above 0"),
])
def test_bad_values_name_their_path(config_errors, config, error):
    assert config_errors(config) == [error]
