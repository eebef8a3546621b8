"""Schemas of the declarative document's entities.

Field names, defaults and bounds follow Kong's ``kong/db/schema/entities/*.lua``
(services, routes, upstreams, targets, consumers, plugins) and the bundled
credential schemas (key-auth, basic-auth, jwt, acl). Deviations, all because
fastgw speaks HTTP/1.1 only and reads a file rather than a database:

* ``protocol`` / ``protocols`` accept only ``http`` and ``https`` (plugins also
  accept Kong's ``grpc``/``grpcs`` so that decK exports load unchanged);
* a service without ``url`` and without ``port`` gets 443 for ``https`` and 80
  otherwise (Kong uses 80 whatever the protocol, which is rarely meant);
* credentials need their ``key``/``secret`` written out: a generated value that
  nobody can read back is useless in a file;
* ``_gateway`` is fastgw's own block (process settings; durations in seconds).

Rules that need the whole document (unique names, references between
entities) live in ``fastgw.config.loader``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import fields as dataclass_fields
from typing import Any

from fastgw.config.checks import (
    _PATH_FORBIDDEN,
    JWT_ALGORITHMS,
    _check_port,
    _regex_error,
    check_host,
    check_listen,
    check_path,
    check_route_host,
    check_target,
    is_hostname,
)
from fastgw.config.kong_only import KONG_ONLY_KEYS, unknown_plugin_message
from fastgw.config.model import GatewaySettings, HealthChecks, HealthThresholds
from fastgw.config.pem import (
    certificate_error,
    jwk_error,
    pair_error,
    private_key_error,
    public_key_error,
    single_certificate_error,
)
from fastgw.config.schema import (
    INVALID,
    Array,
    Boolean,
    Dynamic,
    Field,
    Integer,
    Map,
    Number,
    Path,
    Record,
    Set,
    String,
    Validation,
)

FORMAT_VERSIONS = ("1.1", "2.1", "3.0")  # Kong 3 migrates the older two (config.migrations)
HTTP_PROTOCOLS = ("http", "https")
PLUGIN_PROTOCOLS = ("grpc", "grpcs", "http", "https")
DEFAULT_TARGET_PORT = 8000  # Kong's default when a target omits its port
INT32_MAX = 2**31 - 1

# RFC 9110 token characters.
_HEADER_NAME = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID_RE = re.compile(_UUID)


def is_uuid(value: str) -> bool:
    """An entity id as Kong writes one (a reference may be an id or a name)."""
    return _UUID_RE.fullmatch(value) is not None
_NAME = r"^[\w.\-~]+$"
# scheme://host[:port][/path]; userinfo, query and fragment are not allowed.
_SERVICE_URL = re.compile(
    r"([A-Za-z][A-Za-z0-9+.-]*)://(\[[^\]]*\]|[^:/?#@\[\]]*)(?::(\d*))?(/[^?#]*)?"
)


def check_route_path(value: str) -> str | None:
    """A prefix path, or a regular expression after a leading ``~`` (Kong 3)."""
    if value.startswith("~"):
        return _regex_error(value[1:])
    if not value.startswith("/"):
        return "should start with: / (fixed path) or ~/ (regex path)"
    if _PATH_FORBIDDEN.search(value) is not None:
        return "must not contain whitespace, '?' or '#'"
    return None


def _check_route_header_name(value: str) -> str | None:
    if value.lower() == "host":
        return "cannot contain 'host' header, which must be specified in the 'hosts' attribute"
    return None


def _check_upstream_name(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        return "Invalid name; no ip addresses allowed"
    if ":" in value:
        return "Invalid name; no port allowed"
    if not is_hostname(value):
        return "Invalid name; must be a valid hostname"
    return None


# The plugins' config schemas by name. The plugin layer hands its registry in
# (``use_plugin_registry``; ``fastgw.plugins`` does so when imported): the
# config layer never imports the plugins.
_plugin_schemas: list[Callable[[object], Field | None]] = [lambda name: None]


def use_plugin_registry(schema_of: Callable[[object], Field | None]) -> None:
    """Validate plugin entries with ``schema_of(name)`` (None: unknown plugin)."""
    _plugin_schemas[0] = schema_of


def _check_plugin_name(value: str) -> str | None:
    if _plugin_schemas[0](value) is None:
        return unknown_plugin_message(value)
    return None


def _plugin_config_schema(plugin: dict) -> Field | None:
    return _plugin_schemas[0](plugin.get("name"))


# --- shared field definitions --------------------------------------------------


def _id() -> String:
    return String(
        match=_UUID,
        match_message="invalid id '{value}': expected a UUID",
        description="The entity's UUID; fastgw keeps it as given and accepts it in references.",
    )


def _name(description: str, **options: Any) -> String:
    return String(
        match=_NAME,
        match_message="invalid name '{value}': use letters, digits, '.', '-', '_' or '~'",
        description=description,
        **options,
    )


def _tags() -> Set:
    return Set(
        String(len_max=128, description="One tag."),
        description="Free-form labels, for the operator's own bookkeeping.",
    )


def _timeout_ms(what: str) -> Integer:
    return Integer(
        between=(1, INT32_MAX - 1),
        default=60000,
        description=f"Milliseconds allowed for {what} (Kong's default, 60000).",
    )


def _header_name(description: str, **options: Any) -> String:
    return String(
        match=_HEADER_NAME,
        match_message="invalid header name '{value}'",
        description=description,
        **options,
    )


def _reference(kind: str) -> String:
    return String(description=f"Name or id of the {kind} this entity belongs to.")


def _status_codes(default: tuple[int, ...], description: str) -> Array:
    return Array(
        Integer(between=(100, 999), description="An HTTP status code."),
        default=default,
        description=description,
    )


def _seconds(default: float, description: str) -> Number:
    return Number(between=(0, 65535), default=default, description=description)


def _counter(description: str) -> Integer:
    return Integer(between=(0, 255), default=0, description=f"{description} 0 disables it.")



def _entity(fields: Mapping[str, Field], **options: Any) -> Record:
    """An entity's record: its own fields, plus what Kong accepts on every
    entity of a declarative file and fastgw keeps no behaviour for: the
    ``_comment`` and ``_ignore`` annotations, and the timestamps Kong writes
    in its own dumps (unless the entity uses them)."""
    ignored = {name: field for name, field in _ENTITY_ANNOTATIONS.items() if name not in fields}
    return Record(fields, ignored=ignored, **options)


_ENTITY_ANNOTATIONS: dict[str, Field] = {
    "_comment": String(len_min=0, description="A comment; ignored."),
    "_ignore": Array(Field(description="Anything."), description="Ignored content."),
    "created_at": Number(description="Creation time Kong writes in dumps; ignored."),
    "updated_at": Number(description="Update time Kong writes in dumps; ignored."),
}


# --- plugins -----------------------------------------------------------------

PLUGIN = _entity(
    {
        "id": _id(),
        "name": String(
            required=True, check=_check_plugin_name, description="The plugin's Kong name."
        ),
        "instance_name": _name("Unique name of this plugin instance."),
        "config": Dynamic(
            _plugin_config_schema,
            description="The plugin's settings, checked against the plugin's own schema.",
        ),
        "enabled": Boolean(default=True, description="Whether the plugin runs."),
        "protocols": Set(
            String(one_of=PLUGIN_PROTOCOLS, description="A request scheme."),
            len_min=1,
            default=PLUGIN_PROTOCOLS,
            description="Request schemes the plugin runs on.",
        ),
        "tags": _tags(),
        "service": _reference("service"),
        "route": _reference("route"),
        "consumer": _reference("consumer (name or username)"),
        "consumer_group": _reference("consumer group"),
    },
    description="A plugin: global, or scoped to a service, route, consumer and/or consumer "
    "group.",
)


def _plugins() -> Array:
    return Array(PLUGIN, default=(), description="Plugins scoped to this entity.")


# --- routes ------------------------------------------------------------------


def _check_route(route: dict, path: Path, ctx: Validation) -> None:
    if not (route["paths"] or route["hosts"] or route["methods"] or route["headers"]
            or route["snis"]):
        ctx.error(path, "must set at least one of 'paths', 'hosts', 'methods', 'headers', "
                  "'snis'")
    if route["snis"] and "https" not in route["protocols"]:
        # Kong's wording (fastgw has only the https one of those protocols).
        ctx.error((path, "snis"), "'snis' can only be set when 'protocols' is 'grpcs', "
                  "'https', 'tls' or 'tls_passthrough'")


def _check_sni(value: str) -> str | None:
    if "*" in value or ":" in value or not is_hostname(value):
        return f"invalid SNI '{value}': expected a host name (no port, no wildcard)"
    return None


ROUTE = _entity(
    {
        "id": _id(),
        "name": _name("Unique route name; defaults to the route's id or its document path."),
        "protocols": Set(
            String(one_of=HTTP_PROTOCOLS, description="A request scheme."),
            len_min=1,
            default=HTTP_PROTOCOLS,
            description="Request schemes the route matches.",
        ),
        "methods": Set(
            String(
                match=r"^[A-Z]+$",
                match_message="invalid method '{value}': expected upper case letters",
                description="An HTTP method.",
            ),
            description="HTTP methods the route matches; any when empty.",
        ),
        "hosts": Array(
            String(check=check_route_host, description="A host, optionally with one '*' label."),
            description="Host header values the route matches; any when empty.",
        ),
        "paths": Array(
            String(check=check_route_path, description="A prefix, or a regex after '~'."),
            description="Request path prefixes (or '~' regexes) the route matches.",
        ),
        "snis": Set(
            String(check=_check_sni, description="A TLS server name."),
            description="TLS server names the route matches over HTTPS (plain HTTP requests "
            "are not checked, as in Kong).",
        ),
        "headers": Map(
            _header_name("A request header name.", check=_check_route_header_name),
            Array(String(description="An accepted value."), len_min=1, description="Values."),
            description="Request headers the route requires, each with its accepted values.",
        ),
        "https_redirect_status_code": Integer(
            one_of=(426, 301, 302, 307, 308),
            default=426,
            description="Status sent when only the protocol does not match.",
        ),
        "regex_priority": Integer(
            # Kong's integers are Lua numbers: exact up to 2^53.
            between=(-(2**53 - 1), 2**53 - 1),
            default=0,
            description="Among matching regex paths, the higher priority wins.",
        ),
        "strip_path": Boolean(
            default=True, description="Remove the matched path prefix before proxying."
        ),
        "path_handling": String(
            one_of=("v0", "v1"),
            default="v0",
            description="How service, route and request paths are joined (Kong's v0/v1).",
        ),
        "preserve_host": Boolean(
            default=False, description="Send the client's Host header upstream."
        ),
        "request_buffering": Boolean(default=True, description="Kong's request buffering flag."),
        "response_buffering": Boolean(default=True, description="Kong's response buffering flag."),
        "tags": _tags(),
        "service": _reference("service (top-level routes only)"),
        "plugins": _plugins(),
    },
    validator=_check_route,
    description="A rule matching requests to a service.",
)


# --- services ----------------------------------------------------------------


def _default_port(protocol: str) -> int:
    return 443 if protocol == "https" else 80


def _expand_service_url(service: dict, path: Path, ctx: Validation) -> None:
    """Kong's ``url`` shorthand: fill protocol, host, port and path from it."""
    url_path = (path, "url")
    clashing = [name for name in ("protocol", "host", "port", "path") if service[name] is not None]
    if clashing:
        names = ", ".join(f"'{name}'" for name in clashing)
        ctx.error(url_path, f"cannot be combined with {names}")
        return
    match = _SERVICE_URL.fullmatch(service["url"])
    if match is None or not match.group(2) or match.group(3) == "":
        ctx.error(url_path, "expected 'http[s]://host[:port][/path]'")
        return
    scheme, host, port_text, url_path_part = match.groups()
    scheme = scheme.lower()
    if scheme not in HTTP_PROTOCOLS:
        ctx.error(url_path, "scheme must be 'http' or 'https'")
        return
    if host.startswith("["):
        host = host[1:-1]
    port = int(port_text) if port_text else _default_port(scheme)
    message = check_host(host) or _check_port(port) or (url_path_part and check_path(url_path_part))
    if message:
        ctx.error(url_path, message)
        return
    service["protocol"] = scheme
    service["host"] = host
    service["port"] = port
    service["path"] = url_path_part


