"""Entity schemas: Kong's defaults and every validation rule, through
``parse_config``."""

from __future__ import annotations

import pytest
from config_docs import document, errors_of, parse, service

from fastgw.config import entities
from fastgw.config.model import (
    GatewaySettings,
    RedisSettings,
    Route,
    Service,
    TLSSettings,
    Upstream,
)
from fastgw.config.schema import Array, Dynamic, Map, Record


def only_service(**fields) -> Service:
    return parse(document(services=[service(**fields)])).services[0]


def only_route(**fields) -> Route:
    return parse(document(services=[service(routes=[fields])])).routes[0]


def route_errors(**fields) -> list[str]:
    return errors_of(document(services=[service(routes=[fields])]))


# --- services -------------------------------------------------------------------


def test_service_defaults_are_kongs():
    svc = only_service(url=None, host="example.com")
    assert svc == Service(
        name="svc",
        protocol="http",
        host="example.com",
        port=80,
        path=None,
        retries=5,
        connect_timeout=60000,
        write_timeout=60000,
        read_timeout=60000,
        tls_verify=None,
        id=None,
        tags=(),
        enabled=True,
    )


@pytest.mark.parametrize(
    ("url", "protocol", "host", "port", "path"),
    [
        ("http://127.0.0.1:9000", "http", "127.0.0.1", 9000, None),
        ("https://api.openai.com/v1", "https", "api.openai.com", 443, "/v1"),
        ("http://backend/", "http", "backend", 80, "/"),
        ("HTTP://[::1]:8080/x", "http", "::1", 8080, "/x"),
    ],
)
def test_service_url_shorthand_fills_protocol_host_port_path(url, protocol, host, port, path):
    svc = only_service(url=url)
    assert (svc.protocol, svc.host, svc.port, svc.path) == (protocol, host, port, path)


def test_https_service_without_port_defaults_to_443():
    assert only_service(url=None, protocol="https", host="h").port == 443


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"host": "h"}, "services[0].url: cannot be combined with 'host'"),
        ({"url": "ftp://h"}, "services[0].url: scheme must be 'http' or 'https'"),
        ({"url": "http://u:p@h/"}, "services[0].url: expected 'http[s]://host[:port][/path]'"),
        ({"url": "http://h/?q=1"}, "services[0].url: expected 'http[s]://host[:port][/path]'"),
        ({"url": "http://h:99999"}, "services[0].url: invalid port 99999: must be between 0 and 65535"),
        ({"url": None}, "services[0].host: required field missing (set 'host' or 'url')"),
        ({"url": None, "host": "h:80"}, "services[0].host: invalid host 'h:80': expected a host name or an IP address (no port)"),
        ({"url": None, "host": "h", "path": "v1"}, "services[0].path: should start with: /"),
        ({"url": None, "host": "h", "protocol": "grpc"}, "services[0].protocol: expected one of: http, https"),
        ({"tls_verify": False}, "services[0].tls_verify: only allowed when protocol is 'https'"),
        ({"retries": 40000}, "services[0].retries: value should be between 0 and 32767"),
        ({"connect_timeout": 0}, "services[0].connect_timeout: value should be between 1 and 2147483646"),
        ({"name": "has space"}, "services[0].name: invalid name 'has space': use letters, digits, '.', '-', '_' or '~'"),
        ({"id": "nope"}, "services[0].id: invalid id 'nope': expected a UUID"),
        ({"weight": 1}, "services[0].weight: unknown field"),
    ],
)  # fmt: skip
def test_service_errors(fields, message):
    assert errors_of(document(services=[service(**fields)])) == [message]


def test_https_service_may_disable_tls_verification():
    assert only_service(url="https://h", tls_verify=False).tls_verify is False


# --- routes ---------------------------------------------------------------------


def test_route_defaults_are_kongs():
    assert only_route(paths=["/a"]) == Route(
        name="services[0].routes[0]",
        service="svc",
        paths=("/a",),
        hosts=(),
        methods=(),
        headers=(),
        protocols=("http", "https"),
        strip_path=True,
        preserve_host=False,
        regex_priority=0,
        path_handling="v0",
        https_redirect_status_code=426,
        id=None,
        tags=(),
        request_buffering=True,
        response_buffering=True,
    )


