"""request-transformer handler: Kong's order of operations on the path, method,
headers, body and query string; templates; the body read only when needed."""

import asyncio
from urllib.parse import parse_qs

import orjson
import pytest

from fastgw.plugins.context import make_context
from fastgw.plugins.request_transformer.handler import body_kind

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def transform(plugin, method="GET", url="/", headers=None, body=None, shared=None):
    """Run access (awaiting it when it reads the body); the request view and
    whether the body was read."""
    ctx = make_context(method, url, headers or {}, body=body)
    ctx.shared.update(shared or {})
    pending = plugin.access(ctx)
    if pending is not None:
        asyncio.run(pending)
    assert not ctx.exited
    return ctx.request, pending is not None


def test_priority_is_kongs(handler):
    assert handler().PRIORITY == 801


def test_header_operations_in_kongs_order(handler):
    plugin = handler(
        remove={"headers": ["X-Secret", "X-Absent"]},
        rename={"headers": ["X-Old:X-New", "X-Missing:X-Never"]},
        replace={"headers": ["X-New:replaced", "X-Nothing:1"]},
        add={"headers": ["X-Added:1", "X-Keep:ignored"]},
        append={"headers": ["X-Keep:second", "X-List:a", "X-List:b"]},
    )
    request, read = transform(plugin, headers=[
        ("X-Secret", "s"), ("X-Old", "o"), ("X-New", "overwritten"), ("X-Keep", "first")])
    assert not read
    headers = request.headers
    assert headers.get("X-Secret") is None
    assert headers.get("X-Old") is None
    # rename moved X-Old's value over X-New, then replace changed it.
    assert headers.get_all("X-New") == ["replaced"]
    assert headers.get("X-Nothing") is None and headers.get("X-Never") is None
    assert headers.get("X-Added") == "1"
    assert headers.get_all("X-Keep") == ["first", "second"]
    assert headers.get_all("X-List") == ["a", "b"]


def test_header_names_match_case_insensitively(handler):
    plugin = handler(remove={"headers": ["x-secret"]}, replace={"headers": ["x-mode:b"]})
    request, _ = transform(plugin, headers={"X-SECRET": "1", "X-Mode": "a"})
    assert request.headers.pairs() == [("x-mode", "b")]


def test_replace_host_sets_the_upstream_host_and_add_never_touches_it(handler):
    plugin = handler(replace={"headers": ["Host:api.internal:8080"]},
                     add={"headers": ["Host:ignored"]}, append={"headers": ["host:ignored"]})
    request, _ = transform(plugin, headers={"Host": "public.example"})
    assert request.headers.get_all("host") == ["api.internal:8080"]


def test_querystring_operations(handler):
    plugin = handler(
        remove={"querystring": ["debug"]},
        rename={"querystring": ["q:query"]},
        replace={"querystring": ["v:2", "absent:x"]},
        add={"querystring": ["from:gw", "v:ignored"]},
        append={"querystring": ["tag:new"]},
    )
    request, _ = transform(plugin, url="/s?debug=1&q=cats&v=1&tag=old")
    assert parse_qs(request.query_string) == {
        "query": ["cats"], "v": ["2"], "from": ["gw"], "tag": ["old", "new"]}
    assert request.raw_query == "debug=1&q=cats&v=1&tag=old"  # what the client sent


def test_query_string_is_left_as_sent_when_nothing_applies(handler):
    request, _ = transform(handler(remove={"querystring": ["x"]}), url="/s?a=%20b&c")
    assert request.query_string == "a=%20b&c"


def test_replace_uri_and_http_method(handler):
    plugin = handler(replace={"uri": "/v2/items"}, http_method="PUT")
    request, _ = transform(plugin, "POST", "/v1/things?id=3")
    assert request.method == "PUT"
    assert request.upstream_url == "/v2/items?id=3"


