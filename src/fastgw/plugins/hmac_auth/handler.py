"""hmac-auth: the consumer is whoever signed the request with the secret of
one of its ``hmacauth_credentials``, as Kong's plugin checks it.

A signed request carries, in ``Proxy-Authorization`` or else
``Authorization``::

    hmac username="alice", algorithm="hmac-sha256", headers="date @request-target",
         signature="<base64 of the HMAC>"

The signed string is one line per listed header, ``name: value``, joined by
newlines; ``@request-target`` stands for the lower-case method and the request
target as sent, ``request-line`` for the whole request line, and a header the
request lacks is signed as ``name:``. The request's ``X-Date`` (else ``Date``)
must be within ``clock_skew`` seconds of the gateway's clock, which bounds how
long a captured request can be replayed. With ``validate_request_body``, the
body must match its ``Digest: SHA-256=<base64>`` header.

Every failure answers 401 with Kong's messages and a ``WWW-Authenticate:
hmac`` challenge (with the realm when one is configured). Signatures are
compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Awaitable
from email.utils import mktime_tz, parsedate_tz
from typing import Any

from fastgw.config.model import Consumer
from fastgw.plugins.context import RequestContext
from fastgw.plugins.credentials import CredentialPlugin, challenge
from fastgw.plugins.state import ConfigState

UNAUTHORIZED = {"message": "Unauthorized"}
NO_DATE = {"message": "HMAC signature cannot be verified, a valid date or x-date header is "
                      "required for HMAC Authentication"}
NOT_VALID = {"message": "HMAC signature cannot be verified"}
NOT_SAME = {"message": "HMAC signature does not match"}

DIGESTS = {"hmac-sha1": hashlib.sha1, "hmac-sha256": hashlib.sha256,
           "hmac-sha384": hashlib.sha384, "hmac-sha512": hashlib.sha512}

# Kong's pattern, greedy groups included (the last quote of each wins).
_PARAMETERS = re.compile(r'\s*[Hh]mac\s*username="(.+)",\s*algorithm="(.+)",\s*header'
                         r's="(.+)",\s*signature="(.+)"')


class Signature:
    """The parameters of one signed request."""

    __slots__ = ("username", "algorithm", "headers", "signature")

    def __init__(self, match: re.Match[str]) -> None:
        self.username, self.algorithm, headers, self.signature = match.groups()
        self.headers = headers.split(" ")


def parse_signature(value: str | None) -> Signature | None:
    match = _PARAMETERS.search(value) if value else None
    return Signature(match) if match is not None else None


def signing_string(ctx: RequestContext, headers: list[str]) -> str:
    request = ctx.request
    target = request.raw_path + (f"?{request.raw_query}" if request.raw_query else "")
    lines = []
    for name in headers:
        value = request.headers.get_as_kong(name)
        if value is not None:
            lines.append(f"{name}: {value}")
        elif name == "@request-target":
            lines.append(f"{name}: {request.method.lower()} {target}")
        elif name == "request-line":
            lines.append(f"{request.method} {target} HTTP/{request.http_version}")
        else:
            lines.append(f"{name}:")
    return "\n".join(lines)


def _within_skew(value: str | None, skew: float) -> bool:
    if value is None:
        return False
    parsed = parsedate_tz(value)
    if parsed is None:
        return False
    try:
        sent = mktime_tz(parsed)
    except (OverflowError, ValueError):
        return False
    return abs(time.time() - sent) <= skew


def body_digest(body: bytes) -> str:
    """The Digest header value of a body: ``SHA-256=`` and its base64 hash."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


class HmacAuth(CredentialPlugin):
    name = "hmac-auth"
    PRIORITY = 1030

    __slots__ = ("hide_credentials", "clock_skew", "validate_body", "enforce_headers",
                 "algorithms", "www_authenticate")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.hide_credentials: bool = config["hide_credentials"]
        self.clock_skew: float = config["clock_skew"]
        self.validate_body: bool = config["validate_request_body"]
        self.enforce_headers = tuple(config["enforce_headers"])
        self.algorithms = frozenset(config["algorithms"])
        self.www_authenticate = challenge("hmac", config["realm"])

    def access(self, ctx: RequestContext) -> Awaitable[None] | None:
        if self.skips(ctx):
            return None
        found = self._verify_signature(ctx)
        if found is None:
            return None
        if self.validate_body:
            return self._verify_body(ctx, *found)
        self._identify(ctx, *found)
        return None

    def _fail(self, ctx: RequestContext, body: dict[str, str]) -> None:
        self.reject(ctx, 401, body, self.www_authenticate)

    def _verify_signature(self, ctx: RequestContext) -> tuple[Consumer, dict] | None:
        """The signer, or None when the request was answered (or let through
        as the anonymous consumer)."""
        headers = ctx.request.headers
        authorization = headers.get("authorization")
        proxy_authorization = headers.get("proxy-authorization")
        if authorization is None and proxy_authorization is None:
            self._fail(ctx, UNAUTHORIZED)
            return None
        if not (_within_skew(headers.get_as_kong("x-date"), self.clock_skew)
                or _within_skew(headers.get_as_kong("date"), self.clock_skew)):
            self._fail(ctx, NO_DATE)
            return None
        signature = parse_signature(proxy_authorization)
        if signature is None:
            signature = parse_signature(authorization)
            if self.hide_credentials:
                headers.remove("authorization")
        elif self.hide_credentials:
            headers.remove("proxy-authorization")
        if (signature is None or signature.algorithm not in self.algorithms
                or any(name not in signature.headers for name in self.enforce_headers)):
            self._fail(ctx, NOT_VALID)
            return None
        found = self.state.hmacauth.get(signature.username)
        if found is None:
            self._fail(ctx, NOT_VALID)
            return None
        consumer, credential = found
        expected = hmac.new(credential["secret"].encode(),
                            signing_string(ctx, signature.headers).encode("latin-1", "replace"),
                            DIGESTS[signature.algorithm]).digest()
        try:
            sent = base64.b64decode(signature.signature, validate=True)
        except (binascii.Error, ValueError):
            sent = b""
        if not hmac.compare_digest(expected, sent):
            self._fail(ctx, NOT_SAME)
            return None
        return consumer, credential

    async def _verify_body(self, ctx: RequestContext, consumer: Consumer,
                           credential: dict) -> None:
        body = await ctx.read_body()
        digest = ctx.request.headers.get("digest")
        if not (hmac.compare_digest(body_digest(body).encode(), digest.encode("latin-1"))
                if digest is not None else not body):
            self._fail(ctx, NOT_SAME)
            return
        self._identify(ctx, consumer, credential)

    @staticmethod
    def _identify(ctx: RequestContext, consumer: Consumer, credential: dict) -> None:
        ctx.authenticate(consumer, credential, credential["username"])


HANDLER = HmacAuth