def _check_client_certificate(reference: dict, path: Path, ctx: Validation) -> None:
    files = reference["cert"] is not None, reference["key"] is not None
    if reference["id"] is not None:
        if any(files):
            ctx.error(path, "either 'id' (a certificate entity) or 'cert' and 'key' (files)")
    elif not all(files):
        ctx.error(path, "needs 'id' (a certificate entity), or both 'cert' and 'key' (files)")


def _check_service(service: dict, path: Path, ctx: Validation) -> None:
    if service["url"] is not None:
        _expand_service_url(service, path, ctx)
        if service["host"] is None:
            return
    elif service["host"] is None:
        ctx.error((path, "host"), "required field missing (set 'host' or 'url')")
        return
    else:
        if service["protocol"] is None:
            service["protocol"] = "http"
        if service["port"] is None:
            service["port"] = _default_port(service["protocol"])
    for field in ("tls_verify", "client_certificate"):
        if service[field] is not None and service["protocol"] != "https":
            ctx.error((path, field), "only allowed when protocol is 'https'")


SERVICE = _entity(
    {
        "id": _id(),
        "name": _name("Unique service name; defaults to the service's id or its document path."),
        "url": String(
            description="Shorthand for protocol, host, port and path: 'https://host:port/path'."
        ),
        "protocol": String(
            one_of=HTTP_PROTOCOLS, description="Scheme spoken to the upstream; default 'http'."
        ),
        "host": String(
            check=check_host,
            description="Upstream host name or IP address, or the name of an upstream.",
        ),
        "port": Integer(
            between=(0, 65535), description="Upstream port; default 443 for https, else 80."
        ),
        "path": String(check=check_path, description="Path prepended to upstream requests."),
        "retries": Integer(
            between=(0, 32767), default=5, description="Retries after a failed connection."
        ),
        "connect_timeout": _timeout_ms("connecting to the upstream"),
        "write_timeout": _timeout_ms("each write to the upstream"),
        "read_timeout": _timeout_ms("each read from the upstream"),
        "tls_verify": Boolean(
            description="Verify the upstream certificate (https only); unset means verify."
        ),
        "client_certificate": Record(
            {
                "id": String(description="A certificate entity's id (Kong's form)."),
                "cert": String(referenceable=True,
                               description="PEM certificate file shown to the upstream."),
                "key": String(referenceable=True,
                              description="PEM private key file of that certificate."),
            },
            validator=_check_client_certificate,
            description="Client certificate for mutual TLS with the upstream (https only): "
            "a certificate entity by id, or cert and key files.",
        ),
        "ca_certificates": Array(
            String(description="A ca_certificates entity's id, or a PEM file of CAs."),
            default=(),
            description="CAs that sign the upstream's certificate, instead of the system's.",
        ),
        "tags": _tags(),
        "enabled": Boolean(
            default=True, description="When false, the service's routes are not served."
        ),
        "routes": Array(ROUTE, default=(), description="Routes to this service."),
        "plugins": _plugins(),
    },
    validator=_check_service,
    description="An upstream API that routes send requests to.",
)


