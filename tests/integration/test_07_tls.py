"""TLS on both sides: the HTTPS listener with SNI certificates, verified
upstreams, a client certificate shown to an upstream that demands one."""

import pytest
from tls_testkit import CA, TLSUpstream, https_get, tls_service

from fastgw.testing import GatewayProcess, service_doc


@pytest.fixture
def ca(tmp_path):
    return CA(tmp_path)


def test_https_listener_with_sni_certificates(ca, upstream):
    default = ca.issue("localhost", ["localhost"])
    other = ca.issue("api.example", ["api.example"])
    doc = service_doc(upstream.port)
    doc["_gateway"] = {"tls": {"cert": default[0], "key": default[1],
                               "sni": [{"name": "api.example", "cert": other[0],
                                        "key": other[1]}]}}
    with GatewayProcess(doc) as gw:
        data, cn = https_get(gw.port, "localhost", str(ca.path))
        assert data.startswith(b"HTTP/1.1 200") and cn == "localhost"
        data, cn = https_get(gw.port, "api.example", str(ca.path))
        assert data.startswith(b"HTTP/1.1 200") and cn == "api.example"
    assert upstream.requests[-1].header("x-forwarded-proto") == "https"


def test_separate_https_listener_and_https_only_routes(ca, upstream):
    from fastgw.testing import free_port, http_request

    cert = ca.issue("localhost", ["localhost"])
    tls_port = free_port()
    doc = service_doc(upstream.port, routes=[
        {"name": "secure", "paths": ["/secure"], "protocols": ["https"]},
        {"name": "open", "paths": ["/open"]}])
    doc["_gateway"] = {"tls": {"cert": cert[0], "key": cert[1], "listen": f"127.0.0.1:{tls_port}"}}
    with GatewayProcess(doc) as gw:
        status, _, body = http_request(gw.port, "GET", "/secure")
        assert status == 426 and b"Please use HTTPS protocol" in body
        assert http_request(gw.port, "GET", "/open")[0] == 200
        data, _ = https_get(tls_port, "localhost", str(ca.path), "/secure")
        assert data.startswith(b"HTTP/1.1 200")


def test_https_upstreams_are_verified_by_default(ca, tmp_path):
    cert = ca.issue("localhost", ["localhost"])
    with TLSUpstream(*cert) as up:
        # The upstream's CA is not trusted by the system: refused.
        with GatewayProcess(tls_service(up.port, retries=0)) as gw:
            assert gw.request("GET", "/")[0] == 502
        with GatewayProcess(tls_service(up.port, ca_certificates=[str(ca.path)])) as gw:
            status, _, body = gw.request("GET", "/")
            assert (status, body) == (200, b"secure")
        with GatewayProcess(tls_service(up.port, tls_verify=False)) as gw:
            assert gw.request("GET", "/")[0] == 200


def test_client_certificate_is_presented_to_the_upstream(ca, tmp_path):
    server = ca.issue("localhost", ["localhost"])
    client = ca.issue("fastgw-client", client=True)
    with TLSUpstream(*server, client_ca=str(ca.path)) as up:
        with GatewayProcess(tls_service(up.port, ca_certificates=[str(ca.path)],
                                        retries=0)) as gw:
            assert gw.request("GET", "/")[0] == 502
        with GatewayProcess(tls_service(
                up.port, ca_certificates=[str(ca.path)],
                client_certificate={"cert": client[0], "key": client[1]})) as gw:
            status, _, body = gw.request("GET", "/")
            assert (status, body) == (200, b"secure")
    assert up.peer_cns == ["fastgw-client"]

