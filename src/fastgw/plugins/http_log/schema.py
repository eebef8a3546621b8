"""http-log's config, after Kong 3.x's (``kong/plugins/http-log/schema.lua``
and the shared ``queue`` record of ``kong/tools/queue_schema.lua``).

``retry_count``, ``queue_size`` and ``flush_timeout`` are Kong's deprecated
pre-3.3 settings: accepted, and the last two stand in for
``queue.max_batch_size`` / ``queue.max_coalescing_delay`` when those are left
at their defaults; ``retry_count`` has no effect (``queue.max_retry_time``
bounds retries), as in Kong.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastgw.config.schema import Integer, Map, Number, Path, Record, String, Validation
from fastgw.plugins.log_serializer import custom_fields_by_lua_field, custom_fields_field

# Kong's header_name typedef: letters, digits, '_' and '-'.
_HEADER_NAME = r"^[A-Za-z0-9_-]+$"
# Set by the plugin itself from the payload and the endpoint.
_RESERVED_HEADERS = {"host": "Host", "content-length": "Content-Length",
                     "content-type": "Content-Type"}
_MAX_MILLISECONDS = 2**31 - 2  # Kong's timeout typedef bound


def _check_endpoint(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        return f"invalid url: {exc}"
    if parts.scheme not in ("http", "https"):
        return "expected an http or https url"
    if not parts.hostname:
        return "missing host in url"
    if port == 0:
        return "invalid port in url"
    return None


def _check_header_name(name: str) -> str | None:
    reserved = _RESERVED_HEADERS.get(name.lower())
    return f"cannot contain '{reserved}' header" if reserved else None


QUEUE = Record(
    {
        "max_batch_size": Integer(
            default=1, between=(1, 1_000_000),
            description="Most entries sent in one request (1: one JSON object, else an array).",
        ),
        "max_coalescing_delay": Number(
            default=1, between=(0, 3600),
            description="Seconds to wait for a batch to fill after its first entry.",
        ),
        "max_entries": Integer(
            default=10000, between=(1, 1_000_000),
            description="Most entries waiting; when full, the oldest is dropped and counted.",
        ),
        "max_bytes": Integer(
            between=(1, 2**31 - 1),
            description="Most bytes of JSON waiting (no limit when unset); oldest dropped first.",
        ),
        "max_retry_time": Number(
            default=60, between=(-1, 1_000_000),
            description="Seconds to keep retrying a failed batch before dropping it (<= 0: no retry).",
        ),
        "initial_retry_delay": Number(
            default=0.01, between=(0.001, 1_000_000),
            description="Seconds before the first retry; doubled for each next one.",
        ),
        "max_retry_delay": Number(
            default=60, between=(0.001, 1_000_000),
            description="Cap on the delay between two retries, in seconds.",
        ),
        "concurrency_limit": Integer(
            default=1, one_of=(1,),
            description="Batches in flight at once; only Kong's default, 1, is supported.",
        ),
    },
    default={},
    description="The queue between requests and the log endpoint.",
)


def _validate(config: dict[str, Any], path: Path, ctx: Validation) -> None:
    # Two sources of credentials for one request would be ambiguous.
    headers = config["headers"] or {}
    if urlsplit(config["http_endpoint"]).username is not None and any(
        name.lower() == "authorization" for name in headers
    ):
        ctx.error(path, "specifying both an 'Authorization' header and user info in "
                        "'http_endpoint' is not allowed")


SCHEMA = Record(
    {
        "http_endpoint": String(
            required=True, referenceable=True, check=_check_endpoint,
            description="Where batches go: an http(s) URL, user info becomes Basic auth.",
        ),
        "method": String(
            default="POST", one_of=("POST", "PUT", "PATCH"),
            description="The HTTP method of the log requests.",
        ),
        "content_type": String(
            default="application/json",
            one_of=("application/json", "application/json; charset=utf-8"),
            description="The Content-Type of the log requests.",
        ),
        "timeout": Number(
            default=10000, between=(1, _MAX_MILLISECONDS),
            description="Milliseconds allowed to connect, and then to send and get the answer.",
        ),
        "keepalive": Number(
            default=60000, between=(0, _MAX_MILLISECONDS),
            description="Milliseconds an idle connection to the endpoint is reused (0: never).",
        ),
        "retry_count": Integer(
            between=(0, 1_000_000),
            description="Deprecated and without effect; see queue.max_retry_time.",
        ),
        "queue_size": Integer(
            between=(1, 1_000_000),
            description="Deprecated: queue.max_batch_size.",
        ),
        "flush_timeout": Number(
            between=(0, 3600),
            description="Deprecated: queue.max_coalescing_delay.",
        ),
        "headers": Map(
            String(match=_HEADER_NAME, check=_check_header_name,
                   match_message="bad header name '{value}', allowed characters are "
                                 "A-Z, a-z, 0-9, '_', and '-'",
                   description="A header name."),
            String(referenceable=True, secret=True, match=r"^[^\r\n]*\Z",
                   match_message="header values cannot contain CR or LF",
                   description="Its value."),
            description="Headers added to every log request.",
        ),
        "queue": QUEUE,
        "custom_fields_by_lua": custom_fields_by_lua_field(),
        "custom_fields": custom_fields_field(),
    },
    validator=_validate,
    description="http-log settings.",
)
