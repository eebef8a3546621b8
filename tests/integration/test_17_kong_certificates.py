"""Kong's certificates, snis and ca_certificates entities: served over the TLS
listener by server name (following reloads), trusted and shown towards
upstreams by reference, checked at load."""

import orjson
import pytest
from tls_testkit import CA, TLSUpstream, https_get, tls_service

from fastgw.config.loader import ConfigError, parse_config
from fastgw.testing import GatewayProcess, free_port, service_doc

CERT_ID = "5b1c7a3e-6d2f-4c8b-9e1a-3f4d5c6b7a80"
OTHER_ID = "6c2d8b4f-7e3a-4d9c-8f2b-4a5e6d7c8b91"
CA_ID = "7d3e9c5a-8f4b-4e0d-9a3c-5b6f7e8d9ca2"


@pytest.fixture
def ca(tmp_path):
    return CA(tmp_path)


def pem(pair):
    cert, key = pair
    return {"cert": open(cert).read(), "key": open(key).read()}


def test_certificates_are_served_by_sni_and_follow_reloads(ca, upstream):
    default = ca.issue("default.test", ["default.test"])
    api = ca.issue("api.test", ["api.test"])
    wild = ca.issue("wild.test", ["x.wild.test"])
    tls_port = free_port()
    doc = service_doc(upstream.port)
    doc["_gateway"] = {"tls": {"listen": f"127.0.0.1:{tls_port}"}}
    doc["certificates"] = [
        {"id": CERT_ID, **pem(default)},
        {"id": OTHER_ID, **pem(api), "snis": ["api.test"]},
        {**pem(wild), "snis": ["*.wild.test"]}]
    with GatewayProcess(doc) as gw:
        for name, expected in (("api.test", "api.test"), ("x.wild.test", "wild.test"),
                               ("default.test", "default.test")):
            data, cn = https_get(tls_port, name, str(ca.path))
            assert data.startswith(b"HTTP/1.1 200") and cn == expected
        # A reload renews api.test's certificate, its name now given by a
        # top-level sni: the listener serves the new one at once.
        renewed = ca.issue("api-renewed", ["api.test"])
        doc["certificates"][1] = {"id": OTHER_ID, **pem(renewed)}
        doc["snis"] = [{"name": "api.test", "certificate": {"id": OTHER_ID}}]
        assert gw.admin("POST", "/config", body=orjson.dumps(doc))[0] == 201
        data, cn = https_get(tls_port, "api.test", str(ca.path))
        assert data.startswith(b"HTTP/1.1 200") and cn == "api-renewed"


def test_services_reference_ca_and_client_certificates(ca):
    server = ca.issue("localhost", ["localhost"])
    client = ca.issue("fastgw-client", client=True)
    with TLSUpstream(*server, client_ca=str(ca.path)) as up:
        doc = tls_service(up.port, ca_certificates=[CA_ID],
                          client_certificate={"id": CERT_ID})
        doc["ca_certificates"] = [{"id": CA_ID, "cert": ca.path.read_text()}]
        doc["certificates"] = [{"id": CERT_ID, **pem(client)}]
        doc["_gateway"] = {"tls": {"listen": f"127.0.0.1:{free_port()}"}}
        with GatewayProcess(doc) as gw:
            status, _, body = gw.request("GET", "/")
            assert (status, body) == (200, b"secure")
    assert up.peer_cns == ["fastgw-client"]


def test_an_upstream_shows_its_client_certificate(ca):
    server = ca.issue("localhost", ["localhost"])
    client = ca.issue("upstream-client", client=True)
    with TLSUpstream(*server, client_ca=str(ca.path)) as up:
        doc = {"_format_version": "3.0",
               "ca_certificates": [{"id": CA_ID, "cert": ca.path.read_text()}],
               "certificates": [{"id": CERT_ID, **pem(client)}],
               "upstreams": [{"name": "localhost", "client_certificate": {"id": CERT_ID},
                              "targets": [{"target": f"localhost:{up.port}"}]}],
               "services": [{"name": "s", "protocol": "https", "host": "localhost",
                             "port": 443, "ca_certificates": [CA_ID],
                             "routes": [{"name": "r", "paths": ["/"]}]}],
               "_gateway": {"tls": {"listen": f"127.0.0.1:{free_port()}"}}}
        with GatewayProcess(doc) as gw:
            assert gw.request("GET", "/")[0] == 200
    assert up.peer_cns == ["upstream-client"]


