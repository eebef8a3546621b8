"""fastgw._core.wire's helpers that Python layers call."""

import pytest

from fastgw._core.wire import drop_prefixed

OURS = (b"x-ai-ratelimit-", b"x-ai-budget-")


@pytest.mark.parametrize("headers, kept", [
    ([], []),
    ([b"Content-Type", b"a"], [b"Content-Type", b"a"]),
    # Any case; the rest keep their order.
    ([b"A", b"1", b"X-AI-RateLimit-Limit-minute-openai", b"2", b"B", b"3",
      b"x-ai-budget-remaining-day", b"4", b"C", b"5"], [b"A", b"1", b"B", b"3", b"C", b"5"]),
    ([b"X-AI-RATELIMIT-", b"1"], []),
    # A name shorter than a prefix, or one that only contains it, stays.
    ([b"x-ai-rate", b"1", b"y-x-ai-budget-day", b"2"],
     [b"x-ai-rate", b"1", b"y-x-ai-budget-day", b"2"]),
])
def test_drop_prefixed_takes_out_only_the_names_under_a_prefix(headers, kept):
    items = list(headers)
    drop_prefixed(items, OURS)
    assert items == kept
