"""Usage, token estimates and cost."""

from __future__ import annotations

import pytest
from ai_testkit import awkward_pieces

from fastgw._core.token_estimate import FEATURES, TokenEstimator
from fastgw.ai import (
    ROUTE_CHAT,
    ROUTE_COMPLETIONS,
    ROUTE_EMBEDDINGS,
    Usage,
    cost,
    estimate_prompt_tokens,
    estimate_tokens,
)


def test_a_total_given_by_the_provider_is_never_recomputed():
    assert Usage.of(10, 5, 20).total_tokens == 20
    assert Usage.of(10, 5, 0).total_tokens == 0
    assert Usage.of(10, 5).total_tokens == 15


def test_openai_usage_with_details_round_trips():
    reported = {
        "prompt_tokens": 100,
        "completion_tokens": 40,
        "total_tokens": 141,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 12},
    }
    usage = Usage.from_openai(reported)
    assert (usage.total_tokens, usage.cached_tokens, usage.reasoning_tokens) == (141, 64, 12)
    assert usage.to_openai() == reported
    assert Usage.from_openai(None) is None
    assert Usage.of(1, 2).to_openai() == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
    }
    assert Usage.of(7, 0).to_openai_embeddings() == {"prompt_tokens": 7, "total_tokens": 7}


@pytest.mark.parametrize(
    ("text", "tokens"),
    # The larger of the exact cl100k_base and o200k_base counts.
    [("", 0), ("hello", 1), ("Hello world", 2), ("日本語", 4), ("12345678901", 4),
     ("The quick brown fox jumps over the lazy dog.", 10),
     ("def main(argv=None):\n    return 0\n", 10), ("Привет, мир!", 7)],
)
def test_estimate_tokens_of_short_texts(text, tokens):
    assert abs(estimate_tokens(text) - tokens) <= max(2, tokens // 4)
    assert (estimate_tokens(text) == 0) == (tokens == 0)


def test_an_estimator_fed_in_pieces_equals_the_estimate_of_the_whole_text():
    text = "Streaming answers arrive in small deltas: ¡hola! 你好 camelCase 1234567, " * 20
    whole = TokenEstimator()
    whole.add(text)
    assert whole.tokens == estimate_tokens(text)
    for seed in range(3):
        pieces = TokenEstimator()
        for piece in awkward_pieces(text, seed=seed):
            pieces.add(piece)
        assert pieces.counts_list == whole.counts_list


def test_wide_strings_count_their_latin1_characters_as_latin1_strings_do():
    # Python stores a str with a character past U+00FF in a wider form; the
    # estimator reads it another way, and must count the same pieces.
    narrow, wide = TokenEstimator(), TokenEstimator()
    narrow.add("Crème brûlée, 42 items;\n  done")
    wide.add("Crème brûlée, 42 items;\n  done\u2026")
    counts = narrow.counts_list
    counts[FEATURES.index("other")] += 1
    assert wide.counts_list == counts


def test_estimate_prompt_tokens_per_route_type():
    chat = {
        "messages": [
            {"role": "system", "content": "abcd"},
            {"role": "user", "content": [{"type": "text", "text": "abcdefgh"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}],
            },
        ]
    }
    # 3 messages x 4 framing tokens, then "abcd", "abcdefgh", "f" and "{}".
    assert estimate_prompt_tokens(ROUTE_CHAT, chat) == 12 + estimate_tokens("abcdabcdefghf{}")
    assert estimate_prompt_tokens(ROUTE_COMPLETIONS, {"prompt": ["abcd", "efgh"]}) == 2
    assert estimate_prompt_tokens(ROUTE_EMBEDDINGS, {"input": "abcdefgh"}) == 2
    assert estimate_prompt_tokens(ROUTE_EMBEDDINGS, {"input": [1, 2, 3]}) == 3
    assert estimate_prompt_tokens(ROUTE_EMBEDDINGS, {"input": [[1, 2], [3]]}) == 3


def test_cost_is_per_million_tokens():
    usage = Usage.of(1000, 500, 1600)
    assert cost(usage, 3.0, 15.0) == pytest.approx(0.0105)
    assert cost(usage, None, 15.0) == pytest.approx(0.0075)
    assert cost(usage, None, None) == 0.0


def test_prompt_cache_reads_and_writes_are_priced_apart_when_costs_are_given():
    # 1,000 prompt tokens: 600 read from the cache, 300 written to it, 100 plain.
    usage = Usage.of(1000, 500, cached=600, cache_write=300)
    plain = 100 * 3.0 + 600 * 0.3 + 300 * 3.75 + 500 * 15.0
    assert cost(usage, 3.0, 15.0, 0.3, 3.75) == pytest.approx(plain / 1_000_000)
    # Unset cache costs: every prompt token at input_cost, as before.
    assert cost(usage, 3.0, 15.0) == pytest.approx((1000 * 3.0 + 500 * 15.0) / 1_000_000)
    # A free cache read is free, not input_cost.
    assert cost(usage, 3.0, 15.0, 0.0, None) == pytest.approx(
        (400 * 3.0 + 500 * 15.0) / 1_000_000)


def test_anthropic_usage_round_trips_cache_reads_and_writes():
    from fastgw.ai.anthropic_format import anthropic_usage_of
    from fastgw.ai.providers.anthropic import anthropic_usage

    said = {"input_tokens": 333, "output_tokens": 12, "cache_creation_input_tokens": 6,
            "cache_read_input_tokens": 2000}
    usage = anthropic_usage(said)
    assert (usage.prompt_tokens, usage.cached_tokens, usage.cache_write_tokens) == (2339, 2000, 6)
    assert anthropic_usage_of(usage) == said
