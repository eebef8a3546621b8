"""The complexity classifier (fastgw.ai.complexity) on the labelled prompts
shipped beside this test: it prints its accuracy and confusion, and must be
right on at least 85% of them. The rules were written while looking at these
prompts, so that figure is an accuracy on seen data; a second set of 60,
written after the rules and never used to change them, gives the held-out
figure (at least 80%)."""

from __future__ import annotations

import json
import pathlib
from collections import Counter

from fastgw.ai.complexity import TIERS, classify, classify_text

DATA = pathlib.Path(__file__).parent / "data"


def accuracy(name: str) -> tuple[float, int]:
    """The share of a labelled set classified as labelled (its table printed)."""
    data = [json.loads(line) for line in (DATA / name).read_text().splitlines()
            if line.strip()]
    assert {item["tier"] for item in data} == set(TIERS)
    confusion = Counter((item["tier"], classify_text(item["prompt"]).tier) for item in data)
    right = sum(count for (label, got), count in confusion.items() if label == got)
    print(f"\ncomplexity classifier on {name}: {right}/{len(data)} right "
          f"({right / len(data):.1%})")
    for label in TIERS:
        print(f"  {label:<10}", {got: confusion[(label, got)] for got in TIERS})
    return right / len(data), len(data)


def test_the_labelled_prompts_are_classified_at_85_percent_or_better():
    share, size = accuracy("complexity_prompts.jsonl")
    assert size >= 200 and share >= 0.85


def test_prompts_the_rules_never_saw_are_classified_at_80_percent_or_better():
    share, size = accuracy("complexity_holdout.jsonl")
    assert size == 60 and share >= 0.80


def test_requests_are_classified_by_their_last_user_message_and_shape():
    def request(text, **extra):
        return {"messages": [{"role": "system", "content": "prove every theorem"},
                             {"role": "user", "content": text}], **extra}

    assert classify(request("hi")).tier == "simple"
    assert classify(request("prove that there are infinitely many primes")).tier == "reasoning"
    tools = classify(request("what is the weather in Paris?", tools=[{"type": "function"}]))
    assert tools.tier == "medium" and "tools" in tools.reasons
    code = classify_text("```python\ndef f(x):\n    return x\n```\nrefactor this into a "
                         "production service with tests")
    assert "code" in code.reasons and code.tier == "complex"