def test_json_body_operations(handler):
    plugin = handler(
        remove={"body": ["password"]},
        rename={"body": ["user:username"]},
        replace={"body": ["mode:strict", "absent:x"]},
        add={"body": ["source:gateway", "mode:ignored"]},
        append={"body": ["tags:new", "single:two", "fresh:1"]},
    )
    body = orjson.dumps({"password": "p", "user": "ann", "mode": "lax", "tags": ["old"],
                         "single": "one", "n": 1})
    request, read = transform(plugin, "POST", headers=JSON, body=body)
    assert read and request.body_replaced
    assert orjson.loads(request.body) == {
        "username": "ann", "mode": "strict", "tags": ["old", "new"], "single": ["one", "two"],
        "n": 1, "source": "gateway", "fresh": ["1"]}


def test_json_add_to_an_empty_body(handler):
    request, _ = transform(handler(add={"body": ["a:1"]}), "POST", headers=JSON, body=b"")
    assert orjson.loads(request.body) == {"a": "1"}


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"untouched": true}'])
def test_json_bodies_that_cannot_or_need_not_change_are_left_alone(handler, body):
    request, read = transform(handler(remove={"body": ["absent"]}), "POST", headers=JSON,
                              body=body)
    assert read and request.body == body and not request.body_replaced


def test_form_body_operations(handler):
    plugin = handler(remove={"body": ["secret"]}, replace={"body": ["a:2"]},
                     add={"body": ["b:3"]}, append={"body": ["c:y"]})
    request, _ = transform(plugin, "POST", headers=FORM, body=b"secret=1&a=1&c=x&raw=%FF")
    assert request.body_replaced
    assert request.body == b"a=2&c=x&c=y&raw=%FF&b=3"  # bytes that are not UTF-8 survive


def test_other_bodies_are_never_read(handler):
    plugin = handler(add={"body": ["a:1"]})
    request, read = transform(plugin, "POST", headers={"Content-Type": "text/plain"},
                              body=b"hello")
    assert not read and request.body is None
    request, read = transform(plugin, "POST", headers={"Content-Type": "multipart/form-data"},
                              body=b"--x--")
    assert not read and request.body is None


def test_method_change_to_get_moves_form_arguments_to_the_query(handler):
    plugin = handler(http_method="GET", append={"querystring": ["page:2"]})
    request, read = transform(plugin, "POST", "/search?page=1", headers=FORM,
                              body=b"q=cats&page=9")
    assert read and request.method == "GET"
    assert parse_qs(request.query_string) == {"page": ["1", "9", "2"], "q": ["cats"]}


def test_templates_read_the_request_as_sent(handler):
    plugin = handler(
        remove={"headers": ["X-User"]},
        add={"headers": ["X-Caller:user=$(headers.x_user)", "X-Tenant:$(shared.tenant)",
                         "X-Version:$(query_params[\"v\"] or 'v1')", "X-Host:$(headers.host)"],
             "body": ["caller:$(headers['X-User'])"]},
        replace={"uri": "/api/$(query_params.v or \"v1\")/items"},
    )
    request, _ = transform(plugin, "POST", "/items",
                           headers={**JSON, "X-User": "ann", "Host": "shop.example"},
                           body=b"{}", shared={"tenant": "acme"})
    headers = request.headers
    assert headers.get("X-User") is None
    assert headers.get("X-Caller") == "user=ann"
    assert headers.get("X-Tenant") == "acme"
    assert headers.get("X-Version") == "v1"
    assert headers.get("X-Host") == "shop.example"
    assert request.path == "/api/v1/items"
    assert orjson.loads(request.body) == {"caller": "ann"}


def test_missing_template_values_render_empty_and_repeats_join(handler):
    plugin = handler(add={"headers": ["X-A:[$(headers.absent)]", "X-B:$(query_params.t)"]})
    request, _ = transform(plugin, url="/?t=1&t=2")
    assert request.headers.get("X-A") == "[]"
    assert request.headers.get("X-B") == "1, 2"


@pytest.mark.parametrize(("content_type", "kind"), [
    ("application/json", "json"), ("Application/JSON; charset=utf-8", "json"),
    ("application/x-www-form-urlencoded", "form"), ("text/plain", None), (None, None),
])
def test_body_kind(content_type, kind):
    assert body_kind(content_type) == kind