def errors(doc):
    with pytest.raises(ConfigError) as caught:
        parse_config({"_format_version": "3.0", **doc}, env={})
    return caught.value.errors


def test_bad_certificates_are_refused_at_load(ca):
    first, second = pem(ca.issue("a.test")), pem(ca.issue("b.test"))
    assert errors({"certificates": [{"cert": first["cert"], "key": second["key"]}]}) == [
        "certificates[0]: certificate does not match key"]
    assert errors({"certificates": [{**first, "cert_alt": second["cert"]}]}) == [
        "certificates[0]: all or none of these fields must be set: 'cert_alt', 'key_alt'"]
    [bad] = errors({"certificates": [{"cert": "not a certificate", "key": first["key"]}]})
    assert bad.startswith("certificates[0].cert: invalid certificate")
    assert errors({"ca_certificates": [{"cert": first["cert"] + first["cert"]}]}) == [
        "ca_certificates[0].cert: please submit only one certificate at a time"]


def test_references_and_names_are_checked(ca):
    cert = pem(ca.issue("a.test"))
    doc = {"certificates": [{"id": CERT_ID, **cert, "snis": ["a.test"]}],
           "snis": [{"name": "A.test", "certificate": {"id": CERT_ID}},
                    {"name": "b.test", "certificate": OTHER_ID}],
           "services": [{"name": "s", "url": "https://h", "ca_certificates": [CA_ID],
                         "client_certificate": {"id": OTHER_ID}}]}
    assert errors(doc) == [
        "snis[1].certificate: unknown certificate '6c2d8b4f-7e3a-4d9c-8f2b-4a5e6d7c8b91'",
        "snis[0].name: duplicate SNI 'a.test' (also at certificates[0].snis[0])",
        "services[0].client_certificate.id: unknown certificate "
        "'6c2d8b4f-7e3a-4d9c-8f2b-4a5e6d7c8b91'",
        "services[0].ca_certificates[0]: unknown CA certificate "
        "'7d3e9c5a-8f4b-4e0d-9a3c-5b6f7e8d9ca2'",
    ]


def test_certificates_alone_open_kong_s_tls_listener(ca):
    cert = pem(ca.issue("a.test"))
    config = parse_config({"_format_version": "3.0", "certificates": [cert]}, env={})
    assert config.gateway.tls.listen == "0.0.0.0:8443" and config.gateway.tls.cert is None
    assert errors({"_gateway": {"tls": {"listen": "127.0.0.1:8443"}}}) == [
        "_gateway.tls: needs 'cert' and 'key' when the document has no certificates"]


def test_route_snis_route_https_requests_by_server_name(ca, upstream):
    cert = ca.issue("names", ["a.test", "b.test"])
    tls_port = free_port()
    doc = service_doc(upstream.port, routes=[
        {"name": "fallback", "paths": ["/"]},
        {"name": "a-only", "paths": ["/"], "snis": ["a.test"], "plugins": [
            {"name": "request-termination",
             "config": {"status_code": 200, "message": "a.test only"}}]}])
    doc["certificates"] = [{**pem(cert), "snis": ["a.test", "b.test"]}]
    doc["_gateway"] = {"tls": {"listen": f"127.0.0.1:{tls_port}"}}
    with GatewayProcess(doc) as gw:
        data, _ = https_get(tls_port, "a.test", str(ca.path), "/x")
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b'{"message":"a.test only"}')
        before = len(upstream.requests)
        data, _ = https_get(tls_port, "b.test", str(ca.path), "/x")
        assert data.startswith(b"HTTP/1.1 200") and len(upstream.requests) == before + 1
        # Plain HTTP is not checked against snis (Kong's rule): a-only matches.
        status, _, body = gw.request("GET", "/x")
        assert (status, body) == (200, b'{"message":"a.test only"}')
