"""The fast decision: a bearer token checked once is decided again from the
core without a request context, while it stands, and a new one is checked
there once the provider's keys are known; anything else goes to the access
phase."""

import asyncio
import time

from fastgw._core.decisions import FastRequest
from fastgw.plugins.context import make_context


def fast_request(token: str, *extra: bytes) -> FastRequest:
    headers = [b"Authorization", f"Bearer {token}".encode(), *extra]
    return FastRequest(b"GET", b"api", b"/x", headers, b"127.0.0.1", b"id")


def checked(plugin, token: str) -> None:
    """One request through the access phase (the token gets checked)."""
    async def run():
        ctx = make_context("GET", "/x", {"Authorization": f"Bearer {token}"})
        result = plugin.access(ctx)
        if result is not None:
            await result
        assert not ctx.exit_status, ctx.exit_body

    asyncio.run(run())


def test_a_checked_token_is_decided_fast_until_it_expires(handler, idp):
    plugin = handler(issuer=idp.issuer, consumer_claim=["preferred_username"],
                     upstream_headers_claims=["email"], upstream_headers_names=["X-Email"])
    decide = plugin.fast_decision(None, None).decide
    token = idp.token(preferred_username="alice", email="a@example.com", lifetime=2)
    request = fast_request(token, b"X-Email", b"forged")
    assert decide(request) is None  # never seen: the access phase checks it
    checked(plugin, token)
    request = fast_request(token, b"X-Email", b"forged", b"X-Consumer-Username", b"bob")
    assert decide(request) is True
    assert request.consumer.username == "alice" and request.credential_identifier == "alice"
    assert request.headers.count(b"X-Email") == 1 and b"a@example.com" in request.headers
    assert b"bob" not in request.headers
    assert decide(fast_request(token, b"x-access-token", b"other")) is None  # two tokens
    time.sleep(2.1)
    assert decide(fast_request(token)) is None  # expired: the access phase refuses it


def test_groups_and_anonymous_leave_every_request_to_the_access_phase(handler, idp):
    for options in ({"authenticated_groups_claim": ["groups"]},
                    {"consumer_groups_claim": ["tiers"]}, {"anonymous": "alice"},
                    {"bearer_token_param_type": ["query"]}):
        assert handler(issuer=idp.issuer, **options).fast_decision(None, None) is None


def test_a_new_token_is_checked_in_the_core_once_the_keys_are_known(handler, idp):
    plugin = handler(issuer=idp.issuer, consumer_claim=["preferred_username"])
    decide = plugin.fast_decision(None, None).decide
    checked(plugin, idp.token(preferred_username="alice"))  # the keys are fetched
    request = fast_request(idp.token(preferred_username="alice", email="new@example.com"))
    assert decide(request) is True and request.consumer.username == "alice"
    # What the access phase must answer is left to it: a bad signature, an
    # expired token, a token without a consumer, a scheme other than Bearer.
    forged = idp.token(preferred_username="alice")
    forged = forged[:-4] + ("AAAA" if not forged.endswith("AAAA") else "BBBB")
    for token in (forged, idp.token(preferred_username="alice", lifetime=-60),
                  idp.token(preferred_username="nobody")):
        assert decide(fast_request(token)) is None
    fresh = idp.token(preferred_username="alice")
    assert decide(FastRequest(b"GET", b"api", b"/x", [b"Authorization",
                                                      f"bearer {fresh}".encode()],
                              b"127.0.0.1", b"id")) is None
