"""key-auth handler on unit contexts: where keys are found, Kong's answers,
hidden credentials, anonymous fallback and the logical OR between plugins."""

import asyncio

import orjson
import pytest

from fastgw.plugins.base import PluginError
from fastgw.plugins.context import make_context


def run(handler, ctx):
    """Drive ``access`` as the runner does: await it only when it returns
    something to await."""
    pending = handler.access(ctx)
    if pending is not None:
        asyncio.run(pending)
    return ctx


def upstream_header(ctx, name):
    return ctx.request.headers.get(name)


def assert_rejected(ctx, message, challenge="Key"):
    assert ctx.exit_status == 401
    assert orjson.loads(ctx.exit_body) == {"message": message}
    assert ctx.exit_headers["WWW-Authenticate"] == challenge
    assert ctx.consumer is None


# --- finding the key ------------------------------------------------------------


def test_key_in_header_identifies_the_consumer_synchronously(key_auth, ids):
    handler = key_auth()
    ctx = make_context(headers={"apikey": "alice-key"})
    assert handler.access(ctx) is None  # the hot path never needs an await
    assert not ctx.exited
    assert ctx.consumer.username == "alice"
    assert ctx.credential["key"] == "alice-key"
    assert upstream_header(ctx, "X-Consumer-Username") == "alice"
    assert upstream_header(ctx, "X-Consumer-ID") == ctx.consumer.id
    assert upstream_header(ctx, "X-Credential-Identifier") == ids["alice-key"]
    assert upstream_header(ctx, "X-Anonymous-Consumer") is None
    assert upstream_header(ctx, "X-Consumer-Custom-ID") is None
    # Without hide_credentials the key still goes upstream.
    assert upstream_header(ctx, "apikey") == "alice-key"


def test_it_tells_the_context_where_gateway_credentials_are(key_auth):
    # ai-proxy drops these before a provider sees the request, even where the
    # key was not found (a rejected request never gets that far).
    ctx = run(key_auth(key_names=["X-GW-Key", "token"], key_in_body=True),
              make_context(headers={"x-gw-key": "alice-key"}))
    assert ctx.credential_headers == {b"x-gw-key", b"x_gw_key", b"token"}
    assert ctx.credential_fields == {"X-GW-Key", "token"}
    quiet = run(key_auth(key_in_header=False), make_context(headers={"apikey": "x"}))
    assert quiet.credential_headers == frozenset()


def test_header_names_match_case_insensitively(key_auth):
    ctx = run(key_auth(key_names=["X-API-Key"]), make_context(headers={"x-api-key": "bob-key"}))
    assert ctx.consumer.username == "bob"
    assert upstream_header(ctx, "X-Consumer-Custom-ID") == "bob-crm"


@pytest.mark.parametrize("key_name", ["api_key", "api-key", "API_KEY"])
@pytest.mark.parametrize("sent", ["api-key", "api_key", "Api-Key"])
def test_dashes_and_underscores_name_the_same_header(key_auth, key_name, sent):
    # As Kong reads headers (nginx's $http_ variables): Kong's key-auth spec
    # finds key_names [api_key] sent as "api-key".
    ctx = run(key_auth(key_names=[key_name]), make_context(headers={sent: "alice-key"}))
    assert ctx.consumer.username == "alice"
    # Whatever the spelling, it is a gateway credential ai-proxy drops.
    assert sent.lower().encode() in ctx.credential_headers


def test_a_key_sent_under_both_spellings_is_a_duplicate(key_auth):
    ctx = run(key_auth(key_names=["api_key"]), make_context(
        headers=[("api-key", "alice-key"), ("api_key", "alice-key")]))
    assert_rejected(ctx, "Duplicate API key found")


def test_hide_credentials_removes_every_spelling(key_auth):
    ctx = run(key_auth(key_names=["api_key"], hide_credentials=True),
              make_context(headers={"Api-Key": "alice-key", "other": "x"}))
    assert ctx.consumer.username == "alice"
    assert upstream_header(ctx, "api-key") is None
    assert upstream_header(ctx, "other") == "x"