# --- upstreams and targets ---------------------------------------------------

TARGET = _entity(
    {
        "id": _id(),
        "target": String(
            required=True,
            check=check_target,
            description=f"'host:port' of a backend; the port defaults to {DEFAULT_TARGET_PORT}.",
        ),
        "weight": Integer(
            between=(0, 65535),
            default=100,
            description="Share of traffic relative to other targets; 0 disables the target.",
        ),
        "tags": _tags(),
    },
    description="One backend of an upstream.",
)


def _thresholds(side: Mapping[str, Any]) -> HealthThresholds:
    return HealthThresholds(
        interval=float(side.get("interval") or 0),
        successes=int(side.get("successes") or 0),
        http_failures=int(side.get("http_failures") or 0),
        tcp_failures=int(side.get("tcp_failures") or 0),
        timeouts=int(side.get("timeouts") or 0),
        http_statuses=frozenset(side.get("http_statuses") or ()),
    )


def health_checks(healthchecks: Mapping[str, Any] | None) -> HealthChecks:
    """An upstream's ``healthchecks`` (Kong's shape, whole or partial) parsed
    with the schema's own defaults: the one place they are read."""
    ctx = Validation({})
    filled = HEALTHCHECKS.validate(dict(healthchecks or {}), None, ctx)
    if ctx.errors:
        raise ValueError("; ".join(ctx.messages()))
    active, passive = filled["active"], filled["passive"]
    return HealthChecks(
        type=active["type"],
        timeout=float(active["timeout"]),
        concurrency=active["concurrency"],
        http_path=active["http_path"],
        https_sni=active["https_sni"],
        https_verify_certificate=active["https_verify_certificate"],
        headers=tuple((name, tuple(values)) for name, values in (active["headers"] or {}).items()),
        active_healthy=_thresholds(active["healthy"]),
        active_unhealthy=_thresholds(active["unhealthy"]),
        passive_healthy=_thresholds(passive["healthy"]),
        passive_unhealthy=_thresholds(passive["unhealthy"]),
    )


