"""cors handler: preflight answers, origin choice, headers on responses."""

import pytest

from fastgw.plugins.context import make_context, set_response

PREFLIGHT = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}


def preflight(plugin, headers=PREFLIGHT):
    ctx = make_context("OPTIONS", "/", headers)
    assert plugin.access(ctx) is None
    return ctx


def respond(plugin, headers=None, method="GET", response_headers=None, ctx=None):
    """Run access then header_filter for a normal request; the response headers."""
    ctx = ctx or make_context(method, "/", headers or {})
    plugin.access(ctx)
    assert not ctx.exited
    set_response(ctx, 200, response_headers or {"Content-Type": "text/plain"})
    plugin.header_filter(ctx)
    return ctx.response.headers


def test_priority_is_kongs(handler):
    assert handler().PRIORITY == 2000


def test_preflight_is_answered_with_every_allow_header(handler):
    plugin = handler(origins=["https://app.example.com", "https://other.example.com"],
                     headers=["X-Token", "Content-Type"], methods=["GET", "POST"],
                     max_age=600, credentials=True)
    ctx = preflight(plugin)
    assert ctx.exit_status == 200
    assert ctx.exit_body == b""
    assert ctx.exit_headers == {
        "Vary": "Origin",
        "Access-Control-Allow-Origin": "https://app.example.com",
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Headers": "X-Token,Content-Type",
        "Access-Control-Allow-Methods": "GET,POST",
        "Access-Control-Max-Age": "600",
    }


def test_preflight_defaults_allow_any_origin_and_echo_requested_headers(handler):
    ctx = preflight(handler(), {**PREFLIGHT, "Access-Control-Request-Headers": "X-A, X-B"})
    assert ctx.exit_headers == {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Headers": "X-A, X-B",
        "Access-Control-Allow-Methods": "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT",
    }


def test_preflight_with_a_refused_origin_has_no_allow_origin(handler):
    ctx = preflight(handler(origins=["https://a.example", "https://b.example"]))
    assert ctx.exit_status == 200
    assert "Access-Control-Allow-Origin" not in ctx.exit_headers
    assert ctx.exit_headers["Vary"] == "Origin"


def test_private_network_access_is_allowed_only_when_asked_and_configured(handler):
    asked = {**PREFLIGHT, "Access-Control-Request-Private-Network": "true"}
    allowed = preflight(handler(private_network=True), asked).exit_headers
    assert allowed["Access-Control-Allow-Private-Network"] == "true"
    assert "Access-Control-Allow-Private-Network" not in \
        preflight(handler(private_network=False), asked).exit_headers
    assert "Access-Control-Allow-Private-Network" not in \
        preflight(handler(private_network=True)).exit_headers


@pytest.mark.parametrize("headers", [
    {"Origin": "https://app.example.com"},                 # no requested method
    {"Access-Control-Request-Method": "POST"},             # no origin
])
def test_an_options_request_that_is_not_a_preflight_goes_upstream(handler, headers):
    plugin = handler()
    ctx = make_context("OPTIONS", "/", headers)
    plugin.access(ctx)
    assert not ctx.exited
    set_response(ctx, 204, {})
    plugin.header_filter(ctx)
    assert ctx.response.headers.get("Access-Control-Allow-Origin") == "*"


def test_preflight_continue_leaves_the_preflight_and_its_answer_to_the_upstream(handler):
    plugin = handler(preflight_continue=True)
    ctx = preflight(plugin)
    assert not ctx.exited
    set_response(ctx, 204, {"Access-Control-Allow-Origin": "https://upstream.example"})
    plugin.header_filter(ctx)
    assert ctx.response.headers.pairs() == [
        ("Access-Control-Allow-Origin", "https://upstream.example")]


