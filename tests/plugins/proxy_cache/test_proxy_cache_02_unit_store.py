"""The memory store (LRU bounded in bytes, expiry), the entry format Redis
holds, the purge functions, and the header parsing the plugin decides with."""

import asyncio
import gc

import pytest

from fastgw.config.loader import parse_config
from fastgw.config.model import RedisSettings
from fastgw.plugins import handler_class
from fastgw.plugins.context import make_context, set_response
from fastgw.plugins.proxy_cache.directives import parse_directives, parse_media_type
from fastgw.plugins.proxy_cache.store import (
    ENTRY_OVERHEAD,
    CacheEntry,
    MemoryStore,
    RedisStore,
    memory_store,
    purge,
    purge_async,
)
from fastgw.plugins.state import ConfigState


def entry(body=b"x" * 600, headers=None):
    return CacheEntry(200, headers or {}, body, 1000.0, 60.0)


def test_the_store_evicts_the_least_recently_used_entries_beyond_its_bytes():
    one_entry = ENTRY_OVERHEAD + 600 + 1  # a 600-byte body under a one-letter key
    store = MemoryStore(max_bytes=3 * one_entry)
    for key in "abc":
        assert store.set(key, entry(), 0, now=0)
    assert store.bytes == 3 * one_entry
    assert store.get("a", now=1) is not None  # "a" is now the most recently used
    store.set("d", entry(), 0, now=1)
    assert [key for key in "abcd" if store.get(key, now=2) is not None] == ["a", "c", "d"]
    assert store.bytes == 3 * one_entry


def test_one_large_entry_may_evict_several_small_ones():
    store = MemoryStore(max_bytes=8192)
    for key in "abcd":
        store.set(key, entry(b"x" * 1000), 0, now=0)
    store.set("big", entry(b"x" * 5000), 0, now=0)
    assert len(store) == 2 and store.get("d", now=0) is not None
    assert store.bytes <= 8192


def test_an_entry_larger_than_the_store_is_refused_and_replaces_nothing():
    store = MemoryStore(max_bytes=4096)
    store.set("a", entry(), 0, now=0)
    assert not store.set("huge", entry(b"x" * 5000), 0, now=0)
    assert store.get("a", now=0) is not None and store.get("huge", now=0) is None


def test_replacing_a_key_counts_its_bytes_once():
    store = MemoryStore(max_bytes=100_000)
    store.set("k", entry(b"x" * 1000), 0, now=0)
    store.set("k", entry(b"x" * 10), 0, now=0)
    assert len(store) == 1 and store.bytes == ENTRY_OVERHEAD + 10 + 1


def test_entries_expire_after_their_storage_ttl():
    store = MemoryStore(max_bytes=100_000)
    store.set("short", entry(), 10, now=100)
    store.set("kept", entry(), 0, now=100)  # 0: until evicted
    assert store.get("short", now=110) is not None
    assert store.get("short", now=110.5) is None
    assert store.get("kept", now=10**9) is not None
    assert len(store) == 1


def test_shrinking_a_store_evicts_at_once():
    store = MemoryStore(max_bytes=100_000)
    for key in "abcdef":
        store.set(key, entry(), 0, now=0)
    store.resize(2 * (ENTRY_OVERHEAD + 601))
    assert len(store) == 2 and store.get("f", now=0) is not None


def test_a_plugin_instance_finds_its_store_again_resized():
    first = memory_store(("proxy-cache", "test-owner"), 100_000)
    first.set("k", entry(), 0, now=0)
    again = memory_store(("proxy-cache", "test-owner"), 50_000)
    assert again is first and again.max_bytes == 50_000 and len(again) == 1
    assert memory_store(("proxy-cache", "another"), 100_000) is not first


def test_the_redis_format_round_trips_any_body():
    original = CacheEntry(404, {"Content-Type": "text/plain", "X-Note": "a\nb"},
                          b"line one\nline two\n\x00\xff", 1700000000.25, 30.0)
    copy = CacheEntry.decode(original.encode())
    assert (copy.status, copy.headers, copy.body, copy.timestamp, copy.ttl) == (
        404, {"Content-Type": "text/plain", "X-Note": "a\nb"}, b"line one\nline two\n\x00\xff",
        1700000000.25, 30.0)


@pytest.mark.parametrize("data", [
    b"", b"no newline", b"not json\nbody", b'{"version": 0, "status": 200}\nbody',
    b'{"version": 1, "status": 200}\nbody', b'[1, 2]\nbody',
])
def test_data_in_another_format_decodes_to_nothing(data):
    assert CacheEntry.decode(data) is None


# -- purge ---------------------------------------------------------------------------


