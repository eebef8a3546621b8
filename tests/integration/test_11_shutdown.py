"""SIGTERM and SIGINT end the gateway cleanly: exit code 0, and no traceback
or "Exception ignored" line in its log, with the node's shared memory in use
(a local rate limit) and requests served before the signal."""

import signal

import pytest

from fastgw.testing import GatewayProcess, UpstreamServer, service_doc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_the_gateway_without_a_traceback(sig):
    with UpstreamServer() as up:
        doc = service_doc(up.port)
        doc["plugins"] = [{"name": "rate-limiting",
                           "config": {"minute": 1000, "policy": "local"}}]
        gw = GatewayProcess(doc, workers=2).start()
        try:
            for _ in range(4):
                assert gw.request("GET", "/x")[0] == 200
            gw.signal(sig)
            assert gw.proc is not None
            code = gw.proc.wait(30)
        finally:
            gw.stop()
            logs = gw.logs()
            gw.dir.cleanup()
    assert code == 0, logs
    assert "Traceback" not in logs, logs
    assert "Exception ignored" not in logs, logs
    assert "draining" in logs
