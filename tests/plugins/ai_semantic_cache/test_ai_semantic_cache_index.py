"""The similarity index on its own: nearest within the threshold, by cosine
or euclidean distance, per context, expired entries skipped, the oldest
going first when a context is full."""

from fastgw.plugins.ai_semantic_cache.index import VectorIndex


def test_the_nearest_live_vector_within_the_threshold_per_context():
    index = VectorIndex(3, "cosine", 0.1, 100)
    index.add("a", [1.0, 0.0, 0.0], "x", expires=10.0)
    index.add("a", [0.0, 1.0, 0.0], "y", expires=10.0)
    index.add("b", [1.0, 0.0, 0.0], "z", expires=10.0)
    key, distance = index.nearest("a", [2.0, 0.1, 0.0], now=0.0)
    assert key == "x" and 0 <= distance < 0.01  # cosine: the length does not matter
    assert index.nearest("a", [1.0, 1.0, 0.0], now=0.0) is None  # 0.29 away from both
    assert index.nearest("c", [1.0, 0.0, 0.0], now=0.0) is None
    assert index.nearest("a", [1.0, 0.0, 0.0], now=20.0) is None  # expired


def test_euclidean_distance_and_a_full_context():
    index = VectorIndex(2, "euclidean", 0.5, 3)
    for n in range(5):
        index.add("a", [float(n), 0.0], f"k{n}", expires=10.0)
    assert index.contexts["a"].keys == ["k2", "k3", "k4"]
    assert index.nearest("a", [3.2, 0.0], now=0.0)[0] == "k3"
    assert index.nearest("a", [0.0, 0.0], now=0.0) is None  # k0 is gone; k2 is 2.0 away
