"""Kong's declarative format versions ("1.1", "2.1", "3.0"), the migration of
old regex paths, and the annotations and exports Kong accepts."""

from __future__ import annotations

import hashlib

import pytest
from config_docs import errors_of, parse

from fastgw._core.router import Router
from fastgw.config.migrations import migrate_path


@pytest.mark.parametrize(("old", "new"), [
    ("/users", "/users"),                       # plain prefixes stay
    ("/a-b_c.d~e/%20x", "/a-b_c.d~e/%20x"),     # every character of a 2.x prefix
    (r"/users/\d+", r"~/users/\d+"),
    ("/status/(?<code>[0-9]+)", "~/status/(?<code>[0-9]+)"),
    ("/v1/*", "~/v1/*"),
    # Percent-escapes in a migrated regex are decoded once, as Kong 3 does:
    # unreserved characters become themselves (escaped if a regex meta),
    # reserved ones stay escaped with upper-case hex.
    ("/caf%c3%a9s/(x|y)", "~/caf\u00c3\u00a9s/(x|y)"),
    ("/a%2eb/.+", r"~/a\.b/.+"),
    ("/a%2fb/.+", "~/a%2Fb/.+"),
    ("/x%41y/$", "~/xAy/$"),
])
def test_old_paths_are_migrated_as_kong_3_does(old, new):
    assert migrate_path(old) == new


def _routes_doc(version: str) -> dict:
    return {
        "_format_version": version,
        "services": [{"name": "users", "url": "http://127.0.0.1:9000",
                      "routes": [{"name": "by-id", "paths": [r"/users/\d+"]}]}],
        "routes": [{"name": "top", "service": "users", "paths": ["/orders/[0-9]+", "/plain"]}],
    }


@pytest.mark.parametrize("version", ["1.1", "2.1"])
def test_a_2x_regex_path_is_a_regex(version):
    config = parse(_routes_doc(version))
    paths = {route.name: route.paths for route in config.routes}
    assert paths == {"by-id": (r"~/users/\d+",), "top": ("~/orders/[0-9]+", "/plain")}
    services = {service.name: service for service in config.services}
    router = Router([(route, services[route.service], route.name) for route in config.routes])
    assert router.match(b"GET", None, b"/users/42", None).payload == "by-id"
    assert router.match(b"GET", None, b"/users/abc", None) is None
    assert router.match(b"GET", None, b"/orders/7", None).payload == "top"
    # The document as written stays the config's source.
    assert config.source["services"][0]["routes"][0]["paths"] == [r"/users/\d+"]


def test_a_3_0_path_is_never_migrated():
    # In 3.0 a path without ~ is a prefix, whatever its characters.
    config = parse(_routes_doc("3.0"))
    assert config.routes[0].paths == (r"/users/\d+",)


def test_an_invalid_old_regex_is_reported_at_its_path():
    doc = _routes_doc("2.1")
    doc["services"][0]["routes"][0]["paths"] = ["/users/(unclosed"]
    [error] = errors_of(doc)
    assert error.startswith("services[0].routes[0].paths[0]: invalid regex '/users/(unclosed'")


def test_comments_and_ignored_content_are_accepted_everywhere():
    doc = {
        "_format_version": "3.0",
        "_comment": "exported by hand",
        "_ignore": [{"anything": [1, 2]}, "at all"],
        "services": [{
            "name": "s", "url": "http://127.0.0.1:9000", "_comment": "the service",
            "created_at": 1700000000, "updated_at": 1700000001,
            "routes": [{"name": "r", "paths": ["/"], "_ignore": [{"x": 1}],
                        "plugins": [{"name": "cors", "_comment": "", "created_at": 1}]}],
        }],
        "upstreams": [{"name": "u", "_comment": "x",
                       "targets": [{"target": "127.0.0.1:1", "created_at": 1.5}]}],
        "consumers": [{"username": "c", "created_at": 1,
                       "keyauth_credentials": [{"key": "k", "created_at": 1, "_comment": "x"}]}],
    }
    config = parse(doc)
    assert config.routes[0].name == "r"
    assert config.consumers[0].keyauth_credentials[0] == {
        "id": None, "key": "k", "ttl": None, "created_at": 1, "tags": None}


