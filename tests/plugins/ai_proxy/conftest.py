import pytest
from ai_proxy_kit import plugin_doc

from fastgw.config.loader import parse_config
from fastgw.plugins import handler_class
from fastgw.plugins.state import ConfigState
from fastgw.testing.mock_llm import running_mock


@pytest.fixture
def build_ai_proxy():
    """ai-proxy handlers from config dicts, validated by the real loader."""

    def build(config: dict, extra_plugins: list | None = None):
        parsed = parse_config(plugin_doc(config, extra_plugins=extra_plugins))
        state = ConfigState(parsed)
        [scope] = [p for p in parsed.plugins if p.name == "ai-proxy"]
        return handler_class("ai-proxy")(scope.config, state, scope)

    return build


@pytest.fixture(scope="session")
def mock_llm():
    with running_mock() as mock:
        yield mock