def _healthchecks() -> Record:
    """Kong's ``healthchecks`` record, with Kong's defaults."""
    active_healthy = Record(
        {
            "interval": _seconds(0, "Seconds between probes of healthy targets; 0 disables."),
            "http_statuses": _status_codes((200, 302), "Probe statuses counted as success."),
            "successes": _counter("Successful probes that mark a target healthy."),
        },
        default={},
        description="When active probes mark a target healthy.",
    )
    active_unhealthy = Record(
        {
            "interval": _seconds(0, "Seconds between probes of unhealthy targets; 0 disables."),
            "http_statuses": _status_codes(
                (429, 404, 500, 501, 502, 503, 504, 505), "Probe statuses counted as failure."
            ),
            "tcp_failures": _counter("TCP failures that mark a target unhealthy."),
            "timeouts": _counter("Probe timeouts that mark a target unhealthy."),
            "http_failures": _counter("HTTP failures that mark a target unhealthy."),
        },
        default={},
        description="When active probes mark a target unhealthy.",
    )
    passive_healthy = Record(
        {
            "http_statuses": _status_codes(
                (200, 201, 202, 203, 204, 205, 206, 207, 208, 226)
                + (300, 301, 302, 303, 304, 305, 306, 307, 308),
                "Proxied response statuses counted as success.",
            ),
            "successes": _counter("Successful responses that mark a target healthy."),
        },
        default={},
        description="When proxied traffic marks a target healthy.",
    )
    passive_unhealthy = Record(
        {
            "http_statuses": _status_codes(
                (429, 500, 503), "Proxied response statuses counted as failure."
            ),
            "tcp_failures": _counter("TCP failures that mark a target unhealthy."),
            "timeouts": _counter("Timeouts that mark a target unhealthy."),
            "http_failures": _counter("HTTP failures that mark a target unhealthy."),
        },
        default={},
        description="When proxied traffic marks a target unhealthy.",
    )
    check_type = String(
        one_of=("tcp", "http", "https"), default="http", description="How targets are checked."
    )
    active = Record(
        {
            "type": check_type,
            "timeout": _seconds(1, "Seconds before a probe counts as timed out."),
            "concurrency": Integer(
                between=(1, 2**31), default=10, description="Probes run at the same time."
            ),
            "http_path": String(check=check_path, default="/", description="Path probed."),
            "https_sni": String(check=check_host, description="SNI sent by https probes."),
            "https_verify_certificate": Boolean(
                default=True, description="Verify the target's certificate in https probes."
            ),
            "headers": Map(
                _header_name("A header name."),
                Array(String(description="A value."), description="Values."),
                description="Headers sent with each probe.",
            ),
            "healthy": active_healthy,
            "unhealthy": active_unhealthy,
        },
        default={},
        description="Probes sent to targets on a timer.",
    )
    passive = Record(
        {"type": check_type, "healthy": passive_healthy, "unhealthy": passive_unhealthy},
        default={},
        description="Health inferred from proxied traffic (a circuit breaker).",
    )
    return Record(
        {
            "active": active,
            "passive": passive,
            "threshold": Number(
                between=(0, 100),
                default=0,
                description="Percentage of healthy weight below which the upstream is down.",
            ),
        },
        default={},
        description="Active and passive health checks of the targets.",
    )


HEALTHCHECKS = _healthchecks()


# Which field names the key for each hash_on / hash_fallback value.
_HASH_KEY_FIELDS = {
    "hash_on": {
        "header": "hash_on_header",
        "cookie": "hash_on_cookie",
        "query_arg": "hash_on_query_arg",
    },
    "hash_fallback": {
        "header": "hash_fallback_header",
        "cookie": "hash_on_cookie",
        "query_arg": "hash_fallback_query_arg",
    },
}


def _check_upstream(upstream: dict, path: Path, ctx: Validation) -> None:
    """Kong's entity checks on hashing."""
    for setting, key_fields in _HASH_KEY_FIELDS.items():
        key_field = key_fields.get(upstream[setting])
        if key_field is not None and upstream[key_field] is None:
            ctx.error((path, key_field), f"required when {setting} is '{upstream[setting]}'")
    hash_on, fallback = upstream["hash_on"], upstream["hash_fallback"]
    if hash_on in ("none", "cookie") and fallback != "none":
        ctx.error((path, "hash_fallback"), f"must be 'none' when hash_on is '{hash_on}'")
    elif fallback == hash_on and hash_on not in ("none", "header", "query_arg"):
        ctx.error((path, "hash_fallback"), "must differ from hash_on")
    on_header, fallback_header = upstream["hash_on_header"], upstream["hash_fallback_header"]
    if on_header and fallback_header and on_header.lower() == fallback_header.lower():
        ctx.error((path, "hash_fallback_header"), "must differ from hash_on_header")
    if upstream["algorithm"] == "least-connections" and hash_on != "none":
        ctx.error((path, "hash_on"), "must be 'none' when algorithm is 'least-connections'")


def _hash_on(description: str) -> String:
    return String(
        one_of=("none", "consumer", "ip", "header", "cookie", "path", "query_arg"),
        default="none",
        description=description,
    )


