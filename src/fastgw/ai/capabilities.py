"""What a model can serve: its context window, its output ceiling and the
features it takes (tools, images, audio, structured output, reasoning
settings, streaming), from a table of well-known models that a target's
``model.options`` (``context_window``, ``max_output_tokens``,
``capabilities``) override; and what a request needs of it.

A request goes only to a target that can serve it: its prompt's estimated
tokens plus its output ceiling fit the window, its ceiling fits the model's,
and every feature it uses is one the model takes. A model the table does not
know, and that its config does not describe, is assumed to serve anything
(the provider answers for itself).

The table is the providers' published figures (late 2025); a name matches
its longest entry that it starts with, up to a separator, so dated and
suffixed names (``gpt-4o-2024-08-06``, ``claude-sonnet-4-5@20250929``) find
their family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastgw.ai.openai_format import ROUTE_CHAT, translation_route
from fastgw.ai.usage import count_chat_prompt, estimate_prompt_tokens

TOOLS, IMAGES, AUDIO = "tools", "images", "audio"
STRUCTURED_OUTPUT, REASONING, STREAMING = "structured_output", "reasoning", "streaming"
FEATURES = (TOOLS, IMAGES, AUDIO, STRUCTURED_OUTPUT, REASONING, STREAMING)
# How a refusal names a feature.
FEATURE_WORDS = {TOOLS: "tools", IMAGES: "images", AUDIO: "audio",
                 STRUCTURED_OUTPUT: "structured output", REASONING: "reasoning settings",
                 STREAMING: "streaming"}


@dataclass(frozen=True, slots=True)
class ModelLimits:
    context_window: int | None = None  # prompt and output tokens together
    max_output_tokens: int | None = None
    features: frozenset[str] | None = None  # None: not known, every feature is taken

    @property
    def known(self) -> bool:
        return (self.context_window is not None or self.max_output_tokens is not None
                or self.features is not None)


def _model(window: int | None, output: int | None, *features: str) -> ModelLimits:
    return ModelLimits(window, output, frozenset((*features, STREAMING)))


_CHAT = (TOOLS, IMAGES, STRUCTURED_OUTPUT)
_REASONER = (*_CHAT, REASONING)
_CLAUDE = (TOOLS, IMAGES)
_GEMINI = (TOOLS, IMAGES, AUDIO, STRUCTURED_OUTPUT)

KNOWN_MODELS: dict[str, ModelLimits] = {
    # OpenAI
    "gpt-3.5-turbo": _model(16_385, 4_096, TOOLS),
    "gpt-4": _model(8_192, 8_192, TOOLS),
    "gpt-4-turbo": _model(128_000, 4_096, TOOLS, IMAGES),
    "gpt-4o": _model(128_000, 16_384, *_CHAT),
    "gpt-4o-mini": _model(128_000, 16_384, *_CHAT),
    "gpt-4o-audio-preview": _model(128_000, 16_384, TOOLS, AUDIO),
    "gpt-4o-mini-audio-preview": _model(128_000, 16_384, TOOLS, AUDIO),
    "gpt-4.1": _model(1_047_576, 32_768, *_CHAT),
    "gpt-4.1-mini": _model(1_047_576, 32_768, *_CHAT),
    "gpt-4.1-nano": _model(1_047_576, 32_768, *_CHAT),
    "o1": _model(200_000, 100_000, *_REASONER),
    "o1-mini": _model(128_000, 65_536, REASONING),
    "o3": _model(200_000, 100_000, *_REASONER),
    "o3-mini": _model(200_000, 100_000, TOOLS, STRUCTURED_OUTPUT, REASONING),
    "o4-mini": _model(200_000, 100_000, *_REASONER),
    "gpt-5": _model(400_000, 128_000, *_REASONER),
    "gpt-5-mini": _model(400_000, 128_000, *_REASONER),
    "gpt-5-nano": _model(400_000, 128_000, *_REASONER),
    "gpt-5.1": _model(400_000, 128_000, *_REASONER),
    # Anthropic
    "claude-3-haiku": _model(200_000, 4_096, *_CLAUDE),
    "claude-3-opus": _model(200_000, 4_096, *_CLAUDE),
    "claude-3-5-haiku": _model(200_000, 8_192, *_CLAUDE),
    "claude-3-5-sonnet": _model(200_000, 8_192, *_CLAUDE),
    "claude-3-7-sonnet": _model(200_000, 64_000, *_CLAUDE, REASONING),
    "claude-sonnet-4": _model(200_000, 64_000, *_CLAUDE, REASONING),
    "claude-opus-4": _model(200_000, 32_000, *_CLAUDE, REASONING),
    "claude-opus-4-1": _model(200_000, 32_000, *_CLAUDE, REASONING, STRUCTURED_OUTPUT),
    "claude-sonnet-4-5": _model(200_000, 64_000, *_CLAUDE, REASONING, STRUCTURED_OUTPUT),
    "claude-haiku-4-5": _model(200_000, 64_000, *_CLAUDE, REASONING, STRUCTURED_OUTPUT),
    "claude-opus-4-5": _model(200_000, 64_000, *_CLAUDE, REASONING, STRUCTURED_OUTPUT),
    # Google
    "gemini-1.5-pro": _model(2_097_152, 8_192, *_GEMINI),
    "gemini-1.5-flash": _model(1_048_576, 8_192, *_GEMINI),
    "gemini-2.0-flash": _model(1_048_576, 8_192, *_GEMINI),
    "gemini-2.0-flash-lite": _model(1_048_576, 8_192, *_GEMINI),
    "gemini-2.5-pro": _model(1_048_576, 65_536, *_GEMINI, REASONING),
    "gemini-2.5-flash": _model(1_048_576, 65_536, *_GEMINI, REASONING),
    "gemini-2.5-flash-lite": _model(1_048_576, 65_536, *_GEMINI, REASONING),
    # Mistral
    "mistral-large": _model(131_072, None, TOOLS, STRUCTURED_OUTPUT),
    "mistral-medium": _model(131_072, None, TOOLS, IMAGES, STRUCTURED_OUTPUT),
    "mistral-small": _model(131_072, None, TOOLS, IMAGES, STRUCTURED_OUTPUT),
    "pixtral-large": _model(131_072, None, TOOLS, IMAGES, STRUCTURED_OUTPUT),
    "codestral": _model(262_144, None, TOOLS, STRUCTURED_OUTPUT),
    "open-mistral-nemo": _model(131_072, None, TOOLS, STRUCTURED_OUTPUT),
}
_SEPARATORS = frozenset("-.@:_")
# Provider spellings before the model's own name (Gemini's "models/",
# Bedrock's "anthropic.", a LiteLLM-style "openai/").
_PREFIXES = ("models/", "us.anthropic.", "eu.anthropic.", "anthropic.", "openai/",
             "anthropic/", "gemini/", "mistral/")


def known_limits(name: str | None) -> ModelLimits | None:
    """The table's entry for a model name, by its longest matching family."""
    if not name:
        return None
    name = name.lower()
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    found = None
    for family in KNOWN_MODELS:
        if name.startswith(family) and (len(name) == len(family) or
                                        name[len(family)] in _SEPARATORS):
            if found is None or len(family) > len(found):
                found = family
    return KNOWN_MODELS[found] if found is not None else None


