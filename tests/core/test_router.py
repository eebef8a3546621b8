"""fastgw._core.router: Kong traditional-router matching, ranking and upstream paths.

Every test taking ``core_module`` runs twice: against the compiled extension and
against router.py executed uncompiled (see conftest.py).
"""

import importlib.util
import random
import sys
from pathlib import Path

import pytest

from fastgw.config.model import Route, Service

CORE_DIR = Path(__file__).resolve().parents[2] / "src" / "fastgw" / "_core"

CORE_MODULE = "router"

SERVICE = Service(name="svc", protocol="http", host="upstream.test", port=80, path=None)


def route(name, **fields):
    return Route(name=name, service="svc", **fields)


def build(module, *routes, service=SERVICE):
    """A router whose payloads are the route names."""
    return module.Router([(r, service, r.name) for r in routes])


def matched(router, url, method=b"GET", host=None, headers=None):
    """The payload (route name) of the match, or None."""
    match = router.match(method, host, url, headers)
    return None if match is None else match.payload


def upstream(router, url, method=b"GET", host=None, headers=None):
    return router.match(method, host, url, headers).upstream_path


# ---------------------------------------------------------------- builds


def test_compiled_build_is_an_extension_module(load_core):
    compiled = load_core("router", "compiled")
    pure = load_core("router", "pure")
    assert compiled.__file__.endswith(".so")
    # cdef classes have no instance __dict__; the uncompiled classes do.
    compiled_match = build(compiled, route("r", paths=("/",))).match(b"GET", None, b"/", None)
    pure_match = build(pure, route("r", paths=("/",))).match(b"GET", None, b"/", None)
    assert not hasattr(compiled_match, "__dict__")
    assert hasattr(pure_match, "__dict__")


