"""RFC 7662 token introspection: the provider says whether an opaque (or
any) token is active and what it carries. Answers are cached by a hash of the
token for ``cache_ttl``, never past the token's own ``exp``; concurrent
requests with the same token share one call to the provider.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from fastgw.identity.errors import ProviderUnavailable, TokenRefused
from fastgw.identity.tokens import TokenCache
from fastgw.outbound import EXCHANGE_ERRORS, exchange


class Introspector:
    __slots__ = ("endpoint", "client_id", "client_secret", "client_auth", "check_active",
                 "cache", "cache_ttl", "timeout", "verify_tls", "_in_flight")

    def __init__(self, endpoint: str, client_id: str | None, client_secret: str | None,
                 client_auth: str = "client_secret_basic", check_active: bool = True,
                 cache_ttl: float | None = 3600.0, timeout: float = 10.0,
                 verify_tls: bool = True) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self.client_secret = client_secret
        self.client_auth = client_auth
        self.check_active = check_active
        self.cache = TokenCache()
        self.cache_ttl = cache_ttl  # None: answers are not cached
        self.timeout = timeout
        self.verify_tls = verify_tls
        self._in_flight: dict[bytes, asyncio.Future] = {}

    async def introspect(self, token: str) -> dict[str, Any]:
        """The provider's answer for an active token; raises ``TokenRefused``
        (inactive) or ``ProviderUnavailable``."""
        now = time.time()
        key = TokenCache.key(token)
        answer = self.cache.get(key, now)
        if answer is None:
            pending = self._in_flight.get(key)
            if pending is not None:
                answer = await asyncio.shield(pending)
            else:
                future = self._in_flight[key] = asyncio.get_running_loop().create_future()
                try:
                    answer = await self._ask(token)
                    future.set_result(answer)
                except BaseException as exc:
                    future.set_exception(exc)
                    future.exception()  # retrieved: nobody else may be waiting
                    raise
                finally:
                    del self._in_flight[key]
                self._remember(key, answer, now)
        if self.check_active and answer.get("active") is not True:
            raise TokenRefused("the token is not active (introspection)")
        return answer

    def _remember(self, key: bytes, answer: dict[str, Any], now: float) -> None:
        if self.cache_ttl is None:
            return
        until = now + self.cache_ttl
        exp = answer.get("exp")
        if isinstance(exp, (int, float)):
            until = min(until, exp)
        if until > now:
            self.cache.put(key, answer, until)

    async def _ask(self, token: str) -> dict[str, Any]:
        form = {"token": token, "token_type_hint": "access_token"}
        headers = [("Content-Type", "application/x-www-form-urlencoded"),
                   ("Accept", "application/json")]
        if self.client_id is not None:
            if self.client_auth == "client_secret_post":
                form["client_id"] = self.client_id
                if self.client_secret is not None:
                    form["client_secret"] = self.client_secret
            else:  # client_secret_basic (RFC 6749 2.3.1: each part form-encoded)
                pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret or '', safe='')}"
                headers.append(("Authorization",
                                "Basic " + base64.b64encode(pair.encode()).decode()))
        try:
            status, body = await exchange("POST", self.endpoint, headers,
                                          urlencode(form).encode(), timeout=self.timeout,
                                          verify=self.verify_tls)
        except EXCHANGE_ERRORS as exc:
            raise ProviderUnavailable(
                f"introspection at {self.endpoint}: {exc or type(exc).__name__}") from exc
        if status != 200:
            raise ProviderUnavailable(f"introspection at {self.endpoint} answered {status}")
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ProviderUnavailable("introspection answered something else than JSON") from exc
        if not isinstance(answer, dict):
            raise ProviderUnavailable("introspection answered something else than an object")
        return answer
