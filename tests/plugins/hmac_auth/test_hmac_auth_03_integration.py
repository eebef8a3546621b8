"""hmac-auth in the real gateway: a signed request reaches the upstream with
its consumer; a bad one gets Kong's 401 and never leaves the gateway."""

import base64
import hashlib

import orjson
import pytest
from hmac_signing import authorization, now, sign

ROUTES = [
    {"name": "signed", "paths": ["/signed"], "plugins": [
        {"name": "hmac-auth", "config": {"enforce_headers": ["date", "@request-target"],
                                         "hide_credentials": True}}]},
    {"name": "body", "paths": ["/body"], "plugins": [
        {"name": "hmac-auth", "config": {"validate_request_body": True}}]},
]


@pytest.fixture(scope="module")
def gateway_routes():
    return ROUTES


def _signed_headers(method, target, *, digest=None, secret="s3cret"):
    date = now()
    names = ["date", "@request-target"]
    lines = [f"date: {date}", f"@request-target: {method.lower()} {target}"]
    headers = {"Date": date}
    if digest is not None:
        names.append("digest")
        lines.append(f"digest: {digest}")
        headers["Digest"] = digest
    headers["Authorization"] = authorization(names, sign("\n".join(lines), secret))
    return headers


def test_a_signed_request_reaches_the_upstream(gateway, upstream):
    target = "/signed/orders?page=2"
    status, _, _ = gateway.request("GET", target, headers=_signed_headers("GET", target))
    assert status == 200
    sent = upstream.requests[-1]
    assert sent.header("x-consumer-username") == "alice"
    assert sent.header("x-credential-identifier") == "alice"
    assert sent.header("authorization") is None  # hide_credentials


@pytest.mark.parametrize(("headers", "message"), [
    ({}, "Unauthorized"),
    ({"secret": "wrong"}, "HMAC signature does not match"),
])
def test_bad_requests_never_reach_the_upstream(gateway, upstream, headers, message):
    before = len(upstream.requests)
    sent = _signed_headers("GET", "/signed", **headers) if headers else {"Date": now()}
    status, response_headers, body = gateway.request("GET", "/signed", headers=sent)
    assert (status, orjson.loads(body)) == (401, {"message": message})
    assert response_headers["www-authenticate"] == "hmac"
    assert len(upstream.requests) == before


def test_a_signature_for_another_target_does_not_match(gateway):
    status, _, body = gateway.request("GET", "/signed/admin",
                                      headers=_signed_headers("GET", "/signed/orders"))
    assert (status, orjson.loads(body)) == (401, {"message": "HMAC signature does not match"})


def test_the_body_must_match_its_digest(gateway, upstream):
    body = b'{"amount": 10}'
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    status, _, _ = gateway.request("POST", "/body", body=body,
                                   headers=_signed_headers("POST", "/body", digest=digest))
    assert status == 200 and upstream.requests[-1].body == body
    status, _, answer = gateway.request("POST", "/body", body=b'{"amount": 1000}',
                                        headers=_signed_headers("POST", "/body", digest=digest))
    assert (status, orjson.loads(answer)) == (401, {"message": "HMAC signature does not match"})
