"""Cost of the auth plugins' access phase, per request.

Why it matters: an auth plugin runs on every request of the routes it
guards, and PERF.md prices each extra microsecond at about 6% of throughput.
key-auth's target is a few microseconds: one scan of the request headers, one
dict lookup, then ``ctx.authenticate`` (which rewrites the X-Consumer-*
headers and is most of the cost). A request carries eight typical headers.
The context is reset in place between rounds rather than rebuilt, so the
numbers are the plugin's own. Under ``--benchmark-disable`` each case runs
once, as a correctness check.
"""

import base64

import jwt as pyjwt
import pytest

from fastgw.config.loader import parse_config
from fastgw.plugins import handler_class
from fastgw.plugins.context import make_context
from fastgw.plugins.state import ConfigState

SECRET = "bench-secret-" * 5
CONSUMERS = [
    {"username": f"user-{n}", "keyauth_credentials": [{"key": f"key-{n}"}],
     "basicauth_credentials": [{"username": f"login-{n}", "password": f"password-{n}"}],
     "jwt_secrets": [{"key": f"issuer-{n}", "secret": SECRET}],
     "acls": [{"group": "paying"}]}
    for n in range(1000)
]
COMMON_HEADERS = [
    ("Host", "api.example.com"), ("User-Agent", "bench/1.0"), ("Accept", "application/json"),
    ("Accept-Encoding", "gzip"), ("Connection", "keep-alive"), ("X-Request-Id", "abc-123"),
    ("Content-Type", "application/json"),
]


def handlers(*plugins: dict):
    parsed = parse_config({"_format_version": "3.0", "consumers": CONSUMERS,
                           "plugins": list(plugins)})
    state = ConfigState(parsed)
    return [handler_class(p.name)(p.config, state, p) for p in parsed.plugins]


def per_request(plugins, credential_header: tuple[str, str]):
    """A function running ``plugins``' access on a context restored in place."""
    ctx = make_context("GET", "/orders", [*COMMON_HEADERS, credential_header])
    original = list(ctx.request.headers.items)
    items = ctx.request.headers.items

    def request():
        items[:] = original
        ctx.consumer = ctx.credential = None
        for plugin in plugins:
            plugin.access(ctx)
        return ctx

    return request


def assert_identified(ctx, username):
    assert not ctx.exited
    assert ctx.consumer.username == username


def test_key_auth(benchmark):
    request = per_request(handlers({"name": "key-auth"}), ("apikey", "key-500"))
    assert_identified(benchmark(request), "user-500")


def test_key_auth_unknown_key(benchmark):
    request = per_request(handlers({"name": "key-auth"}), ("apikey", "wrong"))

    def rejected():
        ctx = request()
        ctx.exit_status = 0
        return ctx

    assert benchmark(rejected).exit_body == b'{"message":"Unauthorized"}'


def test_key_auth_then_acl(benchmark):
    plugins = handlers({"name": "key-auth"}, {"name": "acl", "config": {"allow": ["paying"]}})
    ctx = benchmark(per_request(plugins, ("apikey", "key-500")))
    assert_identified(ctx, "user-500")
    assert ctx.request.headers.get("X-Consumer-Groups") == "paying"


def test_basic_auth(benchmark):
    value = "Basic " + base64.b64encode(b"login-500:password-500").decode()
    request = per_request(handlers({"name": "basic-auth"}), ("Authorization", value))
    assert_identified(benchmark(request), "user-500")


def test_jwt_hs256(benchmark):
    token = pyjwt.encode({"iss": "issuer-500", "exp": 4102444800}, SECRET, algorithm="HS256")
    plugins = handlers({"name": "jwt", "config": {"claims_to_verify": ["exp"]}})
    request = per_request(plugins, ("Authorization", f"Bearer {token}"))
    assert_identified(benchmark(request), "user-500")


@pytest.fixture(autouse=True)
def _label(benchmark):
    benchmark.extra_info["plugins"] = "python"