def test_credential_without_id_gets_a_stable_derived_identifier(key_auth, ids):
    first = run(key_auth(), make_context(headers={"apikey": "alice-second-key"}))
    second = run(key_auth(), make_context(headers={"apikey": "alice-second-key"}))
    identifier = upstream_header(first, "X-Credential-Identifier")
    assert identifier == upstream_header(second, "X-Credential-Identifier")
    assert identifier not in (ids["alice-key"], "alice-second-key")
    assert len(identifier) == 36


def test_key_in_query(key_auth):
    ctx = run(key_auth(), make_context(url="/orders?page=2&apikey=bob-key"))
    assert ctx.consumer.username == "bob"
    assert ctx.request.upstream_url == "/orders?page=2&apikey=bob-key"


def test_each_name_is_searched_everywhere_before_the_next_name(key_auth):
    # Kong's order: name by name, and for each name header, query, body.
    handler = key_auth(key_names=["apikey", "token"])
    ctx = run(handler, make_context(url="/?apikey=alice-key", headers={"token": "bob-key"}))
    assert ctx.consumer.username == "alice"


def test_disabled_places_are_not_searched(key_auth):
    ctx = run(key_auth(key_in_header=False), make_context(headers={"apikey": "alice-key"}))
    assert_rejected(ctx, "No API key found in request")
    ctx = run(key_auth(key_in_query=False), make_context(url="/?apikey=alice-key"))
    assert_rejected(ctx, "No API key found in request")


# --- failures ---------------------------------------------------------------------


def test_missing_key(key_auth):
    assert_rejected(run(key_auth(), make_context()), "No API key found in request")


def test_empty_key_counts_as_missing(key_auth):
    ctx = run(key_auth(), make_context(headers={"apikey": ""}))
    assert_rejected(ctx, "No API key found in request")


def test_unknown_key_is_unauthorized_with_the_realm(key_auth):
    ctx = run(key_auth(realm="orders"), make_context(headers={"apikey": "guess"}))
    assert_rejected(ctx, "Unauthorized", 'Key realm="orders"')


@pytest.mark.parametrize("request_parts", [
    {"headers": [("apikey", "alice-key"), ("ApiKey", "alice-key")]},
    {"url": "/?apikey=alice-key&apikey=bob-key"},
])
def test_a_key_sent_twice_is_refused(key_auth, request_parts):
    ctx = run(key_auth(), make_context(**request_parts))
    assert_rejected(ctx, "Duplicate API key found")


def test_spoofed_identity_headers_never_reach_the_upstream(key_auth):
    ctx = run(key_auth(), make_context(headers={"apikey": "bob-key", "X-Consumer-Username":
                                                "alice", "X-Anonymous-Consumer": "true"}))
    assert ctx.request.headers.get_all("X-Consumer-Username") == ["bob"]
    assert upstream_header(ctx, "X-Anonymous-Consumer") is None


# --- hide_credentials ---------------------------------------------------------------


def test_hide_credentials_removes_the_header(key_auth):
    ctx = run(key_auth(hide_credentials=True),
              make_context(headers={"ApiKey": "alice-key", "Accept": "text/plain"}))
    assert ctx.consumer.username == "alice"
    assert upstream_header(ctx, "apikey") is None
    assert upstream_header(ctx, "accept") == "text/plain"


def test_hide_credentials_removes_only_the_key_from_the_query(key_auth):
    ctx = run(key_auth(hide_credentials=True), make_context(url="/o?page=2&apikey=bob-key&q=a"))
    assert ctx.consumer.username == "bob"
    assert ctx.request.upstream_url == "/o?page=2&q=a"


@pytest.mark.parametrize(("key", "message"), [
    ("guess", "Unauthorized"), ("", "No API key found in request")])
