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


def estimate_prompt_tokens(route_type: str, body: dict[str, Any]) -> int:
    """Estimate the prompt of an OpenAI-format request, before any provider has counted it."""
    if translation_route(route_type) == ROUTE_CHAT:
        return count_chat_prompt(body)[0]
    counter = TokenEstimator()
    extra_tokens = 0
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
# bills for one (Anthropic's ~1600 for a full-size image); per tool call,
# what its framing (id, type, the JSON around its name and arguments) adds.
_RESERVED_PER_MESSAGE = 8
_RESERVED_PER_IMAGE = 1600
_RESERVED_PER_TOOL_CALL = 16


def prompt_token_reservation(body: dict[str, Any]) -> int:
    """How many tokens to reserve for a canonical chat request's prompt
    before it is sent (see count_chat_prompt)."""
    return count_chat_prompt(body)[1]


def count_chat_prompt(body: dict[str, Any]) -> tuple[int, int]:
    """A canonical chat request's prompt, from one walk over it: its
    estimated tokens (the texts, tool calls and tool schemas, plus framing
    per message), and what a limit reserves for it before it is sent: the
    estimate of the same texts and of the parts the model gets in other
    forms (their JSON) times RESERVATION_MARGIN, plus template tokens per
    message, a ceiling per image and framing per tool call. The texts' part
    of a reservation is never more than their UTF-8 bytes, which no
    tokenizer exceeds, so short or odd texts are not over-reserved by the
    margin. PERF: the capability check and the limit share one walk."""
    counter = TokenEstimator()
    size = 0  # the UTF-8 bytes of what the counter was given
    others: list[str] = []  # what only the reservation counts
    messages = images = calls = 0
    for message in body.get("messages") or ():
        messages += 1
        content = message.get("content")
        if isinstance(content, str):
            counter.add(content)
            size += _utf8_size(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                kind = part.get("type")
                text = part.get("text")
                if text and isinstance(text, str):
                    counter.add(text)
                    size += _utf8_size(text)
                if kind == "image_url":
                    images += 1
                elif kind != "text":
                    others.append(orjson.dumps(part).decode())
        tool_calls = message.get("tool_calls")
        if tool_calls:
            for call in tool_calls:
                calls += 1
                function = call.get("function") or {}
                for text in (function.get("name") or "", function.get("arguments") or ""):
                    counter.add(text)
                    size += _utf8_size(text)
    if body.get("tools"):
        # Tool schemas are sent to the model as text; their JSON is a fair proxy.
        schemas = orjson.dumps(body["tools"]).decode()
        counter.add(schemas)
        size += _utf8_size(schemas)
    estimate = counter.tokens
    if body.get("response_format"):
        others.append(orjson.dumps(body["response_format"]).decode())
    for text in others:
        counter.add(text)
        size += _utf8_size(text)
    reserved = min(math.ceil(counter.tokens * RESERVATION_MARGIN), size)
    return (estimate + messages * _TOKENS_PER_MESSAGE,
            reserved + (messages + 1) * _RESERVED_PER_MESSAGE + images * _RESERVED_PER_IMAGE
            + calls * _RESERVED_PER_TOOL_CALL)


def _utf8_size(text: str) -> int:
    # PERF: an ASCII string's length is its size; only others are encoded.
    return len(text) if text.isascii() else len(text.encode())


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
