import pytest


@pytest.fixture
def plugin_name():
    return "response-transformer"