def test_hide_credentials_hides_even_an_unusable_key(key_auth, key, message):
    ctx = run(key_auth(hide_credentials=True), make_context(headers={"apikey": key}))
    assert_rejected(ctx, message)
    assert upstream_header(ctx, "apikey") is None


# --- key_in_body ------------------------------------------------------------------------


def body_context(body: bytes, content_type: str, **parts):
    headers = {"Content-Type": content_type, **parts.pop("headers", {})}
    return make_context("POST", headers=headers, body=body, **parts)


@pytest.mark.parametrize(("body", "content_type"), [
    (b'{"apikey": "bob-key", "n": 1}', "application/json"),
    (b'{"apikey": "bob-key"}', "application/vnd.api+json; charset=utf-8"),
    (b"apikey=bob-key&n=1", "application/x-www-form-urlencoded"),
])
def test_key_in_body(key_auth, body, content_type):
    handler = key_auth(key_in_body=True)
    ctx = body_context(body, content_type)
    pending = handler.access(ctx)
    assert pending is not None  # reading the body needs the runner to await
    asyncio.run(pending)
    assert ctx.consumer.username == "bob"
    assert ctx.request.body_replaced is False


def test_key_in_body_is_not_read_when_a_header_has_the_key(key_auth):
    ctx = body_context(b'{"apikey": "bob-key"}', "application/json",
                       headers={"apikey": "alice-key"})
    assert key_auth(key_in_body=True).access(ctx) is None
    assert ctx.consumer.username == "alice"


@pytest.mark.parametrize(("body", "content_type", "remaining"), [
    (b'{"apikey": "bob-key", "n": 1}', "application/json", b'{"n":1}'),
    (b"n=1&apikey=bob-key&m=a+b", "application/x-www-form-urlencoded", b"n=1&m=a+b"),
])
def test_hide_credentials_rewrites_the_body(key_auth, body, content_type, remaining):
    ctx = run(key_auth(key_in_body=True, hide_credentials=True), body_context(body, content_type))
    assert ctx.consumer.username == "bob"
    assert ctx.request.body == remaining
    assert ctx.request.body_replaced


def test_hide_credentials_with_body_also_cleans_a_body_copy_of_a_header_key(key_auth):
    ctx = body_context(b'{"apikey": "x", "n": 1}', "application/json",
                       headers={"apikey": "alice-key"})
    run(key_auth(key_in_body=True, hide_credentials=True), ctx)
    assert ctx.consumer.username == "alice"
    assert upstream_header(ctx, "apikey") is None
    assert ctx.request.body == b'{"n":1}'


@pytest.mark.parametrize(("body", "content_type", "message"), [
    (b'{"apikey": ["alice-key", "bob-key"]}', "application/json", "Duplicate API key found"),
    (b"apikey=alice-key&apikey=bob-key", "application/x-www-form-urlencoded",
     "Duplicate API key found"),
    (b'{"apikey": 12345}', "application/json", "No API key found in request"),
    (b'["apikey", "bob-key"]', "application/json", "No API key found in request"),
    (b"{not json", "application/json", "No API key found in request"),
    (b"apikey=bob-key", "text/plain", "No API key found in request"),
])
def test_unusable_bodies(key_auth, body, content_type, message):
    ctx = run(key_auth(key_in_body=True), body_context(body, content_type))
    assert_rejected(ctx, message)


# --- preflight, anonymous, several auth plugins -----------------------------------------


def test_preflight_is_authenticated_unless_disabled(key_auth):
    assert_rejected(run(key_auth(), make_context("OPTIONS")), "No API key found in request")
    ctx = run(key_auth(run_on_preflight=False), make_context("OPTIONS"))
    assert not ctx.exited and ctx.consumer is None


