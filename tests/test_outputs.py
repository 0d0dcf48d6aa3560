"""Output parametrisations: the discretised logistic mixture is a distribution over all K classes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqdd import outputs
from eqdd.objectives import OAARDMObjective, oa_ardm_terms
from eqdd.processes import AbsorbingProcess


@pytest.mark.parametrize("num_classes", [2, 3, 16, 256])
def test_the_logistic_mixture_sums_to_one_over_all_classes(num_classes):
    with jax.enable_x64(True):
        rng = np.random.default_rng(num_classes)
        params = rng.normal(size=(6, 9)) * np.array([1.0] * 3 + [1.5] * 3 + [2.0] * 3)
        # peaked, flat, far outside [-1, 1]: every mass still adds up
        params[0, 3:6], params[0, 6:] = 0.1, -7.0
        params[1, 6:] = 5.0
        params[2, 3:6] = 40.0
        params[3, 3:6] = -40.0
        table = outputs.mixture_log_probs(jnp.asarray(params), num_classes)
        assert table.shape == (6, num_classes) and bool(jnp.all(jnp.isfinite(table)))
        np.testing.assert_allclose(np.exp(np.asarray(table)).sum(axis=1), 1.0, atol=1e-9)
        x = jnp.asarray(rng.integers(0, num_classes, 6))
        np.testing.assert_allclose(
            outputs.mixture_log_prob_of(jnp.asarray(params), x, num_classes),
            table[jnp.arange(6), x],
            rtol=1e-12,
        )


def test_one_component_is_the_logistic_cdf_difference():
    num_classes, mean, log_scale = 8, 0.1, np.log(0.3)
    table = np.exp(np.asarray(outputs.mixture_log_probs(jnp.array([[0.0, mean, log_scale]]), num_classes)))[0]
    edges = np.append(np.linspace(-1, 1, num_classes)[:-1] + 1 / (num_classes - 1), np.inf)
    cdf = 1 / (1 + np.exp(-(edges - mean) / 0.3))
    np.testing.assert_allclose(table, np.diff(np.append(0.0, cdf)), rtol=1e-5)


def test_sixteen_bit_audio_in_float32_sums_to_one_and_keeps_finite_gradients():
    params = jnp.array([[0.0, 50.0, -7.0], [0.0, -50.0, -7.0], [0.0, 0.0, 10.0], [0.0, 0.003, -7.0]])
    x = jnp.array([65535, 0, 12345, 32769])
    log_p = outputs.mixture_log_prob_of(params, x, 1 << 16)
    grads = jax.grad(lambda p: outputs.mixture_log_prob_of(p, x, 1 << 16).sum())(params)
    assert bool(jnp.all(jnp.isfinite(grads)))
    # a logistic far wider than a bin: density at the centre times the width, and d log p / d log s = -1
    expected = np.log(2 / 65535) - 10.0 - np.log(4.0) + (-((2 * 12345 / 65535 - 1) ** 2) / np.exp(20) / 4)
    np.testing.assert_allclose(log_p[2], expected, atol=1e-3)
    np.testing.assert_allclose(grads[2, 2], -1.0, atol=1e-3)
    table = np.exp(np.asarray(outputs.mixture_log_probs(params, 1 << 16), np.float64))
    np.testing.assert_allclose(table.sum(axis=1), 1.0, atol=1e-4)


def test_an_oa_ardm_with_a_mixture_output_scores_its_masked_positions():
    # The terms of a logistic-mixture OA-ARDM against the whole table of its K = 16 classes.
    rng = np.random.default_rng(0)
    num_positions, num_classes, t = 8, 16, 3
    params = jnp.asarray(rng.normal(size=(num_positions, 6)), jnp.float32)
    x = jnp.asarray(rng.integers(0, num_classes, num_positions), jnp.int32)
    sigma = jnp.asarray(rng.permutation(num_positions), jnp.int32)
    process = AbsorbingProcess(num_classes, mixture_components=2)
    assert process.num_outputs == 6
    terms = oa_ardm_terms(process, params, x, sigma, jnp.int32(t))
    table = np.asarray(outputs.mixture_log_probs(params, num_classes))
    masked = np.asarray(sigma) >= t
    expected = -table[np.arange(num_positions), np.asarray(x)][masked].sum() / (
        (num_positions - t) * np.log(2)
    )
    np.testing.assert_allclose(terms.nelbo, expected, rtol=1e-5)
    objective = OAARDMObjective(process)
    assert objective.describe() == {"absorbing_token": num_classes, "mixture_components": 2}
    assert OAARDMObjective(AbsorbingProcess(num_classes)).describe() == {"absorbing_token": num_classes}