def test_pure_build_imports_without_cython(monkeypatch):
    monkeypatch.setitem(sys.modules, "cython", None)  # makes `import cython` raise ImportError
    spec = importlib.util.spec_from_file_location(
        "fastgw._core._nocython_router", CORE_DIR / "router.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    router = build(module, route("api", paths=("/api",)))
    assert upstream(router, b"/api/v1?x=1") == b"/v1?x=1"


# ---------------------------------------------------------------- prefix paths


@pytest.mark.parametrize(
    "url, expected",
    [
        (b"/foo", "foo"),
        (b"/foo/", "foo"),
        (b"/foo/bar/baz", "foo"),
        (b"/foobar", "foo"),  # a plain string prefix, not a path segment
        (b"/foo?x=1", "foo"),
        (b"/fo", None),
        (b"/FOO", None),
        (b"/bar/foo", None),
        (b"/", None),
    ],
)
def test_prefix_path_matches_by_string_prefix(core_module, url, expected):
    assert matched(build(core_module, route("foo", paths=("/foo",))), url) == expected


@pytest.mark.parametrize("reverse", [False, True])
def test_longest_prefix_wins_whatever_the_creation_order(core_module, reverse):
    routes = [route("short", paths=("/foo",)), route("long", paths=("/foo/bar",))]
    router = build(core_module, *(routes[::-1] if reverse else routes))
    assert matched(router, b"/foo/bar/x") == "long"
    assert matched(router, b"/foo/baz") == "short"


def test_each_path_of_a_route_is_ranked_on_its_own(core_module):
    router = build(
        core_module, route("two", paths=("/a", "/a/b/c")), route("middle", paths=("/a/b",))
    )
    assert matched(router, b"/a/b/c/d") == "two"
    assert matched(router, b"/a/b/x") == "middle"
    assert matched(router, b"/a/x") == "two"


@pytest.mark.parametrize("fields", [{}, {"headers": (("host", ("a.test",)),)}])
def test_route_without_any_attribute_is_rejected(core_module, fields):
    # A Host header rule does not count: Kong routes on Host only through `hosts`.
    with pytest.raises(ValueError, match="has no paths, hosts, methods, headers or snis"):
        build(core_module, route("empty", **fields))


# ---------------------------------------------------------------- regex paths


@pytest.mark.parametrize(
    "url, expected",
    [
        (b"/items/42", "items"),
        (b"/items/42?full=1", "items"),
        (b"/items/42/parts", None),  # "$" ends the path
        (b"/x/items/42", None),  # anchored at the start of the path
        (b"/items/abc", None),
    ],
)
def test_regex_path_is_anchored_at_the_path_start(core_module, url, expected):
    router = build(core_module, route("items", paths=(r"~/items/\d+$",)))
    assert matched(router, url) == expected


def test_regex_path_outranks_a_longer_prefix(core_module):
    router = build(
        core_module,
        route("prefix", paths=("/users/123456",)),
        route("regex", paths=(r"~/users/\d+",)),
    )
    assert matched(router, b"/users/123456") == "regex"
    assert matched(router, b"/users/abc") is None


@pytest.mark.parametrize("reverse", [False, True])
def test_regex_priority_orders_regex_paths(core_module, reverse):
    routes = [
        route("low", paths=(r"~/v\d+/",), regex_priority=1),
        route("high", paths=(r"~/v1/",), regex_priority=5),
    ]
    router = build(core_module, *(routes[::-1] if reverse else routes))
    assert matched(router, b"/v1/models") == "high"
    assert matched(router, b"/v2/models") == "low"


def test_equal_regex_priority_falls_back_to_creation_order(core_module):
    first, second = route("first", paths=(r"~/a",)), route("second", paths=(r"~/a/b",))
    assert matched(build(core_module, first, second), b"/a/b") == "first"
    assert matched(build(core_module, second, first), b"/a/b") == "second"


def test_regex_priority_does_not_reorder_prefix_paths(core_module):
    router = build(
        core_module,
        route("short", paths=("/a",), regex_priority=100),
        route("long", paths=("/a/b",)),
    )
    assert matched(router, b"/a/b") == "long"


def test_regex_captures_by_number_and_name(core_module):
    router = build(
        core_module,
        route("model", paths=(r"~/v(\d+)/models/(?<model>[^/]+)",)),
        route("plain", paths=("/plain",)),
        route("nogroups", paths=(r"~/nogroups/\d+",)),
    )
    match = router.match(b"GET", None, b"/v2/models/gpt-4o/chat?stream=1", None)
    assert match.payload == "model"
    assert match.uri_captures == {
        0: b"/v2/models/gpt-4o/chat",
        1: b"2",
        2: b"gpt-4o",
        "model": b"gpt-4o",
    }
    assert match.upstream_path == b"/chat?stream=1"
    assert router.match(b"GET", None, b"/plain", None).uri_captures is None
    assert router.match(b"GET", None, b"/nogroups/7", None).uri_captures is None


def test_optional_regex_group_captures_none(core_module):
    router = build(core_module, route("opt", paths=(r"~/opt(/(?<id>\d+))?$",)))
    assert router.match(b"GET", None, b"/opt", None).uri_captures["id"] is None
    assert router.match(b"GET", None, b"/opt/5", None).uri_captures["id"] == b"5"


@pytest.mark.parametrize(
    "pattern, url, expected_upstream",
    [
        (r"~/a|/b", b"/b/x", b"/x"),  # alternation applies to the whole pattern
        (r"~/ab?c", b"/ac/x", b"/x"),  # "b" is optional: the trie key must stop at "/a"
        (r"~/x\.y", b"/x.y/z", b"/z"),
        (r"~(?i)/api", b"/API/v1", b"/v1"),
        (r"~/(v1|v2)/chat", b"/v2/chat/x", b"/x"),
    ],
)
def test_regex_forms_match_and_strip_the_matched_part(core_module, pattern, url, expected_upstream):
    router = build(core_module, route("r", paths=(pattern,)))
    assert upstream(router, url) == expected_upstream


def test_invalid_regex_path_is_rejected(core_module):
    with pytest.raises(ValueError, match="invalid regex"):
        build(core_module, route("bad", paths=("~/items/(unclosed",)))


def test_one_hundred_regex_routes(core_module):
    routes = [route(f"r{i}", paths=(rf"~/items{i}/(?<id>\d+)$",)) for i in range(100)]
    router = build(core_module, *routes)
    for i in range(100):
        match = router.match(b"GET", None, b"/items%d/%d" % (i, i * 7), None)
        assert match.payload == f"r{i}"
        assert match.uri_captures["id"] == str(i * 7).encode()
    assert matched(router, b"/items5/x") is None
    assert matched(router, b"/items100/1") is None


# ---------------------------------------------------------------- categories and ties


def test_route_matching_more_categories_wins(core_module):
    router = build(
        core_module,
        route("path-only", paths=("/a/b/c/d",)),
        route("path-and-method", paths=("/",), methods=("GET",)),
    )
    assert matched(router, b"/a/b/c/d") == "path-and-method"
    assert matched(router, b"/a/b/c/d", method=b"POST") == "path-only"


@pytest.mark.parametrize(
    "winner, loser",
    [
        (dict(hosts=("api.test",)), dict(paths=("/a",))),
        (dict(hosts=("api.test",)), dict(headers=(("x-a", ("1",)),))),
        (dict(headers=(("x-a", ("1",)),)), dict(paths=("/a",))),
        (dict(paths=("/a",)), dict(methods=("GET",))),
    ],
    ids=["host>path", "host>header", "header>path", "path>method"],
)
def test_category_order_breaks_equal_category_counts(core_module, winner, loser):
    router = build(core_module, route("loser", **loser), route("winner", **winner))
    assert matched(router, b"/a", host=b"api.test", headers={b"x-a": b"1"}) == "winner"


def test_more_headers_win(core_module):
    one = route("one", headers=(("x-a", ("1",)),))
    two = route("two", headers=(("x-a", ("1",)), ("x-b", ("2",))))
    router = build(core_module, one, two)
    assert matched(router, b"/", headers={b"x-a": b"1", b"x-b": b"2"}) == "two"
    assert matched(router, b"/", headers={b"x-a": b"1", b"x-b": b"3"}) == "one"


def test_identical_routes_tie_on_creation_order(core_module):
    first, second = route("first", paths=("/same",)), route("second", paths=("/same",))
    assert matched(build(core_module, first, second), b"/same") == "first"
    assert matched(build(core_module, second, first), b"/same") == "second"


# ---------------------------------------------------------------- hosts


@pytest.mark.parametrize(
    "route_host, request_host, expected",
    [
        ("api.example.com", b"api.example.com", True),
        ("api.example.com", b"API.Example.COM", True),
        ("api.example.com", b"api.example.com:8000", True),
        ("api.example.com", b"web.example.com", False),
        ("API.example.com", b"api.example.com", True),
        ("api.example.com:8443", b"api.example.com:8443", True),
        ("api.example.com:8443", b"api.example.com:8000", False),
        ("api.example.com:8443", b"api.example.com", False),
        ("*.example.com", b"a.example.com", True),
        ("*.example.com", b"a.b.example.com:8000", True),
        ("*.example.com", b"example.com", False),
        ("*.example.com", b".example.com", False),
        ("*.example.com", b"a.example.org", False),
        ("example.*", b"example.org", True),
        ("example.*", b"Example.co.uk:443", True),
        ("example.*", b"example.", False),
        ("example.*", b"www.example.org", False),
        ("*.example.com:8443", b"a.example.com:8443", True),
        ("*.example.com:8443", b"a.example.com:8000", False),
        ("*.example.com:8443", b"a.example.com", False),
        ("example.*:8443", b"example.org:8443", True),
        ("example.*:8443", b"example.org", False),
        ("api.example.com", None, False),
    ],
)
def test_host_matching(core_module, route_host, request_host, expected):
    router = build(core_module, route("r", hosts=(route_host,)))
    assert (matched(router, b"/", host=request_host) == "r") is expected


@pytest.mark.parametrize("reverse", [False, True])
def test_plain_host_beats_wildcard_host(core_module, reverse):
    routes = [route("wild", hosts=("*.example.com",)), route("plain", hosts=("api.example.com",))]
    router = build(core_module, *(routes[::-1] if reverse else routes))
    assert matched(router, b"/", host=b"api.example.com:8000") == "plain"
    assert matched(router, b"/", host=b"web.example.com") == "wild"


def test_wildcard_host_with_port_outranks_plain_host(core_module):
    # Kong's HAS_WILDCARD_HOST_PORT sub-rule ranks above PLAIN_HOSTS_ONLY.
    router = build(
        core_module,
        route("plain", hosts=("api.example.com",)),
        route("wild-port", hosts=("*.example.com:8000",)),
    )
    assert matched(router, b"/", host=b"api.example.com:8000") == "wild-port"
    assert matched(router, b"/", host=b"api.example.com") == "plain"


@pytest.mark.parametrize("reverse", [False, True])
def test_a_route_for_the_exact_host_and_port_wins_in_its_category(core_module, reverse):
    # Kong's router spec: "domain-1.org" and "domain-1.org:321" routes; a
    # request for port 321 gets the second whatever the order of the routes.
    routes = [route("any-port", hosts=("domain-1.org",)),
              route("port-321", hosts=("domain-1.org:321", "domain-2.org"))]
    router = build(core_module, *(routes[::-1] if reverse else routes))
    assert matched(router, b"/", host=b"domain-1.org:321") == "port-321"
    assert matched(router, b"/", host=b"domain-1.org") == "any-port"
    assert matched(router, b"/", host=b"domain-1.org:123") == "any-port"
    assert matched(router, b"/", host=b"domain-1.org:80") == "any-port"


def test_the_exact_host_and_port_still_loses_to_a_better_category(core_module):
    # Only within its category: host + path outranks host alone.
    router = build(core_module,
                   route("port-only", hosts=("api.test:8000",)),
                   route("with-path", hosts=("api.test",), paths=("/v1",)))
    assert matched(router, b"/v1/x", host=b"api.test:8000") == "with-path"
    assert matched(router, b"/v2", host=b"api.test:8000") == "port-only"


def test_host_and_path_combine(core_module):
    router = build(
        core_module,
        route("api-v1", hosts=("api.test",), paths=("/v1",)),
        route("any-v1", paths=("/v1",)),
        route("api-any", hosts=("api.test",)),
    )
    assert matched(router, b"/v1/x", host=b"api.test") == "api-v1"
    assert matched(router, b"/v2/x", host=b"api.test") == "api-any"
    assert matched(router, b"/v1/x", host=b"web.test") == "any-v1"
    assert matched(router, b"/v2/x", host=b"web.test") is None


def test_absolute_form_target_supplies_host_and_path(core_module):
    router = build(core_module, route("api", hosts=("api.test",), paths=("/v1",)))
    match = router.match(b"GET", b"ignored.test", b"http://user@API.test:8080/v1/models?x=1", None)
    assert match.payload == "api"
    assert match.upstream_path == b"/models?x=1"
    assert matched(router, b"https://api.test?x=1", host=None) is None  # path "/" only


# ---------------------------------------------------------------- methods and headers


@pytest.mark.parametrize(
    "method, expected",
    [(b"GET", "r"), (b"POST", "r"), (b"HEAD", None), (b"get", None), (b"BREW", None)],
)
def test_methods(core_module, method, expected):
    router = build(core_module, route("r", methods=("GET", "POST")))
    assert matched(router, b"/anything", method=method) == expected


def test_routes_without_methods_accept_any_method(core_module):
    router = build(
        core_module, route("get", methods=("GET",), paths=("/",)), route("any", paths=("/",))
    )
    assert matched(router, b"/", method=b"GET") == "get"
    assert matched(router, b"/", method=b"PURGE") == "any"


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({b"x-version": b"v1"}, True),
        ({b"x-version": b"V2"}, True),
        ({b"x-version": b"v3"}, False),
        ({b"x-other": b"v1"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_header_matches_any_listed_value_ignoring_case(core_module, headers, expected):
    router = build(core_module, route("r", headers=(("x-version", ("v1", "V2")),)))
    assert (matched(router, b"/", headers=headers) == "r") is expected


def test_all_header_rules_must_match(core_module):
    router = build(core_module, route("r", headers=(("x-a", ("1",)), ("x-b", ("2",)))))
    assert matched(router, b"/", headers={b"x-a": b"1", b"x-b": b"2"}) == "r"
    assert matched(router, b"/", headers={b"x-a": b"1"}) is None


def test_header_regex_value(core_module):
    router = build(core_module, route("r", headers=(("x-model", ("~*^gpt-4",)),)))
    assert matched(router, b"/", headers={b"x-model": b"GPT-4o"}) == "r"
    assert matched(router, b"/", headers={b"x-model": b"claude-3"}) is None


def test_header_names_lists_what_the_caller_must_collect(core_module):
    router = build(
        core_module,
        route("a", headers=(("x-a", ("1",)), ("host", ("ignored",)))),
        route("b", headers=(("X-B", ("2",)),), paths=("/b",)),
        route("c", paths=("/c",)),
    )
    assert router.header_names == frozenset({b"x-a", b"x-b"})
    assert build(core_module, route("c", paths=("/c",))).header_names == frozenset()


# ---------------------------------------------------------------- upstream paths

# (service path, route path or None for a host-only route, strip_path values,
#  path_handling values, request path, expected upstream path): the behaviour
# of Kong's get_upstream_uri for "v0" and "v1".
PATH_HANDLING_CASES = [
    ("/", "/", "ft", "01", "/", "/"),
    ("/", "/", "ft", "01", "/route/req", "/route/req"),
    ("/", "/route", "f", "01", "/routereq", "/routereq"),
    ("/", "/route", "t", "01", "/route", "/"),
    ("/", "/route", "t", "01", "/route/", "/"),
    ("/", "/route", "t", "01", "/routereq", "/req"),
    ("/", "/route/", "t", "01", "/route/", "/"),
    ("/", "/route/", "t", "01", "/route/req", "/req"),
    ("/srv", "/rou", "f", "0", "/roureq", "/srv/roureq"),
    ("/srv", "/rou", "f", "1", "/roureq", "/srvroureq"),
    ("/srv", "/rou", "t", "0", "/roureq", "/srv/req"),
    ("/srv", "/rou", "t", "1", "/roureq", "/srvreq"),
    ("/srv/", "/rou", "f", "01", "/rou", "/srv/rou"),
    ("/srv/", "/rou", "t", "0", "/rou", "/srv"),
    ("/srv/", "/rou", "t", "1", "/rou", "/srv/"),
    ("/svc", "/", "ft", "01", "/", "/svc"),
    ("/svc", "/", "ft", "0", "/route/", "/svc/route/"),
    ("/svc", "/", "ft", "1", "/route/", "/svcroute/"),
    ("/svc", "/route", "f", "0", "/route", "/svc/route"),
    ("/svc", "/route", "f", "1", "/route", "/svcroute"),
    ("/svc", "/route", "t", "01", "/route", "/svc"),
    ("/svc", "/route", "t", "01", "/route/", "/svc/"),
    ("/svc", "/route", "t", "0", "/routereq", "/svc/req"),
    ("/svc", "/route", "t", "1", "/routereq", "/svcreq"),
    ("/svc", "/route/", "t", "0", "/route/", "/svc/"),
    ("/svc", "/route/", "t", "1", "/route/", "/svc"),
    ("/svc", "/route/", "t", "0", "/route/req", "/svc/req"),
    ("/svc", "/route/", "t", "1", "/route/req", "/svcreq"),
    ("/svc/", "/", "ft", "01", "/", "/svc/"),
    ("/svc/", "/", "ft", "01", "/route", "/svc/route"),
    ("/svc/", "/route", "f", "01", "/route/", "/svc/route/"),
    ("/svc/", "/route", "t", "0", "/route", "/svc"),
    ("/svc/", "/route", "t", "1", "/route", "/svc/"),
    ("/svc/", "/route", "t", "01", "/route/", "/svc/"),
    ("/svc/", "/route", "t", "01", "/routereq", "/svc/req"),
    ("/svc/", "/route/", "t", "01", "/route/req", "/svc/req"),
    ("/", None, "ft", "01", "/route/", "/route/"),
    ("/svc", None, "ft", "01", "/", "/svc"),
    ("/svc", None, "ft", "0", "/route", "/svc/route"),
    ("/svc", None, "ft", "1", "/route", "/svcroute"),
    ("/svc/", None, "ft", "01", "/", "/svc/"),
    ("/svc/", None, "ft", "01", "/route/", "/svc/route/"),
]


def _expand_path_handling_cases():
    for service_path, route_path, strips, versions, request, expected in PATH_HANDLING_CASES:
        for strip in strips:
            for version in versions:
                yield pytest.param(
                    service_path,
                    route_path,
                    strip == "t",
                    "v" + version,
                    request,
                    expected,
                    id=f"{service_path}|{route_path}|{strip}|v{version}|{request}",
                )


@pytest.mark.parametrize(
    "service_path, route_path, strip_path, path_handling, request_path, expected",
    list(_expand_path_handling_cases()),
)
def test_path_handling(
    core_module, service_path, route_path, strip_path, path_handling, request_path, expected
):
    service = Service(name="svc", protocol="http", host="upstream.test", port=80, path=service_path)
    matcher = dict(paths=(route_path,)) if route_path else dict(hosts=("api.test",))
    r = route("r", strip_path=strip_path, path_handling=path_handling, **matcher)
    router = build(core_module, r, service=service)
    assert upstream(router, request_path.encode(), host=b"api.test") == expected.encode()
    # The query string travels unchanged, whatever happened to the path.
    with_query = upstream(router, request_path.encode() + b"?a=%2F..&b", host=b"api.test")
    assert with_query == expected.encode() + b"?a=%2F..&b"


def test_strip_path_removes_dot_prefix_of_the_remainder(core_module):
    router = build(core_module, route("r", paths=("/foo",)))
    assert upstream(router, b"/foo./bar") == b"/bar"
    assert upstream(router, b"/foo../bar") == b"/bar"
    assert upstream(router, b"/foo..") == b"/"


def test_unchanged_target_is_passed_through(core_module):
    router = build(core_module, route("r", paths=("/keep",), strip_path=False))
    url = b"/keep/this?as=is"
    assert upstream(router, url) == url
    assert upstream(router, b"/keep?") == b"/keep?"


def test_preserve_host_and_service_are_reported_untouched(core_module):
    preserving = route("keep", paths=("/keep",), preserve_host=True)
    router = core_module.Router([(preserving, None, {"opaque": 1})])
    match = router.match(b"GET", b"client.test", b"/keep/x", None)
    assert match.route is preserving
    assert match.route.preserve_host is True
    assert match.service is None
    assert match.payload == {"opaque": 1}
    assert match.upstream_path == b"/x"  # no service: the base path is "/"


# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    "url, expected_route, expected_upstream",
    [
        (b"/a/./b/../c/x", "ac", b"/x"),
        (b"/b/%2E%2E/a/c", "ac", b"/"),
        (b"/a/c/%2e%2E", "a", b"/"),
        (b"//a///c//x", "ac", b"/x"),
        (b"/../../a/c", "ac", b"/"),
        (b"/%61/c/x", "ac", b"/x"),  # %61 is "a", unreserved: decoded
        (b"/a%2Fc/x", "a%2Fc", b"/x"),  # %2F is "/", reserved: kept, not a separator
        (b"/a%2fc/x", "a%2Fc", b"/x"),
        (b"/with%20space/x%20y?q=%20", "space", b"/x%20y?q=%20"),
        (b"/a/c/x?next=/../%61", "ac", b"/x?next=/../%61"),
    ],
)
def test_request_path_is_normalised_before_matching(
    core_module, url, expected_route, expected_upstream
):
    router = build(
        core_module,
        route("a", paths=("/a",)),
        route("ac", paths=("/a/c",)),
        route("a%2Fc", paths=("/a%2fc",)),
        route("space", paths=("/with space",)),
    )
    match = router.match(b"GET", None, url, None)
    assert match.payload == expected_route
    assert match.upstream_path == expected_upstream


def test_regex_sees_the_normalised_path(core_module):
    router = build(core_module, route("r", paths=(r"~/files/(?<name>[a-z]+)$",)))
    match = router.match(b"GET", None, b"/files/./%61bc", None)
    assert match.uri_captures["name"] == b"abc"


# ---------------------------------------------------------------- scale


def _longest_prefix_oracle(paths, url):
    path = url.split(b"?", 1)[0]
    candidates = [p for p in paths if path.startswith(p)]
    return max(candidates, key=len) if candidates else None


def test_one_thousand_prefix_routes_agree_with_a_longest_prefix_oracle(core_module):
    # "/api/1" is a prefix of "/api/10" and "/api/100": the trie must pick the longest.
    paths = [b"/api/%d" % i for i in range(1000)]
    router = build(core_module, *(route(p.decode(), paths=(p.decode(),)) for p in paths))
    rng = random.Random(1234)
    urls = [b"/api/%d/chat?x=%d" % (i, i) for i in range(1000)]
    urls += [b"/api/%d" % rng.randrange(20000) for _ in range(500)]
    urls += [b"/ap", b"/api/", b"/api", b"/other/1"]
    for url in urls:
        expected = _longest_prefix_oracle(paths, url)
        assert matched(router, url) == (expected.decode() if expected else None), url


def test_one_thousand_host_routes(core_module):
    routes = [
        route(f"h{i}", hosts=(f"svc{i}.example.com",), paths=("/v1",), methods=("POST",))
        for i in range(1000)
    ]
    router = build(core_module, *routes, route("fallback", paths=("/",)))
    for i in range(0, 1000, 7):
        host = b"SVC%d.example.com:8000" % i
        assert matched(router, b"/v1/chat", method=b"POST", host=host) == f"h{i}"
        assert matched(router, b"/v1/chat", method=b"GET", host=host) == "fallback"
        assert matched(router, b"/v2", method=b"POST", host=host) == "fallback"
    assert matched(router, b"/v1", method=b"POST", host=b"svc1000.example.com") == "fallback"


def test_snis_match_the_tls_server_name_of_https_requests(core_module):
    sni = core_module.SNI_KEY
    router = build(core_module, route("any", paths=("/",)),
                   route("a-only", paths=("/",), snis=("a.test",)))
    assert sni in router.header_names
    assert matched(router, b"/x", headers={sni: b"a.test"}) == "a-only"
    assert matched(router, b"/x", headers={sni: b"b.test"}) == "any"
    assert matched(router, b"/x", headers={sni: b""}) == "any"   # no name sent
    # Kong does not check plain HTTP requests (no server name at all) against snis.
    assert matched(router, b"/x", headers={}) == "a-only"
    assert matched(router, b"/x") == "a-only"
