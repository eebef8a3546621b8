"""Precision and recall of each built-in detector on the labelled set.

    python -m fastgw.ai.pii.measure              # the shipped set
    python -m fastgw.ai.pii.measure --seed 2     # a new set of the same kind

The shipped set is ``tests/ai/data/pii_sample.jsonl`` (made by
``tests/ai/data/pii_sample.py``, seed 1); ``--seed N`` makes another with
that script, values and look-alikes the detectors were not tuned on. A found
value counts as right when a labelled value of the same detector overlaps it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
from typing import Any

from fastgw.ai.pii.detectors import DETECTORS, Detectors

DATA = pathlib.Path(__file__).resolve().parents[4] / "tests" / "ai" / "data"


def load_sample(seed: int | None = None) -> list[dict[str, Any]]:
    if seed is None:
        lines = (DATA / "pii_sample.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    spec = importlib.util.spec_from_file_location("pii_sample", DATA / "pii_sample.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    samples: list[dict[str, Any]] = module.build(seed)
    return samples


def score(samples: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per detector: true and false positives, false negatives, precision, recall."""
    detectors = Detectors(DETECTORS)
    counts = {name: {"tp": 0, "fp": 0, "fn": 0} for name in DETECTORS}
    for sample in samples:
        labels = [tuple(span) for span in sample["spans"]]
        matched: set[int] = set()
        for finding in detectors.find(sample["text"]):
            hit = next((i for i, (start, end, name) in enumerate(labels)
                        if name == finding.detector and start < finding.end
                        and finding.start < end and i not in matched), None)
            if hit is None:
                counts[finding.detector]["fp"] += 1
            else:
                matched.add(hit)
                counts[finding.detector]["tp"] += 1
        for index, (_, _, name) in enumerate(labels):
            if index not in matched:
                counts[name]["fn"] += 1
    table: dict[str, dict[str, float]] = {}
    for name, c in counts.items():
        found, labelled = c["tp"] + c["fp"], c["tp"] + c["fn"]
        table[name] = {**c, "precision": c["tp"] / found if found else 1.0,
                       "recall": c["tp"] / labelled if labelled else 1.0}
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None,
                        help="measure a set made with this seed instead of the shipped one")
    args = parser.parse_args(argv)
    samples = load_sample(args.seed)
    with_values = sum(1 for s in samples if s["spans"])
    print(f"{len(samples)} snippets ({with_values} with values, {len(samples) - with_values} "
          f"without), {'shipped set' if args.seed is None else f'seed {args.seed}'}")
    print(f"{'detector':<16} {'values':>6} {'found':>6} {'wrong':>6} {'precision':>9} {'recall':>7}")
    for name, row in score(samples).items():
        print(f"{name:<16} {row['tp'] + row['fn']:>6.0f} {row['tp']:>6.0f} {row['fp']:>6.0f} "
              f"{row['precision']:>9.3f} {row['recall']:>7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
