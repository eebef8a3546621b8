"""Read a Kong-format declarative document and build the immutable ``Config``.

``parse_config`` validates the whole document against ``entities.DOCUMENT``,
then checks what needs the whole document (unique names, references between
entities) and builds the ``fastgw.config.model`` objects. Every error found is
reported at once, each as ``path: message`` (see ``fastgw.config.schema`` for
the path notation); nothing is built unless the document is valid.

Entities without a ``name`` are named by their ``id``, else by their document
path (``services[0]``, ``services[0].routes[1]``); a user-chosen name cannot
contain brackets, so such names never clash with real ones. References
(``route.service``, ``plugin.service``/``route``/``consumer``) accept a name
(a consumer's username) or an id.

Settings overrides (``apply_overrides``), highest precedence first: command
line flags, then these environment variables, then the ``_gateway`` block,
then the defaults of ``GatewaySettings``. An empty variable counts as unset.

=====================================  =====================================
variable                               ``_gateway`` field
=====================================  =====================================
FASTGW_LISTEN                          listen (``host:port``)
FASTGW_ADMIN_LISTEN                    admin_listen (``host:port``)
FASTGW_ADMIN_TOKEN                     admin_token
FASTGW_WORKERS                         workers (an integer, or ``auto``)
FASTGW_REDIS_URL                       redis.url
FASTGW_TLS_CERT                        tls.cert
FASTGW_TLS_KEY                         tls.key
FASTGW_MAX_HEADER_BYTES                max_header_bytes
FASTGW_MAX_BODY_BYTES                  max_body_bytes
FASTGW_MAX_RESPONSE_BUFFER_BYTES       max_response_buffer_bytes
FASTGW_CLIENT_HEADER_TIMEOUT           client_header_timeout (seconds)
FASTGW_CLIENT_BODY_TIMEOUT             client_body_timeout (seconds)
FASTGW_KEEPALIVE_TIMEOUT               keepalive_timeout (seconds)
FASTGW_MAX_CONNECTIONS                 max_connections
FASTGW_MAX_MEMORY_MB                   max_memory_mb
FASTGW_UPSTREAM_KEEPALIVE_POOL_SIZE    upstream_keepalive_pool_size
FASTGW_UPSTREAM_KEEPALIVE_TIMEOUT      upstream_keepalive_timeout (seconds)
FASTGW_DRAIN_TIMEOUT                   drain_timeout (seconds)
FASTGW_DNS_REFRESH_INTERVAL            dns_refresh_interval (seconds)
FASTGW_WATCH_CONFIG                    watch_config (seconds)
FASTGW_STATUS_LISTEN                   status_listen (``host:port``)
=====================================  =====================================

The flag for each is its lower-case name (``workers=4``, ``redis_url=...``),
written ``--workers`` in errors.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
import xxhash
import yaml

from fastgw.config.checks import split_host_port
from fastgw.config.entities import (
    DEFAULT_TARGET_PORT,
    DOCUMENT,
    GATEWAY,
    REDIS,
    TLS,
    is_uuid,
    vault_prefixes,
)
from fastgw.config.explain import explain as explain_error
from fastgw.config.migrations import migrated_document
from fastgw.config.model import (
    CACertificate,
    Certificate,
    Config,
    Consumer,
    ConsumerGroup,
    GatewaySettings,
    Key,
    KeySet,
    PluginConfig,
    RedisSettings,
    Route,
    Service,
    Target,
    TLSSettings,
    Upstream,
)
from fastgw.config.schema import Field, Integer, Number, Path, Validation, format_path

__all__ = [
    "ConfigError",
    "decode_yaml",
    "apply_overrides",
    "with_overrides",
    "check_file",
    "config_hash",
    "load_config",
    "parse_config",
    "read_document",
    "redacted_document",
]

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_HASH_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
_SHA1_HEX = re.compile(r"[0-9a-fA-F]{40}")
DEFAULT_TLS_LISTEN = "0.0.0.0:8443"

_CREDENTIAL_KINDS = ("keyauth_credentials", "basicauth_credentials", "jwt_secrets",
                     "hmacauth_credentials", "acls", "mtls_auth_credentials")


class ConfigError(Exception):
    """An invalid configuration; ``errors`` holds every problem, one
    ``path: message`` string each."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors: list[str] = list(errors)
        super().__init__("\n".join(self.errors))


def config_hash(doc: Any) -> str:
    # default=str: YAML may yield values JSON lacks (dates, bytes).
    return xxhash.xxh3_64_hexdigest(orjson.dumps(doc, option=_HASH_OPTIONS, default=str))


# --- parsing -------------------------------------------------------------------


