import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

from eqdd.processes import absorbing

D = 37  # one fixed length: one compilation


@jax.jit
def _masks(key, t):
    sigma = absorbing.sample_order(key, D)
    x = jnp.arange(D, dtype=jnp.int32) % 5
    return (
        sigma,
        absorbing.revealed_mask(sigma, t),
        absorbing.current_mask(sigma, t),
        absorbing.corrupt(x, sigma, t, 99),
    )


@given(seed=st.integers(0, 2**31 - 1), t=st.integers(0, D - 1))
def test_masks_reveal_exactly_t_and_the_next_position_is_unique(seed, t):
    sigma, revealed, current, corrupted = map(np.asarray, _masks(jax.random.PRNGKey(seed), t))
    assert sorted(sigma.tolist()) == list(range(D))  # a permutation
    assert revealed.sum() == t
    assert current.sum() == 1
    assert not (revealed & current).any()
    (next_position,) = np.flatnonzero(current)
    assert sigma[next_position] == t
    # the next position is revealed one step later, together with all earlier ones
    _, revealed_next, _, _ = map(np.asarray, _masks(jax.random.PRNGKey(seed), t + 1))
    np.testing.assert_array_equal(revealed_next, revealed | current)
    x = np.arange(D) % 5
    np.testing.assert_array_equal(corrupted, np.where(revealed, x, 99))


def test_orders_are_uniform_over_permutations():
    # D = 3: 6 orders, each with probability 1/6.
    keys = jax.random.split(jax.random.PRNGKey(0), 60_000)
    sigmas = np.asarray(jax.vmap(lambda k: absorbing.sample_order(k, 3))(keys))
    codes = sigmas @ np.array([9, 3, 1])
    counts = np.array([np.sum(codes == c) for c in np.unique(codes)])
    assert len(counts) == 6
    np.testing.assert_allclose(counts / len(keys), 1 / 6, atol=0.01)


def test_steps_are_uniform():
    keys = jax.random.split(jax.random.PRNGKey(1), 50_000)
    t = np.asarray(jax.vmap(lambda k: absorbing.sample_step(k, 5))(keys))
    assert t.min() == 0 and t.max() == 4
    np.testing.assert_allclose(np.bincount(t) / len(t), 0.2, atol=0.01)


def test_shapes_are_checked():
    with pytest.raises(TypeCheckError):
        absorbing.corrupt(jnp.zeros(4, jnp.int32), jnp.arange(5), 1, 9)
    with pytest.raises(TypeCheckError):
        absorbing.corrupt(jnp.zeros(5), jnp.arange(5), 1, 9)  # float tokens


def test_the_process_refuses_a_negative_absorbing_token():
    assert absorbing.AbsorbingProcess(27).absorbing_token == 27
    with pytest.raises(ValueError, match="must be non-negative, got -1"):
        absorbing.AbsorbingProcess(-1)
