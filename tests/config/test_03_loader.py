"""The loader: whole-document rules (names, references, plugins), vault
references, redaction, hashing, files and ``fastgw check``."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from config_docs import document, errors_of, parse, service

from fastgw.config.loader import (
    ConfigError,
    check_file,
    config_hash,
    load_config,
    parse_config,
    redacted_document,
)
from fastgw.config.model import PluginConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SERVICE_ID = "0b1e2e8e-58d1-4f6c-9a43-0c5c3d3a1f10"

# --- names and references -----------------------------------------------------------


def test_routes_nested_or_referencing_a_service_by_name_or_id():
    config = parse(
        document(
            services=[
                service("a", routes=[{"name": "nested", "paths": ["/a"]}]),
                service("b", id=SERVICE_ID),
            ],
            routes=[
                {"name": "by-name", "service": "a", "paths": ["/x"]},
                {"name": "by-id", "service": SERVICE_ID, "paths": ["/y"]},
                {"name": "no-service", "paths": ["/z"]},
            ],
        )
    )
    assert [(r.name, r.service) for r in config.routes] == [
        ("nested", "a"),
        ("by-name", "a"),
        ("by-id", "b"),
        ("no-service", None),
    ]
    assert config.service("b").id == SERVICE_ID
    assert config.service("zzz") is None


def test_unnamed_entities_are_named_by_id_or_document_path():
    config = parse(
        document(
            services=[
                {"url": "http://h", "routes": [{"paths": ["/a"]}]},
                {"url": "http://h", "id": SERVICE_ID},
            ],
            routes=[{"paths": ["/b"]}],
        )
    )
    assert [s.name for s in config.services] == ["services[0]", SERVICE_ID]
    assert [r.name for r in config.routes] == ["services[0].routes[0]", "routes[0]"]
    assert config.routes[0].service == "services[0]"


def test_routes_of_a_disabled_service_are_left_out():
    config = parse(
        document(
            services=[
                service("off", enabled=False, routes=[{"paths": ["/off"]}]),
                service("on", routes=[{"paths": ["/on"]}]),
            ]
        )
    )
    assert [s.enabled for s in config.services] == [False, True]
    assert [r.paths for r in config.routes] == [("/on",)]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            document(services=[service("a"), service("a")]),
            "services[1].name: duplicate service name 'a' (also at services[0].name)",
        ),
        (
            document(
                services=[service(routes=[{"name": "r", "paths": ["/"]}])],
                routes=[{"name": "r", "paths": ["/x"]}],
            ),
            "routes[0].name: duplicate route name 'r' (also at services[0].routes[0].name)",
        ),
        (
            document(upstreams=[{"name": "u"}, {"name": "u"}]),
            "upstreams[1].name: duplicate upstream name 'u' (also at upstreams[0].name)",
        ),
        (
            document(upstreams=[{"name": "u", "targets": [{"target": "h"}, {"target": "h:8000"}]}]),
            "upstreams[0].targets[1].target: duplicate target 'h:8000' "
            "(also at upstreams[0].targets[0].target)",
        ),
        (
            document(consumers=[{"username": "a"}, {"username": "a"}]),
            "consumers[1].username: duplicate consumer username 'a' (also at consumers[0].username)",
        ),
        (
            document(consumers=[{"custom_id": "c"}, {"custom_id": "c"}]),
            "consumers[1].custom_id: duplicate consumer custom_id 'c' "
            "(also at consumers[0].custom_id)",
        ),
        (
            document(
                consumers=[
                    {"username": "a", "keyauth_credentials": [{"key": "same-secret"}]},
                    {"username": "b", "keyauth_credentials": [{"key": "same-secret"}]},
                ]
            ),
            # The clashing key is a secret: the error shows where, never what.
            "consumers[1].keyauth_credentials[0].key: duplicate key-auth key "
            "(also at consumers[0].keyauth_credentials[0].key)",
        ),
        (
            document(consumers=[{"username": "a", "acls": [{"group": "g"}, {"group": "g"}]}]),
            "consumers[0].acls[1].group: duplicate acl group 'g' (also at consumers[0].acls[0].group)",
        ),
        (
            document(routes=[{"service": "missing", "paths": ["/"]}]),
            "routes[0].service: unknown service 'missing'",
        ),
        (
            document(services=[service(routes=[{"service": "svc", "paths": ["/"]}])]),
            "services[0].routes[0].service: not allowed on a route nested under a service",
        ),
    ],
)
def test_whole_document_errors(doc, message):
    assert errors_of(doc) == [message]


def test_the_same_acl_group_in_two_consumers_is_fine():
    doc = document(
        consumers=[
            {"username": "a", "acls": [{"group": "g"}]},
            {"username": "b", "acls": [{"group": "g"}]},
        ]
    )
    assert len(parse(doc).consumers) == 2


def test_every_error_is_reported_at_once():
    doc = {
        "_format_version": "3.0",
        "services": [
            service("a", retries=-1, routes=[{"paths": ["nope"]}, {"hosts": ["*.*"]}]),
            service("a"),
            "not a service",
        ],
        "routes": [{"service": "ghost", "paths": ["/"]}],
        "upstreams": [{"name": "u", "targets": [{"target": "h", "weight": -1}]}],
        "plugins": [{"name": "no-such-plugin"}],
        "extra": True,
    }
    assert errors_of(doc) == [
        "extra: unknown field",
        "services[0].retries: value should be between 0 and 32767",
        "services[0].routes[0].paths[0]: should start with: / (fixed path) or ~/ (regex path)",
        "services[0].routes[1].hosts[0]: invalid wildcard: must have at most one wildcard",
        "services[2]: expected a record",
        "upstreams[0].targets[0].weight: value should be between 0 and 65535",
        "plugins[0].name: unknown plugin 'no-such-plugin'",
        "services[1].name: duplicate service name 'a' (also at services[0].name)",
        "routes[0].service: unknown service 'ghost'",
    ]


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (None, "_format_version: required field missing"),
        ("2.0", "_format_version: expected one of: 1.1, 2.1, 3.0"),
        (3.0, '_format_version: expected a string: write "3.0" in quotes'),
    ],
)
def test_format_version_is_one_kong_reads(version, message):
    doc: dict[str, Any] = {"services": []}
    if version is not None:
        doc["_format_version"] = version
    assert errors_of(doc) == [message]
    for version in ("1.1", "2.1", "3.0"):
        assert parse({"_format_version": version}).services == ()


@pytest.mark.parametrize("doc", [None, [], "services: []", 3])
def test_a_document_that_is_not_a_mapping_is_an_error(doc):
    assert errors_of(doc) == ["document: expected a mapping of entity kinds (a YAML/JSON object)"]


# --- plugins ---------------------------------------------------------------------------


def test_unknown_plugins_are_errors_wherever_they_appear():
    doc = document(
        services=[service(plugins=[{"name": "no-such-limiter"}], routes=[
            {"paths": ["/"], "plugins": [{"name": "key-auth2"}]}
        ])],
        consumers=[{"username": "c", "plugins": [{"name": "acl-x"}]}],
        plugins=[{"name": "Cors"}],
    )  # fmt: skip
    assert errors_of(doc) == [
        "services[0].routes[0].plugins[0].name: unknown plugin 'key-auth2'",
        "services[0].plugins[0].name: unknown plugin 'no-such-limiter'",
        "consumers[0].plugins[0].name: unknown plugin 'acl-x'",
        "plugins[0].name: unknown plugin 'Cors'",
    ]


def test_plugins_are_flattened_with_their_scope(fake_plugin):
    doc = document(
        services=[
            service(
                "svc",
                plugins=[{"name": fake_plugin, "config": {"limit": 1}}],
                routes=[{"name": "r", "paths": ["/"], "plugins": [{"name": fake_plugin}]}],
            )
        ],
        consumers=[{"username": "alice", "plugins": [{"name": fake_plugin, "service": "svc"}]}],
        plugins=[
            {"name": fake_plugin, "enabled": False, "instance_name": "global-auth"},
            {"name": fake_plugin, "route": "r", "consumer": "alice", "tags": ["t"]},
        ],
    )
    defaults = {"header_name": "apikey", "api_key": None, "limit": 10}
    plugins = parse(doc).plugins
    assert plugins == (
        PluginConfig(fake_plugin, {**defaults, "limit": 1}, service="svc"),
        PluginConfig(fake_plugin, defaults, route="r"),
        PluginConfig(fake_plugin, defaults, service="svc", consumer="alice"),
        PluginConfig(fake_plugin, defaults, enabled=False, instance_name="global-auth"),
        PluginConfig(fake_plugin, defaults, route="r", consumer="alice", tags=("t",)),
    )
    assert plugins[0].protocols == ("grpc", "grpcs", "http", "https")


def test_plugin_config_is_checked_against_the_plugin_schema(fake_plugin):
    doc = document(
        plugins=[
            {"name": fake_plugin, "config": {"limit": 0, "colour": "red"}},
            {"name": fake_plugin, "config": {"header_name": "host"}, "service": "svc"},
        ],
        services=[service()],
    )
    assert errors_of(doc) == [
        "plugins[0].config.colour: unknown field",
        "plugins[0].config.limit: value should be between 1 and 100",
        "plugins[1].config.header_name: must not be 'host'",
    ]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            document(plugins=[{"name": "test-auth", "service": "nope"}]),
            "plugins[0].service: unknown service 'nope'",
        ),
        (
            document(plugins=[{"name": "test-auth", "route": "nope"}]),
            "plugins[0].route: unknown route 'nope'",
        ),
        (
            document(plugins=[{"name": "test-auth", "consumer": "nope"}]),
            "plugins[0].consumer: unknown consumer 'nope'",
        ),
        (
            document(services=[service(plugins=[{"name": "test-auth", "service": "svc"}])]),
            "services[0].plugins[0].service: not allowed on a plugin nested under a service",
        ),
        (
            document(plugins=[{"name": "test-auth"}, {"name": "test-auth"}]),
            "plugins[1]: duplicate plugin 'test-auth' for the global scope (also at plugins[0])",
        ),
        (
            document(
                services=[service(plugins=[{"name": "test-auth"}])],
                plugins=[{"name": "test-auth", "service": "svc"}],
            ),
            "plugins[0]: duplicate plugin 'test-auth' for service 'svc' "
            "(also at services[0].plugins[0])",
        ),
        (
            document(
                plugins=[
                    {"name": "test-auth", "instance_name": "x"},
                    {"name": "test-auth", "instance_name": "x", "service": "svc"},
                ],
                services=[service()],
            ),
            "plugins[1].instance_name: duplicate plugin instance_name 'x' "
            "(also at plugins[0].instance_name)",
        ),
        (
            document(consumers=[{"custom_id": "c", "plugins": [{"name": "test-auth"}]}]),
            "consumers[0].username: required when the consumer has plugins",
        ),
        (
            document(
                consumers=[{"custom_id": "c", "id": SERVICE_ID}],
                plugins=[{"name": "test-auth", "consumer": SERVICE_ID}],
            ),
            "plugins[0].consumer: the consumer needs a username to scope plugins",
        ),
    ],
)
def test_plugin_scope_errors(fake_plugin, doc, message):
    assert errors_of(doc) == [message]


# --- vault references ----------------------------------------------------------------


def vault_document() -> dict:
    return document(
        consumers=[
            {
                "username": "alice",
                "keyauth_credentials": [{"key": "{vault://env/alice-key}"}],
                "basicauth_credentials": [{"username": "alice", "password": "plain-pw"}],
                "jwt_secrets": [{"key": "iss", "secret": "jwt-secret"}],
            }
        ],
        plugins=[{"name": "test-auth", "config": {"api_key": "{vault://env/UPSTREAM_KEY}"}}],
        _gateway={"redis": {"url": "redis://:pw@127.0.0.1:6379/0"}},
    )


def test_vault_references_resolve_from_the_given_environment(fake_plugin):
    config = parse(vault_document(), env={"ALICE_KEY": "k-alice", "UPSTREAM_KEY": "sk-up"})
    assert config.consumers[0].keyauth_credentials[0]["key"] == "k-alice"
    assert config.plugins[0].config["api_key"] == "sk-up"


def test_vault_references_default_to_the_process_environment(fake_plugin, monkeypatch):
    monkeypatch.setenv("ALICE_KEY", "from-os")
    monkeypatch.setenv("UPSTREAM_KEY", "up")
    config = parse_config(vault_document())
    assert config.consumers[0].keyauth_credentials[0]["key"] == "from-os"


def test_every_missing_vault_variable_is_an_error(fake_plugin):
    assert errors_of(vault_document(), env={}) == [
        "consumers[0].keyauth_credentials[0].key: cannot resolve {vault://env/alice-key}: "
        "environment variable ALICE_KEY is not set",
        "plugins[0].config.api_key: cannot resolve {vault://env/UPSTREAM_KEY}: "
        "environment variable UPSTREAM_KEY is not set",
    ]


def test_vault_reference_outside_a_referenceable_field_is_an_error():
    doc = document(services=[service(name="{vault://env/NAME}")])
    assert errors_of(doc, env={"NAME": "x"}) == [
        "services[0].name: vault references are not allowed in this field"
    ]


# --- redaction -----------------------------------------------------------------------


def test_redacted_document_hides_secrets_and_shows_references(fake_plugin):
    doc = vault_document()
    original = copy.deepcopy(doc)
    config = parse(doc, env={"ALICE_KEY": "k-alice", "UPSTREAM_KEY": "sk-up"})
    redacted = redacted_document(config)
    consumer = redacted["consumers"][0]
    assert consumer["keyauth_credentials"] == [{"key": "{vault://env/alice-key}"}]
    assert consumer["basicauth_credentials"] == [{"username": "alice", "password": "<redacted>"}]
    assert consumer["jwt_secrets"] == [{"key": "iss", "secret": "<redacted>"}]
    assert redacted["plugins"] == [
        {"name": "test-auth", "config": {"api_key": "{vault://env/UPSTREAM_KEY}"}}
    ]
    assert redacted["_gateway"] == {"redis": {"url": "<redacted>"}}
    # Neither the resolved values nor the literal secrets appear anywhere.
    text = orjson.dumps(redacted).decode()
    for secret in ("k-alice", "sk-up", "plain-pw", "jwt-secret", ":pw@"):
        assert secret not in text
    assert doc == original and config.source == original


def test_redacted_document_keeps_everything_else_as_written():
    doc = document(services=[service(routes=[{"paths": ["/a"], "strip_path": False}])])
    assert redacted_document(parse(doc)) == doc


def test_plugin_secret_written_literally_is_redacted(fake_plugin):
    config = parse(document(plugins=[{"name": fake_plugin, "config": {"api_key": "sk-1"}}]))
    assert redacted_document(config)["plugins"][0]["config"] == {"api_key": "<redacted>"}


# --- hashing -------------------------------------------------------------------------


def test_config_hash_is_xxh3_of_the_sorted_document_and_ignores_key_order():
    a = {"_format_version": "3.0", "services": [{"name": "s", "url": "http://h"}]}
    b = {"services": [{"url": "http://h", "name": "s"}], "_format_version": "3.0"}
    assert config_hash(a) == config_hash(b)
    assert re.fullmatch(r"[0-9a-f]{16}", config_hash(a))
    assert parse(a).hash == config_hash(a)
    changed = copy.deepcopy(a)
    changed["services"][0]["url"] = "http://h2"
    assert config_hash(changed) != config_hash(a)


# --- files ---------------------------------------------------------------------------

YAML_TEXT = """\
_format_version: "3.0"
services:
  - name: svc
    url: http://127.0.0.1:9000
    routes:
      - name: r
        paths: [/v1]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_and_json_files_give_the_same_config(tmp_path):
    from_yaml = load_config(write(tmp_path, "kong.yml", YAML_TEXT))
    json_text = orjson.dumps(yaml.safe_load(YAML_TEXT)).decode()
    from_json = load_config(write(tmp_path, "kong.json", json_text))
    # JSON is recognised by content too, whatever the extension.
    from_sniffed = load_config(write(tmp_path, "kong.conf", json_text))
    assert from_yaml.routes[0].paths == ("/v1",)
    assert from_yaml.hash == from_json.hash == from_sniffed.hash
    assert from_yaml.services == from_json.services == from_sniffed.services


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "bad.yaml",
            "services: [\n  - a: b\n  c",
            "invalid YAML at line 2, column 3: did not find expected node content",
        ),
        (
            "bad.json",
            '{"_format_version": "3.0",}',
            "invalid JSON at line 1, column 26: trailing comma is not allowed",
        ),
        ("empty.yaml", "", "document: expected a mapping"),
    ],
)
def test_unparsable_files_are_config_errors(tmp_path, name, text, message):
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.errors) == 1
    assert message in caught.value.errors[0]