def parse_config(doc: dict, env: Mapping[str, str] | None = None) -> Config:
    """Validate ``doc`` and build its ``Config``; vault references are read
    from ``env`` (``os.environ`` when None). Raises ``ConfigError``."""
    if not isinstance(doc, dict):
        raise ConfigError(["document: expected a mapping of entity kinds (a YAML/JSON object)"])
    ctx = Validation(os.environ if env is None else env, vault_prefixes(doc.get("vaults")))
    checked = DOCUMENT.validate(migrated_document(doc), None, ctx)
    config = _DocumentBuilder(ctx).build(checked, doc)
    if config is None:
        raise ConfigError(ctx.messages())
    return config


def _tuple(values: list | None) -> tuple:
    return tuple(values) if values else ()


def _entries(items: list | None, path: Path) -> list[tuple[Path, dict]]:
    """(path, entity) of each entity of a validated list. When the document
    has errors, invalid entities are None and are skipped, so that uniqueness
    and reference checks still run on the rest."""
    return [((path, index), item) for index, item in enumerate(items or ()) if item is not None]


def _default_name(entity: dict, path: Path) -> str:
    return entity["name"] or entity["id"] or format_path(path)


class _References:
    """Name-or-id lookup of one entity kind, for references between entities."""

    __slots__ = ("by_key", "kind")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.by_key: dict[str, Any] = {}

    def add(self, keys: Iterable[str | None], target: Any) -> None:
        for key in keys:
            if key is not None:
                self.by_key.setdefault(key, target)

    def resolve(self, reference: str, path: Path, ctx: Validation) -> Any:
        target = self.by_key.get(reference)
        if target is None:
            ctx.error(path, f"unknown {self.kind} '{reference}'")
        return target


def _named(what: str) -> Callable[[Any], str]:
    return lambda value: f"{what} '{value}'"


def _check_unique(
    ctx: Validation, entries: Iterable[tuple[Path, Any]], describe: Callable[[Any], str]
) -> None:
    """Report every entry whose value (never None) an earlier entry already used."""
    first_seen: dict[Any, Path] = {}
    for path, value in entries:
        if value is None:
            continue
        first = first_seen.setdefault(value, path)
        if first is not path:
            ctx.error(path, f"duplicate {describe(value)} (also at {format_path(first)})")