def test_annotations_are_still_typed():
    doc = {"_format_version": "3.0", "_comment": 3,
           "services": [{"name": "s", "url": "http://h", "_ignore": "not a list",
                         "created_at": "yesterday"}]}
    assert errors_of(doc) == [
        "_comment: expected a string",
        "services[0]._ignore: expected an array",
        "services[0].created_at: expected a number",
    ]


CONSUMER_ID = "2f0b4e6c-6a57-4a73-9a1e-8f0d1c2b3a4e"


def _kong_export(password: str, consumer_id: str | None = CONSUMER_ID) -> dict:
    consumer = {"username": "alice",
                "basicauth_credentials": [{"username": "alice", "password": password}]}
    if consumer_id is not None:
        consumer["id"] = consumer_id
    return {"_format_version": "3.0", "_transform": False, "consumers": [consumer]}


def test_transform_false_reads_basic_auth_passwords_as_kong_stores_them():
    from fastgw.plugins.basic_auth.handler import _password_matches

    stored = hashlib.sha1(("s3cret" + CONSUMER_ID).encode()).hexdigest()
    consumer = parse(_kong_export(stored.upper())).consumers[0]
    credential = consumer.basicauth_credentials[0]
    assert credential["password"] is None and credential["password_sha1"] == stored
    assert _password_matches(consumer, credential, "s3cret")
    assert not _password_matches(consumer, credential, stored)
    # _transform: true (the default) keeps the password as written.
    plain = parse({**_kong_export("s3cret"), "_transform": True}).consumers[0]
    assert _password_matches(plain, plain.basicauth_credentials[0], "s3cret")


def test_transform_false_needs_a_hash_and_the_consumer_id():
    assert errors_of(_kong_export("s3cret")) == [
        "consumers[0].basicauth_credentials[0].password: with _transform: false, expected "
        "Kong's stored hash (40 hex digits); remove _transform to write the password"]
    assert errors_of(_kong_export("a" * 40, consumer_id=None)) == [
        "consumers[0].id: required with _transform: false: Kong's basic-auth password "
        "hashes are salted with the consumer's id"]


def test_a_nested_credential_may_name_its_own_consumer():
    doc = {"_format_version": "3.0", "consumers": [{
        "username": "alice", "id": CONSUMER_ID,
        "keyauth_credentials": [{"key": "k1", "consumer": "alice"},
                                {"key": "k2", "consumer": {"id": CONSUMER_ID}}],
        "acls": [{"group": "g", "consumer": CONSUMER_ID}],
        "hmacauth_credentials": [{"username": "a", "secret": "s", "consumer": "alice"}],
    }]}
    consumer = parse(doc).consumers[0]
    assert [c["key"] for c in consumer.keyauth_credentials] == ["k1", "k2"]
    assert "consumer" not in consumer.keyauth_credentials[0]


def test_a_nested_credential_naming_another_consumer_is_an_error():
    doc = {"_format_version": "3.0", "consumers": [
        {"username": "alice", "keyauth_credentials": [{"key": "k1", "consumer": "bob"}]},
        {"username": "bob", "jwt_secrets": [{"key": "i", "secret": "s",
                                             "consumer": {"name": "bob"}}]}]}
    assert errors_of(doc) == [
        "consumers[1].jwt_secrets[0].consumer: expected the consumer's id or username, "
        "or {id: ...}",
        "consumers[0].keyauth_credentials[0].consumer: must name the consumer it is nested "
        "under",
    ]


# --- what Kong accepts that fastgw used to refuse ---------------------------------


def test_host_labels_have_no_length_bound_as_in_kong():
    long_label = "a" * 64
    doc = {"_format_version": "3.0",
           "services": [{"name": "s", "host": f"{long_label}.example.com"}],
           "upstreams": [{"name": f"{long_label}-pool"}]}
    assert parse(doc).services[0].host == f"{long_label}.example.com"
    for bad in ("ends-.example.com", "a..b", "under_score-"):
        doc = {"_format_version": "3.0", "services": [{"name": "s", "host": bad}]}
        assert errors_of(doc) == [f"services[0].host: invalid host '{bad}': expected a host "
                                  "name or an IP address (no port)"]


def test_regex_priority_above_2_31():
    doc = {"_format_version": "3.0", "routes": [
        {"name": "r", "paths": ["~/x"], "regex_priority": 2**31 + 5}]}
    assert parse(doc).routes[0].regex_priority == 2**31 + 5


