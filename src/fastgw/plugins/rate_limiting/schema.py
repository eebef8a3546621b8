"""Config of rate-limiting: Kong 3.x's fields and defaults, plus fastgw's
``algorithm`` and ``burst``.

Kong 2.x wrote the Redis settings flat (``redis_host``, ``redis_port``...);
those names are still accepted and folded into the ``redis`` record, as
Kong's shorthand fields do.
"""

from __future__ import annotations

from fastgw._core.ratelimit import PERIOD_NAMES
from fastgw.config.checks import check_path
from fastgw.config.schema import (
    Boolean,
    Field,
    Integer,
    Number,
    Path,
    Record,
    String,
    Validation,
)
from fastgw.shared_redis.schema import REDIS, check_own_connection, redis_fields

ALGORITHMS = ("fixed", "sliding", "token-bucket")
LIMIT_BY = ("consumer", "credential", "ip", "service", "header", "path")
# Kong's typedefs.header_name.
_HEADER_NAME = r"^[A-Za-z0-9_-]+$"


def _positive(value: float) -> str | None:
    return "value must be greater than 0" if value <= 0 else None


def _at_least_one(value: float) -> str | None:
    return "value must be at least 1" if value < 1 else None


def _limit(period: str) -> Number:
    return Number(
        check=_positive, description=f"The number of HTTP requests allowed per {period}."
    )


def _shorthands() -> dict[str, Field]:
    """Kong 2.x's flat names (``redis_host``...), folded into ``redis`` by _check."""
    fields = redis_fields(defaults=False)
    shorthands = {}
    for name in _KONG2_REDIS_NAMES:
        field = fields[name]
        field.description = f"Deprecated Kong 2.x name of redis.{name}."
        shorthands[f"redis_{name}"] = field
    return shorthands


_KONG2_REDIS_NAMES = ("host", "port", "timeout", "username", "password", "database", "ssl",
                      "ssl_verify", "server_name")
REDIS_SHORTHANDS = _shorthands()


def _check(config: dict, path: Path, ctx: Validation) -> None:
    redis = config["redis"]
    for shorthand in REDIS_SHORTHANDS:
        value = config.pop(shorthand)
        if value is not None:
            redis[shorthand.removeprefix("redis_")] = value
    limits = [(period, config[period]) for period in PERIOD_NAMES if config[period] is not None]
    if not limits:
        ctx.error(path, "at least one of these fields must be non-empty: "
                  + ", ".join(f"'{period}'" for period in PERIOD_NAMES))
    # Kong's rule: a longer period may not allow fewer requests than a shorter one.
    for position, (shorter, low) in enumerate(limits):
        for longer, high in limits[position + 1:]:
            if high < low:
                ctx.error(path, f"The limit for {longer}({high:.1f}) cannot be lower than the "
                          f"limit for {shorter}({low:.1f})")
    for limit_by, needed in (("header", "header_name"), ("path", "path")):
        if config["limit_by"] == limit_by and config[needed] is None:
            ctx.error((path, needed), f"required when limit_by is '{limit_by}'")
    if config["burst"] is not None and config["algorithm"] != "token-bucket":
        ctx.error((path, "burst"), "only applies to algorithm 'token-bucket'")
    if config["policy"] == "redis":
        check_own_connection(redis, (path, "redis"), ctx)


SCHEMA = Record(
    {
        **{period: _limit(period) for period in PERIOD_NAMES},
        "limit_by": String(
            one_of=LIMIT_BY,
            default="consumer",
            description="Whose requests are counted together; when it cannot be told (no "
            "consumer, no header...), the client IP.",
        ),
        "header_name": String(
            match=_HEADER_NAME,
            match_message="bad header name '{value}', allowed characters are A-Z, a-z, "
            "0-9, '_', and '-'",
            description="The request header whose value is counted, for limit_by 'header'.",
        ),
        "path": String(
            check=check_path,
            description="The request path counted on its own, for limit_by 'path'.",
        ),
        "policy": String(
            one_of=("local", "redis"),
            default="local",
            description="'local': counters shared by this node's workers (shared memory); "
            "'redis': counters shared by every gateway using the same Redis.",
        ),
        "algorithm": String(
            one_of=ALGORITHMS,
            default="fixed",
            description="fastgw extension. 'fixed': Kong's calendar windows, reset at each "
            "second/minute/... boundary; 'sliding': the last full period, estimated from the "
            "current and previous windows (no burst at boundaries); 'token-bucket': each "
            "period's limit refills continuously, up to 'burst' at once (with policy local, "
            "each worker has its own buckets).",
        ),
        "burst": Number(
            check=_at_least_one,
            description="fastgw extension, token-bucket only: how many requests may come at "
            "once (the bucket's size); unset: each period's limit.",
        ),
        "fault_tolerant": Boolean(
            default=True,
            description="When the counters cannot be reached: true lets requests through "
            "(Redis: counted on this node meanwhile), false answers 500.",
        ),
        "redis": REDIS,
        **REDIS_SHORTHANDS,
        "hide_client_headers": Boolean(
            default=False, description="Send no RateLimit-* and X-RateLimit-* headers."
        ),
        "error_code": Integer(
            between=(100, 599), default=429, description="Status of the answer over the limit."
        ),
        "error_message": String(
            default="API rate limit exceeded",
            description="Message of the answer over the limit.",
        ),
        "sync_rate": Number(
            between=(-1, 86400),
            default=-1,
            description="Accepted for Kong compatibility: fastgw always counts in the "
            "request's own round trip, whatever the value.",
        ),
    },
    validator=_check,
    description="Limit how many requests a client may make per period.",
)
