"""ip-restriction config: Kong's fields and defaults, every bad value at its path."""

import pytest

from fastgw.plugins.ip_restriction.schema import SCHEMA


def test_defaults_are_filled(validated):
    assert validated({"allow": ["10.0.0.1"]}) == {
        "allow": ["10.0.0.1"], "deny": [], "status": 403, "message": "IP address not allowed",
    }


def test_every_field_has_a_description():
    assert all(field.description for field in SCHEMA.fields.values())


def test_ipv4_ipv6_addresses_and_ranges_are_accepted(config_errors):
    assert config_errors({
        "allow": ["10.0.0.1", "192.168.0.0/16", "2001:db8::/32", "::1"],
        "deny": ["10.0.0.0/24", "fe80::1"],
        "status": 401, "message": "go away",
    }) == []


@pytest.mark.parametrize(("config", "error"), [
    (None, "plugins[0].config: at least one of these fields must be non-empty: 'allow', 'deny'"),
    ({"allow": [], "deny": []},
     "plugins[0].config: at least one of these fields must be non-empty: 'allow', 'deny'"),
    ({"allow": ["10.0.0.1", "10.0.0.300"]},
     "plugins[0].config.allow[1]: invalid ip or cidr range: '10.0.0.300'"),
    ({"deny": ["10.0.0.0/33"]}, "plugins[0].config.deny[0]: invalid ip or cidr range: '10.0.0.0/33'"),
    ({"deny": ["example.com"]},
     "plugins[0].config.deny[0]: invalid ip or cidr range: 'example.com'"),
    ({"deny": "10.0.0.1"}, "plugins[0].config.deny: expected an array"),
    ({"allow": [10]}, "plugins[0].config.allow[0]: expected a string"),
    ({"allow": ["::1"], "status": 200},
     "plugins[0].config.status: value should be between 400 and 599"),
    ({"allow": ["::1"], "status": "403"}, "plugins[0].config.status: expected an integer"),
    ({"allow": ["::1"], "message": ""}, "plugins[0].config.message: length must be at least 1"),
    ({"allow": ["::1"], "whitelist": ["::1"]}, "plugins[0].config.whitelist: unknown field"),
])
def test_bad_values_name_their_path(config_errors, config, error):
    assert config_errors(config) == [error]
