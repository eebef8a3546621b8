"""Consumers and builders for the acl tests."""

import pytest

from fastgw.config.loader import ConfigError, parse_config
from fastgw.plugins import handler_class
from fastgw.plugins.state import ConfigState

CONSUMERS = [
    {"username": "alice", "acls": [{"group": "gold"}, {"group": "beta"}]},
    {"username": "bob", "acls": [{"group": "silver"}]},
    {"username": "carol"},
    {"username": "anonymous", "acls": [{"group": "guest"}]},
]


@pytest.fixture(scope="session")
def consumers():
    """The consumers above, for documents the tests write themselves."""
    return CONSUMERS


def document(config: dict | None) -> dict:
    plugin = {"name": "acl"} if config is None else {"name": "acl", "config": config}
    return {"_format_version": "3.0", "consumers": CONSUMERS, "plugins": [plugin]}


@pytest.fixture
def acl():
    """An acl handler for a config (defaults filled by the real loader)."""

    def build(**config):
        parsed = parse_config(document(config))
        entry = parsed.plugins[0]
        return handler_class("acl")(entry.config, ConfigState(parsed), entry)

    return build


@pytest.fixture
def validated():
    """An acl config as the loader validates it."""
    return lambda config: parse_config(document(config)).plugins[0].config


@pytest.fixture
def config_errors():
    """The loader's errors for an acl config, or [] when it is valid."""

    def errors(config):
        try:
            parse_config(document(config))
        except ConfigError as exc:
            return exc.errors
        return []

    return errors