# --- what fastgw refuses, saying why ------------------------------------------------


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("partials", [{"name": "p", "type": "redis-ee"}], "Kong Enterprise partials"),
    ("_info", {"select_tags": ["a"]}, "decK's file metadata"),
    ("_workspace", "default", "Kong Enterprise workspaces"),
    ("_konnect", {"control_plane_name": "cp"}, "Konnect control-plane settings"),
])
def test_kong_only_keys_are_refused_with_the_reason(key, value, reason):
    [error] = errors_of({"_format_version": "3.0", key: value})
    assert error.startswith(f"{key}: not supported by fastgw: {reason}")


@pytest.mark.parametrize(("name", "message"), [
    ("oauth2-introspection", "plugin 'oauth2-introspection' is a Kong Enterprise plugin, not "
                             "part of fastgw; the closest fastgw plugin is openid-connect "
                             "(auth_methods: introspection)"),
    ("oauth2", "plugin 'oauth2' is a Kong plugin fastgw does not implement: fastgw is not an "
               "OAuth 2.0 authorization server; validate tokens with 'jwt'"),
    ("no-such-plugin", "unknown plugin 'no-such-plugin'"),
])
def test_plugins_fastgw_lacks_are_named_for_what_they_are(name, message):
    assert errors_of({"_format_version": "3.0", "plugins": [{"name": name}]}) == [
        f"plugins[0].name: {message}"]


def test_check_explain_says_what_to_change(tmp_path):
    from fastgw.config.loader import check_file

    path = tmp_path / "kong.yml"
    path.write_text(
        '_format_version: "3.0"\n'
        "_workspace: default\n"
        "services:\n"
        "- name: s\n"
        "  url: http://h\n"
        "  tls_verify_depth: 2\n"
        "  routes:\n"
        "  - name: r\n"
        "    paths: [/a]\n"
        "    sources: [{ip: 10.0.0.1}]\n"
        "    plugins:\n"
        "    - name: key-auth\n"
        "      config: {bogus: 1}\n"
        "  - {name: r, paths: [/b], protocols: [tcp]}\n")
    code, plain = check_file(path)
    code_explained, explained = check_file(path, explain=True)
    assert code == code_explained == 1
    assert len(plain.splitlines()) == len(explained.splitlines()) == 6
    assert explained.splitlines() == [
        "_workspace: remove it (Kong Enterprise workspaces; fastgw has one configuration)",
        "services[0].tls_verify_depth: not supported; remove it (verification uses the full "
        "chain)",
        "services[0].routes[0].sources: fastgw has no stream (TCP/TLS) routes; remove it",
        "services[0].routes[0].plugins[0].config.bogus: remove 'bogus': fastgw has no such "
        "field here",
        "services[0].routes[1].protocols[0]: use one of: http, https",
        "services[0].routes[1].name: make the route name 'r' unique (it is also at "
        "services[0].routes[0].name); Kong refuses the duplicate too",
    ]


def test_kong_s_sentinel_and_cluster_settings_load_and_the_rest_is_explained():
    from fastgw.config.explain import explain

    sentinel = {"host": "127.0.0.1", "sentinel_master": "mymaster", "sentinel_role": "master",
                "sentinel_nodes": [{"host": "10.0.0.5", "port": 26379}],
                "keepalive_pool_size": 256, "cluster_max_redirections": 5}
    cluster = {"cluster_nodes": [{"ip": "10.0.0.6", "port": 7000}, {"ip": "10.0.0.7"}],
               "connect_timeout": 500, "read_timeout": 800, "send_timeout": 800}
    doc = {"_format_version": "3.0", "plugins": [
        {"name": "rate-limiting", "config": {"minute": 5, "policy": "redis", "redis": sentinel}},
        {"name": "proxy-cache", "config": {"strategy": "redis", "redis": cluster}},
    ]}
    first, second = parse(doc).plugins
    assert first.config["redis"]["sentinel_nodes"] == [{"host": "10.0.0.5", "port": 26379}]
    assert second.config["redis"]["cluster_nodes"][1] == {"ip": "10.0.0.7", "port": 6379}
    doc["plugins"][0]["config"]["redis"] = {**sentinel, "connection_is_proxied": True}
    error, = errors_of(doc)
    assert explain(error) == (
        "plugins[0].config.redis.connection_is_proxied: remove or change it: not supported by "
        "fastgw: connect to Redis, its Sentinels or its Cluster nodes directly")
