"""What Kong has and fastgw does not, so that a Kong file using it is refused
with an error that says so and why, rather than "unknown".

A name here is never silently accepted: these tables only change the wording
of the error (and ``fastgw check --explain``'s advice).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from fastgw.config.schema import Field

# Kong OSS plugins fastgw does not implement -> why, and what to use instead.
KONG_OSS_PLUGINS = {
    "oauth2": "fastgw is not an OAuth 2.0 authorization server; validate tokens with 'jwt'",
    "ldap-auth": "no LDAP client in fastgw; use key-auth, basic-auth, jwt or hmac-auth",
    "session": "fastgw keeps no sessions; use key-auth or jwt",
    "bot-detection": "use ip-restriction, or request-termination with a trigger header",
    "response-ratelimiting": "use rate-limiting, or ai-rate-limiting-advanced for tokens",
    "tcp-log": "use http-log or file-log",
    "udp-log": "use http-log or file-log",
    "syslog": "use file-log (to a file syslog reads) or http-log",
    "loggly": "use http-log to Loggly's HTTP endpoint",
    "datadog": "use prometheus (Datadog scrapes it)",
    "statsd": "use prometheus",
    "zipkin": "tracing is not built yet",
    "aws-lambda": "fastgw proxies HTTP services only",
    "azure-functions": "fastgw proxies HTTP services only",
    "grpc-gateway": "fastgw speaks HTTP/1.1 only, not gRPC",
    "grpc-web": "fastgw speaks HTTP/1.1 only, not gRPC",
    "pre-function": "fastgw runs no Lua; write a Python plugin (FASTGW_CUSTOM_PLUGINS)",
    "post-function": "fastgw runs no Lua; write a Python plugin (FASTGW_CUSTOM_PLUGINS)",
    "acme": "certificates are not issued by fastgw; give them as certificates entities",
    "ai-request-transformer": "not built in fastgw",
    "ai-response-transformer": "not built in fastgw",
    "standard-webhooks": "not built in fastgw",
    "redirect": "use request-termination with status_code 301/302 and a body",
}

# Kong Enterprise plugins -> the fastgw plugin closest to it, when there is one.
KONG_ENTERPRISE_PLUGINS = {
    "rate-limiting-advanced": "rate-limiting (local or Redis, sliding windows)",
    "proxy-cache-advanced": "proxy-cache (memory or Redis)",
    "request-transformer-advanced": "request-transformer",
    "response-transformer-advanced": "response-transformer",
    "key-auth-enc": "key-auth",
    "ldap-auth-advanced": None,
    "oauth2-introspection": "openid-connect (auth_methods: introspection)",
    "header-cert-auth": None,
    "jwt-signer": None,
    "jwe-decrypt": None,
    "saml": None,
    "vault-auth": None,
    "upstream-oauth": None,
    "canary": "upstreams with weighted targets",
    "route-by-header": "routes with headers",
    "route-transformer-advanced": None,
    "request-validator": None,
    "oas-validation": None,
    "mocking": "request-termination",
    "exit-transformer": None,
    "forward-proxy": None,
    "upstream-timeout": "the service's connect/write/read_timeout",
    "service-protection": "rate-limiting",
    "opa": None,
    "degraphql": None,
    "graphql-proxy-cache-advanced": None,
    "graphql-rate-limiting-advanced": None,
    "kafka-log": "http-log",
    "kafka-upstream": None,
    "confluent": None,
    "statsd-advanced": "prometheus",
    "app-dynamics": None,
    "datakit": None,
    "jq": None,
    "json-threat-protection": "request-size-limiting",
    "xml-threat-protection": "request-size-limiting",
    "injection-protection": None,
    "websocket-size-limit": None,
    "websocket-validator": None,
    "tls-handshake-modifier": None,
    "tls-metadata-headers": None,
    "application-registration": None,
    "ai-azure-content-safety": "ai-sanitizer, ai-prompt-guard",
    "ai-aws-guardrails": "ai-sanitizer, ai-prompt-guard",
    "ai-gcp-model-armor": "ai-sanitizer, ai-prompt-guard",
    "ai-semantic-prompt-guard": "ai-prompt-guard",
    "ai-semantic-response-guard": None,
    "ai-prompt-compressor": None,
    "ai-rag-injector": None,
    "ai-llm-as-judge": None,
}


def unknown_plugin_message(name: str) -> str:
    """The error for a plugin name fastgw does not know."""
    reason = KONG_OSS_PLUGINS.get(name)
    if reason is not None:
        return f"plugin '{name}' is a Kong plugin fastgw does not implement: {reason}"
    if name in KONG_ENTERPRISE_PLUGINS:
        closest = KONG_ENTERPRISE_PLUGINS[name]
        instead = f"; the closest fastgw plugin is {closest}" if closest else ""
        return f"plugin '{name}' is a Kong Enterprise plugin, not part of fastgw{instead}"
    return f"unknown plugin '{name}'"


# Top-level keys of Kong (Enterprise, Konnect) and decK files fastgw refuses,
# with why.
KONG_ONLY_KEYS = {
    "partials": "Kong Enterprise partials (shared plugin settings); write the settings into "
                "each plugin",
    "_info": "decK's file metadata (select_tags, defaults); remove it",
    "_workspace": "Kong Enterprise workspaces; fastgw has one configuration",
    "_konnect": "Konnect control-plane settings; remove them",
    "workspaces": "Kong Enterprise workspaces; fastgw has one configuration",
    "licenses": "Kong Enterprise licenses; remove them",
    "rbac_users": "Kong Enterprise RBAC; the admin API is guarded by its token",
    "rbac_roles": "Kong Enterprise RBAC; the admin API is guarded by its token",
    "consumer_group_consumers": "as a top-level list; write each consumer's 'groups'",
    "filter_chains": "Kong's WebAssembly filters",
    "custom_entities": "Kong Enterprise custom entities",
    "event_hooks": "Kong Enterprise event hooks",
    "developers": "the Kong Dev Portal",
}


def _same_as_default(value: Any, default: Any) -> bool:
    """Whether ``value`` asks nothing of Kong's ``default``: equal to it, or,
    for a record, each written field equal to its own default."""
    if isinstance(value, dict) and isinstance(default, dict):
        return all(name in default and _same_as_default(item, default[name])
                   for name, item in value.items())
    if default is None:
        return value in (None, [], {})
    return bool(value == default)


def kong_defaults_only(defaults: Mapping[str, Any]) -> dict[str, Field]:
    """Fields of a Kong plugin that fastgw does not implement, accepted only
    with Kong's default value (decK writes every field when it dumps a
    config): any other value is an error that names the field, never a
    setting silently dropped. For a Record's ``ignored``."""

    def field(default: Any) -> Field:
        def check(value: Any) -> str | None:
            if _same_as_default(value, default):
                return None
            return ("not supported by fastgw: only Kong's default "
                    f"({orjson.dumps(default).decode()}) is accepted here")
        return Field(check=check, description="A Kong field fastgw does not implement: "
                     "accepted with Kong's default only.")

    return {name: field(default) for name, default in defaults.items()}
