"""basic-auth handler on unit contexts: credentials parsing, Kong's answers,
Proxy-Authorization, hidden credentials and the anonymous fallback."""

from base64 import b64encode

import orjson
import pytest

from fastgw.plugins.basic_auth.handler import parse_basic
from fastgw.plugins.context import make_context


def basic(user_password: str) -> str:
    return "Basic " + b64encode(user_password.encode()).decode()


def authenticate(handler, **parts):
    ctx = make_context(**parts)
    assert handler.access(ctx) is None  # basic-auth never needs an await
    return ctx


def assert_rejected(ctx, challenge='Basic realm="service"'):
    assert ctx.exit_status == 401
    assert orjson.loads(ctx.exit_body) == {"message": "Unauthorized"}
    assert ctx.exit_headers["WWW-Authenticate"] == challenge
    assert ctx.consumer is None


@pytest.mark.parametrize(("value", "expected"), [
    (basic("alice-login:s3cret:with:colons"), ("alice-login", "s3cret:with:colons")),
    (basic("bob:"), ("bob", "")),
    ("  basic " + b64encode(b"bob:pw").decode(), ("bob", "pw")),
    ("Basic " + b64encode(b"bob:pw").decode() + "  ", ("bob", "pw")),
    (basic(":a:b"), ("a", "b")),  # Kong's unanchored pattern skips the leading colon
    (basic(":no-user"), None),
    (basic("no-colon"), None),
    ("Basic not*base64", None),
    ("Basic " + b64encode(b"\xff\xfe:x").decode(), None),
    ("Bearer " + b64encode(b"bob:pw").decode(), None),
    ("Basic \u00e9", None),
    (None, None),
])
def test_parse_basic(value, expected):
    assert parse_basic(value) == expected


def test_valid_credentials_identify_the_consumer(basic_auth):
    ctx = authenticate(basic_auth(),
                       headers={"Authorization": basic("alice-login:s3cret:with:colons")})
    assert not ctx.exited
    assert ctx.consumer.username == "alice"
    headers = ctx.request.headers
    assert headers.get("X-Consumer-Username") == "alice"
    assert headers.get("X-Consumer-ID") == ctx.consumer.id
    # Kong identifies a basic-auth credential by its user name.
    assert headers.get("X-Credential-Identifier") == "alice-login"
    assert headers.get("X-Anonymous-Consumer") is None
    assert headers.get("Authorization") is not None


def test_utf8_passwords(basic_auth):
    ctx = authenticate(basic_auth(), headers={"Authorization": basic("bob:p\u00e4ss")})
    assert ctx.consumer.username == "bob"
    assert ctx.request.headers.get("X-Consumer-Custom-ID") == "bob-crm"


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": basic("alice-login:wrong")},
    {"Authorization": basic("alice-login:s3cret")},  # a prefix of the password
    {"Authorization": basic("nobody:s3cret:with:colons")},
    {"Authorization": "Basic garbage"},
    {"Authorization": "Bearer abc"},
])
def test_failures_answer_401_with_the_challenge(basic_auth, headers):
    assert_rejected(authenticate(basic_auth(), headers=headers))


def test_the_realm_is_configurable(basic_auth):
    assert_rejected(authenticate(basic_auth(realm="Orders API")), 'Basic realm="Orders API"')


def test_proxy_authorization_is_tried_first(basic_auth):
    ctx = authenticate(basic_auth(), headers={
        "Proxy-Authorization": basic("bob:p\u00e4ss"),
        "Authorization": basic("alice-login:s3cret:with:colons")})
    assert ctx.consumer.username == "bob"


def test_authorization_is_used_when_proxy_authorization_names_nobody(basic_auth):
    ctx = authenticate(basic_auth(), headers={
        "Proxy-Authorization": basic("nobody:x"),
        "Authorization": basic("alice-login:s3cret:with:colons")})
    assert ctx.consumer.username == "alice"


def test_a_wrong_proxy_password_is_not_rescued_by_authorization(basic_auth):
    # Kong stops at the first user name it finds, right password or not.
    assert_rejected(authenticate(basic_auth(), headers={
        "Proxy-Authorization": basic("bob:wrong"),
        "Authorization": basic("alice-login:s3cret:with:colons")}))


def test_hide_credentials_removes_the_headers_it_read(basic_auth):
    ctx = authenticate(basic_auth(hide_credentials=True), headers={
        "Proxy-Authorization": basic("bob:p\u00e4ss"),
        "Authorization": "Bearer for-the-upstream"})
    assert ctx.consumer.username == "bob"
    headers = ctx.request.headers
    assert headers.get("Proxy-Authorization") is None
    # Authorization was never read (Proxy-Authorization succeeded): it stays.
    assert headers.get("Authorization") == "Bearer for-the-upstream"
    ctx = authenticate(basic_auth(hide_credentials=True),
                       headers={"Authorization": basic("alice-login:wrong")})
    assert_rejected(ctx)
    assert ctx.request.headers.get("Authorization") is None


def test_anonymous_consumer_replaces_the_401(basic_auth):
    ctx = authenticate(basic_auth(anonymous="anonymous"),
                       headers={"Authorization": basic("alice-login:wrong")})
    assert not ctx.exited
    assert ctx.consumer.username == "anonymous"
    assert ctx.credential is None
    assert ctx.request.headers.get("X-Anonymous-Consumer") == "true"


def test_with_anonymous_an_identified_request_is_left_alone(basic_auth):
    ctx = authenticate(basic_auth(), headers={"Authorization": basic("bob:p\u00e4ss")})
    basic_auth(anonymous="anonymous", realm="other").access(ctx)
    assert ctx.consumer.username == "bob" and not ctx.exited


def test_preflight_is_always_authenticated(basic_auth):
    # basic-auth has no run_on_preflight in Kong.
    assert_rejected(authenticate(basic_auth(), method="OPTIONS"))
