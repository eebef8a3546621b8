"""The prompt-token estimator against real tokenizers, on the shipped sample
(tests/ai/data/token_sample.jsonl): the same figures as
`python -m fastgw.ai.token_measure`, held to the error the docs state."""

from __future__ import annotations

import pathlib

import pytest

from fastgw._core.token_estimate import WEIGHTS, estimate_tokens
from fastgw.ai import token_measure
from fastgw.ai.usage import RESERVATION_MARGIN, prompt_token_reservation


@pytest.fixture(scope="module")
def measured():
    sample = token_measure.load_sample()
    return sample, token_measure.reference_counts(item["text"] for item in sample)


def test_the_sample_has_every_kind_of_text(measured):
    sample, _ = measured
    kinds = {item["kind"] for item in sample}
    assert kinds == {"prompt", "language", "docs", "code", "json", "generated"}
    assert len(sample) >= 500


def test_the_shipped_weights_are_the_fit_of_the_sample(measured):
    sample, reference = measured
    rows = [token_measure.features(item["text"]) for item in sample[::2]]
    assert token_measure.fit(rows, reference[::2]) == pytest.approx(list(WEIGHTS), abs=0.002)


def test_the_estimate_is_within_the_documented_error_on_held_out_texts(measured):
    sample, reference = measured
    table = {row["kind"]: row for row in
             token_measure.error_table(sample[1::2], reference[1::2], WEIGHTS)}
    overall = table.pop("all")
    assert abs(overall["mean"] - 1) < 0.03
    assert overall["mean_abs_error"] < 0.08
    assert overall["short"] < 0.03
    for kind, row in table.items():
        assert 0.65 <= row["p5"] and row["p95"] <= 1.2, kind
        assert row["mean_abs_error"] < 0.11, kind


def test_a_reservation_covers_the_real_prompt_of_nearly_every_text(measured):
    sample, reference = measured
    short = 0
    for item, real in zip(sample, reference, strict=True):
        body = {"messages": [{"role": "user", "content": item["text"]}]}
        reserved = prompt_token_reservation(body)
        short += reserved < real
        # Never more than the text's bytes plus the message framing.
        assert reserved <= len(item["text"].encode()) + 16
    assert short / len(sample) < 0.03
    assert RESERVATION_MARGIN == 1.25  # the figure docs/ai-translation.md gives


def test_the_estimate_holds_on_the_projects_own_files_as_they_are_now():
    """Text the sample froze long ago, or never held: the source, tests and
    docs of this checkout."""
    root = pathlib.Path(__file__).resolve().parents[2]
    paths = [*sorted((root / "src" / "fastgw").rglob("*.py")), *sorted((root / "docs").glob("*.md")),
             *sorted((root / "tests").rglob("test_*.py"))]
    texts = [text for text in (p.read_text(encoding="utf-8")[:6000] for p in paths)
             if len(text) >= 200]
    reference = token_measure.reference_counts(texts)
    ratios = [estimate_tokens(text) / real for text, real in zip(texts, reference, strict=True)]
    assert len(ratios) > 100
    assert sum(abs(r - 1) for r in ratios) / len(ratios) < 0.08
    assert sum(r * RESERVATION_MARGIN < 1 for r in ratios) / len(ratios) < 0.02
