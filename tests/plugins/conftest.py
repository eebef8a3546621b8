"""Builders shared by the plugin tests: configs go through the real loader.

A plugin's test folder names its plugin with a ``plugin_name`` fixture (and
may add documents' other entities with ``plugin_document_extra``); these
fixtures then build handlers and validated configs for it.
"""

import pytest

from fastgw.config.loader import ConfigError, parse_config
from fastgw.plugins import handler_class
from fastgw.plugins.state import ConfigState


@pytest.fixture
def plugin_document_extra():
    """Other top-level entities of the test documents (consumers, ...)."""
    return {}


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
