import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

from eqdd.denoisers import Transformer
from eqdd.denoisers.embeddings import sinusoidal_features
from eqdd.denoisers.transformer import (
    DepthwiseConv,
    _shifted_sum,
    bfloat16_matmuls,
    bfloat16_product,
    depthwise_correlation,
    rms_normalise,
    rotary,
    squared_relu,
)

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


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), width=st.sampled_from([1, 3, 7]))
def test_depthwise_convolution_is_a_zero_padded_correlation_per_channel(seed, width):
    key_x, key_conv = jax.random.split(jax.random.PRNGKey(seed))
    h = jax.random.normal(key_x, (D, 5))
    conv = DepthwiseConv(5, width, key=key_conv)
    conv = eqx.tree_at(lambda c: c.bias, conv, jnp.arange(5.0))
    kernel, x = np.asarray(conv.kernel, np.float64), np.asarray(h, np.float64)
    half = width // 2
    expected = np.zeros((D, 5))
    for s in range(D):
        for j in range(width):
            if 0 <= s + j - half < D:
                expected[s] += kernel[:, j] * x[s + j - half]
    np.testing.assert_allclose(conv(h), expected + np.arange(5.0), rtol=1e-5, atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), width=st.sampled_from([1, 3, 7]))
def test_depthwise_correlation_gradients_match_automatic_differentiation(seed, width):
    # The hand-written backward pass against JAX's differentiation of the same shifted sum.
    key_h, key_k, key_g = jax.random.split(jax.random.PRNGKey(seed), 3)
    h, kernel = jax.random.normal(key_h, (D, 5)), jax.random.normal(key_k, (5, width))
    cotangent = jax.random.normal(key_g, (D, 5))
    value, pullback = jax.vjp(depthwise_correlation, h, kernel)
    expected_value, expected_pullback = jax.vjp(_shifted_sum, h, kernel)
    np.testing.assert_array_equal(value, expected_value)
    for got, expected in zip(pullback(cotangent), expected_pullback(cotangent), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_rotary_scores_depend_on_the_offset_only(seed):
    # The same query and key at every position: rotated, their scores form a Toeplitz matrix.
    key_q, key_k = jax.random.split(jax.random.PRNGKey(seed))
    q = jnp.broadcast_to(jax.random.normal(key_q, (1, 2, 8)), (D, 2, 8))
    k = jnp.broadcast_to(jax.random.normal(key_k, (1, 2, 8)), (D, 2, 8))
    rq, rk = rotary(q), rotary(k)
    scores = np.asarray(jnp.einsum("qhe,khe->hqk", rq, rk))
    for offset in range(-D + 1, D):
        diagonal = np.diagonal(scores, offset, axis1=1, axis2=2)
        np.testing.assert_allclose(diagonal, diagonal[:, :1].repeat(diagonal.shape[1], 1), atol=1e-4)
    # a rotation: norms are kept, and position 0 is not moved
    np.testing.assert_allclose(jnp.linalg.norm(rq, axis=-1), jnp.linalg.norm(q, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(rq[0], q[0], rtol=1e-6)


@pytest.mark.parametrize(
    "conv_width, use_rotary, activation, mlp_conv, qk_norm, gated_mlp",
    [
        (3, False, "gelu", False, False, False),
        (0, True, "gelu", False, True, True),
        (5, True, "relu2", True, True, True),
    ],
)
def test_local_variants_are_bidirectional_denoisers(
    conv_width, use_rotary, activation, mlp_conv, qk_norm, gated_mlp
):
    model = Transformer(
        K + 1,
        K,
        32,
        2,
        4,
        64,
        conv_width=conv_width,
        rotary=use_rotary,
        activation=activation,
        mlp_conv=mlp_conv,
        qk_norm=qk_norm,
        gated_mlp=gated_mlp,
        key=jax.random.PRNGKey(0),
    )
    tokens = jnp.arange(D, dtype=jnp.int32) % K
    apply = eqx.filter_jit(model)
    base = apply(tokens, jnp.int32(0))
    assert base.shape == (D, K) and jnp.isfinite(base).all()
    assert not np.allclose(base[0], apply(tokens.at[-1].set(K), jnp.int32(0))[0])
    assert not np.allclose(base[-1], apply(tokens.at[0].set(K), jnp.int32(0))[-1])
    assert (model.blocks[0].conv is not None) == bool(conv_width)
    assert (model.blocks[0].mlp_conv is not None) == mlp_conv
    assert (model.blocks[0].qk_gains is not None) == qk_norm
    assert (model.blocks[0].mlp_gate is not None) == gated_mlp


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), activation=st.sampled_from(["gelu", "relu2"]))
def test_a_constant_gate_scales_the_mlps_output_columns(seed, activation):
    """The gate multiplies the MLP's activations: with the gate's weight at zero and its bias `g`, the
    gated network is the ungated one of the same key with each MLP's output weight scaled column by
    column by `g` (the gate takes a key of its own, so every other layer starts the same); at `g = 1`
    the two are the same network, bit for bit."""
    args = (K + 1, K, 32, 2, 4, 48)
    kwargs = dict(conv_width=3, activation=activation, key=jax.random.PRNGKey(3))
    plain, gated = Transformer(*args, **kwargs), Transformer(*args, gated_mlp=True, **kwargs)
    gains = [
        jax.random.uniform(k, (48,), minval=-2.0, maxval=2.0)
        for k in jax.random.split(jax.random.PRNGKey(seed), 2)
    ]

    def with_gate(model, gain_of):
        leaves = lambda m: [x for b in m.blocks for x in (b.mlp_gate.weight, b.mlp_gate.bias)]  # noqa: E731
        values = [
            v
            for b, g in zip(model.blocks, gain_of, strict=True)
            for v in (jnp.zeros_like(b.mlp_gate.weight), g)
        ]
        return eqx.tree_at(leaves, model, values)

    tokens = jax.random.randint(jax.random.PRNGKey(seed), (D,), 0, K + 1)
    ones = with_gate(gated, [jnp.ones(48)] * 2)
    np.testing.assert_array_equal(ones(tokens, 0), plain(tokens, 0))
    scaled = eqx.tree_at(
        lambda m: [b.mlp_out.weight for b in m.blocks],
        plain,
        [b.mlp_out.weight * g[None, :] for b, g in zip(plain.blocks, gains, strict=True)],
    )
    np.testing.assert_allclose(with_gate(gated, gains)(tokens, 0), scaled(tokens, 0), rtol=1e-4, atol=1e-4)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), gain=st.floats(0.1, 10.0))
