import pytest


@pytest.fixture(scope="session")
def plugin_name():
    return "ai-mcp-proxy"
