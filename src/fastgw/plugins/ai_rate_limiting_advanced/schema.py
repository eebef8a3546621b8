"""Config of ai-rate-limiting-advanced, with Kong's field names and defaults
(``kong/plugins/ai-rate-limiting-advanced/schema.lua``).

fastgw differs where ``docs/kong-compatibility.md`` says: a provider may have
several windows (``llm_providers`` entries with the same name and other
window sizes), ``ollama`` is a provider name, ``fault_tolerant`` is added,
counts are always synchronous (``sync_rate`` and ``dictionary_name`` are
accepted and have no effect), a refused request is never counted (Kong's
``disable_penalty: true``), ``budget`` is added, and the ``cluster`` strategy
and ``request_prompt_count_function`` are refused.
"""

from __future__ import annotations

from typing import Any

from fastgw.config.checks import check_path
from fastgw.config.schema import (
    INVALID,
    Array,
    Boolean,
    Field,
    Number,
    Path,
    Record,
    String,
    Validation,
)
from fastgw.shared_redis.schema import REDIS, check_own_connection

PROVIDERS = ("openai", "azure", "anthropic", "cohere", "mistral", "llama2", "bedrock", "gemini",
             "huggingface", "ollama", "requestPrompt")
IDENTIFIERS = ("ip", "credential", "consumer", "service", "header", "path", "consumer-group")


def _positive(value: float) -> str | None:
    return "value must be greater than 0" if value <= 0 else None


class _NumberOrNumbers(Field):
    """Kong's form is a list, one value per window (``limit: [100, 1000]``);
    a single number is one window. Each value must be above 0."""

    __slots__ = ()

    def _coerce(self, value: Any, path: Path, ctx: Validation) -> Any:
        values = value if type(value) is list else [value]
        if not values:
            ctx.error(path, "at least one value is needed")
            return INVALID
        for index, item in enumerate(values):
            where = (path, index) if type(value) is list else path
            if type(item) not in (int, float):
                ctx.error(where, "expected a number")
                return INVALID
            if item <= 0:
                ctx.error(where, "value must be greater than 0")
                return INVALID
        return values


def _pair_windows(entry: dict, path: Path, ctx: Validation) -> None:
    if len(entry["limit"]) != len(entry["window_size"]):
        ctx.error(path, "limit and window_size need as many values each")


LLM_PROVIDER = Record(
    {
        "name": String(required=True, one_of=PROVIDERS,
                       description="The provider whose calls these limits count."),
        "window_size": _NumberOrNumbers(
            required=True,
            description="The windows' lengths, in seconds (a list, or one number)."),
        "limit": _NumberOrNumbers(
            required=True,
            description="What calls to the provider may use per window, in the order of "
            "window_size: tokens, or money with tokens_count_strategy 'cost'."),
    },
    validator=_pair_windows,
    description="The limits of one provider, one per window.",
)


def _one_limit_per_window(config: dict) -> None:
    """Kong's entries (several windows each) as one entry per window, the
    form the plugin counts with."""
    config["llm_providers"] = [
        {"name": entry["name"], "limit": limit, "window_size": window}
        for entry in config["llm_providers"] or ()
        for limit, window in zip(entry["limit"], entry["window_size"], strict=True)
    ]


