"""proxy-cache handler without sockets: Miss, Hit, Refresh and Bypass as Kong
decides them, the cache key's parts, Cache-Control, stored headers, and what
is (not) stored. Coalescing and the stores have their own files."""

import pytest

from fastgw.config.model import Consumer, Route
from fastgw.plugins.context import make_context, set_response

JSON = {"Content-Type": "application/json"}


def fetch(cache, method="GET", url="/items?page=1", headers=None, *, status=200,
          response_headers=None, body=b'{"items": []}', route=None, consumer=None):
    """One request through the handler's phases, as the gateway runs them.

    Returns the context: for a hit ``exit_status``/``exit_body``/``exit_headers``
    are set; otherwise ``response`` holds what the client got, and
    ``shared["sent"]`` the body the filters passed on.
    """
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or ())
    if not any(name.lower() == "host" for name, _ in pairs):
        pairs.insert(0, ("Host", "api.local"))
    ctx = make_context(method, url, pairs, route=route)
    ctx.consumer = consumer
    assert cache.access(ctx) is None  # the memory strategy never awaits here
    if ctx.exited:
        set_response(ctx, ctx.exit_status, ctx.exit_headers, "exit")
        cache.header_filter(ctx)
        return ctx
    set_response(ctx, status, JSON if response_headers is None else response_headers)
    cache.header_filter(ctx)
    middle = len(body) // 2
    ctx.shared["sent"] = (cache.body_filter(ctx, body[:middle], False)
                + cache.body_filter(ctx, body[middle:], False)
                + cache.body_filter(ctx, b"", True))
    cache.log(ctx)
    return ctx


def status_of(ctx):
    if ctx.exited:
        return ctx.exit_headers.get("X-Cache-Status")
    return ctx.response.headers.get("X-Cache-Status")


def key_of(ctx):
    if ctx.exited:
        return ctx.exit_headers.get("X-Cache-Key")
    return ctx.response.headers.get("X-Cache-Key")


@pytest.fixture
def memory_cache(handler):
    return lambda **config: handler(strategy="memory", **config)


def test_a_miss_is_stored_and_the_next_request_is_a_hit(memory_cache, clock):
    cache = memory_cache()
    first = fetch(cache, response_headers={**JSON, "ETag": '"v1"'})
    assert status_of(first) == "Miss"
    assert first.shared["sent"] == b'{"items": []}'  # the body passes through unchanged
    key = key_of(first)
    assert len(key) == 32
    clock.advance(7.4)
    second = fetch(cache)
    assert second.exit_status == 200
    assert second.exit_body == b'{"items": []}'
    assert second.exit_headers == {"Content-Type": "application/json", "ETag": '"v1"',
                                   "Age": "7", "X-Cache-Status": "Hit", "X-Cache-Key": key}
    assert len(cache.memory) == 1


def test_the_stored_status_is_replayed(memory_cache):
    cache = memory_cache()
    assert status_of(fetch(cache, status=404, body=b'{"message": "no"}')) == "Miss"
    hit = fetch(cache)
    assert (hit.exit_status, hit.exit_body) == (404, b'{"message": "no"}')


def test_hop_by_hop_and_diagnostic_headers_are_not_stored(memory_cache):
    cache = memory_cache()
    fetch(cache, response_headers=[
        ("Content-Type", "application/json"), ("Connection", "keep-alive"),
        ("Keep-Alive", "timeout=5"), ("Content-Length", "13"), ("Age", "50"),
        ("X-Cache-Status", "Hit"), ("X-RateLimit-Remaining-Minute", "4"),
        ("RateLimit-Remaining", "4"), ("X-Trace", "a"), ("X-Trace", "b"),
    ])
    headers = fetch(cache).exit_headers
    assert headers["X-Trace"] == "a, b"
    assert headers["Age"] == "0" and headers["X-Cache-Status"] == "Hit"
    assert set(headers) == {"Content-Type", "X-Trace", "Age", "X-Cache-Status", "X-Cache-Key"}


