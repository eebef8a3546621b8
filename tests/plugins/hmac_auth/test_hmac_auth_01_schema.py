"""hmac-auth config: Kong's fields and defaults, bad values at their path."""

import pytest

from fastgw.config.loader import parse_config
from fastgw.plugins.hmac_auth.schema import SCHEMA


def test_defaults_follow_kong(validated):
    assert validated(None) == {
        "hide_credentials": False, "clock_skew": 300, "anonymous": None,
        "validate_request_body": False, "enforce_headers": [],
        "algorithms": ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"],
        "realm": None,
    }


def test_every_field_has_a_description(schema_fields):
    assert all(field.description for field in schema_fields(SCHEMA))


@pytest.mark.parametrize(("config", "error"), [
    ({"clock_skew": 0}, "plugins[0].config.clock_skew: value must be greater than 0"),
    ({"algorithms": ["hmac-md5"]},
     "plugins[0].config.algorithms[0]: expected one of: hmac-sha1, hmac-sha256, hmac-sha384, "
     "hmac-sha512"),
    ({"enforce_headers": "date"}, "plugins[0].config.enforce_headers: expected an array"),
    ({"realm": 'a"b'}, "plugins[0].config.realm: invalid realm 'a\"b': quotes, backslashes and "
                       "control characters are not allowed"),
])
def test_bad_values_name_their_path(config_errors, config, error):
    assert config_errors(config) == [error]


def test_credentials_need_a_unique_username_and_a_secret():
    doc = {"_format_version": "3.0", "consumers": [
        {"username": "a", "hmacauth_credentials": [{"username": "u", "secret": "x"}]},
        {"username": "b", "hmacauth_credentials": [{"username": "u", "secret": "y"},
                                                   {"username": "v"}]}]}
    with pytest.raises(Exception) as caught:
        parse_config(doc, env={})
    assert caught.value.errors == [
        "consumers[1].hmacauth_credentials[1].secret: required field missing",
        "consumers[1].hmacauth_credentials[0].username: duplicate hmac-auth username 'u' "
        "(also at consumers[0].hmacauth_credentials[0].username)",
    ]


def test_it_cannot_be_scoped_to_a_consumer():
    doc = {"_format_version": "3.0", "consumers": [{"username": "a", "plugins": [
        {"name": "hmac-auth"}]}]}
    with pytest.raises(Exception) as caught:
        parse_config(doc, env={})
    assert caught.value.errors == [
        "consumers[0].plugins[0]: plugin 'hmac-auth' cannot be scoped to a consumer"]
