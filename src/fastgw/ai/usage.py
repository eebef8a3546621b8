"""Token usage, token estimates without a tokenizer, and cost.

Providers report usage in their own words (OpenAI ``usage``, Anthropic
``input_tokens``/``output_tokens``, Gemini ``usageMetadata``, Ollama
``prompt_eval_count``/``eval_count``); translators turn them into ``Usage``.
When a provider reports a total, that total is kept as given: some count
tokens outside prompt and completion (Gemini's tool-use prompt, for one), so a
recomputed sum would disagree with the provider's bill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from fastgw.ai.openai_format import ROUTE_CHAT, ROUTE_COMPLETIONS, translation_route

# Bytes per token for ASCII text, the usual rule of thumb for BPE tokenizers on
# English and code. A non-ASCII character is counted as a whole token: right for
# CJK, high for accented Latin, and erring high is the safe side for budgets.
_ASCII_CHARS_PER_TOKEN = 4
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


class TokenCounter:
    """Running token estimate of text that arrives in pieces (stream deltas).

    Counting characters per class and rounding once at the end keeps the
    estimate equal to ``estimate_tokens`` of the joined text, where summing a
    rounded estimate per delta would count every one-character delta as a token.
    """

    __slots__ = ("ascii_chars", "other_chars")

    def __init__(self) -> None:
        self.ascii_chars = 0
        self.other_chars = 0

    def add(self, text: str) -> None:
        if text.isascii():
            self.ascii_chars += len(text)
            return
        ascii_chars = len(text.encode("ascii", "ignore"))
        self.ascii_chars += ascii_chars
        self.other_chars += len(text) - ascii_chars

    @property
    def tokens(self) -> int:
        return -(-self.ascii_chars // _ASCII_CHARS_PER_TOKEN) + self.other_chars


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: about 4 ASCII characters per token, 1 per other character."""
    if not text:
        return 0
    counter = TokenCounter()
    counter.add(text)
    return counter.tokens


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content if isinstance(part, dict))
    return ""


def estimate_prompt_tokens(route_type: str, body: dict[str, Any]) -> int:
    """Estimate the prompt of an OpenAI-format request, before any provider has counted it."""
    counter = TokenCounter()
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


# A prompt's ceiling: what chat templates add per message, and per image (the
# most a provider bills for one: Anthropic's ~1600 for a full-size image).
_BOUND_PER_MESSAGE = 8
_BOUND_PER_IMAGE = 1600


def _bytes(text: str) -> int:
    return len(text.encode("utf-8")) if not text.isascii() else len(text)


def prompt_token_bound(body: dict[str, Any]) -> int:
    """At most how many tokens a canonical chat request's prompt is, without a
    tokenizer: no tokenizer makes more tokens of a text than it has UTF-8
    bytes, so its bytes, plus template tokens per message, the tool schemas'
    bytes and a ceiling per image. A limit that reserves this before a call
    is never overrun by the call's real prompt."""
    total = _BOUND_PER_MESSAGE
    for message in body.get("messages") or ():
        total += _BOUND_PER_MESSAGE
        content = message.get("content")
        if isinstance(content, str):
            total += _bytes(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "text":
                    total += _bytes(part.get("text") or "")
                elif part.get("type") == "image_url":
                    total += _BOUND_PER_IMAGE
                else:
                    total += len(orjson.dumps(part))
        for call in message.get("tool_calls") or ():
            total += len(orjson.dumps(call))
    if body.get("tools"):
        total += len(orjson.dumps(body["tools"]))
    if body.get("response_format"):
        total += len(orjson.dumps(body["response_format"]))
    return total


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
