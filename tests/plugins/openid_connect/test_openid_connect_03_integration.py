"""openid-connect in the real gateway, against a real provider on loopback:
what clients get back (RFC 6750, Kong's wording), what the upstream
receives (Kong's consumer headers, claim headers), consumers and groups
from claims (consumer-group plugins, acl), opaque tokens by introspection,
a slow provider in bounded time, and ai-proxy not forwarding the token."""

from __future__ import annotations

import time

import orjson
import pytest

from fastgw.testing import GatewayProcess, service_doc
from fastgw.testing.mock_llm import running_mock
from fastgw.testing.oidc_provider import CLIENT_ID, CLIENT_SECRET


def oidc(idp, **extra) -> dict:
    return {"name": "openid-connect", "config": {
        "issuer": idp.issuer, "client_id": [CLIENT_ID], "client_secret": [CLIENT_SECRET],
        "consumer_claim": ["preferred_username"], "consumer_optional": True, **extra}}


@pytest.fixture(scope="module")
def stack(idp, upstream):
    tier = {"name": "request-transformer", "config": {"add": {"headers": ["X-Tier:gold"]}}}
    with running_mock() as mock:
        ai = {"route_type": "llm/v1/chat",
              "auth": {"header_name": "Authorization", "header_value": "Bearer provider-key"},
              "model": {"provider": "openai", "name": "m",
                        "options": {"upstream_url": mock.base_url + "/v1/chat/completions"}}}
        routes = [
            {"name": "api", "paths": ["/api"], "plugins": [oidc(
                idp, consumer_optional=False, upstream_headers_claims=["email", "roles"],
                upstream_headers_names=["X-User-Email", "X-User-Roles"])]},
            {"name": "scoped", "paths": ["/scoped"],
             "plugins": [oidc(idp, scopes_required=["orders:read"])]},
            {"name": "acl", "paths": ["/admin"], "plugins": [
                oidc(idp, authenticated_groups_claim=["groups"]),
                {"name": "acl", "config": {"allow": ["admins"]}}]},
            {"name": "tiers", "paths": ["/tiers"],
             "plugins": [oidc(idp, consumer_groups_claim=["tiers"])]},
            {"name": "anonymous", "paths": ["/open"],
             "plugins": [oidc(idp, anonymous="anon")]},
            {"name": "ai", "paths": ["/ai"], "plugins": [
                oidc(idp), {"name": "ai-proxy", "config": ai}]},
        ]
        doc = service_doc(upstream.port, routes=routes)
        doc["consumers"] = [{"username": "alice"}, {"username": "bob", "custom_id": "bob-cid"},
                            {"username": "anon"}]
        doc["consumer_groups"] = [{"name": "gold", "plugins": [tier]}]
        with GatewayProcess(doc) as gw:
            yield gw, mock


def call(gw, path: str, token: str | None = None, method: str = "GET", body: bytes | None = None,
         headers: dict | None = None):
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return gw.request(method, path, body, sent)


def test_a_valid_token_maps_its_consumer_and_claims(stack, idp, upstream):
    gw, _ = stack
    token = idp.token(preferred_username="bob-cid", email="bob@example.com",
                      roles=["reader", "writer"])
    status, _, _ = call(gw, "/api/orders", token)
    assert status == 200
    sent = upstream.requests[-1]
    assert sent.header("x-consumer-username") == "bob"
    assert sent.header("x-consumer-custom-id") == "bob-cid"
    assert sent.header("x-credential-identifier") == "alice"  # the token's sub
    assert sent.header("x-user-email") == "bob@example.com"
    assert sent.header("x-user-roles") == '["reader","writer"]'


def test_a_repeated_token_is_decided_again_with_the_same_headers(stack, idp, upstream):
    # The second request is decided from the core (the token was checked
    # before): the same consumer and claim headers, forged ones replaced.
    gw, _ = stack
    token = idp.token(preferred_username="alice", email="alice@example.com")
    forged = {"X-User-Email": "mallory@example.com", "X-Consumer-Username": "bob"}
    for _ in range(3):
        assert call(gw, "/api/orders", token, headers=forged)[0] == 200
        sent = upstream.requests[-1]
        assert sent.header_all("x-user-email") == ["alice@example.com"]
        assert sent.header_all("x-consumer-username") == ["alice"]
        assert sent.header("x-user-roles") is None
    expired = idp.token(preferred_username="alice", lifetime=1)
    assert call(gw, "/api/orders", expired)[0] == 200
    time.sleep(1.2)
    assert call(gw, "/api/orders", expired)[0] == 401


