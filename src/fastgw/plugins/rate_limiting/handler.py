"""rate-limiting: count each client's requests per period, refuse the excess.

Kong 3.x's behaviour: the client is told its quota in ``X-RateLimit-Limit-
<Period>`` / ``X-RateLimit-Remaining-<Period>`` for every configured period,
and in ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` for the period with
the least left (the longer one on a tie). Over the limit the answer is
``error_code`` (429) with ``{"message": error_message}`` and ``Retry-After``;
the refused request is not counted.

Counters are keyed by the plugin's route and service (``*`` when global) and
the client's identifier, so each scoped config counts on its own, as Kong's
keys do. Policy local counts synchronously; policy redis returns a coroutine
for the one Redis round trip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from fastgw._core.decisions import WindowQuota
from fastgw._core.gateway import FastAnswer
from fastgw._core.ratelimit import PERIOD_NAMES
from fastgw.plugins.base import JSON_CONTENT_TYPE, Plugin
from fastgw.plugins.context import RequestContext
from fastgw.plugins.fast import FastDecision, FastRequest
from fastgw.plugins.rate_limiting.algorithms import (
    ALGORITHMS,
    STORE_ERRORS,
    FixedLimits,
    Outcome,
    node_counters,
)
from fastgw.plugins.rate_limiting.redis_store import RedisUnavailable, redis_counters
from fastgw.plugins.state import ConfigState

log = logging.getLogger("fastgw.plugins.rate_limiting")

UNEXPECTED = {"message": "An unexpected error occurred"}
# How often a failing shared-memory table is reported.
_STORE_ERROR_LOG_INTERVAL_S = 10.0

Identify = Callable[[RequestContext], str]


def _client_ip(ctx: RequestContext) -> str:
    return ctx.request.client_ip


def _credential(ctx: RequestContext) -> str:
    credential = ctx.credential
    if credential is None:
        return ctx.request.client_ip
    # A credential written without an id is known by the identifier its
    # auth plugin sent upstream (only trusted once a plugin authenticated).
    return (credential.get("id") or ctx.request.headers.get("X-Credential-Identifier")
            or ctx.request.client_ip)


def _consumer(ctx: RequestContext) -> str:
    consumer = ctx.consumer
    if consumer is not None and consumer.id:
        return consumer.id
    return _credential(ctx)


def _service(ctx: RequestContext) -> str:
    service = ctx.service
    if service is None:
        return ctx.request.client_ip
    return service.id or service.name


def _by_header(name: str) -> Identify:
    def identify(ctx: RequestContext) -> str:
        value = ctx.request.headers.get(name)
        return value if value is not None else ctx.request.client_ip

    return identify


def _by_path(path: str) -> Identify:
    def identify(ctx: RequestContext) -> str:
        return path if ctx.request.raw_path == path else ctx.request.client_ip

    return identify


def _identifier(config: dict[str, Any]) -> Identify:
    limit_by = config["limit_by"]
    if limit_by == "header":
        return _by_header(config["header_name"])
    if limit_by == "path":
        return _by_path(config["path"])
    return {"consumer": _consumer, "credential": _credential, "ip": _client_ip,
            "service": _service}[limit_by]



def _number(value: float) -> str:
    """A limit as Kong prints it: 10, not 10.0."""
    return str(int(value)) if value == int(value) else repr(value)


class RateLimitingHandler(Plugin):
    name = "rate-limiting"
    PRIORITY = 910

    __slots__ = ("limits", "identify", "redis_key", "node_key", "redis", "fault_tolerant",
                 "hide_headers", "error_code", "error_body", "limit_items", "limit_values",
                 "remaining_names", "limit_lines", "header_keys", "clock",
                 "_store_error_logged_at")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        periods = [(code, config[name]) for code, name in enumerate(PERIOD_NAMES)
                   if config[name] is not None]
        self.limits = ALGORITHMS[config["algorithm"]](
            periods, node_counters(state), config["burst"])
        self.identify = _identifier(config)
        route = getattr(scope, "route", None) or "*"
        service = getattr(scope, "service", None) or "*"
        self.redis_key = f"ratelimit:{route}:{service}:"
        self.node_key = self.redis_key.encode()
        self.redis = (redis_counters(state, config["redis"])
                      if config["policy"] == "redis" else None)
        self.fault_tolerant = config["fault_tolerant"]
        self.hide_headers = config["hide_client_headers"]
        self.error_code = config["error_code"]
        self.error_body = {"message": config["error_message"]}
        names = [PERIOD_NAMES[code].capitalize().encode() for code, _ in periods]
        self.limit_values = tuple(_number(limit).encode() for _, limit in periods)
        # [b"X-RateLimit-Limit-Second", b"10", ...]: the same on every answer.
        self.limit_items = tuple(item for name, value in zip(names, self.limit_values, strict=True)
                                 for item in (b"X-RateLimit-Limit-" + name, value))
        self.remaining_names = tuple(b"X-RateLimit-Remaining-" + name for name in names)
        self.limit_lines = b"".join(b"%s: %s\r\n" % (self.limit_items[i], self.limit_items[i + 1])
                                    for i in range(0, len(self.limit_items), 2))
        self.header_keys = frozenset(
            name.lower() for name in (*self.limit_items[::2], *self.remaining_names,
                                      b"RateLimit-Limit", b"RateLimit-Remaining",
                                      b"RateLimit-Reset"))
        self.clock: Callable[[], float] = time.time  # tests move it
        self._store_error_logged_at = -_STORE_ERROR_LOG_INTERVAL_S

    def access(self, ctx: RequestContext) -> Awaitable[None] | None:
        if self.redis is not None:
            return self._access_redis(ctx)
        now = self.clock()
        key = self.node_key + self.identify(ctx).encode()
        outcome = self._count_on_node(ctx, key, now)
        if outcome is not None:
            self._answer(ctx, outcome, now, key)
        return None

    async def _access_redis(self, ctx: RequestContext) -> None:
        now = self.clock()
        identifier = self.identify(ctx)
        key = self.node_key + identifier.encode()
        redis = self.redis
        assert redis is not None  # access() comes here only with Redis counters
        try:
            outcome = await redis.hit(self.limits, self.redis_key + identifier, now)
        except RedisUnavailable:
            if not self.fault_tolerant:
                ctx.exit(500, UNEXPECTED)
                return
            # Redis logs the outage once; meanwhile this node counts alone.
            counted = self._count_on_node(ctx, key, now)
            if counted is None:
                return
            outcome = counted
        self._answer(ctx, outcome, now, key)

    def _count_on_node(self, ctx: RequestContext, key: bytes, now: float) -> Outcome | None:
        """The node's count, or None when the counters failed (then the
        request passes uncounted, or gets a 500 if not fault tolerant)."""
        try:
            return self.limits.hit(key, now)
        except STORE_ERRORS as exc:
            if now - self._store_error_logged_at >= _STORE_ERROR_LOG_INTERVAL_S:
                self._store_error_logged_at = now
                log.error("rate-limiting: cannot count on this node: %s", exc)
            if not self.fault_tolerant:
                ctx.exit(500, UNEXPECTED)
            return None

    def _answer(self, ctx: RequestContext, outcome: Outcome, now: float, key: bytes) -> None:
        before, stop, detail = outcome
        if self.hide_headers:
            if stop >= 0:
                ctx.exit(self.error_code, self.error_body)
            return
        items, reset = self._header_items(outcome, now, key)
        if stop >= 0:
            headers = {items[i].decode(): items[i + 1].decode() for i in range(0, len(items), 2)}
            headers["Retry-After"] = reset.decode()
            ctx.exit(self.error_code, self.error_body, headers)
            return
        ctx.plugin_state(self, list).extend(items)

    def _header_items(self, outcome: Outcome, now: float, key: bytes) -> tuple[list, bytes]:
        """The rate-limit headers of an outcome, as [name, value, ...] bytes,
        and the Reset value (which Retry-After repeats on a refusal)."""
        before, stop, detail = outcome
        # PERF: the headers are built as the bytes header_filter sends, with
        # names and limits encoded once per config.
        items = list(self.limit_items)
        names = self.remaining_names
        chosen = least = index = 0
        for quota in before:
            # Kong: the request's own hit shows in the period that refused it
            # (or in all of them when it passes); never below 0.
            if stop < 0 or index == stop:
                quota -= 1
            remaining = int(quota) if quota > 0 else 0
            items.append(names[index])
            items.append(b"%d" % remaining)
            # Periods come shortest first, so "<=" prefers the longer on a tie.
            if index == 0 or remaining <= least:
                chosen = index
                least = remaining
            index += 1
        reset = b"%d" % self.limits.reset_after(chosen, now, key, detail)
        items += (b"RateLimit-Limit", self.limit_values[chosen],
                  b"RateLimit-Remaining", b"%d" % least, b"RateLimit-Reset", reset)
        return items, reset

    def _header_lines(self, outcome: Outcome, now: float, key: bytes) -> tuple[bytes, bytes]:
        """``_header_items`` as the header lines of a response head, in the
        same order (PERF: one formatting step, no list of pairs)."""
        before, stop, detail = outcome
        remaining_lines = []
        chosen = least = index = 0
        names = self.remaining_names
        for quota in before:
            if stop < 0 or index == stop:
                quota -= 1
            remaining = int(quota) if quota > 0 else 0
            remaining_lines.append(b"%s: %d\r\n" % (names[index], remaining))
            if index == 0 or remaining <= least:
                chosen = index
                least = remaining
            index += 1
        reset = b"%d" % self.limits.reset_after(chosen, now, key, detail)
        return (b"%s%sRateLimit-Limit: %s\r\nRateLimit-Remaining: %d\r\nRateLimit-Reset: %s\r\n"
                % (self.limit_lines, b"".join(remaining_lines), self.limit_values[chosen], least,
                   reset), reset)

    # -- the compiled core's fast path -------------------------------------------

    def fast_decision(self, route, service) -> FastDecision | None:
        """With this node's counters, the whole plugin runs as one call from
        the core, without a request context (PERF: a few us instead of the
        runner's ~10). The identifier follows ``identify``: the consumer or
        credential a decision before it established, else the client IP."""
        if self.redis is not None:
            return None
        limit_by = self.config["limit_by"]
        fixed = None
        if limit_by == "service" and service is not None:
            fixed = (service.id or service.name).encode()
        header = self.config["header_name"].lower().encode() \
            if limit_by == "header" and self.config["header_name"] else None
        path = self.config["path"].encode() if limit_by == "path" and self.config["path"] \
            else None
        by_consumer = limit_by == "consumer"
        by_credential = by_consumer or limit_by == "credential"
        node_key = self.node_key
        # PERF: one fixed window (the usual config) is counted inline.
        single = self.limits.windows[0] if isinstance(self.limits, FixedLimits) \
            and len(self.limits.windows) == 1 else None
        single_limit = self.limits.limits[0] if single is not None else 0
        remaining_name = self.remaining_names[0]
        limit_value = self.limit_values[0]
        refusal_body = orjson.dumps(self.error_body)
        error_code = self.error_code

        def decide(request: FastRequest) -> Any:
            peer_ip = request.peer_ip
            if fixed is not None:
                identifier = fixed
            elif header is not None:
                identifier = peer_ip
                headers = request.headers
                for i in range(0, len(headers), 2):
                    if headers[i].lower() == header:
                        identifier = headers[i + 1]
                        break
            elif path is not None:
                identifier = path if request.url.partition(b"?")[0] == path else peer_ip
            elif by_credential and request.credential is not None:
                # As _consumer and _credential.
                consumer = request.consumer
                if by_consumer and consumer is not None and consumer.id:
                    identifier = consumer.id.encode()
                else:
                    found = request.credential.get("id") or request.credential_identifier
                    identifier = found.encode() if found else peer_ip
            else:
                identifier = peer_ip
            now = self.clock()
            key = node_key + identifier
            try:
                if single is not None and not self.hide_headers:
                    # As FixedLimits.hit and _header_lines for one period.
                    quota = single_limit - single.hit(key, now) + 1
                    if quota > 0:
                        left = quota - 1
                        reset = self.limits.reset_after(0, now, key, None)
                        request.lines += (
                            b"%s%s: %d\r\nRateLimit-Limit: %s\r\nRateLimit-Remaining: %d\r\n"
                            b"RateLimit-Reset: %d\r\n" % (
                                self.limit_lines, remaining_name, left, limit_value,
                                left, reset))
                        return True
                    single.hit(key, now, -1)
                    outcome = ([quota], 0, None)
                else:
                    outcome = self.limits.hit(key, now)
            except STORE_ERRORS as exc:
                if now - self._store_error_logged_at >= _STORE_ERROR_LOG_INTERVAL_S:
                    self._store_error_logged_at = now
                    log.error("rate-limiting: cannot count on this node: %s", exc)
                if self.fault_tolerant:
                    return True  # the request passes uncounted, as in access
                return FastAnswer(500, list(JSON_CONTENT_TYPE), orjson.dumps(UNEXPECTED))
            stop = outcome[1]
            if self.hide_headers:
                if stop < 0:
                    return True
                return FastAnswer(error_code, list(JSON_CONTENT_TYPE), refusal_body)
            if stop >= 0:
                # The headers in the order of the runner's exit (see _answer).
                items, retry_after = self._header_items(outcome, now, key)
                items += (b"Retry-After", retry_after, *JSON_CONTENT_TYPE)
                return FastAnswer(error_code, items, refusal_body)
            request.lines += self._header_lines(outcome, now, key)[0]
            return True

        if single is not None and not self.hide_headers and fixed is None and header is None \
                and path is None:
            # PERF: the usual config, decided in compiled code; refusals and
            # store errors still go through ``decide``.
            by = WindowQuota.BY_CONSUMER if by_consumer else \
                WindowQuota.BY_CREDENTIAL if by_credential else WindowQuota.BY_IP
            quota = WindowQuota(single, single_limit, node_key, by,
                                self.limit_lines + remaining_name + b": ", limit_value,
                                self.limits.reset_after, self, decide)
            return FastDecision(quota, covers_response=True,
                                drop_response_headers=self.header_keys)
        # Its header phase only adds the lines a decision puts in request.lines.
        return FastDecision(decide, covers_response=True,
                            drop_response_headers=self.header_keys)

    def header_filter(self, ctx: RequestContext) -> None:
        pending = ctx.plugin_state(self, list)
        if not pending or ctx.response is None:
            return
        items = ctx.response.headers.items
        keys = self.header_keys
        # The gateway's numbers replace any the upstream sent.
        for i in range(0, len(items), 2):
            if items[i].lower() in keys:
                items[:] = [x for j in range(0, len(items), 2) if items[j].lower() not in keys
                            for x in (items[j], items[j + 1])]
                break
        items += pending


HANDLER = RateLimitingHandler
