"""ai-mcp-oauth2 in the real gateway, against a loopback authorization
server: RFC 9728 metadata, 401s naming resource_metadata, the audience bound
to the resource, consumers for ai-mcp-proxy's ACLs, and the token kept from
the MCP server unless passthrough_credentials."""

from __future__ import annotations

import orjson
import pytest

from fastgw.testing import GatewayProcess, UpstreamServer
from fastgw.testing.oidc_provider import CLIENT_ID, CLIENT_SECRET

RESOURCE = "https://mcp.example.com/mcp"
METADATA = "https://mcp.example.com/mcp/.well-known/oauth-protected-resource"
LIST = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}'


def oauth2(idp, **extra) -> dict:
    return {"name": "ai-mcp-oauth2", "config": {
        "resource": RESOURCE, "authorization_servers": [idp.issuer],
        "scopes_supported": ["tools"], "consumer_claim": ["preferred_username"],
        "consumer_optional": True, "introspection_endpoint":
            idp.issuer + "/protocol/introspect", "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, **extra}}


@pytest.fixture(scope="module")
def gateway(idp):
    with UpstreamServer() as upstream:
        tools = {"name": "ai-mcp-proxy", "config": {
            "mode": "conversion-listener", "default_acl": [{"allow": ["alice"]}],
            "tools": [{"name": "get_item", "path": "/items"},
                      {"name": "open_item", "path": "/open", "acl": {"deny": ["mallory"]}}]}}
        by_claim = {"name": "ai-mcp-proxy", "config": {
            "mode": "conversion-listener", "acl_attribute_type": "oauth_access_token",
            "access_token_claim_field": "roles",
            "tools": [{"name": "admin_tool", "path": "/admin", "acl": {"allow": ["admin"]}},
                      {"name": "any_tool", "path": "/any"}]}}
        doc = {"_format_version": "3.0", "services": [{
            "name": "tools", "url": f"http://127.0.0.1:{upstream.port}", "routes": [
                {"name": "mcp", "paths": ["/mcp"], "plugins": [oauth2(idp), tools]},
                {"name": "by-claim", "paths": ["/claims-mcp"], "plugins": [
                    oauth2(idp, consumer_claim=None), by_claim]},
                {"name": "hidden", "paths": ["/hidden"], "plugins": [oauth2(idp)]},
                {"name": "passed", "paths": ["/passed"],
                 "plugins": [oauth2(idp, passthrough_credentials=True)]}]}],
            "consumers": [{"username": "alice"}]}
        with GatewayProcess(doc) as gw:
            yield gw, upstream


def post(gw, token: str | None, path: str = "/mcp", body: bytes = LIST):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return gw.request("POST", path, body, headers)


def test_the_metadata_names_the_resource_and_its_servers(gateway, idp):
    gw, _ = gateway
    status, _, body = gw.request("GET", "/mcp/.well-known/oauth-protected-resource")
    assert status == 200
    assert orjson.loads(body) == {"resource": RESOURCE, "authorization_servers": [idp.issuer],
                                  "bearer_methods_supported": ["header"],
                                  "scopes_supported": ["tools"]}


def test_refusals_name_the_resource_metadata(gateway, idp):
    gw, upstream = gateway
    before = len(upstream.requests)
    status, headers, _ = post(gw, None)
    assert (status, headers["www-authenticate"]) == (
        401, f'Bearer resource_metadata="{METADATA}"')
    # A token for another resource (audience) is refused.
    status, headers, _ = post(gw, idp.token(aud="https://other.example.com/mcp"))
    assert (status, headers["www-authenticate"]) == (
        401, f'Bearer error="invalid_token", resource_metadata="{METADATA}"')
    assert len(upstream.requests) == before


def test_the_token_s_consumer_meets_the_tool_acls(gateway, idp):
    gw, _ = gateway
    for user, expected in (("alice", ["get_item", "open_item"]), ("bob", ["open_item"])):
        status, _, body = post(gw, idp.token(aud=RESOURCE, preferred_username=user))
        assert status == 200
        assert [tool["name"] for tool in orjson.loads(body)["result"]["tools"]] == expected


def test_acls_on_a_token_claim(gateway, idp):
    gw, _ = gateway
    for roles, expected in ((["admin", "ops"], ["admin_tool", "any_tool"]),
                            (["user"], ["any_tool"]), ("admin", ["admin_tool", "any_tool"])):
        token = idp.token(aud=RESOURCE, roles=roles)
        for _ in range(2):  # the second time the token is decided from the core
            status, _, body = post(gw, token, "/claims-mcp")
            assert status == 200
            assert [tool["name"] for tool in orjson.loads(body)["result"]["tools"]] == expected


def test_opaque_tokens_are_introspected(gateway, idp):
    gw, _ = gateway
    idp.introspected["mcp-opaque"] = {"active": True, "aud": RESOURCE, "iss": idp.issuer,
                                      "preferred_username": "alice"}
    assert post(gw, "mcp-opaque")[0] == 200
    idp.introspected["mcp-other"] = {"active": True, "aud": "https://elsewhere"}
    assert post(gw, "mcp-other")[0] == 401


def test_the_token_reaches_the_server_only_with_passthrough(gateway, idp):
    gw, upstream = gateway
    token = idp.token(aud=RESOURCE)
    for path, forwarded in (("/hidden", None), ("/passed", f"Bearer {token}")):
        for _ in range(2):  # the second time decided from the core
            assert gw.request("GET", path, None, {"Authorization": f"Bearer {token}"})[0] == 200
            assert upstream.requests[-1].header("authorization") == forwarded


def test_token_exchange_is_refused_by_name(config_errors, idp):
    errors = config_errors({"resource": RESOURCE, "authorization_servers": [idp.issuer],
                            "token_exchange": {"enabled": True}})
    assert errors == ["plugins[0].config.token_exchange: not supported by fastgw: only Kong's "
                      "default (null) is accepted here"]
