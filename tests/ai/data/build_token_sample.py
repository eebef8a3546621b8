"""Builds token_sample.jsonl: the texts the prompt-token estimator is
measured on (tests/ai/test_token_estimate.py; `python -m fastgw.ai.token_estimate`).

Run from the repository root: `.venv/bin/python tests/ai/data/build_token_sample.py`.
The sample is frozen in the JSONL file so that the measurement does not move
when the project's own files change; only the texts are stored, the exact
counts are computed by the reference tokenizers when the measure runs.

Kinds: prompts written for the sample (English and 18 other languages,
alone and joined into longer prompts), paragraphs of the project's docs,
chunks of its Python source, JSON request bodies and tool schemas, and
generated text that tokenizes badly (ids, hex, base64, numbers, logs, CSV).
"""

from __future__ import annotations

import base64
import json
import pathlib
import random
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[3]
HERE = pathlib.Path(__file__).resolve().parent


def lines(name: str) -> list[str]:
    return [line for line in (HERE / name).read_text().splitlines() if line.strip()]


def doc_paragraphs() -> list[str]:
    out = []
    for path in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        for block in path.read_text().split("\n\n"):
            if len(block) > 80:
                out.append(block)
    return out


def code_chunks(rng: random.Random) -> list[str]:
    files = sorted((ROOT / "src" / "fastgw").rglob("*.py")) + sorted(
        (ROOT / "src" / "fastgw" / "_core").glob("*.pyx"))
    out = []
    for path in rng.sample(files, 60):
        text = path.read_text()
        if len(text) < 400:
            continue
        for _ in range(2):
            size = rng.choice((300, 800, 2000, 4000))
            start = rng.randrange(0, max(1, len(text) - size))
            out.append(text[start:start + size])
    return out


def json_bodies(rng: random.Random, prompts: list[str]) -> list[str]:
    out = []
    for path in sorted((ROOT / "tests" / "ai" / "fixtures").rglob("*.json"))[:60]:
        out.append(path.read_text())
    for _ in range(40):
        body = {
            "model": rng.choice(("gpt-4o", "claude-sonnet-4", "gemini-2.5-pro")),
            "messages": [{"role": rng.choice(("user", "system", "assistant")),
                          "content": rng.choice(prompts)} for _ in range(rng.randint(1, 6))],
            "temperature": round(rng.random(), 2),
            "max_tokens": rng.choice((256, 1024, 4096)),
        }
        if rng.random() < 0.4:
            body["tools"] = [{"type": "function", "function": {
                "name": f"get_{rng.choice(('weather', 'order', 'invoice', 'user'))}",
                "description": rng.choice(prompts),
                "parameters": {"type": "object", "properties": {
                    "id": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
                    "required": ["id"]}}}]
        out.append(json.dumps(body, indent=rng.choice((None, 2)), ensure_ascii=rng.random() < 0.3))
    return out


def generated(rng: random.Random) -> list[str]:
    out = []
    for _ in range(15):
        out.append(" ".join(str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(rng.randint(1, 20))))
        out.append(rng.getrandbits(8 * rng.randint(8, 256)).to_bytes(256, "big").hex())
        out.append(base64.b64encode(rng.randbytes(rng.randint(16, 1200))).decode())
        out.append(" ".join(str(rng.randint(0, 10 ** rng.randint(1, 12))) for _ in range(rng.randint(5, 200))))
        out.append("\n".join(
            f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z "
            f"{rng.choice(('INFO', 'WARN', 'ERROR'))} worker={rng.randint(1, 8)} "
            f"route=/v1/{rng.choice(('chat', 'orders', 'users'))}/{rng.randint(1, 99999)} "
            f"status={rng.choice((200, 404, 429, 502))} latency_ms={rng.random() * 900:.1f}"
            for _ in range(rng.randint(1, 40))))
        out.append("\n".join(
            ",".join((str(rng.randint(1, 99999)), rng.choice(("alice", "bob", "chen", "dana")),
                      f"{rng.random() * 1000:.2f}", rng.choice(("free", "gold", "pro"))))
            for _ in range(rng.randint(2, 60))))
        out.append(" " * rng.randint(1, 40) + "x" + "\t" * rng.randint(0, 5) + "\n" * rng.randint(0, 9))
    return out


def main() -> None:
    rng = random.Random(20261207)
    written = lines("prompts_written.txt")
    languages = lines("prompts_languages.txt")
    samples: list[dict] = []
    samples += [{"kind": "prompt", "text": t} for t in written]
    samples += [{"kind": "language", "text": t} for t in languages]
    for _ in range(40):
        samples.append({"kind": "prompt", "text": "\n\n".join(rng.sample(written, rng.randint(2, 12)))})
    for _ in range(30):
        samples.append({"kind": "language", "text": " ".join(rng.sample(languages, rng.randint(2, 6)))})
    samples += [{"kind": "docs", "text": t} for t in doc_paragraphs()]
    samples += [{"kind": "code", "text": t} for t in code_chunks(rng)]
    samples += [{"kind": "json", "text": t} for t in json_bodies(rng, written + languages)]
    samples += [{"kind": "generated", "text": t} for t in generated(rng)]
    with open(HERE / "token_sample.jsonl", "w") as out:
        for sample in samples:
            out.write(json.dumps(sample, ensure_ascii=False) + "\n")
    print(f"{len(samples)} texts, {sum(len(s['text']) for s in samples)} characters")


if __name__ == "__main__":
    main()