def test_an_entry_older_than_cache_ttl_is_refreshed(memory_cache, clock):
    cache = memory_cache(cache_ttl=10, storage_ttl=60)
    fetch(cache, body=b"old")
    clock.advance(10)
    assert fetch(cache).exit_body == b"old"  # still fresh at exactly cache_ttl
    clock.advance(1)
    refreshed = fetch(cache, body=b"new")
    assert status_of(refreshed) == "Refresh"
    assert fetch(cache).exit_body == b"new"


def test_storage_ttl_keeps_entries_longer_but_never_serves_them_stale(memory_cache, clock):
    cache = memory_cache(cache_ttl=10, storage_ttl=100)
    fetch(cache)
    clock.advance(50)
    assert status_of(fetch(cache)) == "Refresh"  # stored, but stale
    clock.advance(101)
    assert status_of(fetch(cache)) == "Miss"  # gone from the store


def test_without_storage_ttl_entries_leave_the_store_after_cache_ttl(memory_cache, clock):
    cache = memory_cache(cache_ttl=10)
    fetch(cache)
    clock.advance(10.5)
    assert status_of(fetch(cache)) == "Miss"


@pytest.mark.parametrize("method", ["POST", "DELETE", "OPTIONS"])
def test_other_methods_bypass(memory_cache, method):
    cache = memory_cache()
    bypassed = fetch(cache, method)
    assert status_of(bypassed) == "Bypass"
    assert key_of(bypassed) is None  # Kong computes no key for them
    assert len(cache.memory) == 0


def test_post_is_cached_when_configured(memory_cache):
    cache = memory_cache(request_method=["POST"])
    assert status_of(fetch(cache, "POST", "/v1/chat/completions")) == "Miss"
    assert status_of(fetch(cache, "POST", "/v1/chat/completions")) == "Hit"


@pytest.mark.parametrize("status", [201, 302, 500, 503])
def test_other_response_codes_bypass(memory_cache, status):
    cache = memory_cache()
    answered = fetch(cache, status=status)
    assert status_of(answered) == "Bypass"
    assert key_of(answered) is not None
    assert status_of(fetch(cache, status=status)) == "Bypass"
    assert len(cache.memory) == 0


@pytest.mark.parametrize("configured, sent, stored", [
    (["application/json"], "application/json", True),
    (["application/json"], "Application/JSON", True),
    # Kong compares parameters exactly: none configured means none sent.
    (["application/json"], "application/json; charset=utf-8", False),
    (["application/json; charset=utf-8"], "application/json;charset=UTF-8", True),
    (["application/json; charset=utf-8"], "application/json", False),
    (["text/*"], "text/html", True),
    (["*/*"], "image/png", True),
    (["text/plain"], "text/html", False),
    (["text/plain"], "not a media type", False),
])
def test_content_types_match_as_in_kong(memory_cache, configured, sent, stored):
    cache = memory_cache(content_type=configured)
    assert status_of(fetch(cache, response_headers={"Content-Type": sent})) == (
        "Miss" if stored else "Bypass")
    assert len(cache.memory) == int(stored)


def test_a_response_without_or_with_two_content_types_bypasses(memory_cache):
    cache = memory_cache()
    assert status_of(fetch(cache, response_headers={})) == "Bypass"
    two = [("Content-Type", "application/json"), ("Content-Type", "text/plain")]
    assert status_of(fetch(cache, response_headers=two)) == "Bypass"
    assert len(cache.memory) == 0


def test_a_response_from_another_plugin_is_not_stored(memory_cache):
    cache = memory_cache()
    ctx = make_context("GET", "/items", {"Host": "api.local"})
    cache.access(ctx)
    set_response(ctx, 200, JSON, source="exit")
    cache.header_filter(ctx)
    cache.body_filter(ctx, b"{}", True)
    assert ctx.response.headers.get("X-Cache-Status") == "Bypass"
    assert len(cache.memory) == 0


