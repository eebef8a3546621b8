"""Consumers for the acl tests; handlers and configs come from tests/plugins/conftest.py."""

import pytest

CONSUMERS = [
    {"username": "alice", "acls": [{"group": "gold"}, {"group": "beta"}]},
    {"username": "bob", "acls": [{"group": "silver"}]},
    {"username": "carol"},
    {"username": "anonymous", "acls": [{"group": "guest"}]},
]


@pytest.fixture
def plugin_name():
    return "acl"


@pytest.fixture(scope="session")
def consumers():
    """The consumers above, for documents the tests write themselves."""
    return CONSUMERS


@pytest.fixture
def acl(handler):
    """An acl handler for a config (defaults filled by the real loader)."""
    return handler
