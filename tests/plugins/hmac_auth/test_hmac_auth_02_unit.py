"""hmac-auth on unit contexts: Kong's signing string, clock skew, algorithms,
enforced headers, body digests, hidden credentials and anonymous fallback."""

import asyncio
import base64
import hashlib
import time
from email.utils import formatdate

import orjson
import pytest
from hmac_signing import ANONYMOUS_ID, authorization, now, sign

from fastgw.plugins.base import PluginError
from fastgw.plugins.context import make_context


def run(handler, ctx):
    pending = handler.access(ctx)
    if pending is not None:
        asyncio.run(pending)
    return ctx


def signed(method="GET", url="/orders?page=2", headers=("date",), *, secret="s3cret",
           algorithm="hmac-sha256", username="alice", extra=None, where="Authorization",
           body=None, signing_string=None, date=None):
    """A request signed as a client does, by its own rendering of the headers."""
    date = date or now()
    values = {"date": date, **(extra or {})}
    lines = []
    for name in headers:
        if name == "@request-target":
            lines.append(f"@request-target: {method.lower()} {url}")
        elif name == "request-line":
            lines.append(f"{method} {url} HTTP/1.1")
        elif name in values:
            lines.append(f"{name}: {values[name]}")
        else:
            lines.append(f"{name}:")
    signature = sign(signing_string or "\n".join(lines), secret, algorithm)
    sent = {"Date": date, **(extra or {}),
            where: authorization(list(headers), signature, username, algorithm)}
    return make_context(method, url, headers=sent, body=body)


def assert_rejected(ctx, message, challenge="hmac"):
    assert ctx.exit_status == 401
    assert orjson.loads(ctx.exit_body) == {"message": message}
    assert ctx.exit_headers["WWW-Authenticate"] == challenge
    assert ctx.consumer is None


@pytest.mark.parametrize("algorithm", ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"])
def test_a_valid_signature_identifies_the_consumer(handler, algorithm):
    ctx = run(handler(), signed(algorithm=algorithm))
    assert not ctx.exited
    assert ctx.consumer.username == "alice"
    assert ctx.request.headers.get("X-Credential-Identifier") == "alice"
    assert ctx.request.headers.get("X-Consumer-Username") == "alice"
    assert ctx.request.headers.get("Authorization") is not None  # not hidden by default


@pytest.mark.parametrize("headers", [
    ("date", "@request-target"),
    ("request-line",),
    ("date", "x-custom", "absent-header"),
    ("x-custom", "date"),
])
def test_every_way_of_naming_what_is_signed(handler, headers):
    ctx = run(handler(), signed("POST", "/a/b?x=1&y=%20", headers, extra={"x-custom": "v 1"}))
    assert ctx.consumer is not None, ctx.exit_body


def test_x_date_is_preferred_and_either_may_carry_the_time(handler):
    stale = formatdate(0, usegmt=True)
    ctx = signed(headers=("x-date",), extra={"x-date": now()})
    ctx.request.headers.set("Date", stale)
    assert run(handler(), ctx).consumer is not None
    ctx = signed(extra={"x-date": stale})
    assert run(handler(), ctx).consumer is not None  # Date is still within the skew


@pytest.mark.parametrize("date", [None, "yesterday", formatdate(0, usegmt=True)])
def test_a_missing_bad_or_old_date_is_refused(handler, date):
    ctx = signed()
    ctx.request.headers.remove("date")
    if date is not None:
        ctx.request.headers.set("Date", date)
    assert_rejected(run(handler(), ctx), "HMAC signature cannot be verified, a valid date or "
                    "x-date header is required for HMAC Authentication")


def test_clock_skew_is_configurable(handler):
    earlier = formatdate(time.time() - 100, usegmt=True)
    assert run(handler(), signed(date=earlier)).consumer is not None
    assert_rejected(run(handler(clock_skew=50), signed(date=earlier)),
                    "HMAC signature cannot be verified, a valid date or x-date header is "
                    "required for HMAC Authentication")


def test_no_authorization_at_all(handler):
    assert_rejected(run(handler(realm="orders"), make_context(headers={"Date": now()})),
                    "Unauthorized", 'hmac realm="orders"')


@pytest.mark.parametrize(("change", "message"), [
    ({"secret": "wrong"}, "HMAC signature does not match"),
    ({"signing_string": "date: something else"}, "HMAC signature does not match"),
    ({"username": "nobody"}, "HMAC signature cannot be verified"),
    ({"username": "bob-signer"}, "HMAC signature does not match"),
])
def test_wrong_signatures(handler, change, message):
    assert_rejected(run(handler(), signed(**change)), message)


def test_unparsable_authorization(handler):
    ctx = make_context(headers={"Date": now(), "Authorization": "hmac nonsense"})
    assert_rejected(run(handler(), ctx), "HMAC signature cannot be verified")
    ctx = make_context(headers={"Date": now(), "Authorization": authorization(
        ["date"], "!!not base64!!")})
    assert_rejected(run(handler(), ctx), "HMAC signature does not match")


def test_algorithms_not_allowed_are_refused(handler):
    ctx = signed(algorithm="hmac-sha1")
    assert_rejected(run(handler(algorithms=["hmac-sha256"]), ctx),
                    "HMAC signature cannot be verified")


def test_enforced_headers_must_be_signed(handler):
    config = {"enforce_headers": ["date", "@request-target"]}
    assert_rejected(run(handler(**config), signed(headers=("date",))),
                    "HMAC signature cannot be verified")
    assert run(handler(**config), signed(headers=("date", "@request-target"))).consumer


def test_proxy_authorization_wins_and_hide_credentials_removes_the_used_header(handler):
    ctx = signed(where="Proxy-Authorization")
    ctx.request.headers.set("Authorization", "Bearer for-the-upstream")
    run(handler(hide_credentials=True), ctx)
    assert ctx.consumer.username == "alice"
    assert ctx.request.headers.get("Proxy-Authorization") is None
    assert ctx.request.headers.get("Authorization") == "Bearer for-the-upstream"
    ctx = run(handler(hide_credentials=True), signed())
    assert ctx.consumer and ctx.request.headers.get("Authorization") is None


def _digest(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


@pytest.mark.parametrize(("body", "digest", "accepted"), [
    (b'{"a": 1}', _digest(b'{"a": 1}'), True),
    (b'{"a": 1}', _digest(b'{"a": 2}'), False),
    (b'{"a": 1}', None, False),
    (b"", None, True),
    (b"", _digest(b""), True),
])
def test_body_validation(handler, body, digest, accepted):
    extra = {"digest": digest} if digest is not None else {}
    headers = ("date", "digest") if digest is not None else ("date",)
    ctx = run(handler(validate_request_body=True),
              signed("POST", "/", headers, extra=extra, body=body))
    if accepted:
        assert ctx.consumer is not None
    else:
        assert_rejected(ctx, "HMAC signature does not match")


def test_anonymous_fallback(handler):
    ctx = run(handler(anonymous="anonymous"), signed(secret="wrong"))
    assert not ctx.exited
    assert ctx.consumer.id == ANONYMOUS_ID
    assert ctx.request.headers.get("X-Anonymous-Consumer") == "true"
    with pytest.raises(PluginError):
        run(handler(anonymous="ghost"), signed(secret="wrong"))