def test_a_body_larger_than_the_store_is_passed_on_but_not_stored(memory_cache):
    cache = memory_cache(memory={"max_bytes": 4096})
    big = b"x" * 5000
    answered = fetch(cache, body=big)
    assert answered.shared["sent"] == big
    assert len(cache.memory) == 0
    assert status_of(fetch(cache)) == "Miss"


def test_a_body_the_upstream_broke_off_is_not_stored(memory_cache):
    cache = memory_cache()
    ctx = make_context("GET", "/items", {"Host": "api.local"})
    cache.access(ctx)
    set_response(ctx, 200, JSON)
    cache.header_filter(ctx)
    assert cache.body_filter(ctx, b'{"ite', False) == b'{"ite'
    ctx.response.aborted = True
    assert cache.body_filter(ctx, b"", True) == b""
    assert len(cache.memory) == 0


def test_head_is_stored_without_a_body_phase(memory_cache):
    cache = memory_cache()
    ctx = make_context("HEAD", "/items", {"Host": "api.local"})
    cache.access(ctx)
    set_response(ctx, 200, {**JSON, "Content-Length": "120"})
    cache.header_filter(ctx)  # the gateway calls no body_filter for HEAD
    hit = fetch(cache, "HEAD", "/items")
    assert hit.exit_status == 200 and hit.exit_body == b""
    assert status_of(fetch(cache, "GET", "/items")) == "Miss"  # GET has its own key


# -- the cache key ------------------------------------------------------------------


def keys(cache, *requests):
    return [key_of(fetch(cache, **request)) for request in requests]


def test_the_key_covers_method_host_path_and_query(memory_cache):
    cache = memory_cache()
    base = key_of(fetch(cache, url="/items?page=1"))
    assert len({base,
                key_of(fetch(cache, "HEAD", "/items?page=1")),
                key_of(fetch(cache, url="/items?page=2")),
                key_of(fetch(cache, url="/other?page=1")),
                key_of(fetch(cache, url="/items?page=1", headers={"Host": "b.local"}))}) == 5


def test_query_order_and_encoding_do_not_change_the_key(memory_cache):
    cache = memory_cache()
    first, second, third = keys(cache, {"url": "/s?q=caf%C3%A9+au+lait&page=2"},
                                {"url": "/s?page=2&q=caf%c3%a9%20au%20lait"},
                                {"url": "/s?page=2&q=caf%C3%A9+au+lait&"})
    assert first == second == third


def test_vary_query_params_limit_the_query_in_the_key(memory_cache):
    cache = memory_cache(vary_query_params=["page"])
    first, second, third = keys(cache, {"url": "/s?page=1&utm=a"}, {"url": "/s?utm=b&page=1"},
                                {"url": "/s?page=2&utm=a"})
    assert first == second != third


def test_vary_headers_enter_the_key_case_insensitively(memory_cache):
    cache = memory_cache(vary_headers=["Accept-Language"])
    english, english_again, french, none, other = keys(
        cache, {"headers": {"accept-language": "en"}}, {"headers": {"ACCEPT-LANGUAGE": "en"}},
        {"headers": {"Accept-Language": "fr"}}, {}, {"headers": {"X-Other": "1"}})
    assert english == english_again
    assert len({english, french, none}) == 3
    assert none == other  # headers not in vary_headers do not count


def test_a_repeated_vary_header_counts_by_its_values_in_any_order(memory_cache):
    cache = memory_cache(vary_headers=["X-Tenant"])
    forward, backward, single = keys(
        cache, {"headers": [("X-Tenant", "a"), ("x-tenant", "b")]},
        {"headers": [("X-Tenant", "b"), ("X-Tenant", "a")]}, {"headers": [("X-Tenant", "a")]})
    assert forward == backward != single


def test_without_vary_headers_no_header_counts(memory_cache):
    cache = memory_cache()
    first, second = keys(cache, {"headers": {"Accept-Language": "en"}},
                         {"headers": {"Accept-Language": "fr"}})
    assert first == second


