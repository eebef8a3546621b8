"""Consumers for the key-auth tests; handlers and configs come from tests/plugins/conftest.py."""

import pytest

ALICE_KEY_ID = "6f1c8a3e-2b4d-4e5f-9a8b-7c6d5e4f3a21"
ANONYMOUS_ID = "0b7f8a56-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
CONSUMERS = [
    {"username": "alice", "keyauth_credentials": [
        {"id": ALICE_KEY_ID, "key": "alice-key"}, {"key": "alice-second-key"}]},
    {"username": "bob", "custom_id": "bob-crm", "keyauth_credentials": [{"key": "bob-key"}]},
    {"username": "anonymous", "id": ANONYMOUS_ID},
]


@pytest.fixture
def plugin_name():
    return "key-auth"


@pytest.fixture(scope="session")
def consumers():
    """The consumers above, for documents the tests write themselves."""
    return CONSUMERS


@pytest.fixture
def ids():
    """Ids written in the consumers above."""
    return {"alice-key": ALICE_KEY_ID, "anonymous": ANONYMOUS_ID}


@pytest.fixture
def key_auth(handler):
    """A key-auth handler for a config (defaults filled by the real loader)."""
    return handler
