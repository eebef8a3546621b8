import pytest


@pytest.fixture
def plugin_name():
    return "cors"
