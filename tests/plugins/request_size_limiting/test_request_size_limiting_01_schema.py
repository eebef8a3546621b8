"""request-size-limiting config: Kong's fields and defaults, bad values at their path."""

import pytest

from fastgw.plugins.request_size_limiting.schema import SCHEMA


def test_defaults_follow_kong(validated):
    assert validated(None) == validated({}) == {
        "allowed_payload_size": 128, "size_unit": "megabytes", "require_content_length": False,
    }


def test_every_field_has_a_description():
    assert all(field.description for field in SCHEMA.fields.values())


@pytest.mark.parametrize(("config", "error"), [
    ({"allowed_payload_size": -1},
     "plugins[0].config.allowed_payload_size: value should be between 0 and 2147483647"),
    ({"allowed_payload_size": 1.5},
     "plugins[0].config.allowed_payload_size: expected an integer"),
    ({"size_unit": "gigabytes"},
     "plugins[0].config.size_unit: expected one of: megabytes, kilobytes, bytes"),
    ({"require_content_length": "yes"},
     "plugins[0].config.require_content_length: expected a boolean"),
    ({"limit": 1}, "plugins[0].config.limit: unknown field"),
])
def test_bad_values_name_their_path(config_errors, config, error):
    assert config_errors(config) == [error]
