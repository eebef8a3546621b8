"""request-termination config: Kong's fields, defaults and combination rules."""

import pytest

from fastgw.plugins.request_termination.schema import SCHEMA


def test_defaults_follow_kong(validated):
    assert validated(None) == {"status_code": 503, "message": None, "content_type": None,
                               "body": None, "echo": False, "trigger": None}


def test_every_field_has_a_description(schema_fields):
    assert all(field.description for field in schema_fields(SCHEMA))


@pytest.mark.parametrize(("config", "error"), [
    ({"status_code": 600}, "plugins[0].config.status_code: value should be between 100 and 599"),
    ({"status_code": 99}, "plugins[0].config.status_code: value should be between 100 and 599"),
    ({"message": "x", "body": "y"},
     "plugins[0].config: message cannot be used with content_type or body"),
    ({"message": "x", "content_type": "text/plain"},
     "plugins[0].config: message cannot be used with content_type or body"),
    ({"content_type": "text/plain"}, "plugins[0].config: content_type requires a body"),
    ({"echo": True, "body": "y"},
     "plugins[0].config: echo cannot be used with content_type and body"),
    ({"trigger": "bad header"}, "plugins[0].config.trigger: invalid header name 'bad header'"),
    ({"status": 403}, "plugins[0].config.status: unknown field"),
])
def test_bad_values_name_their_path(config_errors, config, error):
    assert config_errors(config) == [error]
