"""mtls-auth over the real TLS listener: clients with certificates of a
trusted CA are their consumers; no certificate, an untrusted, expired or
revoked one gets Kong's 401s; routes without mtls-auth on the same listener
keep serving clients that send none; groups for acl, anonymous, STRICT
revocation, and plain HTTP."""

from __future__ import annotations

import datetime
import socket
import ssl

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from tls_testkit import CA

from fastgw.testing import GatewayProcess, UpstreamServer, free_port, service_doc

CA_ID = "9a1b2c3d-0000-4000-8000-000000000001"
CA2_ID = "9a1b2c3d-0000-4000-8000-000000000002"
INTERMEDIATE_ID = "9a1b2c3d-0000-4000-8000-000000000003"
SERVER_NAME = "gw.test"


def revoke(ca: CA, cert_path: str, directory) -> str:
    cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
    now = datetime.datetime.now(datetime.timezone.utc)
    revoked = (x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
               .revocation_date(now).build())
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
           .last_update(now).next_update(now + datetime.timedelta(days=1))
           .add_revoked_certificate(revoked).sign(ca.key, hashes.SHA256()))
    path = directory / "ca.crl"
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return str(path)


def expired(ca: CA, cn: str, directory) -> tuple[str, str]:
    cert_path, key_path = ca.issue(cn, client=True)
    key = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([
        x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, cn)])).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=3))
        .not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("alice")]), False)
        .sign(ca.key, hashes.SHA256()))
    path = directory / f"{cn}-expired.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path), key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    # One folder per CA: CA.issue names its files by CN.
    for name in ("trusted", "second", "rogue"):
        (directory / name).mkdir()
    ca, ca2, rogue = (CA(directory / "trusted", "trusted CA"),
                      CA(directory / "second", "second CA"), CA(directory / "rogue", "rogue CA"))
    server = ca.issue(SERVER_NAME, names=[SERVER_NAME])
    certs = {
        "alice": ca.issue("alice", client=True),
        "bob": ca.issue("svc-7", names=["bob-cn"], client=True),
        # Names that map to alice: only verification can refuse them.
        "revoked": ca.issue("revoked-alice", names=["alice"], client=True),
        "rogue": rogue.issue("alice", client=True),
        "second": ca2.issue("alice", client=True),
        "svc": ca.issue("svc", client=True),
        "dora": ca.issue("bob", names=["dora-svc"], client=True),
    }
    certs["expired"] = expired(ca, "expired-alice", directory)
    crl = revoke(ca, certs["revoked"][0], directory)
    # carol's certificate comes from an intermediate CA of the trusted one: it
    # chains to the root only through the intermediate the client sends.
    (directory / "intermediate").mkdir()
    intermediate = CA(directory / "intermediate", "intermediate CA", issuer=ca)
    leaf, key = intermediate.issue("carol", client=True)
    chained = directory / "carol-chain.crt"
    chained.write_text(open(leaf).read() + intermediate.path.read_text())
    certs["carol"] = (str(chained), key)
    certs["carol-alone"] = (leaf, key)
    return ca, ca2, server, certs, crl, intermediate


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(pki, upstream):
    ca, ca2, server, _, crl, intermediate = pki
    both = [CA_ID, CA2_ID]
    routes = [
        {"name": "mtls", "paths": ["/mtls"], "plugins": [{"name": "mtls-auth", "config": {
            "ca_certificates": both, "crl_files": [crl]}}]},
        {"name": "strict", "paths": ["/strict"], "plugins": [{"name": "mtls-auth", "config": {
            "ca_certificates": both, "crl_files": [crl],
            "revocation_check_mode": "STRICT"}}]},
        {"name": "groups", "paths": ["/groups"], "plugins": [
            {"name": "mtls-auth", "config": {"ca_certificates": [CA_ID],
                                             "skip_consumer_lookup": True}},
            {"name": "acl", "config": {"allow": ["svc"]}}]},
        {"name": "anon", "paths": ["/anon"], "plugins": [{"name": "mtls-auth", "config": {
            "ca_certificates": [CA_ID], "anonymous": "anon"}}]},
        {"name": "open", "paths": ["/open"]},
        # Trusting the intermediate itself: a partial chain, allowed or not.
        {"name": "partial", "paths": ["/partial"], "plugins": [{"name": "mtls-auth", "config": {
            "ca_certificates": [INTERMEDIATE_ID], "allow_partial_chain": True}}]},
        {"name": "whole", "paths": ["/whole"], "plugins": [{"name": "mtls-auth", "config": {
            "ca_certificates": [INTERMEDIATE_ID]}}]},
    ]
    doc = service_doc(upstream.port, routes=routes)
    doc["ca_certificates"] = [{"id": CA_ID, "cert": ca.path.read_text()},
                              {"id": CA2_ID, "cert": ca2.path.read_text()},
                              {"id": INTERMEDIATE_ID, "cert": intermediate.path.read_text()}]
    doc["consumers"] = [
        {"username": "alice"}, {"username": "bob", "custom_id": "bob-cn"},
        {"username": "anon"}, {"username": "carol"},
        # Kong's manual mappings: a certificate name to a consumer, for any CA
        # or for one; they come before consumer_by's names.
        {"username": "dora", "mtls_auth_credentials": [
            {"subject_name": "dora-svc", "ca_certificate": {"id": CA_ID}}]},
        {"username": "erin", "mtls_auth_credentials": [{"subject_name": "alice",
                                                        "ca_certificate": CA2_ID}]},
    ]
    tls_port = free_port()
    doc["_gateway"] = {"tls": {"cert": server[0], "key": server[1],
                               "listen": f"127.0.0.1:{tls_port}"}}
    with GatewayProcess(doc) as gw:
        yield gw, tls_port, str(ca.path)