def test_route_matchers_are_kept_and_header_names_lower_cased():
    route = only_route(
        hosts=["*.example.com", "api.*", "h:8080", "[::1]"],
        paths=["/v1", "~/items/\\d+$"],
        methods=["GET", "POST", "GET"],
        headers={"X-Version": ["1", "2"]},
    )
    assert route.hosts == ("*.example.com", "api.*", "h:8080", "[::1]")
    assert route.paths == ("/v1", "~/items/\\d+$")
    assert route.methods == ("GET", "POST")  # a set: the repeat is dropped
    assert route.headers == (("x-version", ("1", "2")),)


def test_pcre_named_groups_are_accepted_as_the_docs_say():
    # docs/kong-compatibility.md: PCRE named groups are converted for the router.
    assert only_route(paths=["~/users/(?<id>\\d+)$"]).paths == ("~/users/(?<id>\\d+)$",)


def test_a_route_with_only_methods_or_only_headers_is_valid():
    assert only_route(methods=["GET"]).methods == ("GET",)
    assert only_route(headers={"x-a": ["1"]}).headers == (("x-a", ("1",)),)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "services[0].routes[0]: must set at least one of 'paths', 'hosts', 'methods', 'headers', 'snis'"),
        ({"paths": []}, "services[0].routes[0]: must set at least one of 'paths', 'hosts', 'methods', 'headers', 'snis'"),
        ({"paths": ["~/a(b"]}, "services[0].routes[0].paths[0]: invalid regex '/a(b': missing ), unterminated subpattern at position 2"),
        ({"paths": ["v1"]}, "services[0].routes[0].paths[0]: should start with: / (fixed path) or ~/ (regex path)"),
        ({"paths": ["/a b"]}, "services[0].routes[0].paths[0]: must not contain whitespace, '?' or '#'"),
        ({"hosts": ["a.*.com"]}, "services[0].routes[0].hosts[0]: invalid wildcard: must be placed at leftmost or rightmost label"),
        ({"hosts": ["*.a.*"]}, "services[0].routes[0].hosts[0]: invalid wildcard: must have at most one wildcard"),
        ({"hosts": ["bad host"]}, "services[0].routes[0].hosts[0]: invalid host 'bad host'"),
        ({"methods": ["get"]}, "services[0].routes[0].methods[0]: invalid method 'get': expected upper case letters"),
        ({"headers": {"Host": ["a"]}}, "services[0].routes[0].headers.Host: cannot contain 'host' header, which must be specified in the 'hosts' attribute"),
        ({"headers": {"x-a": []}}, "services[0].routes[0].headers.x-a: length must be at least 1"),
        ({"paths": ["/"], "protocols": ["grpc"]}, "services[0].routes[0].protocols[0]: expected one of: http, https"),
        ({"paths": ["/"], "https_redirect_status_code": 303}, "services[0].routes[0].https_redirect_status_code: expected one of: 426, 301, 302, 307, 308"),
        ({"paths": ["/"], "path_handling": "v2"}, "services[0].routes[0].path_handling: expected one of: v0, v1"),
        ({"paths": ["/"], "strip_path": "yes"}, "services[0].routes[0].strip_path: expected a boolean"),
        ({"paths": ["/"], "snis": ["a"], "protocols": ["http"]}, "services[0].routes[0].snis: 'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'"),
        ({"paths": ["/"], "snis": ["*.a.test"]}, "services[0].routes[0].snis[0]: invalid SNI '*.a.test': expected a host name (no port, no wildcard)"),
    ],
)  # fmt: skip
def test_route_errors(fields, message):
    assert route_errors(**fields) == [message]


# --- upstreams and targets ---------------------------------------------------------

KONG_HEALTHCHECKS = {
    "active": {
        "type": "http",
        "timeout": 1,
        "concurrency": 10,
        "http_path": "/",
        "https_sni": None,
        "https_verify_certificate": True,
        "headers": None,
        "healthy": {"interval": 0, "http_statuses": [200, 302], "successes": 0},
        "unhealthy": {
            "interval": 0,
            "http_statuses": [429, 404, 500, 501, 502, 503, 504, 505],
            "tcp_failures": 0,
            "timeouts": 0,
            "http_failures": 0,
        },
    },
    "passive": {
        "type": "http",
        "healthy": {
            "http_statuses": [200, 201, 202, 203, 204, 205, 206, 207, 208, 226]
            + [300, 301, 302, 303, 304, 305, 306, 307, 308],
            "successes": 0,
        },
        "unhealthy": {
            "http_statuses": [429, 500, 503],
            "tcp_failures": 0,
            "timeouts": 0,
            "http_failures": 0,
        },
    },
    "threshold": 0,
}


