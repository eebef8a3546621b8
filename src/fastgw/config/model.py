"""Immutable, validated configuration objects.

The loader (``fastgw.config.loader``) turns a Kong-format declarative file into
one ``Config``; every other part of fastgw reads only these objects. They are
built once per config version and never mutated, so a worker can swap the
whole config by swapping one reference (Envoy's FilterConfig idea).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class PluginConfig:
    name: str
    config: dict[str, Any]  # validated against the plugin's schema, defaults filled
    enabled: bool = True
    id: str | None = None
    service: str | None = None  # name of the scoping service, or None
    route: str | None = None  # name of the scoping route, or None
    consumer: str | None = None  # username of the scoping consumer, or None
    consumer_group: str | None = None  # name of the scoping consumer group, or None
    instance_name: str | None = None
    protocols: tuple[str, ...] = ("grpc", "grpcs", "http", "https")  # request schemes it runs on
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Certificate:
    """Kong's ``certificates`` entity: a PEM certificate (chain) and its key,
    optionally a second pair of another key type, and the server names it is
    served for."""

    cert: str
    key: str
    cert_alt: str | None = None
    key_alt: str | None = None
    snis: tuple[str, ...] = ()
    id: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CACertificate:
    cert: str  # one PEM certificate
    id: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    protocol: str  # "http" or "https"
    host: str  # a hostname/IP, or the name of an Upstream
    port: int
    path: str | None  # e.g. "/v1" or None
    retries: int = 5
    connect_timeout: int = 60000  # ms
    write_timeout: int = 60000  # ms
    read_timeout: int = 60000  # ms
    tls_verify: bool | None = None
    client_certificate: tuple[str, str] | None = None  # (cert file, key file) shown to the upstream
    ca_certificates: tuple[str, ...] = ()  # PEM files trusted for the upstream instead of the system's
    # The same, from Kong's certificates and ca_certificates entities (PEM text).
    client_certificate_pem: Certificate | None = None
    ca_certificates_pem: tuple[str, ...] = ()
    id: str | None = None
    tags: tuple[str, ...] = ()
    # False: as in Kong, the service's routes behave as if they did not exist;
    # the loader leaves them out of Config.routes.
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    service: str | None  # service name (None only if the route has no service)
    paths: tuple[str, ...] = ()  # prefixes, or "~"-prefixed regexes
    hosts: tuple[str, ...] = ()  # may contain one leading or trailing "*"
    methods: tuple[str, ...] = ()  # upper case
    headers: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (lower-case name, values)
    snis: tuple[str, ...] = ()  # TLS server names an HTTPS request must have come with
    protocols: tuple[str, ...] = ("http", "https")
    strip_path: bool = True
    preserve_host: bool = False
    regex_priority: int = 0
    path_handling: str = "v0"
    https_redirect_status_code: int = 426
    id: str | None = None
    tags: tuple[str, ...] = ()
    request_buffering: bool = True  # Kong's flags, kept for plugins that need whole bodies
    response_buffering: bool = True


@dataclass(frozen=True, slots=True)
class Target:
    target: str  # "host:port" (port defaults to 8000 as in Kong)
    host: str
    port: int
    weight: int = 100
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    algorithm: str = "round-robin"
    hash_on: str = "none"
    hash_fallback: str = "none"
    hash_on_header: str | None = None
    hash_fallback_header: str | None = None
    hash_on_cookie: str | None = None
    hash_on_cookie_path: str = "/"
    hash_on_query_arg: str | None = None
    hash_fallback_query_arg: str | None = None
    slots: int = 10000
    healthchecks: dict[str, Any] = field(default_factory=dict)  # Kong's shape, defaults filled
    targets: tuple[Target, ...] = ()
    id: str | None = None
    tags: tuple[str, ...] = ()
    host_header: str | None = None  # the Host sent to targets instead of the service's host
    client_certificate_pem: Certificate | None = None  # shown to targets over TLS


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    """One side (healthy or unhealthy) of active or passive checks."""

    interval: float
    successes: int
    http_failures: int
    tcp_failures: int
    timeouts: int
    http_statuses: frozenset[int]


@dataclass(frozen=True, slots=True)
class HealthChecks:
    """An upstream's ``healthchecks`` parsed once, with the schema's defaults
    (``config.entities.health_checks``): what the core's passive breaker and
    the active checker both read."""

    type: str
    timeout: float
    concurrency: int
    http_path: str
    https_sni: str | None
    https_verify_certificate: bool
    headers: tuple[tuple[str, tuple[str, ...]], ...]
    active_healthy: HealthThresholds
    active_unhealthy: HealthThresholds
    passive_healthy: HealthThresholds
    passive_unhealthy: HealthThresholds

    @property
    def active_on(self) -> bool:
        return self.active_healthy.interval > 0 or self.active_unhealthy.interval > 0

    @property
    def passive_on(self) -> bool:
        return bool(self.passive_healthy.successes or self.passive_unhealthy.http_failures
                    or self.passive_unhealthy.tcp_failures or self.passive_unhealthy.timeouts)


@dataclass(frozen=True, slots=True)
class Consumer:
    username: str | None
    custom_id: str | None = None
    id: str | None = None
    # credentials are kept as validated dicts, one tuple per kind
    keyauth_credentials: tuple[dict[str, Any], ...] = ()
    basicauth_credentials: tuple[dict[str, Any], ...] = ()
    jwt_secrets: tuple[dict[str, Any], ...] = ()
    hmacauth_credentials: tuple[dict[str, Any], ...] = ()
    acls: tuple[dict[str, Any], ...] = ()
    # subject_name, and ca_certificate as the CA's id (None: any CA)
    mtls_auth_credentials: tuple[dict[str, Any], ...] = ()
    tags: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()  # names of the consumer groups it belongs to, in order


@dataclass(frozen=True, slots=True)
class ConsumerGroup:
    """Kong's consumer group: consumers that share plugin configs (a tier)."""

    name: str
    id: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TLSSettings:
    cert: str | None = None
    key: str | None = None
    sni: tuple[dict[str, Any], ...] = ()  # ({"name": host, "cert": path, "key": path}, ...)
    listen: str | None = None  # a second, HTTPS-only listener; None: `listen` speaks HTTPS


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """``_gateway.redis``: exactly one of ``url``, ``sentinels`` (with
    ``master_name``) or ``cluster_nodes``; nodes are (host, port)."""

    url: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str | None = None
    cluster_nodes: tuple[tuple[str, int], ...] = ()
    username: str | None = None
    password: str | None = None
    database: int = 0
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False
    ssl_verify: bool = True


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """The ``_gateway`` block. Durations here are seconds (floats allowed)."""

    listen: str = "0.0.0.0:8000"
    admin_listen: str = "127.0.0.1:8001"
    admin_token: str | None = None  # required by a non-loopback admin_listen
    workers: int | None = None  # None: number of CPUs
    tls: TLSSettings | None = None
    redis: RedisSettings | None = None
    max_header_bytes: int = 32768
    max_body_bytes: int = 8 * 1024 * 1024
    max_response_buffer_bytes: int = 64 * 1024 * 1024  # an answer a plugin holds whole
    client_header_timeout: float = 60.0
    client_body_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    max_connections: int = 10000
    max_memory_mb: int | None = None  # a worker's RSS past this sheds new requests (503)
    upstream_keepalive_pool_size: int = 512  # idle connections kept per target
    upstream_keepalive_timeout: float = 60.0
    drain_timeout: float = 30.0
    dns_refresh_interval: float = 30.0  # seconds between re-resolutions of target host names
    # Seconds between looks at the config file; a changed file is reloaded
    # (a Kubernetes ConfigMap update). None: only SIGHUP or POST /config reload.
    watch_config: float | None = None
    # Kong's status API: GET /status, /status/ready and /metrics, read-only,
    # with no token (for probes and scrapers). None: not served.
    status_listen: str | None = None


