"""correlation-id config: Kong's fields and defaults, bad values at their path."""

import pytest

from fastgw.plugins.correlation_id.schema import SCHEMA


def test_defaults_follow_kong(validated):
    assert validated(None) == validated({}) == {
        "header_name": "Kong-Request-ID", "generator": "uuid#counter", "echo_downstream": False,
    }


def test_every_field_has_a_description():
    assert all(field.description for field in SCHEMA.fields.values())


@pytest.mark.parametrize(("config", "error"), [
    ({"header_name": "X Id"}, "plugins[0].config.header_name: invalid header name 'X Id'"),
    ({"header_name": ""}, "plugins[0].config.header_name: length must be at least 1"),
    ({"generator": "uuid4"},
     "plugins[0].config.generator: expected one of: uuid, uuid#counter, tracker"),
    ({"echo_downstream": "true"}, "plugins[0].config.echo_downstream: expected a boolean"),
    ({"echo": True}, "plugins[0].config.echo: unknown field"),
])
def test_bad_values_name_their_path(config_errors, config, error):
    assert config_errors(config) == [error]
