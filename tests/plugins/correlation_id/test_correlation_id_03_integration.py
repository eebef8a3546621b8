"""correlation-id in the real gateway: the id upstream, in the response, and
unique across requests served by several workers."""

import re

import pytest

from fastgw.testing import GatewayProcess, UpstreamServer, service_doc


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream):
    doc = service_doc(upstream.port, routes=[
        {"name": "echo", "paths": ["/echo"],
         "plugins": [{"name": "correlation-id", "config": {"echo_downstream": True}}]},
        {"name": "quiet", "paths": ["/quiet"],
         "plugins": [{"name": "correlation-id",
                      "config": {"header_name": "X-Correlation-ID", "generator": "uuid"}}]},
    ])
    with GatewayProcess(doc, workers=2) as gw:
        yield gw


def test_the_id_goes_upstream_and_back(gateway, upstream):
    status, headers, _ = gateway.request("GET", "/echo")
    assert status == 200
    sent = upstream.requests[-1].header("kong-request-id")
    assert re.fullmatch(r"[0-9a-f-]{36}#\d+", sent)
    assert headers["kong-request-id"] == sent


def test_a_client_id_is_kept(gateway, upstream):
    _, headers, _ = gateway.request("GET", "/echo", headers={"Kong-Request-ID": "trace-42"})
    assert upstream.requests[-1].header_all("kong-request-id") == ["trace-42"]
    assert headers["kong-request-id"] == "trace-42"


def test_without_echo_only_the_upstream_sees_the_id(gateway, upstream):
    _, headers, _ = gateway.request("GET", "/quiet")
    assert re.fullmatch(r"[0-9a-f-]{36}", upstream.requests[-1].header("x-correlation-id"))
    assert "x-correlation-id" not in headers


def test_ids_are_unique_across_requests_and_workers(gateway):
    ids = [gateway.request("GET", "/echo")[1]["kong-request-id"] for _ in range(40)]
    assert len(set(ids)) == len(ids)