def test_rms_normalise_sets_the_root_mean_square_to_the_gain(seed, gain):
    x = jax.random.normal(jax.random.PRNGKey(seed), (5, 3, 8)) * 7.0
    out = rms_normalise(x, jnp.full(8, gain))
    np.testing.assert_allclose(jnp.sqrt(jnp.mean(out**2, axis=-1)), gain, rtol=1e-4)
    np.testing.assert_allclose(
        out / jnp.linalg.norm(out, axis=-1, keepdims=True),
        x / jnp.linalg.norm(x, axis=-1, keepdims=True),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("gated_mlp", [False, True])
def test_bfloat16_matmuls_round_only_the_blocks_matrices_and_stay_close(gated_mlp):
    model = Transformer(K + 1, K, 32, 2, 4, 64, conv_width=3, gated_mlp=gated_mlp, key=jax.random.PRNGKey(1))
    fast = bfloat16_matmuls(model)
    changed = [
        jax.tree_util.keystr(path)
        for (path, a), b in zip(
            jax.tree_util.tree_leaves_with_path(model), jax.tree.leaves(fast), strict=True
        )
        if a.dtype != b.dtype
    ]
    assert len(changed) == 2 * (4 + gated_mlp) and all(
        name.endswith(".weight") and "blocks" in name for name in changed
    )
    assert all(b.dtype == jnp.bfloat16 for b in jax.tree.leaves(fast) if b.dtype != jnp.float32)
    tokens = jnp.arange(D, dtype=jnp.int32) % (K + 1)
    exact, rounded = (jax.nn.log_softmax(m(tokens, 0)) for m in (model, fast))
    assert rounded.dtype == jnp.float32 and not np.array_equal(exact, rounded)
    np.testing.assert_allclose(rounded, exact, atol=5e-2)
    np.testing.assert_allclose(jnp.exp(rounded).sum(-1), 1.0, rtol=1e-5)


def _bfloat16(x):
    return x.astype(jnp.bfloat16).astype(jnp.float32)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_bfloat16_products_gradients_are_the_rounded_products_summed_over_the_batch(seed):
    """Under the training step's vmap over examples (here nested, as an objective that vmaps over steps
    inside it would be): the input's gradient is the rounded cotangent times the rounded weight, and the
    weight's is the sum over every example and position of the rounded products, in the weight's dtype."""
    keys = jax.random.split(jax.random.PRNGKey(seed), 3)
    h = jax.random.normal(keys[0], (3, 2, 5, 6))
    weight = jax.random.normal(keys[1], (4, 6))
    cotangent = jax.random.normal(keys[2], (3, 2, 5, 4))

    def loss(weight, h):
        product = lambda x: bfloat16_product(x, weight.astype(jnp.bfloat16))  # noqa: E731
        return jnp.sum(jax.vmap(jax.vmap(product))(h) * cotangent)

    weight_gradient, h_gradient = jax.grad(loss, argnums=(0, 1))(weight, h)
    expected_h = jnp.einsum("abso,oi->absi", _bfloat16(cotangent), _bfloat16(weight))
    expected_weight = jnp.einsum("abso,absi->oi", _bfloat16(cotangent), _bfloat16(h))
    np.testing.assert_allclose(h_gradient, expected_h, rtol=1e-5, atol=1e-5)
    assert weight_gradient.dtype == jnp.float32  # through the cast back from bfloat16
    # rounded to bfloat16 once, after a float32 sum over all 30 rows (a factor of the batch would show)
    np.testing.assert_allclose(weight_gradient, _bfloat16(expected_weight), rtol=2**-7, atol=1e-5)
    forward = jax.vmap(jax.vmap(lambda x: bfloat16_product(x, weight.astype(jnp.bfloat16))))(h)
    np.testing.assert_allclose(
        forward, jnp.einsum("absi,oi->abso", _bfloat16(h), _bfloat16(weight)), rtol=1e-5
    )


def test_bfloat16_products_refuse_to_train_weights_with_a_batch_axis():
    weights, h = jnp.ones((3, 4, 6)), jnp.ones((3, 5, 6))
    loss = lambda w: jnp.sum(jax.vmap(lambda w, x: bfloat16_product(x, w.astype(jnp.bfloat16)))(w, h))  # noqa: E731
    with pytest.raises(NotImplementedError, match="weight shared by the batch"):
        jax.grad(loss)(weights)


def test_zero_init_blocks_start_as_the_identity():
    """With `zero_init` and no convolutions, every block adds nothing at initialisation: the network is
    the head on the normalised input features; training then moves the zero layers."""
    model = Transformer(K + 1, K, 32, 2, 4, 64, zero_init=True, key=jax.random.PRNGKey(0))
    tokens = jnp.arange(D, dtype=jnp.int32) % (K + 1)
    h = jax.vmap(model.token_embedding)(tokens) + sinusoidal_features(jnp.arange(D, dtype=jnp.float32), 32)
    expected = jax.vmap(model.head)(jax.vmap(model.final_norm)(h))
    np.testing.assert_allclose(model(tokens, 0), expected, rtol=1e-5, atol=1e-6)
    grads = eqx.filter_grad(lambda m: jnp.sum(m(tokens, 0) ** 2))(model)
    assert float(jnp.abs(grads.blocks[0].mlp_out.weight).max()) > 0
    assert float(jnp.abs(grads.blocks[0].out.weight).max()) > 0


def test_squared_relu_and_its_gradient():
    x = jnp.linspace(-3.0, 3.0, 13)
    np.testing.assert_allclose(squared_relu(x), np.where(x > 0, x**2, 0.0), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(jax.grad(squared_relu))(x), np.where(x > 0, 2 * x, 0.0), rtol=1e-6)


def test_the_activation_is_the_only_difference_between_mlp_variants():
    """Same key, same parameters: swapping the activation changes the function and nothing else."""
    gelu, relu2 = (
        Transformer(K + 1, K, 32, 1, 4, 64, activation=a, key=jax.random.PRNGKey(3))
        for a in ("gelu", "relu2")
    )
    assert all(
        bool((a == b).all()) for a, b in zip(jax.tree.leaves(gelu), jax.tree.leaves(relu2), strict=True)
    )
    tokens = jnp.arange(D, dtype=jnp.int32) % K
    assert not np.allclose(gelu(tokens, 0), relu2(tokens, 0))


def test_local_variants_refuse_bad_shapes():
    with pytest.raises(ValueError, match="conv_width must be 0 or odd"):
        Transformer(K + 1, K, 32, 1, 4, 64, conv_width=4, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="even head width"):
        Transformer(K + 1, K, 36, 1, 4, 64, rotary=True, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="unknown activation 'swish'; choose one of gelu, relu2"):
        Transformer(K + 1, K, 32, 1, 4, 64, activation="swish", key=jax.random.PRNGKey(0))
