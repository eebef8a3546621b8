"""openid-connect: the caller is who its bearer token says, as vouched for
by the configured OpenID provider.

A token is looked for in the Authorization (``Bearer``), ``access-token`` and
``x-access-token`` headers, the ``access_token`` query argument and the
``access_token`` body field, as ``bearer_token_param_type`` allows. A JWT is
checked locally against the provider's keys (``bearer``); any token can be
introspected (``introspection``). Then the consumer named by
``consumer_claim`` runs its own plugins, the groups of
``authenticated_groups_claim`` feed the acl plugin, and claims go upstream as
headers.

Answers (RFC 6750, Kong's wording): no token or a bad one, 401
``Unauthorized`` with ``WWW-Authenticate: Bearer`` (``error="invalid_token"``
for a bad one); missing scopes, 403 ``Forbidden`` with
``error="insufficient_scope"``; a consumer that cannot be found, 403; a
provider that cannot be reached and nothing cached, 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

import orjson

from fastgw.config.model import Consumer
from fastgw.identity.errors import ProviderUnavailable, TokenRefused
from fastgw.identity.introspection import Introspector
from fastgw.identity.provider import provider
from fastgw.identity.tokens import BearerVerifier, TokenPolicy, check_claims, claim, looks_like_jwt
from fastgw.plugins.context import HeaderList, RequestContext, set_identity_headers
from fastgw.plugins.credentials import DUPLICATE, CredentialPlugin, RequestBody, single
from fastgw.plugins.fast import FastDecision, FastRequest
from fastgw.plugins.state import ConfigState

log = logging.getLogger("fastgw.plugins.openid_connect")

_TOKEN_HEADERS = (b"authorization", b"access-token", b"x-access-token")
_TOKEN_HEADER_LENGTHS = frozenset(len(name) for name in _TOKEN_HEADERS)
_MAX_DECIDED = 10000
_TOKEN_FIELD = "access_token"
# Where clients put tokens meant for the gateway: never forwarded to a provider.
_NOTED_HEADERS = frozenset(_TOKEN_HEADERS)
_NOTED_FIELDS = frozenset((_TOKEN_FIELD,))
UNAUTHORIZED = {"message": "Unauthorized"}
FORBIDDEN = {"message": "Forbidden"}
UNAVAILABLE = {"message": "The identity provider is unavailable"}


def _header_token(items: list[bytes]) -> Any:
    """The token of the token headers: a str, DUPLICATE, or None."""
    found = None
    for i in range(0, len(items), 2):
        name = items[i].lower()
        if name not in _TOKEN_HEADERS:
            continue
        value = items[i + 1].decode("latin-1").strip()
        if name == b"authorization":
            scheme, _, value = value.partition(" ")
            if scheme.lower() != "bearer":
                continue
            value = value.strip()
        if found is not None and value != found:
            return DUPLICATE
        found = value
    return found


class OpenIDConnect(CredentialPlugin):
    name = "openid-connect"
    PRIORITY = 1050

    __slots__ = ("provider", "policy", "bearer", "introspection", "introspector",
                 "in_header", "in_query", "in_body", "consumer_claim", "consumer_index",
                 "consumer_optional", "groups_claim", "consumer_groups_claim", "claim_headers",
                 "decided", "hide_token")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        timeout = config["timeout"] / 1000
        self.provider = provider(config["issuer"], tuple(config["extra_jwks_uris"] or ()),
                                 config["ssl_verify"], timeout, config["rediscovery_lifetime"])
        self.policy = TokenPolicy(
            issuers_allowed=tuple(config["issuers_allowed"] or ()),
            audience_required=tuple(config["audience_required"] or ()),
            audience_claim=tuple(config["audience_claim"]),
            scopes_required=tuple(config["scopes_required"] or ()),
            scopes_claim=tuple(config["scopes_claim"]),
            leeway=config["leeway"], verify_claims=config["verify_claims"],
            verify_signature=config["verify_signature"])
        methods = config["auth_methods"]
        self.bearer = BearerVerifier(self.provider, self.policy, config["cache_ttl"]) \
            if "bearer" in methods else None
        self.introspection = config if "introspection" in methods else None
        self.introspector: Introspector | None = None
        places = config["bearer_token_param_type"]
        self.in_header, self.in_query, self.in_body = (
            "header" in places, "query" in places, "body" in places)
        self.consumer_claim = tuple(config["consumer_claim"] or ())
        # Consumers by each field the claim may match, in consumer_by's order.
        self.consumer_index = [(field, {getattr(c, field): c for c in state.consumers
                                        if getattr(c, field)})
                               for field in config["consumer_by"]]
        self.consumer_optional = config["consumer_optional"]
        self.groups_claim = tuple(config["authenticated_groups_claim"] or ())
        self.consumer_groups_claim = tuple(config["consumer_groups_claim"] or ())
        self.claim_headers = list(zip(config["upstream_headers_claims"] or (),
                                      config["upstream_headers_names"] or (), strict=True))
        # Authorization header values (as sent) of checked bearer tokens, for
        # the fast decision: value -> (until, signer, consumer, credential,
        # identifier, claim header values).
        self.decided: dict[bytes, tuple] = {}
        # The token stays off the upstream request (ai-mcp-oauth2 without
        # passthrough_credentials); openid-connect passes it on, as Kong's.
        self.hide_token = False
        # Discovery and keys are fetched at start when a loop runs (a worker).
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.create_task(self.provider.ready())

    @property
    def claims_groups(self) -> bool:
        """Whether requests may claim consumer groups (see chain.GroupChains)."""
        return bool(self.consumer_groups_claim)

    def access(self, ctx: RequestContext) -> Awaitable[None] | None:
        ctx.note_credentials(_NOTED_HEADERS if self.in_header else frozenset(),
                             _NOTED_FIELDS if self.in_body else frozenset())
        if self.skips(ctx):
            return None
        # PERF: a bearer JWT in a header whose keys are known is decided here,
        # without a task (a checked token is a cache lookup).
        if self.in_header and self.bearer is not None:
            token = _header_token(ctx.request.headers.items)
            if type(token) is str and looks_like_jwt(token):
                try:
                    claims = self.bearer.check_now(token)
                except TokenRefused as refused:
                    self._refuse(ctx, refused)
                    return None
                if claims is not None:
                    self._identify(ctx, claims, token)
                    return None
        return self._access(ctx)

    async def _access(self, ctx: RequestContext) -> None:
        token = await self._find_token(ctx)
        if token is DUPLICATE:
            self.reject(ctx, 400, {"message": "Multiple tokens provided"},
                        self.challenge("invalid_request"))
            return
        if not token:
            self.reject(ctx, 401, UNAUTHORIZED, self.challenge(None))
            return
        try:
            claims = await self._verify(token)
        except TokenRefused as refused:
            self._refuse(ctx, refused)
            return
        except ProviderUnavailable as exc:
            log.warning("openid-connect: %s", exc)
            self.reject(ctx, 503, UNAVAILABLE)
            return
        self._identify(ctx, claims, token if self.bearer is not None and looks_like_jwt(token)
                       else None)

    def _refuse(self, ctx: RequestContext, refused: TokenRefused) -> None:
        log.info("openid-connect: token refused: %s", refused)
        body = UNAUTHORIZED if refused.status == 401 else FORBIDDEN
        self.reject(ctx, refused.status, body, self.challenge(refused.error))

    def challenge(self, error: str | None) -> str:
        """The WWW-Authenticate value of a refusal (RFC 6750)."""
        return f'Bearer error="{error}"' if error else "Bearer"

    async def _find_token(self, ctx: RequestContext) -> Any:
        request = ctx.request
        token = _header_token(request.headers.items) if self.in_header else None
        if token is None and self.in_query and request.query_string:
            token = single(request.query().get(_TOKEN_FIELD))
        if token is None and self.in_body and request.method not in ("GET", "HEAD"):
            body = RequestBody(request.headers.get("content-type"), await ctx.read_body())
            token = body.value(_TOKEN_FIELD)
        return token

    async def _verify(self, token: str) -> dict[str, Any]:
        if self.bearer is not None and looks_like_jwt(token):
            return await self.bearer.verify(token)
        if self.introspection is None:
            raise TokenRefused("not a JWT, and introspection is not enabled")
        introspector = self.introspector or await self._introspector()
        answer = await introspector.introspect(token)
        # RFC 7662 makes iss optional in an answer: it is checked when present.
        check_claims(answer, self.policy, self.provider.issuer, time.time(),
                     issuer_required=False)
        return answer

    async def _introspector(self) -> Introspector:
        config = self.introspection
        assert config is not None
        endpoint = config["introspection_endpoint"]
        if endpoint is None:
            await self.provider.ready()
            endpoint = self.provider.introspection_endpoint
            if endpoint is None:
                raise ProviderUnavailable("no introspection endpoint (set "
                                          "introspection_endpoint, or the provider's "
                                          "discovery must name one)")
        self.introspector = Introspector(
            endpoint, (config["client_id"] or [None])[0], (config["client_secret"] or [None])[0],
            (config["client_auth"] or ["client_secret_basic"])[0],
            config["introspection_check_active"],
            config["cache_ttl"] if config["cache_introspection"] else None,
            config["timeout"] / 1000, config["ssl_verify"])
        return self.introspector

    def _consumer(self, claims: dict[str, Any]) -> Consumer | None:
        value = claim(claims, self.consumer_claim)
        if not isinstance(value, str):
            return None
        for _, index in self.consumer_index:
            consumer = index.get(value)
            if consumer is not None:
                return consumer
        return None

    def _identify(self, ctx: RequestContext, claims: dict[str, Any],
                  token: str | None = None) -> None:
        """Record who the caller is (or refuse: no consumer); with ``token``,
        remember it for the fast decision."""
        identity = self._identity(claims)
        if identity is None:
            log.info("openid-connect: no consumer for claim %s = %r",
                     ".".join(self.consumer_claim), claim(claims, self.consumer_claim))
            self.reject(ctx, 403, FORBIDDEN)
            return
        consumer, credential, subject, values = identity
        ctx.authenticate(consumer, credential, subject)
        if self.groups_claim:
            ctx.authenticated_groups = _strings(claim(claims, self.groups_claim))
        if self.consumer_groups_claim:
            ctx.consumer_groups = tuple(_strings(claim(claims, self.consumer_groups_claim)))
        _set_claim_headers(ctx.request.headers, values)
        if self.hide_token:
            ctx.request.headers.remove_all(_NOTED_HEADERS)
        if token is not None:
            self._remember(token, identity)

    def _identity(self, claims: dict[str, Any]) -> tuple | None:
        """(consumer, credential, subject, claim header values) of checked
        claims; None when a consumer is required and none matches."""
        consumer = None
        if self.consumer_claim:
            consumer = self._consumer(claims)
            if consumer is None and not self.consumer_optional:
                return None
        subject = _subject(claims)
        # The claims ride with the credential: later plugins (ai-mcp-proxy's
        # ACLs on token claims) read them, on the fast path too.
        credential = {"id": subject, "iss": claims.get("iss"), "claims": claims}
        return consumer, credential, subject, self._claim_values(claims)

    def _claim_values(self, claims: dict[str, Any]) -> list[tuple[str, str | None]]:
        values = []
        for name, header in self.claim_headers:
            value = claims.get(name)
            values.append((header, value if value is None or isinstance(value, str)
                           else orjson.dumps(value).decode()))
        return values

    # -- the fast decision ----------------------------------------------------

    def _remember(self, token: str, identity: tuple) -> None:
        """A checked bearer token, for the fast decision (when this config
        has one): the identity ``_identify`` gave it, until it stops standing."""
        assert self.bearer is not None
        standing = self.bearer.standing(token)
        if standing is None or not self._decides_fast():
            return
        if len(self.decided) >= _MAX_DECIDED:
            self.decided.clear()
        self.decided[("Bearer " + token).encode("latin-1")] = (*standing, *identity)

    def _decides_fast(self) -> bool:
        # Groups change what runs after (acl, consumer-group plugins) and
        # anonymous depends on earlier plugins: the runner follows those.
        return (self.in_header and self.bearer is not None and not self.groups_claim
                and not self.consumer_groups_claim and self.anonymous_ref is None
                and not self.skip_preflight)

    def fast_decision(self, route: Any, service: Any) -> FastDecision | None:
        """A bearer token in the Authorization header is decided from the
        core without a request context: one this worker checked before, sent
        exactly as then, by a dict lookup; a new one, when the keys that
        signed it are known, by checking it here (PERF: the signature check
        is most of its cost; a context and the runner would add some 40 µs).
        Anything else (a refused token, keys to fetch, no consumer) goes to
        the access phase, which answers it."""
        if not self._decides_fast():
            return None
        decided = self.decided
        provider = self.provider
        hide_token = self.hide_token
        bearer = self.bearer
        assert bearer is not None

        def check(sent: bytes) -> tuple | None:
            value = sent.decode("latin-1")
            token = value[7:]
            if not value.startswith("Bearer ") or token.strip() != token or \
                    not looks_like_jwt(token):
                return None
            try:
                claims = bearer.check_now(token)
            except TokenRefused:
                return None
            identity = None if claims is None else self._identity(claims)
            if identity is None:
                return None
            self._remember(token, identity)
            return decided.get(sent)

        def decide(request: FastRequest) -> bool | None:
            request.note_credentials(_NOTED_HEADERS)
            headers = request.headers
            sent = None
            for i in range(0, len(headers), 2):
                name = headers[i]
                if len(name) in _TOKEN_HEADER_LENGTHS and name.lower() in _TOKEN_HEADERS:
                    if sent is not None or len(name) != 13:
                        return None  # several, or another header: the access phase
                    sent = headers[i + 1]
            if sent is None:
                return None
            entry = decided.get(sent)
            if entry is None or entry[0] <= time.time() or (
                    entry[1] is not None and id(entry[1]) not in provider.key_ids):
                entry = check(sent)
                if entry is None:
                    return None
            _, _, consumer, credential, subject, claim_values = entry
            view = HeaderList(headers)
            set_identity_headers(view, consumer, subject, False)
            _set_claim_headers(view, claim_values)
            if hide_token:
                view.remove_all(_NOTED_HEADERS)
            request.authenticate(consumer, credential, subject)
            return True

        return FastDecision(decide, covers_response=True)


def _subject(claims: dict[str, Any]) -> str | None:
    subject = claims.get("sub")
    return subject if isinstance(subject, str) else None


def _set_claim_headers(headers: HeaderList, values: list[tuple[str, str | None]]) -> None:
    """The configured claims as upstream headers, replacing any the client sent."""
    for header, value in values:
        if value is None:
            headers.remove(header)
        else:
            headers.set(header, value)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


HANDLER = OpenIDConnect
