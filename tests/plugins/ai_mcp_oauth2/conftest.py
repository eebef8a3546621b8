import pytest

from fastgw.testing.oidc_provider import OIDCProvider


@pytest.fixture(scope="session")
def plugin_name():
    return "ai-mcp-oauth2"


@pytest.fixture(scope="module")
def idp():
    with OIDCProvider() as provider:
        yield provider