def test_missing_file_is_a_config_error(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing)
    assert caught.value.errors == [f"{missing}: cannot read: No such file or directory"]


def test_check_file_prints_a_summary_and_exits_0(tmp_path):
    code, text = check_file(write(tmp_path, "kong.yaml", YAML_TEXT))
    assert code == 0
    assert re.fullmatch(
        r"config ok: 1 service, 1 route, 0 upstreams, 0 consumers, 0 plugins "
        r"\(hash [0-9a-f]{16}\)",
        text,
    )


def test_check_file_lists_every_error_and_exits_1(tmp_path):
    text = YAML_TEXT.replace("paths: [/v1]", "paths: [v1]\n        colour: red")
    code, output = check_file(write(tmp_path, "kong.yaml", text))
    assert code == 1
    assert output.splitlines() == [
        "services[0].routes[0].colour: unknown field",
        "services[0].routes[0].paths[0]: should start with: / (fixed path) or ~/ (regex path)",
    ]


def test_examples_load_and_agree():
    # kong-style.json is the quickstart written as JSON: the same config.
    from_yaml = load_config(EXAMPLES / "quickstart.yaml")
    from_json = load_config(EXAMPLES / "kong-style.json")
    assert from_yaml == from_json
    assert [route.name for route in from_yaml.routes] == ["openai", "anthropic", "api", "mcp"]
    assert (from_yaml.gateway.listen, from_yaml.gateway.admin_listen) == (
        "0.0.0.0:8000", "127.0.0.1:8001")