def test_header_filter_does_not_touch_the_plugins_own_preflight_answer(handler):
    plugin = handler(exposed_headers=["X-Total"])
    ctx = preflight(plugin)
    set_response(ctx, 200, ctx.exit_headers, source="exit")
    plugin.header_filter(ctx)
    assert ctx.response.headers.get("Access-Control-Expose-Headers") is None


def test_responses_get_allow_origin_and_exposed_headers(handler):
    plugin = handler(exposed_headers=["X-Total", "X-Page"])
    headers = respond(plugin, {"Origin": "https://app.example.com"})
    assert headers.get("Access-Control-Allow-Origin") == "*"
    assert headers.get("Access-Control-Expose-Headers") == "X-Total,X-Page"
    assert headers.get("Vary") is None  # "*" does not depend on the origin


def test_a_single_exact_origin_is_sent_whatever_the_request_says(handler):
    headers = respond(handler(origins=["https://only.example"]),
                      {"Origin": "https://else.example"})
    assert headers.get("Access-Control-Allow-Origin") == "https://only.example"
    assert headers.get("Vary") == "Origin"


@pytest.mark.parametrize(("origin", "allowed"), [
    ("https://app.example.com", "https://app.example.com"),
    ("https://app.example.com:443", "https://app.example.com"),   # default port dropped
    ("http://localhost:3000", "http://localhost:3000"),
    ("http://localhost:3001", None),
    ("https://eu.tenant.example.org", "https://eu.tenant.example.org"),  # host regex
    ("https://tenant.example.org.evil.com", None),                       # anchored
    ("http://partner.example.net:8443", "http://partner.example.net:8443"),  # origin regex
    ("https://partner.example.net:8443", None),
])
def test_origin_matching(handler, origin, allowed):
    plugin = handler(origins=["https://app.example.com", "http://localhost:3000",
                              r"^[a-z]+\.tenant\.example\.org$",
                              r"http://partner\.example\.net:\d+"])
    headers = respond(plugin, {"Origin": origin},
                      response_headers={"Access-Control-Allow-Origin": "https://leak.example"})
    assert headers.get("Access-Control-Allow-Origin") == allowed
    assert headers.get_all("Vary") == ["Origin"]


def test_star_among_several_origins_allows_everyone(handler):
    headers = respond(handler(origins=["https://a.example", "*"]), {"Origin": "https://z.example"})
    assert headers.get("Access-Control-Allow-Origin") == "*"


def test_credentials_with_any_origin_echo_the_caller(handler):
    headers = respond(handler(credentials=True), {"Origin": "https://app.example.com"})
    assert headers.get("Access-Control-Allow-Origin") == "https://app.example.com"
    assert headers.get("Access-Control-Allow-Credentials") == "true"
    assert headers.get("Vary") == "Origin"


def test_vary_is_added_to_the_upstreams_vary(handler):
    headers = respond(handler(origins=["https://a.example", "https://b.example"]),
                      {"Origin": "https://b.example"},
                      response_headers={"Vary": "Accept-Encoding"})
    assert headers.get_all("Vary") == ["Accept-Encoding", "Origin"]


def test_allow_origin_absent_decides_for_requests_without_origin(handler):
    assert respond(handler()).get("Access-Control-Allow-Origin") == "*"
    assert respond(handler(allow_origin_absent=False)).get("Access-Control-Allow-Origin") is None


def test_answers_of_other_plugins_get_cors_headers(handler):
    plugin = handler(origins=["https://app.example.com"])
    ctx = make_context("GET", "/", {"Origin": "https://app.example.com"})
    plugin.access(ctx)
    ctx.exit(401, {"message": "Unauthorized"})  # e.g. key-auth, which runs later
    set_response(ctx, 401, ctx.exit_headers, source="exit")
    plugin.header_filter(ctx)
    assert ctx.response.headers.get("Access-Control-Allow-Origin") == "https://app.example.com"


def test_fractional_max_age_is_kept(handler):
    assert preflight(handler(max_age=1.5)).exit_headers["Access-Control-Max-Age"] == "1.5"
