"""The path sent upstream is the path the router matched.

For every vector of the project's path set, and for paths Hypothesis builds
from the pieces that have caused trouble (escapes, dot segments, bytes outside
RFC 3986), either the target is refused as malformed, or the router's decision
on the forwarded path equals its decision on the received one: an origin that
decodes the forwarded path sees what the gateway routed.
"""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastgw.config.model import Route, Service

CORE_MODULE = "router"

SERVICE = Service(name="svc", protocol="http", host="upstream.test", port=80, path=None)

ROUTES = [
    Route(name="root", service="svc", paths=("/",), strip_path=False),
    Route(name="public", service="svc", paths=("/public",), strip_path=False),
    Route(name="private", service="svc", paths=("/private",), strip_path=False),
    Route(name="nested", service="svc", paths=("/public/private",), strip_path=False),
    Route(name="users", service="svc", paths=(r"~/users/\d+$",), strip_path=False),
    Route(name="cafe", service="svc", paths=("/caf\u00e9",), strip_path=False),
]

# The project's path set: shapes that split routers and origins.
PATH_VECTORS = [
    b"/public/x", b"/private/x", b"/public/../private/x", b"/public/%2e%2e/private/x",
    b"/public/%2E%2E/private/x", b"/public/%%32%65%%32%65/private/x", b"/public/%2e%2e%2fprivate",
    b"/public/..%2fprivate/x", b"/public/%252e%252e/private/x", b"/public//private",
    b"//private/x", b"/./private/x", b"/public/./x", b"/public/%zz", b"/public/%", b"/public/%4",
    b"/public/\xff/x", b"/public/\x80%41", b"/caf\xc3\xa9", b"/caf%C3%A9", b"/caf%c3%a9/x",
    b"/users/42", b"/users/4%32", b"/users/42%2f", b"/public/a\"b", b"/public/<x>",
    b"/public/a{b}", b"/public/a|b", b"/public/a\\b", b"/public/a^b", b"/public/`x`",
    b"/public/%00", b"/public/%7F", b"/private%2fx", b"/p%75blic/x", b"/%70rivate/x",
    b"/public/.%2e/private", b"/public/%2e./private", b"/public/..", b"/public/%2e%2e",
    b"/public/x?next=/private", b"/public/%3Fa=b?c=%", b"/PUBLIC/x", b"/public;x/../../private",
]

_SAFE_RAW = re.compile(rb"^[!#$&'()*+,/:;=@\[\]A-Za-z0-9\-_.~%]*$")


def build(module):
    return module.Router([(r, SERVICE, r.name) for r in ROUTES])


def decision(router, module, url):
    try:
        match = router.match(b"GET", None, url, None)
    except module.MalformedTarget:
        return "malformed", None
    if match is None:
        return None, None
    return match.payload, match.upstream_path


def check_forwarding(router, module, url):
    payload, forwarded = decision(router, module, url)
    if payload in ("malformed", None):
        return payload
    path = forwarded.split(b"?")[0]
    assert _SAFE_RAW.match(path), (url, forwarded)
    again, forwarded_again = decision(router, module, forwarded)
    assert again == payload, (url, forwarded, again)
    # One encoding: forwarding the forwarded path changes nothing.
    assert forwarded_again == forwarded, (url, forwarded, forwarded_again)
    return payload


@pytest.mark.parametrize("url", PATH_VECTORS, ids=[v.decode("latin-1") for v in PATH_VECTORS])
def test_forwarded_path_routes_as_received(core_module, url):
    check_forwarding(build(core_module), core_module, url)


def test_the_malformed_escape_vector_is_refused(core_module):
    router = build(core_module)
    for url in (b"/public/%%32%65%%32%65/private/x", b"/public/%zz", b"/public/%", b"/public/%4"):
        assert decision(router, core_module, url)[0] == "malformed", url
    # The same request written with valid escapes is routed, and to /private.
    assert decision(router, core_module, b"/public/%2e%2e/private/x")[0] == "private"


def test_bytes_outside_rfc3986_are_encoded_the_same_way_with_or_without_escapes(core_module):
    router = build(core_module)
    raw = decision(router, core_module, b"/public/\xff/x")[1]
    escaped = decision(router, core_module, b"/public/%FF/x")[1]
    assert raw == escaped == b"/public/%FF/x"


PIECES = [b"/", b".", b"..", b"%", b"%2e", b"%2E", b"%2f", b"%2F", b"%25", b"%32", b"%65",
          b"%zz", b"%C3%A9", b"\xc3\xa9", b"\xff", b"\x80", b"public", b"private", b"users",
          b"caf", b"42", b"a", b"~", b";", b"\"", b"<", b"\\", b"?", b"//"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=12))
def test_fuzzed_paths_route_as_forwarded(core_module, pieces):
    url = b"/" + b"".join(pieces)
    check_forwarding(build(core_module), core_module, url)
