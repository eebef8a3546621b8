"""Deterministic text embeddings by feature hashing.

Words and character trigrams are hashed into a fixed number of signed buckets, then the vector
is L2-normalised. Texts that share words and spellings share buckets, so their cosine
similarity is high; unrelated texts only collide by chance and land near zero.
"""

from __future__ import annotations

import base64
import math
import re
import sys
from array import array

import xxhash

DEFAULT_DIMENSIONS = 256
MAX_DIMENSIONS = 8192
_WORD_RE = re.compile(r"\w+")
# Whole words carry more meaning than their trigrams; trigrams make near-spellings close.
_WORD_WEIGHT = 1.0
_TRIGRAM_WEIGHT = 0.5


def embed(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    vector = [0.0] * dimensions
    hash64 = xxhash.xxh3_64_intdigest
    # Distinct words only: a repeated filler word ("the") must not dominate the vector.
    for word in dict.fromkeys(_WORD_RE.findall(text.lower())):
        _add_feature(vector, hash64(word.encode()), _WORD_WEIGHT, dimensions)
        marked = f"<{word}>".encode()
        for start in range(len(marked) - 2):
            _add_feature(vector, hash64(marked[start : start + 3]), _TRIGRAM_WEIGHT, dimensions)
    norm = math.sqrt(sum(value * value for value in vector))
    if norm == 0.0:
        # Text without any word character: a fixed unit vector keeps cosine well defined.
        vector[0] = 1.0
        return vector
    return [value / norm for value in vector]


def _add_feature(vector: list[float], digest: int, weight: float, dimensions: int) -> None:
    # The top bit picks the sign, so that collisions cancel out on average instead of adding up.
    vector[digest % dimensions] += -weight if digest >> 63 else weight


def to_base64(vector: list[float]) -> str:
    """Little-endian float32 bytes, base64-encoded, as OpenAI's `encoding_format: base64`."""
    packed = array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def cosine(left: list[float], right: list[float]) -> float:
    """Cosine similarity of two vectors from `embed` (already unit length)."""
    return sum(a * b for a, b in zip(left, right, strict=True))