def fill(cache, url):
    ctx = make_context("GET", url, {"Host": "api.local"})
    cache.access(ctx)
    set_response(ctx, 200, {"Content-Type": "application/json"})
    cache.header_filter(ctx)
    cache.body_filter(ctx, b"{}", True)
    return ctx.response.headers.get("X-Cache-Key")


def test_purge_removes_one_key_or_everything_from_every_store(handler):
    first = handler(strategy="memory")
    other_store = memory_store(("proxy-cache", "other-plugin"), 100_000)
    key = fill(first, "/a")
    fill(first, "/b")
    other_store.set(key, entry(), 0, now=0)
    other_store.set("unrelated", entry(), 0, now=0)

    assert purge(key) == 2  # from both stores
    assert purge(key) == 0
    assert len(first.memory) == 1 and len(other_store) == 1
    assert purge() == 2
    assert len(first.memory) == 0 and len(other_store) == 0


def test_a_purged_key_is_a_miss_again(handler):
    cache = handler(strategy="memory")
    key = fill(cache, "/a")
    assert purge(key) == 1
    ctx = make_context("GET", "/a", {"Host": "api.local"})
    cache.access(ctx)
    assert not ctx.exited


def test_purge_async_without_redis_purges_memory(handler):
    gc.collect()  # no Redis store of another test may linger
    cache = handler(strategy="memory")
    fill(cache, "/a")
    fill(cache, "/b")
    assert asyncio.run(purge_async(None)) == 2
    assert len(cache.memory) == 0


def test_a_redis_strategy_without_any_redis_bypasses_every_request(handler, caplog):
    cache = handler(strategy="redis")  # no redis.host, no _gateway.redis.url
    assert "needs config.redis (host, sentinel_nodes or cluster_nodes) or _gateway.redis" in caplog.text
    ctx = make_context("GET", "/a", {"Host": "api.local"})
    assert cache.access(ctx) is None
    set_response(ctx, 200, {"Content-Type": "application/json"})
    cache.header_filter(ctx)
    assert ctx.response.headers.get("X-Cache-Status") == "Bypass"


def test_redis_connection_settings_come_from_the_record_or_the_gateway_url(validated):
    config = validated({"strategy": "redis", "redis": {
        "host": "cache.internal", "port": 6380, "ssl": True, "ssl_verify": True,
        "username": "gw", "password": "pw", "database": 2}})
    store = RedisStore.from_config(config["redis"], None)  # connects lazily
    kwargs = store.client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["username"]) == (
        "cache.internal", 6380, 2, "gw")
    assert store.identity == ("single", None, (("cache.internal", 6380),), None, 2, "gw")
    assert store.timeout == 2.0
    by_url = RedisStore.from_config(validated({"strategy": "redis"})["redis"],
                                    RedisSettings(url="redis://10.1.1.1:6379/3"))
    assert by_url.identity == ("url", "redis://10.1.1.1:6379/3", (), None, 0, None)
    assert by_url.client.connection_pool.connection_kwargs["db"] == 3


def test_plugins_of_one_config_version_share_one_client_per_redis():
    plugin = {"name": "proxy-cache", "config": {"strategy": "redis"}}
    parsed = parse_config({
        "_format_version": "3.0", "_gateway": {"redis": {"url": "redis://127.0.0.1:1/0"}},
        "services": [{"name": "a", "url": "http://127.0.0.1:1", "plugins": [plugin]},
                     {"name": "b", "url": "http://127.0.0.1:1", "plugins": [plugin]}]})
    state = ConfigState(parsed)
    first, second = (handler_class("proxy-cache")(entry.config, state, entry)
                     for entry in parsed.plugins)
    assert first.redis is second.redis
    assert handler_class("proxy-cache")(parsed.plugins[0].config, ConfigState(parsed),
                                        parsed.plugins[0]).redis is not first.redis


# -- header parsing ------------------------------------------------------------------


def test_cache_control_directives_parse_as_kong_does():
    assert parse_directives(['public, Max-Age=60, no-cache="Set-Cookie"', "s-maxage=5, ext"]) \
        == {"public": True, "max-age": 60, "no-cache": "Set-Cookie", "s-maxage": 5,
            "ext": True}
    assert parse_directives(["max-age=soon, ,"]) == {"max-age": "soon"}


def test_media_types_parse_with_case_folded_names():
    assert parse_media_type('Text/HTML; Charset="UTF-8"; q=1') == (
        "text", "html", {"charset": "utf-8", "q": "1"})
    assert parse_media_type("application/json") == ("application", "json", {})
    assert parse_media_type("json") is None
    assert parse_media_type("a/b/c") is None
