"""ai-mcp-proxy's config: Kong's fields; what fastgw has not built is refused
by name."""

import pytest

TOOL = {"name": "get_order", "path": "/orders/{id}",
        "parameters": [{"name": "id", "in": "path", "schema": {"type": "integer"}}]}


def test_defaults_are_kongs(validated):
    config = validated({"mode": "conversion-listener", "tools": [TOOL]})
    assert (config["consumer_identifier"], config["acl_attribute_type"],
            config["include_consumer_groups"], config["max_request_body_size"],
            config["server"]["timeout"], config["server"]["forward_client_headers"]) == (
        "username", "consumer", False, 1048576, 10000, True)
    assert config["tools"][0]["method"] == "GET"
    assert config["tools"][0]["parameters"][0]["required"] is False


@pytest.mark.parametrize("config, error", [
    ({"mode": "conversion-listener", "tools": [{"name": "t"}]},
     "plugins[0].config.tools[0].path: required in conversion-listener mode (the REST "
     "endpoint the tool calls)"),
    ({"mode": "conversion-listener", "tools": [TOOL], "acl_attribute_type":
      "oauth_access_token"}, "plugins[0].config.access_token_claim_field: required with "
     "acl_attribute_type 'oauth_access_token' (the claim whose values the ACLs list)"),
    ({"mode": "conversion-listener"}, "plugins[0].config.tools: conversion-listener needs at "
     "least one tool"),
    ({"mode": "conversion-listener", "tools": [TOOL, TOOL]},
     "plugins[0].config.tools[1]: duplicate tool name 'get_order'"),
    ({"mode": "conversion-listener", "tools": [{**TOOL, "scheme": "https"}]},
     "plugins[0].config.tools[0].scheme: not supported by fastgw: only Kong's default (null) "
     "is accepted here"),
    ({"mode": "conversion-listener", "tools": [{**TOOL, "name": "bad name"}]},
     "plugins[0].config.tools[0].name: a tool name is 1 to 128 of A-Z, a-z, 0-9, _, - and ."),
])
def test_what_fastgw_cannot_honour_is_refused_by_name(config_errors, config, error):
    assert config_errors(config) == [error]
