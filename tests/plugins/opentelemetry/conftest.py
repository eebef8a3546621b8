"""opentelemetry tests: handlers and configs come from tests/plugins/conftest.py."""

import pytest


@pytest.fixture
def plugin_name():
    return "opentelemetry"
