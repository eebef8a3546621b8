import pytest

from fastgw.testing import GatewayProcess


@pytest.fixture
def start_gateway():
    """Start real gateways for configs; all are stopped when the test ends."""
    started = []

    def start(doc, workers=1):
        gw = GatewayProcess(doc, workers=workers).start()
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()
        gw.dir.cleanup()