def target_limits(name: str | None, options: Any) -> ModelLimits:
    """A target's limits: the table's for its model, each overridden by the
    config's ``context_window``, ``max_output_tokens`` and ``capabilities``
    (which names every feature it takes; streaming is assumed unless the
    table says otherwise)."""
    table = known_limits(name) or ModelLimits()
    features = table.features
    if options.capabilities is not None:
        features = frozenset((*options.capabilities, STREAMING))
    return ModelLimits(options.context_window or table.context_window,
                       options.max_output_tokens or table.max_output_tokens, features)


@dataclass(frozen=True, slots=True)
class Needs:
    """What a request asks of a model."""

    prompt_tokens: int
    output_tokens: int  # the request's own ceiling; 0 when it sets none
    features: frozenset[str]
    # What a limit reserves for a chat prompt (fastgw.ai.usage.count_chat_prompt,
    # the same walk); None for other route types.
    prompt_reserved: int | None = None


def _content_kinds(request: dict[str, Any]) -> set[str]:
    kinds: set[str] = set()
    for message in request.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind in ("image_url", "input_image", "image"):
                    kinds.add(IMAGES)
                elif kind in ("input_audio", "audio"):
                    kinds.add(AUDIO)
    return kinds


def needs_of(route_type: str, request: dict[str, Any], stream: bool) -> Needs:
    """What a canonical (OpenAI-shaped) request uses."""
    features = _content_kinds(request)
    if request.get("tools") or request.get("functions"):
        features.add(TOOLS)
    modalities = request.get("modalities")
    if isinstance(modalities, list) and "audio" in modalities:
        features.add(AUDIO)
    response_format = request.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        features.add(STRUCTURED_OUTPUT)
    if request.get("reasoning_effort") is not None or request.get("reasoning") is not None:
        features.add(REASONING)
    if stream:
        features.add(STREAMING)
    ceiling = request.get("max_completion_tokens") or request.get("max_tokens") or \
        request.get("max_output_tokens")
    if translation_route(route_type) == ROUTE_CHAT:
        prompt, reserved = count_chat_prompt(request)
    else:
        prompt, reserved = estimate_prompt_tokens(route_type, request), None
    return Needs(prompt, ceiling if isinstance(ceiling, int) and ceiling > 0 else 0,
                 frozenset(features), reserved)


