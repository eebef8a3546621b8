"""key-auth: the consumer is whoever owns the API key the request carries.

For each name of ``key_names`` in turn, the key is looked for in the headers,
then the query string, then (``key_in_body``) the body; the first name found
wins. A name sent twice is refused rather than guessed at. Failures answer
401 with Kong 3.x's messages and a ``WWW-Authenticate: Key`` challenge.

The hot path (key in a header, no body) is synchronous and costs a header
scan and one dict lookup. Only when the body must be read does ``access``
return a coroutine for the runner to await.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable
from typing import Any

from fastgw._core.decisions import HeaderKeyDecision, header_variable
from fastgw.config.model import Consumer
from fastgw.plugins.context import (
    IDENTITY_KEYS,
    HeaderList,
    RequestContext,
    set_identity_headers,
)
from fastgw.plugins.credentials import (
    DUPLICATE,
    CredentialPlugin,
    RequestBody,
    challenge,
    single,
)
from fastgw.plugins.fast import FastDecision, FastRequest
from fastgw.plugins.state import ConfigState

NO_KEY = {"message": "No API key found in request"}
DUPLICATE_KEY = {"message": "Duplicate API key found"}
INVALID_KEY = {"message": "Unauthorized"}

# Markers returned by KeyAuth._search besides a key.
_NEED_BODY: Any = object()  # the body must be read to go on

# Credentials written without an id get one derived from their owner and
# position, so X-Credential-Identifier is stable across workers and reloads.
_CREDENTIAL_NAMESPACE = uuid.UUID("0e7c3a52-4d1b-4f7e-8a9c-2b6d5f1e3a70")

Credential = tuple[Consumer, dict[str, Any], str]


class KeyTable:
    """key -> (consumer, credential, credential identifier), built once per
    config version and shared by every key-auth instance; ``expiries`` holds
    the deadline (Unix time) of the keys with a ``ttl``: created_at + ttl, or
    from when this config version was loaded when the key has no created_at."""

    __slots__ = ("credentials", "expiries", "lasting")

    def __init__(self, state: ConfigState) -> None:
        self.credentials: dict[str, Credential] = {}
        self.expiries: dict[str, float] = {}
        loaded_at = time.time()
        for consumer in state.consumers:
            for position, credential in enumerate(consumer.keyauth_credentials):
                identifier = credential.get("id") or str(
                    uuid.uuid5(_CREDENTIAL_NAMESPACE, f"{consumer.id}/{position}"))
                key = credential["key"]
                self.credentials[key] = (consumer, credential, identifier)
                if credential.get("ttl"):
                    self.expiries[key] = (credential.get("created_at") or loaded_at) \
                        + credential["ttl"]
        # The keys the compiled fast path may remember: those that never expire.
        self.lasting = {key: found for key, found in self.credentials.items()
                        if key not in self.expiries}

    def get(self, key: str) -> Credential | None:
        found = self.credentials.get(key)
        if found is not None and key in self.expiries and time.time() >= self.expiries[key]:
            return None
        return found


def credentials_by_key(state: ConfigState) -> KeyTable:
    table = state.shared.get("key-auth")
    if table is None:
        table = state.shared["key-auth"] = KeyTable(state)
    return table


def _header_value(items: list[bytes], variable: bytes, sent: list[bytes] | None = None) -> Any:
    """The one value of the header whose ``header_variable`` form is
    ``variable``, ``DUPLICATE``, or None; the lower-case names it was sent
    under are added to ``sent``. PERF: scans the raw list; HeaderList.get
    would also re-encode the name and could not tell a repeated header."""
    found = None
    for i in range(0, len(items), 2):
        if header_variable(items[i]) == variable:
            if sent is not None:
                sent.append(items[i].lower())
            if found is not None:
                return DUPLICATE
            found = items[i + 1]
    return None if found is None else found.decode("latin-1")


def _spellings(name: str) -> frozenset[bytes]:
    """The lower-case header names a key name is usually sent as: as
    written, and with its separators all ``-`` or all ``_``."""
    lowered = name.lower().encode("latin-1")
    return frozenset((lowered, lowered.replace(b"_", b"-"), lowered.replace(b"-", b"_")))


class KeyAuth(CredentialPlugin):
    name = "key-auth"
    PRIORITY = 1250

    __slots__ = ("lookups", "in_header", "in_query", "in_body", "hide_credentials",
                 "www_authenticate", "credentials", "credential_headers", "credential_fields")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        # (name as written, the header's nginx variable form)
        self.lookups = tuple((name, header_variable(name.encode("latin-1")))
                             for name in config["key_names"])
        self.in_header = config["key_in_header"]
        self.in_query = config["key_in_query"]
        self.in_body = config["key_in_body"]
        self.hide_credentials = config["hide_credentials"]
        self.www_authenticate = challenge("Key", config["realm"])
        self.credentials = credentials_by_key(state)
        self.credential_headers = frozenset().union(
            *(_spellings(name) for name in config["key_names"])) \
            if self.in_header else frozenset()
        self.credential_fields = frozenset(config["key_names"]) if self.in_body else frozenset()

    def fast_decision(self, route, service) -> FastDecision | None:
        return _fast_decision(self)

    def access(self, ctx: RequestContext) -> Awaitable[None] | None:
        ctx.note_credentials(self.credential_headers, self.credential_fields)
        if self.skips(ctx):
            return None
        name, key = self._search(ctx, None)
        # A found key must also be stripped from the body when it is hidden.
        if key is _NEED_BODY or (self.in_body and self.hide_credentials and type(key) is str):
            return self._access_with_body(ctx)
        self._identify(ctx, name, key, None)
        return None

    async def _access_with_body(self, ctx: RequestContext) -> None:
        raw = await ctx.read_body()
        body = RequestBody(ctx.request.headers.get("content-type"), raw)
        name, key = self._search(ctx, body)
        self._identify(ctx, name, key, body)

    def _search(self, ctx: RequestContext, body: RequestBody | None) -> tuple[str | None, Any]:
        """(name, key) of the first name found; key may be ``DUPLICATE``, or
        ``_NEED_BODY`` when ``body`` is None and must be read."""
        request = ctx.request
        items = request.headers.items
        sent: list[bytes] = []
        for name, header_name in self.lookups:
            key = _header_value(items, header_name, sent) if self.in_header else None
            if sent:
                # Any spelling of the name is a credential not to pass on.
                ctx.note_credentials(frozenset(sent))
            if key is None and self.in_query and request.query_string:
                key = single(request.query().get(name))
            if key is None and self.in_body:
                if body is None:
                    return name, _NEED_BODY
                key = body.value(name)
            if key is not None:
                return name, key
        return None, None

    def _identify(self, ctx: RequestContext, name: str | None, key: Any,
                  body: RequestBody | None) -> None:
        if key is DUPLICATE:
            self.reject(ctx, 401, DUPLICATE_KEY, self.www_authenticate)
            return
        # A key always comes with the name it was found under.
        if key is not None and name is not None and self.hide_credentials:
            _hide(ctx, name, body)
        if not key:
            self.reject(ctx, 401, NO_KEY, self.www_authenticate)
            return
        found = self.credentials.get(key)
        if found is None:
            self.reject(ctx, 401, INVALID_KEY, self.www_authenticate)
            return
        consumer, credential, identifier = found
        ctx.authenticate(consumer, credential, identifier)


def _fast_decision(plugin: KeyAuth) -> FastDecision | None:
    """The common case decided from the core, without a request context: a
    known key in a header (PERF: one call instead of the runner). Anything
    else (no key, a key in the query, a bad or repeated key, preflight,
    anonymous fallbacks) needs the plugin's access phase."""
    if not plugin.in_header or plugin.in_body or plugin.hide_credentials:
        return None
    names = tuple(header_name for _, header_name in plugin.lookups)
    # A key that expires is left to the access phase, which checks its deadline.
    credentials = plugin.credentials.lasting
    in_query = plugin.in_query
    credential_headers = plugin.credential_headers

    def decide(request: FastRequest) -> bool | None:
        if request.method == b"OPTIONS":
            return None
        request.note_credentials(credential_headers)
        headers = request.headers
        key = None
        sent: list[bytes] = []
        for header_name in names:
            key = _header_value(headers, header_name, sent)
            if sent:
                request.note_credentials(frozenset(sent))
            if key is not None:
                break
            if in_query and b"?" in request.url:
                return None
        if not key or key is DUPLICATE:
            return None
        found = credentials.get(key)
        if found is None:
            return None
        consumer, credential, identifier = found
        set_identity_headers(HeaderList(headers), consumer, identifier, False)
        request.authenticate(consumer, credential, identifier)
        return True

    if len(names) != 1:
        # key-auth has no phase but access: a decided request needs nothing more.
        return FastDecision(decide, covers_response=True)

    # PERF: the usual config, one key name, decided in compiled code.
    def identity_items(consumer: Consumer, identifier: str | None) -> list[bytes]:
        scratch = HeaderList([])
        set_identity_headers(scratch, consumer, identifier, False)
        return scratch.items

    def remove_identity(headers: list[bytes]) -> None:
        HeaderList(headers).remove_all(IDENTITY_KEYS)

    return FastDecision(HeaderKeyDecision(names[0], credentials, credential_headers,
                                          IDENTITY_KEYS, identity_items, remove_identity),
                        covers_response=True)


def _hide(ctx: RequestContext, name: str, body: RequestBody | None) -> None:
    """Remove ``name`` wherever the client may have put it (as Kong: from the
    headers and the query whatever the key came from, and from the body)."""
    request = ctx.request
    request.headers.remove_as_kong(name)
    if request.query_string:
        query = request.query()
        if name in query:
            request.set_query({field: values for field, values in query.items()
                               if field != name})
    if body is not None:
        stripped = body.without(name)
        if stripped is not None:
            request.set_body(stripped)


HANDLER = KeyAuth
