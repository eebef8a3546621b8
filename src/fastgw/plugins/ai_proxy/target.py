"""One model a request can go to, as ai-proxy (one) and ai-proxy-advanced
(several, balanced) configure it: Kong's ``route_type``, ``auth``, ``model``
and ``logging`` records, with the translator, credential and prices they
make. Built once per config version; holds nothing per request.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastgw.ai.capabilities import ModelLimits, Needs, Unfit, target_limits, unfit
from fastgw.ai.config import ModelConfig
from fastgw.ai.errors import TranslationError
from fastgw.ai.front_doors import FrontDoor
from fastgw.ai.openai_format import ROUTE_CHAT, ROUTE_RESPONSES, translation_route
from fastgw.ai.providers import UpstreamRequest, get_translator
from fastgw.ai.providers.openai import OpenAITranslator
from fastgw.ai.usage import Usage, cost
from fastgw.plugins.ai_proxy.schema import model_config
from fastgw.plugins.context import RequestContext

NO_MODEL = "model parameter not found in request, nor in gateway configuration"
OWN_MODEL = "cannot use own model - must be: {}"

# Headers clients authenticate to the gateway with (and cookies, which may
# carry a session or a JWT): none of them is meant for the provider.
GATEWAY_CREDENTIAL_HEADERS = (
    "authorization", "proxy-authorization", "apikey", "x-api-key", "api-key",
    "x-goog-api-key", "cookie",
)  # fmt: skip
# Headers about the client's body and API, replaced by the provider request's.
CLIENT_API_HEADERS = (
    "content-length", "content-type", "accept", "accept-encoding", "host",
    "anthropic-version", "anthropic-beta",
)  # fmt: skip
# Of those, the ones a client of the provider's own API sends on (its betas).
NATIVE_API_HEADERS = frozenset(("anthropic-beta",))


class LLMTarget:
    __slots__ = ("model", "translator", "route_type", "provider_route", "native",
                 "dropped_headers",
                 "statistics", "payloads", "input_cost", "output_cost", "cache_costs",
                 "highest_input_cost",
                 "override_auth", "override_model", "label", "limits", "checks_fit")

    def __init__(self, config: dict[str, Any], front: FrontDoor) -> None:
        self.model = model_config(config)
        self.translator = get_translator(self.model)
        self.route_type = config["route_type"]
        # The operation the translator speaks (Chat Completions for the Responses API).
        self.provider_route = translation_route(self.route_type)
        if self.route_type == ROUTE_RESPONSES:
            self._responses_upstream()
        self.statistics = config["logging"]["log_statistics"]
        self.payloads = config["logging"]["log_payloads"]
        options = self.model.options
        self.input_cost = options.input_cost
        self.output_cost = options.output_cost
        self.cache_costs = (options.cache_read_cost, options.cache_write_cost)
        # What a prompt token may cost at most (plain, or read from or written
        # to the provider's cache): a limit in money reserves at this price.
        self.highest_input_cost = max(c or 0.0 for c in (self.input_cost, *self.cache_costs))
        self.override_model = config["model"]["allow_override"]
        auth = self.model.auth
        self.override_auth = auth.allow_override
        # The client speaks the provider's own API: its body and the answer
        # pass through, as do the API's own headers (anthropic-beta).
        self.native = (self.translator.native_format == front.name and
                       self.route_type == ROUTE_CHAT) or self.provider_route == ROUTE_RESPONSES
        dropped = {*GATEWAY_CREDENTIAL_HEADERS, *CLIENT_API_HEADERS}
        if self.native:
            dropped -= NATIVE_API_HEADERS
        if auth.header_name:
            dropped.add(auth.header_name.lower())
        # Plus, per request, where the route's auth plugins read credentials
        # (ctx.credential_headers and credential_fields).
        self.dropped_headers = frozenset(name.encode("latin-1") for name in dropped)
        # How metrics and logs name it.
        self.label = f"{self.model.provider}/{self.model.name or '*'}"
        # What it can serve; with the request's model, looked up per request.
        self.limits = target_limits(self.model.name, options)
        self.checks_fit = self.limits.known or self.model.name is None or self.override_model

    def _responses_upstream(self) -> None:
        """Who serves a Responses API route: a Chat Completions server (its URL
        ends in /chat/completions, whatever the provider is called) gets the
        request translated; OpenAI itself gets it as it is; other providers get
        it translated for their own API."""
        url = (self.model.options.upstream_url or "").split("?", 1)[0].rstrip("/")
        if url.endswith("/chat/completions"):
            if not isinstance(self.translator, OpenAITranslator):
                self.translator = get_translator(dataclasses.replace(self.model,
                                                                     provider="openai"))
        elif type(self.translator) is OpenAITranslator:
            self.provider_route = ROUTE_RESPONSES

    def model_for(self, ctx: RequestContext, request: dict[str, Any],
                  own_model_wins: bool = False) -> ModelConfig:
        """The model config this request goes out with (Kong's model rules).
        ``own_model_wins``: the configured name replaces the request's rather
        than refusing it (a balancer over several models)."""
        model = self.model
        asked = request.get("model")
        if not isinstance(asked, str) or not asked:
            asked = None
        if model.name is None or self.override_model:
            if asked is None and model.name is None:
                raise TranslationError(NO_MODEL)
            if asked is not None and asked != model.name:
                model = dataclasses.replace(model, name=asked)
        elif asked is not None and asked != model.name and not own_model_wins:
            raise TranslationError(OWN_MODEL.format(model.name))
        if self.override_auth:
            model = self._client_credential(ctx, request, model)
        return model

    def _client_credential(self, ctx: RequestContext, request: dict[str, Any],
                           model: ModelConfig) -> ModelConfig:
        """auth.allow_override: the client's own provider credential, when it sent one."""
        auth = model.auth
        value = None
        if auth.header_name:
            value = ctx.request.headers.get(auth.header_name)
            if value is not None:
                return dataclasses.replace(
                    model, auth=dataclasses.replace(auth, header_value=value))
        if auth.param_name:
            if auth.param_location == "body":
                value = request.get(auth.param_name)
            else:
                values = ctx.request.query().get(auth.param_name)
                value = values[0] if values else None
            if isinstance(value, str) and value:
                return dataclasses.replace(
                    model, auth=dataclasses.replace(auth, param_value=value))
        return model

    def build(self, front: FrontDoor, body: dict[str, Any], request: dict[str, Any],
              model: ModelConfig, stream: bool) -> UpstreamRequest:
        """The provider request: the client's body as it is (native), or the
        canonical request translated (refusing what cannot be)."""
        if self.native:
            return self.translator.build_native_request(self.provider_route, body, model,
                                                        stream)
        front.refuse_untranslated(body, model.provider)
        return self.translator.build_request(self.provider_route, request, model)

    def unfit(self, request: dict[str, Any], needs: Needs) -> Unfit | None:
        """Why this target cannot serve a request needing ``needs``; None
        when it can (fastgw.ai.capabilities)."""
        limits: ModelLimits = self.limits
        if self.model.name is None or self.override_model:
            asked = request.get("model")
            if isinstance(asked, str) and asked != self.model.name:
                limits = target_limits(asked, self.model.options)
        return unfit(limits, needs, self.model.options.max_tokens)

    def price(self, usage: Usage | None) -> float | None:
        if not usage:
            return None
        return cost(usage, self.input_cost, self.output_cost, *self.cache_costs)

    def hide_credential(self, ctx: RequestContext) -> None:
        """The log entry shows the request as sent upstream: take the provider's
        credential out of it before any log plugin serialises it."""
        auth = self.model.auth
        view = ctx.request
        if auth.header_name:
            view.headers.remove(auth.header_name)
        if auth.param_name and auth.param_location != "body" and view.query_string:
            params = view.query()
            if params.pop(auth.param_name, None) is not None:
                view.set_query(params)