class _DocumentBuilder:
    """Cross-entity checks and model construction for one validated document."""

    def __init__(self, ctx: Validation) -> None:
        self.ctx = ctx
        self.services = _References("service")
        self.routes = _References("route")
        self.consumers = _References("consumer")
        self.consumer_groups = _References("consumer group")
        self.certificates = _References("certificate")
        self.ca_certificates = _References("CA certificate")
        # (path, plugin dict, scope set by nesting: {"service": name} ...)
        self.plugin_entries: list[tuple[Path, dict, dict[str, str]]] = []

    def build(self, doc: dict, source: dict) -> Config | None:
        """The Config, or None when errors were found (then every error that
        the cross-entity checks could find is in ``ctx``)."""
        certificates = self._certificates(_entries(doc["certificates"], (None, "certificates")),
                                          _entries(doc["snis"], (None, "snis")))
        ca_certificates = self._ca_certificates(
            _entries(doc["ca_certificates"], (None, "ca_certificates")))
        services = self._services(_entries(doc["services"], (None, "services")))
        routes = self._routes(services, _entries(doc["routes"], (None, "routes")))
        upstreams = self._upstreams(_entries(doc["upstreams"], (None, "upstreams")))
        groups = self._consumer_groups(
            _entries(doc["consumer_groups"], (None, "consumer_groups")))
        consumers = self._consumers(_entries(doc["consumers"], (None, "consumers")),
                                    doc["_transform"])
        self.plugin_entries.extend(
            (path, plugin, {}) for path, plugin in _entries(doc["plugins"], (None, "plugins"))
        )
        plugins = self._plugins()
        _check_unique(self.ctx, ((((path, "prefix"), vault["prefix"]))
                                 for path, vault in _entries(doc["vaults"], (None, "vaults"))),
                      _named("vault prefix"))
        key_sets, keys = self._keys(_entries(doc["key_sets"], (None, "key_sets")),
                                    _entries(doc["keys"], (None, "keys")))
        self._check_tls_listener(doc["_gateway"], bool(certificates))
        if self.ctx.errors:
            return None
        return Config(
            services=tuple(service for _, _, service in services),
            routes=tuple(routes),
            upstreams=tuple(upstreams),
            consumers=tuple(consumers),
            consumer_groups=tuple(groups),
            plugins=tuple(plugins),
            certificates=tuple(certificates),
            ca_certificates=tuple(ca_certificates),
            key_sets=tuple(key_sets),
            keys=tuple(keys),
            gateway=self._gateway_settings(doc["_gateway"], bool(certificates)),
            source=source,
            hash=config_hash(source),
        )

    def _certificates(self, entries: list[tuple[Path, dict]],
                      sni_entries: list[tuple[Path, dict]]) -> list[Certificate]:
        """Certificate entities with their server names: those nested in
        them and the top-level ``snis`` naming them. A name is served by one
        certificate only."""
        served_by_id = _References("certificate")  # id -> that certificate's server names
        served_names: list[list[str]] = []  # per entry
        located: list[tuple[Path, str]] = []
        for path, entry in entries:
            served = list(entry["snis"] or ())
            served_names.append(served)
            served_by_id.add((entry["id"],), served)
            located += [(((path, "snis"), index), name) for index, name in enumerate(served)]
        for path, entry in sni_entries:
            reference = entry["certificate"]
            if isinstance(reference, dict):
                reference = reference.get("id")
            served = served_by_id.resolve(reference, (path, "certificate"), self.ctx)
            if served is not None:
                served.append(entry["name"])
            located.append(((path, "name"), entry["name"]))
        _check_unique(self.ctx, ((path, name.lower()) for path, name in located),
                      _named("SNI"))
        certificates = []
        for (_, entry), served in zip(entries, served_names, strict=True):
            certificate = Certificate(
                cert=entry["cert"], key=entry["key"], cert_alt=entry["cert_alt"],
                key_alt=entry["key_alt"], snis=tuple(served), id=entry["id"],
                tags=_tuple(entry["tags"]))
            certificates.append(certificate)
            self.certificates.add((entry["id"],), certificate)
        return certificates

    def _ca_certificates(self, entries: list[tuple[Path, dict]]) -> list[CACertificate]:
        ca_certificates = []
        for _, entry in entries:
            ca = CACertificate(cert=entry["cert"], id=entry["id"], tags=_tuple(entry["tags"]))
            ca_certificates.append(ca)
            self.ca_certificates.add((entry["id"],), ca)
        return ca_certificates

    def _certificate(self, entry: dict, path: Path) -> Certificate | None:
        """The certificate entity a ``client_certificate: {id}`` names."""
        return self.certificates.resolve(entry["id"], (path, "id"), self.ctx)

    def _check_tls_listener(self, block: dict | None, has_certificates: bool) -> None:
        tls = block["tls"] if block is not None else None
        if tls is not None and tls["cert"] is None and not has_certificates:
            self.ctx.error((None, "_gateway.tls"), "needs 'cert' and 'key' when the document "
                           "has no certificates")

    @staticmethod
    def _gateway_settings(block: dict, has_certificates: bool) -> GatewaySettings:
        settings = _gateway_settings(block)
        if settings.tls is None and has_certificates:
            # Kong serves its certificates on its TLS listener, 8443.
            return dataclasses.replace(settings, tls=TLSSettings(listen=DEFAULT_TLS_LISTEN))
        return settings

    def _keys(self, set_entries: list[tuple[Path, dict]],
              key_entries: list[tuple[Path, dict]]) -> tuple[list[KeySet], list[Key]]:
        """Key sets, and every key (nested in a set, or top-level naming its
        set); a key's ``kid`` is unique within its set, its name everywhere."""
        sets = _References("key set")
        key_sets = []
        located: list[tuple[Path, dict, KeySet | None]] = []
        for path, entry in set_entries:
            new_set = KeySet(name=entry["name"], id=entry["id"], tags=_tuple(entry["tags"]))
            key_sets.append(new_set)
            sets.add((entry["name"], entry["id"]), new_set)
            located.extend((key_path, key, new_set)
                           for key_path, key in _entries(entry["keys"], (path, "keys")))
        _check_unique(self.ctx, (((path, "name"), entry["name"]) for path, entry in set_entries),
                      _named("key set name"))
        for path, entry in key_entries:
            key_set: KeySet | None
            reference = entry["set"]
            if isinstance(reference, dict):
                reference = reference.get("id") or reference.get("name")
            key_set = sets.resolve(reference, (path, "set"), self.ctx) \
                if reference is not None else None
            located.append((path, entry, key_set))
        keys = []
        for _, entry, key_set in located:
            pem = entry["pem"] or {}
            keys.append(Key(
                kid=entry["kid"], name=entry["name"], id=entry["id"],
                set=(key_set.name or key_set.id) if key_set is not None else None,
                jwk=entry["jwk"], pem_private_key=pem.get("private_key"),
                pem_public_key=pem.get("public_key"), tags=_tuple(entry["tags"])))
        _check_unique(self.ctx, (((path, "name"), entry["name"]) for path, entry, _ in located),
                      _named("key name"))
        _check_unique(self.ctx, (((path, "kid"), (entry["kid"], id(key_set)))
                                 for path, entry, key_set in located),
                      lambda value: f"kid '{value[0]}' in its key set")
        return key_sets, keys

    def _collect_plugins(self, owner: dict, owner_path: Path, scope: dict[str, str]) -> None:
        for path, plugin in _entries(owner["plugins"], (owner_path, "plugins")):
            self.plugin_entries.append((path, plugin, scope))

    def _services(self, entries: list[tuple[Path, dict]]) -> list[tuple[Path, dict, Service]]:
        services = []
        names = []
        for path, entry in entries:
            name = _default_name(entry, path)
            client_certificate = entry["client_certificate"]
            service = Service(
                name=name,
                protocol=entry["protocol"],
                host=entry["host"],
                port=entry["port"],
                path=entry["path"],
                retries=entry["retries"],
                connect_timeout=entry["connect_timeout"],
                write_timeout=entry["write_timeout"],
                read_timeout=entry["read_timeout"],
                tls_verify=entry["tls_verify"],
                client_certificate=(
                    (client_certificate["cert"], client_certificate["key"])
                    if client_certificate is not None and client_certificate["id"] is None
                    else None
                ),
                client_certificate_pem=(
                    self._certificate(client_certificate, (path, "client_certificate"))
                    if client_certificate is not None and client_certificate["id"] is not None
                    else None
                ),
                ca_certificates=tuple(ca for ca in entry["ca_certificates"] or ()
                                      if not is_uuid(ca)),
                ca_certificates_pem=tuple(
                    found.cert for index, ca in enumerate(entry["ca_certificates"] or ())
                    if is_uuid(ca) and (found := self.ca_certificates.resolve(
                        ca, ((path, "ca_certificates"), index), self.ctx)) is not None),
                id=entry["id"],
                tags=_tuple(entry["tags"]),
                enabled=entry["enabled"],
            )
            services.append((path, entry, service))
            names.append(((path, "name"), name))
            self.services.add((name, entry["id"]), service)
            self._collect_plugins(entry, path, {"service": name})
        _check_unique(self.ctx, names, _named("service name"))
        return services

    def _routes(
        self, services: list[tuple[Path, dict, Service]], top_level: list[tuple[Path, dict]]
    ) -> list[Route]:
        located: list[tuple[Path, dict, Service | None]] = []
        for service_path, entry, service in services:
            for path, route in _entries(entry["routes"], (service_path, "routes")):
                if route["service"] is not None:
                    self.ctx.error(
                        (path, "service"), "not allowed on a route nested under a service"
                    )
                located.append((path, route, service))
        for path, route in top_level:
            reference = route["service"]
            referenced: Service | None = None
            if reference is not None:
                referenced = self.services.resolve(reference, (path, "service"), self.ctx)
            located.append((path, route, referenced))

        routes: list[Route] = []
        names = []
        for path, entry, owner in located:
            name = _default_name(entry, path)
            names.append(((path, "name"), name))
            built = Route(
                name=name,
                service=owner.name if owner is not None else None,
                paths=_tuple(entry["paths"]),
                hosts=_tuple(entry["hosts"]),
                methods=_tuple(entry["methods"]),
                headers=_route_headers(entry["headers"]),
                snis=tuple(name.lower() for name in entry["snis"] or () if name is not None),
                protocols=_tuple(entry["protocols"]),
                strip_path=entry["strip_path"],
                preserve_host=entry["preserve_host"],
                regex_priority=entry["regex_priority"],
                path_handling=entry["path_handling"],
                https_redirect_status_code=entry["https_redirect_status_code"],
                id=entry["id"],
                tags=_tuple(entry["tags"]),
                request_buffering=entry["request_buffering"],
                response_buffering=entry["response_buffering"],
            )
            self.routes.add((name, entry["id"]), built)
            self._collect_plugins(entry, path, {"route": name})
            # Kong: a disabled service's routes behave as if they did not exist.
            if owner is None or owner.enabled:
                routes.append(built)
        _check_unique(self.ctx, names, _named("route name"))
        return routes

    def _upstreams(self, entries: list[tuple[Path, dict]]) -> list[Upstream]:
        upstreams = []
        names = []
        for path, entry in entries:
            targets = _entries(entry["targets"], (path, "targets"))
            _check_unique(
                self.ctx,
                (
                    ((target_path, "target"), _target_address(target))
                    for target_path, target in targets
                ),
                _named("target"),
            )
            names.append(((path, "name"), entry["name"]))
            upstreams.append(
                Upstream(
                    name=entry["name"],
                    algorithm=entry["algorithm"],
                    hash_on=entry["hash_on"],
                    hash_fallback=entry["hash_fallback"],
                    hash_on_header=entry["hash_on_header"],
                    hash_fallback_header=entry["hash_fallback_header"],
                    hash_on_cookie=entry["hash_on_cookie"],
                    hash_on_cookie_path=entry["hash_on_cookie_path"],
                    hash_on_query_arg=entry["hash_on_query_arg"],
                    hash_fallback_query_arg=entry["hash_fallback_query_arg"],
                    slots=entry["slots"],
                    healthchecks=entry["healthchecks"],
                    targets=tuple(
                        _target(target) for _, target in targets if target["target"] is not None
                    ),
                    id=entry["id"],
                    tags=_tuple(entry["tags"]),
                    host_header=entry["host_header"],
                    client_certificate_pem=(
                        self._certificate(entry["client_certificate"],
                                          (path, "client_certificate"))
                        if entry["client_certificate"] is not None else None),
                )
            )
        _check_unique(self.ctx, names, _named("upstream name"))
        return upstreams

    def _consumer_groups(self, entries: list[tuple[Path, dict]]) -> list[ConsumerGroup]:
        groups = []
        for path, entry in entries:
            group = ConsumerGroup(name=entry["name"], id=entry["id"], tags=_tuple(entry["tags"]))
            groups.append(group)
            self.consumer_groups.add((entry["name"], entry["id"]), group)
            self._collect_plugins(entry, path, {"consumer_group": entry["name"]})
        _check_unique(self.ctx, (((path, "name"), entry["name"]) for path, entry in entries),
                      _named("consumer group name"))
        return groups

    def _consumers(self, entries: list[tuple[Path, dict]], transform: bool) -> list[Consumer]:
        consumers = []
        for path, entry in entries:
            if not transform:
                entry = {**entry, "basicauth_credentials": self._hashed_passwords(entry, path)}
            memberships = []
            for group_path, group_ref in _entries(entry["groups"], (path, "groups")):
                reference = group_ref["name"] or group_ref["id"]
                if reference is None:
                    self.ctx.error(group_path, "a group needs its 'name' or 'id'")
                    continue
                group = self.consumer_groups.resolve(reference, group_path, self.ctx)
                if group is not None and group.name not in memberships:
                    memberships.append(group.name)
            consumer = Consumer(
                username=entry["username"],
                custom_id=entry["custom_id"],
                id=entry["id"],
                tags=_tuple(entry["tags"]),
                groups=tuple(memberships),
                **{kind: self._credentials(entry, path, kind) for kind in _CREDENTIAL_KINDS},
            )
            consumers.append(consumer)
            self.consumers.add((entry["username"], entry["id"]), consumer)
            if entry["username"] is None and entry["plugins"]:
                self.ctx.error((path, "username"), "required when the consumer has plugins")
            self._collect_plugins(entry, path, {"consumer": entry["username"]})
        self._check_consumers_unique(entries)
        return consumers

    def _credentials(self, consumer: dict, path: Path, kind: str) -> tuple[dict, ...]:
        """A consumer's credentials of one kind, each without the reference to
        its consumer, which must name the consumer it is nested under."""
        credentials = []
        for credential_path, credential in _entries(consumer[kind], (path, kind)):
            parent = credential.pop("consumer", None)
            if parent is not None:
                references = parent.values() if isinstance(parent, dict) else (parent,)
                if not all(ref in (consumer["username"], consumer["id"]) for ref in references):
                    self.ctx.error((credential_path, "consumer"),
                                   "must name the consumer it is nested under")
            if kind == "mtls_auth_credentials" and credential["ca_certificate"] is not None:
                # Kept as the CA's id; a CA the config lacks is an error here.
                reference = credential["ca_certificate"]
                reference = reference["id"] if isinstance(reference, dict) else reference
                ca = self.ca_certificates.resolve(reference, (credential_path, "ca_certificate"),
                                                  self.ctx)
                credential = {**credential, "ca_certificate": None if ca is None else ca.id}
            credentials.append(credential)
        return tuple(credentials)

    def _hashed_passwords(self, consumer: dict, path: Path) -> list[dict]:
        """basic-auth credentials of a ``_transform: false`` document, whose
        passwords are Kong's stored form: the SHA-1 of the password followed
        by the consumer's id, in hex. They are kept as ``password_sha1``."""
        credentials = []
        for credential_path, credential in _entries(
                consumer["basicauth_credentials"], (path, "basicauth_credentials")):
            hashed = credential["password"]
            if _SHA1_HEX.fullmatch(hashed) is None:
                self.ctx.error((credential_path, "password"),
                               "with _transform: false, expected Kong's stored hash "
                               "(40 hex digits); remove _transform to write the password")
            elif consumer["id"] is None:
                self.ctx.error((path, "id"), "required with _transform: false: Kong's "
                               "basic-auth password hashes are salted with the consumer's id")
            credentials.append({**credential, "password": None,
                                "password_sha1": hashed.lower()})
        return credentials

    def _check_consumers_unique(self, entries: list[tuple[Path, dict]]) -> None:
        def values(field: str) -> Iterable[tuple[Path, Any]]:
            for path, entry in entries:
                yield (path, field), entry[field]

        def credentials(kind: str, field: str, per_consumer: bool = False):
            for consumer_path, entry in entries:
                for path, credential in _entries(entry[kind], (consumer_path, kind)):
                    value = credential[field]
                    if per_consumer and value is not None:
                        value = (consumer_path, value)
                    yield (path, field), value

        ctx = self.ctx
        _check_unique(ctx, values("username"), _named("consumer username"))
        _check_unique(ctx, values("custom_id"), _named("consumer custom_id"))
        # A key is a secret: the error says where the clash is, not the key.
        _check_unique(ctx, credentials("keyauth_credentials", "key"), lambda _: "key-auth key")
        _check_unique(
            ctx, credentials("basicauth_credentials", "username"), _named("basic-auth username")
        )
        _check_unique(ctx, credentials("jwt_secrets", "key"), _named("jwt key"))
        _check_unique(
            ctx, credentials("hmacauth_credentials", "username"), _named("hmac-auth username")
        )
        _check_unique(
            ctx, credentials("acls", "group", True), lambda value: f"acl group '{value[1]}'"
        )

        def subject_names() -> Iterable[tuple[Path, Any]]:
            # Two consumers for one name (and CA) would leave the choice to chance.
            for consumer_path, entry in entries:
                for path, credential in _entries(entry["mtls_auth_credentials"],
                                                 (consumer_path, "mtls_auth_credentials")):
                    ca = credential["ca_certificate"]
                    yield (path, "subject_name"), (credential["subject_name"],
                                                   ca["id"] if isinstance(ca, dict) else ca)

        _check_unique(ctx, subject_names(), lambda value: f"mtls-auth subject_name "
                      f"'{value[0]}'" + (f" for CA {value[1]}" if value[1] else ""))

    def _plugins(self) -> list[PluginConfig]:
        ctx = self.ctx
        references = dict(
            zip(_SCOPE_KINDS, (self.services, self.routes, self.consumers,
                               self.consumer_groups), strict=True)
        )
        plugins = []
        scopes = []
        instance_names = []
        for path, entry, nested_scope in self.plugin_entries:
            scope = dict(nested_scope)
            for kind, index in references.items():
                reference = entry[kind]
                if reference is None:
                    continue
                if kind in nested_scope:
                    ctx.error((path, kind), f"not allowed on a plugin nested under a {kind}")
                    continue
                target = index.resolve(reference, (path, kind), ctx)
                if target is None:
                    continue
                if kind == "consumer":
                    if target.username is None:
                        ctx.error((path, kind), "the consumer needs a username to scope plugins")
                    scope[kind] = target.username
                else:
                    scope[kind] = target.name
            for kind, what in (("consumer", "a consumer"), ("consumer_group", "a consumer group")):
                if scope.get(kind) is not None and entry["name"] in NO_CONSUMER_PLUGINS:
                    where = (path, kind) if entry[kind] is not None else path
                    ctx.error(where, f"plugin '{entry['name']}' cannot be scoped to {what}")
            if scope.get("consumer") is not None and scope.get("consumer_group") is not None:
                ctx.error(path, "a plugin is scoped to a consumer or to a consumer group, "
                          "not both")
            # Kong's rule for every plugin: config.ca_certificates names
            # ca_certificates entities (mtls-auth's CAs).
            config = entry["config"]
            cas = config.get("ca_certificates") if isinstance(config, dict) else None
            for position, ca in enumerate(cas if isinstance(cas, list) else ()):
                if ca is not None:  # None: the schema refused it already
                    self.ca_certificates.resolve(
                        ca, (((path, "config"), "ca_certificates"), position), ctx)
            plugins.append(
                PluginConfig(
                    name=entry["name"],
                    config=entry["config"],
                    enabled=entry["enabled"],
                    id=entry["id"],
                    service=scope.get("service"),
                    route=scope.get("route"),
                    consumer=scope.get("consumer"),
                    consumer_group=scope.get("consumer_group"),
                    instance_name=entry["instance_name"],
                    protocols=_tuple(entry["protocols"]),
                    tags=_tuple(entry["tags"]),
                )
            )
            scope_key = tuple(scope.get(kind) for kind in _SCOPE_KINDS)
            if entry["name"] is not None:
                scopes.append((path, (entry["name"], *scope_key)))
            instance_names.append(((path, "instance_name"), entry["instance_name"]))
        _check_unique(ctx, scopes, _describe_plugin_scope)
        _check_unique(ctx, instance_names, _named("plugin instance_name"))
        return plugins


