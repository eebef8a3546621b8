"""What a model can serve (fastgw.ai.capabilities): the shipped table found
by dated and prefixed names, config overrides, what a request needs, and
the reasons a target cannot serve it."""

from __future__ import annotations

import pytest

from fastgw.ai.capabilities import (
    ModelLimits,
    Needs,
    known_limits,
    needs_of,
    refusal,
    target_limits,
    unfit,
)
from fastgw.ai.config import ModelOptions

CHAT = "llm/v1/chat"


@pytest.mark.parametrize("name, family_window, family_output", [
    ("gpt-4o", 128_000, 16_384),
    ("gpt-4o-2024-08-06", 128_000, 16_384),
    ("gpt-4o-mini-2024-07-18", 128_000, 16_384),
    ("gpt-4.1-mini", 1_047_576, 32_768),
    ("gpt-4-0613", 8_192, 8_192),  # not gpt-4o, not gpt-4.1
    ("o3-mini-2025-01-31", 200_000, 100_000),
    ("claude-sonnet-4-5-20250929", 200_000, 64_000),
    ("us.anthropic.claude-3-5-haiku-20241022-v1:0", 200_000, 8_192),
    ("models/gemini-2.5-flash", 1_048_576, 65_536),
    ("GPT-4O", 128_000, 16_384),
])
def test_names_find_their_family(name, family_window, family_output):
    limits = known_limits(name)
    assert limits is not None
    assert (limits.context_window, limits.max_output_tokens) == (family_window, family_output)


@pytest.mark.parametrize("name", ["gpt-4omni", "llama3", "my-model", "", None, "o1x"])
def test_unknown_names_are_not_guessed(name):
    assert known_limits(name) is None


def test_features_differ_by_family():
    assert "images" not in known_limits("o3-mini").features
    assert "images" in known_limits("o4-mini").features
    assert "tools" not in known_limits("o1-mini").features
    assert "audio" in known_limits("gpt-4o-audio-preview").features
    assert "reasoning" not in known_limits("gpt-4o").features


def test_the_config_overrides_the_table():
    options = ModelOptions(context_window=8_000, capabilities=("tools",))
    limits = target_limits("gpt-4o", options)
    assert limits.context_window == 8_000 and limits.max_output_tokens == 16_384
    assert limits.features == frozenset({"tools", "streaming"})
    assert target_limits("unknown", ModelOptions()) == ModelLimits()
    assert not target_limits("unknown", ModelOptions()).known


def image(text: str = "what is this") -> list:
    return [{"type": "text", "text": text},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]


@pytest.mark.parametrize("request_body, stream, features", [
    ({"messages": [{"role": "user", "content": "hi"}]}, False, set()),
    ({"messages": [{"role": "user", "content": "hi"}]}, True, {"streaming"}),
    ({"messages": [{"role": "user", "content": image()}]}, False, {"images"}),
    ({"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]},
     False, {"audio"}),
    ({"messages": [], "modalities": ["text", "audio"]}, False, {"audio"}),
    ({"messages": [], "tools": [{"type": "function", "function": {"name": "f"}}]},
     False, {"tools"}),
    ({"messages": [], "response_format": {"type": "json_schema", "json_schema": {}}},
     False, {"structured_output"}),
    ({"messages": [], "response_format": {"type": "json_object"}}, False, set()),
    ({"messages": [], "reasoning_effort": "high"}, False, {"reasoning"}),
])
def test_what_a_request_uses(request_body, stream, features):
    assert needs_of(CHAT, request_body, stream).features == frozenset(features)


def test_a_requests_tokens():
    needs = needs_of(CHAT, {"messages": [{"role": "user", "content": "word " * 400}],
                            "max_completion_tokens": 900}, False)
    assert 300 < needs.prompt_tokens < 600 and needs.output_tokens == 900
    assert needs_of(CHAT, {"messages": [], "max_tokens": 50}, False).output_tokens == 50
    assert needs_of(CHAT, {"messages": []}, False).output_tokens == 0


def test_why_a_target_cannot_serve():
    small = ModelLimits(1_000, 500, frozenset({"tools", "streaming"}))
    assert unfit(small, Needs(100, 0, frozenset({"tools"})), 256) is None
    assert unfit(small, Needs(100, 0, frozenset({"images"})), 256).text == \
        "does not accept images"
    # The output ceiling is the request's, else the target's default max_tokens.
    assert unfit(small, Needs(800, 0, frozenset()), 256).kind == "context_window"
    assert unfit(small, Needs(800, 0, frozenset()), None) is None
    assert unfit(small, Needs(10, 600, frozenset()), 256).text == \
        "writes at most 500 tokens, 600 asked"
    assert unfit(ModelLimits(), Needs(10**9, 10**9, frozenset({"audio"})), 256) is None


def test_the_refusal_says_why():
    needs = Needs(180_000, 0, frozenset({"images"}))
    images = unfit(ModelLimits(features=frozenset()), needs, None)
    window = unfit(ModelLimits(context_window=128_000), needs, None)
    assert refusal(needs, [("a", images), ("b", images)]) == "no target accepts images"
    assert refusal(needs, [("a", window), ("b", window)]) == \
        "a prompt of 180,000 tokens exceeds every target's context window"
    assert refusal(needs, [("openai/a", images), ("openai/b", window)]) == (
        "no target can serve this request: openai/a does not accept images; openai/b has a "
        "context window of 128,000 tokens")


def test_an_output_ceiling_from_the_targets_defaults_is_named_per_target():
    # The request sets no max_tokens: the targets' own defaults were too many,
    # so the message says each target's, not "0 output tokens".
    needs = Needs(10, 0, frozenset())
    small = unfit(ModelLimits(max_output_tokens=500), needs, 4_096)
    assert refusal(needs, [("openai/a", small), ("openai/b", small)]) == (
        "no target can serve this request: openai/a writes at most 500 tokens, 4,096 asked; "
        "openai/b writes at most 500 tokens, 4,096 asked")
    asked = Needs(10, 600, frozenset())
    too_many = unfit(ModelLimits(max_output_tokens=500), asked, None)
    assert refusal(asked, [("openai/a", too_many)]) == \
        "600 output tokens exceed every target's output limit"