def only_upstream(**fields) -> Upstream:
    return parse(document(upstreams=[{"name": "backend", **fields}])).upstreams[0]


def upstream_errors(**fields) -> list[str]:
    return errors_of(document(upstreams=[{"name": "backend", **fields}]))


def test_upstream_defaults_are_kongs_including_healthchecks():
    upstream = only_upstream()
    assert upstream == Upstream(name="backend", healthchecks=KONG_HEALTHCHECKS)
    assert (upstream.algorithm, upstream.hash_on, upstream.hash_fallback) == (
        "round-robin",
        "none",
        "none",
    )
    assert (upstream.slots, upstream.hash_on_cookie_path) == (10000, "/")


def test_partial_healthchecks_keep_kongs_defaults_for_the_rest():
    upstream = only_upstream(
        healthchecks={"active": {"healthy": {"interval": 5}, "http_path": "/health"}}
    )
    active = upstream.healthchecks["active"]
    assert active["healthy"] == {"interval": 5, "http_statuses": [200, 302], "successes": 0}
    assert active["http_path"] == "/health"
    assert active["unhealthy"] == KONG_HEALTHCHECKS["active"]["unhealthy"]
    assert upstream.healthchecks["passive"] == KONG_HEALTHCHECKS["passive"]


def test_targets_default_to_port_8000_and_weight_100():
    upstream = only_upstream(
        targets=[
            {"target": "10.0.0.1"},
            {"target": "10.0.0.2:9000", "weight": 0},
            {"target": "[::1]:81"},
            {"target": "::2"},
        ]
    )
    assert [(t.target, t.host, t.port, t.weight) for t in upstream.targets] == [
        ("10.0.0.1:8000", "10.0.0.1", 8000, 100),
        ("10.0.0.2:9000", "10.0.0.2", 9000, 0),
        ("[::1]:81", "::1", 81, 100),
        ("[::2]:8000", "::2", 8000, 100),
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "10.0.0.1"}, "upstreams[0].name: Invalid name; no ip addresses allowed"),
        ({"name": "backend:80"}, "upstreams[0].name: Invalid name; no port allowed"),
        ({"name": "bad_name!"}, "upstreams[0].name: Invalid name; must be a valid hostname"),
        ({"algorithm": "random"}, "upstreams[0].algorithm: expected one of: round-robin, least-connections, consistent-hashing, latency"),
        ({"hash_on": "header"}, "upstreams[0].hash_on_header: required when hash_on is 'header'"),
        ({"hash_on": "cookie"}, "upstreams[0].hash_on_cookie: required when hash_on is 'cookie'"),
        ({"hash_on": "query_arg"}, "upstreams[0].hash_on_query_arg: required when hash_on is 'query_arg'"),
        ({"hash_fallback": "ip"}, "upstreams[0].hash_fallback: must be 'none' when hash_on is 'none'"),
        ({"hash_on": "ip", "hash_fallback": "ip"}, "upstreams[0].hash_fallback: must differ from hash_on"),
        ({"hash_on": "header", "hash_on_header": "X-A", "hash_fallback": "header", "hash_fallback_header": "x-a"}, "upstreams[0].hash_fallback_header: must differ from hash_on_header"),
        ({"algorithm": "least-connections", "hash_on": "ip"}, "upstreams[0].hash_on: must be 'none' when algorithm is 'least-connections'"),
        ({"slots": 5}, "upstreams[0].slots: value should be between 10 and 65536"),
        ({"healthchecks": {"active": {"concurrency": 0}}}, "upstreams[0].healthchecks.active.concurrency: value should be between 1 and 2147483648"),
        ({"healthchecks": {"passive": {"unhealthy": {"http_statuses": [99]}}}}, "upstreams[0].healthchecks.passive.unhealthy.http_statuses[0]: value should be between 100 and 999"),
        ({"healthchecks": {"active": {"type": "grpc"}}}, "upstreams[0].healthchecks.active.type: expected one of: tcp, http, https"),
        ({"targets": [{"target": "h:1", "weight": 70000}]}, "upstreams[0].targets[0].weight: value should be between 0 and 65535"),
        ({"targets": [{"target": "h:x"}]}, "upstreams[0].targets[0].target: invalid target 'h:x': expected 'host:port' or 'host'"),
        ({"targets": [{"weight": 1}]}, "upstreams[0].targets[0].target: required field missing"),
    ],
)  # fmt: skip
def test_upstream_errors(fields, message):
    assert upstream_errors(**fields) == [message]


