import pytest


@pytest.fixture
def plugin_name():
    return "ip-restriction"
