"""The openid-connect tests: a real OpenID provider on loopback
(fastgw.testing.oidc_provider), consumers that tokens map to."""

import pytest

from fastgw.testing.oidc_provider import OIDCProvider


@pytest.fixture(scope="session")
def plugin_name():
    return "openid-connect"


@pytest.fixture(scope="session")
def consumers():
    return [{"username": "alice"}, {"username": "bob", "custom_id": "bob-cid"},
            {"username": "anon"}]


@pytest.fixture(scope="module")
def idp():
    with OIDCProvider() as provider:
        yield provider