def test_consistent_hashing_on_a_header_is_valid():
    upstream = only_upstream(
        algorithm="consistent-hashing",
        hash_on="header",
        hash_on_header="x-user",
        hash_fallback="ip",
    )
    assert (upstream.hash_on, upstream.hash_on_header, upstream.hash_fallback) == (
        "header",
        "x-user",
        "ip",
    )


# --- consumers and credentials --------------------------------------------------------


def test_consumer_credentials_are_validated_with_their_defaults():
    consumer = parse(
        document(
            consumers=[
                {
                    "username": "alice",
                    "keyauth_credentials": [{"key": "k1"}],
                    "basicauth_credentials": [{"username": "alice", "password": "pw"}],
                    "jwt_secrets": [{"key": "iss-1", "secret": "s"}],
                    "acls": [{"group": "admins"}],
                }
            ]
        )
    ).consumers[0]
    assert consumer.username == "alice" and consumer.custom_id is None
    assert consumer.keyauth_credentials == (
        {"id": None, "key": "k1", "ttl": None, "created_at": None, "tags": None},)
    assert consumer.basicauth_credentials[0]["password"] == "pw"
    assert consumer.jwt_secrets[0]["algorithm"] == "HS256"
    assert consumer.acls == ({"id": None, "group": "admins", "tags": None},)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"username": None}, "consumers[0]: at least one of these fields must be non-empty: 'custom_id', 'username'"),
        ({"keyauth_credentials": [{}]}, "consumers[0].keyauth_credentials[0].key: required field missing"),
        ({"basicauth_credentials": [{"username": "u"}]}, "consumers[0].basicauth_credentials[0].password: required field missing"),
        ({"jwt_secrets": [{"key": "k"}]}, "consumers[0].jwt_secrets[0].secret: required for algorithm HS256"),
        ({"jwt_secrets": [{"key": "k", "algorithm": "RS256"}]}, "consumers[0].jwt_secrets[0].rsa_public_key: required for algorithm RS256"),
        ({"jwt_secrets": [{"key": "k", "algorithm": "none"}]}, "consumers[0].jwt_secrets[0].algorithm: expected one of: HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512, EdDSA"),
        ({"acls": [{"group": ""}]}, "consumers[0].acls[0].group: length must be at least 1"),
    ],
)  # fmt: skip
def test_consumer_errors(fields, message):
    assert errors_of(document(consumers=[{"username": "alice", **fields}])) == [message]


def test_consumer_with_only_a_custom_id_is_valid():
    consumer = parse(document(consumers=[{"custom_id": "ext-1"}])).consumers[0]
    assert (consumer.username, consumer.custom_id) == (None, "ext-1")


# --- _gateway ----------------------------------------------------------------------


def test_gateway_defaults_are_the_model_defaults():
    assert parse(document()).gateway == GatewaySettings()


def test_gateway_redis_is_one_redis_a_sentinel_set_or_a_cluster():
    def redis(block: dict) -> RedisSettings | None:
        return parse(document(_gateway={"redis": block})).gateway.redis

    assert redis({"sentinels": ["10.0.0.1:26379", "[::1]:26380"], "master_name": "m",
                  "password": "p", "database": 2}) == RedisSettings(
        sentinels=(("10.0.0.1", 26379), ("::1", 26380)), master_name="m", password="p",
        database=2)
    assert redis({"cluster_nodes": ["r1:7000"], "username": "gw"}) == RedisSettings(
        cluster_nodes=(("r1", 7000),), username="gw")


@pytest.mark.parametrize("block, error", [
    ({}, "_gateway.redis: set exactly one of url, sentinels (with master_name) or "
     "cluster_nodes"),
    ({"url": "redis://r:1", "cluster_nodes": ["r:2"]}, "_gateway.redis: set exactly one of "
     "url, sentinels (with master_name) or cluster_nodes, not url and cluster_nodes"),
    ({"sentinels": ["s:26379"]}, "_gateway.redis.master_name: required with the other "
     "Sentinel field"),
    ({"url": "redis://r:1", "password": "p"}, "_gateway.redis.password: with url, write the "
     "credentials in the URL"),
    ({"cluster_nodes": ["r:7000"], "database": 1}, "_gateway.redis.database: a Redis Cluster "
     "has only database 0"),
    ({"cluster_nodes": ["r"]}, "_gateway.redis.cluster_nodes[0]: invalid address 'r': "
     "expected 'host:port'"),
])
def test_gateway_redis_errors_name_their_field(block, error):
    assert errors_of(document(_gateway={"redis": block})) == [error]