@pytest.mark.parametrize("by", ["username", "id"])
@pytest.mark.parametrize("headers", [{}, {"apikey": "guess"}])
def test_anonymous_consumer_replaces_the_401(key_auth, ids, by, headers):
    anonymous = "anonymous" if by == "username" else ids["anonymous"]
    ctx = run(key_auth(anonymous=anonymous), make_context(headers=headers))
    assert not ctx.exited
    assert ctx.consumer.username == "anonymous"
    assert ctx.credential is None
    assert upstream_header(ctx, "X-Anonymous-Consumer") == "true"
    assert upstream_header(ctx, "X-Consumer-ID") == ids["anonymous"]
    assert upstream_header(ctx, "X-Credential-Identifier") is None


def test_anonymous_is_not_matched_by_custom_id(key_auth):
    with pytest.raises(PluginError, match="anonymous consumer 'bob-crm'"):
        run(key_auth(anonymous="bob-crm"), make_context())


def test_a_missing_anonymous_consumer_fails_the_request(key_auth):
    handler = key_auth(anonymous="nobody")
    with pytest.raises(PluginError, match="anonymous consumer 'nobody' is configured"):
        run(handler, make_context())
    # A valid key still works: the anonymous consumer is only needed on failure.
    assert run(handler, make_context(headers={"apikey": "bob-key"})).consumer.username == "bob"


def test_with_anonymous_an_identified_request_is_left_alone(key_auth):
    # Logical OR: an earlier auth plugin identified the caller.
    ctx = run(key_auth(), make_context(headers={"apikey": "bob-key"}))
    before = ctx.request.headers.pairs()
    run(key_auth(anonymous="anonymous", key_names=["other"]), ctx)
    assert not ctx.exited
    assert ctx.consumer.username == "bob"
    assert ctx.request.headers.pairs() == before


def test_with_anonymous_an_anonymous_request_is_still_authenticated(key_auth):
    ctx = run(key_auth(anonymous="anonymous", key_names=["other"]),
              make_context(headers={"apikey": "bob-key"}))
    assert ctx.consumer.username == "anonymous"
    run(key_auth(anonymous="anonymous"), ctx)
    assert ctx.consumer.username == "bob"
    assert upstream_header(ctx, "X-Anonymous-Consumer") is None


def test_without_anonymous_every_plugin_must_succeed(key_auth):
    # Logical AND: a second key-auth without anonymous still demands its key.
    ctx = run(key_auth(), make_context(headers={"apikey": "bob-key"}))
    run(key_auth(key_names=["other"]), ctx)
    assert ctx.exit_status == 401


def _handler_with_keys(credentials):
    from fastgw.config.loader import parse_config
    from fastgw.plugins.key_auth.handler import KeyAuth
    from fastgw.plugins.state import ConfigState

    config = parse_config({"_format_version": "3.0", "consumers": [
        {"username": "carol", "keyauth_credentials": credentials}],
        "plugins": [{"name": "key-auth"}]}, env={})
    return KeyAuth(config.plugins[0].config, ConfigState(config), config.plugins[0])


def test_a_key_with_a_ttl_expires(key_auth):
    import time

    now = time.time()
    handler = _handler_with_keys([
        {"key": "expired", "ttl": 60, "created_at": now - 61},
        {"key": "fresh", "ttl": 60, "created_at": now - 30},
        {"key": "from-load", "ttl": 60},
        {"key": "forever", "ttl": 0}])
    assert_rejected(run(handler, make_context(headers={"apikey": "expired"})), "Unauthorized")
    for key in ("fresh", "from-load", "forever"):
        assert run(handler, make_context(headers={"apikey": key})).consumer.username == "carol"
    # The compiled fast path never remembers an expiring key: the access
    # phase, which checks the deadline, decides those.
    from fastgw.plugins.fast import FastRequest

    decide = handler.fast_decision(None, None).decide
    for key, decided in (("fresh", None), ("forever", True)):
        request = FastRequest(b"GET", b"h", b"/", [b"apikey", key.encode()], b"1.2.3.4", b"i")
        assert decide(request) is decided
