"""response-transformer handler: header operations, JSON bodies buffered until the
end, Content-Length dropped only when a JSON body will change."""

import orjson
import pytest

from fastgw.plugins.context import make_context, set_response
from fastgw.plugins.response_transformer.handler import is_json_content_type


def respond(plugin, headers, chunks=(), status=200):
    """header_filter then body_filter over ``chunks``; (headers, pieces sent)."""
    ctx = make_context()
    set_response(ctx, status, headers)
    plugin.header_filter(ctx)
    sent = [plugin.body_filter(ctx, chunk, index == len(chunks) - 1)
            for index, chunk in enumerate(chunks)]
    return ctx.response.headers, sent


def test_priority_is_kongs(handler):
    assert handler().PRIORITY == 800


def test_header_operations(handler):
    plugin = handler(
        remove={"headers": ["Server"]},
        rename={"headers": ["X-Old:X-New"]},
        replace={"headers": ["X-Mode:strict", "X-Absent:1"]},
        add={"headers": ["X-Added:yes", "X-Mode:ignored"]},
        append={"headers": ["X-List:b"]},
    )
    headers, _ = respond(plugin, [("Server", "upstream/1"), ("x-old", "o"), ("X-Mode", "lax"),
                                  ("X-List", "a"), ("Content-Length", "2")])
    assert sorted(headers.pairs()) == [("Content-Length", "2"), ("X-Added", "yes"),
                                       ("X-List", "a"), ("X-List", "b"), ("X-Mode", "strict"),
                                       ("X-New", "o")]
    assert headers.get_all("x-list") == ["a", "b"]  # appended after the upstream's


def test_json_body_is_held_until_the_end_and_transformed(handler):
    plugin = handler(
        remove={"json": ["internal"]},
        rename={"json": ["msg:message"]},
        replace={"json": ["count:0", "ok:false", "absent:1"], "json_types": ["number", "boolean"]},
        add={"json": ["version:2.5", "count:99"], "json_types": ["number", "number"]},
        append={"json": ["tags:new", "fresh:x"]},
    )
    body = orjson.dumps({"internal": 1, "msg": "hi", "count": 5, "ok": True, "tags": ["old"]})
    headers, sent = respond(plugin, {"Content-Type": "application/json; charset=utf-8",
                                     "Content-Length": str(len(body))},
                            [body[:10], body[10:20], body[20:]])
    assert headers.get("Content-Length") is None
    assert sent[:2] == [b"", b""]
    assert orjson.loads(sent[2]) == {"message": "hi", "count": 0, "ok": False,
                                     "tags": ["old", "new"], "version": 2.5, "fresh": ["x"]}


@pytest.mark.parametrize("body", [b"not json", b"[1, 2, 3]"])
def test_bodies_that_are_not_json_objects_go_out_unchanged(handler, body):
    plugin = handler(add={"json": ["a:1"]})
    _, sent = respond(plugin, {"Content-Type": "application/json"}, [body[:3], body[3:]])
    assert b"".join(sent) == body


def test_non_json_responses_stream_through_with_their_length(handler):
    plugin = handler(add={"json": ["a:1"]})
    headers, sent = respond(plugin, {"Content-Type": "text/html", "Content-Length": "6"},
                            [b"abc", b"def"])
    assert headers.get("Content-Length") == "6"
    assert sent == [b"abc", b"def"]


def test_header_only_config_leaves_the_body_and_length(handler):
    plugin = handler(add={"headers": ["X-A:1"]})
    headers, sent = respond(plugin, {"Content-Type": "application/json",
                                     "Content-Length": "2"}, [b"{}"])
    assert headers.get("Content-Length") == "2"
    assert sent == [b"{}"]


def test_plugin_answers_are_transformed_too(handler):
    plugin = handler(add={"json": ["hint:see docs"]})
    ctx = make_context()
    ctx.exit(403, {"message": "Forbidden"})
    set_response(ctx, 403, ctx.exit_headers, source="exit")
    plugin.header_filter(ctx)
    body = plugin.body_filter(ctx, ctx.exit_body, False) + plugin.body_filter(ctx, b"", True)
    assert orjson.loads(body) == {"message": "Forbidden", "hint": "see docs"}


@pytest.mark.parametrize(("content_type", "is_json"), [
    ("application/json", True), ("application/json; charset=utf-8", True),
    ("Application/JSON", True), ("application/problem+json", True),
    ("text/plain, application/json", True), ("application/jsonp", False),
    ("text/json-like", False), ("", False), (None, False),
])
def test_is_json_content_type(content_type, is_json):
    assert is_json_content_type(content_type) is is_json