def test_ignore_uri_case_folds_the_path_only(memory_cache):
    folding, exact = memory_cache(ignore_uri_case=True), memory_cache()
    upper, lower = keys(folding, {"url": "/Items?Page=1"}, {"url": "/items?Page=1"})
    assert upper == lower
    assert keys(folding, {"url": "/items?page=1"})[0] != upper  # the query is not folded
    assert len(set(keys(exact, {"url": "/Items?Page=1"}, {"url": "/items?Page=1"}))) == 2


def test_each_consumer_and_each_route_has_its_own_entries(memory_cache):
    cache = memory_cache()
    alice = Consumer(username="alice", id="11111111-1111-4111-8111-111111111111")
    bob = Consumer(username="bob", id="22222222-2222-4222-8222-222222222222")
    other_route = Route(name="other-route", service=None, paths=("/",))
    found = keys(cache, {}, {"consumer": alice}, {"consumer": bob}, {"route": other_route},
                 {"route": other_route, "consumer": alice})
    assert len(set(found)) == 5
    assert status_of(fetch(cache, consumer=alice)) == "Hit"


# -- Cache-Control ------------------------------------------------------------------


@pytest.fixture
def rfc_cache(memory_cache):
    return memory_cache(cache_control=True)


def public(max_age=60, **extra):
    return {**JSON, "Cache-Control": f"public, max-age={max_age}", **extra}


@pytest.mark.parametrize("directive", ["no-store", "no-cache", "No-Cache"])
def test_requests_that_refuse_the_cache_bypass(rfc_cache, directive):
    fetch(rfc_cache, response_headers=public())
    bypassed = fetch(rfc_cache, headers={"Cache-Control": directive}, response_headers=public())
    assert status_of(bypassed) == "Bypass"
    assert not bypassed.exited


@pytest.mark.parametrize("cache_control", ["private, max-age=60", "no-store", "no-cache",
                                           "max-age=0", "public", None])
def test_responses_that_forbid_storing_or_give_no_lifetime_bypass(rfc_cache, cache_control):
    headers = dict(JSON) if cache_control is None else {**JSON, "Cache-Control": cache_control}
    assert status_of(fetch(rfc_cache, response_headers=headers)) == "Bypass"
    assert len(rfc_cache.memory) == 0


def test_the_response_lifetime_replaces_cache_ttl(rfc_cache, clock):
    fetch(rfc_cache, response_headers=public(max_age=5))
    clock.advance(5)
    assert status_of(fetch(rfc_cache)) == "Hit"
    clock.advance(1)
    assert status_of(fetch(rfc_cache, response_headers=public())) == "Miss"  # expired


def test_s_maxage_wins_over_max_age(rfc_cache, clock):
    fetch(rfc_cache, response_headers={**JSON, "Cache-Control": "max-age=1, s-maxage=30"})
    clock.advance(20)
    assert status_of(fetch(rfc_cache)) == "Hit"


def test_expires_gives_the_lifetime_without_max_age(rfc_cache, clock):
    clock.now = 1_800_000_000.0  # Fri, 15 Jan 2027 08:00:00 GMT
    fetch(rfc_cache, response_headers={**JSON, "Expires": "Fri, 15 Jan 2027 08:00:40 GMT"})
    clock.advance(39)
    assert status_of(fetch(rfc_cache)) == "Hit"
    invalid = fetch(rfc_cache, url="/other", response_headers={**JSON, "Expires": "0"})
    assert status_of(invalid) == "Bypass"


def test_a_request_max_age_asks_for_a_younger_entry(rfc_cache, clock):
    fetch(rfc_cache, response_headers=public())
    clock.advance(10)
    assert status_of(fetch(rfc_cache, headers={"Cache-Control": "max-age=20"})) == "Hit"
    refreshed = fetch(rfc_cache, headers={"Cache-Control": "max-age=5"},
                      response_headers=public(), body=b"fresh")
    assert status_of(refreshed) == "Refresh"
    assert fetch(rfc_cache).exit_body == b"fresh"


