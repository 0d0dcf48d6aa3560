"""Every attention backend computes the reference function, with the same masking rule, in value and
gradient; the Pallas kernel runs in interpret mode here.

Tolerances. In float32 every backend accumulates in float32 and differs only in summation order and in
where the softmax is normalised (online or at once): errors are a few float32 ulps times the sequence
length, far below 1e-5 for these sizes. In bfloat16 the inputs are the same bfloat16 numbers, all
backends compute scores and softmax statistics in float32, but each rounds the probabilities to
bfloat16 before multiplying by `v` and rounds its result to bfloat16 (8 significant bits, a relative
step of 2^-8), at different points of the computation; the tolerance is four such steps relative to
the largest value, and for gradients, which sum `S` such rounded products, eight.
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

from eqdd.denoisers import Transformer
from eqdd.denoisers.attention import BACKENDS, dot_product_attention
from eqdd.denoisers.flash_attention import flash_attention

HEADS, WIDTH = 2, 16
# 37 pads to one block of 64; 130 pads to three blocks, so the kernels' loops over blocks run.
LENGTHS = (37, 130)
CPU_BACKENDS = [b for b in BACKENDS if b not in ("cudnn", "auto")]
BF16_STEP = 2.0**-8


@functools.cache
def _value_and_grad(backend, length, dtype):
    """A jitted (output, gradients of a fixed projection of the output) for one backend and shape."""
    projection = jnp.cos(jnp.arange(length * HEADS * WIDTH)).reshape(length, HEADS, WIDTH)

    def loss(q, k, v, key_mask, segment_ids):
        out = dot_product_attention(q, k, v, key_mask=key_mask, segment_ids=segment_ids, backend=backend)
        return (out.astype(jnp.float32) * projection).sum(), out

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))


def _inputs(seed, length, dtype, mask_probability, num_segments):
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    q, k, v = (2.0 * jax.random.normal(key, (length, HEADS, WIDTH)) for key in keys[:3])
    key_mask = jax.random.bernoulli(keys[3], 1.0 - mask_probability, (length,))
    rng = np.random.default_rng(seed)
    segment_ids = np.sort(rng.integers(0, num_segments, length)).astype(np.int32)
    return q.astype(dtype), k.astype(dtype), v.astype(dtype), key_mask, jnp.asarray(segment_ids)


def _compare(backend, length, dtype, seed, mask_probability, num_segments):
    inputs = _inputs(seed, length, dtype, mask_probability, num_segments)
    (_, out), grads = _value_and_grad(backend, length, dtype)(*inputs)
    (_, ref_out), ref_grads = _value_and_grad("reference", length, jnp.float32)(
        *(x.astype(jnp.float32) for x in inputs[:3]), *inputs[3:]
    )
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    for value, ref_value, steps in [
        (out, ref_out, 4),
        *((g, r, 8) for g, r in zip(grads, ref_grads, strict=True)),
    ]:
        if dtype == jnp.float32:
            atol = rtol = 1e-5
        else:
            atol, rtol = steps * BF16_STEP * float(jnp.abs(ref_value).max()), 0.0
        np.testing.assert_allclose(value.astype(jnp.float32), ref_value, atol=atol, rtol=rtol)
    # The masking rule, independently of any backend: a query with no visible key outputs zero.
    visible = inputs[3][None, :] & (inputs[4][:, None] == inputs[4][None, :])
    blind = ~np.asarray(visible.any(axis=1))
    assert np.all(np.asarray(out)[blind] == 0)
    for grad in grads[:1]:
        assert np.all(np.asarray(grad)[blind] == 0)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["float32", "bfloat16"])
@settings(max_examples=4)
@given(
    seed=st.integers(0, 2**16),
    length=st.sampled_from(LENGTHS),
    mask_probability=st.sampled_from([0.0, 0.3, 0.9]),
    num_segments=st.integers(1, 6),
)
def test_backends_match_the_reference(backend, dtype, seed, length, mask_probability, num_segments):
    _compare(backend, length, dtype, seed, mask_probability, num_segments)


def test_fully_masked_rows_and_padding():
    # Half of the segments see no key at all, and the padded tail of the last block is all masked.
    length = 130
    q, k, v, _, _ = _inputs(0, length, jnp.float32, 0.0, 1)
    segment_ids = jnp.arange(length, dtype=jnp.int32) // 13
    key_mask = (segment_ids % 2).astype(bool)
    for backend in CPU_BACKENDS:
        out = dot_product_attention(q, k, v, key_mask=key_mask, segment_ids=segment_ids, backend=backend)
        assert np.all(np.asarray(out)[~np.asarray(key_mask)] == 0), backend
        assert np.all(np.isfinite(np.asarray(out))), backend


def test_without_masks_every_backend_computes_the_unmasked_softmax():
    # No key mask and no segments take the unmasked path; it equals an all-true mask, and "auto" is
    # the reference on a CPU.
    q, k, v, _, _ = _inputs(3, 70, jnp.float32, 0.0, 1)
    full = dot_product_attention(q, k, v, key_mask=jnp.ones(70, bool), backend="reference")
    for backend in CPU_BACKENDS:
        np.testing.assert_allclose(
            dot_product_attention(q, k, v, backend=backend), full, atol=1e-5, rtol=1e-5
        )
    np.testing.assert_array_equal(
        dot_product_attention(q, k, v, backend="auto"), dot_product_attention(q, k, v, backend="reference")
    )


def test_reference_is_the_direct_softmax():
    q, k, v = jax.random.normal(jax.random.PRNGKey(1), (3, 5, 2, 4))
    out = dot_product_attention(q, k, v, backend="reference")
    for h in range(2):
        weights = jax.nn.softmax(q[:, h] @ k[:, h].T / 2.0, axis=-1)
        np.testing.assert_allclose(out[:, h], weights @ v[:, h], rtol=1e-5, atol=1e-6)


def test_the_kernel_batches_under_vmap():
    q, k, v = jax.random.normal(jax.random.PRNGKey(2), (3, 4, 64, HEADS, WIDTH))
    batched = jax.jit(jax.vmap(functools.partial(dot_product_attention, backend="pallas")))(q, k, v)
    for i in range(4):
        np.testing.assert_allclose(
            batched[i], dot_product_attention(q[i], k[i], v[i], backend="reference"), atol=1e-5, rtol=1e-5
        )


def test_the_kernel_refuses_lengths_off_the_block_grid():
    q = jnp.zeros((HEADS, 100, WIDTH))
    segments = jnp.zeros(100, jnp.int32)
    with pytest.raises(ValueError, match="multiple of"):
        flash_attention(q, q, q, segments, segments, 64, 64, True)


def test_a_transformer_gives_the_same_logits_with_every_backend():
    tokens = jnp.arange(50, dtype=jnp.int32) % 7
    logits = {
        backend: eqx.filter_jit(
            Transformer(8, 7, 32, 2, 2, 64, attention_backend=backend, key=jax.random.PRNGKey(0))
        )(tokens, 0)
        for backend in CPU_BACKENDS
    }
    for backend in CPU_BACKENDS:
        np.testing.assert_allclose(logits[backend], logits["reference"], atol=1e-5, rtol=1e-5)


def test_bad_arguments_are_refused():
    q = jnp.zeros((5, HEADS, WIDTH))
    with pytest.raises(ValueError, match="unknown attention backend 'flash'; choose one of auto, reference"):
        dot_product_attention(q, q, q, backend="flash")
    with pytest.raises(ValueError, match="unknown attention backend"):
        Transformer(8, 7, 32, 1, 2, 64, attention_backend="flash", key=jax.random.PRNGKey(0))
    with pytest.raises(TypeCheckError):
        dot_product_attention(q, q[:4], q)
    with pytest.raises(TypeCheckError):
        dot_product_attention(q, q, q, key_mask=jnp.ones(4, bool))
