"""The n-gram judge: every conditional is a distribution, and it equals a direct implementation of
interpolated Witten-Bell on small texts."""

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdd.data.ngram import NGramModel

V = 3


def _direct(text: list[int], history: tuple[int, ...], c: int, order: int) -> float:
    """P(c | history) by the recursion of the module docstring, from plain counts."""
    p = (text.count(c) + 1.0) / (len(text) + V)
    for n in range(1, min(order - 1, len(history)) + 1):
        h = history[len(history) - n :]
        grams = Counter(tuple(text[j - n : j + 1]) for j in range(n, len(text)))
        total = sum(k for g, k in grams.items() if g[:-1] == h)
        types = sum(1 for g in grams if g[:-1] == h)
        if total:
            p = (grams.get((*h, c), 0) + types * p) / (total + types)
    return p


@settings(max_examples=15)
@given(st.lists(st.integers(0, V - 1), min_size=5, max_size=40), st.integers(1, 4))
def test_conditionals_match_the_direct_recursion_and_sum_to_one(text, order):
    model = NGramModel.fit(np.array(text), V, order)
    for length in range(0, 3):
        for history in itertools.product(range(V), repeat=length):
            sequences = np.array([[*history, c] for c in range(V)])
            probs = 2.0 ** model.log2_probs(sequences)[:, -1]
            assert probs.sum() == pytest.approx(1.0, abs=1e-12)
            expected = [_direct(text, history, c, order) for c in range(V)]
            np.testing.assert_allclose(probs, expected, rtol=1e-12)


def test_a_judge_prefers_real_text_to_noise():
    rng = np.random.default_rng(0)
    text = np.tile(np.array([0, 1, 2, 1]), 500)
    model = NGramModel.fit(text, V, 4)
    assert model.bits_per_character(text[None, :100]) < 0.1
    assert model.bits_per_character(rng.integers(0, V, (1, 100))) > 1.0


def test_bad_orders_are_refused():
    with pytest.raises(ValueError, match="order must be at least 1"):
        NGramModel.fit(np.zeros(10, int), V, 0)