UPSTREAM = _entity(
    {
        "id": _id(),
        "name": String(
            required=True,
            check=_check_upstream_name,
            description="Unique name, used as a service's host to balance over the targets.",
        ),
        "algorithm": String(
            one_of=("round-robin", "least-connections", "consistent-hashing", "latency"),
            default="round-robin",
            description="How a target is chosen.",
        ),
        "hash_on": _hash_on("What consistent hashing hashes."),
        "hash_fallback": _hash_on("What to hash when hash_on yields nothing."),
        "hash_on_header": _header_name("Header hashed when hash_on is 'header'."),
        "hash_fallback_header": _header_name("Header hashed when hash_fallback is 'header'."),
        "hash_on_cookie": String(
            match=_HEADER_NAME,
            match_message="invalid cookie name '{value}'",
            description="Cookie hashed (and set when missing) for cookie hashing.",
        ),
        "hash_on_cookie_path": String(
            check=check_path, default="/", description="Path of the cookie set for hashing."
        ),
        "hash_on_query_arg": String(
            description="Query argument hashed when hash_on is 'query_arg'."
        ),
        "hash_fallback_query_arg": String(
            description="Query argument hashed when hash_fallback is 'query_arg'."
        ),
        "slots": Integer(
            between=(10, 2**16), default=10000, description="Slots on the consistent-hash ring."
        ),
        "healthchecks": HEALTHCHECKS,
        "host_header": String(
            check=check_host,
            description="Host header sent to the targets instead of the service's host.",
        ),
        "client_certificate": Record(
            {"id": String(required=True, description="The certificate entity's id.")},
            description="Certificate shown to the targets over TLS (when the service has "
            "none of its own).",
        ),
        "use_srv_name": Boolean(
            default=False,
            check=lambda value: "true is not supported: fastgw does not resolve SRV records"
            if value else None,
            description="Kong's SRV name as Host; only false, since targets are not "
            "resolved through SRV records.",
        ),
        "tags": _tags(),
        "targets": Array(TARGET, default=(), description="The backends balanced over."),
    },
    validator=_check_upstream,
    description="A virtual host name that balances requests over targets.",
)


# --- consumers and credentials -----------------------------------------------

def _check_parent_reference_by(kind: str) -> Callable[[Any], str | None]:
    """A reference as Kong writes one: a name or id, or ``{id: ...}``."""
    names = {"id", "username"} if kind == "consumer" else {"id", "name"}

    def check(value: Any) -> str | None:
        if type(value) is str:
            return None
        if type(value) is dict and value and value.keys() <= names \
                and all(type(item) is str for item in value.values()):
            return None
        return f"expected the {kind}'s id or {max(names - {'id'})}, or {{id: ...}}"

    return check


def _parent_consumer() -> Field:
    return Field(
        check=_check_parent_reference_by("consumer"),
        description="The consumer it belongs to (id or username, or {id: ...}), as Kong "
        "writes it; it must be the consumer the credential is nested under.",
    )


KEYAUTH_CREDENTIAL = _entity(
    {
        "id": _id(),
        "consumer": _parent_consumer(),
        "key": String(
            required=True,
            secret=True,
            referenceable=True,
            description="The API key clients send (key-auth).",
        ),
        "ttl": Integer(
            between=(0, 100000000),
            description="Seconds the key is valid for, from created_at (else from the "
            "config's load); unset or 0: forever.",
        ),
        "created_at": Number(description="When the key was created (Unix seconds)."),
        "tags": _tags(),
    },
    description="A key-auth API key.",
)

BASICAUTH_CREDENTIAL = _entity(
    {
        "id": _id(),
        "consumer": _parent_consumer(),
        "username": String(required=True, description="User name clients send (basic-auth)."),
        "password": String(
            required=True, secret=True, referenceable=True, description="The user's password."
        ),
        "tags": _tags(),
    },
    description="A basic-auth user name and password.",
)



HMACAUTH_CREDENTIAL = _entity(
    {
        "id": _id(),
        "consumer": _parent_consumer(),
        "username": String(required=True, description="User name clients sign with (hmac-auth)."),
        "secret": String(
            required=True, secret=True, referenceable=True,
            description="The shared secret of the HMAC signatures.",
        ),
        "tags": _tags(),
    },
    description="An hmac-auth user name and secret.",
)


def _check_jwt_secret(credential: dict, path: Path, ctx: Validation) -> None:
    # HMAC algorithms sign with the shared secret, the others need a public key.
    if credential["algorithm"].startswith("HS"):
        if credential["secret"] is None:
            ctx.error((path, "secret"), f"required for algorithm {credential['algorithm']}")
    elif credential["rsa_public_key"] is None:
        ctx.error((path, "rsa_public_key"), f"required for algorithm {credential['algorithm']}")


JWT_SECRET = _entity(
    {
        "id": _id(),
        "consumer": _parent_consumer(),
        "key": String(required=True, description="Value of the token's 'iss' claim (jwt)."),
        "algorithm": String(
            one_of=JWT_ALGORITHMS, default="HS256", description="Signing algorithm of the tokens."
        ),
        "secret": String(
            secret=True, referenceable=True, description="Shared secret of HMAC algorithms."
        ),
        "rsa_public_key": String(description="PEM public key of asymmetric algorithms."),
        "tags": _tags(),
    },
    validator=_check_jwt_secret,
    description="A jwt issuer key and how its tokens are signed.",
)

def _check_ca_reference(value: Any) -> str | None:
    if type(value) is str or (type(value) is dict and value.keys() == {"id"}
                              and type(value["id"]) is str):
        return None
    return "expected a ca_certificates entity's id, or {id: ...}"


MTLSAUTH_CREDENTIAL = _entity(
    {
        "id": _id(),
        "consumer": _parent_consumer(),
        "subject_name": String(required=True, description="A name of the client "
                               "certificate (its CN, a SAN DNS name or e-mail address) that "
                               "identifies this consumer (mtls-auth)."),
        "ca_certificate": Field(check=_check_ca_reference, description="Only for "
                                "certificates that chain to this CA (a ca_certificates "
                                "entity, by id or {id: ...}); unset: any of the plugin's CAs."),
        "tags": _tags(),
    },
    description="A client certificate's name mapped to a consumer (mtls-auth).",
)

ACL_GROUP = _entity(
    {
        "id": _id(),
        "consumer": _parent_consumer(),
        "group": String(required=True, description="Group the consumer belongs to (acl)."),
        "tags": _tags(),
    },
    description="Membership of a consumer in an acl group.",
)


def _check_consumer(consumer: dict, path: Path, ctx: Validation) -> None:
    if consumer["username"] is None and consumer["custom_id"] is None:
        ctx.error(path, "at least one of these fields must be non-empty: 'custom_id', 'username'")


