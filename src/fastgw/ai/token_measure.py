"""Measures the prompt-token estimator (``fastgw._core.token_estimate``)
against real tokenizers, and fits its weights.

    python -m fastgw.ai.token_measure            # the error table
    python -m fastgw.ai.token_measure --fit      # new WEIGHTS, then the table

The sample is ``tests/ai/data/token_sample.jsonl``; the reference counts are
the larger of OpenAI's cl100k_base and o200k_base counts, from the exact
BPE tokenizer of the ``quicktok-v1`` package (its vocabularies ship inside
it; it is a development dependency, never needed at run time). The weights
are fitted on the even lines of the sample and measured on the odd ones, so
the table's figures are on texts the fit never saw.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
from collections.abc import Iterable
from typing import Any

from fastgw._core.token_estimate import FEATURES, WEIGHTS, TokenEstimator
from fastgw.ai.usage import RESERVATION_MARGIN

SAMPLE = pathlib.Path(__file__).resolve().parents[3] / "tests" / "ai" / "data" / "token_sample.jsonl"


def load_sample(path: pathlib.Path = SAMPLE) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def reference_counts(texts: Iterable[str]) -> list[int]:
    """The larger of the cl100k_base and o200k_base counts of each text."""
    import quicktok  # a development dependency: the measure, never the gateway

    cl100k = quicktok.get_encoding("cl100k_base")
    o200k = quicktok.get_encoding("o200k_base")
    return [max(cl100k.count(text), o200k.count(text)) for text in texts]


def features(text: str) -> list[int]:
    estimator = TokenEstimator()
    estimator.add(text)
    return estimator.counts_list


def estimate(counts: list[int], weights: Iterable[float]) -> float:
    return sum(w * c for w, c in zip(weights, counts, strict=True))


def fit(rows: list[list[int]], targets: list[int]) -> list[float]:
    """Least relative error: minimise the sum of (estimate / real - 1)^2,
    by the normal equations (a 19 by 19 system, solved by elimination)."""
    size = len(FEATURES)
    matrix = [[0.0] * size for _ in range(size)]
    vector = [0.0] * size
    for row, target in zip(rows, targets, strict=True):
        scaled = [value / target for value in row]
        for i in range(size):
            vector[i] += scaled[i]
            for j in range(size):
                matrix[i][j] += scaled[i] * scaled[j]
    for i in range(size):  # a feature the sample never shows keeps weight 0
        matrix[i][i] += 1e-9
    for column in range(size):
        pivot = max(range(column, size), key=lambda r: abs(matrix[r][column]))
        matrix[column], matrix[pivot] = matrix[pivot], matrix[column]
        vector[column], vector[pivot] = vector[pivot], vector[column]
        for r in range(size):
            if r != column and matrix[r][column]:
                factor = matrix[r][column] / matrix[column][column]
                for c in range(column, size):
                    matrix[r][c] -= factor * matrix[column][c]
                vector[r] -= factor * vector[column]
    return [round(vector[i] / matrix[i][i], 3) for i in range(size)]


def error_table(sample: list[dict[str, Any]], reference: list[int],
                weights: Iterable[float]) -> list[dict[str, Any]]:
    """Per kind of text: how the estimate compares with the real count."""
    weights = list(weights)
    by_kind: dict[str, list[float]] = {}
    for item, real in zip(sample, reference, strict=True):
        ratio = estimate(features(item["text"]), weights) / real
        by_kind.setdefault(item["kind"], []).append(ratio)
    by_kind["all"] = [ratio for ratios in by_kind.values() for ratio in ratios]
    table = []
    for kind, ratios in by_kind.items():
        ratios.sort()
        table.append({
            "kind": kind, "texts": len(ratios),
            "mean": statistics.fmean(ratios),
            "mean_abs_error": statistics.fmean(abs(r - 1) for r in ratios),
            "p5": ratios[int(0.05 * (len(ratios) - 1))],
            "p95": ratios[int(0.95 * (len(ratios) - 1))],
            "short": sum(r * RESERVATION_MARGIN < 1 for r in ratios) / len(ratios),
        })
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="fit new weights on the even lines")
    parser.add_argument("--sample", type=pathlib.Path, default=SAMPLE)
    args = parser.parse_args(argv)
    sample = load_sample(args.sample)
    reference = reference_counts(item["text"] for item in sample)
    weights: list[float] = list(WEIGHTS)
    if args.fit:
        weights = fit([features(item["text"]) for item in sample[::2]], reference[::2])
        print("WEIGHTS =", tuple(weights))
    held_out, held_reference = sample[1::2], reference[1::2]
    print(f"estimate / real tokens (max of cl100k_base and o200k_base), "
          f"{len(held_out)} held-out texts of {args.sample.name}")
    print(f"{'kind':<10} {'texts':>5} {'mean':>6} {'|err|':>6} {'p5':>6} {'p95':>6} "
          f"{'short x' + str(RESERVATION_MARGIN):>11}")
    for row in error_table(held_out, held_reference, weights):
        print(f"{row['kind']:<10} {row['texts']:>5} {row['mean']:>6.3f} {row['mean_abs_error']:>6.3f} "
              f"{row['p5']:>6.3f} {row['p95']:>6.3f} {row['short']:>10.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
