"""The audio denoiser: shapes, a non-causal receptive field of the size it claims, and training through
the existing Upscale objective."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqdd.denoisers import WaveNet
from eqdd.objectives import OAARDMObjective, UpscaleObjective
from eqdd.processes import UpscaleTransitions

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
    transitions = UpscaleTransitions(256, 16, "zero")
    for objective, net in (
        (OAARDMObjective(256, ce_weight=1.0), WaveNet(257, 256, 16, 2, 2, D, key=jax.random.PRNGKey(4))),
        (
            UpscaleObjective(transitions, "direct"),
            WaveNet(256, transitions.num_outputs("direct"), 16, 2, 2, 2 * D, 2, key=jax.random.PRNGKey(4)),
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
