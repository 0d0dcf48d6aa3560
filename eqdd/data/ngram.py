"""A character n-gram language model (interpolated Witten-Bell): a judge of sample quality that no
diffusion model has seen, cheap to fit on the whole training split on a CPU.

`P_0(c) = (C(c) + 1) / (N + V)` and, for a context `h` of length `n ≥ 1` with shorter context `h'`,

    P_n(c | h) = (C(h c) + T(h)·P_{n-1}(c | h')) / (C(h) + T(h)),

where `C` counts occurrences in the training text and `T(h)` is the number of distinct characters seen
after `h`; an unseen context falls back to `P_{n-1}`. Every `P_n(· | h)` is a distribution over the `V`
classes. The first characters of a sequence use the contexts they have.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class _Order:
    """The counts for contexts of one length, as sorted id arrays (ids are base-`V` numbers)."""

    pairs: np.ndarray  # sorted ids of (context, next character)
    pair_counts: np.ndarray
    contexts: np.ndarray  # sorted ids of contexts
    context_counts: np.ndarray
    context_types: np.ndarray  # distinct next characters per context


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """`values[i]` where `keys[i] == query`, else 0 (`keys` sorted)."""
    index = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return np.where(keys[index] == queries, values[index], 0)


def _context_ids(tokens: np.ndarray, length: int, num_classes: int) -> np.ndarray:
    """Ids of the `length` characters before each position `j ≥ length` of `tokens` (last axis)."""
    ids = np.zeros(tokens.shape[:-1] + (tokens.shape[-1] - length,), np.int64)
    for k in range(length):
        ids = ids * num_classes + tokens[..., k : tokens.shape[-1] - length + k]
    return ids


@dataclasses.dataclass(frozen=True)
class NGramModel:
    """A fitted model; build it with [`NGramModel.fit`][]."""

    num_classes: int
    unigram: np.ndarray
    orders: tuple[_Order, ...]

    @classmethod
    def fit(cls, tokens: np.ndarray, num_classes: int, order: int = 6) -> "NGramModel":
        """Count the n-grams of `tokens`.

        Arguments:
            tokens: the training text, ints in `[0, num_classes)`.
            num_classes: the alphabet size `V`.
            order: the n of the n-gram: contexts of up to `order - 1` characters.
        """
        if order < 1 or num_classes**order >= 2**62:
            raise ValueError(f"order must be at least 1 with num_classes**order < 2**62, got {order}")
        tokens = np.asarray(tokens, np.int64)
        counts = np.bincount(tokens, minlength=num_classes)
        unigram = (counts + 1.0) / (counts.sum() + num_classes)
        orders = []
        for length in range(1, order):
            contexts = _context_ids(tokens, length, num_classes)
            pairs, pair_counts = np.unique(contexts * num_classes + tokens[length:], return_counts=True)
            context_of_pair = pairs // num_classes
            unique_contexts, first, types = np.unique(context_of_pair, return_index=True, return_counts=True)
            context_counts = np.add.reduceat(pair_counts, first)
            orders.append(_Order(pairs, pair_counts, unique_contexts, context_counts, types))
        return cls(num_classes, unigram, tuple(orders))

    def log2_probs(self, sequences: np.ndarray) -> np.ndarray:
        """`log2 P(x_j | x_{<j})` for every position of every sequence.

        Arguments:
            sequences: ints of shape `(N, L)`.

        Returns:
            Floats of shape `(N, L)`.
        """
        sequences = np.asarray(sequences, np.int64)
        p = self.unigram[sequences]
        for length, counts in enumerate(self.orders, start=1):
            if length >= sequences.shape[1]:
                break
            contexts = _context_ids(sequences, length, self.num_classes)
            nexts = sequences[:, length:]
            seen = _lookup(counts.pairs, counts.pair_counts, contexts * self.num_classes + nexts)
            total = _lookup(counts.contexts, counts.context_counts, contexts)
            types = _lookup(counts.contexts, counts.context_types, contexts)
            shorter = p[:, length:]
            mixed = (seen + types * shorter) / np.maximum(total + types, 1)
            p[:, length:] = np.where(total > 0, mixed, shorter)
        return np.log2(p)

    def bits_per_character(self, sequences: np.ndarray) -> float:
        """The mean negative log2-likelihood per character of `sequences` `(N, L)`."""
        return float(-self.log2_probs(sequences).mean())
