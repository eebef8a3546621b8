"""ai-mcp-oauth2: the MCP authorization specification's resource server.

The route serves its protected resource metadata (RFC 9728) at
``metadata_endpoint``; any other request needs an access token for
``resource`` (its audience) from one of ``authorization_servers``, checked by
the shared identity module as openid-connect checks bearer tokens (JWKS with
key rotation, or introspection). A refusal is a 401 whose
``WWW-Authenticate`` names ``resource_metadata``, so that an MCP client can
find where to get a token. The token does not reach the MCP server unless
``passthrough_credentials`` is on.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

from fastgw.plugins.context import RequestContext
from fastgw.plugins.openid_connect.handler import OpenIDConnect
from fastgw.plugins.state import ConfigState

METADATA_SUFFIX = "/.well-known/oauth-protected-resource"


def _as_openid_connect(config: dict[str, Any]) -> dict[str, Any]:
    """The openid-connect settings that check this plugin's tokens."""
    servers = list(config["authorization_servers"] or ())
    methods = ["bearer"] if config["jwks_endpoint"] or servers else []
    if config["introspection_endpoint"]:
        methods.append("introspection")
    claims = config["claim_to_header"] or ()
    return {
        # No JWKS given: the first authorization server's discovery names it.
        "issuer": None if config["jwks_endpoint"] or not servers else servers[0],
        "issuers_allowed": servers or None,
        "extra_jwks_uris": [config["jwks_endpoint"]] if config["jwks_endpoint"] else None,
        "rediscovery_lifetime": 30, "auth_methods": methods,
        "bearer_token_param_type": ["header"],
        "audience_required": None if config["insecure_relaxed_audience_validation"]
        else [config["resource"]],
        "audience_claim": ["aud"], "scopes_required": None, "scopes_claim": ["scope"],
        "leeway": config["jwt_claims_leeway"], "verify_claims": True, "verify_signature": True,
        "consumer_claim": config["consumer_claim"], "consumer_by": config["consumer_by"],
        "consumer_optional": config["consumer_optional"] or not config["consumer_claim"],
        "consumer_groups_claim": config["consumer_groups_claim"],
        "authenticated_groups_claim": None,
        "upstream_headers_claims": [entry["claim"] for entry in claims] or None,
        "upstream_headers_names": [entry["header"] for entry in claims] or None,
        "introspection_endpoint": config["introspection_endpoint"],
        "client_id": [config["client_id"]] if config["client_id"] else None,
        "client_secret": [config["client_secret"]] if config["client_secret"] else None,
        "client_auth": [config["client_auth"]] if config["client_auth"] else None,
        "introspection_check_active": True, "cache_introspection": config["cache_introspection"],
        "cache_ttl": 3600, "timeout": config["timeout"], "ssl_verify": config["ssl_verify"],
        "anonymous": None, "run_on_preflight": True,
    }


class AIMCPOAuth2(OpenIDConnect):
    name = "ai-mcp-oauth2"
    PRIORITY = 1060  # before the other authentication plugins, after none of them

    __slots__ = ("metadata", "metadata_path", "metadata_url")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(_as_openid_connect(config), state, scope)
        resource = config["resource"]
        parts = urlsplit(resource)
        self.metadata_path = config["metadata_endpoint"] or (
            parts.path.rstrip("/") + METADATA_SUFFIX)
        self.metadata_url = f"{parts.scheme}://{parts.netloc}{self.metadata_path}"
        self.metadata = {"resource": resource,
                         "authorization_servers": list(config["authorization_servers"] or ()),
                         "bearer_methods_supported": ["header"]}
        if config["scopes_supported"]:
            self.metadata["scopes_supported"] = list(config["scopes_supported"])
        self.hide_token = not config["passthrough_credentials"]

    def access(self, ctx: RequestContext) -> Awaitable[None] | None:
        request = ctx.request
        # The path as the client sent it (a route may strip its prefix).
        if request.raw_path == self.metadata_path and request.method in ("GET", "HEAD"):
            ctx.exit(200, self.metadata, {"Cache-Control": "max-age=3600"})
            return None
        return super().access(ctx)

    def challenge(self, error: str | None) -> str:
        # MCP clients find the authorization servers from resource_metadata.
        parts = [f'resource_metadata="{self.metadata_url}"']
        if error:
            parts.insert(0, f'error="{error}"')
        return "Bearer " + ", ".join(parts)


HANDLER = AIMCPOAuth2