def test_min_fresh_asks_for_remaining_lifetime(rfc_cache, clock):
    fetch(rfc_cache, response_headers=public(max_age=60))
    clock.advance(30)
    assert status_of(fetch(rfc_cache, headers={"Cache-Control": "min-fresh=20"})) == "Hit"
    assert status_of(fetch(rfc_cache, headers={"Cache-Control": "min-fresh=40"},
                           response_headers=public())) == "Refresh"


def test_max_stale_accepts_a_stale_entry(rfc_cache, clock):
    rfc_cache.storage_ttl = 1000  # keep it past its lifetime
    fetch(rfc_cache, response_headers=public(max_age=10))
    clock.advance(15)
    assert status_of(fetch(rfc_cache, headers={"Cache-Control": "max-stale=10"})) == "Hit"
    assert status_of(fetch(rfc_cache, headers={"Cache-Control": "max-stale"})) == "Hit"
    assert status_of(fetch(rfc_cache, headers={"Cache-Control": "max-stale=2"},
                           response_headers=public())) == "Refresh"


def test_only_if_cached_without_an_entry_answers_504(rfc_cache):
    ctx = fetch(rfc_cache, headers={"Cache-Control": "only-if-cached"})
    assert ctx.exit_status == 504 and ctx.exit_body == b""
    fetch(rfc_cache, response_headers=public())
    assert status_of(fetch(rfc_cache, headers={"Cache-Control": "only-if-cached"})) == "Hit"


def test_an_authorized_request_is_stored_only_if_the_response_says_public(rfc_cache):
    auth = {"Authorization": "Bearer t"}
    private = {**JSON, "Cache-Control": "max-age=60"}
    assert status_of(fetch(rfc_cache, headers=auth, response_headers=private)) == "Bypass"
    shared = {**JSON, "Cache-Control": "s-maxage=60"}
    assert status_of(fetch(rfc_cache, url="/a", headers=auth, response_headers=shared)) == "Miss"
    assert status_of(fetch(rfc_cache, url="/b", headers=auth, response_headers=public())) == "Miss"
    # Without Authorization, max-age alone is enough.
    assert status_of(fetch(rfc_cache, url="/c", response_headers=private)) == "Miss"


def test_without_cache_control_directives_are_ignored(memory_cache):
    cache = memory_cache()
    headers = {"Cache-Control": "no-store", "Authorization": "Bearer t"}
    assert status_of(fetch(cache, headers=headers,
                           response_headers={**JSON, "Cache-Control": "private"})) == "Miss"
    assert status_of(fetch(cache, headers=headers)) == "Hit"


# -- diagnostic headers -------------------------------------------------------------


def test_diagnostic_headers_can_be_switched_off(memory_cache):
    cache = memory_cache(response_headers={"age": False, "X-Cache-Status": False,
                                           "X-Cache-Key": False})
    miss = fetch(cache)
    assert miss.response.headers.pairs() == [("Content-Type", "application/json")]
    assert fetch(cache).exit_headers == {"Content-Type": "application/json"}
    assert set(fetch(cache, headers={"Kong-Debug": "1"}).exit_headers) == {
        "Content-Type", "Age", "X-Cache-Status", "X-Cache-Key"}


def test_only_the_switched_on_headers_are_sent(memory_cache):
    cache = memory_cache(response_headers={"age": False, "X-Cache-Key": False})
    assert fetch(cache).response.headers.get("X-Cache-Key") is None
    assert set(fetch(cache).exit_headers) == {"Content-Type", "X-Cache-Status"}


# -- stores shared across config versions ---------------------------------------------


def test_a_reloaded_config_keeps_the_entries_of_the_same_plugin(handler):
    before = handler(strategy="memory")
    fetch(before)
    after = handler(strategy="memory", cache_ttl=60)
    assert after.memory is before.memory
    assert status_of(fetch(after)) == "Hit"
