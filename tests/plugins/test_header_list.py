"""HeaderList: case-insensitive reads and edits of the core's flat
``[name, value, ...]`` list, in place, repeated names included."""

from fastgw.plugins.context import HeaderList


def headers() -> HeaderList:
    return HeaderList([b"Host", b"x", b"X-Key", b"1", b"Accept", b"*/*", b"x-KEY", b"2",
                       b"X-Kez", b"3"])


def test_reads_find_any_case_and_only_the_name():
    view = headers()
    assert view.get("x-key") == "1" and view.get("X-KEZ") == "3"
    assert view.get("x-ke") is None and view.get("missing", "d") == "d"
    assert view.get_all("X-Key") == ["1", "2"]
    assert "ACCEPT" in view and "Accep" not in view


def test_remove_takes_every_value_of_the_name_and_keeps_the_order():
    view = headers()
    assert view.remove("X-KEY") is True
    assert view.items == [b"Host", b"x", b"Accept", b"*/*", b"X-Kez", b"3"]
    items = view.items
    assert view.remove("x-key") is False and view.items is items  # edited in place


def test_set_replaces_and_remove_all_and_rename_match_like_get():
    view = headers()
    view.set("x-key", "9")
    assert view.get_all("X-Key") == ["9"] and view.items[-2:] == [b"x-key", b"9"]
    view.remove_all(("ACCEPT", "x-kez"))
    assert view.pairs() == [("Host", "x"), ("x-key", "9")]
    view.remove_all(frozenset({b"nothing"}))
    assert len(view.items) == 4
    view.rename("X-KEY", "X-Api-Key")
    assert view.pairs() == [("Host", "x"), ("X-Api-Key", "9")]
    view.rename("host", "Host")
    assert view.host_added is True


def test_set_upstream_keeps_the_host_aside_and_a_later_host_header_wins():
    from fastgw.plugins.context import make_context

    ctx = make_context("POST", "/chat", headers={"X-A": "1"})
    ctx.request.headers.set("Host", "set-before")
    ctx.set_upstream("http://provider.example:8443/v1/chat?x=1")
    # The earlier Host gives way; the upstream's is kept beside the headers.
    assert ctx.request.upstream_host == "provider.example:8443"
    assert "Host" not in ctx.request.headers and not ctx.request.headers.host_added
    assert (ctx.request.path, ctx.request.query_string) == ("/v1/chat", "x=1")
    ctx.set_upstream("https://provider.example/v1", host_header="api.example")
    assert ctx.request.upstream_host == "api.example"
    # A plugin after it that sets Host: the runner takes the header instead.
    ctx.request.headers.set("Host", "set-after")
    assert ctx.request.headers.host_added
