"""Consumers for the basic-auth tests; handlers and configs come from tests/plugins/conftest.py."""

import pytest

CONSUMERS = [
    {"username": "alice", "basicauth_credentials": [
        {"username": "alice-login", "password": "s3cret:with:colons"}]},
    {"username": "bob", "custom_id": "bob-crm",
     "basicauth_credentials": [{"username": "bob", "password": "p\u00e4ss"}]},
    {"username": "anonymous"},
]


@pytest.fixture
def plugin_name():
    return "basic-auth"


@pytest.fixture(scope="session")
def consumers():
    """The consumers above, for documents the tests write themselves."""
    return CONSUMERS


@pytest.fixture
def basic_auth(handler):
    """A basic-auth handler for a config (defaults filled by the real loader)."""
    return handler