CONSUMER = _entity(
    {
        "id": _id(),
        "username": String(description="Unique user name of the consumer."),
        "custom_id": String(description="Unique id of the consumer in another system."),
        "tags": _tags(),
        "keyauth_credentials": Array(KEYAUTH_CREDENTIAL, default=(), description="API keys."),
        "basicauth_credentials": Array(
            BASICAUTH_CREDENTIAL, default=(), description="Basic-auth users."
        ),
        "jwt_secrets": Array(JWT_SECRET, default=(), description="JWT issuer keys."),
        "hmacauth_credentials": Array(
            HMACAUTH_CREDENTIAL, default=(), description="hmac-auth users."
        ),
        "acls": Array(ACL_GROUP, default=(), description="ACL groups."),
        "mtls_auth_credentials": Array(
            MTLSAUTH_CREDENTIAL, default=(), description="Client certificate names (mtls-auth)."
        ),
        "groups": Array(
            Record({"id": _id(), "name": String(description="The group's name.")},
                   description="A consumer group, by name or id."),
            default=(),
            description="The consumer groups it belongs to (Kong's consumer_group_consumers).",
        ),
        "plugins": _plugins(),
    },
    validator=_check_consumer,
    description="A client of the gateway, identified by its credentials.",
)

CONSUMER_GROUP = _entity(
    {
        "id": _id(),
        "name": String(required=True, description="Unique name of the group."),
        "tags": _tags(),
        "plugins": _plugins(),
    },
    description="Consumers that share plugin configs, as a tier (Kong's consumer group).",
)


# --- certificates ----------------------------------------------------------------


def _check_certificate(certificate: dict, path: Path, ctx: Validation) -> None:
    # Kong's entity checks and wording.
    if (certificate["cert_alt"] is None) != (certificate["key_alt"] is None):
        ctx.error(path, "all or none of these fields must be set: 'cert_alt', 'key_alt'")
        return
    message = pair_error(certificate["cert"], certificate["key"])
    if message:
        ctx.error(path, f"certificate {message}")
    if certificate["cert_alt"] is not None:
        message = pair_error(certificate["cert_alt"], certificate["key_alt"])
        if message:
            ctx.error(path, f"alternative certificate {message}")


def _certificate_text(description: str, **options: Any) -> String:
    return String(check=certificate_error, referenceable=True, description=description,
                  **options)


def _key_text(description: str, **options: Any) -> String:
    return String(check=private_key_error, referenceable=True, secret=True,
                  description=description, **options)


CERTIFICATE = _entity(
    {
        "id": _id(),
        "cert": _certificate_text("PEM certificate (chain, leaf first).", required=True),
        "key": _key_text("PEM private key of the certificate.", required=True),
        "cert_alt": _certificate_text("A second certificate, of another key type."),
        "key_alt": _key_text("The second certificate's private key."),
        "snis": Array(
            String(check=check_route_host, description="A server name, '*' allowed."),
            default=(),
            description="Server names the certificate is served for.",
        ),
        "tags": _tags(),
    },
    validator=_check_certificate,
    description="A certificate served over the TLS listener.",
)


def _certificate_reference() -> Field:
    return Field(
        required=True,
        check=_check_parent_reference_by("certificate"),
        description="The certificate: its id, or {id: ...}.",
    )


SNI = _entity(
    {
        "id": _id(),
        "name": String(required=True, check=check_route_host,
                       description="A server name, '*' allowed."),
        "certificate": _certificate_reference(),
        "tags": _tags(),
    },
    description="A server name and the certificate served for it.",
)

CA_CERTIFICATE = _entity(
    {
        "id": _id(),
        "cert": String(required=True, check=single_certificate_error,
                       description="One PEM CA certificate."),
        "cert_digest": String(description="Kong's SHA-256 of the certificate; ignored."),
        "tags": _tags(),
    },
    description="A CA certificate that services may trust for their upstream.",
)


# --- vaults --------------------------------------------------------------------

VAULT_PREFIX = r"^[a-z][a-z0-9-]*[a-z0-9]$"
VAULT = _entity(
    {
        "id": _id(),
        "prefix": String(
            required=True,
            match=VAULT_PREFIX,
            match_message="invalid prefix '{value}': lower-case letters, digits and '-', "
            "starting with a letter",
            check=lambda value: "must not be the name of a vault ('env')"
            if value == "env" else None,
            description="What references name the vault by: {vault://PREFIX/NAME}.",
        ),
        "name": String(
            required=True,
            check=lambda value: None if value == "env" else
            f"vault '{value}' is not supported by fastgw (only 'env', the environment)",
            description="The kind of vault; fastgw has Kong's 'env'.",
        ),
        "description": String(description="What the vault is for."),
        "config": Record(
            {"prefix": String(
                match=r"^[A-Za-z_-][A-Za-z0-9_-]*$",
                match_message="invalid prefix '{value}'",
                description="Put before NAME to make the variable's name "
                "({vault://PREFIX/db-password} reads <prefix>DB_PASSWORD).",
            )},
            default={},
            description="The env vault's settings.",
        ),
        "tags": _tags(),
    },
    description="A named vault that {vault://...} references go through.",
)


def vault_prefixes(vaults: Any) -> dict[str, str]:
    """prefix -> variable prefix of the well-formed ``env`` vaults of a
    document not yet validated (references are resolved while it is)."""
    found: dict[str, str] = {}
    for vault in vaults if isinstance(vaults, list) else ():
        if not isinstance(vault, dict) or vault.get("name") != "env":
            continue
        prefix, config = vault.get("prefix"), vault.get("config") or {}
        variable_prefix = config.get("prefix") if isinstance(config, dict) else None
        if isinstance(prefix, str) and prefix != "env":
            found.setdefault(prefix, variable_prefix if isinstance(variable_prefix, str) else "")
    return found


# --- keys ----------------------------------------------------------------------


