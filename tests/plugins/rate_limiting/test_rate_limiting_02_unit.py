"""rate-limiting's access and header_filter with policy local, on a test
clock: what passes, Kong's headers and their numbers, who is counted together."""

import logging

import orjson
import pytest

from fastgw._core.ratelimit import SharedCounterTable
from fastgw.config.model import Service
from fastgw.plugins.context import make_context, set_response
from fastgw.plugins.rate_limiting.algorithms import FixedLimits, NodeCounters, sliding_wait

# The clock fixture starts at 2023-11-14 22:14:20.5 UTC: 39.5 s are left in
# its minute, 2739.5 in its hour.
EXCEEDED = orjson.dumps({"message": "API rate limit exceeded"})


def statuses(answer, handler, count, **request):
    return [answer(handler, **request).status for _ in range(count)]


def test_headers_of_a_passing_request(limiter, answer):
    handler = limiter({"second": 5, "minute": 10, "hour": 100})
    assert answer(handler).rate_headers() == {
        "X-RateLimit-Limit-Second": "5", "X-RateLimit-Remaining-Second": "4",
        "X-RateLimit-Limit-Minute": "10", "X-RateLimit-Remaining-Minute": "9",
        "X-RateLimit-Limit-Hour": "100", "X-RateLimit-Remaining-Hour": "99",
        # The period with the least left speaks for all.
        "RateLimit-Limit": "5", "RateLimit-Remaining": "4", "RateLimit-Reset": "1",
    }


def test_the_limit_passes_exactly_then_429_with_retry_after(limiter, answer):
    handler = limiter({"minute": 10})
    remaining = [answer(handler).headers["RateLimit-Remaining"] for _ in range(10)]
    assert remaining == [str(n) for n in range(9, -1, -1)]
    refused = answer(handler)
    assert refused.status == 429
    assert refused.body == EXCEEDED
    assert refused.headers["Content-Type"] == "application/json; charset=utf-8"
    assert refused.rate_headers() == {
        "X-RateLimit-Limit-Minute": "10", "X-RateLimit-Remaining-Minute": "0",
        "RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "40",
        "Retry-After": "40",
    }


def test_a_new_window_starts_from_zero(limiter, answer, clock):
    handler = limiter({"minute": 2})
    assert statuses(answer, handler, 3) == [200, 200, 429]
    clock.now += 39.5  # the next minute's first instant
    assert statuses(answer, handler, 3) == [200, 200, 429]


def test_a_refused_request_is_counted_in_no_period(limiter, answer, clock):
    handler = limiter({"second": 1, "minute": 3})
    assert answer(handler).status == 200
    refused = answer(handler)
    assert refused.status == 429
    # Kong shows the refusing period at 0 and the others as they were.
    assert refused.rate_headers() == {
        "X-RateLimit-Limit-Second": "1", "X-RateLimit-Remaining-Second": "0",
        "X-RateLimit-Limit-Minute": "3", "X-RateLimit-Remaining-Minute": "2",
        "RateLimit-Limit": "1", "RateLimit-Remaining": "0", "RateLimit-Reset": "1",
        "Retry-After": "1",
    }
    clock.now += 1
    assert answer(handler).headers["X-RateLimit-Remaining-Minute"] == "1"


def test_on_a_tie_the_longer_period_speaks(limiter, answer):
    headers = answer(limiter({"second": 5, "minute": 5})).headers
    assert (headers["RateLimit-Limit"], headers["RateLimit-Remaining"],
            headers["RateLimit-Reset"]) == ("5", "4", "40")


def test_the_longest_refusing_period_gives_retry_after(limiter, answer):
    handler = limiter({"second": 1, "minute": 1})
    answer(handler)
    assert answer(handler).headers["Retry-After"] == "40"


