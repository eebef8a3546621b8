"""response-transformer config: Kong's fields and defaults, bad values at their path."""

import pytest

from fastgw.plugins.response_transformer.schema import SCHEMA

PLAIN = {"json": [], "headers": []}
TYPED = {"json": [], "json_types": [], "headers": []}


def test_defaults_follow_kong(validated):
    assert validated(None) == validated({}) == {
        "remove": PLAIN, "rename": PLAIN, "replace": TYPED, "add": TYPED, "append": TYPED,
    }


def test_every_field_has_a_description(schema_fields):
    assert all(field.description for field in schema_fields(SCHEMA))


def test_a_full_config_is_accepted(config_errors):
    assert config_errors({
        "remove": {"headers": ["Server"], "json": ["internal"]},
        "rename": {"headers": ["X-Old:X-New"], "json": ["a:b"]},
        "replace": {"headers": ["X-Mode:1"], "json": ["count:0", "ok:true"],
                    "json_types": ["number", "boolean"]},
        "add": {"headers": ["X-Added:yes"], "json": ["version:2.5"], "json_types": ["number"]},
        "append": {"headers": ["X-List:a"], "json": ["tags:x"], "json_types": ["string"]},
    }) == []


@pytest.mark.parametrize(("config", "error"), [
    ({"add": {"json": ["count:ten"], "json_types": ["number"]}},
     "plugins[0].config.add.json[0]: 'ten' is not a number (json_types[0])"),
    ({"replace": {"json": ["a:1", "b:yes"], "json_types": ["number", "boolean"]}},
     "plugins[0].config.replace.json[1]: 'yes' is not a boolean (json_types[1])"),
    ({"append": {"json": ["a:1"], "json_types": ["number", "string"]}},
     "plugins[0].config.append.json_types: has 2 entries but json has 1"),
    ({"add": {"json_types": ["integer"]}},
     "plugins[0].config.add.json_types[0]: expected one of: boolean, number, string"),
    ({"add": {"json": ["noval"]}},
     "plugins[0].config.add.json[0]: invalid value 'noval': expected 'name:value'"),
    ({"add": {"headers": ["X Bad:1"]}},
     "plugins[0].config.add.headers[0]: 'X Bad' is not a valid header"),
    ({"rename": {"headers": ["X-A:X B"]}},
     "plugins[0].config.rename.headers[0]: 'X B' is not a valid header"),
    ({"remove": {"json_types": []}}, "plugins[0].config.remove.json_types: unknown field"),
    ({"replace": {"uri": "/x"}}, "plugins[0].config.replace.uri: unknown field"),
])
def test_bad_values_name_their_path(config_errors, config, error):
    assert config_errors(config) == [error]