_SCOPE_KINDS = ("service", "route", "consumer", "consumer_group")

# Plugins that identify the consumer (or act before it is known) make no
# sense scoped to one; Kong's schemas say `no_consumer` for them.
NO_CONSUMER_PLUGINS = frozenset({"key-auth", "basic-auth", "jwt", "hmac-auth", "acl", "cors"})


def _describe_plugin_scope(key: tuple) -> str:
    name, *scope = key
    parts = [f"{kind} '{value}'" for kind, value in zip(_SCOPE_KINDS, scope, strict=True) if value]
    return f"plugin '{name}' for {' and '.join(parts) if parts else 'the global scope'}"


def _route_headers(headers: dict | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    # Header names match case-insensitively; keep them lower-cased once here.
    # (None keys or values only appear in documents that have errors.)
    return tuple(
        (name.lower(), tuple(values))
        for name, values in (headers or {}).items()
        if name is not None and values is not None
    )


def _target_host_port(entry: dict) -> tuple[str, int]:
    parsed = split_host_port(entry["target"])
    assert parsed is not None  # already checked by the schema
    host, port = parsed
    return host, DEFAULT_TARGET_PORT if port is None else port


def _target_address(entry: dict) -> str | None:
    """The target normalised to host:port, None when invalid."""
    if entry["target"] is None:
        return None
    host, port = _target_host_port(entry)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _target(entry: dict) -> Target:
    host, port = _target_host_port(entry)
    address = _target_address(entry)
    assert address is not None  # a target without an address failed just above
    return Target(
        target=address, host=host, port=port, weight=entry["weight"], tags=_tuple(entry["tags"])
    )


def _gateway_settings(block: dict) -> GatewaySettings:
    values: dict[str, Any] = {}
    for field in dataclasses.fields(GatewaySettings):
        if field.name in ("tls", "redis"):
            continue
        value = block[field.name]
        # Durations are floats in the model even when written as integers.
        values[field.name] = float(value) if isinstance(field.default, float) else value
    tls = block["tls"]
    if tls is not None:
        values["tls"] = TLSSettings(
            cert=tls["cert"], key=tls["key"], sni=tuple(dict(item) for item in tls["sni"]),
            listen=tls["listen"],
        )
    redis = block["redis"]
    if redis is not None:
        values["redis"] = RedisSettings(
            url=redis["url"], sentinels=_nodes(redis["sentinels"]),
            master_name=redis["master_name"], cluster_nodes=_nodes(redis["cluster_nodes"]),
            username=redis["username"], password=redis["password"],
            database=redis["database"] or 0, sentinel_username=redis["sentinel_username"],
            sentinel_password=redis["sentinel_password"], ssl=redis["ssl"],
            ssl_verify=redis["ssl_verify"])
    return GatewaySettings(**values)


def _nodes(addresses: list[str] | None) -> tuple[tuple[str, int], ...]:
    """host:port strings (checked by the schema) as (host, port) pairs."""
    nodes = []
    for address in addresses or ():
        host, port = split_host_port(address) or (address, None)
        nodes.append((host, port or 6379))
    return tuple(nodes)


# --- files -----------------------------------------------------------------------


# Bounds on a YAML document, checked on its node graph before anything is
# built from it: aliases may not expand it past MAX_YAML_NODES (a 2 KB "billion
# laughs" file would otherwise become tens of thousands of routes), and nesting
# stops at MAX_YAML_DEPTH (deeper input exhausted the recursion limit).
MAX_YAML_NODES = 200_000
MAX_YAML_DEPTH = 64


def _yaml_bound_error(root: yaml.Node) -> str | None:
    sizes: dict[int, int] = {}
    # Iterative post-order walk: (node, depth, children visited?).
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, visited = stack.pop()
        if depth > MAX_YAML_DEPTH:
            return f"nesting depth over {MAX_YAML_DEPTH} levels (the YAML depth bound)"
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [item for pair in node.value for item in pair]
        if visited:
            # A node reached through several aliases counts once per use.
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[id(node)] > MAX_YAML_NODES:
                return (f"aliases expand the document past {MAX_YAML_NODES} nodes "
                        "(the YAML alias expansion bound)")
        elif id(node) not in sizes:
            stack.append((node, depth, True))
            stack.extend((child, depth + 1, False) for child in children
                         if id(child) not in sizes)
    return None


def decode_yaml(data: bytes | str) -> Any:
    """A YAML document, within the bounds above. Raises ``yaml.YAMLError``
    (malformed) or ``ConfigError`` naming the bound."""
    loader = _YAML_LOADER(data)
    problem: str | None
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            node = None
            problem = f"nesting depth over {MAX_YAML_DEPTH} levels (the YAML depth bound)"
        else:
            problem = _yaml_bound_error(node) if node is not None else None
        if problem is not None:
            raise ConfigError([f"invalid YAML: {problem}"])
        return loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def _decode_document(path: str, data: bytes) -> Any:
    extension = os.path.splitext(path)[1].lower()
    is_json = extension == ".json" or (
        extension not in (".yaml", ".yml") and data.lstrip()[:1] in (b"{", b"[")
    )
    if is_json:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(
                [f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"]
            ) from None
    try:
        return decode_yaml(data)
    except ConfigError as exc:
        raise ConfigError([f"{path}: {error}" for error in exc.errors]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"{path}: invalid YAML{where}: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: invalid YAML: {' '.join(str(exc).split())}"]) from None


def read_document(path: str | os.PathLike) -> Any:
    """The document of a YAML or JSON declarative file (JSON when the name
    ends in ``.json`` or the text starts with ``{``). Raises ``ConfigError``."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    return _decode_document(path, data)


def load_config(path: str | os.PathLike, env: Mapping[str, str] | None = None) -> Config:
    """``parse_config`` the document of a declarative file (``read_document``)."""
    return parse_config(read_document(path), env)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def check_file(path: str | os.PathLike, explain: bool = False) -> tuple[int, str]:
    """What ``fastgw check -c FILE [--explain]`` prints, and its exit code."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        if explain:
            return 1, "\n".join(explain_error(error) for error in exc.errors)
        return 1, "\n".join(exc.errors)
    counts = ", ".join(
        _plural(len(items), noun)
        for items, noun in (
            (config.services, "service"),
            (config.routes, "route"),
            (config.upstreams, "upstream"),
            (config.consumers, "consumer"),
            (config.plugins, "plugin"),
        )
    )
    return 0, f"config ok: {counts} (hash {config.hash})"


# --- redaction -------------------------------------------------------------------


def redacted_document(config: Config) -> dict:
    """The declarative document ``config`` was built from, with secrets and
    credentials replaced by ``"<redacted>"``; vault references are shown as
    written, never resolved."""
    return DOCUMENT.redact(config.source)


# --- overrides -------------------------------------------------------------------

# Overridable setting -> the schema field that checks it.
_OVERRIDE_FIELDS: dict[str, Field] = {
    **{name: field for name, field in GATEWAY.fields.items() if name not in ("tls", "redis")},
    "redis_url": REDIS.fields["url"],
    "tls_cert": TLS.fields["cert"],
    "tls_key": TLS.fields["key"],
}


def _override_value(field: Field, raw: Any, path: Path, ctx: Validation) -> Any:
    if type(raw) is str and type(field) in (Integer, Number):
        try:
            raw = int(raw) if type(field) is Integer else float(raw)
        except ValueError:
            kind = "an integer" if type(field) is Integer else "a number"
            ctx.error(path, f"expected {kind}, got '{raw}'")
            return None
    return field.validate(raw, path, ctx)


def with_overrides(config: Config, flags: Mapping[str, Any],
                   env: Mapping[str, str] | None = None) -> Config:
    """``config`` with its ``_gateway`` settings overridden by command line
    ``flags``, then ``FASTGW_*`` variables (``os.environ`` when None): the one
    place the supervisor, each worker and each reload get their settings from."""
    settings = apply_overrides(config.gateway, os.environ if env is None else env, **flags)
    return dataclasses.replace(config, gateway=settings)


def apply_overrides(
    settings: GatewaySettings, env: Mapping[str, str], **flags: Any
) -> GatewaySettings:
    """``settings`` with command line ``flags`` (None: not given) and
    ``FASTGW_*`` variables of ``env`` applied; see the module docstring.
    Raises ``ConfigError`` naming the flag or variable of each bad value."""
    unknown = flags.keys() - _OVERRIDE_FIELDS.keys()
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    ctx = Validation(env)
    changes: dict[str, Any] = {}
    for name, field in _OVERRIDE_FIELDS.items():
        raw = flags.get(name)
        label = "--" + name.replace("_", "-")
        if raw is None:
            label = "FASTGW_" + name.upper()
            raw = env.get(label)
            if not raw:
                continue
        if name == "workers" and raw == "auto":
            changes[name] = None
            continue
        changes[name] = _override_value(field, raw, (None, label), ctx)
    if "redis_url" in changes:
        changes["redis"] = RedisSettings(url=changes.pop("redis_url"))
    tls_cert, tls_key = changes.pop("tls_cert", None), changes.pop("tls_key", None)
    if tls_cert is not None or tls_key is not None:
        tls = settings.tls or TLSSettings()
        tls = dataclasses.replace(tls, cert=tls_cert or tls.cert, key=tls_key or tls.key)
        if tls.cert is None or tls.key is None:
            half = "key" if tls.key is None else "cert"
            ctx.error(
                (None, f"FASTGW_TLS_{half.upper()}"),
                f"required (or --tls-{half}) when _gateway.tls is absent and the other half is set",
            )
        changes["tls"] = tls
    if ctx.errors:
        raise ConfigError(ctx.messages())
    return dataclasses.replace(settings, **changes)
