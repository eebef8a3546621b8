import pytest

from fastgw.testing import GatewayProcess, UpstreamServer, service_doc


@pytest.fixture
def upstream():
    with UpstreamServer() as up:
        yield up


@pytest.fixture
def gateway_for():
    """Start a gateway for a config; stopped at the end of the test."""
    started = []

    def start(doc, workers=1, env=None):
        gw = GatewayProcess(doc, workers=workers, env=env).start()
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()
        gw.dir.cleanup()


@pytest.fixture
def proxied(upstream, gateway_for):
    """A gateway with one catch-all route to the recording upstream."""
    return gateway_for(service_doc(upstream.port))
