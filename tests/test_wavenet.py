"""The audio denoiser: shapes, a non-causal receptive field of the size it claims, training through
the existing Upscale objective, and its convolutions as shifted matrix products."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdd.denoisers import WaveNet
from eqdd.denoisers.convolution import convolve
from eqdd.objectives import OAARDMObjective, UpscaleObjective
from eqdd.processes import AbsorbingProcess, UpscaleTransitions

D = 64


def test_outputs_have_one_row_per_sample():
    oa = WaveNet(257, 256, 16, 2, 2, D, key=jax.random.PRNGKey(0))
    tokens = jax.random.randint(jax.random.PRNGKey(1), (D,), 0, 257)
    assert oa(tokens, 3).shape == (D, 256)
    upscale = WaveNet(256, 2 * 16, 16, 2, 2, 2 * D, num_stages=2, key=jax.random.PRNGKey(0))
    out = upscale(tokens % 256, 70, jnp.arange(D) < 10, 1)
    assert out.shape == (D, 32) and bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.parametrize(("depth", "cycle"), [(3, 2), (4, 4)])
def test_each_output_sees_exactly_its_receptive_field_on_both_sides(depth, cycle):
    net = WaveNet(300, 8, 8, depth, cycle, D, key=jax.random.PRNGKey(2))
    half = (net.receptive_field - 1) // 2
    assert net.receptive_field == 3 + 2 * sum(2 ** (i % cycle) for i in range(depth))
    tokens = jax.random.randint(jax.random.PRNGKey(3), (D,), 0, 299)
    changed = tokens.at[D // 2].set((tokens[D // 2] + 100) % 299)
    moved = np.flatnonzero(np.any(np.asarray(net(tokens, 5)) != np.asarray(net(changed, 5)), axis=1))
    np.testing.assert_array_equal(moved, np.arange(D // 2 - half, D // 2 + half + 1))  # non-causal


@eqx.filter_jit
def _loss_and_grad(objective, net, x):
    return eqx.filter_value_and_grad(lambda m: objective(m, x, jax.random.PRNGKey(6))[0])(net)


def test_it_trains_with_the_existing_objectives():
    transitions = UpscaleTransitions(256, 16, "zero", "direct")
    for objective, net in (
        (
            OAARDMObjective(AbsorbingProcess(256), ce_weight=1.0),
            WaveNet(257, 256, 16, 2, 2, D, key=jax.random.PRNGKey(4)),
        ),
        (
            UpscaleObjective(transitions),
            WaveNet(256, transitions.num_outputs, 16, 2, 2, 2 * D, 2, key=jax.random.PRNGKey(4)),
        ),
    ):
        x = jax.random.randint(jax.random.PRNGKey(5), (D,), 0, 256)

        loss, grads = _loss_and_grad(objective, net, x)
        leaves = jax.tree.leaves(eqx.filter(grads, eqx.is_array))
        assert np.isfinite(float(loss)) and all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
        assert any(float(jnp.abs(g).sum()) > 0 for g in leaves)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="multiple of 4"):
        WaveNet(10, 10, 6, 1, 1, D, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="at least 1"):
        WaveNet(10, 10, 8, 0, 1, D, key=jax.random.PRNGKey(0))


@settings(max_examples=12)
@given(
    spatial=st.sampled_from([1, 2]),
    kernel=st.sampled_from([1, 3]),
    dilation=st.integers(1, 3),
    padding=st.integers(0, 4),
    seed=st.integers(0, 2**31 - 1),
)
def test_shifted_matrix_products_compute_equinox_convolutions(spatial, kernel, dilation, padding, seed):
    # The form the WaveNet runs its convolutions in (fast inside the samplers' loops), against
    # Equinox's own convolution, in 1-D and 2-D, with dilation and padding.
    keys = jax.random.split(jax.random.PRNGKey(seed))
    conv = eqx.nn.Conv(spatial, 3, 5, kernel, dilation=dilation, padding=padding, key=keys[0])
    size = max(1, dilation * (kernel - 1) - 2 * padding + 1) + 4
    x = jax.random.normal(keys[1], (3, *(size,) * spatial))
    np.testing.assert_allclose(convolve(conv, x), conv(x), rtol=1e-5, atol=1e-5)


def test_convolve_refuses_what_it_does_not_compute():
    strided = eqx.nn.Conv1d(2, 2, 3, stride=2, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="stride-1, one-group"):
        convolve(strided, jnp.ones((2, 9)))