def _check(config: dict, path: Path, ctx: Validation) -> None:
    seen: set[tuple[str, float]] = set()
    for index, entry in enumerate(config["llm_providers"] or ()):
        for window in entry["window_size"]:
            if (entry["name"], window) in seen:
                ctx.error(((path, "llm_providers"), index),
                          f"Provider '{entry['name']}' has two limits for window_size "
                          f"{window:g}")
            seen.add((entry["name"], window))
        if entry["name"] == "requestPrompt":
            ctx.error((((path, "llm_providers"), index), "name"),
                      "'requestPrompt' needs a Lua count function: not supported by fastgw")
    _one_limit_per_window(config)
    if not config["llm_providers"] and not any(config["budget"].values()):
        ctx.error((path, "llm_providers"), "at least one limit (or a budget) is needed")
    if config["request_prompt_count_function"] is not None:
        ctx.error((path, "request_prompt_count_function"), "not supported by fastgw")
    if config["strategy"] == "redis":
        check_own_connection(config["redis"], (path, "redis"), ctx)
    if config["strategy"] == "cluster":
        ctx.error((path, "strategy"), "strategy 'cluster' is not supported by fastgw; use "
                  "'redis' (shared by every gateway) or 'local' (this node)")
    for identifier, needed in (("header", "header_name"), ("path", "path")):
        if config["identifier"] == identifier and config[needed] is None:
            ctx.error((path, needed), f"required when identifier is '{identifier}'")
    if config["retry_after_jitter_max"] < 0:
        ctx.error((path, "retry_after_jitter_max"),
                  "Non-negative retry_after_jitter_max value is expected")


SCHEMA = Record(
    {
        "identifier": String(
            one_of=IDENTIFIERS, default="consumer",
            description="Whose calls are counted together ('consumer-group': the group the "
            "config is scoped to, else the consumer's first group); when it cannot be told, "
            "the client IP.",
        ),
        "window_type": String(
            one_of=("fixed", "sliding"), default="sliding",
            description="'sliding': the last window_size seconds, from the current window "
            "and the previous one; 'fixed': windows aligned on the clock.",
        ),
        "llm_providers": Array(LLM_PROVIDER, required=True,
                               description="The limits, per provider and window."),
        "tokens_count_strategy": String(
            one_of=("total_tokens", "prompt_tokens", "completion_tokens", "cost"),
            default="total_tokens",
            description="What a call uses of a limit: tokens of a kind, or its cost (the "
            "model's input_cost and output_cost per 1M tokens).",
        ),
        "strategy": String(
            one_of=("local", "redis", "cluster"), default="local",
            description="'local': counters shared by this node's workers; 'redis': shared by "
            "every gateway using the same Redis.",
        ),
        "redis": REDIS,
        "fault_tolerant": Boolean(
            default=True,
            description="fastgw addition. When Redis cannot be reached: true counts on this "
            "node meanwhile (logged), false refuses at once (500).",
        ),
        "header_name": String(description="The header identifying the client (identifier "
                              "'header')."),
        "path": String(check=check_path, description="The path counted on its own "
                       "(identifier 'path')."),
        "hide_client_headers": Boolean(default=False,
                                       description="Send no X-AI-RateLimit-* headers."),
        "retry_after_jitter_max": Number(
            default=0, description="Up to this many seconds, at random, added to Retry-After."),
        "error_code": Number(default=429, check=_positive,
                             description="Status of the answer over a limit."),
        "error_message": String(default="AI token rate limit exceeded for provider(s): ",
                                description="Message of the answer over a limit."),
        "error_hide_providers": Boolean(
            default=False, description="Leave the providers out of the error message."),
        "budget": Record(
            {
                "day": Number(check=_positive, description="Money per calendar day (UTC)."),
                "month": Number(check=_positive,
                                description="Money per calendar month (UTC)."),
            },
            default={},
            description="fastgw addition: what each client (the identifier) may spend on "
            "calls to any provider, priced with the models' costs; reserved before each "
            "call like the limits, and shown by GET /ai/budgets.",
        ),
        "sync_rate": Number(description="Accepted for Kong compatibility: fastgw counts in "
                            "the call's own round trip."),
        "dictionary_name": String(default="kong_rate_limiting_counters",
                                  description="Accepted for Kong compatibility (no effect)."),
        "disable_penalty": Boolean(default=False, description="Accepted for Kong "
                                   "compatibility: a refused call is never counted."),
        "request_prompt_count_function": String(description="Not supported by fastgw."),
    },
    validator=_check,
    description="Limit the tokens or the money a client's LLM calls use per window, reserved "
    "before each call and settled after it.",
)