def test_refusals_follow_rfc_6750(stack, idp):
    gw, _ = stack
    status, headers, body = call(gw, "/api/orders")
    assert (status, headers["www-authenticate"]) == (401, "Bearer")
    assert orjson.loads(body) == {"message": "Unauthorized"}
    for bad in ("not-a-token", idp.token(exp=int(time.time()) - 5),
                idp.token(iss="https://evil.example")):
        status, headers, _ = call(gw, "/api/orders", bad,
                                  headers={"X-Consumer-Username": "alice"})
        assert (status, headers["www-authenticate"]) == (401, 'Bearer error="invalid_token"')
    status, headers, body = call(gw, "/scoped", idp.token(scope="orders:write"))
    assert (status, headers["www-authenticate"]) == (403,
                                                      'Bearer error="insufficient_scope"')
    assert orjson.loads(body) == {"message": "Forbidden"}
    assert call(gw, "/scoped", idp.token(scope="profile orders:read"))[0] == 200
    # A consumer that cannot be found, without consumer_optional.
    assert call(gw, "/api", idp.token(preferred_username="nobody"))[0] == 403


def test_the_token_may_come_in_the_query_or_the_body(stack, idp, upstream):
    gw, _ = stack
    token = idp.token(preferred_username="alice")
    assert gw.request("GET", f"/api/q?access_token={token}")[0] == 200
    assert upstream.requests[-1].header("x-consumer-username") == "alice"
    form = f"access_token={token}&other=1".encode()
    assert gw.request("POST", "/api/form", form,
                      {"Content-Type": "application/x-www-form-urlencoded"})[0] == 200
    assert gw.request("GET", "/api/two", None, {"Authorization": f"Bearer {token}",
                                                 "x-access-token": "other"})[0] == 400


def test_groups_from_claims_feed_acl_and_consumer_group_plugins(stack, idp, upstream):
    gw, _ = stack
    assert call(gw, "/admin", idp.token(groups=["admins"]))[0] == 200
    assert call(gw, "/admin", idp.token(groups=["users"]))[0] == 403
    assert call(gw, "/tiers", idp.token(tiers=["gold"]))[0] == 200
    assert upstream.requests[-1].header("x-tier") == "gold"
    assert call(gw, "/tiers", idp.token(tiers=["silver"]))[0] == 200
    assert upstream.requests[-1].header("x-tier") is None


def test_anonymous_takes_over_a_missing_or_bad_token(stack, idp, upstream):
    gw, _ = stack
    assert call(gw, "/open", "bad.to.ken")[0] == 200
    assert upstream.requests[-1].header("x-consumer-username") == "anon"
    assert upstream.requests[-1].header("x-anonymous-consumer") == "true"


def test_opaque_tokens_are_introspected(stack, idp, upstream):
    gw, _ = stack
    idp.introspected["opaque-alice"] = {"active": True, "sub": "alice-sub", "iss": idp.issuer,
                                        "preferred_username": "alice",
                                        "exp": int(time.time()) + 300}
    before = idp.counts["introspection"]
    for _ in range(3):
        assert call(gw, "/api/x", "opaque-alice")[0] == 200
    assert upstream.requests[-1].header("x-consumer-username") == "alice"
    assert idp.counts["introspection"] == before + 1
    idp.introspected["opaque-gone"] = {"active": False}
    assert call(gw, "/api/x", "opaque-gone")[0] == 401


def test_ai_proxy_never_forwards_the_client_s_token(stack, idp):
    gw, mock = stack
    token = idp.token(preferred_username="alice")
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    status, _, _ = gw.request("POST", "/ai", body, {
        "Content-Type": "application/json", "Authorization": f"Bearer {token}",
        "x-access-token": token})
    assert status == 200
    seen = {name.lower(): value for name, value in mock.requests()[-1]["headers"]}
    assert seen["authorization"] == "Bearer provider-key"
    assert "x-access-token" not in seen and token not in orjson.dumps(seen).decode()


def test_a_provider_that_does_not_answer_is_a_bounded_503(idp, upstream):
    route = {"name": "slow", "paths": ["/slow"], "plugins": [oidc(idp, timeout=300,
                                                                  rediscovery_lifetime=0)]}
    idp.delay = 1.0
    try:
        with GatewayProcess(service_doc(upstream.port, routes=[route])) as gw:
            started = time.monotonic()
            status, _, body = call(gw, "/slow", idp.token(kid="rsa-2"))
            assert status == 503 and time.monotonic() - started < 2.0, body
    finally:
        idp.delay = 0.0


def test_the_openai_sdk_authenticates_with_its_token_as_api_key(stack, idp):
    import openai

    gw, mock = stack
    token = idp.token(preferred_username="alice")
    client = openai.OpenAI(api_key=token, base_url=f"http://127.0.0.1:{gw.port}/ai/v1",
                           max_retries=0)
    answer = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hello"}])
    assert answer.choices[0].message.content
    seen = {name.lower(): value for name, value in mock.requests()[-1]["headers"]}
    assert seen["authorization"] == "Bearer provider-key"
    bad = openai.OpenAI(api_key="not-a-token", base_url=f"http://127.0.0.1:{gw.port}/ai/v1",
                        max_retries=0)
    try:
        bad.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    except openai.AuthenticationError as exc:
        assert exc.status_code == 401
    else:
        raise AssertionError("an invalid token reached the model")