def _check_key(key: dict, path: Path, ctx: Validation) -> None:
    jwk, pem = key["jwk"], key["pem"]
    if (jwk is None) == (pem is None):
        ctx.error(path, "exactly one of these fields must be set: 'jwk', 'pem'")
    elif jwk is not None:
        message = jwk_error(jwk, key["kid"])
        if message:
            ctx.error((path, "jwk"), message)
    elif not (pem["private_key"] or pem["public_key"]):
        ctx.error((path, "pem"), "need to supply a PEM formatted public and/or private key.")


def _pem(check: Callable[[str], str | None], description: str, **options: Any) -> String:
    return String(check=check, referenceable=True, description=description, **options)


def _key_fields() -> dict[str, Field]:
    return {
        "id": _id(),
        "name": String(description="Unique name of the key."),
        "kid": String(required=True, description="The key's id (the JWK's kid)."),
        "jwk": String(referenceable=True, secret=True,
                      description="A JSON Web Key, as JSON text."),
        "pem": Record(
            {
                "private_key": _pem(private_key_error, "PEM private key.", secret=True),
                "public_key": _pem(public_key_error, "PEM public key."),
            },
            description="A PEM private and/or public key.",
        ),
        "tags": _tags(),
    }


KEY = _entity(
    {**_key_fields(), "set": Field(
        check=_check_parent_reference_by("key set"),
        description="The key set it belongs to: its name or id, or {id: ...}.")},
    validator=_check_key,
    description="A key (JWK or PEM), by kid.",
)

KEY_SET = _entity(
    {
        "id": _id(),
        "name": String(description="Unique name of the key set."),
        "tags": _tags(),
        "keys": Array(
            _entity(_key_fields(), validator=_check_key, description="A key of the set."),
            default=(),
            description="Keys of the set.",
        ),
    },
    description="A named set of keys.",
)


# --- the fastgw-only _gateway block -------------------------------------------

GATEWAY_DEFAULTS = {field.name: field.default for field in dataclass_fields(GatewaySettings)}

TLS_SNI = Record(
    {
        "name": String(required=True, check=check_route_host, description="Server name served."),
        "cert": String(required=True, referenceable=True, description="PEM certificate file."),
        "key": String(required=True, referenceable=True, description="PEM private key file."),
    },
    description="A certificate served for one server name.",
)

def _check_tls(tls: dict, path: Path, ctx: Validation) -> None:
    if (tls["cert"] is None) != (tls["key"] is None):
        missing = "key" if tls["key"] is None else "cert"
        ctx.error((path, missing), "required with the other half of the pair")


TLS = Record(
    {
        "cert": String(
            referenceable=True,
            description="PEM certificate file (the default one); unset: the first of the "
            "document's certificates.",
        ),
        "key": String(referenceable=True, description="PEM private key file of 'cert'."),
        "sni": Array(TLS_SNI, default=(), description="Certificates chosen by server name."),
        "listen": String(
            description="HOST:PORT of a separate HTTPS listener (as Kong's 8443); "
            "unset: the main listener speaks HTTPS."
        ),
    },
    validator=_check_tls,
    description="TLS on the proxy listener.",
)

def _check_redis(redis: dict, path: Path, ctx: Validation) -> None:
    written = [name for name in ("url", "sentinels", "cluster_nodes") if redis[name] is not None]
    if len(written) != 1:
        ctx.error(path, "set exactly one of url, sentinels (with master_name) or cluster_nodes"
                  + (f", not {' and '.join(written)}" if written else ""))
        return
    if (redis["sentinels"] is None) != (redis["master_name"] is None):
        missing = "master_name" if redis["sentinels"] is not None else "sentinels"
        ctx.error((path, missing), "required with the other Sentinel field")
    if redis["url"] is not None:
        for name in ("username", "password", "sentinel_username", "sentinel_password"):
            if redis[name] is not None:
                ctx.error((path, name), "with url, write the credentials in the URL")
        if redis["database"] is not None:
            ctx.error((path, "database"), "with url, write the database in the URL (/N)")
        if redis["ssl"]:
            ctx.error((path, "ssl"), "with url, write rediss:// for TLS")
    if redis["cluster_nodes"] is not None and redis["database"] not in (None, 0):
        ctx.error((path, "database"), "a Redis Cluster has only database 0")


_REDIS_NODE = String(check=check_listen, description="host:port of a Redis node.")

REDIS = Record(
    {
        "url": String(
            secret=True,  # it may carry a password
            referenceable=True,
            match=r"^(redis|rediss|unix)://",
            match_message="expected a redis://, rediss:// or unix:// URL",
            description="One Redis shared by gateway instances (rate limits, caches).",
        ),
        "sentinels": Array(_REDIS_NODE, len_min=1,
                           description="Redis Sentinels (host:port) watching 'master_name': "
                           "the gateway follows the master through failovers."),
        "master_name": String(description="The master's name in the Sentinels."),
        "cluster_nodes": Array(_REDIS_NODE, len_min=1,
                               description="Some nodes (host:port) of a Redis Cluster; the "
                               "rest are discovered."),
        "username": String(referenceable=True, description="Redis ACL user name."),
        "password": String(referenceable=True, secret=True, description="Redis password."),
        "database": Integer(between=(0, 2**31 - 1), description="Redis database (not in a "
                            "Cluster); unset: 0."),
        "sentinel_username": String(referenceable=True,
                                    description="ACL user name on the Sentinels."),
        "sentinel_password": String(referenceable=True, secret=True,
                                    description="Password on the Sentinels."),
        "ssl": Boolean(default=False, description="TLS to the Redis nodes (Sentinel and "
                       "Cluster; a URL says rediss://)."),
        "ssl_verify": Boolean(default=True, description="Verify the nodes' certificates."),
    },
    validator=_check_redis,
    description="Shared state store: one Redis, a Sentinel-watched master or a Cluster.",
)


