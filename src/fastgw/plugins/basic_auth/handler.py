"""basic-auth: the consumer is the owner of the user name and password sent
as HTTP Basic credentials (RFC 7617).

As in Kong, ``Proxy-Authorization`` is tried first and ``Authorization``
second, and every failure answers 401 ``Unauthorized`` with a
``WWW-Authenticate: Basic realm="..."`` challenge. Passwords are compared in
constant time.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from base64 import b64decode
from typing import Any

from fastgw.config.model import Consumer
from fastgw.plugins.context import HeaderList, RequestContext
from fastgw.plugins.credentials import CredentialPlugin, challenge
from fastgw.plugins.state import ConfigState

UNAUTHORIZED = {"message": "Unauthorized"}

# Kong's patterns: the scheme anywhere in the value, then user:password where
# the user name has no colon and the password may be empty.
_BASIC = re.compile(r"\s*[Bb]asic\s*(.+)")
_USER_PASSWORD = re.compile(r"([^:]+):(.*)")


def parse_basic(value: str | None) -> tuple[str, str] | None:
    """(user, password) from a Basic credentials header value, or None."""
    if value is None:
        return None
    scheme = _BASIC.search(value)
    if scheme is None:
        return None
    try:
        decoded = b64decode(scheme.group(1).strip(), validate=True).decode()
    except (binascii.Error, ValueError):  # bad base64, non-ASCII input, or not UTF-8
        return None
    parts = _USER_PASSWORD.search(decoded)
    return None if parts is None else (parts.group(1), parts.group(2))


class BasicAuth(CredentialPlugin):
    name = "basic-auth"
    PRIORITY = 1100

    __slots__ = ("hide_credentials", "www_authenticate")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.hide_credentials = config["hide_credentials"]
        self.www_authenticate = challenge("Basic", config["realm"])

    def access(self, ctx: RequestContext) -> None:
        if self.skips(ctx):
            return
        headers = ctx.request.headers
        proxy_authorization = headers.get("proxy-authorization")
        authorization = headers.get("authorization")
        if proxy_authorization is None and authorization is None:
            self.reject(ctx, 401, UNAUTHORIZED, self.www_authenticate)
            return
        found = None
        sent = self._take(headers, "proxy-authorization", proxy_authorization)
        if sent is not None:
            found = self.state.basicauth.get(sent[0])
        if found is None:
            # Only when Proxy-Authorization named nobody, as Kong does.
            sent = self._take(headers, "authorization", authorization)
            if sent is not None:
                found = self.state.basicauth.get(sent[0])
        # found is only set from credentials that were sent.
        if found is None or sent is None or not _password_matches(*found, sent[1]):
            self.reject(ctx, 401, UNAUTHORIZED, self.www_authenticate)
            return
        consumer, credential = found
        ctx.authenticate(consumer, credential, credential["username"])

    def _take(self, headers: HeaderList, name: str, value: str | None) -> tuple[str, str] | None:
        """Parse one credentials header, removing it when credentials are hidden."""
        if self.hide_credentials and value is not None:
            headers.remove(name)
        return parse_basic(value)


def _password_matches(consumer: Consumer, credential: dict[str, Any], given: str) -> bool:
    hashed = credential.get("password_sha1")
    if hashed is not None:
        # A credential from a Kong export (_transform: false): Kong's stored
        # form, the password salted with the consumer's id.
        digest = hashlib.sha1((given + str(consumer.id)).encode()).hexdigest()
        return hmac.compare_digest(digest, hashed)
    return hmac.compare_digest(credential["password"].encode(), given.encode())


HANDLER = BasicAuth