def test_gateway_block_is_read_with_seconds_as_floats():
    gateway = parse(
        document(
            _gateway={
                "listen": "127.0.0.1:8080",
                "admin_listen": "[::1]:9001",
                "workers": 2,
                "keepalive_timeout": 5,
                "client_header_timeout": 0.5,
                "max_body_bytes": 1024,
                "tls": {
                    "cert": "/etc/cert.pem",
                    "key": "/etc/key.pem",
                    "sni": [{"name": "a.example.com", "cert": "a.pem", "key": "a.key"}],
                },
                "redis": {"url": "redis://127.0.0.1:6379/0"},
            }
        )
    ).gateway
    assert gateway.listen == "127.0.0.1:8080"
    assert gateway.admin_listen == "[::1]:9001"
    assert gateway.workers == 2
    assert gateway.keepalive_timeout == 5.0 and type(gateway.keepalive_timeout) is float
    assert gateway.client_header_timeout == 0.5
    assert gateway.max_body_bytes == 1024
    assert gateway.tls == TLSSettings(
        cert="/etc/cert.pem",
        key="/etc/key.pem",
        sni=({"name": "a.example.com", "cert": "a.pem", "key": "a.key"},),
    )
    assert gateway.redis == RedisSettings(url="redis://127.0.0.1:6379/0")
    assert gateway.max_connections == GatewaySettings().max_connections


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"listen": "8000"}, "_gateway.listen: invalid address '8000': expected 'host:port'"),
        ({"admin_listen": "localhost:70000"}, "_gateway.admin_listen: invalid port 70000: must be between 0 and 65535"),
        ({"workers": 0}, "_gateway.workers: value should be between 1 and 1024"),
        ({"redis": {"url": "http://x"}}, "_gateway.redis.url: expected a redis://, rediss:// or unix:// URL"),
        ({"redis": "redis://x"}, "_gateway.redis: expected a record"),
        ({"tls": {"cert": "c"}}, "_gateway.tls.key: required with the other half of the pair"),
        ({"keepalive_timeout": "75s"}, "_gateway.keepalive_timeout: expected a number"),
        ({"client_header_timeout": 0}, "_gateway.client_header_timeout: value should be between 0.001 and 86400"),
        ({"max_header_bytes": 100}, "_gateway.max_header_bytes: value should be between 1024 and 16777216"),
        ({"threads": 4}, "_gateway.threads: unknown field"),
    ],
)  # fmt: skip
def test_gateway_errors(block, message):
    assert errors_of(document(_gateway=block)) == [message]


# --- schema hygiene -------------------------------------------------------------------


def _named_fields(record: Record, prefix: str):
    for name, field in record.fields.items():
        yield f"{prefix}.{name}", field
        inner = field
        while isinstance(inner, (Array, Map)):
            inner = inner.elements if isinstance(inner, Array) else inner.values
        if isinstance(inner, Record) and inner is not record:
            yield from _named_fields(inner, f"{prefix}.{name}")


def test_every_entity_field_has_a_one_line_description():
    undocumented = [
        path
        for path, field in _named_fields(entities.DOCUMENT, "document")
        if not field.description.strip() or "\n" in field.description
    ]
    assert undocumented == []


def test_plugin_config_is_a_dynamic_field():
    assert isinstance(entities.PLUGIN.fields["config"], Dynamic)


def test_health_checks_are_parsed_once_with_the_schemas_defaults():
    from fastgw.config.entities import health_checks

    checks = health_checks({"passive": {"unhealthy": {"tcp_failures": 2}}})
    # Kong's defaults, from the schema (the core and the checker both read these).
    assert checks.passive_unhealthy.http_statuses == {429, 500, 503}
    assert checks.active_unhealthy.http_statuses == {429, 404, 500, 501, 502, 503, 504, 505}
    assert checks.active_healthy.http_statuses == {200, 302}
    assert (checks.type, checks.timeout, checks.concurrency, checks.http_path) == ("http", 1.0, 10, "/")
    assert checks.passive_on and not checks.active_on
    assert not health_checks(None).passive_on