@dataclass(frozen=True, slots=True)
class Unfit:
    """Why a target cannot serve a request: a missing feature, or too many
    tokens for its window or output ceiling."""

    kind: str  # a feature, "context_window" or "max_output_tokens"
    text: str


def unfit(limits: ModelLimits, needs: Needs, default_output: int | None) -> Unfit | None:
    """None when a target of these limits can serve the request."""
    if limits.features is not None:
        for feature in FEATURES:
            if feature in needs.features and feature not in limits.features:
                return Unfit(feature, f"does not accept {FEATURE_WORDS[feature]}")
    output = needs.output_tokens or default_output or 0
    if limits.max_output_tokens is not None and output > limits.max_output_tokens:
        return Unfit("max_output_tokens", f"writes at most {limits.max_output_tokens:,} "
                     f"tokens, {output:,} asked")
    if limits.context_window is not None and needs.prompt_tokens + output > limits.context_window:
        return Unfit("context_window", f"has a context window of {limits.context_window:,} "
                     f"tokens")
    return None


def refusal(needs: Needs, reasons: list[tuple[str, Unfit]]) -> str:
    """The 400's message when no target can serve the request: one reason
    when all targets share it, else each target's."""
    kinds = {reason.kind for _, reason in reasons}
    if len(kinds) == 1:
        kind = next(iter(kinds))
        if kind in FEATURE_WORDS:
            return f"no target accepts {FEATURE_WORDS[kind]}"
        if kind == "context_window":
            return (f"a prompt of {needs.prompt_tokens:,} tokens"
                    + (f" with {needs.output_tokens:,} to write" if needs.output_tokens else "")
                    + " exceeds every target's context window")
        if kind == "max_output_tokens" and needs.output_tokens:
            # (Without a ceiling of its own, the targets' max_tokens were too
            # many: each says its own below.)
            return f"{needs.output_tokens:,} output tokens exceed every target's output limit"
    return "no target can serve this request: " + "; ".join(
        f"{label} {reason.text}" for label, reason in reasons)
