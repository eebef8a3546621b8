"""Consumers and builders for the key-auth tests."""

import pytest

from fastgw.config.loader import ConfigError, parse_config
from fastgw.plugins import handler_class
from fastgw.plugins.state import ConfigState

ALICE_KEY_ID = "6f1c8a3e-2b4d-4e5f-9a8b-7c6d5e4f3a21"
ANONYMOUS_ID = "0b7f8a56-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
CONSUMERS = [
    {"username": "alice", "keyauth_credentials": [
        {"id": ALICE_KEY_ID, "key": "alice-key"}, {"key": "alice-second-key"}]},
    {"username": "bob", "custom_id": "bob-crm", "keyauth_credentials": [{"key": "bob-key"}]},
    {"username": "anonymous", "id": ANONYMOUS_ID},
]


def document(config: dict | None) -> dict:
    plugin = {"name": "key-auth"} if config is None else {"name": "key-auth", "config": config}
    return {"_format_version": "3.0", "consumers": CONSUMERS, "plugins": [plugin]}


@pytest.fixture(scope="session")
def consumers():
    """The consumers above, for documents the tests write themselves."""
    return CONSUMERS


@pytest.fixture
def ids():
    """Ids written in the consumers above."""
    return {"alice-key": ALICE_KEY_ID, "anonymous": ANONYMOUS_ID}


@pytest.fixture
def key_auth():
    """A key-auth handler for a config (defaults filled by the real loader)."""

    def build(**config):
        parsed = parse_config(document(config))
        entry = parsed.plugins[0]
        return handler_class("key-auth")(entry.config, ConfigState(parsed), entry)

    return build


@pytest.fixture
def validated():
    """A key-auth config as the loader validates it (None: no config at all)."""
    return lambda config: parse_config(document(config)).plugins[0].config


@pytest.fixture
def config_errors():
    """The loader's errors for a key-auth config, or [] when it is valid."""

    def errors(config):
        try:
            parse_config(document(config))
        except ConfigError as exc:
            return exc.errors
        return []

    return errors