@pytest.mark.parametrize(("config", "now", "reset"), [
    # 2023-11-01 00:00 UTC started the month: Kong counts 30 days from there.
    ({"month": 1000, "year": 2000}, 1_700_000_060.5, "1388740"),
    ({"year": 2000}, 1_700_000_060.5, "4067140"),
    # Kong's month lasts 30 days: on the 31st its reset bottoms out at 1.
    ({"month": 1000}, 1_698_753_600.0, "1"),
])
def test_calendar_periods_reset_as_kong_computes(limiter, answer, clock, config, now, reset):
    clock.now = now
    assert answer(limiter(config)).headers["RateLimit-Reset"] == reset


def test_fractional_limits_pass_while_usage_is_below_them(limiter, answer):
    # Kong lets a request through while the count before it is under the limit.
    handler = limiter({"second": 2.5})
    assert statuses(answer, handler, 4) == [200, 200, 200, 429]
    assert answer(handler).headers["X-RateLimit-Limit-Second"] == "2.5"


# -- who is counted together --------------------------------------------------


def test_limit_by_consumer_counts_each_consumer_and_else_the_ip(limiter, answer):
    handler = limiter({"minute": 1})
    alice = handler.state.consumer("alice")
    bob = handler.state.consumer("bob")

    def as_consumer(consumer, ip):
        ctx = make_context(client_ip=ip)
        if consumer is not None:
            ctx.authenticate(consumer, None)
        return answer(handler, ctx).status

    assert [as_consumer(alice, "10.0.0.1"), as_consumer(alice, "10.0.0.2"),
            as_consumer(bob, "10.0.0.1"), as_consumer(None, "10.0.0.1"),
            as_consumer(None, "10.0.0.1")] == [200, 429, 200, 200, 429]


def test_limit_by_consumer_falls_back_to_the_credential(limiter, answer):
    handler = limiter({"minute": 1})

    def with_credential(credential_id):
        ctx = make_context(client_ip="10.0.0.9")
        ctx.credential = {"id": credential_id}
        return answer(handler, ctx).status

    assert [with_credential("cred-1"), with_credential("cred-2"),
            with_credential("cred-1")] == [200, 200, 429]


def test_limit_by_credential_uses_the_credential_identifier(limiter, answer):
    handler = limiter({"minute": 1, "limit_by": "credential"})
    alice = handler.state.consumer("alice")

    def with_key(credential, identifier, ip):
        ctx = make_context(client_ip=ip)
        ctx.authenticate(alice, credential, identifier)
        return answer(handler, ctx).status

    assert with_key({"key": "k1"}, "ident-1", "10.0.0.1") == 200
    assert with_key({"key": "k1"}, "ident-1", "10.0.0.2") == 429
    # Another credential of the same consumer has a quota of its own.
    assert with_key({"key": "k2"}, "ident-2", "10.0.0.1") == 200


def test_a_credential_identifier_sent_by_the_client_is_not_trusted(limiter, answer):
    handler = limiter({"minute": 1, "limit_by": "credential"})
    spoofed = [answer(handler, client_ip="10.0.0.1",
                      headers={"X-Credential-Identifier": f"fake-{n}"}).status for n in range(2)]
    assert spoofed == [200, 429]