# --- robustness ------------------------------------------------------------------------


def rich_document() -> dict:
    return document(
        services=[
            service(
                "svc",
                plugins=[{"name": "test-auth"}],
                routes=[
                    {"name": "r", "paths": ["/a", "~/b$"], "headers": {"x-a": ["1"]}},
                    {"hosts": ["*.h.com"], "methods": ["GET"]},
                ],
            )
        ],
        routes=[{"service": "svc", "paths": ["/c"]}],
        upstreams=[{"name": "u", "targets": [{"target": "h:1"}], "healthchecks": {"active": {}}}],
        consumers=[
            {
                "username": "c",
                "keyauth_credentials": [{"key": "k"}],
                "acls": [{"group": "g"}],
                "plugins": [{"name": "test-auth"}],
            }
        ],
        plugins=[{"name": "test-auth", "route": "r", "config": {"limit": 2}}],
        _gateway={
            "tls": {"cert": "c", "key": "k", "sni": [{"name": "a", "cert": "c", "key": "k"}]}
        },
    )


def _leaf_paths(value: Any, prefix: tuple = ()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaf_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaf_paths(item, (*prefix, index))


@pytest.mark.parametrize("replacement", [None, 7, "x", [], {}, [None], {"k": None}, True])
def test_any_wrong_value_anywhere_gives_config_errors_never_a_crash(fake_plugin, replacement):
    base = rich_document()
    assert parse(base).routes  # the base document is valid
    for keys in list(_leaf_paths(base))[1:]:
        doc = copy.deepcopy(base)
        target = doc
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = replacement
        try:
            parse(doc)
        except ConfigError as exc:
            assert all(": " in line for line in exc.errors), exc.errors


def test_auth_plugins_cannot_be_scoped_to_a_consumer():
    doc = document(
        consumers=[{"username": "alice", "plugins": [{"name": "key-auth"}]}],
        plugins=[{"name": "acl", "consumer": "alice", "config": {"allow": ["x"]}}],
    )
    assert errors_of(doc) == [
        "consumers[0].plugins[0]: plugin 'key-auth' cannot be scoped to a consumer",
        "plugins[0].consumer: plugin 'acl' cannot be scoped to a consumer",
    ]