@dataclass(frozen=True, slots=True)
class Key:
    """Kong's ``keys`` entity: a JWK (JSON text) or PEM key pair, by ``kid``,
    possibly in a key set."""

    kid: str
    name: str | None = None
    id: str | None = None
    set: str | None = None  # the key set's name (or id when it has no name)
    jwk: str | None = None
    pem_private_key: str | None = None
    pem_public_key: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KeySet:
    name: str | None
    id: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    services: tuple[Service, ...] = ()
    routes: tuple[Route, ...] = ()
    upstreams: tuple[Upstream, ...] = ()
    consumers: tuple[Consumer, ...] = ()
    consumer_groups: tuple[ConsumerGroup, ...] = ()
    plugins: tuple[PluginConfig, ...] = ()  # every plugin, flattened, with its scope set
    certificates: tuple[Certificate, ...] = ()
    ca_certificates: tuple[CACertificate, ...] = ()
    key_sets: tuple[KeySet, ...] = ()
    keys: tuple[Key, ...] = ()  # top-level keys and those nested in key sets
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    source: dict[str, Any] = field(default_factory=dict)  # the declarative document as loaded
    hash: str = ""  # xxh3-64 hex of the canonical document

    def service(self, name: str) -> Service | None:
        for s in self.services:
            if s.name == name:
                return s
        return None

    def upstream(self, name: str) -> Upstream | None:
        for u in self.upstreams:
            if u.name == name:
                return u
        return None
