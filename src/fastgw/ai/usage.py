"""Token usage, token estimates without a tokenizer, and cost.

Providers report usage in their own words (OpenAI ``usage``, Anthropic
``input_tokens``/``output_tokens``, Gemini ``usageMetadata``, Ollama
``prompt_eval_count``/``eval_count``); translators turn them into ``Usage``.
When a provider reports a total, that total is kept as given: some count
tokens outside prompt and completion (Gemini's tool-use prompt, for one), so a
recomputed sum would disagree with the provider's bill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from fastgw._core.token_estimate import TokenEstimator
from fastgw.ai.openai_format import ROUTE_CHAT, ROUTE_COMPLETIONS, translation_route

# A text's tokens are estimated without a vocabulary (fastgw._core.token_estimate:
# a few microseconds for a 2 KB prompt; its error, measured against real
# tokenizers, is in docs/ai-translation.md). TokenEstimator also counts text
# that arrives in pieces, stream deltas, as the joined text.
# Per-message framing tokens (role markers, separators) in chat formats.
_TOKENS_PER_MESSAGE = 4


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int | None = None  # part of completion_tokens
    cached_tokens: int | None = None  # part of prompt_tokens: read from the prompt cache
    estimated: bool = False  # True when counted here rather than reported upstream
    # Part of prompt_tokens: written to the prompt cache (Anthropic's
    # cache_creation_input_tokens), priced apart.
    cache_write_tokens: int | None = None

    @classmethod
    def of(
        cls,
        prompt: int,
        completion: int,
        total: int | None = None,
        *,
        reasoning: int | None = None,
        cached: int | None = None,
        cache_write: int | None = None,
        estimated: bool = False,
    ) -> Usage:
        """Build from a provider's counts; ``total`` is summed only when the provider gave none."""
        if total is None:
            total = prompt + completion
        return cls(prompt, completion, total, reasoning, cached, estimated, cache_write)

    @classmethod
    def from_openai(cls, usage: dict[str, Any] | None) -> Usage | None:
        if not usage:
            return None
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        return cls.of(
            usage.get("prompt_tokens") or 0,
            usage.get("completion_tokens") or 0,
            usage.get("total_tokens"),
            reasoning=completion_details.get("reasoning_tokens"),
            cached=prompt_details.get("cached_tokens"),
        )

    @classmethod
    def from_responses(cls, usage: dict[str, Any] | None) -> Usage | None:
        """The Responses API's usage (input_tokens, output_tokens and their details)."""
        if not usage:
            return None
        input_details = usage.get("input_tokens_details") or {}
        output_details = usage.get("output_tokens_details") or {}
        return cls.of(
            usage.get("input_tokens") or 0,
            usage.get("output_tokens") or 0,
            usage.get("total_tokens"),
            reasoning=output_details.get("reasoning_tokens"),
            cached=input_details.get("cached_tokens"),
        )

    def plus(self, other: Usage | None) -> Usage:
        """The usage of two calls that made one answer (a continued stream)."""
        if other is None:
            return self

        def both(mine: int | None, theirs: int | None) -> int | None:
            return None if mine is None and theirs is None else (mine or 0) + (theirs or 0)

        return Usage(self.prompt_tokens + other.prompt_tokens,
                     self.completion_tokens + other.completion_tokens,
                     self.total_tokens + other.total_tokens,
                     both(self.reasoning_tokens, other.reasoning_tokens),
                     both(self.cached_tokens, other.cached_tokens),
                     self.estimated or other.estimated,
                     both(self.cache_write_tokens, other.cache_write_tokens))

    def to_openai(self) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        if self.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return usage

    def to_openai_embeddings(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "total_tokens": self.total_tokens}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content if isinstance(part, dict))
    return ""


