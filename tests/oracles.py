"""Exact oracles for tiny enumerable problems, shared by the tests."""

import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def all_states(num_positions: int, num_classes: int) -> np.ndarray:
    """Every sequence in `{0..K-1}^D`, shape `(K^D, D)`, in lexicographic order."""
    return np.array(list(itertools.product(range(num_classes), repeat=num_positions)), np.int32)


def all_orders(num_positions: int) -> np.ndarray:
    """Every permutation of `0..D-1`, shape `(D!, D)`."""
    return np.array(list(itertools.permutations(range(num_positions))), np.int32)


def state_index(x: np.ndarray, num_classes: int) -> np.ndarray:
    """The index of each sequence (last axis) in [`all_states`][]'s order."""
    weights = num_classes ** np.arange(x.shape[-1] - 1, -1, -1)
    return (np.asarray(x) * weights).sum(-1)


def random_law(rng: np.random.Generator, num_positions: int, num_classes: int) -> np.ndarray:
    """A random distribution over `{0..K-1}^D` with full support."""
    return rng.dirichlet(np.ones(num_classes**num_positions))


class TabularDenoiser(eqx.Module):
    """A "network" that returns the exact conditionals of a known joint law.

    For a corrupted sequence (absorbing token at the unknown positions), position `k` gets the log
    of `p(x_k | revealed positions)`, the other masked positions marginalised out. Revealed
    positions get a point mass on their value. The step `t` is ignored, as the exact conditionals do
    not depend on it.
    """

    states: jax.Array
    log_law: jax.Array
    num_classes: int = eqx.field(static=True)
    absorbing: int = eqx.field(static=True)

    def __init__(self, law: np.ndarray, num_positions: int, num_classes: int, dtype=jnp.float64):
        self.states = jnp.asarray(all_states(num_positions, num_classes))
        self.log_law = jnp.log(jnp.asarray(law, dtype))
        self.num_classes = num_classes
        self.absorbing = num_classes

    def __call__(self, tokens: jax.Array, t: jax.Array) -> jax.Array:
        revealed = tokens != self.absorbing
        consistent = jnp.all(jnp.where(revealed[None, :], self.states == tokens[None, :], True), axis=1)
        log_weights = jnp.where(consistent, self.log_law, -jnp.inf)
        one_hot = jax.nn.one_hot(self.states, self.num_classes, dtype=bool)  # (S, D, K)
        terms = jnp.where(one_hot, log_weights[:, None, None], -jnp.inf)
        log_marginals = jax.scipy.special.logsumexp(terms, axis=0)  # (D, K)
        return log_marginals - jax.scipy.special.logsumexp(log_marginals, axis=-1, keepdims=True)


def log2_prob(law: np.ndarray, x: np.ndarray, num_classes: int) -> float:
    return math.log2(law[state_index(x, num_classes)])


def all_policies(num_steps: int, budget: int):
    """Every policy with `budget` segments over `num_steps` steps (brute force)."""
    for rest in itertools.combinations(range(1, num_steps), budget - 1):
        yield np.array((0, *rest))
