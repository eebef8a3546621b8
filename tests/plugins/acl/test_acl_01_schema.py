"""acl config: Kong's defaults, and every bad value reported at its path."""

import pytest

from fastgw.plugins.acl.schema import SCHEMA


def test_defaults_follow_kong(validated):
    assert validated({"allow": ["gold"]}) == {
        "allow": ["gold"], "deny": None, "hide_groups_header": False,
        "always_use_authenticated_groups": False,
    }


def test_every_field_has_a_description():
    assert all(field.description for field in SCHEMA.fields.values())


def test_a_full_config_is_accepted(config_errors):
    assert config_errors({"deny": ["blocked", "banned"], "hide_groups_header": True,
                          "always_use_authenticated_groups": True}) == []


@pytest.mark.parametrize(("config", "error"), [
    (None, "plugins[0].config: at least one of these fields must be non-empty: "
           "'allow', 'deny'"),
    ({"allow": []}, "plugins[0].config: at least one of these fields must be non-empty: "
                    "'allow', 'deny'"),
    ({"allow": ["gold"], "deny": ["banned"]},
     "plugins[0].config: only one of these fields must be non-empty: 'allow', 'deny'"),
    ({"whitelist": ["gold"]}, "plugins[0].config.whitelist: unknown field"),
    ({"allow": "gold"}, "plugins[0].config.allow: expected an array"),
    ({"deny": ["banned", ""]}, "plugins[0].config.deny[1]: length must be at least 1"),
    ({"allow": ["gold"], "hide_groups_header": "yes"},
     "plugins[0].config.hide_groups_header: expected a boolean"),
    ({"allow": ["gold"], "always_use_authenticated_groups": 0},
     "plugins[0].config.always_use_authenticated_groups: expected a boolean"),
])
def test_bad_values_name_their_path(config_errors, config, error):
    assert config_errors(config) == [error]