def estimate_prompt_tokens(route_type: str, body: dict[str, Any]) -> int:
    """Estimate the prompt of an OpenAI-format request, before any provider has counted it."""
    counter = TokenEstimator()
    extra_tokens = 0
    if translation_route(route_type) == ROUTE_CHAT:
        for message in body.get("messages") or ():
            extra_tokens += _TOKENS_PER_MESSAGE
            counter.add(_content_text(message.get("content")))
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                counter.add(function.get("name") or "")
                counter.add(function.get("arguments") or "")
        if body.get("tools"):
            # Tool schemas are sent to the model as text; their JSON is a fair proxy.
            counter.add(orjson.dumps(body["tools"]).decode())
    else:
        key = "prompt" if route_type == ROUTE_COMPLETIONS else "input"
        value = body.get(key)
        for item in value if isinstance(value, list) else (value,):
            if isinstance(item, str):
                counter.add(item)
            elif isinstance(item, int):  # pre-tokenized input: one id per token
                extra_tokens += 1
            elif isinstance(item, list):
                extra_tokens += len(item)
    return counter.tokens + extra_tokens


# What a reservation multiplies a prompt's estimate by: on the measured
# sample the estimate is within 25% of the real count for all but a few
# texts (docs/ai-translation.md), and a reservation that falls short lets a
# window go over by the shortfall of the calls in flight.
RESERVATION_MARGIN = 1.25
# What chat templates add per message, and per image the most a provider
# bills for one (Anthropic's ~1600 for a full-size image).
_RESERVED_PER_MESSAGE = 8
_RESERVED_PER_IMAGE = 1600


def prompt_token_reservation(body: dict[str, Any]) -> int:
    """How many tokens to reserve for a canonical chat request's prompt
    before it is sent: its text's estimate times RESERVATION_MARGIN, plus
    template tokens per message and a ceiling per image. Never more than the
    text's UTF-8 bytes, which no tokenizer exceeds, so short or odd texts are
    not over-reserved by the margin."""
    estimator = TokenEstimator()
    texts: list[str] = []
    fixed = _RESERVED_PER_MESSAGE
    for message in body.get("messages") or ():
        fixed += _RESERVED_PER_MESSAGE
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "text":
                    texts.append(part.get("text") or "")
                elif part.get("type") == "image_url":
                    fixed += _RESERVED_PER_IMAGE
                else:
                    texts.append(orjson.dumps(part).decode())
        for call in message.get("tool_calls") or ():
            texts.append(orjson.dumps(call).decode())
    for key in ("tools", "response_format"):
        if body.get(key):
            texts.append(orjson.dumps(body[key]).decode())
    characters = 0
    for text in texts:
        estimator.add(text)
        characters += len(text)
    estimate = math.ceil(estimator.tokens * RESERVATION_MARGIN)
    if estimate > characters:
        # PERF: bytes are counted only when they can be the smaller (they are
        # never fewer than characters).
        estimate = min(estimate, sum(len(text.encode()) for text in texts))
    return fixed + estimate


def completion_ceiling(body: dict[str, Any], default: int | None) -> int | None:
    """The most tokens the answer to a canonical request may have."""
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return default


def cost(usage: Usage, input_cost: float | None, output_cost: float | None,
         cache_read_cost: float | None = None, cache_write_cost: float | None = None) -> float:
    """Price of ``usage`` with costs given per 1M tokens, as in Kong's model
    options. Prompt tokens read from or written to the provider's prompt cache
    are priced at ``cache_read_cost`` and ``cache_write_cost`` when given, else
    as any prompt token."""
    plain = input_cost or 0.0
    cached = usage.cached_tokens or 0
    written = usage.cache_write_tokens or 0
    uncached = max(usage.prompt_tokens - cached - written, 0)
    return (
        uncached * plain
        + cached * (plain if cache_read_cost is None else cache_read_cost)
        + written * (plain if cache_write_cost is None else cache_write_cost)
        + usage.completion_tokens * (output_cost or 0.0)
    ) / 1_000_000
