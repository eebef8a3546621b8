"""openid-connect's config: Kong's names and defaults for the subset fastgw
implements; Kong's other fields load at their defaults and are refused
with their name otherwise."""

import pytest

ISSUER = "https://idp.example/realms/main"


def test_defaults_are_kongs_where_fastgw_has_the_field(validated):
    config = validated({"issuer": ISSUER})
    assert list(config["auth_methods"]) == ["bearer", "introspection"]
    assert list(config["bearer_token_param_type"]) == ["header", "query", "body"]
    assert list(config["audience_claim"]) == ["aud"] and list(config["scopes_claim"]) == ["scope"]
    assert list(config["consumer_by"]) == ["username", "custom_id"]
    assert (config["leeway"], config["cache_ttl"], config["timeout"], config["ssl_verify"],
            config["rediscovery_lifetime"]) == (0, 3600, 10000, True, 30)


def test_a_decks_dump_with_kong_s_other_fields_at_their_defaults_loads(validated):
    config = validated({"issuer": ISSUER, "auth_methods": ["bearer"], "scopes": ["openid"],
                        "session_secret": None, "login_action": "upstream",
                        "redis": {"host": "127.0.0.1", "port": 6379}})
    assert "scopes" not in config and "redis" not in config


@pytest.mark.parametrize("config, error", [
    ({"auth_methods": ["bearer", "authorization_code"]},
     "plugins[0].config.auth_methods[1]: 'authorization_code' is not supported by fastgw: "
     "only 'bearer' and 'introspection' are"),
    ({"bearer_token_param_type": ["cookie"]},
     "plugins[0].config.bearer_token_param_type[0]: 'cookie' is not supported by fastgw: use "
     "header, query or body"),
    ({"client_id": ["c"], "client_auth": ["private_key_jwt"]},
     "plugins[0].config.client_auth[0]: 'private_key_jwt' is not supported by fastgw: use "
     "client_secret_basic or client_secret_post"),
    ({"client_id": ["a", "b"]},
     "plugins[0].config.client_id: one client only: fastgw introspects as one client"),
    ({"auth_methods": ["bearer"], "upstream_headers_claims": ["email"]},
     "plugins[0].config.upstream_headers_names: must name one header for each of "
     "upstream_headers_claims"),
    ({"auth_methods": ["bearer"], "session_secret": "s3cret"},
     'plugins[0].config.session_secret: not supported by fastgw: only Kong\'s default (null) '
     "is accepted here"),
    ({"auth_methods": ["bearer"], "login_action": "redirect"},
     'plugins[0].config.login_action: not supported by fastgw: only Kong\'s default '
     '("upstream") is accepted here'),
    ({"auth_methods": ["bearer"], "issuer": "idp.example"},
     "plugins[0].config.issuer: invalid URL 'idp.example': expected http(s)://host/..."),
])
def test_what_fastgw_cannot_honour_is_refused_by_name(config_errors, config, error):
    assert config_errors({"issuer": ISSUER, **config}) == [error]


def test_the_issuer_is_required(config_errors):
    assert config_errors({"auth_methods": ["bearer"]}) == [
        "plugins[0].config.issuer: required field missing"]
