"""request-transformer config: Kong's fields and defaults, bad values at their path."""

import pytest

from fastgw.plugins.request_transformer.schema import SCHEMA

EMPTY = {"body": [], "headers": [], "querystring": []}


def test_defaults_follow_kong(validated):
    assert validated(None) == validated({}) == {
        "http_method": None, "remove": EMPTY, "rename": EMPTY,
        "replace": {**EMPTY, "uri": None}, "add": EMPTY, "append": EMPTY,
    }


def test_every_field_has_a_description(schema_fields):
    assert all(field.description for field in schema_fields(SCHEMA))


def test_a_full_config_is_accepted(config_errors):
    assert config_errors({
        "http_method": "POST",
        "remove": {"headers": ["X-Secret"], "querystring": ["debug"], "body": ["password"]},
        "rename": {"headers": ["X-Old:X-New"], "querystring": ["q:query"], "body": ["a:b"]},
        "replace": {"headers": ["Host:api.internal"], "querystring": ["v:2"],
                    "body": ["mode:strict"], "uri": "/v2/$(query_params.resource)"},
        "add": {"headers": ["X-Caller:$(headers.x_user or \"anonymous\")"],
                "querystring": ["from:gateway"], "body": ["source:$(shared.tenant)"]},
        "append": {"headers": ["X-Trace:a"], "querystring": ["tag:x"], "body": ["list:1"]},
    }) == []


@pytest.mark.parametrize(("config", "error"), [
    ({"http_method": "post"},
     "plugins[0].config.http_method: invalid method 'post': expected upper case letters"),
    ({"remove": {"headers": ["X-Ok", "bad header"]}},
     "plugins[0].config.remove.headers[1]: 'bad header' is not a valid header"),
    ({"rename": {"headers": ["X-Old:bad/new"]}},
     "plugins[0].config.rename.headers[0]: 'bad/new' is not a valid header"),
    ({"rename": {"querystring": ["no-colon"]}},
     "plugins[0].config.rename.querystring[0]: invalid value 'no-colon': expected 'name:value'"),
    ({"add": {"headers": ["X-Ok:1", ":value"]}},
     "plugins[0].config.add.headers[1]: invalid value ':value': expected 'name:value'"),
    ({"add": {"body": ["name"]}},
     "plugins[0].config.add.body[0]: invalid value 'name': expected 'name:value'"),
    ({"append": {"headers": ["X-A:line\r\nInjected: 1"]}},
     "plugins[0].config.append.headers[0]: 'line\r\nInjected: 1' is not a valid header value"),
    ({"replace": {"uri": "v2/items"}},
     "plugins[0].config.replace.uri: must start with '/' (or be a template)"),
    ({"replace": {"querystring": ["v:$(ngx.var.uri)"]}},
     "plugins[0].config.replace.querystring[0]: unsupported template expression "
     "'$(ngx.var.uri)': use headers.NAME, query_params.NAME or shared.NAME, optionally "
     "followed by or \"default\""),
    ({"add": {"headers": ["X-A:$(headers.a"]}},
     "plugins[0].config.add.headers[0]: unterminated template expression in '$(headers.a'"),
    ({"replace": {"uri": "/$(uri_captures.id)"}},
     "plugins[0].config.replace.uri: '$(uri_captures.id)': uri_captures are not available "
     "in fastgw"),
    ({"add": {"cookies": []}}, "plugins[0].config.add.cookies: unknown field"),
    ({"remove": ["X-A"]}, "plugins[0].config.remove: expected a record"),
    ({"append": {"querystring": "a:b"}},
     "plugins[0].config.append.querystring: expected an array"),
])
def test_bad_values_name_their_path(config_errors, config, error):
    assert config_errors(config) == [error]
