"""Kong's own kind of declarative files, as a Kong user brings them: the
files under files/ (written for the project in Kong's style) load in every
format version, build the same gateway, and a running gateway serves them as
Kong would; the Kong-only files under files/refused/ are refused with an
error that says what is not supported and why."""

from __future__ import annotations

import base64
import copy
import dataclasses
import os
from pathlib import Path

import orjson
import pytest
import yaml

from fastgw.config.entities import DOCUMENT
from fastgw.config.loader import check_file, load_config
from fastgw.plugins import KNOWN_PLUGINS
from fastgw.testing import GatewayProcess, UpstreamServer, free_port

FILES = Path(__file__).parent / "files"
VERSIONS = ("3.0", "2.1", "1.1")
ENV = {"KONG_COMPAT_ALICE_KEY": "alice-key", "KONG_COMPAT_OPENAI_KEY": "sk-compat"}


@pytest.fixture(autouse=True)
def vault_variables(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def kong_file(version: str) -> Path:
    return FILES / f"kong-{version}.yaml"


@pytest.mark.parametrize("version", VERSIONS)
def test_fastgw_check_accepts_every_format_version(version):
    code, text = check_file(kong_file(version))
    assert code == 0, text
    assert text.startswith("config ok: 2 services, 14 routes, 1 upstream, 3 consumers")


def _without_source(config):
    return dataclasses.replace(config, source={}, hash="")


def test_the_three_versions_build_the_same_gateway():
    configs = [_without_source(load_config(kong_file(version))) for version in VERSIONS]
    assert configs[0] == configs[1] == configs[2]
    regex_routes = [route for route in configs[0].routes if route.paths[0].startswith("~")]
    assert [route.name for route in regex_routes] == ["order-by-id"]


def test_the_file_covers_every_entity_and_plugin_fastgw_implements():
    doc = yaml.safe_load(kong_file("3.0").read_text())
    kinds = set(DOCUMENT.fields) - {"_format_version", "_transform", "_gateway", "keys"}
    assert kinds <= doc.keys() | {"keys"}, kinds - doc.keys()
    assert "keys" in doc
    used = {plugin["name"] for plugin in _all_plugins(doc)}
    assert used == set(KNOWN_PLUGINS), set(KNOWN_PLUGINS) ^ used
    credentials = {kind for consumer in doc["consumers"] for kind in consumer
                   if kind.endswith(("_credentials", "_secrets")) or kind == "acls"}
    assert credentials == {"keyauth_credentials", "basicauth_credentials", "jwt_secrets",
                           "hmacauth_credentials", "acls"}


def _all_plugins(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "plugins" and isinstance(value, list):
                yield from value
            yield from _all_plugins(value)
    elif isinstance(node, list):
        for item in node:
            yield from _all_plugins(item)


@pytest.mark.parametrize("path", sorted((FILES / "refused").glob("*.yaml")),
                         ids=lambda path: path.stem)
def test_kong_only_files_are_refused_saying_why(path):
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    code, text = check_file(path)
    assert code == 1
    assert any(line.startswith(expected) for line in text.splitlines()), text
    _, advice = check_file(path, explain=True)
    assert len(advice.splitlines()) == len(text.splitlines())


# --- served as Kong would ---------------------------------------------------------


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module", params=VERSIONS)
def gateway(request, upstream, tmp_path_factory):
    """The file as written, with only addresses changed: targets to the test's
    upstream, the TLS listener and the file log to free places."""
    doc = yaml.safe_load(kong_file(request.param).read_text())
    doc = copy.deepcopy(doc)
    doc["upstreams"][0]["targets"] = [{"target": f"127.0.0.1:{upstream.port}"}]
    for plugin in doc["plugins"]:
        if plugin["name"] == "file-log":
            plugin["config"]["path"] = str(tmp_path_factory.mktemp("log") / "access.log")
    doc["_gateway"] = {"tls": {"listen": f"127.0.0.1:{free_port()}"}}
    with GatewayProcess(doc, env={**os.environ, **ENV}) as gw:
        yield gw


def test_a_regex_path_of_any_version_routes_as_in_kong_3(gateway, upstream):
    # The case: a 2.x regex path was a prefix, so /orders/42 missed it.
    status, _, _ = gateway.request("GET", "/orders/42")
    assert status == 200
    sent = upstream.requests[-1]
    assert sent.target == "/orders/42"
    assert sent.header("host") == "orders.internal"  # the upstream's host_header


@pytest.mark.parametrize(("headers", "status", "message"), [
    ({}, 401, "No API key found in request"),
    ({"api-key": "alice-key"}, 200, None),       # key_names [api_key], through the vault
    ({"api_key": "bob-key"}, 403, "You cannot consume this service"),  # acl
])
def test_auth_and_acl(gateway, headers, status, message):
    got, _, body = gateway.request("POST", "/orders", b"{}", headers)
    assert got == status
    if message is not None:
        assert orjson.loads(body) == {"message": message}


def test_basic_auth_and_termination(gateway):
    credentials = base64.b64encode(b"alice:alice-password").decode()
    assert gateway.request("GET", "/basic", headers={
        "Authorization": f"Basic {credentials}"})[0] == 200
    assert gateway.request("GET", "/basic")[0] == 401
    status, _, body = gateway.request("GET", "/maintenance")
    assert (status, orjson.loads(body)) == (503, {"message": "Down for maintenance"})
    status, headers, body = gateway.request("GET", "/oidc")
    assert (status, headers["www-authenticate"], orjson.loads(body)) == (
        401, "Bearer", {"message": "Unauthorized"})
    listing = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}'
    status, _, body = gateway.request("POST", "/mcp", listing,
                                      {"Content-Type": "application/json"})
    assert [tool["name"] for tool in orjson.loads(body)["result"]["tools"]] == ["get_health"]
    status, headers, _ = gateway.request("POST", "/protected-mcp", listing)
    assert (status, headers["www-authenticate"]) == (401, 'Bearer resource_metadata="https://'
                                                     'mcp.compat.test/protected-mcp/.well-known/'
                                                     'oauth-protected-resource"')
    status, _, body = gateway.request("GET", "/mtls")  # plain HTTP: no certificate
    assert (status, orjson.loads(body)) == (401, {"message": "No required TLS certificate was sent"})


def test_transformers_on_the_host_route(gateway, upstream):
    status, headers, _ = gateway.request("GET", "/transformed",
                                         headers={"Host": "api.compat.test"})
    assert status == 200
    assert upstream.requests[-1].header("x-compat") == "yes"
    assert headers["x-compat-response"] == "yes"
    assert headers["x-compat-id"]