def https(gateway, path: str, cert: tuple[str, str] | None = None):
    gw, port, cafile = gateway
    ctx = ssl.create_default_context(cafile=cafile)
    if cert is not None:
        ctx.load_cert_chain(*cert)
    with socket.create_connection(("127.0.0.1", port), 5) as raw, \
            ctx.wrap_socket(raw, server_hostname=SERVER_NAME) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {SERVER_NAME}\r\nConnection: close\r\n\r\n"
                     .encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def message(body: bytes) -> str:
    return orjson.loads(body)["message"]


def test_a_trusted_certificate_is_its_consumer(gateway, pki, upstream):
    certs = pki[3]
    status, body = https(gateway, "/mtls", certs["alice"])
    assert status == 200, (body, gateway[0].logs()[-3000:])
    assert upstream.requests[-1].header("x-consumer-username") == "alice"
    assert upstream.requests[-1].header("x-credential-identifier") == "alice"
    # custom_id first (consumer_by's default order), matched by a SAN name.
    assert https(gateway, "/mtls", certs["bob"])[0] == 200
    assert upstream.requests[-1].header("x-consumer-username") == "bob"


def test_a_credential_maps_a_certificate_name_to_a_consumer_for_its_ca(gateway, pki,
                                                                      upstream):
    certs = pki[3]
    # A certificate whose CN is bob's username, and a SAN name that dora's
    # credential maps: hers, before consumer_by would find bob.
    assert https(gateway, "/mtls", certs["dora"])[0] == 200
    assert upstream.requests[-1].header("x-consumer-username") == "dora"
    # erin's credential is for the second CA: alice's certificate from the
    # trusted CA stays alice's, the second CA's "alice" is erin.
    assert https(gateway, "/mtls", certs["alice"])[0] == 200
    assert upstream.requests[-1].header("x-consumer-username") == "alice"
    assert https(gateway, "/mtls", certs["second"])[0] == 200
    assert upstream.requests[-1].header("x-consumer-username") == "erin"


@pytest.mark.parametrize("which", ["rogue", "expired", "revoked"])
def test_untrusted_expired_and_revoked_certificates_fail_verification(gateway, pki, which):
    status, body = https(gateway, "/mtls", pki[3][which])
    assert (status, message(body)) == (401, "TLS certificate failed verification")


def test_no_certificate_and_plain_http(gateway):
    status, body = https(gateway, "/mtls")
    assert (status, message(body)) == (401, "No required TLS certificate was sent")
    status, _, body = gateway[0].request("GET", "/mtls")
    assert (status, message(body)) == (401, "No required TLS certificate was sent")


def test_routes_without_mtls_auth_serve_clients_without_a_certificate(gateway, pki):
    assert https(gateway, "/open")[0] == 200
    assert https(gateway, "/open", pki[3]["rogue"])[0] == 200


def test_groups_anonymous_and_strict_revocation(gateway, pki, upstream):
    certs = pki[3]
    assert https(gateway, "/groups", certs["svc"])[0] == 200
    assert upstream.requests[-1].header("x-consumer-username") is None
    assert https(gateway, "/groups", certs["alice"])[0] == 403  # acl: not in group svc
    assert https(gateway, "/anon")[0] == 200
    assert upstream.requests[-1].header("x-consumer-username") == "anon"
    # STRICT: the second CA published no CRL here.
    assert https(gateway, "/strict", certs["alice"])[0] == 200
    status, body = https(gateway, "/strict", certs["second"])
    assert (status, message(body)) == (401, "TLS certificate failed verification")
    assert https(gateway, "/mtls", certs["second"])[0] == 200  # IGNORE_CA_ERROR


def test_a_certificate_chains_to_the_root_through_the_intermediates_sent(gateway, pki,
                                                                        upstream):
    certs = pki[3]
    # Without its intermediate the certificate leads nowhere; with it, to the
    # trusted root. The refusal is not remembered for the chain that works.
    status, body = https(gateway, "/mtls", certs["carol-alone"])
    assert (status, message(body)) == (401, "TLS certificate failed verification")
    status, body = https(gateway, "/mtls", certs["carol"])
    assert status == 200, (body, gateway[0].logs()[-2000:])
    assert upstream.requests[-1].header("x-consumer-username") == "carol"
    assert https(gateway, "/mtls", certs["carol-alone"])[0] == 200  # known good now
    # The intermediate as the trusted CA: a partial chain, only when allowed.
    assert https(gateway, "/partial", certs["carol-alone"])[0] == 200
    status, body = https(gateway, "/whole", certs["carol"])
    assert (status, message(body)) == (401, "TLS certificate failed verification")