def _gateway_setting(kind: type[Integer] | type[Number], name: str, bounds: tuple, description: str) -> Field:
    return kind(between=bounds, default=GATEWAY_DEFAULTS[name], description=description)


GATEWAY = Record(
    {
        "listen": String(
            check=check_listen, default=GATEWAY_DEFAULTS["listen"], description="Proxy address."
        ),
        "admin_listen": String(
            check=check_listen,
            default=GATEWAY_DEFAULTS["admin_listen"],
            description="Admin API address; keep it private.",
        ),
        "admin_token": String(
            referenceable=True,
            secret=True,
            description="Admin API key, sent as Kong-Admin-Token; required when "
            "admin_listen is not a loopback address.",
        ),
        "status_listen": String(
            check=check_listen,
            description="Address of the read-only status API (GET /status, /status/ready, "
            "/metrics; no token), as Kong's status_listen; unset: not served.",
        ),
        "watch_config": Number(
            between=(0.05, 3600),
            description="Seconds between looks at the config file: a changed file is "
            "reloaded as by SIGHUP (a Kubernetes ConfigMap update); unset: not watched.",
        ),
        "workers": Integer(
            between=(1, 1024), description="Worker processes; the number of CPUs when unset."
        ),
        "tls": TLS,
        "redis": REDIS,
        "max_header_bytes": _gateway_setting(
            Integer, "max_header_bytes", (1024, 2**24), "Request head size limit (431 beyond)."
        ),
        "max_body_bytes": _gateway_setting(
            Integer, "max_body_bytes", (1, 2**40), "Request body size limit (413 beyond)."
        ),
        "max_response_buffer_bytes": _gateway_setting(
            Integer,
            "max_response_buffer_bytes",
            (1, 2**40),
            "Largest upstream answer held whole before any of it goes out (ai-proxy's "
            "non-streamed answers); a larger one is a 502.",
        ),
        "client_header_timeout": _gateway_setting(
            Number,
            "client_header_timeout",
            (0.001, 86400),
            "Seconds to receive a request head (408).",
        ),
        "client_body_timeout": _gateway_setting(
            Number,
            "client_body_timeout",
            (0.001, 86400),
            "Seconds the client may pause while sending a body (408).",
        ),
        "keepalive_timeout": _gateway_setting(
            Number, "keepalive_timeout", (0, 86400), "Seconds an idle client connection is kept."
        ),
        "max_connections": _gateway_setting(
            Integer, "max_connections", (1, 10**7), "Client connections per worker."
        ),
        "max_memory_mb": Integer(
            between=(1, 10**7),
            description="Memory watermark per worker (MB of RSS): past it the worker answers "
            "503 to new requests until it is back under 95% of it; unset: no watermark.",
        ),
        "upstream_keepalive_pool_size": _gateway_setting(
            Integer,
            "upstream_keepalive_pool_size",
            (0, 10**6),
            "Idle upstream connections kept per target; 0 disables reuse.",
        ),
        "upstream_keepalive_timeout": _gateway_setting(
            Number,
            "upstream_keepalive_timeout",
            (0, 86400),
            "Seconds an idle upstream connection is kept.",
        ),
        "drain_timeout": _gateway_setting(
            Number, "drain_timeout", (0, 86400), "Seconds in-flight requests get on shutdown."
        ),
        "dns_refresh_interval": _gateway_setting(
            Number,
            "dns_refresh_interval",
            (0, 86400),
            "Seconds between re-resolutions of upstream target host names; 0: only at load.",
        ),
    },
    default={},
    description="fastgw process settings (not part of Kong's format).",
)


# --- the document --------------------------------------------------------------


class _Refused(Field):
    """A Kong key fastgw does not support: always an error saying why."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        super().__init__(description=reason)
        self.reason = reason

    def _coerce(self, value: Any, path: Path, ctx: Validation) -> Any:
        ctx.error(path, f"not supported by fastgw: {self.reason}")
        return INVALID


class _FormatVersion(String):
    """``_format_version`` with a hint for the common unquoted ``3.0``."""

    __slots__ = ()

    def _coerce(self, value: Any, path: Path, ctx: Validation) -> Any:
        if type(value) in (int, float):
            ctx.error(path, f'expected a string: write "{value}" in quotes')
            return INVALID
        return super()._coerce(value, path, ctx)


DOCUMENT = Record(
    {
        "_format_version": _FormatVersion(
            required=True, one_of=FORMAT_VERSIONS, description="Kong declarative format version."
        ),
        "_transform": Boolean(
            default=True,
            description="false: credentials are written as Kong stores them (a basic-auth "
            "password is Kong's salted SHA-1 hash), as in Kong's own exports.",
        ),
        "services": Array(SERVICE, default=(), description="Services."),
        "routes": Array(ROUTE, default=(), description="Routes with a 'service' reference."),
        "upstreams": Array(UPSTREAM, default=(), description="Upstreams."),
        "consumers": Array(CONSUMER, default=(), description="Consumers."),
        "consumer_groups": Array(CONSUMER_GROUP, default=(), description="Consumer groups."),
        "plugins": Array(PLUGIN, default=(), description="Global or reference-scoped plugins."),
        "vaults": Array(VAULT, default=(), description="Vaults for {vault://...} references."),
        "certificates": Array(CERTIFICATE, default=(),
                              description="Certificates served over TLS, with their SNIs."),
        "snis": Array(SNI, default=(), description="Server names of certificates."),
        "ca_certificates": Array(CA_CERTIFICATE, default=(), description="CA certificates."),
        "key_sets": Array(KEY_SET, default=(), description="Key sets, with nested keys."),
        "keys": Array(KEY, default=(), description="Keys (JWK or PEM)."),
        "_gateway": GATEWAY,
    },
    ignored={**{name: _ENTITY_ANNOTATIONS[name] for name in ("_comment", "_ignore")},
             **{name: _Refused(reason) for name, reason in KONG_ONLY_KEYS.items()}},
    description="A declarative configuration document.",
)
