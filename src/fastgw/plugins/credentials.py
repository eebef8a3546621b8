"""What the credential plugins (key-auth, basic-auth, jwt) share, after Kong:

* ``run_on_preflight: false`` lets CORS preflights (``OPTIONS``) through;
* ``anonymous`` names a consumer to fall back on when the credential is
  missing or wrong, instead of answering 401;
* with ``anonymous`` set, a plugin does nothing when an earlier plugin already
  identified the caller with a real credential. Several auth plugins with
  ``anonymous`` therefore accept a request when any one of them does (Kong's
  "logical OR"); without it, every one of them must succeed ("logical AND").

Also the request body as fields a credential can be read from (key-auth,
openid-connect).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode

import orjson

from fastgw.config.model import Consumer
from fastgw.config.schema import String
from fastgw.plugins.base import Plugin, PluginError
from fastgw.plugins.context import RequestContext
from fastgw.plugins.state import ConfigState

# A realm is written inside a quoted-string of WWW-Authenticate (RFC 9110
# section 11.6.1), so quotes, backslashes and control characters cannot appear.
_REALM = r'^[^"\\\x00-\x1f\x7f]+$'


DUPLICATE: Any = object()  # a credential's name was sent more than once


def single(values: list[str] | None) -> Any:
    """The one value sent, ``DUPLICATE`` when several were, or None."""
    if not values:
        return None
    return values[0] if len(values) == 1 else DUPLICATE


class RequestBody:
    """A JSON-object or form-urlencoded body, as fields a key can be read from
    and removed from; any other body has no fields."""

    __slots__ = ("kind", "fields")

    def __init__(self, content_type: str | None, raw: bytes) -> None:
        media_type = (content_type or "").partition(";")[0].strip().lower()
        self.kind = ""
        self.fields: dict[str, Any] = {}
        if media_type == "application/json" or media_type.endswith("+json"):
            try:
                document = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return
            if isinstance(document, dict):
                self.kind, self.fields = "json", document
        elif media_type == "application/x-www-form-urlencoded":
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                return
            self.kind = "form"
            self.fields = parse_qs(text, keep_blank_values=True)

    def value(self, name: str) -> Any:
        """The key under ``name``: a str, ``DUPLICATE``, or None."""
        value = self.fields.get(name)
        if self.kind == "form":
            return single(value)
        if isinstance(value, str):
            return value
        # As Kong: an array or object where the key should be counts as several keys.
        return DUPLICATE if isinstance(value, (list, dict)) else None

    def without(self, name: str) -> bytes | None:
        """The body re-encoded without ``name``; None when it had no such field."""
        if name not in self.fields:
            return None
        remaining = {field: value for field, value in self.fields.items() if field != name}
        if self.kind == "json":
            return orjson.dumps(remaining)
        return urlencode(remaining, doseq=True).encode()


def anonymous_field() -> String:
    return String(
        description="Username or id of the consumer to use when authentication fails; "
        "unset: the request fails with 401.",
    )


def realm_field(**options: Any) -> String:
    return String(
        match=_REALM,
        match_message="invalid realm '{value}': quotes, backslashes and control "
        "characters are not allowed",
        description="The realm sent in the WWW-Authenticate header of a 401 answer.",
        **options,
    )


def challenge(scheme: str, realm: str | None) -> str:
    """A WWW-Authenticate value: the scheme, with the realm when there is one."""
    return f'{scheme} realm="{realm}"' if realm else scheme


def find_anonymous(state: ConfigState, ref: str | None) -> Consumer | None:
    """The consumer an ``anonymous`` setting names, by username or id (Kong
    does not accept a custom_id there)."""
    consumer = state.consumer(ref)
    if consumer is not None and ref in (consumer.username, consumer.id):
        return consumer
    return None


class CredentialPlugin(Plugin):
    """Base of the plugins that identify a consumer from a credential."""

    __slots__ = ("anonymous_ref", "anonymous_consumer", "skip_preflight")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.anonymous_ref: str | None = config.get("anonymous")
        self.anonymous_consumer = find_anonymous(state, self.anonymous_ref)
        # basic-auth has no run_on_preflight and always runs.
        self.skip_preflight = not config.get("run_on_preflight", True)

    def skips(self, ctx: RequestContext) -> bool:
        """Whether this plugin leaves the request alone (see the module doc)."""
        if self.skip_preflight and ctx.request.method == "OPTIONS":
            return True
        return self.anonymous_ref is not None and ctx.credential is not None

    def reject(self, ctx: RequestContext, status: int, body: dict[str, Any],
               www_authenticate: str | None = None) -> None:
        """Authentication failed: continue as the anonymous consumer when one
        is configured, else answer ``status`` with ``body``."""
        if self.anonymous_ref is None:
            headers = {"WWW-Authenticate": www_authenticate} if www_authenticate else None
            ctx.exit(status, body, headers)
            return
        consumer = self.anonymous_consumer
        if consumer is None:
            # Kong fails the request (500) rather than let it through unidentified.
            raise PluginError(
                f"{self.name}: anonymous consumer '{self.anonymous_ref}' is configured "
                "but doesn't exist"
            )
        ctx.authenticate(consumer, None, anonymous=True)
