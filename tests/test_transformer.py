import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import TypeCheckError

from eqdd.denoisers import Transformer

D, K = 24, 7


def _model(time_conditioning):
    return Transformer(K + 1, K, 32, 2, 4, 64, time_conditioning, key=jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def model():
    return _model(False)


def test_output_shape_and_dtype(model):
    logits = eqx.filter_jit(model)(jnp.full(D, K, jnp.int32), jnp.int32(0))
    assert logits.shape == (D, K) and logits.dtype == jnp.float32
    assert jnp.isfinite(logits).all()


def test_every_position_sees_every_other(model):
    # Bidirectional: changing the last token changes the first position's logits, and vice versa.
    tokens = jnp.arange(D, dtype=jnp.int32) % K
    base = model(tokens, 0)
    changed_last = model(tokens.at[-1].set(K), 0)
    changed_first = model(tokens.at[0].set(K), 0)
    assert not np.allclose(base[0], changed_last[0])
    assert not np.allclose(base[-1], changed_first[-1])


def test_time_input_is_optional():
    tokens = jnp.arange(D, dtype=jnp.int32) % K
    without = _model(False)
    np.testing.assert_array_equal(without(tokens, 0), without(tokens, 5))
    with_time = _model(True)
    assert not np.allclose(with_time(tokens, 0), with_time(tokens, 5))


def test_bad_inputs_are_refused(model):
    with pytest.raises(TypeCheckError):
        model(jnp.zeros(D), 0)  # float tokens
    with pytest.raises(TypeCheckError):
        model(jnp.zeros((2, D), jnp.int32), 0)  # a batch: vmap the model instead
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        Transformer(K + 1, K, 30, 1, 4, 64, key=jax.random.PRNGKey(0))
