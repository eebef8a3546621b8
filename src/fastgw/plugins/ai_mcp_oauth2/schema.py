"""Config of ai-mcp-oauth2: the subset of Kong's fields fastgw implements,
with Kong's names and defaults; Kong's other fields load at their defaults
only and are refused by name otherwise (``token_exchange`` among them: RFC
8693 token exchange is not built).

fastgw differences: the authorization server's keys come from
``jwks_endpoint``, else from the first of ``authorization_servers`` by OpenID
discovery (``.well-known/openid-configuration``); ``client_auth`` is
``client_secret_basic`` or ``client_secret_post``.
"""

from __future__ import annotations

from fastgw.config.kong_only import kong_defaults_only
from fastgw.config.schema import Array, Boolean, Integer, Number, Path, Record, String, Validation
from fastgw.plugins.openid_connect.schema import SUPPORTED_CLIENT_AUTH, check_url

KONG_DEFAULTS = {
    "args": None, "client_alg": None, "client_jwk": None, "consumer_groups_optional": False,
    "credential_claim": ["sub"], "headers": None, "http_proxy": None,
    "http_proxy_authorization": None, "http_version": 1.1, "https_proxy": None,
    "https_proxy_authorization": None, "introspection_format": None, "jwks_cache_ttl": 3600,
    "keepalive": True, "metadata_cache_ttl": 3600, "metadata_discovery_endpoint": None,
    "metadata_discovery_retry": 3, "mtls_introspection_endpoint": None, "no_proxy": None,
    "tls_client_auth_cert": None, "tls_client_auth_key": None,
    "tls_client_auth_ssl_verify": True, "token_exchange": None, "upstream_headers": None,
}


def _url(description: str, **options: object) -> String:
    return String(check=check_url, description=description, **options)  # type: ignore[arg-type]


def _check(config: dict, path: Path, ctx: Validation) -> None:
    if not (config["jwks_endpoint"] or config["introspection_endpoint"]
            or config["authorization_servers"]):
        ctx.error(path, "set jwks_endpoint, introspection_endpoint or authorization_servers "
                  "(whose discovery names the keys)")
    if config["client_auth"] not in (None, *SUPPORTED_CLIENT_AUTH):
        ctx.error((path, "client_auth"), f"'{config['client_auth']}' is not supported by "
                  "fastgw: use client_secret_basic or client_secret_post")
    if config["metadata_endpoint"] is not None and not config["metadata_endpoint"].startswith("/"):
        ctx.error((path, "metadata_endpoint"), "a path, starting with /")


SCHEMA = Record(
    {
        "resource": _url("The protected resource (the MCP server's URL): tokens must name it "
                         "in their audience.", required=True),
        "authorization_servers": Array(_url("An authorization server (issuer)."),
                                       description="Who issues tokens for the resource (RFC "
                                       "9728 metadata; the issuers tokens may name)."),
        "scopes_supported": Array(String(), description="Scopes the metadata lists."),
        "metadata_endpoint": String(description="The metadata's path; unset: the resource's "
                                    "path + /.well-known/oauth-protected-resource."),
        "jwks_endpoint": _url("The authorization server's JWKS (JWT access tokens)."),
        "introspection_endpoint": _url("RFC 7662 introspection (opaque tokens)."),
        "client_id": String(referenceable=True, description="The gateway's client id at the "
                            "authorization server (introspection)."),
        "client_secret": String(referenceable=True, secret=True, description="Its secret."),
        "client_auth": String(description="client_secret_basic (default) or "
                              "client_secret_post."),
        "cache_introspection": Boolean(default=True, description="Cache introspection answers."),
        "jwt_claims_leeway": Integer(between=(0, 86400), default=0,
                                     description="Seconds of clock skew allowed on exp and nbf."),
        "insecure_relaxed_audience_validation": Boolean(
            default=False, description="Skip the audience check (never in production)."),
        "consumer_claim": Array(String(), description="The claim naming the consumer (a path)."),
        "consumer_by": Array(String(one_of=("custom_id", "id", "username")),
                             default=("custom_id", "username"),
                             description="Consumer fields the claim is matched against."),
        "consumer_optional": Boolean(default=False, description="A token whose consumer is not "
                                     "found still passes."),
        "consumer_groups_claim": Array(String(), description="The claim listing consumer groups."),
        "claim_to_header": Array(Record({
            "claim": String(required=True, description="A top-level claim."),
            "header": String(required=True, description="The upstream header."),
        }, description="One claim sent upstream."), description="Claims sent upstream."),
        "passthrough_credentials": Boolean(default=False, description="Send the client's "
                                           "token on to the MCP server."),
        "timeout": Number(between=(1, 2**31), default=10000,
                          description="Milliseconds for each call to the authorization server."),
        "ssl_verify": Boolean(default=True, description="Verify the authorization server's "
                              "TLS certificate."),
        "max_request_body_size": Integer(between=(0, 2**31), default=1048576,
                                         description="Accepted for Kong compatibility: the "
                                         "message size ai-mcp-proxy checks."),
    },
    ignored=kong_defaults_only(KONG_DEFAULTS),
    validator=_check,
    description="Protect an MCP route as an OAuth 2.0 resource server (the MCP authorization "
    "spec).",
)
