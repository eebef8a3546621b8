"""Config of proxy-cache, with Kong 3.x's field names and defaults.

fastgw differences: ``memory.max_bytes`` bounds each worker's store (Kong
names an nginx shared dictionary instead; ``memory.dictionary_name`` is
accepted and ignored), and ``strategy: redis`` takes Kong's Redis record (Sentinel and Cluster included), or ``_gateway.redis``
when it names no Redis.
"""

from __future__ import annotations

from fastgw.config.schema import (
    Array,
    Boolean,
    Integer,
    Path,
    Record,
    String,
    Validation,
)
from fastgw.plugins.proxy_cache.directives import parse_media_type
from fastgw.shared_redis.schema import REDIS, check_own_connection

# Kong's integer bounds for TTLs and timeouts (typedefs.timeout).
_MAX_INT = 2**31 - 2
_HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"


def _check_media_type(value: str) -> str | None:
    if parse_media_type(value) is None:
        return f"invalid media type '{value}', expected 'type/subtype' (parameters allowed)"
    return None


def _check(config: dict, path: Path, ctx: Validation) -> None:
    if config["strategy"] == "redis":
        check_own_connection(config["redis"], (path, "redis"), ctx)


SCHEMA = Record(
    {
        "response_code": Array(
            Integer(between=(100, 900)),
            len_min=1, default=(200, 301, 404),
            description="Upstream response status codes considered cacheable.",
        ),
        "request_method": Array(
            String(one_of=("HEAD", "GET", "POST", "PATCH", "PUT")),
            default=("GET", "HEAD"),
            description="Request methods considered cacheable (the key does not cover the "
            "request body, as in Kong).",
        ),
        "content_type": Array(
            String(check=_check_media_type),
            default=("text/plain", "application/json"),
            description="Upstream response content types considered cacheable: type, subtype "
            "('*' matches any) and parameters must match exactly.",
        ),
        "cache_ttl": Integer(between=(1, _MAX_INT), default=300,
                             description="Seconds a stored response is served."),
        "strategy": String(
            one_of=("memory", "redis"), required=True,
            description="Where entries live: 'memory' (each worker process its own) or "
            "'redis' (shared by every worker and instance).",
        ),
        "cache_control": Boolean(
            default=False,
            description="Respect request and response Cache-Control (RFC 9111) and "
            "Authorization.",
        ),
        "ignore_uri_case": Boolean(default=False,
                                   description="Lower-case the path in the cache key."),
        "storage_ttl": Integer(
            between=(0, _MAX_INT),
            description="Seconds entries are kept in the store, independent of cache_ttl "
            "(0: until evicted); unset: the TTL that decides freshness.",
        ),
        "memory": Record(
            {
                "max_bytes": Integer(
                    between=(4096, 2**40), default=64 * 1024 * 1024,
                    description="Bytes each worker's store may hold; least recently used "
                    "entries go first.",
                ),
                "dictionary_name": String(
                    description="Kong's shared dictionary name; accepted and ignored."),
            },
            default={},
            description="The in-process store of strategy 'memory'.",
        ),
        "vary_query_params": Array(
            String(),
            description="Query parameters the key covers; unset: all of them.",
        ),
        "vary_headers": Array(
            String(match=_HEADER_NAME, match_message="invalid header name '{value}'"),
            description="Request headers the key covers; unset: none.",
        ),
        "response_headers": Record(
            {
                "age": Boolean(default=True, description="Send Age on hits."),
                "X-Cache-Status": Boolean(default=True,
                                          description="Send Miss, Hit, Refresh or Bypass."),
                "X-Cache-Key": Boolean(default=True, description="Send the cache key."),
            },
            default={},
            description="Diagnostic headers added to responses (all of them when the "
            "request carries Kong-Debug).",
        ),
        "redis": REDIS,
    },
    validator=_check,
    description="Cache upstream responses and answer repeated requests from the cache.",
)
