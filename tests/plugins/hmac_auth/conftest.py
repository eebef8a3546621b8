"""hmac-auth tests: handlers and configs come from tests/plugins/conftest.py,
the consumers and the client's signing from hmac_signing.py."""

import pytest
from hmac_signing import CONSUMERS


@pytest.fixture
def plugin_name():
    return "hmac-auth"


@pytest.fixture(scope="session")
def consumers():
    return CONSUMERS
