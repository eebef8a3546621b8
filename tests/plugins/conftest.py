"""Builders shared by the plugin tests: configs go through the real loader.

A plugin's test folder names its plugin with a ``plugin_name`` fixture (and
may give the documents ``consumers``, or other entities with
``plugin_document_extra``); these fixtures then build handlers and validated
configs for it.

An integration module that defines ``gateway_routes`` gets ``gateway``: one
real gateway for the module, with those routes in front of ``upstream`` and
the folder's ``consumers`` (a module may define ``gateway_consumers`` instead).
"""

import pytest

from fastgw.config.loader import ConfigError, parse_config
from fastgw.plugins import handler_class
from fastgw.plugins.state import ConfigState
from fastgw.testing import GatewayProcess, UpstreamServer, service_doc


@pytest.fixture(scope="session")
def consumers():
    """The consumers of the folder's test documents; a folder that has some overrides this."""
    return []


@pytest.fixture
def plugin_document_extra(consumers):
    """Other top-level entities of the test documents: by default the folder's consumers."""
    return {"consumers": consumers} if consumers else {}


@pytest.fixture
def plugin_document(plugin_name, plugin_document_extra):
    def document(config: dict | None) -> dict:
        plugin = {"name": plugin_name}
        if config is not None:
            plugin["config"] = config
        return {"_format_version": "3.0", **plugin_document_extra, "plugins": [plugin]}

    return document


@pytest.fixture
def handler(plugin_name, plugin_document):
    """A handler for a config (defaults filled by the loader)."""

    def build(**config):
        parsed = parse_config(plugin_document(config))
        entry = parsed.plugins[0]
        return handler_class(plugin_name)(entry.config, ConfigState(parsed), entry)

    return build


@pytest.fixture
def validated(plugin_document):
    """A config as the loader validates it (None: no config at all)."""
    return lambda config: parse_config(plugin_document(config)).plugins[0].config


@pytest.fixture
def config_errors(plugin_document):
    """The loader's errors for a config, or [] when it is valid."""

    def errors(config):
        try:
            parse_config(plugin_document(config))
        except ConfigError as exc:
            return exc.errors
        return []

    return errors


def _nested_fields(record):
    for field in record.fields.values():
        yield field
        if hasattr(field, "fields"):
            yield from _nested_fields(field)


@pytest.fixture
def schema_fields():
    """Every field of a schema record, those of its nested records included."""
    return _nested_fields


@pytest.fixture(scope="module")
def upstream():
    """One upstream server for the module, recording what the gateway sends it."""
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateway_consumers(consumers):
    """The consumers of the module's gateway: by default, the folder's."""
    return consumers


@pytest.fixture(scope="module")
def gateway(upstream, gateway_routes, gateway_consumers):
    """One real gateway for the module: its routes in front of ``upstream``."""
    doc = service_doc(upstream.port, routes=gateway_routes)
    doc["consumers"] = gateway_consumers
    with GatewayProcess(doc) as gw:
        yield gw