def test_limit_by_ip(limiter, answer):
    handler = limiter({"minute": 1, "limit_by": "ip"})
    assert [answer(handler, client_ip=ip).status
            for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.1")] == [200, 200, 429]


def test_limit_by_service_counts_every_client_of_it_together(limiter, answer):
    handler = limiter({"minute": 2, "limit_by": "service"})
    orders = Service(name="orders", protocol="http", host="orders.internal", port=80, path=None)
    billing = Service(name="billing", protocol="http", host="billing.internal", port=80,
                      path=None)
    assert [answer(handler, service=service, client_ip=ip).status
            for service, ip in ((orders, "10.0.0.1"), (orders, "10.0.0.2"),
                                (orders, "10.0.0.3"), (billing, "10.0.0.1"))
            ] == [200, 200, 429, 200]


def test_limit_by_header_and_its_fallback_to_the_ip(limiter, answer):
    handler = limiter({"minute": 1, "limit_by": "header", "header_name": "X-Tenant"})

    def tenant(name, ip):
        headers = {"x-tenant": name} if name else {}
        return answer(handler, headers=headers, client_ip=ip).status

    assert [tenant("acme", "10.0.0.1"), tenant("acme", "10.0.0.2"), tenant("umbrella", "10.0.0.1"),
            tenant(None, "10.0.0.1"), tenant(None, "10.0.0.1")] == [200, 429, 200, 200, 429]


def test_limit_by_path_counts_that_path_for_everyone(limiter, answer):
    handler = limiter({"minute": 1, "limit_by": "path", "path": "/reports"})
    assert [answer(handler, url=url, client_ip=ip).status
            for url, ip in (("/reports?year=2023", "10.0.0.1"), ("/reports", "10.0.0.2"),
                            ("/orders", "10.0.0.2"), ("/orders", "10.0.0.2"))
            ] == [200, 429, 200, 429]


def test_each_route_scoped_config_counts_on_its_own(limiter, answer):
    first = limiter({"minute": 1}, route="orders")
    other_route = limiter({"minute": 1}, route="billing", state=first.state)
    same_route = limiter({"minute": 1}, route="orders", state=first.state)
    assert [answer(first).status, answer(other_route).status,
            answer(same_route).status] == [200, 200, 429]


# -- options -------------------------------------------------------------------


def test_hidden_headers_and_no_retry_after(limiter, answer):
    handler = limiter({"minute": 1, "hide_client_headers": True})
    assert answer(handler).rate_headers() == {}
    refused = answer(handler)
    assert (refused.status, refused.body) == (429, EXCEEDED)
    assert refused.rate_headers() == {}


def test_custom_error_code_and_message(limiter, answer):
    handler = limiter({"minute": 1, "error_code": 403, "error_message": "Quota used up"})
    answer(handler)
    refused = answer(handler)
    assert (refused.status, orjson.loads(refused.body)) == (403, {"message": "Quota used up"})
    assert refused.headers["Retry-After"] == "40"


def test_the_gateways_numbers_replace_the_upstreams(limiter):
    handler = limiter({"minute": 10})
    ctx = make_context()
    handler.access(ctx)
    set_response(ctx, 200, [("ratelimit-limit", "999"), ("X-RateLimit-Remaining-Minute", "7"),
                            ("X-Upstream", "kept")])
    handler.header_filter(ctx)
    headers = ctx.response.headers
    assert headers.get_all("RateLimit-Limit") == ["10"]
    assert headers.get_all("X-RateLimit-Remaining-Minute") == ["9"]
    assert headers.get("X-Upstream") == "kept"


def test_another_plugins_answer_carries_the_headers_too(limiter):
    handler = limiter({"minute": 10})
    ctx = make_context()
    handler.access(ctx)
    ctx.exit(401, {"message": "Unauthorized"})
    set_response(ctx, 401, ctx.exit_headers, source="exit")
    handler.header_filter(ctx)
    assert ctx.response.headers.get("X-RateLimit-Remaining-Minute") == "9"


def test_a_full_table_lets_requests_through_when_fault_tolerant(limiter, answer, caplog):
    handler = limiter({"minute": 5, "limit_by": "ip"})
    strict = limiter({"minute": 5, "limit_by": "ip", "fault_tolerant": False})
    # 8 slots, all taken by other clients in this minute.
    node = NodeCounters(SharedCounterTable(capacity=8))
    for limiting in (handler, strict):
        limiting.limits = FixedLimits([(1, 5)], node, None)
    for n in range(8):
        assert answer(handler, client_ip=f"10.0.0.{n}").status == 200
    with caplog.at_level(logging.ERROR, "fastgw.plugins.rate_limiting"):
        tolerated = [answer(handler, client_ip="10.0.1.1") for _ in range(3)]
        refused = answer(strict, client_ip="10.0.1.1")
    assert [a.status for a in tolerated] == [200, 200, 200]
    assert tolerated[0].rate_headers() == {}
    assert (refused.status, orjson.loads(refused.body)) == (
        500, {"message": "An unexpected error occurred"})
    # Logged once per handler, not once per request.
    assert len([r for r in caplog.records if "cannot count" in r.getMessage()]) == 2


# -- sliding window --------------------------------------------------------------


def test_sliding_refuses_a_double_burst_at_the_window_boundary(limiter, answer, clock):
    fixed = limiter({"minute": 10})
    sliding = limiter({"minute": 10, "algorithm": "sliding"})
    clock.now += 39  # the minute's last half second
    assert statuses(answer, fixed, 10) == statuses(answer, sliding, 10) == [200] * 10
    clock.now += 1  # the next minute's first half second
    assert statuses(answer, fixed, 11) == [200] * 10 + [429]
    # 10 x 59.5/60 = 9.92 of the last minute's requests still count.
    assert statuses(answer, sliding, 2) == [200, 429]


def test_sliding_weights_the_previous_window_by_what_is_still_inside(limiter, answer, clock):
    handler = limiter({"minute": 10, "algorithm": "sliding"})
    clock.now -= 10.5  # 10 s into the minute
    assert statuses(answer, handler, 10) == [200] * 10
    refused = answer(handler)
    # Only when this minute's 10 have slid mostly out: 50 s to its end, then
    # (nothing) more into the next, as no fraction of 10 fits under 10.
    assert (refused.status, refused.headers["Retry-After"]) == (429, "50")
    clock.now = 1_700_000_040.0 + 60 + 45  # 45 s into the next minute: 10 x 0.25 left
    passed = [answer(handler) for _ in range(9)]
    assert [a.status for a in passed] == [200] * 8 + [429]
    assert [a.headers["X-RateLimit-Remaining-Minute"] for a in passed[:3]] == ["6", "5", "4"]
    # Still room: the quota grows back from this window's end.
    assert passed[0].headers["RateLimit-Reset"] == "15"
    # 2.5 + 8 = 10.5 >= 10: fits again once the old window's weight is under 2, at 48 s.
    assert passed[-1].headers["Retry-After"] == "3"


@pytest.mark.parametrize(("previous", "current", "elapsed", "wait"), [
    (0, 3, 10, 0.0),        # room now
    (10, 5, 30, 0.0),       # 5 + 5 = 10: full, fits the moment the weight drops
    (10, 8, 45, 3.0),
    (0, 10, 10, 50.0),      # the current window must slide out
    (4, 20, 0, 90.0),       # twice the limit: half-way into the next window
])
def test_sliding_wait(previous, current, elapsed, wait):
    assert sliding_wait(10, previous, current, elapsed, 60) == pytest.approx(wait)


# -- token bucket ------------------------------------------------------------------


def test_token_bucket_allows_a_burst_then_the_rate(limiter, answer, clock):
    handler = limiter({"minute": 60, "algorithm": "token-bucket", "burst": 3})
    burst = [answer(handler) for _ in range(4)]
    assert [a.status for a in burst] == [200, 200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in burst] == ["2", "1", "0", "0"]
    assert burst[0].headers["RateLimit-Reset"] == "1"  # until the bucket is full again
    assert burst[-1].headers["Retry-After"] == "1"  # one token a second
    clock.now += 2
    assert statuses(answer, handler, 3) == [200, 200, 429]


def test_token_bucket_holds_a_whole_period_by_default(limiter, answer):
    handler = limiter({"minute": 30, "algorithm": "token-bucket"})
    assert statuses(answer, handler, 31) == [200] * 30 + [429]


def test_token_buckets_of_all_periods_are_taken_together_or_not_at_all(limiter, answer, clock):
    handler = limiter({"second": 2, "minute": 3, "algorithm": "token-bucket"})
    assert statuses(answer, handler, 3) == [200, 200, 429]
    clock.now += 1  # second: 2 tokens again; minute: 1 + 0.05
    assert answer(handler).status == 200
    refused = answer(handler)
    assert refused.status == 429
    # The minute refused; the second's token was left where it was.
    assert refused.headers["X-RateLimit-Remaining-Second"] == "1"
    assert refused.headers["X-RateLimit-Remaining-Minute"] == "0"
    assert refused.headers["Retry-After"] == "19"  # 0.95 token at 0.05 a second
