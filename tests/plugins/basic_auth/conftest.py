"""Consumers and builders for the basic-auth tests."""

import pytest

from fastgw.config.loader import ConfigError, parse_config
from fastgw.plugins import handler_class
from fastgw.plugins.state import ConfigState

CONSUMERS = [
    {"username": "alice", "basicauth_credentials": [
        {"username": "alice-login", "password": "s3cret:with:colons"}]},
    {"username": "bob", "custom_id": "bob-crm",
     "basicauth_credentials": [{"username": "bob", "password": "p\u00e4ss"}]},
    {"username": "anonymous"},
]


@pytest.fixture(scope="session")
def consumers():
    """The consumers above, for documents the tests write themselves."""
    return CONSUMERS


def document(config: dict | None) -> dict:
    plugin = {"name": "basic-auth"} if config is None else {"name": "basic-auth", "config": config}
    return {"_format_version": "3.0", "consumers": CONSUMERS, "plugins": [plugin]}


@pytest.fixture
def basic_auth():
    """A basic-auth handler for a config (defaults filled by the real loader)."""

    def build(**config):
        parsed = parse_config(document(config))
        entry = parsed.plugins[0]
        return handler_class("basic-auth")(entry.config, ConfigState(parsed), entry)

    return build


@pytest.fixture
def validated():
    """A basic-auth config as the loader validates it (None: no config at all)."""
    return lambda config: parse_config(document(config)).plugins[0].config


@pytest.fixture
def config_errors():
    """The loader's errors for a basic-auth config, or [] when it is valid."""

    def errors(config):
        try:
            parse_config(document(config))
        except ConfigError as exc:
            return exc.errors
        return []

    return errors
