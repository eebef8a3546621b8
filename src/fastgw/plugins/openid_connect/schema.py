"""Config of openid-connect: the subset of Kong's fields fastgw implements,
with Kong's names and defaults. Kong's other fields (there are some 200:
sessions, login flows, token exchange...) are accepted only with Kong's
default value, so that a config dumped by decK loads, and refused with a
message naming them otherwise.

fastgw differences: ``auth_methods`` defaults to ``bearer`` and
``introspection`` (the two fastgw has; Kong's default lists every method),
and a ``client_auth`` other than ``client_secret_basic`` or
``client_secret_post`` is refused.
"""

from __future__ import annotations

import json
from pathlib import Path as FilePath
from urllib.parse import urlsplit

from fastgw.config.kong_only import kong_defaults_only
from fastgw.config.schema import Array, Boolean, Number, Path, Record, String, Validation
from fastgw.plugins.credentials import anonymous_field

AUTH_METHODS = ("authorization_code", "bearer", "client_credentials", "introspection",
                "kong_oauth2", "password", "refresh_token", "session", "userinfo")
SUPPORTED_AUTH_METHODS = ("bearer", "introspection")
CLIENT_AUTH = ("client_secret_basic", "client_secret_jwt", "client_secret_post", "none",
               "private_key_jwt", "self_signed_tls_client_auth", "tls_client_auth")
SUPPORTED_CLIENT_AUTH = ("client_secret_basic", "client_secret_post")
# Kong's other fields and their defaults (from Kong's published plugin schema).
KONG_DEFAULTS = json.loads((FilePath(__file__).parent / "kong_fields.json").read_text())


def check_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"invalid URL '{value}': expected http(s)://host/..."
    return None


def _url(description: str) -> String:
    return String(check=check_url, description=description)


def _names(description: str, default: tuple[str, ...] | None = None) -> Array:
    if default is None:
        return Array(String(), description=description)
    return Array(String(), default=default, description=description)


def _check(config: dict, path: Path, ctx: Validation) -> None:
    for index, method in enumerate(config["auth_methods"]):
        if method not in SUPPORTED_AUTH_METHODS:
            ctx.error(((path, "auth_methods"), index), f"'{method}' is not supported by fastgw: "
                      "only 'bearer' and 'introspection' are")
    for index, place in enumerate(config["bearer_token_param_type"]):
        if place == "cookie":
            ctx.error(((path, "bearer_token_param_type"), index),
                      "'cookie' is not supported by fastgw: use header, query or body")
    for index, method in enumerate(config["client_auth"] or ()):
        if method not in SUPPORTED_CLIENT_AUTH:
            ctx.error(((path, "client_auth"), index), f"'{method}' is not supported by fastgw: "
                      "use client_secret_basic or client_secret_post")
    claims, names = config["upstream_headers_claims"], config["upstream_headers_names"]
    if len(claims or ()) != len(names or ()):
        ctx.error((path, "upstream_headers_names"),
                  "must name one header for each of upstream_headers_claims")
    for name in ("client_id", "client_secret", "client_auth"):
        if len(config[name] or ()) > 1:
            ctx.error((path, name), "one client only: fastgw introspects as one client")


SCHEMA = Record(
    {
        "issuer": String(check=check_url, required=True,
                         description="The issuer, or its discovery URL "
                         "(.well-known/openid-configuration)."),
        "issuers_allowed": _names("Issuers a token's 'iss' may name; unset: the "
                                  "discovered issuer."),
        "extra_jwks_uris": Array(_url("A JWKS URL."),
                                 description="JWKS URLs whose keys are trusted too."),
        "rediscovery_lifetime": Number(
            between=(0, 86400), default=30,
            description="Seconds between two fetches of discovery and JWKS when a token "
            "names an unknown key (rotation)."),
        "auth_methods": Array(String(one_of=AUTH_METHODS), default=SUPPORTED_AUTH_METHODS,
                              description="'bearer' (JWTs checked locally) and/or "
                              "'introspection' (asked of the provider)."),
        "bearer_token_param_type": Array(
            String(one_of=("header", "query", "body", "cookie")),
            default=("header", "query", "body"),
            description="Where the token is looked for: the Authorization, access-token or "
            "x-access-token header, the access_token query argument, or the access_token "
            "body field."),
        "audience_required": _names("Audiences of which the token must name one."),
        "audience_claim": _names("The claim holding the audiences (a path).", ("aud",)),
        "scopes_required": _names("Scopes the token must have: each entry is a "
                                  "space-separated set that must all be granted; one "
                                  "entry is enough."),
        "scopes_claim": _names("The claim holding the scopes (a path).", ("scope",)),
        "leeway": Number(between=(0, 86400), default=0,
                         description="Seconds of clock skew allowed on exp and nbf."),
        "verify_claims": Boolean(default=True, description="Check exp, nbf and the issuer."),
        "verify_signature": Boolean(default=True,
                                    description="Check the signature (never turn off "
                                    "outside a test)."),
        "consumer_claim": _names("The claim naming the consumer (a path); unset: no "
                                 "consumer mapping."),
        "consumer_by": Array(String(one_of=("username", "custom_id", "id")),
                             default=("username", "custom_id"),
                             description="Consumer fields the claim is matched against, "
                             "in order."),
        "consumer_optional": Boolean(default=False,
                                     description="A token whose consumer is not found "
                                     "still passes (without a consumer)."),
        "consumer_groups_claim": _names("The claim listing consumer groups: their "
                                        "plugins apply."),
        "authenticated_groups_claim": _names("The claim listing groups for the acl "
                                             "plugin."),
        "upstream_headers_claims": _names("Claims sent to the upstream as headers."),
        "upstream_headers_names": _names("The header for each of upstream_headers_claims."),
        "introspection_endpoint": _url("The introspection endpoint; unset: discovery's."),
        "client_id": Array(String(referenceable=True), description="The gateway's client "
                           "id at the provider (introspection)."),
        "client_secret": Array(String(referenceable=True, secret=True),
                               description="The client's secret."),
        "client_auth": Array(String(one_of=CLIENT_AUTH),
                             description="How the client authenticates: "
                             "client_secret_basic (default) or client_secret_post."),
        "introspection_check_active": Boolean(default=True,
                                              description="Require active: true."),
        "cache_introspection": Boolean(default=True,
                                       description="Cache introspection answers."),
        "cache_ttl": Number(between=(0, 2**31), default=3600,
                            description="Seconds a checked token or an introspection answer "
                            "is kept at most (never past the token's exp)."),
        "timeout": Number(between=(1, 2**31), default=10000,
                          description="Milliseconds allowed for each call to the provider."),
        "ssl_verify": Boolean(default=True,
                              description="Verify the provider's TLS certificate."),
        "anonymous": anonymous_field(),
        "run_on_preflight": Boolean(default=True,
                                    description="Authenticate OPTIONS requests too."),
    },
    ignored=kong_defaults_only(KONG_DEFAULTS),
    validator=_check,
    description="Authenticate bearer tokens from an OpenID Connect provider.",
)
